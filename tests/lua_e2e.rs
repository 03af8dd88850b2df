//! End-to-end: the real harp binary loading Lua scripts.
//!
//! The seed article's steps are driven from a helper Lua task (`Server:check_force_down()` and
//! `Server:set_maint()`, which go through the same state machine as the Runtime API) so this test
//! does not depend on the Runtime API; the shipped `backend_down_webhook.lua` runs unmodified.

mod common;
mod lua_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{free_port, write_file, Harp};
use lua_support::{wait_until, Smtp, Webhook};

fn repo(p: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .display()
        .to_string()
}

const DRIVER: &str = r#"
-- test helper: performs the seed article's two steps with a pause between them
core.Info("driver loaded")
core.register_task(function()
  core.msleep(300)
  core.backends["test"].servers["webserver1"]:check_force_down()
  core.msleep(500)
  core.backends["test"].servers["webserver2"]:set_maint()
end)
"#;

#[test]
fn seed_article_through_the_binary_posts_once() {
    let hook = Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    let driver = write_file(dir.path(), "driver.lua", DRIVER);
    let port = free_port();
    let cfg = format!(
        "global\n    lua-load {} test\n    lua-load {}\n    httpclient.resolvers.prefer ipv4\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout server 5s\n    timeout client 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend test\n\
         backend test\n    server webserver1 127.0.0.1:1\n    server webserver2 127.0.0.1:2\n",
        repo("lua/backend_down_webhook.lua"),
        driver.display()
    );
    let url = hook.url("/webhook");
    let h = Harp::spawn_in(dir, &cfg, &[("DEMO_WEBHOOK_URL", url.as_str())]);
    assert!(
        wait_until(Duration::from_secs(10), || hook.with_path("/webhook").len()
            == 1),
        "no webhook POST; harp stderr:\n{}",
        h.stderr()
    );
    std::thread::sleep(Duration::from_millis(500));
    let reqs = hook.with_path("/webhook");
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let compact: String = reqs[0].body.split_whitespace().collect();
    assert!(
        compact.starts_with("{\"type\":\"backend_down\",\"name\":\"test\",\"when\":\""),
        "{compact}"
    );
    let log = h.stderr();
    assert!(log.contains("Server test/webserver1 is DOWN"), "{log}");
    // core.Info on stderr as HAProxy prints Lua logs: "[info] ddd/hhmmss (pid) : msg"
    let line = log
        .lines()
        .find(|l| l.ends_with(" : driver loaded"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.starts_with("[info] "), "{line}");
    assert!(line.contains(&format!("({}) : ", h.pid())), "{line}");
}

#[test]
fn mailer_through_the_binary() {
    let smtp = Smtp::start();
    let dir = tempfile::tempdir().unwrap();
    let driver = write_file(
        dir.path(),
        "driver.lua",
        "core.register_task(function()\n core.msleep(300)\n local s = core.backends['app'].servers['app1']\n s:check_force_down()\n core.msleep(300)\n s:check_force_up()\nend)\n",
    );
    let port = free_port();
    let cfg = format!(
        "global\n    lua-load {}\n    lua-load {}\n\
         mailers mta\n    mailer smtp1 127.0.0.1:{}\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout server 5s\n    timeout client 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend app\n\
         backend app\n    email-alert mailers mta\n    email-alert from lb@example.com\n\
         \x20   email-alert to ops@example.com\n    email-alert level info\n\
         \x20   server app1 127.0.0.1:1\n    server app2 127.0.0.1:2\n",
        repo("lua/mailers.lua"),
        driver.display(),
        smtp.port
    );
    let h = Harp::spawn_in(dir, &cfg, &[]);
    assert!(
        wait_until(Duration::from_secs(10), || smtp.done().len() >= 2),
        "mails: {:?}\nstderr:\n{}",
        smtp.sessions.lock().unwrap(),
        h.stderr()
    );
    let s = smtp.done();
    assert!(
        s[0].iter().any(|l| l.contains("Server app/app1 is DOWN")),
        "{s:?}"
    );
    assert!(
        s[1].iter().any(|l| l.contains("Server app/app1 is UP")),
        "{s:?}"
    );
    for sess in &s {
        assert!(sess[0].starts_with("HELO "), "{sess:?}");
        assert_eq!(sess.last().map(String::as_str), Some("QUIT"));
    }
}

#[test]
fn syntax_error_fails_check_and_start_with_file_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_file(dir.path(), "broken.lua", "core.Info('x')\nif then\n");
    let cfg = format!(
        "global\n    lua-load {}\nbackend b\n    server s 127.0.0.1:1\n",
        bad.display()
    );
    let cfgp = write_file(dir.path(), "harp.cfg", &cfg);
    let out = Command::new(env!("CARGO_BIN_EXE_harp"))
        .arg("-c")
        .arg("-f")
        .arg(&cfgp)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("broken.lua:2:"), "{err}");
    let mut h = Harp::spawn(&cfg, &[]);
    let code = h.wait_exit();
    assert!(matches!(code, Some(c) if c != 0), "{code:?} {}", h.stderr());
    assert!(h.stderr().contains("broken.lua:2:"), "{}", h.stderr());
}

const OBSERVER: &str = r#"
-- test helper: records every SERVER_DOWN in a file (one line each)
local out = ...
core.event_sub({"SERVER_DOWN"}, function(e, d)
  local f = io.open(out, "a")
  f:write(d.proxy_name .. "/" .. d.name .. "\n")
  f:close()
end)
"#;

#[test]
fn seed_article_with_real_health_checks() {
    let hook = Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    let observer = write_file(dir.path(), "observer.lua", OBSERVER);
    let downs = dir.path().join("downs.txt");
    // webserver1's port is closed from the start: its first check must already be seen by Lua
    // (a port no test binds, outside the range the kernel gives connections)
    let p1 = free_port();
    let ws2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p2 = ws2.local_addr().unwrap().port();
    let port = free_port();
    let cfg = format!(
        "global\n    lua-load {} test\n    lua-load {} {}\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout server 5s\n    timeout client 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend test\n\
         backend test\n    default-server check inter 100ms rise 1 fall 1\n\
         \x20   server webserver1 127.0.0.1:{p1}\n    server webserver2 127.0.0.1:{p2}\n",
        repo("lua/backend_down_webhook.lua"),
        observer.display(),
        downs.display()
    );
    let url = hook.url("/health");
    let h = Harp::spawn_in(dir, &cfg, &[("DEMO_WEBHOOK_URL", url.as_str())]);
    let read = || std::fs::read_to_string(&downs).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(10), || read()
            .contains("test/webserver1")),
        "early DOWN not seen by Lua: {}\n{}",
        read(),
        h.stderr()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hook.with_path("/health").len(), 0, "{}", h.stderr());
    drop(ws2);
    assert!(
        wait_until(Duration::from_secs(10), || hook.with_path("/health").len()
            == 1),
        "no POST after webserver2 went down:\n{}",
        h.stderr()
    );
    std::thread::sleep(Duration::from_millis(500));
    let reqs = hook.with_path("/health");
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let compact: String = reqs[0].body.split_whitespace().collect();
    assert!(
        compact.starts_with("{\"type\":\"backend_down\",\"name\":\"test\",\"when\":\""),
        "{compact}"
    );
}

/// Whether 127.0.0.1:`port` accepts within `d` (features of other modules may not be merged yet).
fn accepts(port: u16, d: Duration) -> bool {
    wait_until(d, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
}

#[test]
fn seed_article_through_the_runtime_api() {
    let hook = Webhook::start();
    let sp = free_port();
    let port = free_port();
    let cfg = format!(
        "global\n    stats socket ipv4@127.0.0.1:{sp} level admin\n\
         \x20   lua-load {} test\n    httpclient.resolvers.prefer ipv4\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout server 5s\n    timeout client 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend test\n\
         backend test\n    server webserver1 127.0.0.1:1\n    server webserver2 127.0.0.1:2\n",
        repo("lua/backend_down_webhook.lua")
    );
    let url = hook.url("/rtapi");
    let h = Harp::spawn(&cfg, &[("DEMO_WEBHOOK_URL", url.as_str())]);
    if !accepts(sp, Duration::from_secs(3)) {
        eprintln!("Runtime API not available in this build: skipping the socat steps");
        return;
    }
    let send = |cmd: &str| {
        if Command::new("socat").arg("-V").output().is_ok() {
            common::socat(sp, cmd)
        } else {
            common::cli(sp, cmd)
        }
    };
    send("set server test/webserver1 health down");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hook.with_path("/rtapi").len(), 0, "{}", h.stderr());
    send("set server test/webserver2 state maint");
    assert!(
        wait_until(Duration::from_secs(10), || hook.with_path("/rtapi").len()
            == 1),
        "no POST:\n{}",
        h.stderr()
    );
    std::thread::sleep(Duration::from_millis(500));
    let reqs = hook.with_path("/rtapi");
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let compact: String = reqs[0].body.split_whitespace().collect();
    assert!(
        compact.starts_with("{\"type\":\"backend_down\",\"name\":\"test\",\"when\":\""),
        "{compact}"
    );
    let info = send("show info");
    assert!(info.contains("LuaMemory_bytes: "), "{info}");
    assert!(info.contains("LuaEventsDropped: 0"), "{info}");
}

#[test]
fn bad_scripts_leave_forwarding_and_other_subscriptions_served() {
    use std::io::{Read, Write};
    let hook = Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scripts = [
        write_file(d, "loop.lua", "core.event_sub({'SERVER_DOWN'}, function() while true do end end)\n"),
        write_file(d, "raise.lua", "core.event_sub({'SERVER_DOWN'}, function() error('boom') end)\n"),
        write_file(
            d,
            "hog.lua",
            "core.event_sub({'SERVER_DOWN'}, function() local t = {} while true do t[#t+1] = string.rep('y', 65536) .. #t end end)\n",
        ),
        write_file(
            d,
            "hang.lua",
            &format!(
                "core.event_sub({{'SERVER_DOWN'}}, function() core.httpclient():post{{url='{}', body='x'}} end)\n",
                hook.url("/hang")
            ),
        ),
        write_file(
            d,
            "good.lua",
            &format!(
                "core.event_sub({{'SERVER_DOWN'}}, function(e, d) core.httpclient():post{{url='{}', body=d.name}} end)\n",
                hook.url("/good")
            ),
        ),
    ];
    // an echo server behind the frontend
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in echo.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut b = [0u8; 1024];
                while let Ok(n) = c.read(&mut b) {
                    if n == 0 || c.write_all(&b[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let flap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fp = flap.local_addr().unwrap().port();
    let port = free_port();
    let loads: String = scripts
        .iter()
        .map(|p| format!("    lua-load {}\n", p.display()))
        .collect();
    let cfg = format!(
        "global\n    tune.lua.maxmem 64\n    tune.lua.burst-timeout 200\n{loads}\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout server 5s\n    timeout client 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend app\n\
         backend app\n    server echo 127.0.0.1:{ep}\n\
         backend flap\n    server f1 127.0.0.1:{fp} check inter 100ms rise 1 fall 1\n"
    );
    let h = Harp::spawn_in(dir, &cfg, &[]);
    std::thread::sleep(Duration::from_millis(300));
    drop(flap);
    assert!(
        wait_until(Duration::from_secs(15), || hook.with_path("/good").len()
            == 1),
        "good subscription starved:\n{}",
        h.stderr()
    );
    assert_eq!(hook.with_path("/good")[0].body, "f1");
    // the spinning callback yields to the others: its abort (200 ms of its own CPU time, at most
    // `tune.lua.max-cpu` of a CPU) may come after the good one's post
    let aborted = wait_until(Duration::from_secs(30), || {
        h.stderr().contains("loop.lua:1: burst timeout")
    });
    let log = h.stderr();
    assert!(aborted, "{log}");
    assert!(log.contains("Lua event_hdl:"), "{log}");
    if accepts(port, Duration::from_secs(2)) {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
    } else {
        eprintln!("data plane not available in this build: forwarding not checked");
    }
}

#[test]
fn lost_events_are_shown_by_show_info() {
    let dir = tempfile::tempdir().unwrap();
    let slow = write_file(
        dir.path(),
        "slow.lua",
        "core.event_sub({'SERVER_STATE'}, function() core.msleep(20) end)\n",
    );
    let sp = free_port();
    let port = free_port();
    let cfg = format!(
        "global\n    stats socket ipv4@127.0.0.1:{sp} level admin\n    lua-load {}\n\
         \x20   tune.lua.session-timeout 300ms\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout server 5s\n    timeout client 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend b\n\
         backend b\n    server s1 127.0.0.1:1\n",
        slow.display()
    );
    let h = Harp::spawn_in(dir, &cfg, &[]);
    if !accepts(sp, Duration::from_secs(3)) {
        eprintln!("Runtime API not available in this build: skipping");
        return;
    }
    let mut cmds = String::new();
    for _ in 0..150 {
        cmds.push_str("set server b/s1 health down;set server b/s1 health up;");
    }
    common::cli(sp, cmds.trim_end_matches(';'));
    assert!(
        h.wait_log(
            "Lua event_hdl: pausing the subscription because the handler fails to keep up the pace"
        ),
        "{}",
        h.stderr()
    );
    let info = common::cli(sp, "show info");
    let lost = info
        .lines()
        .find_map(|l| l.strip_prefix("LuaEventsDropped: "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(lost > 0, "{info}");
    assert!(
        info.lines()
            .any(|l| l.starts_with("LuaSubscription1_EventsLost: ") && l.contains("SERVER_STATE")),
        "{info}"
    );
}

/// With global `log` targets (and `tune.lua.log.loggers` on, the default), `core.log` and its
/// shortcuts reach them at their level, as HAProxy sends them (2.6, captured:
/// `<129>... haproxy[pid]: lua alert line`).
#[test]
fn lua_logs_reach_the_global_log_targets() {
    let (sink, _) = common::syslog_sink();
    let dir = tempfile::tempdir().unwrap();
    let script = write_file(
        dir.path(),
        "alerting.lua",
        "core.register_task(function()\n  core.Alert('lua alert line')\n  core.log(core.info, 'lua info line')\nend)\n",
    );
    let port = free_port();
    let cfg = format!(
        "global\n    log {} local0\n    lua-load {}\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout server 5s\n    timeout client 5s\n\
         listen px\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:1\n",
        sink.local_addr().unwrap(),
        script.display()
    );
    let h = Harp::spawn_in(dir, &cfg, &[]);
    let alert = common::syslog_line(&sink, "lua alert line");
    assert!(alert.starts_with("<129>"), "{alert}");
    assert!(
        alert.ends_with(&format!(" harp[{}]: lua alert line", h.pid())),
        "{alert}"
    );
    assert!(common::syslog_line(&sink, "lua info line").starts_with("<134>"));
}

/// Debug-level Lua messages reach stderr only with `-d`, as HAProxy's `hlua_sendlog` decides;
/// the other levels always do (no `log` target here).
#[test]
fn lua_debug_messages_need_debug_mode() {
    for debug in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let script = write_file(
            dir.path(),
            "dbg.lua",
            "core.register_task(function()\n  core.Debug('dbg line')\n  core.Info('info line')\nend)\n",
        );
        let cfg = format!(
            "global\n    lua-load {}\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout server 5s\n    timeout client 5s\n",
            script.display()
        );
        let h = Harp::spawn_prepared(dir, &cfg, &[], |c| {
            if debug {
                c.arg("-d");
            }
        });
        assert!(
            wait_until(Duration::from_secs(5), || h.stderr().contains("] ")
                && h.stderr().contains(" : info line")),
            "{}",
            h.stderr()
        );
        assert_eq!(h.stderr().contains(" : dbg line"), debug, "{}", h.stderr());
    }
}

/// `core.register_cli`: a script's command answers on the Runtime API through real socat, with
/// the path words first among its arguments (HAProxy 2.6's replies, watched side by side), is
/// listed by `help`, runs at any level; one that raises is logged with `file:line` and answers
/// nothing, and the socket and the other commands go on.
#[test]
fn register_cli_serves_a_script_command() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_file(
        dir.path(),
        "cli.lua",
        r#"
core.register_cli({"show", "greeting"}, "show greeting [name]           : says hello",
  function(applet, a1, a2, a3, a4)
    applet:send("hello " .. tostring(a1) .. " " .. tostring(a2) .. " " .. tostring(a3)
      .. " " .. tostring(a4) .. "\n")
    applet:send("second line\n")
  end)
core.register_cli({"lua", "fail"}, "lua fail : raises", function(applet)
  error("boom")
end)
core.register_cli({"lua", "slow"}, "lua slow : computes past tune.lua.session-timeout",
  function(applet)
    applet:send("partial\n")
    -- 100 ms stretches of Lua (under the burst timeout), each followed by a yield
    while true do
      local t = os.clock()
      while os.clock() - t < 0.1 do end
      core.yield()
    end
  end)
core.register_cli({"lua", "naps"}, "lua naps : sleeps longer than tune.lua.session-timeout",
  function(applet)
    for i = 1, 3 do
      core.msleep(400)
      applet:send("nap " .. i .. "\n")
    end
  end)
"#,
    );
    let sp = free_port();
    let cfg = format!(
        "global\n    stats socket ipv4@127.0.0.1:{sp} level admin\n    lua-load {}\n\
         \x20   tune.lua.session-timeout 300ms\n    tune.lua.max-cpu 100\n    tune.lua.nice 0\n\
         \x20   tune.lua.burst-timeout 0\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout server 5s\n    timeout client 5s\n",
        script.display()
    );
    let h = Harp::spawn_in(dir, &cfg, &[]);
    assert!(accepts(sp, Duration::from_secs(5)), "{}", h.stderr());
    assert_eq!(
        common::socat(sp, "show greeting bob"),
        "hello show greeting bob nil\nsecond line\n\n"
    );
    assert_eq!(
        common::socat(sp, "user; show greeting"),
        "\nhello show greeting nil nil\nsecond line\n\n"
    );
    assert_eq!(common::socat(sp, "lua fail"), "\n");
    assert!(
        wait_until(Duration::from_secs(5), || h
            .stderr()
            .contains("Lua cli '<lua.cli.lua.fail>': ")
            && h.stderr().contains("cli.lua:9: boom")),
        "{}",
        h.stderr()
    );
    // bounded by tune.lua.session-timeout as in HAProxy: what it sent, then the timeout logged
    // (a plain client: socat gives up half a second after its input ends)
    assert_eq!(common::cli(sp, "lua slow"), "partial\n\n");
    // sleeps do not count (HAProxy counts the Lua thread's CPU time): 1.2 s of naps complete
    assert_eq!(common::cli(sp, "lua naps"), "nap 1\nnap 2\nnap 3\n\n");
    assert!(
        wait_until(Duration::from_secs(5), || h
            .stderr()
            .contains("Lua cli '<lua.cli.lua.slow>': execution timeout")),
        "{}",
        h.stderr()
    );
    let help = common::socat(sp, "help");
    let lines: Vec<&str> = help.lines().collect();
    let at = |l: &str| lines.iter().position(|x| *x == l);
    let (fail, greet) = (
        at("  lua fail : raises"),
        at("  show greeting [name]           : says hello"),
    );
    assert!(fail.is_some() && greet.is_some(), "{help}");
    // sorted in among HAProxy's own: `lua fail` between `get weight` and `operator`
    let get = lines.iter().position(|l| l.starts_with("  get weight"));
    let oper = lines.iter().position(|l| l.starts_with("  operator"));
    assert!(get < fail && fail < oper, "{help}");
    assert!(common::socat(sp, "help show greeting").contains("show greeting [name]"));
    // a typo is answered with the script's command among the proposals, as HAProxy does
    let typo = common::socat(sp, "show greting");
    assert!(
        typo.starts_with("Unknown command: 'show', but maybe one of the following")
            && typo.contains("\n  show greeting [name]           : says hello\n"),
        "{typo}"
    );
    assert!(common::socat(sp, "show version").starts_with("0."));
}
