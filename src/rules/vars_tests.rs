//! `set-var`, `set-var-fmt`, `unset-var`, the variable converters and `var()` run through a
//! proxy's rules, with the values HAProxy 2.6.12 stored for the same lines.

use std::cell::RefCell;
use std::net::SocketAddr;

use super::fetch::{Env, ProxyStat, Sample, ServerStat};
use super::vars::{Got, ProcVars, Scope, SessVars, SetCond, VarName};
use super::{Fetch, Phase, Rules, Value};

/// A session with variables, its stream started.
struct Sess {
    vars: RefCell<SessVars>,
    procs: ProcVars,
}

impl Sess {
    fn new() -> Sess {
        let mut v = SessVars::default();
        v.start_stream();
        Sess {
            vars: RefCell::new(v),
            procs: ProcVars::default(),
        }
    }

    fn get(&self, name: &str) -> Option<Value> {
        match self.var(&VarName::parse(name).unwrap()) {
            Got::Val(v) => Some(v),
            _ => None,
        }
    }
}

impl Env for Sess {
    fn src(&self) -> Option<SocketAddr> {
        "127.0.0.1:40000".parse().ok()
    }
    fn dst(&self) -> Option<SocketAddr> {
        "127.0.0.1:443".parse().ok()
    }
    fn content(&self) -> Option<&[u8]> {
        Some(b"hello")
    }
    fn is_final(&self) -> bool {
        true
    }
    fn proxy_stat(&self, _: &str, _: ProxyStat) -> Option<i64> {
        None
    }
    fn server_stat(&self, _: &str, _: &str, _: ServerStat) -> Option<i64> {
        None
    }
    fn var(&self, name: &VarName) -> Got {
        match name.scope {
            Scope::Proc => self.procs.get(name),
            _ => self.vars.borrow().get(name),
        }
    }
    fn set_var(&self, name: &VarName, v: Value, conds: &[SetCond]) -> bool {
        match name.scope {
            Scope::Proc => self.procs.set(name, v, conds),
            _ => self.vars.borrow_mut().set(name, v, conds),
        }
    }
    fn unset_var(&self, name: &VarName) -> bool {
        self.vars.borrow_mut().unset(name)
    }
}

fn rules(lines: &[&str]) -> Rules {
    let mut r = Rules::default();
    for l in lines {
        let words: Vec<String> = l.split_whitespace().map(String::from).collect();
        r.parse_tcp_request(&words, "fe", "frontend", true)
            .unwrap_or_else(|e| panic!("{l}: {e}"));
    }
    r
}

fn sample(expr: &str, env: &dyn Env) -> Option<Value> {
    match Fetch::parse(expr, "fe").unwrap().sample(env) {
        Sample::Val { v, .. } => Some(v),
        _ => None,
    }
}

#[test]
fn set_var_keeps_the_type_and_conditions_decide() {
    let s = Sess::new();
    let r = rules(&[
        "tcp-request content set-var(txn.ip) src",
        "tcp-request content set-var(txn.n) int(10)",
        "tcp-request content set-var(txn.n,ifgt) int(5)",
        "tcp-request content set-var(txn.n,ifgt) int(20)",
        "tcp-request content set-var(sess.s) str(abc),upper",
        "tcp-request content set-var(txn.kept) str(old)",
        "tcp-request content set-var(txn.kept) var(txn.none)",
        "tcp-request content set-var-fmt(txn.f) %[src]:%cp-%[var(txn.n)]",
        "tcp-request content set-var(txn.c) var(txn.c,0),add(1)",
        "tcp-request content set-var(txn.c) var(txn.c,0),add(1)",
        "tcp-request content unset-var(sess.s)",
        "tcp-request content set-var(txn.t) str(new),set-var(txn.u,ifexists)",
        "tcp-request content set-var(proc.hits) var(proc.hits,0),add(1)",
    ]);
    r.run(Phase::Content, &s);
    assert_eq!(s.get("txn.ip"), Some(Value::Ip([127, 0, 0, 1].into())));
    assert_eq!(s.get("txn.n"), Some(Value::Int(5)));
    assert_eq!(s.get("sess.s"), None);
    assert_eq!(s.get("txn.kept"), Some(Value::Str(b"old".to_vec())));
    assert_eq!(
        s.get("txn.f"),
        Some(Value::Str(b"127.0.0.1:40000-5".to_vec()))
    );
    assert_eq!(s.get("txn.c"), Some(Value::Int(2)));
    // a converter that cannot store fails the whole expression: nothing stored
    assert_eq!(s.get("txn.t"), None);
    assert_eq!(s.get("proc.hits"), Some(Value::Int(1)));
    // the default comes as text; an unset variable without one gives no sample
    assert_eq!(
        sample("var(txn.none,12)", &s),
        Some(Value::Str(b"12".to_vec()))
    );
    assert_eq!(sample("var(txn.none)", &s), None);
    assert_eq!(
        sample("str(x),set-var(txn.s),upper", &s),
        Some(Value::Str(b"X".to_vec()))
    );
    assert_eq!(s.get("txn.s"), Some(Value::Str(b"x".to_vec())));
}

#[test]
fn no_stream_no_txn_and_defaults_do_not_help() {
    let s = Sess::new();
    *s.vars.borrow_mut() = SessVars::default();
    let r = rules(&[
        "tcp-request connection set-var(txn.x) int(1)",
        "tcp-request connection set-var(sess.y) int(2)",
        "tcp-request connection set-var(sess.z) var(txn.c,nope)",
    ]);
    r.run(Phase::Connection, &s);
    assert_eq!(s.get("txn.x"), None);
    assert_eq!(s.get("sess.y"), Some(Value::Int(2)));
    assert_eq!(s.get("sess.z"), None);
}

#[test]
fn bad_var_names_and_constants_are_refused() {
    let e = |x: &str| Fetch::parse(x, "fe").unwrap_err();
    assert_eq!(
        e("var(foo)"),
        "invalid args in fetch method 'var' : invalid variable name 'foo'. A variable name must be start by its scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'"
    );
    assert_eq!(
        e("var()"),
        "invalid args in fetch method 'var' : Empty variable name cannot be accepted"
    );
    assert_eq!(
        e("var(txn.a,b,c)"),
        "fetch method 'var' : expected ')' before ',c)'"
    );
    assert_eq!(
        e("str(x),set-var(txn.a-b)"),
        "invalid args in converter 'set-var' : invalid syntax at char '-b'"
    );
    assert_eq!(
        e("str(x),set-var(txn.a,)"),
        "invalid args in converter 'set-var' : unknown condition \"\""
    );
    assert!(e("int(x)").contains("failed to parse 'x' as type 'integer'"));
    // concat and the arithmetic operands: HAProxy 2.6.12's messages
    assert_eq!(
        e("str(x),concat(a,foo)"),
        "invalid args in converter 'concat' : failed to register variable name 'foo'"
    );
    assert_eq!(
        e("str(x),concat(a,,b,d)"),
        "invalid arg 3 in converter 'concat' : expected ')' before ',d)'"
    );
    assert_eq!(
        e("int(1),add(foo)"),
        "invalid args in converter 'add' : expects an integer or a variable name"
    );
    // the variable converters' output has no type: an ACL needs `-m`, as in HAProxy
    assert_eq!(
        Fetch::parse("src,set-var(txn.ip)", "fe")
            .unwrap()
            .default_method(),
        None
    );
    assert!(e("bin(4)").contains("invalid binary string"));
    let s = Sess::new();
    assert_eq!(sample("bool(true)", &s), Some(Value::Bool(true)));
    assert_eq!(sample("bin(4142)", &s), Some(Value::Bin(b"AB".to_vec())));
    assert_eq!(
        sample("ipv4(10.0.0.1)", &s),
        Some(Value::Ip([10, 0, 0, 1].into()))
    );
    assert_eq!(sample("str()", &s), Some(Value::Str(Vec::new())));
    assert_eq!(sample("int(7),add", &s), Some(Value::Int(7)));
    assert_eq!(sample("int(7),div()", &s), Some(Value::Int(i64::MAX)));
}
