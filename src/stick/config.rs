//! The `stick-table` line of a proxy:
//! `stick-table type <type> [len <n>] size <n>[k|m|g] [expire <time>] [nopurge] [store <types>]*`.

use std::time::Duration;

use super::data::Schema;
use super::key::{KeyType, DEFAULT_LEN};
use super::table::TableConfig;
use crate::config::units::{parse_size, parse_time};

/// Parses the words after `stick-table`.
pub fn parse(words: &[String]) -> Result<TableConfig, String> {
    let mut key = None;
    let mut size = None;
    let mut expire = None;
    let mut nopurge = false;
    let mut schema = Schema::default();
    let mut i = 0;
    let value = |i: usize, what: &str| -> Result<&str, String> {
        words.get(i + 1).map(String::as_str).ok_or_else(|| {
            format!(
                "'stick-table' : missing argument after '{}' (expects {what}).",
                words[i]
            )
        })
    };
    while i < words.len() {
        match words[i].as_str() {
            "type" => {
                let t = value(i, "a key type")?;
                i += 2;
                key = Some(match t {
                    "ip" | "ipv4" => KeyType::Ip,
                    "ipv6" => KeyType::Ipv6,
                    "integer" => KeyType::Integer,
                    "string" | "binary" => {
                        let mut len = DEFAULT_LEN;
                        if words.get(i).map(String::as_str) == Some("len") {
                            let v = value(i, "a length")?;
                            len = match v.parse::<usize>() {
                                Ok(n) if (1..=65_535).contains(&n) => n,
                                _ => {
                                    return Err(format!(
                                        "'stick-table' : invalid key length '{v}' for type '{t}'."
                                    ))
                                }
                            };
                            i += 2;
                        }
                        if t == "string" {
                            KeyType::String(len)
                        } else {
                            KeyType::Binary(len)
                        }
                    }
                    other => {
                        return Err(format!(
                            "'stick-table' : unknown type '{other}' (expects 'ip', 'ipv6', 'integer', 'string' or 'binary')."
                        ))
                    }
                });
            }
            "size" => {
                let v = value(i, "a size")?;
                let n = parse_size(v, "stick-table size")
                    .map_err(|e| format!("'stick-table' : {e}."))?;
                if n == 0 || n > u64::from(u32::MAX) {
                    return Err(format!("'stick-table' : invalid size '{v}'."));
                }
                size = Some(n);
                i += 2;
            }
            "expire" => {
                let v = value(i, "a time")?;
                let d = parse_time(v, "stick-table expire")
                    .map_err(|e| format!("'stick-table' : {e}."))?;
                if d > Duration::from_millis(i32::MAX as u64) {
                    return Err(format!("'stick-table' : expire delay '{v}' is too large."));
                }
                expire = Some(d);
                i += 2;
            }
            "nopurge" => {
                nopurge = true;
                i += 1;
            }
            "store" => {
                let v = value(i, "data types")?;
                schema
                    .parse_store(v)
                    .map_err(|e| format!("'stick-table' : {e}."))?;
                i += 2;
            }
            "peers" | "srvkey" | "write-to" | "recv-only" => {
                return Err(format!(
                    "'stick-table' : '{}' is not supported by harp (its tables are local to the process).",
                    words[i]
                ))
            }
            other => {
                return Err(format!(
                    "'stick-table' : unknown argument '{other}' (expects 'type', 'size', 'expire', 'nopurge' or 'store')."
                ))
            }
        }
    }
    let Some(key) = key else {
        return Err("'stick-table' : missing type.".into());
    };
    let Some(size) = size else {
        return Err("'stick-table' : missing size.".into());
    };
    Ok(TableConfig {
        key,
        size,
        expire,
        nopurge,
        schema,
    })
}
