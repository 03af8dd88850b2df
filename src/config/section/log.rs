//! `log` lines (global and proxies).

use crate::config::units::{parse_address, parse_u32};
use crate::config::{Location, LogFormat, LogLevels, LogTarget};

const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
    "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Syslog level names, most severe first (their index is the level number).
pub(crate) const LEVELS: &[&str] = &[
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Parses `log global`, `no log` is handled by the proxy parser, `log <target> [len <n>]
/// [format <fmt>] [sample <r>:<s>] <facility> [<level> [<minlevel>]]`. `global`: whether this is
/// the global section (where `log global` makes no sense).
pub(crate) fn parse(
    logs: &mut Vec<LogTarget>,
    words: &[String],
    global: bool,
    loc: &Location,
) -> Result<(), String> {
    let Some(target) = words.get(1) else {
        return Err(
            "'log' expects either <address[:port]> and <facility> or 'global' as arguments.".into(),
        );
    };
    if target == "global" {
        if global {
            return Err("'log global' makes no sense in the 'global' section.".into());
        }
        if let Some(w) = words.get(2) {
            return Err(format!("'log global' : unexpected extra argument '{w}'."));
        }
        logs.push(LogTarget::Global);
        return Ok(());
    }
    let mut i = 2;
    let mut format = LogFormat::default();
    while let Some(w) = words.get(i).map(String::as_str) {
        match w {
            "len" => {
                let v = words.get(i + 1).ok_or("'log' : 'len' expects a length.")?;
                parse_u32(v, "log len", 80, 65535)?;
            }
            "format" => {
                let v = words
                    .get(i + 1)
                    .map(String::as_str)
                    .ok_or("'log' : 'format' expects a format name.")?;
                format = super::ring::format_of(v)
                    .ok_or_else(|| format!("'log' : unknown log format '{v}'."))?;
            }
            "sample" => {
                words
                    .get(i + 1)
                    .ok_or("'log' : 'sample' expects <ranges>:<size>.")?;
            }
            _ => break,
        }
        i += 2;
    }
    let facility = words
        .get(i)
        .map(String::as_str)
        .ok_or("'log' : missing facility (e.g. local0).")?;
    if !FACILITIES.contains(&facility) {
        return Err(format!("'log' : unknown facility '{facility}'."));
    }
    let level = |k: usize, what: &str| -> Result<Option<u8>, String> {
        match words.get(k) {
            None => Ok(None),
            Some(l) => LEVELS
                .iter()
                .position(|x| x == l)
                .map(|p| Some(p as u8))
                .ok_or_else(|| format!("'log' : unknown optional {what}log level '{l}'.")),
        }
    };
    let levels = LogLevels {
        max: level(i + 1, "")?,
        min: level(i + 2, "minimum ")?,
        format,
    };
    if let Some(w) = words.get(i + 3) {
        return Err(format!("'log' : unexpected extra argument '{w}'."));
    }
    let t = match target.as_str() {
        "stdout" => LogTarget::Stdout {
            facility: facility.to_string(),
            levels,
        },
        "stderr" => LogTarget::Stderr {
            facility: facility.to_string(),
            levels,
        },
        t if t.starts_with("ring@") => LogTarget::Ring {
            ring: t["ring@".len()..].to_string(),
            facility: facility.to_string(),
            levels,
            location: loc.clone(),
        },
        t => {
            let t = ["udp@", "udp4@"]
                .iter()
                .find_map(|p| t.strip_prefix(p))
                .unwrap_or(t);
            let has_port = t
                .rfind(':')
                .is_some_and(|p| t[p + 1..].chars().all(|c| c.is_ascii_digit()) && p + 1 < t.len());
            let addr = if t.starts_with('/') || t.starts_with("unix@") || has_port {
                parse_address(t, "log")?
            } else {
                // No port: syslog's 514.
                parse_address(&format!("{t}:514"), "log")?
            };
            LogTarget::Syslog {
                addr,
                facility: facility.to_string(),
                levels,
            }
        }
    };
    logs.push(t);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Address;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn log_lines() {
        let mut logs = Vec::new();
        parse(&mut logs, &w("log global"), false, &Location::default()).unwrap();
        parse(
            &mut logs,
            &w("log stdout format raw local0"),
            false,
            &Location::default(),
        )
        .unwrap();
        parse(
            &mut logs,
            &w("log 127.0.0.1:514 local0 info"),
            false,
            &Location::default(),
        )
        .unwrap();
        parse(
            &mut logs,
            &w("log 127.0.0.1 local1"),
            false,
            &Location::default(),
        )
        .unwrap();
        parse(
            &mut logs,
            &w("log /dev/log local0 notice err"),
            false,
            &Location::default(),
        )
        .unwrap();
        assert_eq!(logs[0], LogTarget::Global);
        assert_eq!(
            logs[1],
            LogTarget::Stdout {
                facility: "local0".into(),
                levels: LogLevels {
                    format: LogFormat::Raw,
                    ..LogLevels::default()
                }
            }
        );
        assert_eq!(
            logs[3],
            LogTarget::Syslog {
                addr: Address::Tcp("127.0.0.1:514".parse().unwrap()),
                facility: "local1".into(),
                levels: LogLevels::default(),
            }
        );
        let LogTarget::Syslog { levels, .. } = &logs[4] else {
            panic!("{:?}", logs[4]);
        };
        assert_eq!(
            *levels,
            LogLevels {
                max: Some(5),
                min: Some(3),
                format: LogFormat::Rfc3164,
            }
        );
        // notice at most, raised to err at least (HAProxy's minlevel)
        assert_eq!(levels.apply(6), None);
        assert_eq!(levels.apply(5), Some(5));
        assert_eq!(levels.apply(0), Some(3));
        assert!(parse(&mut logs, &w("log global"), true, &Location::default()).is_err());
        assert!(parse(
            &mut logs,
            &w("log 127.0.0.1 local9"),
            false,
            &Location::default()
        )
        .is_err());
        assert!(parse(
            &mut logs,
            &w("log 127.0.0.1 local0 loud"),
            false,
            &Location::default()
        )
        .is_err());
        assert!(parse(&mut logs, &w("log stdout"), false, &Location::default()).is_err());
    }
}
