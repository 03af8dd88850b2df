//! Server states saved before a restart (`show servers state > file`) and applied at start-up to
//! the backends that say `load-server-state-from-file global|local`, as HAProxy does across its
//! reloads: a server put into maintenance or drain stays there, one that was down starts down
//! until its checks say otherwise, a changed weight is kept, and a server found by name gets its
//! last address back (`init-addr last`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{AdminAction, AdminFlags, Cause, Command, ForcedHealth, Registry};
use crate::config::{Config, Global, InitAddr, LoadServerState, ProxyConfig};

/// One server line of a state file (format version 1), the fields harp applies.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SavedServer {
    backend: String,
    server: String,
    addr: String,
    op_state: u8,
    admin: u8,
    uweight: u32,
    /// The configured weight when the file was written: a saved `uweight` is applied only
    /// while the configuration still says the same, so an edited weight wins (HAProxy's rule).
    iweight: u32,
    port: Option<u16>,
    /// `srv_check_state` and `srv_agent_state` (0 when the line stops before them): only a
    /// check configured but disabled (`disable health|agent`) is carried over, as in HAProxy.
    check_state: u32,
    agent_state: u32,
}

/// A server line whose values are out of range: HAProxy skips it with
/// `server-state application failed for server '<be>/<srv>', invalid <field> value '<v>'`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BadLine {
    backend: String,
    server: String,
    why: String,
}

/// Parses a state file: the version line, then one line per server (comments skipped); a line
/// with out-of-range values is returned as [`BadLine`] so that it is reported, not applied.
fn parse(text: &str) -> Result<Vec<Result<SavedServer, BadLine>>, String> {
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some("1") => {}
        Some(v) => return Err(format!("unknown format version '{v}'")),
        None => return Err("empty file".into()),
    }
    let mut out = Vec::new();
    for l in lines {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 9 {
            continue;
        }
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        // HAProxy's checks (srv_state_srv_update), every invalid field named: op_state
        // STOPPED..STOPPING; the admin state without its inherited and resolution flags (and
        // the fqdn ones of 2.x and 3.x) one of the combinations HAProxy writes; weights up to
        // 256; a port up to 65535
        let admin = num(6).map(|v| v & !0xF2);
        let checks: [(usize, &str, Option<u64>, bool); 5] = [
            (5, "srv_op_state", num(5), num(5).is_some_and(|v| v <= 3)),
            (
                6,
                "srv_admin_state",
                admin,
                admin.is_some_and(|v| [0, 1, 4, 5, 8, 12].contains(&v)),
            ),
            (7, "srv_uweight", num(7), num(7).is_some_and(|v| v <= 256)),
            (8, "srv_iweight", num(8), num(8).is_some_and(|v| v <= 256)),
            (
                18,
                "srv_port",
                num(18),
                f.get(18)
                    .map_or(true, |p| *p == "-" || num(18).is_some_and(|v| v <= 65535)),
            ),
        ];
        let why: Vec<String> = checks
            .iter()
            .filter(|c| !c.3)
            .map(|&(i, field, ..)| format!("invalid {field} value '{}'", f[i]))
            .collect();
        let v: Vec<u32> = checks.iter().map(|c| c.2.unwrap_or(0) as u32).collect();
        out.push(match why.is_empty() {
            true => Ok(SavedServer {
                backend: f[1].to_string(),
                server: f[3].to_string(),
                addr: f[4].to_string(),
                op_state: v[0] as u8,
                admin: v[1] as u8,
                uweight: v[2],
                iweight: v[3],
                port: num(18)
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p > 0),
                check_state: num(13).unwrap_or(0) as u32,
                agent_state: num(14).unwrap_or(0) as u32,
            }),
            false => Err(BadLine {
                backend: f[1].to_string(),
                server: f[3].to_string(),
                why: why.join(", "),
            }),
        });
    }
    Ok(out)
}

/// A state file's path: relative names are under `server-state-base`.
fn resolve(base: Option<&Path>, name: &Path) -> PathBuf {
    match base {
        Some(b) if name.is_relative() => b.join(name),
        _ => name.to_path_buf(),
    }
}

/// The state file a backend loads, if it loads one.
fn file_of(g: &Global, p: &ProxyConfig) -> Option<PathBuf> {
    let base = g.server_state_base.as_deref();
    match p.load_server_state {
        LoadServerState::None => None,
        LoadServerState::Global => g.server_state_file.as_ref().map(|f| resolve(base, f)),
        LoadServerState::Local => {
            let name = p
                .server_state_file_name
                .clone()
                .unwrap_or_else(|| p.name.to_string());
            Some(resolve(base, Path::new(&name)))
        }
    }
}

/// Before the servers exist: a server written with a name whose `init-addr` has `last` takes
/// its saved address as its first one, as HAProxy applies the state file before `init-addr`;
/// so it does not start in resolution maintenance (nor log leaving it). Files that cannot be
/// read are left to [`load`] to report.
pub fn preload_addresses(cfg: &mut Config) {
    let mut files: HashMap<PathBuf, Vec<SavedServer>> = HashMap::new();
    for p in cfg.proxies.iter_mut().filter(|p| p.cap.backend) {
        let Some(path) = file_of(&cfg.global, p) else {
            continue;
        };
        let saved = files.entry(path.clone()).or_insert_with(|| {
            std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| parse(&t).ok())
                .map(|lines| lines.into_iter().flatten().collect())
                .unwrap_or_default()
        });
        for s in p.servers.iter_mut().filter(|s| takes_last(&s.params)) {
            let found = saved
                .iter()
                .find(|l| *l.backend == *p.name && l.server == s.name)
                .and_then(|l| l.addr.parse::<IpAddr>().ok().map(|ip| (ip, l.port)))
                .filter(|(ip, _)| !ip.is_unspecified());
            if let Some((ip, port)) = found {
                s.addr = std::net::SocketAddr::new(ip, port.unwrap_or(s.addr.port()));
                s.params.unresolved = false;
            }
        }
    }
}

/// `init-addr last` (part of the default `last,libc`) for a server written with a name.
fn takes_last(p: &crate::config::ServerParams) -> bool {
    p.fqdn.is_some()
        && p.init_addr
            .as_ref()
            .map_or(true, |m| m.contains(&InitAddr::Last))
}

/// Applies the saved states to the backends that load them; problems (a missing file, a server
/// no longer configured) are logged as warnings, as HAProxy logs them, and start-up goes on.
pub fn load(reg: &Registry) {
    let g = reg.global();
    let mut files: HashMap<PathBuf, Option<Vec<Result<SavedServer, BadLine>>>> = HashMap::new();
    for p in reg.proxies().iter().filter(|p| p.is_backend()) {
        let Some(path) = file_of(g, &p.config) else {
            continue;
        };
        let saved = files.entry(path.clone()).or_insert_with(|| {
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| parse(&t))
            {
                Ok(s) => Some(s),
                Err(e) => {
                    crate::logging::warning(&format!(
                        "Can't load server state file '{}': {e}.",
                        path.display()
                    ));
                    None
                }
            }
        });
        let Some(saved) = saved else { continue };
        for line in saved.iter() {
            let (backend, server) = match line {
                Ok(l) => (&l.backend, &l.server),
                Err(bad) => (&bad.backend, &bad.server),
            };
            if **backend != *p.name {
                continue;
            }
            // the server first, as HAProxy looks it up before it reads the values
            let Some(s) = p.servers().iter().find(|s| *s.name == **server).cloned() else {
                crate::logging::warning(&format!(
                    "Server state file: server '{backend}/{server}' not found (it may have been removed)."
                ));
                continue;
            };
            match line {
                Ok(l) => apply(reg, &s, l),
                Err(bad) => crate::logging::warning(&format!(
                    "server-state application failed for server '{backend}/{server}', {}",
                    bad.why
                )),
            }
        }
    }
}

fn apply(reg: &Registry, s: &std::sync::Arc<super::Server>, line: &SavedServer) {
    let flags = AdminFlags(line.admin);
    // `init-addr last` (part of the default `last,libc`): a server written with a name takes
    // its last address back, a resolved one included
    if let (true, Ok(ip)) = (takes_last(&s.params), line.addr.parse::<IpAddr>()) {
        if !ip.is_unspecified() {
            let _ = reg.apply(Command::SetAddr {
                server: s.clone(),
                ip,
                port: line.port,
                cause: Cause::Config,
            });
            if s.admin().has(AdminFlags::RMAINT) {
                let _ = reg.apply(Command::Resolved {
                    server: s.clone(),
                    outcome: Ok(ip),
                    by: "server-state".into(),
                });
            }
        }
    }
    if flags.has(AdminFlags::FMAINT) && !s.admin().has(AdminFlags::FMAINT) {
        let _ = reg.apply(Command::SetAdmin {
            server: s.clone(),
            action: AdminAction::Maint,
            cause: Cause::Config,
        });
    } else if flags.has(AdminFlags::FDRAIN)
        && !s.admin().has(AdminFlags::FDRAIN)
        // not over a forced maintenance (a server configured `disabled`), as HAProxy
        && !s.admin().has(AdminFlags::FMAINT)
        // a drain inherited from a configured weight of 0 is dropped once the configuration
        // gives a weight; one set from the CLI stays (HAProxy's rule)
        && (line.iweight > 0 || s.iweight() == 0)
    {
        let _ = reg.apply(Command::SetAdmin {
            server: s.clone(),
            action: AdminAction::Drain,
            cause: Cause::Config,
        });
    }
    // a server that was down starts down, until its checks bring it up
    if line.op_state == 0 && !flags.maint() && s.check_state().enabled && s.op_state().is_up() {
        let _ = reg.apply(Command::SetHealth {
            server: s.clone(),
            health: ForcedHealth::Down,
            cause: Cause::Config,
        });
    }
    // HAProxy carries over one thing of the checks: `disable health|agent` (configured, not
    // enabled)
    let disabled = |st: u32| st & 0x02 != 0 && st & 0x04 == 0;
    if disabled(line.check_state) && s.check_state().configured {
        let _ = reg.apply(Command::SetCheckEnabled {
            server: s.clone(),
            enabled: false,
        });
    }
    if disabled(line.agent_state) && s.agent_state().check.configured {
        let _ = reg.apply(Command::SetAgentEnabled {
            server: s.clone(),
            enabled: false,
        });
    }
    if line.iweight == s.iweight() && line.uweight != s.uweight() {
        let _ = reg.apply(Command::SetWeight {
            server: s.clone(),
            weight: line.uweight.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_lines_parse_as_show_servers_state_writes_them() {
        let text = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n\
                    3 test 1 webserver1 127.0.0.1 0 1 50 1 12 6 3 0 2 22 0 0 - 29081 - 0 0 - - 0\n";
        let s = parse(text).unwrap();
        assert_eq!(
            s,
            vec![Ok(SavedServer {
                backend: "test".into(),
                server: "webserver1".into(),
                addr: "127.0.0.1".into(),
                op_state: 0,
                admin: 1,
                uweight: 50,
                iweight: 1,
                port: Some(29081),
                check_state: 2,
                agent_state: 22,
            })]
        );
        assert!(parse("2\n").is_err());
        // the admin state's inherited and fqdn flags are dropped (160: a name changed at run
        // time); combinations HAProxy never writes are refused, every bad field named
        let admin = |v: &str| {
            parse(&format!("1\n3 test 1 web1 127.0.0.1 2 {v} 1 1 0\n")).unwrap()[0]
                .clone()
                .map(|l| l.admin)
        };
        assert_eq!(admin("160"), Ok(0));
        assert_eq!(admin("12"), Ok(12));
        assert!(admin("9").is_err());
        let two = parse("1\n3 test 1 web1 127.0.0.1 7 9 1 1 0\n").unwrap();
        assert_eq!(
            two[0].clone().unwrap_err().why,
            "invalid srv_op_state value '7', invalid srv_admin_state value '9'"
        );
        // out-of-range values are reported, not clamped into something else
        let bad =
            parse("1\n3 test 1 web1 127.0.0.1 2 999 1 1 0\n3 test 2 web2 127.0.0.1 2 0 300 1 0\n")
                .unwrap();
        assert_eq!(
            bad,
            vec![
                Err(BadLine {
                    backend: "test".into(),
                    server: "web1".into(),
                    why: "invalid srv_admin_state value '999'".into(),
                }),
                Err(BadLine {
                    backend: "test".into(),
                    server: "web2".into(),
                    why: "invalid srv_uweight value '300'".into(),
                }),
            ]
        );
        assert_eq!(
            resolve(Some(Path::new("/b")), Path::new("f")),
            PathBuf::from("/b/f")
        );
        assert_eq!(
            resolve(Some(Path::new("/b")), Path::new("/f")),
            PathBuf::from("/f")
        );
    }
}
