//! `Ring`: the workers' own single-threaded runtime on io_uring, replacing tokio-uring (which sits
//! on a tokio current-thread runtime that polls the ring's fd through epoll, and keeps a tokio
//! timer per wait).
//!
//! One loop iteration: run the ready tasks, fire due timers, then one `io_uring_enter` that submits
//! the queued poll ops and either waits (at least one completion, at most until the next timer,
//! via `IORING_ENTER_EXT_ARG`) or, when tasks are still ready, only collects completions; then each
//! completion wakes its task. The ring is set up with SINGLE_ISSUER + DEFER_TASKRUN when the
//! kernel has them (probed, see [`driver::build_ring`]).
//!
//! Why it is the default: against tokio-uring (with COOP_TASKRUN) in the same runs (38 alternating
//! pairs, proxy pinned alone on one CPU, shared noisy machine), median proxy CPU per connection
//! on connect-per-request -4 % (29 of 38 pairs lower) and per request on persistent connections
//! -6 % (26 of 38); it also makes one syscall less per wake-up (no epoll_wait) and keeps the
//! worker free of any tokio runtime.
//!
//! Parts: [`task`] (executor and wakers), [`driver`] (the ring and readiness ops), [`timer`].
//! This module issues io_uring operations itself: an agreed exception to "raw syscalls live in
//! `src/sys`", since the runtime *is* the ring's owner.

mod driver;
mod task;
mod timer;

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::pin;
use std::rc::Rc;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::runtime::{Elapsed, Rt};
use crate::sys::{self, Interest};
use driver::Readiness;
use timer::Sleep;

/// The native runtime (see the module doc); the workers' default, `HARP_RUNTIME=tokio-uring`
/// selects [`super::runtime::Uring`] instead.
pub(crate) struct Ring;

impl Rt for Ring {
    fn block_on<F: Future>(f: F) -> F::Output {
        block_on(f)
    }

    fn spawn<F: Future<Output = ()> + 'static>(f: F) {
        spawn(f)
    }

    fn ready(fd: RawFd, interest: Interest) -> impl Future<Output = io::Result<u32>> {
        Readiness::new(fd, sys::poll_mask(interest))
    }

    fn sleep(d: Duration) -> impl Future<Output = ()> {
        Sleep::new(d)
    }

    fn timeout<F: Future>(d: Duration, f: F) -> impl Future<Output = Result<F::Output, Elapsed>> {
        timer::timeout(d, f)
    }
}

/// Everything one worker's runtime owns.
pub(super) struct Core {
    exec: task::Executor,
    driver: driver::Driver,
    timers: timer::Timers,
}

impl Core {
    fn new() -> io::Result<Core> {
        let kick = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )?;
        let (ring, flags) = driver::build_ring()?;
        tracing::debug!(flags, "worker io_uring ready");
        let kick_raw = std::os::fd::AsRawFd::as_raw_fd(&kick);
        let exec = task::Executor::new(kick);
        let driver = driver::Driver::new(ring, kick_raw)?;
        Ok(Core {
            exec,
            driver,
            timers: timer::Timers::default(),
        })
    }
}

thread_local! {
    static CORE: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's runtime, `None` outside one (e.g. a future dropped after its
/// runtime ended).
fn try_with_core<T>(f: impl FnOnce(&Core) -> T) -> Option<T> {
    CORE.try_with(|c| c.borrow().as_deref().map(f))
        .ok()
        .flatten()
}

/// Runs `f` on this thread's runtime; using a `Ring` future or `Ring::spawn` outside
/// `Ring::block_on` is a bug of ours, hence the panic.
fn with_core<T>(f: impl FnOnce(&Core) -> T) -> T {
    match try_with_core(f) {
        Some(v) => v,
        None => panic!("Ring runtime used outside Ring::block_on"),
    }
}

/// Whether this kernel supports what `Ring` needs (a ring with `IORING_FEAT_EXT_ARG`, 5.11+);
/// probed once.
pub(crate) fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| match driver::build_ring() {
        Ok((r, _)) => r.params().is_feature_ext_arg(),
        Err(e) => {
            tracing::debug!(error = %e, "io_uring unavailable");
            false
        }
    })
}

/// Uninstalls the runtime at the end of `block_on` (also on unwind), after dropping every task
/// while the runtime is still reachable, so their readiness and timer drops can deregister.
struct Installed(Rc<Core>);

impl Drop for Installed {
    fn drop(&mut self) {
        self.0.exec.drop_all();
        let _ = CORE.try_with(|c| c.borrow_mut().take());
    }
}

/// Tasks polled before the ring is looked at again, so completions are not starved by a task
/// that keeps waking itself.
const BUDGET: usize = 4096;

/// Runs `f` to completion on a fresh runtime on this thread.
fn block_on<F: Future>(f: F) -> F::Output {
    let core = match Core::new() {
        Ok(c) => Rc::new(c),
        // `available()` was checked before choosing this runtime: only resource exhaustion
        // (memlock, fds) at worker start gets here
        Err(e) => panic!("cannot set up the worker's io_uring: {e}"),
    };
    CORE.with(|c| {
        let mut c = c.borrow_mut();
        assert!(c.is_none(), "nested Ring::block_on");
        *c = Some(core.clone());
    });
    let _installed = Installed(core.clone());
    let root_waker = core.exec.root_waker();
    let mut root = pin!(f);
    loop {
        let mut n = 0;
        while let Some(id) = core.exec.pop() {
            if id == task::ROOT {
                core.exec.unqueue_root();
                if let Poll::Ready(v) = root.as_mut().poll(&mut Context::from_waker(&root_waker)) {
                    return v;
                }
            } else {
                core.exec.poll_task(id);
            }
            n += 1;
            if n >= BUDGET {
                break;
            }
        }
        core.exec.drain_remote();
        let mut timeout = None;
        if core.timers.len() > 0 {
            let now = Instant::now();
            core.timers.fire(now);
            timeout = core
                .timers
                .next()
                .map(|at| at.saturating_duration_since(now));
        }
        let block = !core.exec.has_ready();
        core.driver.enter(block, timeout);
        if core.driver.reap() {
            let mut buf = [0u8; 8];
            // resets the eventfd counter; EAGAIN (already zero) is fine
            let _ = rustix::io::read(core.exec.shared.kick_fd(), &mut buf);
            if let Err(e) = core.driver.arm_kick() {
                tracing::warn!(error = %e, "cannot re-arm the worker's wake-up poll");
            }
            core.exec.drain_remote();
        }
    }
}

/// Spawns a task on this thread's runtime.
fn spawn<F: Future<Output = ()> + 'static>(f: F) {
    with_core(|c| c.exec.spawn(Box::pin(f)));
}

#[cfg(test)]
mod tests;
