//! Agent checks (`agent-check`): the server's own agent says in one line how the server is,
//! and the model applies it as HAProxy's `tcpcheck_agent_expect_reply` does.
//!
//! The reply is words separated by spaces, tabs or commas, in any order, the last of a kind
//! winning: a health (`up`, `down`, `stopped`, `fail`), an admin state (`ready`, `drain`,
//! `maint`), a weight (`75%`), a `maxconn:<n>`; after a `#`, a description of the health.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::check::{CheckOutcome, CheckReport, CheckResult, CheckStatus};
use super::server::{CheckState, Server};
use super::state::{AdminFlags, Cause, OpState};
use super::Registry;

/// The agent check of one server: its check state, and where it goes (`set server ...
/// agent-addr|agent-port|agent-send` change that at run time).
#[derive(Debug, Clone)]
pub struct AgentState {
    /// Configured/enabled flags, the agent's own health counter (rise 1, fall 1 as in
    /// HAProxy) and its last report.
    pub check: CheckState,
    /// `agent-addr`; unset: the server's address.
    pub addr: Option<IpAddr>,
    /// `agent-port` (0: none).
    pub port: u16,
    /// `agent-send`: what is written once connected.
    pub send: Option<String>,
}

/// What one agent check run brought back, as the check thread reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentReply {
    /// A whole line (without its CR/LF).
    Line(String),
    /// The agent closed before ending its line: HAProxy ignores such a reply.
    Incomplete,
    /// No reply: connect error or timeout, empty answer (a failed check that never counts
    /// against the server: its health is the health check's business).
    Failed(super::CheckResult),
}

/// A reply line's words, by kind (the last of each kind; the first unknown word).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AgentWords<'a> {
    /// `up`, `down`, `stopped` or `fail`, as written.
    pub health: Option<&'a str>,
    /// `ready`, `drain` or `maint`, as written.
    pub admin: Option<&'a str>,
    /// A word starting with a digit and holding a `%`.
    pub weight: Option<&'a str>,
    /// What follows `maxconn:`.
    pub maxconn: Option<&'a str>,
    /// The first word of no known kind.
    pub error: Option<&'a str>,
    /// After `#` and its blanks: why, for the health's log line.
    pub desc: &'a str,
}

impl AgentWords<'_> {
    /// Whether the health word says the server is up (else, when set, down).
    pub fn says_up(&self) -> Option<bool> {
        self.health.map(|h| h.eq_ignore_ascii_case("up"))
    }
}

/// The line an agent sent: up to its first CR or LF; `None` while none came.
pub fn first_line(buf: &[u8]) -> Option<String> {
    let end = buf
        .iter()
        .position(|&b| b == b'\n' || b == b'\r' || b == 0)?;
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// Splits a reply line into its words, as HAProxy reads them (case-insensitive).
pub fn parse_reply(line: &str) -> AgentWords<'_> {
    let mut w = AgentWords::default();
    let is_sep = |c: char| c == ' ' || c == '\t' || c == ',';
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches(is_sep);
        if rest.is_empty() {
            break;
        }
        if let Some(d) = rest.strip_prefix('#') {
            w.desc = d.trim_start_matches([' ', '\t']);
            break;
        }
        let end = rest.find(is_sep).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        rest = tail;
        let is = |k: &str| word.eq_ignore_ascii_case(k);
        if is("up") || is("down") || is("stopped") || is("fail") {
            w.health = Some(word);
        } else if is("ready") || is("drain") || is("maint") {
            w.admin = Some(word);
        } else if word.starts_with(|c: char| c.is_ascii_digit()) && word.contains('%') {
            w.weight = Some(word);
        } else if word
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("maxconn:"))
        {
            w.maxconn = Some(&word[8..]);
        } else if w.error.is_none() {
            w.error = Some(word);
        }
    }
    w
}

/// The `info` of the check report for a parsed line: HAProxy's `via agent : down (why)`,
/// `agent reports an error : <word>` or `agent warns : <warning>`.
pub fn reply_info(w: &AgentWords<'_>, warning: Option<&str>) -> Option<String> {
    let warning = warning.filter(|m| !m.is_empty());
    let error = w.error.filter(|m| !m.is_empty());
    if let Some(h) = w.health {
        let mut msg = w.desc;
        if msg.is_empty() || w.says_up() == Some(true) {
            if let Some(m) = error.or(warning) {
                msg = m;
            }
        }
        return Some(if msg.is_empty() {
            format!("via agent : {h}")
        } else {
            format!("via agent : {h} ({msg})")
        });
    }
    if let Some(e) = error {
        return Some(format!("agent reports an error : {e}"));
    }
    warning.map(|m| format!("agent warns : {m}"))
}

impl Registry {
    /// Applies an agent's reply in HAProxy's order: admin state, weight, `maxconn`, then the
    /// health, which also moves the health check's counter (`up` to its top, `down` to 0).
    pub(super) fn agent_done(&self, s: &Arc<Server>, reply: AgentReply, duration_ms: i64) {
        if s.deleted() || !s.agent_enabled() {
            // HAProxy ignores the reply of an agent disabled while it was asked
            return;
        }
        let line = match reply {
            AgentReply::Failed(result) => return self.agent_report(s, result),
            AgentReply::Incomplete => {
                // HAProxy sets the status it had again, with this description
                let prev = s.agent_state().check.status();
                return self.agent_report(
                    s,
                    CheckResult {
                        status: prev,
                        duration_ms,
                        info: Some("Ignoring incomplete line from agent".into()),
                        code: prev.has_code().then_some(0),
                        agent: true,
                    },
                );
            }
            AgentReply::Line(line) => line,
        };
        let w = parse_reply(&line);
        // the health word moves the health check's counter while the line is read, before
        // the admin word (leaving maintenance then starts it again at `rise`)
        let mut status = CheckStatus::Checked;
        if let Some(up) = w.says_up() {
            let mut c = s.check.lock().unwrap_or_else(|e| e.into_inner());
            c.health.cur = if up {
                c.health.rise + c.health.fall - 1
            } else {
                0
            };
            status = if up {
                CheckStatus::L7Ok
            } else {
                CheckStatus::L7Sts
            };
        }
        if let Some(word) = w.admin {
            // HAProxy's srv_adm_set_drain/maint/ready: set one flag, then clear the other
            let (set, clear) = if word.eq_ignore_ascii_case("drain") {
                (AdminFlags::FDRAIN, AdminFlags::FMAINT)
            } else if word.eq_ignore_ascii_case("maint") {
                (AdminFlags::FMAINT, AdminFlags::FDRAIN)
            } else {
                (0, AdminFlags::FDRAIN | AdminFlags::FMAINT)
            };
            if set != 0 {
                let new = AdminFlags(s.admin().0 | set);
                self.change(s, None, Some(new), Cause::Check, None);
            }
            let new = AdminFlags(s.admin().0 & !clear);
            self.change(s, None, Some(new), Cause::Check, None);
        }
        let mut warning: Option<String> = None;
        if let Some(weight) = w.weight {
            if let Err(e) = self.set_weight(s, weight) {
                warning = Some(e.to_string());
            }
        }
        if let Some(m) = w.maxconn {
            match super::parse_maxconn(m) {
                Ok(v) => {
                    s.set_maxconn(v);
                    self.bump(s);
                }
                Err(e) => {
                    warning.get_or_insert_with(|| e.to_string());
                }
            }
        }
        let info = reply_info(&w, warning.as_deref());
        self.agent_report(
            s,
            CheckResult {
                status,
                duration_ms,
                info,
                code: status.has_code().then_some(0),
                agent: true,
            },
        );
    }

    /// HAProxy's `set_server_check_status` for the agent, then its `check_notify_*`: only
    /// an agent's own `down`/`stopped`/`fail` counts against it (a connect error does not),
    /// and the server goes up only when the health check agrees.
    fn agent_report(&self, s: &Arc<Server>, result: CheckResult) {
        let status = result.status;
        let outcome = status.outcome();
        let (report, last, health, fell) = {
            let mut a = s.agent.lock().unwrap_or_else(|e| e.into_inner());
            // HAProxy reports a new status as well as a health that moved; a neutral result
            // (no health word) only records its status
            let mut changed = a.check.status() != status && outcome != CheckOutcome::Neutral;
            // only the agent's own health words count (status >= L57DATA), and a pass; the
            // counter moves by the health check's rules
            let before = a.check.health;
            match outcome {
                CheckOutcome::Failed if status.has_code() => {
                    a.check.health.apply(false, true);
                }
                CheckOutcome::Passed | CheckOutcome::CondPass => {
                    a.check.health.apply(true, true);
                }
                _ => {}
            }
            let h = &a.check.health;
            let moved = *h != before;
            changed |= moved;
            let fell = moved && outcome == CheckOutcome::Failed;
            let report = CheckReport {
                result,
                outcome,
                health: *h,
            };
            a.check.last = Some(report.clone());
            let health = a.check.health;
            (changed.then(|| report.clone()), report, health, fell)
        };
        if fell {
            s.counters.chkfail.fetch_add(1, Ordering::Relaxed);
        }
        if matches!(outcome, CheckOutcome::Passed | CheckOutcome::CondPass) {
            s.clear_passive_errors();
        }
        // events and logs only for a new status or health; the verdict below, every time
        if let Some(r) = &report {
            self.check_reported(s, r);
        }
        let report = last;
        match status {
            CheckStatus::L7Sts if health.cur == 0 => {
                self.change(s, Some(OpState::Stopped), None, Cause::Check, Some(report));
            }
            CheckStatus::L7Ok => {
                let c = s.check_state();
                let blocked = s.admin().maint()
                    || s.tracked()
                        .is_some_and(|t| t.op_state() == OpState::Stopped)
                    || (c.enabled && c.health.cur < c.health.rise)
                    || health.cur < health.rise
                    || s.op_state() == OpState::Stopping;
                if !blocked {
                    self.change(s, Some(self.up_state(s)), None, Cause::Check, Some(report));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Command, Registry};

    /// The transcript's registry with webserver1 (checked) given an agent too.
    fn with_agent() -> (Arc<Registry>, Arc<Server>) {
        let mut cfg = crate::testutil::reference_config();
        let p = &mut cfg.proxies[1].servers[0].params;
        p.agent_check = true;
        p.agent_port = Some(1);
        let bus = Arc::new(crate::events::EventBus::new());
        let reg = Registry::new(cfg, bus);
        let s = reg.find_server("test/webserver1").expect("server");
        (reg, s)
    }

    fn line(reg: &Registry, s: &Arc<Server>, text: &str) {
        reg.apply(Command::AgentDone {
            server: s.clone(),
            reply: AgentReply::Line(text.into()),
            duration_ms: 0,
        })
        .expect("applied");
    }

    /// The agent could not be asked (connect error or timeout).
    fn unreachable(reg: &Registry, s: &Arc<Server>, status: CheckStatus) {
        reg.apply(Command::AgentDone {
            server: s.clone(),
            reply: AgentReply::Failed(CheckResult {
                status,
                duration_ms: 0,
                info: None,
                code: None,
                agent: true,
            }),
            duration_ms: 0,
        })
        .expect("applied");
    }

    fn health_check(reg: &Registry, s: &Arc<Server>, passed: bool) {
        let status = if passed {
            CheckStatus::L4Ok
        } else {
            CheckStatus::L4Con
        };
        reg.apply(Command::CheckDone {
            server: s.clone(),
            result: CheckResult {
                status,
                duration_ms: 0,
                info: None,
                code: None,
                agent: false,
            },
        })
        .expect("applied");
    }

    #[test]
    fn both_checks_must_agree_to_go_up() {
        let (reg, s) = with_agent();
        assert!(s.op_state().is_up());
        line(&reg, &s, "down");
        assert_eq!(s.op_state(), OpState::Stopped);
        assert_eq!(
            s.check_state().health.cur,
            0,
            "down zeroes the health check"
        );
        // the health check comes back, the agent has not: still down
        health_check(&reg, &s, true);
        health_check(&reg, &s, true);
        assert_eq!(s.check_state().health.cur, 3);
        assert_eq!(s.op_state(), OpState::Stopped);
        // a reply without health changes nothing; an unreachable agent neither
        line(&reg, &s, "ready");
        unreachable(&reg, &s, CheckStatus::L4Con);
        assert_eq!(s.op_state(), OpState::Stopped);
        line(&reg, &s, "up");
        assert_eq!(s.op_state(), OpState::Running);
        // the health check alone can take it down; the agent's up brings it back
        health_check(&reg, &s, false);
        health_check(&reg, &s, false);
        assert_eq!(s.op_state(), OpState::Stopped);
        line(&reg, &s, "up");
        assert_eq!(s.op_state(), OpState::Running, "up tops the health check");
    }

    #[test]
    fn unreachable_agent_counts_nothing() {
        let (reg, s) = with_agent();
        for _ in 0..5 {
            unreachable(&reg, &s, CheckStatus::L4Tout);
        }
        let a = s.agent_state().check;
        assert_eq!(a.health.cur, 1);
        assert_eq!(a.status(), CheckStatus::L4Tout);
        assert_eq!(s.counters.chkfail.load(Ordering::Relaxed), 0);
        assert!(s.op_state().is_up());
    }

    #[test]
    fn words_by_kind_last_wins() {
        let w = parse_reply("up 75%, drain\tmaxconn:30 down 50%");
        assert_eq!(w.health, Some("down"));
        assert_eq!(w.admin, Some("drain"));
        assert_eq!(w.weight, Some("50%"));
        assert_eq!(w.maxconn, Some("30"));
        assert_eq!(w.error, None);
        assert_eq!(w.says_up(), Some(false));
        let w = parse_reply("UP");
        assert_eq!(w.says_up(), Some(true));
        // a character across the 8th byte is a word like any other (no slicing inside it)
        let w = parse_reply("abcdefg\u{e9} MAXCONN:5 \u{fffd}\u{fffd}\u{fffd}");
        assert_eq!((w.error, w.maxconn), (Some("abcdefg\u{e9}"), Some("5")));
    }

    #[test]
    fn description_and_errors() {
        let w = parse_reply("down #  disk full, sorry");
        assert_eq!((w.health, w.desc), (Some("down"), "disk full, sorry"));
        assert_eq!(
            reply_info(&w, None).as_deref(),
            Some("via agent : down (disk full, sorry)")
        );
        let w = parse_reply("hello up world");
        assert_eq!(w.error, Some("hello"));
        // an up line reports the error rather than its description
        assert_eq!(
            reply_info(&w, None).as_deref(),
            Some("via agent : up (hello)")
        );
        let w = parse_reply("bogus");
        assert_eq!(
            reply_info(&w, None).as_deref(),
            Some("agent reports an error : bogus")
        );
        let w = parse_reply("999%");
        assert_eq!(
            reply_info(&w, Some("too high")).as_deref(),
            Some("agent warns : too high")
        );
        assert_eq!(reply_info(&parse_reply("ready"), None), None);
        assert_eq!(parse_reply("  ,, "), AgentWords::default());
    }

    #[test]
    fn reply_lines() {
        assert_eq!(first_line(b"up\r\n").as_deref(), Some("up"));
        assert_eq!(first_line(b"up 50%\nnext").as_deref(), Some("up 50%"));
        assert_eq!(first_line(b"up"), None);
    }
}
