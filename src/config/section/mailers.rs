//! `mailers <name>` sections.

use super::{arg, no_more};
use crate::config::suggest::unknown_keyword;
use crate::config::units::{parse_socket_addr, parse_time};
use crate::config::MailersConfig;

const KEYWORDS: &[&str] = &["mailer", "timeout"];

/// Parses one line of a `mailers` section.
pub(crate) fn parse(m: &mut MailersConfig, words: &[String]) -> Result<(), String> {
    match words[0].as_str() {
        "mailer" => {
            let name = arg(words, 1, "<name> and <address>:<port>")?;
            let addr = parse_socket_addr(arg(words, 2, "<address>:<port>")?, "mailer")?;
            if m.mailers.iter().any(|(n, _)| n == name) {
                return Err(format!(
                    "mailer '{name}' is already defined in mailers section '{}'.",
                    m.name
                ));
            }
            m.mailers.push((name.to_string(), addr));
            no_more(words, 3)
        }
        "timeout" => match arg(words, 1, "'mail' and a time")? {
            "mail" => {
                m.timeout_mail = parse_time(arg(words, 2, "a time")?, "timeout mail")?;
                no_more(words, 3)
            }
            o => Err(format!(
                "'timeout' : unknown timeout '{o}' in 'mailers' section (expects 'mail')."
            )),
        },
        kw => Err(unknown_keyword(kw, "mailers", KEYWORDS)),
    }
}
