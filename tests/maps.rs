//! Map files end to end: the real binary routing TLS by a map of server names through a
//! dynamic `use_backend`, with the operator changing the map live through `socat` (`add map`,
//! `set map`, `del map`, a payload), `show map` / `get map` replies as HAProxy's, and `harp -c`
//! naming a bad map line.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{free_port, socat, write_file, Harp};
use harp::rules::hello::sample_client_hello;

/// A server that names itself (`<name>\n`) on each connection, then closes.
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

/// Sends a ClientHello for `sni` and returns the name of the server that answered.
fn route(port: u16, sni: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    c.write_all(&sample_client_hello(sni)).expect("send");
    let mut got = String::new();
    let _ = c.read_to_string(&mut got);
    got.trim_end().to_string()
}

/// harp routing TLS by server name: three named upstreams behind `be_api`, `be_www` and
/// `be_default`, a frontend whose `use_backend` line is `use_backend` (after an accept rule
/// that waits for the ClientHello), `sni.map` holding `map`, `files` written beside it,
/// `global` lines added, and a stats socket. Returns harp, the frontend's port and the
/// socket's.
fn sni_router(
    map: &str,
    use_backend: &str,
    global: &str,
    files: &[(&str, &str)],
) -> (Harp, u16, u16) {
    let (api_up, www_up, def_up) = (
        named_upstream("api"),
        named_upstream("www"),
        named_upstream("default"),
    );
    let (port, api) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    write_file(dir.path(), "sni.map", map);
    for (name, text) in files {
        write_file(dir.path(), name, text);
    }
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n{global}\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    tcp-request inspect-delay 3s\n\
         \x20   tcp-request content accept if {{ req.ssl_hello_type 1 }}\n\
         \x20   {use_backend}\n\
         \x20   default_backend be_default\n\
         backend be_api\n    server a 127.0.0.1:{api_up}\n\
         backend be_www\n    server w 127.0.0.1:{www_up}\n\
         backend be_default\n    server d 127.0.0.1:{def_up}\n"
    );
    let mut h = Harp::spawn_in(dir, &cfg, &[]);
    h.wait_port(port);
    h.wait_port(api);
    (h, port, api)
}

#[test]
fn a_map_routes_tls_and_the_runtime_api_changes_it_live() {
    let (h, port, api) = sni_router(
        "# server name -> backend\napi.example.com   be_api\n",
        "use_backend %[req.ssl_sni,lower,map(sni.map,be_default)]",
        "",
        &[],
    );
    assert_eq!(route(port, "API.example.com"), "api", "lower, then the map");
    assert_eq!(
        route(port, "www.example.com"),
        "default",
        "the map's default"
    );

    // the anonymous ACL of the accept rule took id 0 (HAProxy 2.6 gives its internal
    // httpclient's ACLs the next ones before a dynamic use_backend's map: ids may differ)
    let cfg_path = h.path("harp.cfg").display().to_string();
    let listing = socat(api, "show map");
    let (id, rest) = listing
        .strip_prefix("# id (file) description\n")
        .and_then(|l| l.split_once(' '))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(id.parse::<u32>().is_ok_and(|i| i > 0), "{listing}");
    assert_eq!(
        rest,
        format!("(sni.map) pattern loaded from file 'sni.map' used by map at file '{cfg_path}' line 12. curr_ver=0 next_ver=0 entry_cnt=1\n\n")
    );
    let id = format!("#{id}");
    assert_eq!(socat(api, "add map sni.map www.example.com be_www"), "\n");
    assert_eq!(route(port, "www.example.com"), "www");
    assert_eq!(
        socat(api, &format!("set map {id} www.example.com be_api")),
        "\n"
    );
    assert_eq!(route(port, "www.example.com"), "api");
    assert_eq!(
        socat(api, "get map sni.map www.example.com"),
        "type=str, case=sensitive, found=yes, idx=tree, key=\"www.example.com\", value=\"be_api\", type=\"str\"\n\n"
    );
    assert_eq!(socat(api, "del map sni.map www.example.com"), "\n");
    assert_eq!(route(port, "www.example.com"), "default");
    // a name no backend has falls back to default_backend, as in HAProxy
    assert_eq!(socat(api, "add map sni.map x.example.com be_nosuch"), "\n");
    assert_eq!(route(port, "x.example.com"), "default");

    // several entries at once, as a payload
    assert_eq!(
        socat(
            api,
            "add map sni.map <<\nwww.example.com be_www\nold.example.com be_api\n"
        ),
        "\n"
    );
    assert_eq!(route(port, "old.example.com"), "api");
    let entries = socat(api, "show map sni.map");
    let keys: Vec<String> = entries
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (handle, rest) = l.split_once(' ').expect("handle and entry");
            assert!(handle.starts_with("0x"), "{l}");
            rest.to_string()
        })
        .collect();
    assert_eq!(
        keys,
        [
            "api.example.com be_api",
            "x.example.com be_nosuch",
            "www.example.com be_www",
            "old.example.com be_api",
        ]
    );

    // bad input gets HAProxy's replies, and the socket stays usable
    assert_eq!(
        socat(api, "set map sni.map nope.example.com be_www"),
        "entry not found.\n\n"
    );
    assert_eq!(
        socat(api, "add map sni.map k"),
        "'add map' expects three parameters (map identifier, key and value) or one parameter (map identifier) and a payload\n\n"
    );
    assert_eq!(
        socat(api, "show map nosuch.map"),
        "Unknown map identifier. Please use #<id> or <file>.\n\n"
    );
    assert_eq!(
        socat(api, &format!("show acl {id}")),
        "Unknown ACL identifier. Please use #<id> or <file>.\n\n"
    );
    assert_eq!(socat(api, &format!("clear map {id}")), "\n");
    assert_eq!(route(port, "api.example.com"), "default");
}

#[test]
fn harp_check_names_the_bad_map_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_file(dir.path(), "ports.map", "80 1\n443 two\n");
    let cfg = write_file(
        dir.path(),
        "bad.cfg",
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:8\n\
         \x20   tcp-request connection reject if { dst_port,map_int_int(ports.map,0) gt 1 }\n\
         \x20   default_backend be\n\
         backend be\n    server s 127.0.0.1:1\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_harp"))
        .args(["-c", "-f"])
        .arg(&cfg)
        .current_dir(dir.path())
        .output()
        .expect("run harp -c");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:8]", cfg.display()))
            && stderr.contains("invalid args in converter 'map_int_int' : unable to parse 'two' at line 2 of file 'ports.map'"),
        "{stderr}"
    );
}

#[test]
fn lua_scripts_read_and_change_a_map_through_its_patref() {
    let script = r#"
local ref = core.get_patref("sni.map")
local seen = {}
ref:event_sub({"PAT_REF_SET", "PAT_REF_ADD", "PAT_REF_COMMIT"}, function(ev)
    seen[#seen + 1] = ev
end)
core.register_cli({"m", "read"}, "read the map", function(applet)
    applet:send(string.format("%s %s %s\n", tostring(ref:is_map()),
        tostring(ref["api.example.com"]), tostring(ref["nope"])))
end)
core.register_cli({"m", "swap"}, "send api to www", function(applet)
    ref:set("api.example.com", "be_www")
    local ok, err = pcall(ref.set, ref, "new.example.com", "be_www")
    ref:set("new.example.com", "be_api", true)
    ref:add_bulk({["bulk.example.com"] = "be_www"})
    applet:send(tostring(ok) .. " " .. tostring(err) .. "\n")
end)
core.register_cli({"m", "replace"}, "a new version", function(applet)
    ref:prepare()
    ref:add("only.example.com", "be_api")
    ref:commit()
    applet:send(tostring(ref["api.example.com"]) .. "\n")
end)
core.register_cli({"m", "seen"}, "events heard", function(applet)
    applet:send(table.concat(seen, ",") .. "\n")
end)
"#;
    let (h, port, api) = sni_router(
        "api.example.com be_api\n",
        "use_backend %[req.ssl_sni,map(sni.map,be_default)]",
        "    lua-load maps.lua\n",
        &[("maps.lua", script)],
    );
    assert_eq!(socat(api, "m read"), "true be_api nil\n\n");
    assert_eq!(socat(api, "m swap"), "false entry not found\n\n");
    assert_eq!(route(port, "api.example.com"), "www");
    assert_eq!(route(port, "new.example.com"), "api", "a forced set adds");
    assert_eq!(route(port, "bulk.example.com"), "www");
    assert_eq!(socat(api, "m replace"), "nil\n\n");
    // the script's version is the Runtime API's too
    assert!(socat(api, "show map").contains("curr_ver=1 next_ver=1 "));
    assert_eq!(route(port, "api.example.com"), "default");
    assert_eq!(route(port, "only.example.com"), "api");
    let want = "PAT_REF_SET,PAT_REF_ADD,PAT_REF_ADD,PAT_REF_COMMIT\n\n";
    assert!(
        common::wait_until(Duration::from_secs(10), || socat(api, "m seen") == want),
        "{} / {}",
        socat(api, "m seen"),
        h.stderr()
    );
}

#[test]
fn a_prepared_version_replaces_the_map_at_its_commit() {
    let (_h, port, api) = sni_router(
        "api.example.com be_api\nold.example.com be_api\n",
        "use_backend %[req.ssl_sni,map(sni.map,be_default)]",
        "",
        &[],
    );
    assert_eq!(
        socat(api, "prepare map sni.map"),
        "New version created: 1\n\n"
    );
    assert_eq!(
        socat(api, "add map @1 sni.map api.example.com be_www"),
        "\n"
    );
    assert_eq!(
        socat(api, "add map @2 sni.map api.example.com be_www"),
        "Version number in the future, please use 'prepare map' before.\n\n"
    );
    // nothing changes before the commit
    assert_eq!(route(port, "api.example.com"), "api");
    let shown = socat(api, "show map @1 sni.map");
    assert!(shown.ends_with(" api.example.com be_www\n\n"), "{shown}");
    assert!(socat(api, "show map").contains("curr_ver=0 next_ver=1 "));
    assert_eq!(
        socat(api, "commit map sni.map"),
        "Missing version number.\n\n"
    );
    assert_eq!(
        socat(api, "commit map @2 sni.map"),
        "Version number out of range.\n\n"
    );
    assert_eq!(socat(api, "commit map @1 sni.map"), "\n");
    // the whole list switched at once: the new entry, and the old ones gone
    assert_eq!(route(port, "api.example.com"), "www");
    assert_eq!(route(port, "old.example.com"), "default");
    assert!(socat(api, "show map").contains("curr_ver=1 next_ver=1 "));
    assert_eq!(
        socat(api, "commit map @1 sni.map"),
        "Version number out of range.\n\n"
    );
}

#[test]
fn converters_build_backend_names_from_the_server_name() {
    let (api_up, www_up, def_up) = (
        named_upstream("api"),
        named_upstream("www"),
        named_upstream("default"),
    );
    let (p1, p2) = (free_port(), free_port());
    // the second frontend's regex holds parentheses and a comma: quoted, as HAProxy's
    // documentation writes regsub's arguments
    let cfg = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend by_field\n    bind 127.0.0.1:{p1}\n    tcp-request inspect-delay 3s\n\
         \x20   tcp-request content accept if {{ req.ssl_hello_type 1 }}\n\
         \x20   use_backend be_%[req.ssl_sni,lower,field(1,.)]\n\
         \x20   default_backend be_default\n\
         frontend by_regsub\n    bind 127.0.0.1:{p2}\n    tcp-request inspect-delay 3s\n\
         \x20   tcp-request content accept if {{ req.ssl_hello_type 1 }}\n\
         \x20   use_backend '%[req.ssl_sni,regsub(\"^([a-z]{{1,3}})\\.(.*)$\",\"be_\\1\")]'\n\
         \x20   default_backend be_default\n\
         backend be_api\n    server a 127.0.0.1:{api_up}\n\
         backend be_www\n    server w 127.0.0.1:{www_up}\n\
         backend be_default\n    server d 127.0.0.1:{def_up}\n"
    );
    let mut h = Harp::spawn(&cfg, &[]);
    h.wait_port(p1);
    h.wait_port(p2);
    assert_eq!(route(p1, "API.example.com"), "api");
    assert_eq!(route(p1, "www.example.com"), "www");
    assert_eq!(route(p1, "mail.example.com"), "default", "no be_mail");
    assert_eq!(route(p2, "www.example.com"), "www");
    assert_eq!(route(p2, "api.example.com"), "api");
    assert_eq!(
        route(p2, "mail.example.com"),
        "default",
        "4 letters: no match, be_mail.example.com"
    );
}

#[test]
fn lua_map_objects_look_keys_up_as_haproxy_s() {
    let api = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    write_file(dir.path(), "sni.map", "api.example.com be_api\n80 http\n");
    write_file(
        dir.path(),
        "lmap.lua",
        r#"
local m = Map.new("sni.map", Map._str)
local b = Map.new("sni.map", Map.beg)
local ok1, err1 = pcall(Map.new, "nofile.map")
local ok2, err2 = pcall(Map.new, "sni.map", 99)
local ok3, err3 = pcall(Map.new, "sni.map", Map._found)
local later = "not yet"
core.register_task(function()
    local ok, e = pcall(Map.new, "sni.map")
    later = e
end)
core.register_cli({"m", "look"}, "map lookups", function(applet)
    applet:send(table.concat({tostring(m:lookup("api.example.com")), tostring(m:lookup("x")),
        "[" .. m:slookup("x") .. "]", tostring(b:lookup("api.example.com.evil")),
        err1, err2, err3, tostring(later), tostring(Map._str), tostring(Map.regm)}, "|") .. "\n")
end)
"#,
    );
    let cfg = format!(
        "global\n    stats socket 127.0.0.1:{api} level admin\n    lua-load lmap.lua\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         listen li\n    bind 127.0.0.1:0\n    server s 127.0.0.1:1\n"
    );
    let mut h = Harp::spawn_in(
        dir,
        &cfg.replace(":0\n", &format!(":{}\n", free_port())),
        &[],
    );
    h.wait_port(api);
    let want = "be_api|nil|[]|be_api|'new': failed to open pattern file <nofile.map>.|\
                'new' needs a valid match method.|'new' doesn't support this match mode.|\
                'new': map: cannot load map at runtime.|6|13\n\n";
    assert!(
        common::wait_until(Duration::from_secs(10), || socat(api, "m look") == want),
        "{} / {}",
        socat(api, "m look"),
        h.stderr()
    );
}
