//! Library-level tests of the Lua engine: real scripts, real sockets, state driven through
//! `Registry::apply` as the Runtime API and checks do.

mod lua_support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use harp::config::{self, Config};
use harp::events::EventBus;
use harp::lua::{self, LuaEngine};
use harp::model::{AdminAction, Cause, CheckResult, CheckStatus, Command, ForcedHealth, Registry};
use lua_support::{wait_until, Smtp, Webhook};

const T: Duration = Duration::from_secs(10);

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The shared webhook; `DEMO_WEBHOOK_URL` points at it (env is process-wide, tests run in
/// parallel, so every test uses the same server and its own backend names).
fn webhook() -> &'static Webhook {
    static W: OnceLock<Webhook> = OnceLock::new();
    W.get_or_init(|| {
        let w = Webhook::start();
        std::env::set_var("DEMO_WEBHOOK_URL", w.url("/seed"));
        w
    })
}

fn parse(text: &str) -> Config {
    match config::parse_str("test.cfg", text) {
        Ok(c) => c,
        Err(e) => panic!("config: {e}"),
    }
}

fn start(text: &str) -> (Arc<Registry>, LuaEngine) {
    let reg = Registry::new(parse(text), Arc::new(EventBus::new()));
    let eng = lua::start(reg.clone()).unwrap_or_else(|e| panic!("lua start: {e}"));
    (reg, eng)
}

fn script(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

fn srv(reg: &Registry, path: &str) -> Arc<harp::model::Server> {
    reg.find_server(path).unwrap()
}

fn health(reg: &Registry, path: &str, h: ForcedHealth) {
    reg.apply(Command::SetHealth {
        server: srv(reg, path),
        health: h,
        cause: Cause::Cli,
    })
    .unwrap();
}

fn admin(reg: &Registry, path: &str, a: AdminAction) {
    reg.apply(Command::SetAdmin {
        server: srv(reg, path),
        action: a,
        cause: Cause::Cli,
    })
    .unwrap();
}

fn seed_json_ok(body: &str, backend: &str) -> bool {
    let compact: String = body.split_whitespace().collect();
    let prefix = format!("{{\"type\":\"backend_down\",\"name\":\"{backend}\",\"when\":\"");
    compact.starts_with(&prefix)
        && compact.ends_with("\"}")
        && compact[prefix.len()..compact.len() - 2]
            .chars()
            .all(|c| c.is_ascii_digit())
}

#[test]
fn seed_steps_post_exactly_once() {
    let w = webhook();
    let cfg = format!(
        "global\n    lua-load {} seedbe\n    httpclient.resolvers.prefer ipv4\n\
         backend seedbe\n    server webserver1 127.0.0.1:1\n    server webserver2 127.0.0.1:2\n",
        repo("lua/backend_down_webhook.lua").display()
    );
    let (reg, eng) = start(&cfg);
    let posts = || {
        w.with_path("/seed")
            .into_iter()
            .filter(|r| r.body.contains("\"seedbe\""))
            .count()
    };
    health(&reg, "seedbe/webserver1", ForcedHealth::Down);
    assert!(wait_until(T, || eng.delivered() >= 1));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(posts(), 0, "one server left: no webhook yet");
    admin(&reg, "seedbe/webserver2", AdminAction::Maint);
    assert!(
        wait_until(T, || posts() >= 1),
        "no POST after the backend emptied"
    );
    std::thread::sleep(Duration::from_millis(300));
    let reqs: Vec<_> = w
        .with_path("/seed")
        .into_iter()
        .filter(|r| r.body.contains("\"seedbe\""))
        .collect();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].method, "POST");
    assert!(seed_json_ok(&reqs[0].body, "seedbe"), "{}", reqs[0].body);
    eng.stop();
}

#[test]
fn dynamic_server_of_tracked_backend_is_tracked() {
    let w = webhook();
    let cfg = format!(
        "global\n    lua-load {} dynbe\n\
         backend dynbe\n    server s1 127.0.0.1:1\n\
         backend other\n    server o1 127.0.0.1:1\n",
        repo("lua/backend_down_webhook.lua").display()
    );
    let (reg, eng) = start(&cfg);
    let posts = |name: &str| {
        w.with_path("/seed")
            .into_iter()
            .filter(|r| r.body.contains(&format!("\"{name}\"")))
            .count()
    };
    let be = reg.backend("dynbe").unwrap().clone();
    let sc = config::parse_server_args(
        "dyn",
        &["127.0.0.1:3".to_string()],
        &be.config.default_server,
    )
    .unwrap();
    reg.apply(Command::AddServer {
        backend: "dynbe".into(),
        config: Box::new(sc),
    })
    .unwrap();
    admin(&reg, "dynbe/dyn", AdminAction::Ready);
    health(&reg, "dynbe/s1", ForcedHealth::Down);
    // dyn still up: nothing; then dyn goes down: the backend is empty.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(posts("dynbe"), 0);
    health(&reg, "dynbe/dyn", ForcedHealth::Down);
    assert!(
        wait_until(T, || posts("dynbe") == 1),
        "dynamic server not tracked"
    );
    // untracked backend: never
    health(&reg, "other/o1", ForcedHealth::Down);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(posts("other"), 0);
    assert_eq!(posts("dynbe"), 1);
    eng.stop();
}

fn check(reg: &Registry, path: &str, ok: bool) {
    reg.apply(Command::CheckDone {
        server: srv(reg, path),
        result: CheckResult {
            status: if ok {
                CheckStatus::L4Ok
            } else {
                CheckStatus::L4Con
            },
            duration_ms: 0,
            info: None,
            code: None,
            agent: false,
        },
    })
    .unwrap();
}

#[test]
fn mailer_sends_smtp_dialogue_on_down_and_up() {
    let smtp = Smtp::start();
    let cfg = format!(
        "global\n    lua-load {}\n\
         mailers mta\n    mailer smtp1 127.0.0.1:{}\n    timeout mail 5s\n\
         backend mailbe\n    email-alert mailers mta\n    email-alert from lb@example.com\n\
         \x20   email-alert to ops@example.com\n    email-alert level notice\n\
         \x20   email-alert myhostname lbhost\n\
         \x20   server m1 127.0.0.1:1\n    server m2 127.0.0.1:2\n",
        repo("lua/mailers.lua").display(),
        smtp.port
    );
    let (reg, eng) = start(&cfg);
    health(&reg, "mailbe/m1", ForcedHealth::Down);
    assert!(wait_until(T, || smtp.done().len() == 1), "no DOWN mail");
    health(&reg, "mailbe/m1", ForcedHealth::Up);
    assert!(wait_until(T, || smtp.done().len() == 2), "no UP mail");
    let s = smtp.done();
    for (sess, word) in s.iter().zip(["is DOWN", "is UP"]) {
        let cmds: Vec<&str> = sess
            .iter()
            .filter(|l| !l.starts_with("DATA|") && *l != ".")
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            cmds,
            [
                "HELO lbhost",
                "MAIL FROM:<lb@example.com>",
                "RCPT TO:<ops@example.com>",
                "DATA",
                "QUIT"
            ],
            "{sess:?}"
        );
        assert!(
            sess.iter().any(
                |l| l.starts_with("DATA| Subject: [HAProxy Alert] Server mailbe/m1")
                    && l.contains(word)
            ),
            "{sess:?}"
        );
    }
    eng.stop();
}

#[test]
fn bad_callbacks_leave_other_subscriptions_served() {
    let w = webhook();
    let dir = tempfile::tempdir().unwrap();
    let looping = script(
        &dir,
        "loop.lua",
        "core.register_init(function()\n core.event_sub({'SERVER_DOWN'}, function()\n  local n = 0\n  while true do n = n + 1 end\n end)\nend)\n",
    );
    let raising = script(
        &dir,
        "raise.lua",
        "core.event_sub({'SERVER_DOWN','SERVER_UP'}, function(e) error('boom ' .. e) end)\n",
    );
    let hog = script(
        &dir,
        "hog.lua",
        "core.event_sub({'SERVER_DOWN'}, function()\n local t = {}\n while true do t[#t+1] = string.rep('x', 65536) .. #t end\nend)\n",
    );
    let hang = script(
        &dir,
        "hang.lua",
        &format!(
            "core.event_sub({{'SERVER_DOWN'}}, function()\n core.httpclient():post{{url='{}', body='x'}}\nend)\n",
            w.url("/hang")
        ),
    );
    let good = script(
        &dir,
        "good.lua",
        &format!(
            "core.event_sub({{'SERVER_DOWN','SERVER_UP'}}, function(e, d)\n core.httpclient():post{{url='{}', body=e .. ' ' .. d.name}}\nend)\n",
            w.url("/good")
        ),
    );
    let cfg = format!(
        "global\n    tune.lua.maxmem 64\n    tune.lua.burst-timeout 200\n\
         \x20   lua-load {looping}\n    lua-load {raising}\n    lua-load {hog}\n\
         \x20   lua-load {hang}\n    lua-load {good}\n\
         backend badbe\n    server b1 127.0.0.1:1\n"
    );
    let (reg, eng) = start(&cfg);
    for _ in 0..3 {
        health(&reg, "badbe/b1", ForcedHealth::Down);
        health(&reg, "badbe/b1", ForcedHealth::Up);
    }
    assert!(
        wait_until(Duration::from_secs(20), || w.with_path("/good").len() == 6),
        "good subscription starved: {:?}",
        w.with_path("/good")
    );
    let bodies: Vec<String> = w.with_path("/good").into_iter().map(|r| r.body).collect();
    assert_eq!(
        bodies,
        [
            "SERVER_DOWN b1",
            "SERVER_UP b1",
            "SERVER_DOWN b1",
            "SERVER_UP b1",
            "SERVER_DOWN b1",
            "SERVER_UP b1"
        ]
    );
    assert!(lua_errors(&eng) >= 6, "{:?}", eng.info());
    eng.stop();
}

#[test]
fn syntax_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = script(&dir, "bad.lua", "local x = 1\nlocal y = = 2\n");
    let cfg = format!("global\n    lua-load {bad}\n");
    let c = parse(&cfg);
    let errs = lua::check(&c).unwrap_err();
    assert!(errs[0].contains("bad.lua:2:"), "{errs:?}");
    let reg = Registry::new(c, Arc::new(EventBus::new()));
    let e = lua::start(reg).unwrap_err().to_string();
    assert!(e.contains("bad.lua:2:"), "{e}");
}

#[test]
fn overflowing_subscription_is_paused_and_losses_counted() {
    let dir = tempfile::tempdir().unwrap();
    let slow = script(
        &dir,
        "slow.lua",
        "core.event_sub({'SERVER_STATE'}, function() core.msleep(50) end)\n",
    );
    let cfg = format!("global\n    lua-load {slow}\nbackend ovf\n    server s 127.0.0.1:1\n");
    let (reg, eng) = start(&cfg);
    for _ in 0..150 {
        health(&reg, "ovf/s", ForcedHealth::Down);
        health(&reg, "ovf/s", ForcedHealth::Up);
    }
    let lost = || {
        eng.info()
            .iter()
            .find(|(k, _)| k == "LuaEventsDropped")
            .map(|(_, v)| v.parse::<u64>().unwrap())
            .unwrap()
    };
    assert!(wait_until(T, || lost() > 0), "{:?}", eng.info());
    assert!(
        eng.info()
            .iter()
            .any(|(k, v)| k.starts_with("LuaSubscription") && v.contains("SERVER_STATE")),
        "{:?}",
        eng.info()
    );
    eng.stop();
}

/// Dumps every SERVER event like the reference transcript (keys sorted, recursively).
const DUMPER: &str = r#"
local out = assert(io.open(OUT, "w"))
local function dump(t, ind, lines, in_state)
  local keys = {}
  for k in pairs(t) do keys[#keys+1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = t[k]
    if in_state and k == "check" then
      -- harp documents state.check (HAProxy 3.2.0 omits it): checked elsewhere
    elseif type(v) == "table" then
      lines[#lines+1] = ind .. k .. " = {"
      dump(v, ind .. "  ", lines, k == "state")
      lines[#lines+1] = ind .. "}"
    elseif type(v) == "userdata" then
      lines[#lines+1] = ind .. k .. " = <table Server object>"
    else
      lines[#lines+1] = ind .. k .. " = " .. tostring(v)
    end
  end
end
core.event_sub({"SERVER"}, function(event, data, sub, when)
  local lines = {"== " .. event .. " (when is a " .. math.type(when) .. ")", "{"}
  dump(data, "  ", lines, false)
  lines[#lines+1] = "}"
  out:write(table.concat(lines, "\n") .. "\n")
  out:flush()
  if event == "SERVER_STATE" and data.state.check ~= nil then
    local c = assert(io.open(OUT .. ".check", "a"))
    c:write(data.state.check.result .. " " .. data.state.check.reason.short .. " "
      .. data.state.check.health.cur .. "\n")
    c:close()
  end
end)
"#;

#[test]
fn event_tables_match_haproxy_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.txt");
    let s = script(
        &dir,
        "dump.lua",
        &format!("local OUT = {:?}\n{DUMPER}", out.display().to_string()),
    );
    let cfg = format!(
        "global\n    lua-load {s}\n\
         frontend fe\n    id 2\n    bind 127.0.0.1:65000\n    default_backend test\n\
         backend test\n    id 3\n    server webserver1 127.0.0.1:1 check rise 2 fall 2\n\
         \x20   server webserver2 127.0.0.1:2\n"
    );
    let (reg, eng) = start(&cfg);
    let w1 = "test/webserver1";
    check(&reg, w1, false);
    check(&reg, w1, true);
    check(&reg, w1, true);
    health(&reg, w1, ForcedHealth::Down);
    admin(&reg, "test/webserver2", AdminAction::Maint);
    let be = reg.backend("test").unwrap().clone();
    let sc = config::parse_server_args(
        "dyn",
        &["127.0.0.1:3".to_string()],
        &be.config.default_server,
    )
    .unwrap();
    reg.apply(Command::AddServer {
        backend: "test".into(),
        config: Box::new(sc),
    })
    .unwrap();
    admin(&reg, "test/dyn", AdminAction::Ready);
    admin(&reg, "test/dyn", AdminAction::Maint);
    reg.apply(Command::DelServer {
        server: srv(&reg, "test/dyn"),
    })
    .unwrap();
    reg.apply(Command::SetAddr {
        server: srv(&reg, w1),
        ip: "127.0.0.9".parse().unwrap(),
        port: None,
        cause: Cause::Cli,
    })
    .unwrap();
    health(&reg, w1, ForcedHealth::Up);
    admin(&reg, "test/webserver2", AdminAction::Ready);
    check(&reg, w1, false);
    check(&reg, w1, false);
    let reference = include_str!("lua_data/haproxy-3.2-server-events.txt");
    let expected: String = reference
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    let n_events = expected.matches("== ").count();
    let got = || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect::<String>()
    };
    assert!(
        wait_until(T, || got().matches("== ").count() >= n_events),
        "{}",
        got()
    );
    let got = got();
    for (i, (g, e)) in got.lines().zip(expected.lines()).enumerate() {
        assert_eq!(g, e, "line {} differs\n--- got:\n{got}", i + 1);
    }
    assert_eq!(got.lines().count(), expected.lines().count(), "{got}");
    // harp documents state.check on check-caused SERVER_STATE (HAProxy 3.2.0 leaves it out).
    let checks = std::fs::read_to_string(format!("{}.check", out.display())).unwrap();
    assert_eq!(checks, "FAILED L4CON 0\nPASSED L4OK 3\nFAILED L4CON 0\n");
    eng.stop();
}

#[test]
fn core_api_basics() {
    let w = webhook();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let body = format!(
        r#"
local OUT = {out:?}
local args = table.pack(...)
local f = assert(io.open(OUT, "w"))
local function say(s) f:write(s .. "\n") f:flush() end
say("args " .. args.n .. " " .. tostring(args[1]) .. " thread " .. core.thread)
local ok, err = pcall(core.event_sub, "x", function() end)
say("e1 " .. tostring(err))
ok, err = pcall(core.event_sub, {{"NOPE"}}, function() end)
say("e2 " .. tostring(err))
ok, err = pcall(core.event_sub, {{}}, function() end)
say("e3 " .. tostring(err))
say("tok " .. table.concat(core.tokenize("a, b,,c", ", "), "/") .. " "
  .. table.concat(core.tokenize("a, b,,c", ", ", true), "/") .. " " .. #core.tokenize("", ","))
ok, err = pcall(core.tokenize, "a", ",", 1)
say("tok_err " .. tostring(err))
ok, err = pcall(core.register_cli, {{"a"}}, "u")
say("cli1 " .. tostring(err))
for i, a in ipairs({{
  {{ "a", "u", print }},
  {{ {{"a"}}, nil, print }},
  {{ {{"a"}}, "u", 3 }},
  {{ {{"a", 2}}, "u", print }},
  {{ {{"a", "b", "c", "d", "e", "f"}}, "u", print }},
}}) do
  ok, err = pcall(core.register_cli, a[1], a[2], a[3])
  say("cli" .. (i + 1) .. " " .. tostring(err))
end
core.register_init(function()
  local sv = core.backends["apibe"].servers["a2"]
  local ok4, err4 = pcall(sv.event_sub, sv, {{"SERVER_NOPE"}}, function() end)
  say("e4 " .. tostring(err4))
  say("e5 " .. tostring(sv:event_sub({{"SERVER_UP"}}, function() end) ~= nil))
  -- a 3.2 script: PAT_REF subscriptions load, and there is no pattern reference in harp
  local pr = core.event_sub({{"PAT_REF"}}, function() say("never") end)
  say("patref " .. tostring(pr ~= nil) .. " " .. tostring(core.get_patref("/etc/haproxy/x.map")))
  local okp, ep = pcall(core.get_patref)
  say("patref_err " .. tostring(ep))
end)
core.register_service("svc", "tcp", function() end)
core.register_init(function()
  local be = core.backends["apibe"]
  say("init " .. be:get_name() .. " " .. be:get_uuid() .. " " .. be:get_cap() .. " " .. be:get_mode())
  local n = 0
  for name, sv in pairs(be.servers) do n = n + 1 end
  say("servers " .. n .. " act " .. be:get_srv_act())
  local sv = be.servers["a1"]
  say("sv " .. sv:get_name() .. " " .. sv:get_addr() .. " w " .. sv:get_weight() .. " " .. sv:get_stats().status)
  say("setw " .. tostring(sv:set_weight("50")) .. " " .. sv:get_weight())
  say("setw_bad " .. tostring(sv:set_weight("1000")))
  sv:set_drain()
  say("drain " .. tostring(sv:is_draining()))
  sv:set_ready()
  local c = core.concat() c:add("a") c:add("b") say("concat " .. c:dump())
end)
core.register_task(function(a, b)
  local q = core.queue()
  core.register_task(function() core.msleep(20) q:push("late") end)
  say("task " .. a .. b .. " popped " .. q:pop_wait() .. " size " .. q:size())
  local hc = core.httpclient()
  local r = hc:get{{url = {url:?}, headers = {{["X-A"] = {{"1"}}}}}}
  say("http " .. r.status .. " " .. r.body .. " " .. r.headers["x-test"][0] .. r.headers["x-test"][1])
  local ok2, e2 = pcall(hc.get, hc, {{url = {url:?}, bogus = 1}})
  say("hc_err " .. tostring(e2))
  local r0 = hc:get{{url = "http://127.0.0.1:1/", timeout = 500}}
  say("http0 " .. r0.status)
  local s = core.tcp()
  s:settimeout(2)
  say("connect " .. tostring(s:connect("127.0.0.1:{port}")))
  s:send("GET /tcp HTTP/1.1\r\nHost: x\r\n\r\n")
  say("line " .. s:receive("*l"))
  s:close()
  local s2 = core.tcp()
  s2:settimeout(2)
  local okssl, essl = s2:connect_ssl("127.0.0.1", {port})
  say("ssl " .. tostring(okssl) .. " " .. tostring(essl))
  local t0 = core.now()
  core.sleep(0.01)
  say("done " .. type(t0.sec))
end, "x", "y")
"#,
        out = out.display().to_string(),
        url = w.url("/api"),
        port = w.port,
    );
    let s = script(&dir, "api.lua", &body);
    let cfg = format!(
        "global\n    lua-load {s} hello\nbackend apibe\n    server a1 127.0.0.1:7 weight 10\n    server a2 127.0.0.1:8\n"
    );
    let (_reg, eng) = start(&cfg);
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        wait_until(T, || read().contains("done number")),
        "{}",
        read()
    );
    let text = read();
    for want in [
        "args 1 hello thread 0",
        "e1 bad argument #1 to 'event_sub' (table of strings expected, got string)\n",
        "e2 'NOPE' event type is unknown",
        "e3 event_sub: no valid event types were provided",
        "tok a//b//c a/b/c 1\n",
        "tok_err bad argument #3 to 'tokenize' (boolean expected)\n",
        "cli1 'register_cli' needs 3 arguments\n",
        "cli2 bad argument #1 to 'register_cli' (table expected, got string)\n",
        "cli3 bad argument #2 to 'register_cli' (string expected, got nil)\n",
        "cli4 bad argument #3 to 'register_cli' (function expected, got number)\n",
        "cli5 bad argument #1 to 'register_cli' (1st argument must be a table filled with strings)\n",
        "cli6 bad argument #1 to 'register_cli' (1st argument must be a table with a maximum of 5 entries)\n",
        "backend tcp",
        "servers 2 act 2",
        "sv a1 127.0.0.1:7 w 10 no check",
        "setw nil 50",
        "drain true",
        "concat ab",
        "task xy popped late size 0",
        "http 200 ok ab",
        "hc_err 'bogus' invalid parameter name\n",
        "http0 0",
        "e4 'SERVER_NOPE' event type is unknown\n",
        "e5 true",
        "patref true nil",
        "patref_err bad argument #1 to 'get_patref' (string expected, got no value)\n",
        "connect 1",
        "line HTTP/1.1 200 OK",
        "ssl nil SSL handshake failed",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(text.contains("setw_bad "), "{text}");
    // HAProxy's httpclient names itself
    let reqs = w.reqs.lock().unwrap().clone();
    let api = reqs
        .iter()
        .find(|r| r.path == "/api")
        .expect("the /api request");
    assert!(
        api.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("user-agent") && v == "HAProxy"),
        "{api:?}"
    );
    eng.stop();
}

#[test]
fn per_thread_load_runs_once_and_done_ends_body() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pt.txt");
    let body = format!(
        r#"
local f = assert(io.open({out:?}, "a"))
f:write("thread " .. core.thread .. "\n") f:flush()
if core.thread > 1 then core.done() end
f:write("body ran\n") f:flush()
core.register_init(function()
  f:write("init " .. core.thread .. "\n") f:flush()
  core.done()
  f:write("after done\n") f:flush()
end)
core.done()
f:write("never\n")
"#,
        out = out.display().to_string()
    );
    let s = script(&dir, "pt.lua", &body);
    let cfg = format!("global\n    nbthread 4\n    lua-load-per-thread {s}\n");
    let (_reg, eng) = start(&cfg);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, "thread 1\nbody ran\ninit 1\n");
    eng.stop();
}

/// `tune.lua.task-timeout` bounds a task's Lua time, not its life (HAProxy's `hlua_timer`): a
/// task that sleeps in a loop lives on past it; one that computes between yields is stopped.
#[test]
fn task_timeout_counts_lua_time_not_sleeps() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("naps.txt");
    let s = script(
        &dir,
        "tt.lua",
        &format!(
            r#"
core.register_task(function()
  for i = 1, 40 do core.msleep(10) end
  local f = io.open({out:?}, "w") f:write("slept\n") f:close()
end)
core.register_task(function()
  while true do
    local t = os.clock()
    while os.clock() - t < 0.02 do end
    core.yield()
  end
end)
"#,
            out = out.display().to_string()
        ),
    );
    let cfg = format!(
        "global\n    tune.lua.task-timeout 200ms\n    tune.lua.max-cpu 100\n    tune.lua.nice 0\n    lua-load {s}\n"
    );
    let (_reg, eng) = start(&cfg);
    // 400 ms of naps outlive the 200 ms budget; the computing task is stopped (one error)
    assert!(
        wait_until(T, || std::fs::read_to_string(&out)
            .is_ok_and(|t| t == "slept\n")),
        "{:?}",
        eng.info()
    );
    assert!(wait_until(T, || lua_errors(&eng) == 1), "{:?}", eng.info());
    eng.stop();
}

#[test]
fn unsub_from_inside_its_callback() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("u.txt");
    let body = format!(
        r#"
local f = assert(io.open({out:?}, "a"))
core.event_sub({{"SERVER_DOWN"}}, function(e, d, sub)
  f:write(e .. "\n") f:flush()
  sub:unsub()
end)
"#,
        out = out.display().to_string()
    );
    let s = script(&dir, "u.lua", &body);
    let cfg = format!("global\n    lua-load {s}\nbackend ub\n    server s 127.0.0.1:1\n");
    let (reg, eng) = start(&cfg);
    for _ in 0..3 {
        health(&reg, "ub/s", ForcedHealth::Down);
        health(&reg, "ub/s", ForcedHealth::Up);
    }
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    assert!(wait_until(T, || read() == "SERVER_DOWN\n"));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(read(), "SERVER_DOWN\n");
    eng.stop();
}

#[test]
fn forced_yield_keeps_an_endless_loop_from_starving_others() {
    let w = webhook();
    let dir = tempfile::tempdir().unwrap();
    let looping = script(
        &dir,
        "spin.lua",
        "core.event_sub({'SERVER_DOWN'}, function() local n = 0 while true do n = n + 1 end end)\n",
    );
    let good = script(
        &dir,
        "good2.lua",
        &format!(
            "core.event_sub({{'SERVER_DOWN','SERVER_UP'}}, function(e, d)\n core.httpclient():post{{url='{}', body=e}}\nend)\n",
            w.url("/spin")
        ),
    );
    let cfg = format!(
        "global\n    tune.lua.burst-timeout 0\n    lua-load {looping}\n    lua-load {good}\n\
         backend spinbe\n    server s 127.0.0.1:1\n"
    );
    let (reg, eng) = start(&cfg);
    health(&reg, "spinbe/s", ForcedHealth::Down);
    health(&reg, "spinbe/s", ForcedHealth::Up);
    assert!(
        wait_until(T, || w.with_path("/spin").len() == 2),
        "starved by a busy loop"
    );
    eng.stop();
}

#[test]
fn prepend_path_and_std_libs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.txt");
    script(
        &dir,
        "mymod.lua",
        "return { hello = function() return 'hi' end }\n",
    );
    let body = format!(
        r#"
local m = require("mymod")
local f = assert(io.open({out:?}, "w"))
f:write(m.hello(), " ", type(os.time()), " ", type(debug.traceback), " ", utf8.char(72),
  " ", math.type(1), " ", type(coroutine.wrap), " ", string.format("%03d", 7), "\n")
f:close()
"#,
        out = out.display().to_string()
    );
    let s = script(&dir, "main.lua", &body);
    let cfg = format!(
        "global\n    lua-prepend-path {}/?.lua\n    lua-load {s}\n",
        dir.path().display()
    );
    let (_reg, eng) = start(&cfg);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "hi number function H integer function 007\n"
    );
    eng.stop();
}

#[test]
fn unix_socket_targets() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("web.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let mut rd = BufReader::new(c.try_clone().unwrap());
            let mut w = c;
            loop {
                let mut line = String::new();
                if rd.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let _ = w
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nuds");
        }
    });
    let out = dir.path().join("u.txt");
    let body = format!(
        r#"
core.register_task(function()
  local f = io.open({out:?}, "w")
  local r = core.httpclient():get{{url = "http://localhost/", dst = "unix@{sock}"}}
  f:write("http ", r.status, " ", r.body, "\n")
  local s = core.tcp()
  s:settimeout(2)
  f:write("tcp ", tostring(s:connect("unix@{sock}")), "\n")
  s:send("GET / HTTP/1.1\r\n\r\n")
  f:write("line ", s:receive("*l"), "\n")
  f:write("done\n")
  f:close()
end)
"#,
        out = out.display().to_string(),
        sock = sock.display()
    );
    let s = script(&dir, "uds.lua", &body);
    let (_reg, eng) = start(&format!("global\n    lua-load {s}\n"));
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    assert!(wait_until(T, || read().contains("done")), "{}", read());
    assert_eq!(read(), "http 200 uds\ntcp 1\nline HTTP/1.1 200 OK\ndone\n");
    eng.stop();
}

#[test]
fn slack_webhook_posts_each_state_change() {
    let w = webhook();
    let cfg = format!(
        "global\n    lua-load {} {}\nbackend slackbe\n    server s1 127.0.0.1:1\n",
        repo("lua/slack_webhook.lua").display(),
        w.url("/slack")
    );
    let (reg, eng) = start(&cfg);
    health(&reg, "slackbe/s1", ForcedHealth::Down);
    admin(&reg, "slackbe/s1", AdminAction::Maint);
    admin(&reg, "slackbe/s1", AdminAction::Ready);
    health(&reg, "slackbe/s1", ForcedHealth::Up);
    assert!(
        wait_until(T, || w.with_path("/slack").len() == 2),
        "{:?}",
        w.with_path("/slack")
    );
    let bodies: Vec<String> = w.with_path("/slack").into_iter().map(|r| r.body).collect();
    assert_eq!(
        bodies,
        [
            r#"{"text":"Server slackbe/s1 is STOPPED (was RUNNING), changed from CLI"}"#,
            // leaving maintenance brings it back (an admin-caused state change)
            r#"{"text":"Server slackbe/s1 is RUNNING (was STOPPED), administrative change"}"#,
        ]
    );
    let ct = w.with_path("/slack")[0]
        .headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.clone());
    assert_eq!(ct.as_deref(), Some("application/json"));
    eng.stop();
}

/// Nice values of the live `harp-lua` threads of this test process (field 19 of
/// /proc/self/task/<tid>/stat).
fn lua_thread_nices() -> Vec<i64> {
    let mut v = Vec::new();
    for t in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != "harp-lua" {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised command name start at field 3.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            if let Some(n) = rest.split_whitespace().nth(16).and_then(|x| x.parse().ok()) {
                v.push(n);
            }
        }
    }
    v
}

#[test]
fn event_age_is_set_in_callbacks_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("age.txt");
    let body = format!(
        r#"
local f = assert(io.open({out:?}, "a"))
local function put(k, v) f:write(k .. " " .. tostring(v) .. "\n") f:flush() end
put("body", core.harp_event_age_us())
core.register_task(function() put("task", core.harp_event_age_us()) end)
core.event_sub({{"SERVER_DOWN"}}, function(e, data)
  local a = core.harp_event_age_us()
  core.msleep(20)
  local b = core.harp_event_age_us()
  put("cb", a >= 0 and b >= a + 20000)
  put("keys", data.when == nil and data.published == nil and data.age == nil)
end)
"#,
        out = out.display().to_string()
    );
    let s = script(&dir, "age.lua", &body);
    let cfg = format!(
        "global\n    tune.lua.nice 7\n    lua-load {s}\nbackend agb\n    server s 127.0.0.1:1\n"
    );
    let (reg, eng) = start(&cfg);
    health(&reg, "agb/s", ForcedHealth::Down);
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    assert!(wait_until(T, || read().contains("keys")), "{}", read());
    let text = read();
    for want in ["body nil\n", "task nil\n", "cb true\n", "keys true\n"] {
        assert!(text.contains(want), "{want:?} missing in {text:?}");
    }
    eng.stop();
}

/// A script whose task waits `delay_ms`, then runs pure Lua for 600 ms of wall clock and appends
/// "done" to `out`.
fn spin_script(dir: &tempfile::TempDir, name: &str, out: &Path, delay_ms: u32) -> String {
    let body = format!(
        r#"
local function now() local t = core.now() return t.sec * 1000000 + t.usec end
core.register_task(function()
  if {delay_ms} > 0 then core.msleep({delay_ms}) end
  local stop = now() + 600000
  local n = 0
  while now() < stop do n = n + 1 end
  local f = assert(io.open({out:?}, "a"))
  f:write("done\n")
  f:close()
end)
"#,
        out = out.display().to_string()
    );
    script(dir, name, &body)
}

/// `LuaErrors` of the engine's `show info` lines.
fn lua_errors(eng: &LuaEngine) -> u64 {
    eng.info()
        .into_iter()
        .find(|(k, _)| k == "LuaErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// `tune.lua.nice` applies to a script that computes: a task spinning in pure Lua moves the Lua
/// thread to nice 6 after 50 us, and once it is done (the engine idle) the thread is back at the
/// normal priority (that step needs CAP_SYS_NICE: checked only as root).
#[test]
fn a_long_running_script_is_demoted_then_restored() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("spin.txt");
    let s = spin_script(&dir, "spin.lua", &out, 50);
    let cfg = format!("global\n    tune.lua.nice 6\n    lua-load {s}\n");
    let (_reg, eng) = start(&cfg);
    assert!(
        wait_until(T, || lua_thread_nices().contains(&6)),
        "never demoted: {:?}",
        lua_thread_nices()
    );
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    assert!(wait_until(T, || read().contains("done")), "{}", read());
    if rustix::process::geteuid().is_root() {
        assert!(
            wait_until(T, || !lua_thread_nices().contains(&6)),
            "not restored: {:?}",
            lua_thread_nices()
        );
    }
    eng.stop();
}

/// `tune.lua.max-cpu`: a script computing without yielding sleeps between slices, and the sleeps
/// do not count towards `tune.lua.burst-timeout`. A 600 ms (wall clock) spin under a 200 ms
/// burst timeout completes at 10 % (about 60 ms of Lua), and is aborted at 100 % (no limit).
#[test]
fn a_busy_script_is_held_to_its_cpu_share() {
    let dir = tempfile::tempdir().unwrap();
    for (percent, completes) in [(10, true), (100, false)] {
        let out = dir.path().join(format!("spin{percent}.txt"));
        let s = spin_script(&dir, &format!("spin{percent}.lua"), &out, 0);
        let cfg = format!(
            "global\n    tune.lua.burst-timeout 200\n    tune.lua.max-cpu {percent}\n    lua-load {s}\n"
        );
        let (_reg, eng) = start(&cfg);
        let errors = || lua_errors(&eng);
        let done = || std::fs::read_to_string(&out).is_ok_and(|t| t.contains("done"));
        assert!(
            wait_until(T, || done() || errors() > 0),
            "max-cpu {percent}: neither"
        );
        assert_eq!(done(), completes, "max-cpu {percent}: errors {}", errors());
        eng.stop();
    }
}

/// `Socket:receive` at the end of a stream, as HAProxy's cosocket answers: what was gathered as
/// the one result (a partial line, the prefix), then `nil, "connection closed."` once nothing
/// is left, so that a `repeat ... until d == nil` loop ends (HAProxy's reg-test lua_socket).
#[test]
fn socket_receive_at_end_of_stream() {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().take(2) {
            let Ok(mut c) = c else { continue };
            let _ = c.write_all(b"one\r\ntwo");
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.txt");
    let body = format!(
        r#"
core.register_task(function()
  local f = io.open({out:?}, "w")
  local function show(...)
    local t = table.pack(...)
    for i = 1, t.n do t[i] = tostring(t[i]) end
    f:write(table.concat(t, "|", 1, t.n), "\n")
  end
  local s = core.tcp()
  s:settimeout(2)
  s:connect("127.0.0.1", {port})
  show(s:receive("*l"))
  show(s:receive("*l"))
  show(s:receive("*l"))
  show(s:receive("*a", "p:"))
  show(s:receive(3))
  local s2 = core.tcp()
  s2:settimeout(2)
  s2:connect("127.0.0.1", {port})
  show(s2:receive("*a"))
  show(s2:receive("*a"))
  f:write("end\n")
  f:close()
end)
"#,
        out = out.display().to_string()
    );
    let s = script(&dir, "r.lua", &body);
    let (_reg, eng) = start(&format!("global\n    lua-load {s}\n"));
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    assert!(wait_until(T, || read().ends_with("end\n")), "{}", read());
    assert_eq!(
        read(),
        "one\ntwo\nnil|connection closed.\np:\nnil|connection closed.\n\
         one\r\ntwo\nnil|connection closed.\nend\n"
    );
    eng.stop();
}
