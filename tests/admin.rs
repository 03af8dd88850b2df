//! The Runtime API end to end: the real `harp` binary, driven with real `socat` and raw sockets,
//! compared with HAProxy 3.2's replies and log lines (shared/reference/).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{cli, free_port, socat, Harp};

struct Ports {
    admin: u16,
    user: u16,
    fe: u16,
}

/// The reference transcript's configuration, plus a `user` level socket, a unix socket and a
/// static-rr backend.
fn start() -> (Harp, Ports) {
    let p = Ports {
        admin: free_port(),
        user: free_port(),
        fe: free_port(),
    };
    let cfg = format!(
        "global\n\
         \x20   stats socket ipv4@127.0.0.1:{admin} level admin\n\
         \x20   stats socket ipv4@127.0.0.1:{user} level user\n\
         \x20   stats socket unix@admin.sock mode 600 level admin\n\
         \x20   stats timeout 2s\n\
         \x20   maxconn 9985\n\
         defaults\n\
         \x20   mode tcp\n\
         \x20   timeout connect 1s\n\
         \x20   timeout client 5s\n\
         \x20   timeout server 5s\n\
         frontend fe\n\
         \x20   bind 127.0.0.1:{fe}\n\
         \x20   default_backend test\n\
         backend test\n\
         \x20   balance roundrobin\n\
         \x20   option log-health-checks\n\
         \x20   server webserver1 127.0.0.1:29081 check inter 300ms rise 2 fall 2\n\
         \x20   server webserver2 127.0.0.1:29082\n\
         backend st\n\
         \x20   balance static-rr\n\
         \x20   server s1 127.0.0.1:29091\n",
        admin = p.admin,
        user = p.user,
        fe = p.fe
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(p.admin);
    h.wait_port(p.user);
    (h, p)
}

/// The reply of one command, without the final empty line every reply ends with.
fn run(port: u16, cmd: &str) -> String {
    let r = cli(port, cmd);
    assert!(
        r.ends_with('\n'),
        "reply to {cmd:?} lacks its final empty line: {r:?}"
    );
    r[..r.len() - 1].to_string()
}

fn state_line(port: u16, srv: &str) -> String {
    run(port, "show servers state test")
        .lines()
        .find(|l| l.split(' ').nth(3) == Some(srv))
        .unwrap_or_default()
        .to_string()
}

/// Columns 0-9 of a `show servers state` line (up to uweight/iweight, before the timer).
fn head(line: &str) -> String {
    line.split(' ').take(9).collect::<Vec<_>>().join(" ")
}

#[test]
fn seed_article_steps_through_socat() {
    let (h, p) = start();
    assert_eq!(
        socat(p.admin, "set server test/webserver1 health down"),
        "\n"
    );
    assert_eq!(
        socat(p.admin, "set server test/webserver2 state maint"),
        "\n"
    );
    let st = socat(p.admin, "show servers state");
    assert!(st.starts_with("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"), "{st}");
    let l1 = st.lines().find(|l| l.contains(" webserver1 ")).unwrap();
    let l2 = st.lines().find(|l| l.contains(" webserver2 ")).unwrap();
    assert_eq!(head(l1), "3 test 1 webserver1 127.0.0.1 0 0 1 1");
    assert!(l1.ends_with(" 0 0 0 - 29081 - 0 0 - - 0"), "{l1}");
    assert_eq!(head(l2), "3 test 2 webserver2 127.0.0.1 0 1 1 1");
    assert!(l2.ends_with(" 0 0 0 - 29082 - 0 0 - - 0"), "{l2}");
    let pid = h.pid();
    for want in [
        format!("[WARNING]  ({pid}) : Server test/webserver1 is DOWN, changed from CLI. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."),
        format!("[WARNING]  ({pid}) : Server test/webserver2 is going DOWN for maintenance. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."),
        format!("[ALERT]    ({pid}) : backend 'test' has no server available!"),
    ] {
        assert!(h.wait_log(&want), "missing log line {want:?} in:\n{}", h.stderr());
    }
    // And back, as in the transcript.
    assert_eq!(socat(p.admin, "set server test/webserver1 health up"), "\n");
    assert_eq!(
        socat(p.admin, "set server test/webserver2 state ready"),
        "\n"
    );
    assert!(h.wait_log(&format!("[WARNING]  ({pid}) : CLI : Server test/webserver1 is UP, changed from CLI. 1 active and 0 backup servers online. 0 sessions requeued, 0 total in queue.")), "{}", h.stderr());
    assert!(h.wait_log(&format!(
        "[WARNING]  ({pid}) : Server test/webserver2 is UP/READY (leaving forced maintenance)."
    )));
    assert_eq!(
        head(&state_line(p.admin, "webserver2")),
        "3 test 2 webserver2 127.0.0.1 2 0 1 1"
    );
}

#[test]
fn reference_transcript_replies() {
    let (_h, p) = start();
    let help = socat(p.admin, "help");
    assert!(help.starts_with("The following commands are valid at this level:\n"));
    assert!(help.contains(
        "  get weight <bk>/<srv>                   : report a server's current weight\n"
    ));
    assert!(help.ends_with("  quit                                    : disconnect\n\n"));
    assert_eq!(socat(p.admin, "show backend"), "# name\ntest\nst\n\n");
    assert_eq!(
        socat(p.admin, "get weight test/webserver1"),
        "1 (initial 1)\n\n"
    );
    let cases = [
        (
            "set server test/webserver2 weight 300",
            "Absolute weight can only be between 0 and 256 inclusive.",
        ),
        ("set server test/webserver2 weight 50%", ""),
        ("get weight test/webserver2", "0 (initial 1)"),
        (
            "set server test/webserver2 state bogus",
            "'set server <srv> state' expects 'ready', 'drain' and 'maint'.",
        ),
        (
            "set server test/webserver2 health bogus",
            "'set server <srv> health' expects 'up', 'stopping', or 'down'.",
        ),
        ("set server test/nope state ready", "No such server."),
        ("set server nope/x state ready", "No such backend."),
        ("set server test state ready", "Require 'backend/server'."),
        (
            "set server test/webserver2 agent up",
            "agent checks are not enabled on this server.",
        ),
        (
            "enable agent test/webserver2",
            "Agent was not configured on this server, cannot enable.",
        ),
        (
            "enable health test/webserver2",
            "Health check was not configured on this server, cannot enable.",
        ),
        (
            "set server test/webserver2 weight x",
            "Require <weight> or <weight%>.",
        ),
        ("set weight test/webserver2 7", ""),
        ("get weight test/webserver2", "7 (initial 1)"),
        (
            "set weight test/webserver2",
            "Require 'backend/server' and 'weight' or 'weight%'.",
        ),
        (
            "set server st/s1 weight 5",
            "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.",
        ),
        (
            "set server test/webserver1 addr",
            "set server test/webserver1 addr requires an address and optionally a port.",
        ),
        (
            "set server test/webserver1 addr not-an-ip",
            "Invalid addr 'not-an-ip'",
        ),
        (
            "set server test/webserver1 addr 127.0.0.2 port 29081",
            "IP changed from '127.0.0.1' to '127.0.0.2' by 'stats socket command'",
        ),
        (
            "set maxconn server test/webserver1 x",
            "'set maxconn server' expects an integer parameter.",
        ),
        ("set maxconn server test/webserver1 100", ""),
        ("get weight", "Require 'backend/server'."),
        ("show servers state nope", "Can't find backend."),
        ("show cli level", "admin"),
        ("echo hello world", "hello world"),
    ];
    for (cmd, want) in cases {
        let got = run(p.admin, cmd);
        let want = if want.is_empty() {
            String::new()
        } else {
            format!("{want}\n")
        };
        assert_eq!(got, want, "reply to {cmd:?}");
    }
    let unknown = socat(p.admin, "frobnicate");
    assert!(unknown.starts_with("Unknown command: 'frobnicate', but maybe one of the following ones is a better match:\n"), "{unknown}");
    assert!(unknown.ends_with("  prompt [help | n | i | p | timed ]*     : toggle interactive mode with prompt\n  quit                                    : disconnect\n\n"));
    let typo = run(p.admin, "show servers stat");
    assert!(typo.contains("show servers state [<backend>]"), "{typo}");
}

#[test]
fn show_info_and_stat_formats() {
    let (h, p) = start();
    let info = socat(p.admin, "show info");
    assert!(
        info.starts_with("Name: harp\nVersion: 0.1.0\nRelease_date: "),
        "{info}"
    );
    for f in [
        "Nbproc: 1\n",
        &format!("Pid: {}\n", h.pid()),
        "Maxconn: 9985\n",
        "Hard_maxconn: 9985\n",
        "CurrConns: 0\n",
        "Stopping: 0\n",
        "EventsDropped: 0\n",
    ] {
        assert!(info.contains(f), "{f:?} missing in {info}");
    }
    let names: Vec<&str> = info.lines().filter_map(|l| l.split(": ").next()).collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(
        pos("Uptime_sec") < pos("Ulimit-n")
            && pos("Idle_pct") < pos("node")
            && pos("CumStreams") < pos("BlockedTrafficWarnings")
    );

    let stat = socat(p.admin, "show stat");
    let lines: Vec<&str> = stat.lines().collect();
    assert!(lines[0].starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,"));
    assert!(lines[0].ends_with(",proto,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,ssl_ocsp_staple,ssl_failed_ocsp_staple,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,"));
    // The FRONTEND row is byte for byte HAProxy's.
    assert_eq!(lines[1], "fe,FRONTEND,,,0,0,9985,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,,,,,,,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,tcp,,0,0,0,,0,0,0,,,,,,,,,,,0,,,,,,,,,,0,0,0,0,0,0,0,0,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,");
    let ncols = lines[0].matches(',').count();
    for l in lines[1..].iter().filter(|l| !l.is_empty()) {
        assert_eq!(l.matches(',').count(), ncols, "{l}");
    }
    assert!(
        lines[3].starts_with("test,webserver2,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,1,1,0,,,"),
        "{}",
        lines[3]
    );
    assert!(
        lines[4].starts_with("test,BACKEND,0,0,0,0,999,0,0,0,0,0,,0,0,0,0,UP,2,2,0,,0,"),
        "{}",
        lines[4]
    );

    socat(p.admin, "set server test/webserver2 state maint");
    let typed = socat(p.admin, "show stat typed");
    for want in [
        "F.2.0.0.pxname.1:KNS:str:fe\n",
        "S.3.2.17.status.1:SGP:str:MAINT\n",
        "S.3.1.67.check_rise.1:CGS:u32:2\n",
        "B.3.0.76.algo.1:CGS:str:roundrobin\n",
        "B.3.0.19.act.1:MGP:u32:1\n",
        "S.3.1.113.ssl_sess.1:MCP:u64:0\n",
    ] {
        assert!(typed.contains(want), "{want:?} missing");
    }
    assert!(!typed.contains("S.3.2.67.check_rise"));
    let json = socat(p.admin, "show stat json");
    assert!(json.starts_with("[[{\"objType\":\"Frontend\",\"proxyId\":2,\"id\":0,\"field\":{\"pos\":0,\"name\":\"pxname\"},\"processNum\":1,\"tags\":{\"origin\":\"Key\",\"nature\":\"Name\",\"scope\":\"Service\"},\"value\":{\"type\":\"str\",\"value\":\"fe\"}}"), "{}", &json[..200]);
    // Filters: servers of proxy 3 only; no-maint hides webserver2.
    let f = socat(p.admin, "show stat 3 4 -1");
    assert_eq!(f.lines().filter(|l| !l.is_empty()).count(), 3, "{f}");
    let nm = socat(p.admin, "show stat no-maint");
    assert!(!nm.contains("webserver2") && nm.contains("webserver1"));
    let ti = socat(p.admin, "show info typed");
    assert!(
        ti.starts_with("0.Name.1:POS:str:harp\n1.Version.1:POS:str:0.1.0\n"),
        "{ti}"
    );
}

#[test]
fn dynamic_servers_add_enable_disable_del() {
    let (h, p) = start();
    assert_eq!(
        run(p.admin, "add server test/dyn 127.0.0.1:29083"),
        "New server registered.\n"
    );
    assert_eq!(
        run(p.admin, "add server test/dyn 127.0.0.1:29083"),
        "Already exists a server with the same name in backend.\n"
    );
    assert_eq!(
        head(&state_line(p.admin, "dyn")),
        "3 test 3 dyn 127.0.0.1 0 1 1 1"
    );
    assert!(state_line(p.admin, "dyn").ends_with(" - 29083 - 0 0 - - 0"));
    assert_eq!(
        run(p.admin, "del server test/webserver1"),
        "Only servers in maintenance mode can be deleted.\n"
    );
    assert_eq!(run(p.admin, "enable server test/dyn"), "");
    assert_eq!(
        head(&state_line(p.admin, "dyn")),
        "3 test 3 dyn 127.0.0.1 2 0 1 1"
    );
    assert!(socat(p.admin, "show stat").contains("\ntest,dyn,"));
    assert_eq!(
        run(p.admin, "del server test/dyn"),
        "Only servers in maintenance mode can be deleted.\n"
    );
    assert_eq!(run(p.admin, "disable server test/dyn"), "");
    assert_eq!(run(p.admin, "del server test/dyn"), "Server deleted.\n");
    assert_eq!(state_line(p.admin, "dyn"), "");
    assert_eq!(run(p.admin, "get weight test/dyn"), "No such server.\n");
    let pid = h.pid();
    for want in [
        format!("[NOTICE]   ({pid}) : CLI : 'server test/dyn' : New server registered."),
        format!("[ALERT]    ({pid}) : CLI : 'server test/dyn' : Already exists a server with the same name in backend."),
        format!("[WARNING]  ({pid}) : Server test/dyn is UP/READY (leaving forced maintenance)."),
        format!("[NOTICE]   ({pid}) : CLI : Server deleted."),
    ] {
        assert!(h.wait_log(&want), "missing {want:?} in:\n{}", h.stderr());
    }
    // A re-added name gets a new revision id (srid) and a fresh server with keywords.
    assert_eq!(
        run(
            p.admin,
            "add server test/dyn 127.0.0.1:29084 weight 20 check"
        ),
        "New server registered.\n"
    );
    assert_eq!(run(p.admin, "get weight test/dyn"), "20 (initial 20)\n");
    assert_eq!(run(p.admin, "enable health test/dyn"), "");
    let typed = socat(p.admin, "show stat typed");
    assert!(typed.contains("S.3.3.103.srid.1:MCP:u32:1\n"), "srid");
    // Errors.
    assert_eq!(
        run(p.admin, "add server st/x 127.0.0.1:1"),
        "Backend must use a dynamic load balancing to support dynamic servers.\n"
    );
    assert_eq!(
        run(p.admin, "add server nope/x 127.0.0.1:1"),
        "No such backend.\n"
    );
    assert_eq!(
        run(p.admin, "add server test"),
        "Require 'backend/server'.\n"
    );
    assert!(!run(p.admin, "add server test/y").is_empty());
    assert!(!run(p.admin, "add server test/y 127.0.0.1:1 bogus-keyword").is_empty());
    assert_eq!(run(p.admin, "del server test/nope"), "No such server.\n");
    let kw = run(p.admin, "add server help");
    assert!(
        kw.starts_with("List of keywords supported for dynamic server:\n")
            && kw.contains("\nweight\n")
    );
    assert_eq!(run(p.admin, "shutdown sessions server test/webserver1"), "");
}

#[test]
fn levels_and_sessions() {
    let (_h, p) = start();
    assert_eq!(run(p.user, "show cli level"), "user\n");
    assert_eq!(
        run(p.user, "set server test/webserver2 state maint"),
        "Permission denied\n"
    );
    assert_eq!(
        run(p.user, "add server test/x 127.0.0.1:1"),
        "Permission denied\n"
    );
    assert_eq!(run(p.user, "operator"), "Permission denied\n");
    assert!(run(p.user, "show stat").starts_with("# pxname,"));
    assert_eq!(
        head(&state_line(p.admin, "webserver2")),
        "3 test 2 webserver2 127.0.0.1 2 0 1 1"
    );
    // Lowering the level within one line, several commands separated by ';'.
    assert_eq!(
        run(p.admin, "show cli level; operator; show cli level;user;show cli level; set weight test/webserver2 3"),
        "admin\n\n\noperator\n\n\nuser\n\nPermission denied\n"
    );
    // Interactive mode: prompt, commands, quit.
    let mut s = TcpStream::connect(("127.0.0.1", p.admin)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"prompt\nshow cli level\necho a\\;b\nquit\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(out, "\n> admin\n\n> a;b\n\n> ");
    // The unix socket, with its mode, through socat.
    let sock = _h.path("admin.sock");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = std::process::Command::new("socat")
        .arg("-")
        .arg(format!("unix-connect:{}", sock.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(b"get weight test/webserver1\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 (initial 1)\n\n");
}

#[test]
fn bad_input_never_hurts() {
    let (h, p) = start();
    // A 1 MiB line without newline: error reply, then the connection closes.
    let mut s = TcpStream::connect(("127.0.0.1", p.admin)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let big = vec![b'a'; 1 << 20];
    let _ = s.write_all(&big);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        String::from_utf8_lossy(&out).starts_with("Command line too long."),
        "{:?}",
        String::from_utf8_lossy(&out[..out.len().min(100)])
    );
    // Binary garbage: an Unknown command reply.
    let mut s = TcpStream::connect(("127.0.0.1", p.admin)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"\x00\xff\xfe\x01\x02garbage\x7f\x80\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("Unknown command: '"));
    // A client that sends many commands and never reads: it only holds its own session.
    let mut hog = TcpStream::connect(("127.0.0.1", p.admin)).unwrap();
    hog.write_all(b"prompt\n").unwrap();
    let flood = "show stat\n".repeat(2000);
    hog.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = hog.write_all(flood.as_bytes());
    let t0 = Instant::now();
    assert_eq!(
        run(p.admin, "get weight test/webserver1"),
        "1 (initial 1)\n"
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    // A client that connects and says nothing is dropped after `stats timeout` (2s).
    let mut idle = TcpStream::connect(("127.0.0.1", p.admin)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t0 = Instant::now();
    let mut b = [0u8; 16];
    assert_eq!(idle.read(&mut b).unwrap_or(0), 0);
    assert!(t0.elapsed() < Duration::from_secs(8));
    // 1,000 concurrent connections, each gets its reply in bounded time.
    let t0 = Instant::now();
    let mut conns: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", p.admin)).expect("connect");
            c.write_all(b"show cli level\n").unwrap();
            c
        })
        .collect();
    for c in conns.iter_mut() {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        assert_eq!(out, "admin\n\n");
    }
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    drop(hog);
    // Still alive and serving.
    assert_eq!(run(p.admin, "show cli level"), "admin\n");
    assert!(!h.stderr().contains("panicked"));
}
