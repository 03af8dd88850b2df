//! `show table`, `clear table` and `set table`: the stick tables, listed, dumped (whole, by key,
//! by entry pointer or through `data.<type> <op> <value>` filters), cleared and written, with
//! HAProxy 3.2's replies (`cli_parse_table_req`, `table_dump_*` in its stick_table.c).

use std::sync::Arc;

use crate::config::AccessLevel;
use crate::model::Registry;
use crate::stick::filter::{Filter, Op};
use crate::stick::table::{Dumped, Entry};
use crate::stick::{DataType, Key, KeyType, Schema, Table};

/// Which command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableOp {
    /// `show table`.
    Show,
    /// `clear table`.
    Clear,
    /// `set table`.
    Set,
}

const NO_TABLE: &str = "No such table\n";
const DENIED: &str = "Permission denied\n";
const MAX_FILTERS: usize = 4;

impl TableOp {
    /// The reply to arguments it does not take.
    fn usage(self) -> &'static str {
        match self {
            TableOp::Show => "Optional argument only supports \"data.<store_data_type>\" <operator> <value> or key <key> or ptr <ptr>\n",
            TableOp::Clear => "Required arguments: <table> \"data.<store_data_type>\" <operator> <value> or <table> key <key> or <table> ptr <ptr>\n",
            TableOp::Set => "Required arguments: <table> key <key> [data.<store_data_type> <value>]* or <table> ptr <ptr> [data.<store_data_type> <value>]*\n",
        }
    }

    /// How the key-type refusal names it.
    fn doing(self) -> &'static str {
        match self {
            TableOp::Show => "Showing keys from",
            TableOp::Clear => "Removing keys from",
            TableOp::Set => "Inserting keys into",
        }
    }
}

/// The tables, in HAProxy's listing order (the last declared first).
fn tables(reg: &Registry) -> Vec<Arc<Table>> {
    let mut v = reg.tables();
    v.reverse();
    v
}

fn head(t: &Table) -> String {
    format!(
        "# table: {}, type: {}, size:{}, used:{}\n",
        t.name,
        t.config.key.name(),
        t.config.size,
        t.used()
    )
}

fn line(d: &Dumped) -> String {
    let mut s = format!(
        "0x{:x}: key={} use={} exp={} shard=0",
        d.addr, d.key, d.refs, d.exp
    );
    for (t, period, v) in &d.values {
        if t.is_rate() {
            s.push_str(&format!(" {}({period})={v}", t.name()));
        } else {
            s.push_str(&format!(" {}={v}", t.name()));
        }
    }
    s.push('\n');
    s
}

/// Parses up to four filters from `args` (the words after the table's name).
fn filters(t: &Table, args: &[String]) -> Result<Vec<Filter>, String> {
    let mut out = Vec::new();
    for i in 0..MAX_FILTERS {
        let Some(word) = args.get(3 * i) else {
            break;
        };
        let n = i + 1;
        // HAProxy checks the `data.` prefix of the first filter only
        let name = word.get(5..).unwrap_or("");
        let ty = match DataType::by_name(name) {
            Ok(Some(ty)) if t.config.schema.has(ty) => ty,
            Ok(Some(_)) | Err(_) => {
                return Err(format!(
                    "Filter entry #{n}: Data type not stored in this table\n"
                ))
            }
            Ok(None) => return Err(format!("Filter entry #{n}: Unknown data type\n")),
        };
        let op = match args.get(3 * i + 1).and_then(|w| Op::parse(w)) {
            Some(op) => op,
            None => {
                return Err(format!(
                    "Filter entry #{n}: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n"
                ))
            }
        };
        let Some(value) = args.get(3 * i + 2).and_then(|v| v.parse::<i64>().ok()) else {
            return Err(format!(
                "Filter entry #{n}: Require a valid integer value to compare against\n"
            ));
        };
        out.push(Filter { ty, op, value });
    }
    if args.len() > 3 * MAX_FILTERS {
        let prev = &args[3 * MAX_FILTERS - 1];
        return Err(format!(
            "Detected extra data in filter, {}th word of input, after '{prev}'\n",
            3 * MAX_FILTERS + 4
        ));
    }
    Ok(out)
}

/// Runs `op` with `args` (the words after `table`) at `level`.
pub(super) fn run(reg: &Registry, op: TableOp, args: &[String], level: AccessLevel) -> String {
    let oper = level >= AccessLevel::Operator;
    let Some(name) = args.first() else {
        return match op {
            TableOp::Show => tables(reg).iter().map(|t| head(t)).collect(),
            _ => op.usage().into(),
        };
    };
    let Some(t) = tables(reg).into_iter().find(|t| &*t.name == name.as_str()) else {
        return NO_TABLE.into();
    };
    let rest = &args[1..];
    // the whole table, or the entries the `data.` filters keep (an empty list keeps all)
    let fs = match rest.first().map(String::as_str) {
        None => Vec::new(),
        Some("key") => return by_key(&t, op, &rest[1..], oper),
        Some("ptr") => return by_ptr(&t, op, &rest[1..], oper),
        Some(w) if w.starts_with("data.") => {
            if op == TableOp::Set {
                return "content-based lookup is only supported with the \"show\" and \"clear\" actions\n".into();
            }
            match filters(&t, rest) {
                Ok(f) => f,
                Err(e) => return e,
            }
        }
        Some(_) => return op.usage().into(),
    };
    let keep = |_: &Key, en: &Entry, s: &Schema, now: u64| fs.iter().all(|f| f.keeps(en, s, now));
    match op {
        TableOp::Show if !oper => {
            head(&t) + "# contents not dumped due to insufficient privileges\n"
        }
        TableOp::Show => dump(&t, keep),
        // HAProxy's `set table <t>` alone takes the path of a clear (its quirk, kept)
        TableOp::Clear | TableOp::Set => {
            if oper {
                t.clear(keep);
            }
            String::new()
        }
    }
}

fn dump(t: &Table, keep: impl FnMut(&Key, &Entry, &Schema, u64) -> bool) -> String {
    let mut out = head(t);
    for d in t.dump(keep) {
        out.push_str(&line(&d));
    }
    out
}

/// `<op> table <t> key <k> ...`.
fn by_key(t: &Table, op: TableOp, args: &[String], oper: bool) -> String {
    let Some(k) = args.first() else {
        return "Key value expected\n".into();
    };
    if let Some(refusal) = binary_refusal(t, op) {
        return refusal;
    }
    let key = match t.config.key.parse_cli(k) {
        Ok(key) => key,
        Err(e) => return e.into(),
    };
    if !oper {
        return DENIED.into();
    }
    entry_op(t, op, &key, &args[1..])
}

/// `<op> table <t> ptr <0x...> ...`: the entry `show table` printed at that address.
fn by_ptr(t: &Table, op: TableOp, args: &[String], oper: bool) -> String {
    let Some(p) = args.first() else {
        return "Pointer expected (0xffff notation)\n".into();
    };
    let Some(hex) = p.strip_prefix("0x") else {
        return "Pointer expected (0xffff notation)\n".into();
    };
    let Ok(addr) = usize::from_str_radix(hex, 16) else {
        return "Malformed ptr.\n".into();
    };
    let mut found = None;
    t.dump(|k, en, _, _| {
        if en as *const Entry as usize == addr {
            found = Some(k.clone());
        }
        false
    });
    let Some(key) = found else {
        return "No entry can be found matching ptr.\n".into();
    };
    if let Some(refusal) = binary_refusal(t, op) {
        return refusal;
    }
    if !oper {
        return DENIED.into();
    }
    entry_op(t, op, &key, &args[1..])
}

/// HAProxy's refusal to name entries of a binary table one by one.
fn binary_refusal(t: &Table, op: TableOp) -> Option<String> {
    matches!(t.config.key, KeyType::Binary(_)).then(|| {
        format!(
            "{} tables of type other than ip, ipv6, string and integer is not supported\n",
            op.doing()
        )
    })
}

fn entry_op(t: &Table, op: TableOp, key: &Key, args: &[String]) -> String {
    match op {
        TableOp::Show => match t.peek(key, |_, _, _| ()) {
            None => String::new(),
            Some(()) => dump(t, |k, _, _, _| k == key),
        },
        TableOp::Clear => match t.peek(key, |en, _, _| en.refs) {
            None => String::new(),
            Some(n) if n > 0 => "Entry currently in use, cannot remove\n".into(),
            Some(_) => {
                t.clear(|k, _, _, _| k == key);
                String::new()
            }
        },
        TableOp::Set => set(t, key, args),
    }
}

/// `set table <t> key <k> [data.<type> <value>]*`: makes the entry, then stores each value in
/// turn (those before an error stay, as in HAProxy).
fn set(t: &Table, key: &Key, args: &[String]) -> String {
    let r = t.with_entry(key, true, |en, schema, now| {
        for pair in args.chunks(2) {
            let Some(name) = pair[0].strip_prefix("data.") else {
                return "\"data.<type>\" followed by a value expected\n".to_string();
            };
            let ty = match DataType::by_name(name) {
                Ok(Some(ty)) if schema.has(ty) => ty,
                Ok(Some(_)) | Err(_) => return "Data type not stored in this table\n".into(),
                Ok(None) => return "Unknown data type\n".into(),
            };
            let Some(Ok(v)) = pair.get(1).map(|v| v.parse::<i64>()) else {
                return "Require a valid integer value to store\n".into();
            };
            en.set(schema, ty, v as u64, now);
        }
        String::new()
    });
    r.unwrap_or_else(|| "Unable to allocate a new entry\n".into())
}
