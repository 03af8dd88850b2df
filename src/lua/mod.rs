//! The Lua 5.4 engine running HAProxy scripts on its own thread.
//!
//! One Lua state lives on a dedicated thread with a current-thread tokio runtime and a `LocalSet`.
//! Bodies, `core.register_init` functions, tasks and event callbacks all run as coroutines, so
//! `core.sleep`, sockets and the HTTP client yield to that runtime instead of blocking it. The
//! data plane never runs Lua and never waits for it: SERVER events reach this thread through the
//! event bus (bounded, non-blocking), whose waker pokes a `tokio::sync::Notify`.
//!
//! `lua-load-per-thread` files are loaded once into the same state with `core.thread = 1` during
//! their body and their `register_init` functions (0 elsewhere), so the idiom
//! `if core.thread > 1 then core.done() end` runs the script exactly once.
//!
//! Safety: an instruction hook yields a busy coroutine every `tune.lua.forced-yield`
//! instructions (other callbacks keep running) and aborts it with `<file>:<line>: burst timeout`
//! once it has run pure Lua, without a voluntary yield, longer than `tune.lua.burst-timeout`;
//! `tune.lua.task-timeout` bounds the Lua time of a whole task/callback run (sleeps and waits
//! for I/O do not count, as in HAProxy); `tune.lua.maxmem` is the allocator
//! limit. Errors are logged (`Lua event_hdl: <msg>.`, `Lua task: <msg>.`) and never abort.
//!
//! Priority: the thread runs at the process's priority (prompt alerts) until a script computes
//! for more than 50 us without yielding; then it moves to `tune.lua.nice` (default SCHED_IDLE),
//! hands the CPU to whatever waits for it, and that script sleeps between 1 ms slices to stay
//! within `tune.lua.max-cpu` (default 10 % of a CPU), until the engine is idle again
//! (`runner.rs`). `core.harp_event_age_us()` (harp only) gives a callback its event's age since
//! the bus published it.
//!
//! Known differences from HAProxy: Server/Proxy objects are userdata (`type()` says
//! "userdata", not "table"); `register_action/fetches/converters/service` are accepted with a
//! warning and do nothing (`register_cli` commands answer on the Runtime API, `cli.rs`); Lua log messages go to stderr only (not to `log` targets);
//! `core.wait()` wakes on any `Queue:push`; socket and HTTP calls are also allowed in the body
//! and init phases; `connect_ssl` verifies certificates unless `httpclient.ssl.verify none`.

mod cli;
mod core_api;
mod engine;
mod events;
mod httpclient;
mod log;
mod map;
mod objects;
mod patref;
mod raising;
mod runner;
mod socket;
mod stktable;
mod tls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::model::Registry;

/// Why Lua could not start.
#[derive(Debug, thiserror::Error)]
pub enum LuaError {
    /// A script failed to load or its body/init raised an error: `file:line: message`.
    #[error("{0}")]
    Script(String),
    /// The Lua thread could not be spawned.
    #[error("cannot start Lua thread: {0}")]
    Spawn(std::io::Error),
}

/// Loss counter of one Lua subscription, shared with `show info` readers on other threads.
#[derive(Debug)]
pub(crate) struct SubStat {
    /// Subscription id (1, 2, ...).
    pub id: u64,
    /// What it listens to and where it was created, e.g. `SERVER_DOWN test/webserver1 (x.lua:12)`.
    pub desc: String,
    /// Events lost while the subscription was paused.
    pub lost: AtomicU64,
    /// Events delivered to the callback.
    pub delivered: AtomicU64,
}

/// State the Lua thread publishes for other threads (`show info`).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Bytes used by the Lua state, refreshed after each run.
    pub memory: AtomicU64,
    /// Events lost because the engine's bus queue was full.
    pub bus_dropped: AtomicU64,
    /// Events lost by paused subscriptions, total.
    pub sub_lost: AtomicU64,
    /// Callback/task/init runs that ended in an error or timeout.
    pub errors: AtomicU64,
    /// Every subscription ever made (kept after unsub so losses stay visible).
    pub subs: Mutex<Vec<Arc<SubStat>>>,
    /// Runtime API commands scripts registered (`core.register_cli`): path words and usage.
    pub cli: Mutex<Vec<(Vec<String>, String)>>,
    /// Where the Runtime API hands such a command to the Lua thread.
    pub cli_calls: Mutex<Option<tokio::sync::mpsc::UnboundedSender<cli::CliCall>>>,
}

/// The running engine.
pub struct LuaEngine {
    shared: Arc<Shared>,
    stop: Arc<tokio::sync::Notify>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Receives once the Lua thread has left its runtime, so `stop` never hangs on a script.
    exited: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl std::fmt::Debug for LuaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaEngine").finish()
    }
}

/// Loads every `lua-load` script on the Lua thread, runs their bodies and `register_init`
/// functions, and returns once subscriptions made there are in place (so no early event is
/// missed); tasks then run.
pub fn start(reg: Arc<Registry>) -> Result<LuaEngine, LuaError> {
    let shared = Arc::new(Shared::default());
    let stop = Arc::new(tokio::sync::Notify::new());
    if reg.global().lua_loads.is_empty() {
        return Ok(LuaEngine {
            shared,
            stop,
            thread: Mutex::new(None),
            exited: Mutex::new(None),
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (sh, st) = (shared.clone(), stop.clone());
    let handle = std::thread::Builder::new()
        .name("harp-lua".into())
        .spawn(move || {
            engine::thread_main(reg, sh, st, tx);
            let _ = done_tx.send(());
        })
        .map_err(LuaError::Spawn)?;
    match rx.recv() {
        Ok(Ok(())) => Ok(LuaEngine {
            shared,
            stop,
            thread: Mutex::new(Some(handle)),
            exited: Mutex::new(Some(done_rx)),
        }),
        Ok(Err(msg)) => {
            let _ = handle.join();
            Err(LuaError::Script(msg))
        }
        Err(_) => {
            let _ = handle.join();
            Err(LuaError::Script("Lua thread ended during start-up".into()))
        }
    }
}

/// For `harp -c`: compiles every `lua-load` script and reports syntax errors as `file:line: ...`.
pub fn check(cfg: &Config) -> Result<(), Vec<String>> {
    let errs: Vec<String> = cfg
        .global
        .lua_loads
        .iter()
        .filter_map(|l| engine::compile_only(&l.file).err())
        .collect();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// The Runtime API reaches the engine through this: its `show info` lines and the commands
/// scripts registered with `core.register_cli`.
impl crate::admin::Extension for LuaEngine {
    fn info(&self) -> Vec<(String, String)> {
        LuaEngine::info(self)
    }

    fn usages(&self) -> Vec<(Vec<String>, String)> {
        // none once the engine stopped: they would not answer
        if self
            .shared
            .cli_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
        {
            return Vec::new();
        }
        let cli = self.shared.cli.lock().unwrap_or_else(|e| e.into_inner());
        cli.clone()
    }

    fn call(&self, words: &[String]) -> Option<tokio::sync::oneshot::Receiver<String>> {
        {
            let cli = self.shared.cli.lock().unwrap_or_else(|e| e.into_inner());
            cli::first_match(cli.iter().map(|(p, _)| p.as_slice()), words)?;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let calls = self
            .shared
            .cli_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        calls
            .as_ref()?
            .send(cli::CliCall {
                words: words.to_vec(),
                reply: tx,
            })
            .ok()?;
        Some(rx)
    }
}

impl LuaEngine {
    /// Lines for `show info`: Lua memory, events lost (bus overflow and paused subscriptions),
    /// and one line per subscription that lost events, so an operator sees missed alerts.
    /// Empty when no script is loaded, so `show info` stays as HAProxy prints it.
    pub fn info(&self) -> Vec<(String, String)> {
        if self
            .exited
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
        {
            return Vec::new();
        }
        let s = &self.shared;
        let bus = s.bus_dropped.load(Ordering::Relaxed);
        let lost = s.sub_lost.load(Ordering::Relaxed);
        let mut v = vec![
            (
                "LuaMemory_bytes".to_string(),
                s.memory.load(Ordering::Relaxed).to_string(),
            ),
            ("LuaEventsDropped".to_string(), (bus + lost).to_string()),
            (
                "LuaErrors".to_string(),
                s.errors.load(Ordering::Relaxed).to_string(),
            ),
        ];
        let subs = s.subs.lock().unwrap_or_else(|e| e.into_inner());
        for sub in subs.iter() {
            let n = sub.lost.load(Ordering::Relaxed);
            if n > 0 {
                v.push((
                    format!("LuaSubscription{}_EventsLost", sub.id),
                    format!("{n} ({})", sub.desc),
                ));
            }
        }
        v
    }

    /// Events delivered to Lua callbacks so far (all subscriptions); for tests and benches.
    pub fn delivered(&self) -> u64 {
        let subs = self.shared.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.iter()
            .map(|s| s.delivered.load(Ordering::Relaxed))
            .sum()
    }

    /// Stops the engine thread (running callbacks are dropped at their next yield). Waits at
    /// most 2 s: a script stuck in pure Lua with `burst-timeout 0` must not block a shutdown.
    pub fn stop(&self) {
        self.stop.notify_one();
        let h = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        let exited = self.exited.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let (Some(h), Some(rx)) = (h, exited) {
            if rx.recv_timeout(std::time::Duration::from_secs(2)).is_ok() {
                let _ = h.join();
            } else {
                tracing::warn!("Lua thread did not stop within 2s, leaving it behind");
            }
        }
    }
}

impl Drop for LuaEngine {
    fn drop(&mut self) {
        self.stop();
    }
}
