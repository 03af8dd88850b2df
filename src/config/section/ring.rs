//! `ring <name>` sections: in-memory log buffers, sent on to TCP syslog servers.

use super::{arg, no_more, Ctx};
use crate::config::suggest::unknown_keyword;
use crate::config::units::{parse_size, parse_socket_addr, parse_time};
use crate::config::{LogFormat, RingConfig};

const KEYWORDS: &[&str] = &[
    "backing-file",
    "description",
    "format",
    "maxlen",
    "server",
    "size",
    "timeout",
];

/// A `format` name, as `log ... format` takes it.
pub(crate) fn format_of(v: &str) -> Option<LogFormat> {
    Some(match v {
        "rfc3164" => LogFormat::Rfc3164,
        "local" => LogFormat::Local,
        "rfc5424" => LogFormat::Rfc5424,
        "raw" => LogFormat::Raw,
        "short" => LogFormat::Short,
        "timed" => LogFormat::Timed,
        "iso" => LogFormat::Iso,
        "priority" => LogFormat::Priority,
        _ => return None,
    })
}

/// Parses one line of a `ring` section.
pub(crate) fn parse(r: &mut RingConfig, words: &[String], ctx: &mut Ctx<'_>) -> Result<(), String> {
    match words[0].as_str() {
        "description" => {
            arg(words, 1, "a text")?;
            r.description = Some(words[1..].join(" "));
            Ok(())
        }
        "format" => {
            let v = arg(words, 1, "a format name")?;
            r.format = format_of(v).ok_or_else(|| format!("unknown format '{v}'."))?;
            no_more(words, 2)
        }
        "maxlen" => {
            let v = arg(words, 1, "a length")?;
            let n = v
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("invalid size '{v}' for new sink buffer."))?;
            r.maxlen = Some(n);
            no_more(words, 2)
        }
        "size" => {
            let v = arg(words, 1, "a size")?;
            let n = parse_size(v, "size")? as usize;
            if n < r.size {
                // HAProxy warns so, then refuses the configuration
                ctx.warn(format!(
                    "ignoring new size '{v}' that is smaller than current size '{}' for ring '{}'.",
                    r.size, r.name
                ));
                return Err(format!(
                    "ring '{}': a size below {} is refused, as HAProxy refuses it.",
                    r.name, r.size
                ));
            } else {
                r.size = n;
            }
            no_more(words, 2)
        }
        "timeout" => {
            let which = arg(words, 1, "'connect' or 'server'")?;
            let t = parse_time(arg(words, 2, "a time")?, "timeout")?;
            match which {
                "connect" => r.timeout_connect = t,
                "server" => r.timeout_server = t,
                o => return Err(format!("'timeout' : unknown timeout '{o}' in 'ring' section (expects 'connect' or 'server').")),
            }
            no_more(words, 3)
        }
        "server" => {
            let name = arg(words, 1, "<name> and <addr>:<port>")?;
            let addr = parse_socket_addr(arg(words, 2, "<addr>:<port>")?, "server")?;
            if words.len() > 3 {
                ctx.warn(format!(
                    "'server {name}' : harp ignores the server parameters of rings ('{}'); lines are sent in clear.",
                    words[3..].join(" ")
                ));
            }
            r.servers.push((name.to_string(), addr));
            Ok(())
        }
        "backing-file" => {
            ctx.warn("'backing-file' is not supported by harp; the ring lives in memory only.");
            Ok(())
        }
        kw => Err(unknown_keyword(kw, "ring", KEYWORDS)),
    }
}
