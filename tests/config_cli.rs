//! `harp -c -f ...` and `harp -v/-vv` through the real binary: exit codes and the exact
//! HAProxy-style `[ALERT] parsing [file:line] : ...` lines operators see.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn harp(args: &[&str]) -> Run {
    harp_in(Path::new("."), args)
}

/// Runs harp in `dir` (`lua-load` paths are relative to the working directory, as in HAProxy).
fn harp_in(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_harp"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run harp");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `harp -c -f path`, run in the directory holding `path`.
fn check(path: &Path) -> Run {
    let dir = path
        .parent()
        .filter(|d| d.is_dir())
        .unwrap_or(Path::new("."));
    harp_in(dir, &["-c", "-f", path.to_str().expect("utf-8 path")])
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write config");
    p
}

/// Checks `text` and expects exit 1 with exactly this alert for `line` (`{file}` in `message`
/// stands for the config path).
fn refused(text: &str, line: usize, message: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "bad.cfg", text);
    let r = check(&p);
    assert_eq!(r.code, 1, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let file = p.display().to_string();
    let want = format!(
        "[ALERT] parsing [{file}:{line}] : {}",
        message.replace("{file}", &file)
    );
    assert!(
        r.stderr.lines().any(|l| l == want),
        "want line:\n{want}\ngot stderr:\n{}",
        r.stderr
    );
    assert!(
        r.stderr
            .ends_with("[ALERT] config : Fatal errors found in configuration.\n"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("valid"));
}

/// The configuration of the seed article, with its elided addresses filled with local ports.
const SEED: &str = "\
global
    stats socket ipv4@127.0.0.1:9999 level admin
    lua-load backend_down_webhook.lua
    # by default, the httpclient DNS resolver will use the IPv6 address,
    # this changes it to prefer IPv4
    httpclient.resolvers.prefer ipv4

defaults
    timeout connect 5s
    timeout server 5s
    timeout client 5s

resolvers default
    # we need to define a default resolver section
    # for the httpclient in order to resolve hostnames in the URL
    nameserver ns1 127.0.0.1:53

backend test
    server webserver1 127.0.0.1:8081
    server webserver2 127.0.0.1:8082
";

#[test]
fn seed_article_config_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "haproxy.cfg", SEED);
    write(
        dir.path(),
        "backend_down_webhook.lua",
        "-- the article's script\n",
    );
    let r = check(&p);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Configuration file is valid\n");
    assert_eq!(r.stderr, "");
}

/// Every keyword harp supports, in one file.
const EVERYTHING: &str = r#"
global
    nbthread 2
    maxconn 10000
    stats socket ipv4@127.0.0.1:9999 level admin
    stats socket unix@/tmp/harp-test.sock mode 600 level operator user root group root
    stats timeout 30s
    lua-load mailers.lua arg1 "arg two"
    lua-load-per-thread per_thread.lua
    lua-prepend-path /usr/share/lua/5.4/?.lua
    lua-prepend-path /usr/lib/lua/5.4/?.so cpath
    tune.lua.maxmem 64
    tune.lua.forced-yield 10000
    tune.lua.task-timeout 10s
    tune.lua.burst-timeout 1000
    tune.lua.session-timeout 4s
    tune.lua.service-timeout 4s
    tune.lua.log.loggers on
    tune.lua.log.stderr auto
    tune.lua.bool-sample-conversion normal
    httpclient.resolvers.id dns
    httpclient.resolvers.prefer ipv4
    httpclient.resolvers.disabled off
    httpclient.retries 3
    httpclient.timeout.connect 5s
    httpclient.ssl.ca-file /etc/ssl/certs/ca-certificates.crt
    httpclient.ssl.verify required
    log stdout format raw local0
    log 127.0.0.1:514 local1 notice
    pidfile /tmp/harp-test.pid
    hard-stop-after 30s
    spread-checks 5
    node lb1

defaults base
    mode tcp
    log global
    option tcplog
    option abortonclose
    option dontlognull
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout queue 10s
    timeout check 2s
    timeout tunnel 1h
    timeout client-fin 1s
    timeout server-fin 1s
    retries 3
    option redispatch
    default-server inter 2s fastinter 500ms downinter 5s rise 2 fall 3

mailers alerts
    mailer smtp1 127.0.0.1:2525
    timeout mail 20s

resolvers dns
    nameserver ns1 127.0.0.1:53
    nameserver ns2 127.0.0.1

frontend fe from base
    bind 127.0.0.1:8000,127.0.0.1:8001
    bind ipv4@127.0.0.1:8002
    backlog 1024
    maxconn 5000
    default_backend be
    id 10

backend be from base
    balance leastconn
    hash-type consistent
    fullconn 1000
    option allbackups
    option splice-auto
    option httpchk GET /health HTTP/1.1
    http-check send hdr Host example.com
    http-check expect status 200
    option log-health-checks
    email-alert mailers alerts
    email-alert from lb@example.com
    email-alert to ops@example.com
    email-alert level alert
    email-alert myhostname lb1
    server s1 127.0.0.1:8081 check weight 10 maxconn 100 maxqueue 10 slowstart 10s id 5
    server s2 127.0.0.1:8082 check port 9082 addr 127.0.0.1 on-marked-down shutdown-sessions
    server s3 127.0.0.1:8083 backup disabled

listen tcp-listen from base
    bind :8100
    balance static-rr
    no option splice-auto
    option tcp-check
    server a 127.0.0.1:9001 check
    server b 127.0.0.1:9002 weight 256

backend others
    balance first
    timeout connect 1s
    timeout server 1s
    server x 127.0.0.1:1

backend src
    balance source
    timeout connect 1s
    timeout server 1s

backend rnd
    balance random
    timeout connect 1s
    timeout server 1s
    disabled
"#;

#[test]
fn every_supported_keyword_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "all.cfg", EVERYTHING);
    write(dir.path(), "mailers.lua", "");
    write(dir.path(), "per_thread.lua", "");
    let r = check(&p);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Configuration file is valid\n");
    // `option abortonclose` is accepted with a warning citing its line.
    assert!(
        r.stderr.contains(&format!(
            "[WARNING] parsing [{}:39] : 'option abortonclose' has no effect",
            p.display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn quiet_check_prints_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "all.cfg", EVERYTHING);
    write(dir.path(), "mailers.lua", "");
    write(dir.path(), "per_thread.lua", "");
    let r = harp_in(dir.path(), &["-c", "-q", "-f", p.to_str().expect("utf-8")]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("nope.cfg");
    let r = check(&p);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!(
            "[ALERT] config : Could not open configuration file {} : No such file or directory",
            p.display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn unreadable_file() {
    // Tests usually run as root, for whom `chmod 000` changes nothing; a path that goes
    // through a regular file cannot be opened by anyone.
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "plain", "x");
    let p = f.join("harp.cfg");
    let r = check(&p);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!(
            "[ALERT] config : Could not open configuration file {} : Not a directory",
            p.display()
        )),
        "{}",
        r.stderr
    );
    if !rustix::process::geteuid().is_root() {
        use std::os::unix::fs::PermissionsExt;
        let p = write(dir.path(), "secret.cfg", "global\n");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        let r = check(&p);
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
    }
}

#[test]
fn directory_without_cfg_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "notes.txt", "global\n");
    let r = check(dir.path());
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!(
            "[ALERT] config : no *.cfg configuration file found in directory {}",
            dir.path().display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn directory_loads_cfg_files_in_lexical_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "20-fe.cfg",
        "frontend fe\n bind 127.0.0.1:8000\n default_backend be\n",
    );
    write(
        dir.path(),
        "10-defaults.cfg",
        "defaults\n timeout connect 1s\n timeout client 1s\n timeout server 1s\n",
    );
    write(
        dir.path(),
        "30-be.cfg",
        "backend be\n server s 127.0.0.1:1\n",
    );
    write(dir.path(), "99-broken.cfg.bak", "this is not read\n");
    let r = check(dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "", "the defaults file came first");
    // An error inside a directory names the file.
    let bad = write(
        dir.path(),
        "40-bad.cfg",
        "backend x\n sevrer s 127.0.0.1:1\n",
    );
    let r = check(dir.path());
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!(
            "[ALERT] parsing [{}:2] : unknown keyword 'sevrer'",
            bad.display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn several_files_with_f() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(
        dir.path(),
        "a.cfg",
        "defaults\n timeout connect 1s\n timeout server 1s\nbackend be\n",
    );
    let b = write(dir.path(), "b.cfg", "backend be2\n");
    let r = harp(&[
        "-c",
        "-f",
        a.to_str().expect("utf-8"),
        "-f",
        b.to_str().expect("utf-8"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn port_out_of_range() {
    refused(
        "frontend fe\n    bind 127.0.0.1:70000\n",
        2,
        "invalid port '70000' in '127.0.0.1:70000' for 'bind' (must be between 1 and 65535)",
    );
    refused(
        "backend be\n    server s1 127.0.0.1:0\n",
        2,
        "'server s1' : invalid port '0' in '127.0.0.1:0' for 'server' (must be between 1 and 65535)",
    );
}

#[test]
fn bind_without_port() {
    refused(
        "frontend fe\n    bind 127.0.0.1\n",
        2,
        "missing port in '127.0.0.1' for 'bind' (expects <address>:<port>)",
    );
}

#[test]
fn server_without_address() {
    refused(
        "backend be\n    server s1\n",
        2,
        "'server s1' : missing address (expects <address>:<port>).",
    );
}

#[test]
fn negative_time() {
    refused(
        "defaults\n    timeout connect -5s\n",
        2,
        "unexpected character '-' in 'timeout connect' (argument '-5s'; expects a positive time such as 5s or 300ms, units us, ms, s, m, h, d)",
    );
}

#[test]
fn absurd_time() {
    refused(
        "defaults\n    timeout client 30d\n",
        2,
        "timer overflow in argument '30d' to 'timeout client' (maximum value is 2147483647 ms or ~24.8 days)",
    );
}

#[test]
fn unknown_default_backend() {
    refused(
        "frontend fe\n    bind 127.0.0.1:8000\n    default_backend nope\n",
        3,
        "Proxy 'fe': unable to find required default_backend: 'nope'.",
    );
}

#[test]
fn duplicate_server() {
    refused(
        "backend be\n    server s1 127.0.0.1:8001\n    server s1 127.0.0.1:8002\n",
        3,
        "backend 'be' has the same server name 's1' as another server declared at {file}:2.",
    );
}

#[test]
fn unknown_keyword_with_suggestion() {
    refused(
        "backend be\n    sevrer s1 127.0.0.1:8001\n",
        2,
        "unknown keyword 'sevrer' in 'backend' section; did you mean 'server'?",
    );
}

#[test]
fn mode_http_is_refused() {
    refused(
        "backend be\n    mode http\n",
        2,
        "'mode http' is not supported yet by harp (only 'mode tcp', and a statistics page without servers).",
    );
    // from defaults: refused at the proxy left in it, naming where the mode was set
    refused(
        "defaults\n    mode http\nbackend be\n    server s1 127.0.0.1:8001\n",
        3,
        "backend 'be' is in 'mode http', taken from its defaults section (set at [{file}:2]), which harp does not support yet: add 'mode tcp' to it.",
    );
}

/// The official kubeadm HA configuration: `mode http` (and HTTP options) in `defaults`, every
/// proxy in `mode tcp`. HAProxy 2.6 accepts it with two warnings, the same as harp's.
#[test]
fn mode_http_defaults_with_tcp_proxies_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        dir.path(),
        "kubeadm.cfg",
        "defaults\n    mode http\n    option httplog\n    option dontlognull\n    option http-server-close\n\
         \x20   option forwardfor except 127.0.0.0/8\n    timeout http-request 10s\n    timeout connect 5s\n\
         \x20   timeout client 20s\n    timeout server 20s\n    timeout http-keep-alive 10s\n\
         frontend apiserver\n    bind 127.0.0.1:8443\n    mode tcp\n    option tcplog\n    default_backend apiserverbackend\n\
         backend apiserverbackend\n    option httpchk GET /healthz\n    http-check expect status 200\n    mode tcp\n\
         \x20   option ssl-hello-chk\n    balance roundrobin\n    server cp1 127.0.0.1:6443 check\n",
    );
    let r = check(&p);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    for want in [
        "'option forwardfor' ignored for frontend 'apiserver' as it requires HTTP mode.",
        "'option forwardfor' ignored for backend 'apiserverbackend' as it requires HTTP mode.",
    ] {
        assert!(r.stderr.contains(want), "{want}\n{}", r.stderr);
    }
    assert!(!r.stderr.contains("httplog"), "{}", r.stderr);
}

#[test]
fn weight_out_of_range() {
    refused(
        "backend be\n    server s1 127.0.0.1:8001 weight 300\n",
        2,
        "'server s1' : 'weight' expects an integer between 0 and 256, got '300'",
    );
}

#[test]
fn all_errors_of_a_file_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        dir.path(),
        "many.cfg",
        "global\n    nbthred 2\ndefaults\n    timeout connect -1\nbackend be\n    sevrer s1 127.0.0.1:1\n    server s2 127.0.0.1:99999\nfrontend fe\n    bind :80\n    default_backend nope\n",
    );
    let r = check(&p);
    assert_eq!(r.code, 1);
    let alerts: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("[ALERT] parsing ["))
        .collect();
    let lines: Vec<String> = alerts
        .iter()
        .map(|l| {
            l.split(" : ")
                .next()
                .unwrap_or("")
                .rsplit(':')
                .next()
                .unwrap_or("")
                .trim_end_matches(']')
                .to_string()
        })
        .collect();
    assert_eq!(lines, ["2", "4", "6", "7", "10"], "{}", r.stderr);
}

#[test]
fn missing_lua_script() {
    refused(
        "global\n    lua-load nope.lua\n",
        2,
        "lua-load: failed to load Lua script 'nope.lua': cannot open nope.lua: No such file or directory",
    );
}

#[test]
fn version_flags() {
    let r = harp(&["-v"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("harp version 0.1.0"), "{}", r.stdout);
    assert!(!r.stdout.contains("Lua"));
    let r = harp(&["-vv"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("Built with Lua version : Lua 5.4")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.lines().any(|l| l.starts_with("io_uring : ")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.lines().any(|l| l.starts_with("splice : ")),
        "{}",
        r.stdout
    );
}

#[test]
fn no_config_is_a_usage_error() {
    let r = harp(&["-c"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("No configuration file specified"),
        "{}",
        r.stderr
    );
}

#[test]
fn tune_lua_nice_is_checked() {
    for v in ["19", "0", "-5", "idle"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(
            dir.path(),
            "n.cfg",
            &format!("global\n    tune.lua.nice {v}\n"),
        );
        let r = check(&p);
        assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{v}");
    }
    refused(
        "global\n    tune.lua.nice 20\n",
        2,
        "'tune.lua.nice' expects a nice value between -20 and 19 or 'idle', got '20'.",
    );
}

/// `setenv` and friends act on the lines after them, as HAProxy reads its configuration;
/// `zero-warning` refuses a configuration that has warnings.
#[test]
fn setenv_and_zero_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ok = write(
        dir.path(),
        "env.cfg",
        "global\n    setenv HARP_TEST_PORT 18443\n    presetenv HARP_TEST_PORT 0\n    unsetenv HARP_TEST_NOPE\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\
         listen l\n    bind \"127.0.0.1:${HARP_TEST_PORT}\"\n    server s 127.0.0.1:1\n",
    );
    let r = check(&ok);
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let warned = write(
        dir.path(),
        "zero.cfg",
        "global\n    zero-warning\n    chroot /var/empty\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\
         listen l\n    bind 127.0.0.1:18444\n    server s 127.0.0.1:1\n",
    );
    let r = check(&warned);
    assert_eq!(r.code, 1, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("Some warnings were found and 'zero-warning' is set. Aborting."),
        "{}",
        r.stderr
    );
}

/// A refused configuration still shows its warnings (HAProxy prints both), so one `harp -c`
/// run lists everything an operator must look at; `-q` keeps them quiet.
#[test]
fn refused_config_shows_its_warnings_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        dir.path(),
        "both.cfg",
        "global\n    chroot /var/empty\n    bogus-kw 1\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\
         listen l\n    bind 127.0.0.1:18445\n    server s 127.0.0.1:1\n",
    );
    let r = check(&p);
    assert_eq!(r.code, 1, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let file = p.display().to_string();
    assert!(
        r.stderr
            .lines()
            .any(|l| l.starts_with(&format!("[WARNING] parsing [{file}:2] :"))),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "[ALERT] parsing [{file}:3] : unknown keyword 'bogus-kw' in 'global' section"
        )),
        "{}",
        r.stderr
    );
    let q = harp(&["-c", "-q", "-f", p.to_str().expect("utf-8 path")]);
    assert_eq!(q.code, 1);
    assert!(!q.stderr.contains("[WARNING]"), "{}", q.stderr);
}
