//! Runtime API commands written in Lua (`core.register_cli`): the Runtime API hands a command
//! whose words start with a registered path to the Lua thread, which runs the script's function
//! with an applet to `send` the reply through, and the arguments (the path words first), as
//! HAProxy calls it: `function(applet, arg1, arg2, ...)`.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, MultiValue, UserData, UserDataMethods, Value};

use super::engine::{ctx, Ctx};

/// One command for the Lua thread, from the Runtime API.
#[derive(Debug)]
pub(crate) struct CliCall {
    /// The command's words.
    pub words: Vec<String>,
    /// Where what the function sent goes (dropped without a reply if it could not run).
    pub reply: tokio::sync::oneshot::Sender<String>,
}

/// The index of the first registered path that `words` start with (HAProxy's `cli_find_kw`
/// order: the first keyword registered wins).
pub(crate) fn first_match<'a>(
    mut paths: impl Iterator<Item = &'a [String]>,
    words: &[String],
) -> Option<usize> {
    paths.position(|p| !p.is_empty() && words.len() >= p.len() && words[..p.len()] == *p)
}

/// `core.register_cli`'s arguments, checked in HAProxy's order and with its messages: three
/// arguments; a table of at most 5 strings; a usage string (a number is taken as one, as
/// `luaL_checkstring` does); a function.
pub(crate) fn check_args(args: &MultiValue) -> mlua::Result<(Vec<String>, String, Function)> {
    let bad = |n: usize, what: &str| {
        mlua::Error::RuntimeError(format!("bad argument #{n} to 'register_cli' ({what})"))
    };
    let expected = |n: usize, want: &str, got: &Value| {
        bad(
            n,
            &format!("{want} expected, got {}", super::events::lua_type(got)),
        )
    };
    if args.len() != 3 {
        return Err(mlua::Error::RuntimeError(
            "'register_cli' needs 3 arguments".into(),
        ));
    }
    let Value::Table(t) = &args[0] else {
        return Err(expected(1, "table", &args[0]));
    };
    let usage = match &args[1] {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        other => return Err(expected(2, "string", other)),
    };
    let Value::Function(f) = &args[2] else {
        return Err(expected(3, "function", &args[2]));
    };
    let mut path = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (_, v) = pair?;
        if path.len() >= 5 {
            return Err(bad(
                1,
                "1st argument must be a table with a maximum of 5 entries",
            ));
        }
        match v {
            Value::String(s) => path.push(s.to_string_lossy()),
            _ => return Err(bad(1, "1st argument must be a table filled with strings")),
        }
    }
    Ok((path, usage, f.clone()))
}

/// `core.register_cli(path, usage, fn)`, body only as in HAProxy: the Runtime API serves
/// `path` from now on and lists `usage` in its help.
pub(crate) fn register(path: Vec<String>, usage: String, f: Function) -> mlua::Result<()> {
    let c = ctx()?;
    if c.phase.get() != super::engine::Phase::Body {
        return Err(mlua::Error::RuntimeError(
            "register_cli: not allowed outside of the script body".into(),
        ));
    }
    if path.is_empty() {
        return Err(mlua::Error::RuntimeError(
            "register_cli: the path needs at least one word".into(),
        ));
    }
    // a path registered again keeps its place and takes the new function and usage
    let mut fns = c.cli.borrow_mut();
    let mut shared = c.shared.cli.lock().unwrap_or_else(|e| e.into_inner());
    match fns.iter().position(|(p, _)| *p == path) {
        Some(i) => {
            fns[i].1 = f;
            shared[i].1 = usage;
        }
        None => {
            fns.push((path.clone(), f));
            shared.push((path, usage));
        }
    }
    Ok(())
}

/// Serves the Runtime API's calls until the engine stops, each in its own coroutine.
pub(crate) async fn serve(ctx: Rc<Ctx>, mut calls: tokio::sync::mpsc::UnboundedReceiver<CliCall>) {
    while let Some(call) = calls.recv().await {
        tokio::task::spawn_local(run(ctx.clone(), call));
    }
}

/// Runs one command's function and replies with what it sent; an error is logged as HAProxy
/// logs it (`Lua cli '<lua.cli.show.greeting>': <file:line: message>.`), with what was sent
/// before it as the reply.
async fn run(ctx: Rc<Ctx>, mut call: CliCall) {
    let found = {
        let cli = ctx.cli.borrow();
        first_match(cli.iter().map(|(p, _)| p.as_slice()), &call.words)
            .map(|i| (cli[i].0.join("."), cli[i].1.clone()))
    };
    let Some((name, f)) = found else { return };
    let out = Rc::new(RefCell::new(Vec::new()));
    let mut args = MultiValue::new();
    let words = call
        .words
        .iter()
        .map(|w| ctx.lua.create_string(w).map(Value::String));
    let applet = ctx
        .lua
        .create_userdata(Applet(out.clone()))
        .map(Value::UserData);
    match std::iter::once(applet)
        .chain(words)
        .collect::<mlua::Result<Vec<_>>>()
    {
        Ok(v) => args.extend(v),
        Err(e) => {
            crate::logging::alert(&format!("Lua cli '<lua.cli.{name}>': {e}."));
            return;
        }
    }
    // the Runtime API session gone (its client left, or its stats timeout expired), the
    // command ends with it, as HAProxy releases the Lua context with the CLI applet: a command
    // blocked forever in a sleep or a wait would otherwise live on with its sockets
    let outcome = tokio::select! {
        r = super::runner::run(f, args, "cli") => r,
        _ = call.reply.closed() => return,
    };
    if let Err(m) = outcome {
        crate::logging::alert(&format!("Lua cli '<lua.cli.{name}>': {m}."));
    }
    let text = String::from_utf8_lossy(&out.borrow()).into_owned();
    let _ = call.reply.send(text);
}

/// The applet a CLI function writes its reply through (HAProxy's `AppletTCP` in a CLI context):
/// `send` adds to the reply; there is no request body to read, so `getline` and `receive`
/// return nil.
struct Applet(Rc<RefCell<Vec<u8>>>);

impl UserData for Applet {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("send", |_, this, s: mlua::String| {
            this.0.borrow_mut().extend_from_slice(&s.as_bytes());
            Ok(())
        });
        m.add_method("getline", |_, _, ()| Ok(Value::Nil));
        m.add_method("receive", |_, _, _: MultiValue| Ok(Value::Nil));
    }
}

#[cfg(test)]
mod tests {
    use super::first_match;

    #[test]
    fn the_first_registered_path_wins() {
        let p = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let paths = [p(&["show", "greeting"]), p(&["show"]), p(&["lua", "x"])];
        let m = |w: &[&str]| first_match(paths.iter().map(|v| v.as_slice()), &p(w));
        assert_eq!(m(&["show", "greeting", "bob"]), Some(0));
        assert_eq!(m(&["show", "other"]), Some(1));
        assert_eq!(m(&["lua"]), None);
        assert_eq!(m(&["lua", "x"]), Some(2));
        assert_eq!(m(&[]), None);
    }
}
