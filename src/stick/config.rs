//! The `stick-table` line of a proxy:
//! `stick-table type <type> [len <n>] size <n>[k|m|g] [expire <time>] [nopurge] [store <types>]*`,
//! with HAProxy's messages (`parse_stick_table`).

use std::time::Duration;

use super::data::Schema;
use super::key::{KeyType, DEFAULT_LEN};
use super::table::TableConfig;
use crate::config::units::{parse_size, parse_time};

/// Parses the words after `stick-table`; returns warnings too.
pub fn parse(words: &[String]) -> Result<(TableConfig, Vec<String>), String> {
    let mut warnings = Vec::new();
    let mut key = None;
    let mut size = None;
    let mut expire = None;
    let mut nopurge = false;
    let mut peers = None;
    let mut schema = Schema::default();
    let mut i = 0;
    let value = |i: usize| -> Result<&str, String> {
        words
            .get(i + 1)
            .map(String::as_str)
            .ok_or_else(|| format!("stick-table: missing argument after '{}'.", words[i]))
    };
    while i < words.len() {
        match words[i].as_str() {
            "type" => {
                let t = value(i)?;
                i += 2;
                key = Some(match t {
                    "ip" | "ipv4" => KeyType::Ip,
                    "ipv6" => KeyType::Ipv6,
                    "integer" => KeyType::Integer,
                    "string" | "binary" => {
                        let mut len = DEFAULT_LEN;
                        let mut custom = false;
                        if words.get(i).map(String::as_str) == Some("len") {
                            let v = words.get(i + 1).map(String::as_str).unwrap_or("");
                            len = match v.parse::<usize>() {
                                Ok(n) if (1..=65_535).contains(&n) => n,
                                _ => {
                                    return Err("'len' expects a positive integer argument.".into())
                                }
                            };
                            custom = true;
                            i += 2;
                        }
                        match t {
                            // the key keeps a byte for its NUL, unless `len` sized it
                            "string" if custom => KeyType::String(len),
                            "string" => KeyType::String(len - 1),
                            _ => KeyType::Binary(len),
                        }
                    }
                    other => return Err(format!("stick-table: unknown type '{other}'.")),
                });
            }
            "size" => {
                let v = value(i)?;
                let n = parse_size(v, "stick-table size").map_err(|e| format!("stick-table: {e}."))?;
                if n > i32::MAX as u64 {
                    return Err(format!("stick-table: size '{v}' is too large."));
                }
                // `size 0` is as good as none
                size = Some(n).filter(|n| *n > 0);
                i += 2;
            }
            "expire" => {
                let v = value(i)?;
                let d = parse_time(v, "stick-table expire").map_err(|e| format!("stick-table: {e}."))?;
                if !d.is_zero() && d < Duration::from_millis(1) {
                    return Err(format!(
                        "stick-table: timer underflow in argument <{v}> to <expire>, minimum non-null value is 1 ms."
                    ));
                }
                if d > Duration::from_millis(i32::MAX as u64) {
                    return Err(format!(
                        "stick-table: timer overflow in argument <{v}> to <expire>, maximum value is 2147483647 ms (~24.8 days)."
                    ));
                }
                // `expire 0`: HAProxy's "never"
                expire = Some(d).filter(|d| !d.is_zero());
                i += 2;
            }
            "nopurge" => {
                nopurge = true;
                i += 1;
            }
            "store" => {
                let v = value(i)?;
                let w = schema.parse_store(v).map_err(|e| format!("stick-table: {e}"))?;
                warnings.extend(w.into_iter().map(|w| format!("stick-table: {w}")));
                i += 2;
            }
            "peers" => {
                peers = Some(value(i)?.to_string());
                i += 2;
            }
            "srvkey" | "write-to" | "recv-only" | "brates-factor" => {
                return Err(format!(
                    "stick-table: '{}' is not supported by harp (its tables are local to the process, byte rates unscaled).",
                    words[i]
                ))
            }
            other => return Err(format!("stick-table: unknown argument '{other}'.")),
        }
    }
    let Some(size) = size else {
        return Err("stick-table: missing size.".into());
    };
    let Some(key) = key else {
        return Err("stick-table: missing type.".into());
    };
    let t = TableConfig {
        key,
        size,
        expire,
        nopurge,
        schema,
        peers,
    };
    Ok((t, warnings))
}
