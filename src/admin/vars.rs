//! `get var <name>` and `set var <name> [expr|fmt] <value>`: the process's variables
//! (`proc.*`) on the Runtime API, with HAProxy's replies. A reply's text is what precedes the
//! session's blank terminator line: HAProxy's `cli_err` messages end with a newline, its
//! `cli_msg`/`cli_dynerr` ones do not.

use crate::model::Registry;
use crate::rules::logformat::{LogFormat, Use};
use crate::rules::vars::{self, Got, Scope};
use crate::rules::{Fetch, Value, VarValue};

/// `get var <name>`: `<name>: type=<t> value=<<v>>`.
pub fn get(reg: &Registry, words: &[String]) -> String {
    let Some(name) = words.get(2).filter(|n| !n.is_empty()) else {
        return "Missing process-wide variable identifier.\n".into();
    };
    let v = match vars::VarName::parse(name) {
        Ok(n) if n.scope == Scope::Proc => reg.vars.get(&n),
        _ => Got::Unset,
    };
    let Got::Val(v) = v else {
        return "Variable not found.\n".into();
    };
    let (ty, text) = match &v {
        Value::Bool(b) => ("bool", u8::from(*b).to_string().into_bytes()),
        Value::Int(i) => ("sint", i.to_string().into_bytes()),
        Value::Ip(std::net::IpAddr::V4(a)) => ("ipv4", a.to_string().into_bytes()),
        Value::Ip(std::net::IpAddr::V6(a)) => ("ipv6", a.to_string().into_bytes()),
        Value::Str(s) => ("str", s.clone()),
        // HAProxy's cast to text stops at a NUL
        Value::Bin(b) => ("bin", b.split(|&c| c == 0).next().unwrap_or(&[]).to_vec()),
    };
    let shown: String = text
        .iter()
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '.'
            }
        })
        .collect();
    format!("{name}: type={ty} value=<{shown}>")
}

/// `set var <name> <expr>`, `set var <name> expr <expr>`, `set var <name> fmt <fmt>`: an
/// empty reply once set (or when the expression gave no sample).
pub fn set(reg: &Registry, words: &[String]) -> String {
    let Some(name) = words.get(2).filter(|n| !n.is_empty()) else {
        return "Missing process-wide variable identifier.\n".into();
    };
    let (fmt, value) = match (words.get(3), words.get(4)) {
        (Some(kind), Some(v)) => match kind.as_str() {
            "fmt" => (true, v),
            "expr" => (false, v),
            other => {
                return format!(
                    "'set var': arg type must be either 'expr' or 'fmt' but got '{other}'."
                )
            }
        },
        (Some(v), None) => (false, v),
        (None, _) => return "Missing either 'expr', 'fmt' or expression.\n".into(),
    };
    let action = format!("{}({name})", if fmt { "set-var-fmt" } else { "set-var" });
    let (_, var, conds) = match vars::parse_action(&action) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let site = (String::new(), 0);
    let value = if fmt {
        match LogFormat::parse(value, "", &site, Use::TextNoContent) {
            Ok(f) => VarValue::Fmt(f),
            Err(e) => return e,
        }
    } else {
        match Fetch::parse(value, "") {
            Ok(f) => {
                if let Some(what) = f.session_source() {
                    return format!("fetch method '{action}' extracts information from '{what}', none of which is available here");
                }
                VarValue::Expr(f)
            }
            Err(e) => return e,
        }
    };
    if var.scope != Scope::Proc {
        return format!(
            "'set var': cannot set variable '{var}', only scope 'proc' is permitted here."
        );
    }
    // HAProxy makes a `proc` variable exist as it parses the line
    reg.vars.declare(&var);
    if let Some(v) = value.eval(&vars::ProcEnv(&reg.vars)) {
        reg.vars.set(&var, v, &conds);
    }
    String::new()
}
