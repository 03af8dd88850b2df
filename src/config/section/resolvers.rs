//! `resolvers <name>` sections.

use super::{arg, no_more, Ctx};
use crate::config::suggest::unknown_keyword;
use crate::config::units::{parse_socket_addr, parse_time, parse_u32};
use crate::config::ResolversConfig;
use std::net::{IpAddr, SocketAddr};

const KEYWORDS: &[&str] = &[
    "nameserver",
    "parse-resolv-conf",
    "accepted_payload_size",
    "hold",
    "resolve_retries",
    "timeout",
];

/// Parses one line of a `resolvers` section.
pub(crate) fn parse(
    r: &mut ResolversConfig,
    words: &[String],
    ctx: &mut Ctx<'_>,
) -> Result<(), String> {
    match words[0].as_str() {
        "nameserver" => {
            let name = arg(words, 1, "<name> and <address>[:<port>]")?;
            let text = arg(words, 2, "<address>[:<port>]")?;
            // The port is optional for name servers (53).
            let addr = match text.parse::<IpAddr>() {
                Ok(ip) => SocketAddr::new(ip, 53),
                Err(_) => parse_socket_addr(text, "nameserver")?,
            };
            add(r, name, addr)?;
            no_more(words, 3)
        }
        "parse-resolv-conf" => {
            match std::fs::read_to_string("/etc/resolv.conf") {
                Ok(text) => {
                    for (i, line) in text.lines().enumerate() {
                        let mut it = line.split_whitespace();
                        if it.next() == Some("nameserver") {
                            if let Some(ip) = it.next().and_then(|a| a.parse::<IpAddr>().ok()) {
                                add(
                                    r,
                                    &format!("resolvconf/nameserver{}", i + 1),
                                    SocketAddr::new(ip, 53),
                                )?;
                            }
                        }
                    }
                }
                Err(e) => ctx.warn(format!(
                    "'parse-resolv-conf' : could not read /etc/resolv.conf: {e}"
                )),
            }
            no_more(words, 1)
        }
        "accepted_payload_size" => {
            // HAProxy's bounds: a DNS header, the largest UDP message
            r.accepted_payload_size =
                parse_u32(arg(words, 1, "an integer")?, &words[0], 12, 65535)? as u16;
            no_more(words, 2)
        }
        "resolve_retries" => {
            r.resolve_retries = parse_u32(arg(words, 1, "an integer")?, &words[0], 1, 1000)?;
            no_more(words, 2)
        }
        "hold" | "timeout" => {
            let what = arg(words, 1, "a name")?;
            let t = parse_time(arg(words, 2, "a time")?, &words[0])?;
            match (words[0].as_str(), what) {
                ("hold", "valid") => r.hold_valid = t.max(std::time::Duration::from_millis(100)),
                ("hold", "nx") => r.hold_nx = t,
                ("hold", "timeout") => r.hold_timeout = t,
                ("hold", "refused") => r.hold_refused = t,
                ("hold", "other") => r.hold_other = t,
                ("hold", "obsolete") => {}
                ("timeout", "retry") => {
                    r.timeout_retry = t.max(std::time::Duration::from_millis(10))
                }
                ("timeout", "resolve") => {
                    r.timeout_resolve = t.max(std::time::Duration::from_millis(10))
                }
                (kw, o) => {
                    return Err(format!(
                        "'{kw}' : unknown '{o}' (expects {}).",
                        if kw == "hold" {
                            "'nx', 'other', 'refused', 'timeout', 'valid' or 'obsolete'"
                        } else {
                            "'retry' or 'resolve'"
                        }
                    ))
                }
            }
            no_more(words, 3)
        }
        kw => Err(unknown_keyword(kw, "resolvers", KEYWORDS)),
    }
}

fn add(r: &mut ResolversConfig, name: &str, addr: SocketAddr) -> Result<(), String> {
    if r.nameservers.iter().any(|(n, _)| n == name) {
        return Err(format!(
            "nameserver '{name}' is already defined in resolvers section '{}'.",
            r.name
        ));
    }
    r.nameservers.push((name.to_string(), addr));
    Ok(())
}
