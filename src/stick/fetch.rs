//! The sample fetches that read stick tables: `sc_*(<ctr>[,<table>])`, `sc<N>_*([<table>])`
//! on what a session tracks, `src_*([<table>])` on the client's address, and
//! `table_avl`/`table_cnt`.

use std::net::IpAddr;
use std::sync::Arc;

use super::counters::Counters;
use super::data::DataType;
use super::key::{Key, KeySample};
use super::table::Table;
use super::SLOTS;

/// Which entry a fetch reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// What the session tracks in counter `n` (`sc_*(n)`, `sc<n>_*`).
    Slot(usize),
    /// The entry of the client's address (`src_*`).
    Src,
}

/// What it reads or does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A stored value (`*_conn_cnt`, `*_get_gpc0`, `*_sess_rate`...).
    Get(DataType),
    /// `*_kbytes_in`/`*_kbytes_out`: a byte count in kilobytes.
    Kbytes(DataType),
    /// `*_inc_gpc0`/`*_inc_gpc1`: increments, then returns the new value.
    Inc(DataType),
    /// `*_clr_gpc0`/`*_clr_gpc1`: clears, returns the value before.
    Clr(DataType),
    /// `sc_tracked`: whether the counter tracks anything.
    Tracked,
    /// `*_trackers`: the sessions tracking the entry now.
    Trackers,
    /// `src_updt_conn_cnt`: counts a connection, returns the new `conn_cnt`.
    UpdtConnCnt,
}

/// A stick-table fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// A counter fetch; `table`: the table named in the arguments (else the tracked one, or
    /// for `src_*` the proxy's own).
    Counter {
        /// Which entry.
        from: Source,
        /// What.
        op: Op,
        /// The table named (for `src_*` the proxy's own by default).
        table: Option<String>,
    },
    /// `table_avl([<table>])`: free entries.
    TableAvl(String),
    /// `table_cnt([<table>])`: entries in use.
    TableCnt(String),
}

/// The suffixes after `sc_`, `sc<n>_` and `src_`.
const OPS: &[(&str, Op)] = &[
    ("conn_cnt", Op::Get(DataType::ConnCnt)),
    ("conn_cur", Op::Get(DataType::ConnCur)),
    ("conn_rate", Op::Get(DataType::ConnRate)),
    ("sess_cnt", Op::Get(DataType::SessCnt)),
    ("sess_rate", Op::Get(DataType::SessRate)),
    ("get_gpc0", Op::Get(DataType::Gpc0)),
    ("gpc0_rate", Op::Get(DataType::Gpc0Rate)),
    ("inc_gpc0", Op::Inc(DataType::Gpc0)),
    ("clr_gpc0", Op::Clr(DataType::Gpc0)),
    ("get_gpc1", Op::Get(DataType::Gpc1)),
    ("gpc1_rate", Op::Get(DataType::Gpc1Rate)),
    ("inc_gpc1", Op::Inc(DataType::Gpc1)),
    ("clr_gpc1", Op::Clr(DataType::Gpc1)),
    ("get_gpt0", Op::Get(DataType::Gpt0)),
    ("bytes_in_rate", Op::Get(DataType::BytesInRate)),
    ("bytes_out_rate", Op::Get(DataType::BytesOutRate)),
    ("kbytes_in", Op::Kbytes(DataType::BytesInCnt)),
    ("kbytes_out", Op::Kbytes(DataType::BytesOutCnt)),
    ("http_req_cnt", Op::Get(DataType::HttpReqCnt)),
    ("http_req_rate", Op::Get(DataType::HttpReqRate)),
    ("http_err_cnt", Op::Get(DataType::HttpErrCnt)),
    ("http_err_rate", Op::Get(DataType::HttpErrRate)),
    ("http_fail_cnt", Op::Get(DataType::HttpFailCnt)),
    ("http_fail_rate", Op::Get(DataType::HttpFailRate)),
    ("glitch_cnt", Op::Get(DataType::GlitchCnt)),
    ("glitch_rate", Op::Get(DataType::GlitchRate)),
    ("trackers", Op::Trackers),
    ("tracked", Op::Tracked),
    ("updt_conn_cnt", Op::UpdtConnCnt),
];

/// What a table converter reads of a key's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableRead {
    /// `in_table`: 1 when the table holds the key, else 0.
    Present,
    /// `table_<x>`: a stored value (0 when the key is absent).
    Value(Op),
    /// `table_expire`: milliseconds before the entry expires (`None` when absent).
    Expire,
    /// `table_idle`: milliseconds since the entry was last touched (`None` when absent).
    Idle,
}

/// What `what` reads of `key`'s entry in `table` (`None`: no sample).
pub fn table_read(table: &Arc<Table>, key: &Key, what: TableRead) -> Option<i64> {
    match what {
        TableRead::Present => Some(i64::from(table.peek(key, |_, _, _| ()).is_some())),
        TableRead::Value(op) => read(table, key, op, true),
        TableRead::Expire => table.peek(key, |en, _, now| table.remaining(en, now) as i64),
        // HAProxy's: the table's `expire` less what is left of it (0 without `expire`)
        TableRead::Idle => table.peek(key, |en, _, now| {
            table.config.expire.map_or(0, |x| {
                (x.as_millis() as u64).saturating_sub(table.remaining(en, now))
            }) as i64
        }),
    }
}

/// The reads a `table_<x>(<table>)` converter may do, by suffix: the `sc_*` reads that change
/// nothing, their `get_` dropped (`table_gpc0` reads what `sc_get_gpc0` reads).
pub fn table_ops() -> impl Iterator<Item = (&'static str, Op)> {
    OPS.iter()
        .filter(|(_, o)| matches!(o, Op::Get(_) | Op::Kbytes(_) | Op::Trackers))
        .map(|(n, o)| (n.strip_prefix("get_").unwrap_or(n), *o))
}

/// Every keyword, for did-you-mean.
pub fn names() -> Vec<String> {
    let mut v = vec!["table_avl".to_string(), "table_cnt".to_string()];
    for (op, o) in OPS {
        if *o != Op::UpdtConnCnt {
            v.push(format!("sc_{op}"));
            v.extend((0..SLOTS).map(|n| format!("sc{n}_{op}")));
        }
        if !matches!(o, Op::Tracked | Op::Trackers) {
            v.push(format!("src_{op}"));
        }
    }
    v
}

impl Fetch {
    /// Parses a stick-table fetch named `name` with `args` (inside the parentheses); `None`
    /// when the name is no such fetch. `proxy` is the rule's proxy (the default table).
    pub fn parse(name: &str, args: Option<&str>, proxy: &str) -> Option<Result<Fetch, String>> {
        let list: Vec<&str> = match args {
            Some(a) if !a.is_empty() => a.split(',').map(str::trim).collect(),
            _ => Vec::new(),
        };
        let too_many = |max: usize| -> Result<(), String> {
            if list.len() > max {
                Err(format!("fetch method '{name}' : end of arguments expected at position {}, but got '{}'", max + 1, list[max]))
            } else {
                Ok(())
            }
        };
        let table_arg = |at: usize| list.get(at).map(|s| s.to_string());
        if name == "table_avl" || name == "table_cnt" {
            return Some(too_many(1).map(|_| {
                let t = table_arg(0).unwrap_or_else(|| proxy.to_string());
                if name == "table_avl" {
                    Fetch::TableAvl(t)
                } else {
                    Fetch::TableCnt(t)
                }
            }));
        }
        let (from, rest, numbered) = if let Some(r) = name.strip_prefix("src_") {
            (Source::Src, r, false)
        } else if let Some(r) = name.strip_prefix("sc_") {
            (Source::Slot(0), r, true)
        } else {
            let r = name.strip_prefix("sc")?;
            let (n, r) = r.split_once('_')?;
            let n: usize = n.parse().ok().filter(|n| *n < SLOTS)?;
            (Source::Slot(n), r, false)
        };
        let op = OPS.iter().find(|(o, _)| *o == rest)?.1;
        match (&from, op) {
            (Source::Src, Op::Tracked | Op::Trackers) => return None,
            (Source::Slot(_), Op::UpdtConnCnt) => return None,
            _ => {}
        }
        let r = (|| {
            if numbered {
                let Some(n) = list.first() else {
                    return Err(format!(
                        "fetch method '{name}' : missing arg 1 (expects <sc-id>[,<table>])"
                    ));
                };
                let n = match n.parse::<usize>() {
                    Ok(n) if n < SLOTS => n,
                    _ => {
                        return Err(format!(
                            "fetch method '{name}' : invalid stick counter '{n}' (expects 0 to {})",
                            SLOTS - 1
                        ))
                    }
                };
                too_many(2)?;
                return Ok(Fetch::Counter {
                    from: Source::Slot(n),
                    op,
                    table: table_arg(1),
                });
            }
            too_many(1)?;
            let table = match from {
                Source::Src => Some(table_arg(0).unwrap_or_else(|| proxy.to_string())),
                Source::Slot(_) => table_arg(0),
            };
            Ok(Fetch::Counter { from, op, table })
        })();
        Some(r)
    }

    /// The table it names, for the start-up check that it exists.
    pub fn table(&self) -> Option<&str> {
        match self {
            Fetch::Counter { table, .. } => table.as_deref(),
            Fetch::TableAvl(t) | Fetch::TableCnt(t) => Some(t),
        }
    }

    /// Whether its sample is a boolean (`sc_tracked`), else an integer.
    pub fn is_bool(&self) -> bool {
        matches!(
            self,
            Fetch::Counter {
                op: Op::Tracked,
                ..
            }
        )
    }

    /// Its value for a session tracking `counters`, coming from `src`; `tables` finds a
    /// table by name. `None`: no sample (a counter tracking nothing, a type not stored).
    pub fn value(
        &self,
        counters: &Counters,
        src: Option<IpAddr>,
        tables: &dyn Fn(&str) -> Option<Arc<Table>>,
    ) -> Option<i64> {
        let (from, op, named) = match self {
            Fetch::TableAvl(t) => {
                let t = tables(t)?;
                return Some(t.config.size.saturating_sub(t.used()) as i64);
            }
            Fetch::TableCnt(t) => return Some(tables(t)?.used() as i64),
            Fetch::Counter { from, op, table } => (from, *op, table.as_deref()),
        };
        // the table and key the fetch reads
        let (table, key) = match from {
            Source::Slot(n) => {
                let tracked = counters.slot(*n);
                if op == Op::Tracked {
                    return Some(i64::from(tracked.is_some()));
                }
                let tracked = tracked?;
                match named {
                    // the same key in another table: only one of the same key type
                    Some(name) => {
                        let other = tables(name)?;
                        if other.config.key != tracked.table().config.key {
                            return None;
                        }
                        (other, tracked.key().clone())
                    }
                    None => (tracked.table().clone(), tracked.key().clone()),
                }
            }
            Source::Src => {
                let table = tables(named?)?;
                let key = table.config.key.key(&KeySample::Ip(src?))?;
                (table, key)
            }
        };
        read(&table, &key, op, *from == Source::Src)
    }
}

/// `op` on `key`'s entry in `table`: what the `sc_*`/`src_*` fetches and the `table_*`
/// converters return. `absent_zero`: a key the table does not hold reads 0, stored type or
/// not (`src_*`, converters), as HAProxy's do.
pub fn read(table: &Arc<Table>, key: &Key, op: Op, absent_zero: bool) -> Option<i64> {
    let schema = &table.config.schema;
    let stored = |t: DataType| schema.has(t);
    // `src_*` on a key the table does not hold: 0, stored type or not
    let absent = absent_zero && table.peek(key, |_, _, _| ()).is_none();
    let creates = matches!(op, Op::Inc(_) | Op::Clr(_) | Op::UpdtConnCnt);
    if absent && !creates {
        return Some(0);
    }
    let v = match op {
        Op::Tracked => return None,
        Op::Trackers => table.peek(key, |en, _, _| en.refs as u64).unwrap_or(0),
        Op::Get(t) if !stored(t) => return None,
        Op::Get(t) => table
            .peek(key, |en, s, now| en.get(s, t, now))
            .flatten()
            .unwrap_or(0),
        Op::Kbytes(t) if !stored(t) => return None,
        Op::Kbytes(t) => {
            table
                .peek(key, |en, s, now| en.get(s, t, now))
                .flatten()
                .unwrap_or(0)
                >> 10
        }
        // HAProxy's `*_inc_gpc*` gives 0 when neither the counter nor its rate is stored,
        // the rate when only it is
        Op::Inc(t) if !stored(t) && !stored(rate_of(t)) => return Some(0),
        Op::Clr(t) if !stored(t) => return None,
        Op::Inc(t) => table
            .with_entry(key, true, |en, s, now| {
                en.add(s, t, 1, now);
                en.add(s, rate_of(t), 1, now);
                en.get(s, t, now)
                    .or_else(|| en.get(s, rate_of(t), now))
                    .unwrap_or(0)
            })
            .unwrap_or(0),
        Op::Clr(t) => table
            .with_entry(key, true, |en, s, now| {
                let before = en.get(s, t, now).unwrap_or(0);
                en.set(s, t, 0, now);
                before
            })
            .unwrap_or(0),
        Op::UpdtConnCnt if !stored(DataType::ConnCnt) => return None,
        Op::UpdtConnCnt => table
            .with_entry(key, true, |en, s, now| {
                en.add(s, DataType::ConnCnt, 1, now);
                en.get(s, DataType::ConnCnt, now).unwrap_or(0)
            })
            .unwrap_or(0),
    };
    Some(v as i64)
}

/// The rate that goes with a general purpose counter.
fn rate_of(counter: DataType) -> DataType {
    if counter == DataType::Gpc0 {
        DataType::Gpc0Rate
    } else {
        DataType::Gpc1Rate
    }
}
