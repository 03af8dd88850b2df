//! `peers <name>` sections: the processes that share stick tables with this one.

use super::{arg, no_more, Ctx};
use crate::config::suggest::unknown_keyword;
use crate::config::units::parse_socket_addr;
use crate::config::{PeerConfig, PeersConfig, PeersTable};

const KEYWORDS: &[&str] = &[
    "bind",
    "default-bind",
    "default-server",
    "disabled",
    "enabled",
    "log",
    "peer",
    "server",
    "shards",
    "table",
];

/// Parses one line of a `peers` section.
pub(crate) fn parse(
    s: &mut PeersConfig,
    words: &[String],
    ctx: &mut Ctx<'_>,
) -> Result<(), String> {
    match words[0].as_str() {
        kw @ ("peer" | "server") => {
            // a name given twice is taken twice, as HAProxy does (twice the local one is
            // refused once the local name is known)
            let name = arg(words, 1, "<name> and <addr>:<port> as arguments")?;
            let addr = match words.get(2) {
                // no port: HAProxy takes port 0, which nobody listens on
                Some(a) if !a.contains(':') => {
                    ctx.warn(format!(
                        "'{kw} {name}' : no port in '{a}': harp neither listens nor connects there."
                    ));
                    None
                }
                Some(a) => Some(parse_socket_addr(a, kw)?),
                // no address: the local peer of a section with `bind` (a remote one is
                // never connected to)
                None => None,
            };
            if words.len() > 3 {
                ctx.warn(format!(
                    "'{kw} {name}' : harp ignores the server parameters of peers ('{}').",
                    words[3..].join(" ")
                ));
            }
            s.peers.push(PeerConfig {
                name: name.to_string(),
                addr,
                location: ctx.loc.clone(),
            });
            Ok(())
        }
        "bind" => {
            let a = arg(words, 1, "<addr>:<port> as argument")?;
            s.bind = Some(parse_socket_addr(a, "bind")?);
            if words.len() > 2 {
                ctx.warn(format!(
                    "'bind' : harp ignores the bind parameters of peers ('{}').",
                    words[2..].join(" ")
                ));
            }
            Ok(())
        }
        "disabled" => {
            s.disabled = true;
            no_more(words, 1)
        }
        "enabled" => {
            s.disabled = false;
            no_more(words, 1)
        }
        kw @ ("default-bind" | "default-server" | "log" | "shards") => {
            ctx.warn(format!(
                "'{kw}' in a peers section is not supported by harp; ignored."
            ));
            Ok(())
        }
        "table" => {
            let name = arg(words, 1, "a table name")?;
            if let Some(prev) = s.tables.iter().find(|t| t.name == name) {
                return Err(format!(
                    "stick-table name '{}/{name}' conflicts with table declared in peers section '{}' at {}.",
                    s.name, s.name, prev.location
                ));
            }
            let (mut config, warnings) = crate::stick::config::parse(&words[2..])?;
            for w in warnings {
                ctx.warn(w);
            }
            // shared with the section it is declared in
            config.peers = Some(s.name.clone());
            s.tables.push(PeersTable {
                name: name.to_string(),
                config,
                location: ctx.loc.clone(),
            });
            Ok(())
        }
        kw => Err(unknown_keyword(kw, "peers", KEYWORDS)),
    }
}
