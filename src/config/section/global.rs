//! The `global` section.

use super::{arg, log, no_more, Ctx};
use crate::config::suggest::unknown_keyword;
use crate::config::units::{parse_address, parse_on_off, parse_size, parse_time, parse_u32};
use crate::config::{
    AccessLevel, Global, IpFamily, LuaLoad, LuaLogStderr, LuaPrependPath, LuaPriority, StatsSocket,
};
use std::path::PathBuf;

/// Every keyword harp understands in `global` (for did-you-mean).
pub(crate) const KEYWORDS: &[&str] = &[
    "nbthread",
    "maxconn",
    "maxconnrate",
    "maxsessrate",
    "maxsslrate",
    "tune.pipesize",
    "tune.listener.incoming-cpu",
    "stats",
    "lua-load",
    "lua-load-per-thread",
    "lua-prepend-path",
    "tune.lua.maxmem",
    "tune.lua.forced-yield",
    "tune.lua.task-timeout",
    "tune.lua.burst-timeout",
    "tune.lua.session-timeout",
    "tune.lua.service-timeout",
    "tune.lua.log.loggers",
    "tune.lua.log.stderr",
    "tune.lua.bool-sample-conversion",
    "tune.lua.nice",
    "tune.lua.max-cpu",
    "httpclient.resolvers.id",
    "httpclient.resolvers.prefer",
    "httpclient.resolvers.disabled",
    "httpclient.retries",
    "httpclient.timeout.connect",
    "httpclient.ssl.ca-file",
    "httpclient.ssl.verify",
    "log",
    "log-tag",
    "daemon",
    "pidfile",
    "hard-stop-after",
    "spread-checks",
    "node",
    "description",
    "master-worker",
    "expose-experimental-directives",
    "insecure-fork-wanted",
    "user",
    "group",
    "uid",
    "gid",
    "chroot",
    "ca-base",
    "crt-base",
    "tune.bufsize",
    "tune.maxrewrite",
    "max-spread-checks",
    "ulimit-n",
    "maxpipes",
    "unix-bind",
    "ssl-server-verify",
    "server-state-file",
    "server-state-base",
    "quiet",
    "zero-warning",
    "nosplice",
    "tune.rcvbuf.client",
    "tune.rcvbuf.server",
    "tune.sndbuf.client",
    "tune.sndbuf.server",
    "setenv",
    "presetenv",
    "unsetenv",
    "resetenv",
];

/// HAProxy keywords that have no effect in harp: accepted with a warning.
const IGNORED: &[&str] = &[
    "cpu-map",
    "busy-polling",
    "set-dumpable",
    "insecure-setuid-wanted",
    "tune.maxaccept",
    "tune.recv_enough",
    "tune.idletimer",
    "tune.maxpollevents",
    "tune.runqueue-depth",
    "tune.pattern.cache-size",
    "tune.http.maxhdr",
    "tune.comp.maxlevel",
    "maxcompcpuusage",
    "profiling.tasks",
    "numa-cpu-mapping",
    "noepoll",
    "nopoll",
    "thread-groups",
    "grace",
    "external-check",
    "h1-case-adjust",
    "h1-case-adjust-file",
    "log-send-hostname",
    "strict-limits",
    "user",
    "group",
    "uid",
    "gid",
    "chroot",
    "tune.bufsize",
    "tune.maxrewrite",
];

/// Parses one `global` line.
/// `set-var <proc.name>[,<cond>...] <expr>` and `set-var-fmt <proc.name> <fmt>`: evaluated
/// now, in file order, as HAProxy does; only samples that need no session may be used.
fn set_var(g: &mut Global, words: &[String]) -> Result<(), String> {
    use crate::rules::logformat::{LogFormat, Use};
    use crate::rules::vars::{self, ProcEnv, ProcVars, Scope};
    use crate::rules::{Fetch, VarValue};
    let kw = words[0].as_str();
    let fmt = kw == "set-var-fmt";
    let (Some(name), Some(value)) = (words.get(1), words.get(2).filter(|v| !fmt || !v.is_empty()))
    else {
        let what = if fmt {
            "a format string"
        } else {
            "a sample expression"
        };
        return Err(format!(
            "'{kw}' requires a process-wide variable name ('proc.<name>') and {what}."
        ));
    };
    let action = format!("{kw}({name})");
    let (_, var, conds) = vars::parse_action(&action)?;
    let site = (String::new(), 0);
    let value = if fmt {
        let f = LogFormat::parse(value, "", &site, Use::TextNoContent)?;
        if let Some(what) = f.fetches().find_map(Fetch::session_source) {
            let text = value.split_once("%[").map_or(value.as_str(), |(_, r)| r);
            return Err(format!("sample fetch <{text}> may not be reliably used here because it needs '{what}' which is not available here"));
        }
        VarValue::Fmt(f)
    } else {
        let f = Fetch::parse(value, "")?;
        if let Some(what) = f.session_source() {
            return Err(format!(
                "fetch method '{action}' extracts information from '{what}', none of which is available here"
            ));
        }
        VarValue::Expr(f)
    };
    if var.scope != Scope::Proc {
        return Err(format!(
            "'{kw}': cannot set variable '{var}', only scope 'proc' is permitted in the global section."
        ));
    }
    // the variables so far, the ones this line may read
    let procs = ProcVars::default();
    for (n, v) in &g.proc_vars {
        match v {
            Some(v) => procs.set(n, v.clone(), &[]),
            None => {
                procs.declare(n);
                true
            }
        };
    }
    // HAProxy makes a `proc` variable exist as it parses the line
    procs.declare(&var);
    let env = ProcEnv(&procs);
    if let Some(v) = value.eval(&env) {
        procs.set(&var, v, &conds);
    }
    let now = procs.get(&var);
    let entry = match now {
        vars::Got::Val(v) => Some(v),
        _ => None,
    };
    match g.proc_vars.iter_mut().find(|(n, _)| *n == var) {
        Some(slot) => slot.1 = entry,
        None if procs.exists(&var) => g.proc_vars.push((var, entry)),
        None => {}
    }
    Ok(())
}

pub(crate) fn parse(g: &mut Global, words: &[String], ctx: &mut Ctx<'_>) -> Result<(), String> {
    let kw = words[0].as_str();
    match kw {
        "ssl-default-bind-options" => {
            let mut warnings = Vec::new();
            let r = crate::config::tls_options::default_bind_options(
                &mut g.bind_tls,
                &words[1..],
                &mut |w| warnings.push(w),
            );
            for w in warnings {
                ctx.warn(w);
            }
            return r;
        }
        "ssl-default-server-options" => {
            let mut i = 1;
            while i < words.len() {
                let w = words[i].as_str();
                if let Some(n) = g.server_tls.keyword(words, i)? {
                    i += n;
                } else if w == "no-tls-tickets" || w == "allow-0rtt" {
                    ctx.warn(format!(
                        "'{kw}' : '{w}' is not supported by harp's TLS (rustls); ignored."
                    ));
                    i += 1;
                } else {
                    return Err(format!("'{kw}' : unknown or unsupported option '{w}'."));
                }
            }
            return Ok(());
        }
        "ssl-default-server-ciphers" | "ssl-default-server-ciphersuites" => {
            let v = arg(words, 1, "a cipher suite string")?.to_string();
            no_more(words, 2)?;
            if kw.ends_with("suites") {
                g.server_tls.ciphersuites = Some(v);
            } else {
                g.server_tls.ciphers = Some(v);
            }
            return Ok(());
        }
        "ssl-default-bind-ciphers" | "ssl-default-bind-ciphersuites" => {
            let v = arg(words, 1, "a cipher suite string")?.to_string();
            no_more(words, 2)?;
            if kw.ends_with("suites") {
                g.bind_tls.tuning.ciphersuites = Some(v);
            } else {
                g.bind_tls.tuning.ciphers = Some(v);
            }
            return Ok(());
        }
        "crt-base" | "ca-base" => {
            let dir = std::path::PathBuf::from(arg(words, 1, "a directory")?);
            no_more(words, 2)?;
            if kw == "crt-base" {
                g.bind_tls.crt_base = Some(dir);
            } else {
                g.bind_tls.ca_base = Some(dir);
            }
            return Ok(());
        }
        "tune.ssl.cachesize" => {
            g.bind_tls.cache_size =
                Some(parse_u32(arg(words, 1, "an integer")?, kw, 0, i32::MAX as u32)? as usize);
            return no_more(words, 2);
        }
        _ => {}
    }
    if IGNORED.contains(&kw) || kw.starts_with("ssl-default-") || kw.starts_with("tune.ssl.") {
        ctx.warn(format!("'{kw}' has no effect in harp; ignored."));
        return Ok(());
    }
    match kw {
        "nbthread" => {
            g.nbthread =
                Some(parse_u32(arg(words, 1, "a number of threads")?, kw, 1, 4096)? as usize);
            no_more(words, 2)
        }
        "maxconn" => {
            g.maxconn = Some(parse_u32(
                arg(words, 1, "an integer")?,
                kw,
                1,
                i32::MAX as u32,
            )?);
            no_more(words, 2)
        }
        "maxsslconn" => {
            g.maxsslconn = parse_u32(arg(words, 1, "an integer")?, kw, 0, i32::MAX as u32)?;
            no_more(words, 2)
        }
        "tune.pipesize" => {
            let n = parse_size(arg(words, 1, "a size in bytes")?, kw)?;
            if !(4096..=(1 << 30)).contains(&n) {
                return Err(format!(
                    "'{kw}' expects a size from 4096 to 1g, got '{}'.",
                    words[1]
                ));
            }
            g.pipesize = Some(n as u32);
            no_more(words, 2)
        }
        "tune.listener.incoming-cpu" => {
            g.incoming_cpu = parse_on_off(arg(words, 1, "'on' or 'off'")?, kw)?;
            no_more(words, 2)
        }
        "stats" => stats(g, words, ctx),
        "set-var" | "set-var-fmt" => set_var(g, words),
        "lua-load" | "lua-load-per-thread" => {
            let file = arg(words, 1, "the path of a Lua file")?;
            g.lua_loads.push(LuaLoad {
                file: PathBuf::from(file),
                args: words[2..].to_vec(),
                per_thread: kw == "lua-load-per-thread",
                location: ctx.loc.clone(),
            });
            Ok(())
        }
        "lua-prepend-path" => {
            let path = arg(words, 1, "a path template")?.to_string();
            let cpath = match words.get(2).map(String::as_str) {
                None | Some("path") => false,
                Some("cpath") => true,
                Some(o) => {
                    return Err(format!(
                        "'{kw}': type must be 'path' or 'cpath', got '{o}'."
                    ))
                }
            };
            g.lua_prepend_paths.push(LuaPrependPath { path, cpath });
            no_more(words, 3)
        }
        "tune.lua.maxmem" => {
            let mb = parse_u32(arg(words, 1, "a size in megabytes")?, kw, 0, 1 << 20)?;
            g.lua.maxmem = u64::from(mb) << 20;
            no_more(words, 2)
        }
        "tune.lua.forced-yield" => {
            g.lua.forced_yield = Some(parse_u32(arg(words, 1, "an integer")?, kw, 1, u32::MAX)?);
            no_more(words, 2)
        }
        "tune.lua.task-timeout" => {
            g.lua.task_timeout = Some(parse_time(arg(words, 1, "a time")?, kw)?);
            no_more(words, 2)
        }
        "tune.lua.burst-timeout" => {
            g.lua.burst_timeout = parse_time(arg(words, 1, "a time")?, kw)?;
            no_more(words, 2)
        }
        "tune.lua.session-timeout" => {
            g.lua.session_timeout = parse_time(arg(words, 1, "a time")?, kw)?;
            no_more(words, 2)
        }
        "tune.lua.service-timeout" => {
            g.lua.service_timeout = parse_time(arg(words, 1, "a time")?, kw)?;
            no_more(words, 2)
        }
        "tune.lua.log.loggers" => {
            g.lua.log_loggers = parse_on_off(arg(words, 1, "'on' or 'off'")?, kw)?;
            no_more(words, 2)
        }
        "tune.lua.log.stderr" => {
            g.lua.log_stderr = match arg(words, 1, "'on', 'auto' or 'off'")? {
                "on" => LuaLogStderr::On,
                "auto" => LuaLogStderr::Auto,
                "off" => LuaLogStderr::Off,
                o => return Err(format!("'{kw}' expects 'on', 'auto' or 'off', got '{o}'.")),
            };
            no_more(words, 2)
        }
        "tune.lua.nice" => {
            // harp only: the Lua thread's scheduling priority (README, "Differences").
            let v = arg(words, 1, "a nice value (-20..19) or 'idle'")?;
            g.lua.priority = match v {
                "idle" => LuaPriority::Idle,
                _ => match v.parse::<i32>() {
                    Ok(n) if (-20..=19).contains(&n) => LuaPriority::Nice(n),
                    _ => {
                        return Err(format!(
                            "'{kw}' expects a nice value between -20 and 19 or 'idle', got '{v}'."
                        ))
                    }
                },
            };
            no_more(words, 2)
        }
        "tune.lua.max-cpu" => {
            // harp only: the CPU share of a script that runs long without yielding (README).
            let v = arg(words, 1, "a percentage (1..100)")?;
            let n = v.strip_suffix('%').unwrap_or(v);
            g.lua.max_cpu = parse_u32(n, kw, 1, 100)? as u8;
            no_more(words, 2)
        }
        "tune.lua.bool-sample-conversion" => {
            // Only matters for sample fetches, which harp does not run; accepted for configs
            // written for HAProxy 3.1+.
            match arg(words, 1, "'normal' or 'pre-3.1-bug'")? {
                "normal" | "pre-3.1-bug" => no_more(words, 2),
                o => Err(format!(
                    "'{kw}' expects 'normal' or 'pre-3.1-bug', got '{o}'."
                )),
            }
        }
        "httpclient.resolvers.id" => {
            g.httpclient.resolvers_id =
                Some(arg(words, 1, "a resolvers section name")?.to_string());
            no_more(words, 2)
        }
        "httpclient.resolvers.prefer" => {
            g.httpclient.prefer = Some(match arg(words, 1, "'ipv4' or 'ipv6'")? {
                "ipv4" => IpFamily::V4,
                "ipv6" => IpFamily::V6,
                o => return Err(format!("'{kw}' expects 'ipv4' or 'ipv6', got '{o}'.")),
            });
            no_more(words, 2)
        }
        "httpclient.resolvers.disabled" => {
            g.httpclient.resolvers_disabled = parse_on_off(arg(words, 1, "'on' or 'off'")?, kw)?;
            no_more(words, 2)
        }
        "httpclient.retries" => {
            g.httpclient.retries = parse_u32(arg(words, 1, "an integer")?, kw, 0, 1000)?;
            no_more(words, 2)
        }
        "httpclient.timeout.connect" => {
            g.httpclient.timeout_connect = parse_time(arg(words, 1, "a time")?, kw)?;
            no_more(words, 2)
        }
        "httpclient.ssl.ca-file" => {
            g.httpclient.ssl_ca_file = Some(PathBuf::from(arg(words, 1, "a file path")?));
            no_more(words, 2)
        }
        "httpclient.ssl.verify" => {
            g.httpclient.ssl_verify = match words.get(1).map(String::as_str) {
                Some("none") | Some("") => false,
                Some("required") => true,
                Some(o) => return Err(format!("'{kw}' expects 'none' or 'required', got '{o}'.")),
                None => return Err(format!("'{kw}' expects 'none' or 'required'.")),
            };
            no_more(words, 2)
        }
        "log" => log::parse(&mut g.logs, words, true, ctx.loc),
        "log-tag" => {
            g.log_tag = Some(arg(words, 1, "a tag")?.to_string());
            no_more(words, 2)
        }
        "daemon" => {
            g.daemon = true;
            no_more(words, 1)
        }
        "localpeer" => {
            g.localpeer = Some(arg(words, 1, "a name")?.to_string());
            no_more(words, 2)
        }
        "pidfile" => {
            g.pidfile = Some(PathBuf::from(arg(words, 1, "a file path")?));
            no_more(words, 2)
        }
        "hard-stop-after" => {
            g.hard_stop_after = Some(parse_time(arg(words, 1, "a time")?, kw)?);
            no_more(words, 2)
        }
        "spread-checks" => {
            g.spread_checks = parse_u32(arg(words, 1, "a percentage")?, kw, 0, 50)?;
            no_more(words, 2)
        }
        "max-spread-checks" => {
            g.max_spread_checks = Some(parse_time(arg(words, 1, "a time")?, kw)?);
            no_more(words, 2)
        }
        "setenv" | "presetenv" => Err(format!("'{kw}' expects exactly 2 arguments.")),
        "unsetenv" => Err(format!("'{kw}' expects at least 1 argument.")),
        "quiet" | "zero-warning" | "nosplice" => {
            match kw {
                "quiet" => g.quiet = true,
                "zero-warning" => g.zero_warning = true,
                _ => g.nosplice = true,
            }
            no_more(words, 1)
        }
        // HAProxy reads these with atol, after checking the number of words; a second line
        // is an alert that keeps the first value
        "maxconnrate" | "maxsessrate" | "maxsslrate" => {
            if let Some(x) = words.get(2) {
                return Err(format!("'{kw}' cannot handle unexpected argument '{x}'."));
            }
            let Some(v) = words.get(1) else {
                return Err(format!("'{kw}' expects an integer argument."));
            };
            let cur = match kw {
                "maxconnrate" => &mut g.maxconnrate,
                "maxsessrate" => &mut g.maxsessrate,
                _ => &mut g.maxsslrate,
            };
            if *cur != 0 {
                ctx.warn(format!("'{kw}' already specified. Continuing."));
                return Ok(());
            }
            *cur = crate::config::units::c_atol_u32(v);
            Ok(())
        }
        "maxpipes-per-thread" => {
            arg(words, 1, "an integer")?;
            ctx.warn(format!(
                "'{kw}' is not supported by harp; no rate limit is applied."
            ));
            Ok(())
        }
        "tune.rcvbuf.client" | "tune.rcvbuf.server" | "tune.sndbuf.client"
        | "tune.sndbuf.server" => {
            let v = Some(
                parse_size(arg(words, 1, "a size")?, kw)?.min(u64::from(i32::MAX as u32)) as u32,
            );
            match kw {
                "tune.rcvbuf.client" => g.bufs.rcv_client = v,
                "tune.rcvbuf.server" => g.bufs.rcv_server = v,
                "tune.sndbuf.client" => g.bufs.snd_client = v,
                _ => g.bufs.snd_server = v,
            }
            no_more(words, 2)
        }
        "server-state-file" | "server-state-base" => {
            let v = PathBuf::from(arg(words, 1, "a path")?);
            if kw == "server-state-file" {
                g.server_state_file = Some(v);
            } else {
                g.server_state_base = Some(v);
            }
            no_more(words, 2)
        }
        "ulimit-n" => {
            let n = parse_u32(arg(words, 1, "an integer")?, kw, 1, i32::MAX as u32)?;
            g.ulimit_n = Some(u64::from(n));
            no_more(words, 2)
        }
        "unix-bind" => {
            let mut ub = crate::config::UnixBind::default();
            let mut i = 1;
            while i < words.len() {
                let opt = words[i].as_str();
                let v = words
                    .get(i + 1)
                    .map(String::as_str)
                    .ok_or_else(|| format!("'{kw}' : '{opt}' expects an argument."))?;
                match opt {
                    "prefix" => ub.prefix = Some(v.to_string()),
                    "mode" => {
                        ub.mode = Some(u32::from_str_radix(v, 8).map_err(|_| {
                            format!("'{kw}' : 'mode' expects an octal value, got '{v}'.")
                        })?)
                    }
                    "user" | "uid" => ub.user = Some(v.to_string()),
                    "group" | "gid" => ub.group = Some(v.to_string()),
                    _ => {
                        return Err(format!(
                        "'{kw}' only supports 'prefix', 'mode', 'uid', 'gid', 'user' and 'group'."
                    ))
                    }
                }
                i += 2;
            }
            g.unix_bind = ub;
            Ok(())
        }
        "ssl-server-verify" => {
            g.ssl_server_verify = match arg(words, 1, "'none' or 'required'")? {
                "none" => false,
                "required" => true,
                o => return Err(format!("'{kw}' expects 'none' or 'required', got '{o}'.")),
            };
            no_more(words, 2)
        }
        "maxpipes" => {
            g.maxpipes = Some(parse_u32(
                arg(words, 1, "an integer")?,
                kw,
                0,
                i32::MAX as u32,
            )?);
            no_more(words, 2)
        }
        "node" => {
            g.node = Some(arg(words, 1, "a name")?.to_string());
            no_more(words, 2)
        }
        "description"
        | "master-worker"
        | "expose-experimental-directives"
        | "insecure-fork-wanted" => Ok(()),
        _ => Err(unknown(kw)),
    }
}

fn unknown(kw: &str) -> String {
    unknown_keyword(kw, "global", KEYWORDS)
}

/// `stats socket ...`, `stats timeout ...`, `stats maxconn ...`.
fn stats(g: &mut Global, words: &[String], ctx: &mut Ctx<'_>) -> Result<(), String> {
    match arg(words, 1, "'socket', 'timeout' or 'maxconn'")? {
        "socket" => {
            let mut addr = parse_address(arg(words, 2, "an address or a path")?, "stats socket")?;
            // `unix-bind` written before: its prefix and its defaults for unix sockets
            let ub = g.unix_bind.clone();
            let unix = matches!(addr, crate::config::Address::Unix(_));
            if let (crate::config::Address::Unix(p), Some(prefix)) = (&mut addr, &ub.prefix) {
                *p = std::path::PathBuf::from(format!("{prefix}{}", p.display()));
            }
            let mut s = StatsSocket {
                addr,
                level: AccessLevel::Operator,
                mode: ub.mode.filter(|_| unix),
                user: ub.user.filter(|_| unix),
                group: ub.group.filter(|_| unix),
                location: ctx.loc.clone(),
            };
            let mut i = 3;
            while i < words.len() {
                let opt = words[i].as_str();
                let val = || {
                    words
                        .get(i + 1)
                        .map(String::as_str)
                        .ok_or_else(|| format!("'stats socket' : '{opt}' expects an argument."))
                };
                match opt {
                    "level" => {
                        s.level = match val()? {
                            "user" => AccessLevel::User,
                            "operator" => AccessLevel::Operator,
                            "admin" => AccessLevel::Admin,
                            o => return Err(format!("'stats socket' : 'level' only supports 'user', 'operator', and 'admin', got '{o}'.")),
                        };
                    }
                    "mode" => {
                        let v = val()?;
                        s.mode = Some(
                            u32::from_str_radix(v, 8)
                                .map_err(|_| format!("'stats socket' : 'mode' expects an octal value, got '{v}'."))?,
                        );
                    }
                    "user" | "uid" => s.user = Some(val()?.to_string()),
                    "group" | "gid" => s.group = Some(val()?.to_string()),
                    "expose-fd" | "name" | "process" | "thread" | "maxconn" | "backlog" => {
                        val()?;
                        ctx.warn(format!("'stats socket' : '{opt}' has no effect in harp; ignored."));
                    }
                    _ => {
                        return Err(format!(
                            "'stats socket' : unknown keyword '{opt}' (supported: level, mode, user, uid, group, gid)."
                        ))
                    }
                }
                i += 2;
            }
            g.stats_sockets.push(s);
            Ok(())
        }
        "timeout" => {
            g.stats_timeout = parse_time(arg(words, 2, "a time")?, "stats timeout")?;
            no_more(words, 3)
        }
        "maxconn" | "bind-process" => {
            ctx.warn(format!(
                "'stats {}' has no effect in harp; ignored.",
                words[1]
            ));
            Ok(())
        }
        o => Err(format!(
            "'stats' expects 'socket', 'timeout' or 'maxconn' in 'global' section, got '{o}'."
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse_str, AccessLevel, Address, IpFamily, LuaLogStderr, LuaPriority};
    use std::time::Duration;

    /// `tune.lua.*` after parsing a global section of `lines`; the error text on failure.
    fn lua_tune(lines: &str) -> Result<crate::config::LuaTune, String> {
        parse_str("t.cfg", &format!("global\n{lines}"))
            .map(|c| c.global.lua)
            .map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn tune_lua_max_cpu() {
        let cpu = |v: &str| lua_tune(&format!(" tune.lua.max-cpu {v}\n")).map(|l| l.max_cpu);
        assert_eq!(lua_tune("").unwrap().max_cpu, 10);
        assert_eq!(cpu("25").unwrap(), 25);
        assert_eq!(cpu("100%").unwrap(), 100);
        for bad in ["0", "101", "x", "-5"] {
            let e = cpu(bad).unwrap_err();
            assert!(e.contains("tune.lua.max-cpu"), "{bad}: {e}");
        }
    }

    #[test]
    fn tuning_and_ignored_keywords() {
        let cfg = crate::config::test_support::ok(
            "global\n nosplice\n quiet\n tune.rcvbuf.client 64k\n tune.sndbuf.server 131072\n\
             \x20cpu-map auto:1/1-2 0-1\n maxconnrate 100\n\
             defaults\n mode tcp\n timeout connect 1s\n timeout client 1s\n timeout server 1s\n\
             listen l\n bind 127.0.0.1:9\n server s 127.0.0.1:1\n",
        );
        let g = &cfg.global;
        assert!(g.nosplice && g.quiet);
        assert_eq!(
            (g.bufs.rcv_client, g.bufs.snd_server, g.bufs.snd_client),
            (Some(65536), Some(131072), None)
        );
        assert_eq!(
            cfg.proxies[0].splice,
            crate::config::Splice::both(crate::config::SpliceMode::Off)
        );
        assert!(cfg
            .warnings
            .iter()
            .any(|w| w.contains("'cpu-map' has no effect")));
        assert_eq!(g.maxconnrate, 100);
    }

    #[test]
    fn global_limits_and_unix_bind() {
        let cfg = crate::config::test_support::ok(
            "global\n ulimit-n 4096\n maxpipes 1024\n max-spread-checks 2s\n ssl-server-verify required\n\
             \x20unix-bind prefix /run/ mode 600 user haproxy\n stats socket unix@haproxy.sock level admin\n\
             \x20stats socket 127.0.0.1:9999\n",
        );
        let g = &cfg.global;
        assert_eq!(
            (g.ulimit_n, g.maxpipes, g.max_spread_checks),
            (Some(4096), Some(1024), Some(Duration::from_secs(2)))
        );
        let unix = &g.stats_sockets[0];
        assert_eq!(unix.addr.to_string(), "unix@/run/haproxy.sock");
        assert_eq!(
            (unix.mode, unix.user.as_deref()),
            (Some(0o600), Some("haproxy"))
        );
        // a TCP socket takes none of it
        assert_eq!(
            (g.stats_sockets[1].mode, g.stats_sockets[1].user.as_deref()),
            (None, None)
        );
    }

    #[test]
    fn tune_lua_nice() {
        let nice = |v: &str| lua_tune(&format!(" tune.lua.nice {v}\n")).map(|l| l.priority);
        assert_eq!(lua_tune("").unwrap().priority, LuaPriority::Idle);
        assert_eq!(nice("0").unwrap(), LuaPriority::Nice(0));
        assert_eq!(nice("-20").unwrap(), LuaPriority::Nice(-20));
        assert_eq!(nice("19").unwrap(), LuaPriority::Nice(19));
        assert_eq!(nice("idle").unwrap(), LuaPriority::Idle);
        for bad in ["20", "-21", "low", ""] {
            let e = nice(bad).unwrap_err();
            assert!(e.contains("tune.lua.nice"), "{bad}: {e}");
        }
    }

    #[test]
    fn global_keywords() {
        let cfg = parse_str(
            "t.cfg",
            "global\n nbthread 4\n maxconn 1000\n stats socket ipv4@127.0.0.1:9999 level admin\n \
             stats socket /run/h.sock mode 600 level user user root group root\n stats timeout 30s\n \
             lua-load a.lua x y\n lua-load-per-thread b.lua\n lua-prepend-path /x/?.lua cpath\n \
             tune.lua.maxmem 64\n tune.lua.forced-yield 500\n tune.lua.task-timeout 1s\n \
             tune.lua.burst-timeout 0\n tune.lua.log.loggers off\n tune.lua.log.stderr on\n \
             httpclient.resolvers.prefer ipv4\n httpclient.retries 5\n httpclient.timeout.connect 2s\n \
             httpclient.ssl.verify none\n httpclient.ssl.ca-file /etc/ca.pem\n httpclient.resolvers.disabled on\n \
             daemon\n pidfile /run/h.pid\n hard-stop-after 30s\n spread-checks 5\n node n1\n log stdout format raw local0\n",
        )
        .unwrap();
        let g = &cfg.global;
        assert_eq!(g.nbthread, Some(4));
        assert_eq!(g.maxconn, Some(1000));
        assert_eq!(g.stats_sockets.len(), 2);
        assert_eq!(
            g.stats_sockets[0].addr,
            Address::Tcp("127.0.0.1:9999".parse().unwrap())
        );
        assert_eq!(g.stats_sockets[0].level, AccessLevel::Admin);
        assert_eq!(g.stats_sockets[1].mode, Some(0o600));
        assert_eq!(g.stats_sockets[1].level, AccessLevel::User);
        assert_eq!(g.stats_sockets[1].user.as_deref(), Some("root"));
        assert_eq!(g.stats_timeout, Duration::from_secs(30));
        assert_eq!(g.lua_loads.len(), 2);
        assert_eq!(g.lua_loads[0].args, ["x", "y"]);
        assert!(g.lua_loads[1].per_thread);
        assert!(g.lua_prepend_paths[0].cpath);
        assert_eq!(g.lua.maxmem, 64 << 20);
        assert_eq!(g.lua.forced_yield, Some(500));
        assert_eq!(g.lua.task_timeout, Some(Duration::from_secs(1)));
        assert_eq!(g.lua.burst_timeout, Duration::ZERO);
        assert!(!g.lua.log_loggers);
        assert_eq!(g.lua.log_stderr, LuaLogStderr::On);
        assert_eq!(g.httpclient.prefer, Some(IpFamily::V4));
        assert_eq!(g.httpclient.retries, 5);
        assert_eq!(g.httpclient.timeout_connect, Duration::from_secs(2));
        assert!(!g.httpclient.ssl_verify);
        assert!(g.httpclient.resolvers_disabled);
        assert!(g.daemon);
        assert_eq!(g.hard_stop_after, Some(Duration::from_secs(30)));
        assert_eq!(g.spread_checks, 5);
        assert_eq!(g.node.as_deref(), Some("n1"));
        assert_eq!(g.logs.len(), 1);
    }

    #[test]
    fn incoming_cpu() {
        assert!(parse_str("t.cfg", "global\n").unwrap().global.incoming_cpu);
        let cfg = parse_str("t.cfg", "global\n tune.listener.incoming-cpu off\n").unwrap();
        assert!(!cfg.global.incoming_cpu);
        let e = parse_str("t.cfg", "global\n tune.listener.incoming-cpu maybe\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[t.cfg:2]") && e.contains("expects 'on' or 'off'"),
            "{e}"
        );
    }

    #[test]
    fn pipesize() {
        let cfg = parse_str("t.cfg", "global\n tune.pipesize 1m\n").unwrap();
        assert_eq!(cfg.global.pipesize, Some(1 << 20));
        let cfg = parse_str("t.cfg", "global\n tune.pipesize 65536\n").unwrap();
        assert_eq!(cfg.global.pipesize, Some(65536));
        let e = parse_str("t.cfg", "global\n tune.pipesize 100\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[t.cfg:2] : 'tune.pipesize' expects a size from 4096"),
            "{e}"
        );
    }

    #[test]
    fn ignored_keywords_warn() {
        let cfg = parse_str(
            "t.cfg",
            "global\n user haproxy\n tune.ssl.default-dh-param 2048\n chroot /x\n",
        )
        .unwrap();
        assert_eq!(cfg.warnings.len(), 3);
        assert!(cfg.warnings[0].starts_with("[WARNING] parsing [t.cfg:2] : 'user'"));
    }

    #[test]
    fn global_errors() {
        let e = parse_str(
            "t.cfg",
            "global\n nbthred 4\n stats socket 127.0.0.1:99999\n spread-checks 90\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[t.cfg:2] : unknown keyword 'nbthred' in 'global' section; did you mean 'nbthread'?"), "{e}");
        assert!(e.contains("[t.cfg:3]"), "{e}");
        assert!(e.contains("[t.cfg:4]"), "{e}");
    }
}
