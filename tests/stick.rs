//! Stick tables end to end: `track-sc*` rules counting clients, ACLs limiting them on what the
//! table holds, and the Runtime API's `show|set|clear table` through real `socat`.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{cli, connect_from, free_port, socat, wait_until, Harp};
use harp::rules::hello::sample_client_hello;

/// Sends `msg` and reads its echo back.
fn ping(c: &mut TcpStream, msg: &[u8]) {
    c.write_all(msg).expect("send");
    let mut got = vec![0u8; msg.len()];
    c.read_exact(&mut got).expect("echo");
    assert_eq!(got, msg);
}

/// Whether the proxy closed `c` without serving it (reset, or closed before any byte).
fn refused(c: &mut TcpStream) -> bool {
    let _ = c.write_all(b"x");
    let mut buf = [0u8; 16];
    match c.read(&mut buf) {
        Ok(0) => true,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

/// The entry line of `key` in `show table <t> key <key>`, via socat.
fn entry(api: u16, table: &str, key: &str) -> String {
    socat(api, &format!("show table {table} key {key}"))
        .lines()
        .find(|l| l.starts_with("0x"))
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_client_over_its_connection_rate_is_reset_and_the_table_shows_its_counts() {
    let up = common::echo_upstream();
    let (port, api) = (free_port(), free_port());
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n\
         \x20   stick-table type ip size 1k expire 30s store conn_cnt,conn_cur,conn_rate(10s),sess_cnt,bytes_in_cnt,bytes_out_cnt\n\
         \x20   tcp-request connection track-sc0 src\n\
         \x20   tcp-request connection reject if {{ sc0_conn_rate gt 3 }}\n\
         \x20   default_backend be\n\
         backend be\n    server s 127.0.0.1:{up}\n"
    );
    let mut h = Harp::start(&cfg, port, &[]);
    h.wait_port(api);
    // (the readiness probe came from 127.0.0.1: this client is 127.0.0.2)
    let mut held = connect_from("127.0.0.2", port);
    ping(&mut held, b"one");
    let line = entry(api, "fe", "127.0.0.2");
    assert!(line.contains(" key=127.0.0.2 use=1 exp="), "{line}");
    assert!(line.contains(" conn_cur=1 "), "{line}");
    for _ in 0..2 {
        let mut c = connect_from("127.0.0.2", port);
        ping(&mut c, b"two");
    }
    // the fourth connection within 10 s is one too many: reset, never a session
    let mut over = connect_from("127.0.0.2", port);
    assert!(refused(&mut over), "a client over its rate is refused");
    // another client is not limited by it
    let mut other = connect_from("127.0.0.3", port);
    ping(&mut other, b"ok");
    drop((held, other));
    let ok = wait_until(Duration::from_secs(5), || {
        entry(api, "fe", "127.0.0.2").contains(" use=0 ")
    });
    let line = entry(api, "fe", "127.0.0.2");
    assert!(ok, "the sessions gave their entry back: {line}");
    // HAProxy's layout: pointer, key, use, exp (ms left), shard, then the stored types in its
    // order; the rejected connection counts in conn_*, not in sess_cnt
    let (ptr, rest) = line.split_once(": ").expect("pointer");
    assert!(
        ptr.starts_with("0x") && u64::from_str_radix(&ptr[2..], 16).is_ok(),
        "{line}"
    );
    let exp: u64 = rest
        .split(" exp=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("exp");
    assert!(exp > 20_000 && exp <= 30_000, "{line}");
    assert!(
        rest.ends_with(
            " shard=0 conn_cnt=4 conn_rate(10000)=4 conn_cur=0 sess_cnt=3 bytes_in_cnt=9 bytes_out_cnt=9"
        ),
        "{line}"
    );
    let list = socat(api, "show table");
    // the readiness probe (127.0.0.1), this client and the other one
    assert_eq!(list, "# table: fe, type: ip, size:1024, used:3\n\n");
}

#[test]
fn the_runtime_api_shows_sets_and_clears_entries_with_haproxy_replies() {
    let (port, api, user) = (free_port(), free_port(), free_port());
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n    stats socket 127.0.0.1:{user} level user\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n\
         \x20   stick-table type ip size 10 store gpc0\n\
         \x20   default_backend t\n\
         backend t\n    stick-table type string len 8 size 10 expire 1m store gpc0,conn_rate(1m)\n\
         \x20   server s 127.0.0.1:1\n"
    );
    let mut h = Harp::start(&cfg, port, &[]);
    h.wait_port(api);
    h.wait_port(user);
    let run = |cmd: &str| cli(api, cmd);
    // tables list in HAProxy's order, the last declared first
    assert_eq!(
        run("show table"),
        "# table: t, type: string, size:10, used:0\n# table: fe, type: ip, size:10, used:0\n\n"
    );
    assert_eq!(run("show table nope"), "No such table\n\n");
    assert_eq!(
        run("set table t key abc data.gpc0 7 data.conn_rate 4"),
        "\n"
    );
    let shown = run("show table t key abc");
    let mut lines = shown.lines();
    assert_eq!(
        lines.next(),
        Some("# table: t, type: string, size:10, used:1")
    );
    let line = lines.next().unwrap_or("");
    assert!(
        line.contains(": key=abc use=0 exp=")
            && line.ends_with(" shard=0 gpc0=7 conn_rate(60000)=4"),
        "{shown}"
    );
    // filters
    assert!(run("show table t data.gpc0 gt 5").contains("key=abc"));
    assert!(!run("show table t data.gpc0 lt 5").contains("key=abc"));
    assert_eq!(
        run("show table t data.gpc0 xx 1"),
        "Filter entry #1: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n\n"
    );
    assert_eq!(
        run("show table t data.nope eq 1"),
        "Filter entry #1: Unknown data type\n\n"
    );
    assert_eq!(
        run("show table t data.conn_cnt eq 1"),
        "Filter entry #1: Data type not stored in this table\n\n"
    );
    assert_eq!(
        run("show table t data.gpc0 eq x"),
        "Filter entry #1: Require a valid integer value to compare against\n\n"
    );
    // set's errors
    assert_eq!(
        run("set table t key abc data.nope 1"),
        "Unknown data type\n\n"
    );
    assert_eq!(
        run("set table t key abc data.conn_cnt 1"),
        "Data type not stored in this table\n\n"
    );
    assert_eq!(
        run("set table t key abc data.gpc0 x"),
        "Require a valid integer value to store\n\n"
    );
    assert_eq!(
        run("set table t key abc data.gpc0"),
        "Require a valid integer value to store\n\n"
    );
    assert_eq!(
        run("set table t key abc gpc0 1"),
        "\"data.<type>\" followed by a value expected\n\n"
    );
    assert_eq!(
        run("set table t data.gpc0 eq 1"),
        "content-based lookup is only supported with the \"show\" and \"clear\" actions\n\n"
    );
    assert_eq!(run("show table t key"), "Key value expected\n\n");
    assert_eq!(run("show table fe key 1.2.3.400"), "Invalid key\n\n");
    assert_eq!(
        run("show table t foo"),
        "Optional argument only supports \"data.<store_data_type>\" <operator> <value> or key <key> or ptr <ptr>\n\n"
    );
    // by pointer, as `show table` printed it
    let ptr = line.split(':').next().unwrap_or("").to_string();
    assert!(run(&format!("show table t ptr {ptr}")).contains("key=abc"));
    assert_eq!(
        run("show table t ptr 12"),
        "Pointer expected (0xffff notation)\n\n"
    );
    // a user-level socket sees headers only and may change nothing
    assert_eq!(
        cli(user, "show table t"),
        "# table: t, type: string, size:10, used:1\n# contents not dumped due to insufficient privileges\n\n"
    );
    assert_eq!(
        cli(user, "set table t key x data.gpc0 1"),
        "Permission denied\n\n"
    );
    assert_eq!(cli(user, "clear table t"), "\n");
    assert!(run("show table t").contains("key=abc"));
    // clear by key, then the whole table; the socket stays usable throughout
    assert_eq!(run("clear table t key abc"), "\n");
    assert_eq!(run("set table t key def data.gpc0 1"), "\n");
    assert_eq!(run("clear table t"), "\n");
    assert_eq!(
        run("show table t"),
        "# table: t, type: string, size:10, used:0\n\n"
    );
}

#[test]
fn content_rules_track_a_server_name_and_count_it_once_per_connection() {
    let up = common::echo_upstream();
    let (port, api) = (free_port(), free_port());
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n\
         \x20   tcp-request inspect-delay 5s\n\
         \x20   tcp-request content track-sc1 req.ssl_sni table names\n\
         \x20   tcp-request content sc-inc-gpc0(1)\n\
         \x20   tcp-request content reject if {{ sc1_get_gpc0 gt 2 }}\n\
         \x20   default_backend be\n\
         backend be\n    server s 127.0.0.1:{up}\n\
         backend names\n    stick-table type string size 100 store gpc0,conn_cnt,sess_cnt\n"
    );
    let mut h = Harp::start(&cfg, port, &[]);
    h.wait_port(api);
    let hello = sample_client_hello("a.example");
    let connect = || {
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).ok();
        // in two parts: the rules wait for the name, and count the connection once all the same
        c.write_all(&hello[..9]).expect("send");
        std::thread::sleep(Duration::from_millis(50));
        c.write_all(&hello[9..]).expect("send");
        c
    };
    for _ in 0..2 {
        let mut c = connect();
        let mut got = vec![0u8; hello.len()];
        c.read_exact(&mut got).expect("echoed");
        assert_eq!(got, hello);
    }
    let mut third = connect();
    let mut buf = [0u8; 16];
    assert!(
        matches!(third.read(&mut buf), Ok(0) | Err(_)),
        "the third is rejected"
    );
    assert!(wait_until(Duration::from_secs(5), || {
        entry(api, "names", "a.example").contains(" use=0 ")
    }));
    // content trackers never count sessions, as in HAProxy
    let line = entry(api, "names", "a.example");
    assert!(line.ends_with(" gpc0=3 conn_cnt=3 sess_cnt=0"), "{line}");
}

#[test]
fn config_errors_name_the_missing_table_and_the_bad_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |body: &str| {
        let p = dir.path().join("t.cfg");
        std::fs::write(&p, format!("defaults\n    mode tcp\n{body}")).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_harp"))
            .arg("-c")
            .arg("-f")
            .arg(&p)
            .output()
            .expect("run harp -c");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = check(
        "frontend fe\n    bind 127.0.0.1:0\n    tcp-request connection track-sc0 src table nope\n    default_backend be\nbackend be\n    server s 127.0.0.1:1\n",
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains("proxy 'fe': unable to find table 'nope' referenced by track-sc0."),
        "{err}"
    );
    let (code, err) =
        check("backend be\n    stick-table type ip expire 10s\n    server s 127.0.0.1:1\n");
    assert_ne!(code, Some(0));
    assert!(
        err.contains("t.cfg:4] : stick-table: missing size."),
        "{err}"
    );
    let (code, err) = check(
        "backend be\n    stick-table type ip size 1k store conn_rate\n    server s 127.0.0.1:1\n",
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains("stick-table: missing argument to store option 'conn_rate'."),
        "{err}"
    );
    let (code, err) = check(
        "frontend fe\n    bind 127.0.0.1:0\n    tcp-request connection reject if { src_conn_rate gt 1 }\n    default_backend be\nbackend be\n    server s 127.0.0.1:1\n",
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains("unable to find table 'fe' referenced in arg 1 of ACL keyword 'src_conn_rate' in proxy 'fe'."),
        "{err}"
    );
    let (code, err) = check(
        "backend be\n    stick-table type ip size 1k store gpc0,gpc0\n    server s 127.0.0.1:1\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("store option 'gpc0' already enabled, ignored."),
        "{err}"
    );
    // table names are unique, a frontend and a backend of one name included
    let (code, err) = check(
        "frontend x\n    bind 127.0.0.1:0\n    stick-table type ip size 1k\n    default_backend x\nbackend x\n    stick-table type ip size 1k\n    server s 127.0.0.1:1\n",
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains(
            "t.cfg:8] : stick-table name 'x' conflicts with table declared in frontend 'x' at "
        ),
        "{err}"
    );
    let (code, err) = check(
        "frontend fe\n    bind 127.0.0.1:0\n    tcp-request inspect-delay 1s\n    tcp-request content track-sc1 req.payload(0,4)\n    stick-table type ip size 1k\n    default_backend be\nbackend be\n    server s 127.0.0.1:1\n",
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains(
            "proxy 'fe': stick-table 'fe' uses a type incompatible with the 'track-sc1' rule."
        ),
        "{err}"
    );
    let (code, err) = check("    stick-table type ip size 1k\n");
    assert_ne!(code, Some(0));
    assert!(
        err.contains("'stick-table' is not supported in 'defaults' section."),
        "{err}"
    );
}

#[test]
fn lua_scripts_read_a_table_through_proxy_stktable() {
    let up = common::echo_upstream();
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let script = common::write_file(
        dir.path(),
        "stk.lua",
        r#"
core.register_task(function()
  local t = core.frontends["fe"].stktable
  local i = t:info()
  core.Info(string.format("info type=%s length=%d size=%d nopurge=%s expire=%d rate=%d cnt=%d",
    i.type, i.length, i.size, tostring(i.nopurge), i.expire, i.data.conn_rate, i.data.conn_cnt))
  if core.backends["be"].stktable ~= nil then core.Info("be has a table?") end
  while true do
    local e = t:lookup("127.0.0.2")
    if e ~= nil and e.use == 0 and e.conn_cnt == 2 then
      core.Info(string.format("lookup use=%d cnt=%d rate=%d", e.use, e.conn_cnt, e.conn_rate))
      local d = t:dump({{"conn_cnt", "ge", 2}})
      local n = 0
      for k, v in pairs(d) do n = n + 1; core.Info("dump " .. k .. " cnt=" .. v.conn_cnt) end
      core.Info("dumped " .. n)
      local _, err = t:dump({{"nope", "eq", 1}})
      core.Info("bad filter: " .. err)
      return
    end
    core.msleep(20)
  end
end)
"#,
    );
    let cfg = format!(
        "global\n    lua-load {}\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n\
         \x20   stick-table type ip size 2k expire 1m store conn_cnt,conn_rate(30s)\n\
         \x20   tcp-request connection track-sc2 src\n\
         \x20   default_backend be\n\
         backend be\n    server s 127.0.0.1:{up}\n",
        script.display()
    );
    let mut h = Harp::spawn_in(dir, &cfg, &[]);
    h.wait_port(port);
    for _ in 0..2 {
        let mut c = connect_from("127.0.0.2", port);
        ping(&mut c, b"lua");
    }
    assert!(
        h.wait_log("info type=ip length=4 size=2048 nopurge=false expire=60000 rate=30000 cnt=-1"),
        "{}",
        h.stderr()
    );
    assert!(h.wait_log("lookup use=0 cnt=2 rate=2"), "{}", h.stderr());
    assert!(h.wait_log("dump 127.0.0.2 cnt=2"), "{}", h.stderr());
    assert!(h.wait_log("dumped 1"), "{}", h.stderr());
    assert!(
        h.wait_log("bad filter: Filter table data column not present in stick table (entry #1)"),
        "{}",
        h.stderr()
    );
    assert!(!h.stderr().contains("be has a table?"));
}

#[test]
fn a_blocklist_table_fed_by_the_runtime_api_rejects_through_table_converters() {
    let up = common::echo_upstream();
    let (port, api) = (free_port(), free_port());
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n\
         \x20   tcp-request connection reject if {{ src,table_gpc0(block) gt 0 }}\n\
         \x20   tcp-request connection reject if {{ src,ipmask(24),in_table(nets) }}\n\
         \x20   default_backend be\n\
         backend be\n    server s 127.0.0.1:{up}\n\
         backend block\n    stick-table type ip size 100 store gpc0\n\
         backend nets\n    stick-table type ip size 100\n"
    );
    let mut h = Harp::start(&cfg, port, &[]);
    h.wait_port(api);
    let served = |src: &str| {
        let mut c = connect_from(src, port);
        !refused(&mut c)
    };
    assert!(served("127.0.0.2"));
    assert_eq!(
        socat(api, "set table block key 127.0.0.2 data.gpc0 1"),
        "\n"
    );
    assert!(!served("127.0.0.2"), "a key with gpc0 > 0 is refused");
    assert!(served("127.0.0.3"), "a key the table lacks reads 0");
    assert_eq!(
        socat(api, "set table block key 127.0.0.2 data.gpc0 0"),
        "\n"
    );
    assert!(served("127.0.0.2"));
    // a whole /24 blocked by its network's presence
    assert_eq!(socat(api, "set table nets key 127.0.1.0"), "\n");
    assert!(!served("127.0.1.9"));
    assert!(served("127.0.2.9"));
}

/// A server that names itself (`<name>\n`) on each connection; its port.
fn named_upstream(name: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { break };
            let _ = c.write_all(format!("{name}\n").as_bytes());
        }
    });
    port
}

/// The name of the server a connection from `src` reached.
fn server_for(src: &str, port: u16) -> String {
    let mut c = connect_from(src, port);
    let mut got = String::new();
    let _ = c.read_to_string(&mut got);
    got.trim().to_string()
}

#[test]
fn stick_on_src_sends_a_client_back_to_its_server_until_it_goes_into_maintenance() {
    let (a, b) = (named_upstream("a"), named_upstream("b"));
    let (port, api) = (free_port(), free_port());
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         listen px\n    bind 127.0.0.1:{port}\n    balance roundrobin\n\
         \x20   stick-table type ip size 1k expire 1m\n    stick on src\n\
         \x20   server a 127.0.0.1:{a}\n    server b 127.0.0.1:{b}\n"
    );
    let mut h = Harp::start(&cfg, port, &[]);
    h.wait_port(api);
    let first = server_for("127.0.0.2", port);
    assert!(first == "a" || first == "b", "{first:?}");
    for _ in 0..4 {
        assert_eq!(
            server_for("127.0.0.2", port),
            first,
            "the same server every time"
        );
    }
    let other = if first == "a" { "b" } else { "a" };
    let id = if first == "a" { 1 } else { 2 };
    // the table holds the server by id and name (types a `stick` rule adds to its table)
    let line = entry(api, "px", "127.0.0.2");
    assert!(
        line.ends_with(&format!(" shard=0 server_id={id} server_key={first}")),
        "{line}"
    );
    // a draining server keeps its persistent clients, as in HAProxy
    assert_eq!(
        socat(api, &format!("set server px/{first} state drain")),
        "\n"
    );
    assert_eq!(server_for("127.0.0.2", port), first);
    // in maintenance it does not: the balancer picks another one, which the table now names
    assert_eq!(
        socat(api, &format!("set server px/{first} state maint")),
        "\n"
    );
    assert_eq!(server_for("127.0.0.2", port), other);
    assert!(entry(api, "px", "127.0.0.2").ends_with(&format!(" server_key={other}")));
    assert_eq!(
        socat(api, &format!("set server px/{first} state ready")),
        "\n"
    );
    assert_eq!(
        server_for("127.0.0.2", port),
        other,
        "it stays with the new one"
    );
    // an entry written by the Runtime API with an id only sends its client to that server
    assert_eq!(
        socat(api, "set table px key 127.0.0.9 data.server_id 2"),
        "\n"
    );
    for _ in 0..3 {
        assert_eq!(server_for("127.0.0.9", port), "b");
    }
}

#[test]
fn a_non_stick_server_is_never_stored() {
    let (a, b) = (named_upstream("a"), named_upstream("b"));
    let (port, api) = (free_port(), free_port());
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         listen px\n    bind 127.0.0.1:{port}\n\
         \x20   stick-table type ip size 1k\n    stick on src\n\
         \x20   server a 127.0.0.1:{a} non-stick\n    server b 127.0.0.1:{b} backup\n"
    );
    let mut h = Harp::start(&cfg, port, &[]);
    h.wait_port(api);
    assert_eq!(server_for("127.0.0.2", port), "a");
    assert_eq!(
        socat(api, "show table px"),
        "# table: px, type: ip, size:1024, used:0\n\n"
    );
    // the backup is stored as any server
    assert_eq!(socat(api, "set server px/a state maint"), "\n");
    assert_eq!(server_for("127.0.0.2", port), "b");
    assert!(entry(api, "px", "127.0.0.2").ends_with(" server_id=2 server_key=b"));
}

#[test]
fn sc_set_gpt0_stores_a_sample_read_when_the_rule_runs() {
    let up = common::echo_upstream();
    let (port, api) = (free_port(), free_port());
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n\
         \x20   stick-table type ip size 10 store gpt0\n\
         \x20   tcp-request connection track-sc0 src\n\
         \x20   tcp-request connection sc-set-gpt0(0) src_port\n\
         \x20   default_backend be\n\
         backend be\n    server s 127.0.0.1:{up}\n"
    );
    let mut h = Harp::start(&cfg, port, &[]);
    h.wait_port(api);
    let mut c = connect_from("127.0.0.2", port);
    ping(&mut c, b"gpt");
    let sport = c.local_addr().expect("addr").port();
    let line = entry(api, "fe", "127.0.0.2");
    assert!(line.ends_with(&format!(" gpt0={sport}")), "{line}");
}
