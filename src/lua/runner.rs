//! Runs Lua functions as coroutines on the engine's runtime, with HAProxy's safety limits:
//! `tune.lua.burst-timeout` (pure Lua run time between two yields, enforced by an instruction
//! hook) and `tune.lua.task-timeout` / `tune.lua.session-timeout` (the run's Lua time in all,
//! sleeps and waits for I/O not counted, as HAProxy counts them). Errors never escape: they are
//! returned as text for the caller to log.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use mlua::{Function, HookTriggers, MultiValue, Thread, VmState};

use super::engine::{clean_error, ctx, Ctx};
use crate::config::LuaPriority;

/// What a run that used up its `task-timeout` or `session-timeout` ends with (HAProxy's text).
const EXECUTION_TIMEOUT: &str = "execution timeout";

/// Marker carried by the error `core.done()` raises to end the current run early.
pub(crate) const DONE_MARKER: &str = "__harp_core_done__";

thread_local! {
    /// Deadline of the coroutine slice currently running on this thread (burst timeout).
    static BURST_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Set by the hook when it forced a yield (so the burst clock keeps running).
    static FORCED: Cell<bool> = const { Cell::new(false) };
    /// Publish time of the event whose callback is being polled (`core.harp_event_age_us()`).
    static EVENT_PUBLISHED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Start of the pure-Lua stretch of the coroutine being polled (demotion clock).
    static STRETCH_START: Cell<Option<Instant>> = const { Cell::new(None) };
    /// `tune.lua.nice`: where a long stretch moves the Lua thread.
    static LONG_RUN_PRIORITY: Cell<LuaPriority> = const { Cell::new(LuaPriority::Idle) };
    /// The thread currently runs at `LONG_RUN_PRIORITY` (until the engine next goes idle).
    static DEMOTED: Cell<bool> = const { Cell::new(false) };
    /// Going back to the normal priority failed (no CAP_SYS_NICE): stay demoted, stop trying.
    static STUCK: Cell<bool> = const { Cell::new(false) };
    /// `tune.lua.max-cpu`: percent of one CPU a long stretch may use.
    static MAX_CPU: Cell<u8> = const { Cell::new(crate::config::DEFAULT_LUA_MAX_CPU) };
    /// Coroutines sleeping off their CPU share: while any does, the thread stays demoted (its
    /// runtime parks during the pause; coming back to the normal priority just to go down again
    /// after the pause would be two syscalls per slice for nothing).
    static PAUSED: Cell<u32> = const { Cell::new(0) };
}

/// A long stretch runs this much Lua, then sleeps for as long as `tune.lua.max-cpu` asks (9 ms at
/// the default 10 %): short enough that an alerting callback queued behind a busy one waits
/// little, long enough that the timer costs nothing.
const SLICE: Duration = Duration::from_millis(1);

/// Pure Lua running this long without yielding moves the Lua thread to `tune.lua.nice`.
/// Event callbacks and tasks that do their work and yield (the usual alerting script: build a
/// message, hand it to `core.httpclient` or a queue: a few microseconds of Lua) never get there,
/// so they run at the process's normal priority and reach their callback without waiting behind
/// busy workers; a script that computes for longer stops competing with the I/O workers at once.
/// Until then it takes a CPU from the workers like any thread: a callback spinning 1 s held the
/// rr p50 of the next 2 ms at 4.1x the idle seconds' with 1 ms here, 1.9x with 200 us and 1.3x
/// with 50 us (perf/README.md, session of 2026-11-25 07:40). The threads that woke during those
/// microseconds then waited for the next tick until the demotion also yielded the CPU (session of
/// 09:10: the p90 of the requests sent in a spin's first 3 ms went from 2.8x to 1.5x the idle
/// seconds'); 20 us (clocks every 250 instructions) gave 1.3x, within that run's noise.
pub(crate) const DEMOTE_AFTER: Duration = Duration::from_micros(50);

/// The instruction hook checks the clocks (burst timeout, demotion) at least this often, even
/// when `tune.lua.forced-yield` yields less often: a loop calling into Rust runs 1,000
/// instructions in tens of microseconds, 10,000 in hundreds, which would blur `DEMOTE_AFTER`.
const CLOCK_EVERY: u32 = 1000;

/// Sets `tune.lua.nice` for this (the Lua) thread.
pub(crate) fn set_long_run_priority(p: LuaPriority) {
    LONG_RUN_PRIORITY.with(|c| c.set(p));
}

/// Sets `tune.lua.max-cpu` for this (the Lua) thread.
pub(crate) fn set_max_cpu(percent: u8) {
    MAX_CPU.with(|c| c.set(percent));
}

/// Whether a stretch that started at `started` has run long enough at `now` to be demoted and
/// held to `tune.lua.max-cpu`.
fn is_long(started: Option<Instant>, now: Instant) -> bool {
    started.is_some_and(|t| now.saturating_duration_since(t) >= DEMOTE_AFTER)
}

/// How long a stretch that just ran `ran` of Lua sleeps to stay within `tune.lua.max-cpu`.
fn pause_for(ran: Duration, percent: u8) -> Duration {
    let p = u32::from(percent.clamp(1, 100));
    ran * (100 - p) / p
}

/// How often the instruction hook fires (`every` instructions) and how many of its calls make a
/// forced yield, for `tune.lua.forced-yield` = `forced_yield`: at least every [`CLOCK_EVERY`]
/// instructions, yielding after about `forced_yield` (never fewer).
fn hook_cadence(forced_yield: u32) -> (u32, u32) {
    let per_yield = forced_yield.div_ceil(CLOCK_EVERY).max(1);
    ((forced_yield / per_yield).max(1), per_yield)
}

/// Called from the instruction hook: demotes the thread once the current stretch is long.
fn demote_if_long(now: Instant) {
    if DEMOTED.with(|d| d.get()) {
        return;
    }
    if !is_long(STRETCH_START.with(|s| s.get()), now) {
        return;
    }
    DEMOTED.with(|d| d.set(true));
    let p = LONG_RUN_PRIORITY.with(|c| c.get());
    let r = match p {
        LuaPriority::Nice(n) => crate::sys::set_current_thread_nice(n),
        LuaPriority::Idle => crate::sys::set_current_thread_sched_idle(),
    };
    match r {
        // The kernel does not reschedule when the running thread moves itself to SCHED_IDLE
        // (its static priority stays the same): the threads that woke on this CPU during the
        // stretch's first microseconds (a worker, the upstream's answer) would wait behind it
        // for the next tick, up to 4 ms at HZ=250. That was most of what a spinning callback
        // cost the data plane (perf/README.md, session of 2026-11-25 09:10): give them the CPU
        // now. (After a nice change the kernel reschedules by itself; the yield costs nothing.)
        Ok(()) => std::thread::yield_now(),
        Err(e) => {
            tracing::warn!(priority = ?p, error = %e, "cannot lower the Lua thread's priority (tune.lua.nice)");
        }
    }
}

/// The engine has nothing left to run (its runtime is about to park): a demoted thread goes back
/// to the normal priority, so the next event is dispatched without delay.
pub(crate) fn restore_priority() {
    if !DEMOTED.with(|d| d.get()) || STUCK.with(|s| s.get()) || PAUSED.with(|p| p.get()) > 0 {
        return;
    }
    match crate::sys::set_current_thread_normal() {
        Ok(()) => DEMOTED.with(|d| d.set(false)),
        Err(e) => {
            STUCK.with(|s| s.set(true));
            tracing::debug!(error = %e, "the Lua thread stays at tune.lua.nice (needs CAP_SYS_NICE to come back)");
        }
    }
}

/// Microseconds since the bus published the event whose callback is running right now, `None`
/// outside an event callback. Per coroutine: set only while that callback's coroutine is polled.
pub(crate) fn event_age_us() -> Option<i64> {
    EVENT_PUBLISHED
        .with(|p| p.get())
        .map(|t| i64::try_from(t.elapsed().as_micros()).unwrap_or(i64::MAX))
}

/// Polls a coroutine with the instruction hook armed: every `forced_yield` instructions it
/// yields to the scheduler (so a busy script never starves other callbacks) and aborts the run
/// with `burst timeout` once it has run pure Lua, without a voluntary yield, for too long. A
/// stretch longer than `DEMOTE_AFTER` sleeps between slices to stay within `tune.lua.max-cpu`
/// (other coroutines run meanwhile); the pauses do not count towards the burst timeout.
struct Burst<F> {
    inner: Pin<Box<F>>,
    thread: Thread,
    burst: Option<Duration>,
    forced_yield: u32,
    /// Start of the current pure-Lua stretch (kept across forced yields); its burst deadline is
    /// `started + burst`.
    started: Option<Instant>,
    /// Publish time of the event this run handles (event callbacks only).
    published: Option<Instant>,
    /// Lua run time of the current stretch since its last pause.
    ran: Duration,
    /// The pause in progress and when it began.
    pause: Option<(Pin<Box<tokio::time::Sleep>>, Instant)>,
    /// `tune.lua.task-timeout` or `tune.lua.session-timeout`: the Lua time the whole run may
    /// use (HAProxy's `hlua_timer`: the thread's CPU time between a resume and the next yield,
    /// summed).
    budget: Option<Duration>,
    /// Lua time used so far: the thread's CPU time spent in this future's polls.
    used: Duration,
}

impl<F> Burst<F> {
    fn new(
        inner: F,
        thread: Thread,
        burst: Option<Duration>,
        forced_yield: u32,
        published: Option<Instant>,
        budget: Option<Duration>,
    ) -> Burst<F> {
        Burst {
            inner: Box::pin(inner),
            thread,
            burst,
            forced_yield,
            started: None,
            published,
            ran: Duration::ZERO,
            pause: None,
            budget,
            used: Duration::ZERO,
        }
    }

    /// Waits out the pause in progress, if any; the stretch's clock skips it, oversleep and
    /// the wait to be polled again included (on a loaded machine they add up to more than
    /// the burst itself).
    fn pausing(&mut self, cx: &mut Context<'_>) -> bool {
        let Some((sleep, began)) = self.pause.as_mut() else {
            return false;
        };
        if sleep.as_mut().poll(cx).is_pending() {
            return true;
        }
        let slept = began.elapsed();
        if let Some(s) = self.started.as_mut() {
            *s += slept;
        }
        self.pause = None;
        PAUSED.with(|p| p.set(p.get() - 1));
        false
    }

    /// After a forced yield at `now`: starts a pause once a long stretch used up its slice.
    fn throttle(&mut self, now: Instant) {
        let percent = MAX_CPU.with(|c| c.get());
        if percent >= 100 || !is_long(self.started, now) || self.ran < SLICE {
            return;
        }
        let len = pause_for(std::mem::take(&mut self.ran), percent);
        self.pause = Some((Box::pin(tokio::time::sleep(len)), now));
        PAUSED.with(|p| p.set(p.get() + 1));
    }
}

impl<F> Drop for Burst<F> {
    fn drop(&mut self) {
        if self.pause.take().is_some() {
            PAUSED.with(|p| p.set(p.get() - 1));
        }
    }
}

impl<T, F: Future<Output = mlua::Result<T>>> Future for Burst<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if self.pausing(cx) {
            return Poll::Pending;
        }
        let polled = Instant::now();
        let cpu_before = self.budget.map(|_| crate::sys::thread_cpu_time());
        let started = *self.started.get_or_insert(polled);
        STRETCH_START.with(|s| s.set(Some(started)));
        let deadline = self.burst.map(|b| started + b);
        BURST_DEADLINE.with(|d| d.set(deadline));
        FORCED.with(|f| f.set(false));
        let outer = EVENT_PUBLISHED.with(|p| p.replace(self.published));
        // mlua keeps one hooked thread per state: re-arm it for this coroutine's slice. It
        // fires every `every` instructions and yields once `forced_yield` have run.
        let (every, per_yield) = hook_cadence(self.forced_yield);
        let calls = Cell::new(0u32);
        self.thread.set_hook(
            HookTriggers::new().every_nth_instruction(every),
            move |_lua, debug| {
                let now = Instant::now();
                let late = BURST_DEADLINE.with(|d| d.get()).is_some_and(|t| now > t);
                if late {
                    let src = debug.source();
                    let file = src.short_src.as_deref().unwrap_or("?").to_string();
                    return Err(mlua::Error::RuntimeError(format!(
                        "{file}:{}: burst timeout",
                        debug.curr_line()
                    )));
                }
                demote_if_long(now);
                calls.set(calls.get() + 1);
                if calls.get() < per_yield {
                    return Ok(VmState::Continue);
                }
                calls.set(0);
                FORCED.with(|f| f.set(true));
                Ok(VmState::Yield)
            },
        );
        let r = self.inner.as_mut().poll(cx);
        BURST_DEADLINE.with(|d| d.set(None));
        STRETCH_START.with(|s| s.set(None));
        EVENT_PUBLISHED.with(|p| p.set(outer));
        let now = Instant::now();
        if let Some(before) = cpu_before {
            self.used += crate::sys::thread_cpu_time().saturating_sub(before);
        }
        if FORCED.with(|f| f.replace(false)) {
            self.ran += now - polled;
            self.throttle(now);
        } else {
            self.started = None;
            self.ran = Duration::ZERO;
        }
        // checked where the run yields, as HAProxy checks its timer on each yield: the script
        // cannot catch it, and a sleeping script does not use its budget
        if r.is_pending() && self.budget.is_some_and(|b| self.used > b) {
            return Poll::Ready(Err(mlua::Error::RuntimeError(EXECUTION_TIMEOUT.into())));
        }
        r
    }
}

/// Refreshes the memory figure `show info` prints.
pub(crate) fn update_memory(ctx: &Ctx) {
    ctx.shared
        .memory
        .store(ctx.lua.used_memory() as u64, Ordering::Relaxed);
}

fn is_done(e: &mlua::Error) -> bool {
    e.to_string().contains(DONE_MARKER)
}

/// Runs `f(args)` as a coroutine to completion. `core.done()` counts as success. `what` says
/// which timeout applies (`task`/`event` use `tune.lua.task-timeout`).
pub(crate) async fn run(f: Function, args: MultiValue, what: &str) -> Result<(), String> {
    run_event(f, args, what, None).await
}

/// `run` for an event callback: `published` is the event's bus publish time, which
/// `core.harp_event_age_us()` reads while this coroutine runs.
pub(crate) async fn run_event(
    f: Function,
    args: MultiValue,
    what: &str,
    published: Option<Instant>,
) -> Result<(), String> {
    let ctx = ctx().map_err(|e| e.to_string())?;
    let thread = ctx.lua.create_thread(f).map_err(|e| clean_error(&e))?;
    let burst = Some(ctx.tune.burst_timeout).filter(|d| !d.is_zero());
    let forced_yield = ctx.tune.forced_yield.unwrap_or_else(|| {
        let threads = ctx.reg.global().nbthread.unwrap_or(1).max(1) as u32;
        (10000 / threads).max(500)
    });
    let budget = match what {
        "task" | "event" => ctx.tune.task_timeout,
        // a Runtime API command is bounded as HAProxy bounds it (`hlua_timeout_session`)
        "cli" => Some(ctx.tune.session_timeout),
        _ => None,
    };
    let fut = Burst::new(
        thread.clone().into_async::<()>(args),
        thread,
        burst,
        forced_yield.max(1),
        published,
        budget,
    );
    let res = fut.await.map_err(|e| (is_done(&e), clean_error(&e)));
    update_memory(&ctx);
    match res {
        Ok(()) | Err((true, _)) => Ok(()),
        Err((false, m)) => {
            ctx.shared.errors.fetch_add(1, Ordering::Relaxed);
            Err(m)
        }
    }
}

/// Starts a task (`core.register_task`) now; errors are logged as HAProxy does.
pub(crate) fn spawn_task(f: Function, args: MultiValue) {
    tokio::task::spawn_local(async move {
        if let Err(m) = run(f, args, "task").await {
            crate::logging::alert(&format!("Lua task: {m}."));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_checks_clocks_often_and_yields_as_configured() {
        assert_eq!(hook_cadence(5000), (1000, 5), "nbthread 2 default");
        assert_eq!(hook_cadence(10000), (1000, 10));
        assert_eq!(hook_cadence(1500), (750, 2));
        assert_eq!(hook_cadence(500), (500, 1));
        assert_eq!(hook_cadence(1), (1, 1));
        let (every, n) = hook_cadence(10001);
        assert!(every <= CLOCK_EVERY && every * n <= 10001 && every * n > 10001 - n);
    }

    #[test]
    fn pauses_keep_the_share() {
        let ms = Duration::from_millis;
        assert_eq!(pause_for(ms(1), 10), ms(9));
        assert_eq!(pause_for(ms(1), 50), ms(1));
        assert_eq!(pause_for(ms(1), 100), Duration::ZERO);
        assert_eq!(pause_for(ms(2), 0), ms(198), "clamped to 1 %");
    }
}
