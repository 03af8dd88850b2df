//! Replays the HAProxy 3.2 Runtime API transcript (`testdata/runtime-api.txt`) against harp's
//! executor and compares replies byte for byte, time-dependent values aside.

use std::sync::Arc;

use super::commands::{Executor, SessionState};
use super::parse;
use super::InfoHook;
use crate::config::AccessLevel;
use crate::model::{CheckResult, CheckStatus, Command};

const TRANSCRIPT: &str = include_str!("testdata/runtime-api.txt");

/// (command, reply) pairs of the transcript.
fn pairs() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in TRANSCRIPT.lines() {
        if let Some(rest) = line.strip_prefix("$ echo \"") {
            let cmd = rest.split("\" | socat").next().unwrap_or_default();
            out.push((cmd.to_string(), String::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    out
}

fn run(x: &Executor, st: &mut SessionState, line: &str) -> String {
    let mut out = String::new();
    for c in parse::split_commands(line) {
        if let Some(cmd) = parse::parse_command(&c) {
            out.push_str(&x.execute(cmd, st).text);
            out.push('\n');
        }
    }
    out
}

/// Blanks fields whose value depends on wall time or on HAProxy internals harp does not have.
fn normalize(cmd: &str, reply: &str) -> String {
    const TIMED: &[&str] = &["lastchg", "downtime", "need_conn_est"];
    if cmd.starts_with("show servers state") {
        return reply
            .lines()
            .map(|l| {
                let mut w: Vec<&str> = l.split(' ').collect();
                if w.len() > 16 && !l.starts_with('#') {
                    w[9] = "T";
                }
                w.join(" ") + "\n"
            })
            .collect();
    }
    if cmd == "show stat typed" {
        return reply
            .lines()
            .map(|l| {
                let name = l.split('.').nth(4).unwrap_or_default();
                if TIMED.contains(&name) {
                    let cut = l.rfind(':').map(|i| &l[..i]).unwrap_or(l);
                    format!("{cut}:T\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
    }
    if cmd == "show stat" {
        let header = super::render::stat_header();
        let names: Vec<&str> = header
            .trim_start_matches("# ")
            .trim_end()
            .split(',')
            .collect();
        return reply
            .lines()
            .map(|l| {
                if l.starts_with('#') || l.is_empty() {
                    return format!("{l}\n");
                }
                let cols: Vec<String> = l
                    .split(',')
                    .enumerate()
                    .map(|(i, v)| {
                        if TIMED.contains(&names.get(i).copied().unwrap_or("")) && !v.is_empty() {
                            "T".to_string()
                        } else {
                            v.to_string()
                        }
                    })
                    .collect();
                cols.join(",") + "\n"
            })
            .collect();
    }
    reply.to_string()
}

fn result(status: CheckStatus, info: Option<&str>) -> CheckResult {
    CheckResult {
        status,
        duration_ms: 0,
        info: info.map(String::from),
        code: None,
        agent: false,
    }
}

#[test]
fn transcript_replay() {
    let (reg, _sub) = crate::testutil::reference_registry();
    let w1 = reg.find_server("test/webserver1").expect("w1");
    // The transcript's start: the first check failed, then two passed.
    for r in [
        result(CheckStatus::L4Con, Some("Connection refused")),
        result(CheckStatus::L4Ok, None),
        result(CheckStatus::L4Ok, None),
    ] {
        reg.apply(Command::CheckDone {
            server: w1.clone(),
            result: r,
        })
        .expect("check");
    }
    let hook: InfoHook = Arc::new(Vec::new);
    let x = Executor::new(reg, hook);
    let mut checked = 0;
    for (cmd, want) in pairs() {
        // harp lists its own commands and keywords; those replies are tested elsewhere.
        if cmd == "help" || cmd == "frobnicate" || cmd == "add server help" || cmd == "show info" {
            continue;
        }
        let mut st = SessionState {
            level: AccessLevel::Admin,
            interactive: false,
            experimental: false,
        };
        let got = run(&x, &mut st, &cmd);
        assert_eq!(
            normalize(&cmd, &got),
            normalize(&cmd, &want),
            "reply to {cmd:?}"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} commands replayed");
}

#[test]
fn show_info_keeps_haproxy_field_names_in_order() {
    let (reg, _sub) = crate::testutil::reference_registry();
    let hook: InfoHook = Arc::new(|| vec![("LuaMemory_bytes".into(), "1234".into())]);
    let x = Executor::new(reg, hook);
    let mut st = SessionState {
        level: AccessLevel::User,
        interactive: false,
        experimental: false,
    };
    let got = run(&x, &mut st, "show info");
    let want = pairs()
        .into_iter()
        .find(|(c, _)| c == "show info")
        .map(|(_, r)| r)
        .expect("show info in transcript");
    let names = |s: &str| -> Vec<String> {
        s.lines()
            .filter_map(|l| l.split_once(": ").map(|(k, _)| k.to_string()))
            .collect()
    };
    let (g, w) = (names(&got), names(&want));
    assert_eq!(&g[..w.len()], &w[..]);
    assert_eq!(
        &g[w.len()..],
        ["LuaEventsDropped", "LuaMemory_bytes", "EventsDropped"]
    );
    assert!(got.starts_with("Name: harp\nVersion: 0.1.0\n"));
    assert!(got.contains("LuaMemory_bytes: 1234\n"));
    assert!(got.ends_with("\n\n"));
    let typed = run(&x, &mut st, "show info typed");
    assert!(typed.starts_with("0.Name.1:POS:str:harp\n"), "{typed}");
    let json = run(&x, &mut st, "show info json");
    assert!(
        json.starts_with("[{\"field\":{\"pos\":0,\"name\":\"Name\"}"),
        "{json}"
    );
}

#[test]
fn stat_filters_and_json() {
    let (reg, _sub) = crate::testutil::reference_registry();
    let hook: InfoHook = Arc::new(Vec::new);
    let x = Executor::new(reg, hook);
    let mut st = SessionState {
        level: AccessLevel::User,
        interactive: false,
        experimental: false,
    };
    let only_srv = run(&x, &mut st, "show stat test 4 -1");
    assert_eq!(
        only_srv
            .lines()
            .filter(|l| l.starts_with("test,web"))
            .count(),
        2
    );
    assert!(!only_srv.contains("BACKEND") && !only_srv.contains("FRONTEND"));
    let one = run(&x, &mut st, "show stat 3 4 2");
    assert!(one.contains("test,webserver2,") && !one.contains("webserver1"));
    assert_eq!(
        run(&x, &mut st, "show stat nope 1 -1"),
        "No such proxy.\n\n"
    );
    let json = run(&x, &mut st, "show stat json");
    assert!(json.starts_with("[[{\"objType\":\"Frontend\",\"proxyId\":2,\"id\":0,\"field\":{\"pos\":0,\"name\":\"pxname\"}"), "{json}");
    assert!(json.ends_with("]]\n\n"));
    let mut st = SessionState {
        level: AccessLevel::Admin,
        interactive: false,
        experimental: false,
    };
    run(&x, &mut st, "set server test/webserver2 state maint");
    let nm = run(&x, &mut st, "show stat no-maint");
    assert!(!nm.contains("webserver2") && nm.contains("webserver1"));
    run(&x, &mut st, "set server test/webserver1 health down");
    let up = run(&x, &mut st, "show stat up");
    assert!(!up.contains("webserver1") && !up.contains("webserver2"));
    assert!(up.contains("test,BACKEND,"));
}
