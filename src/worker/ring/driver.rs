//! The worker's io_uring: readiness ops (`POLL_ADD`), their cancellation, the eventfd that lets
//! other threads interrupt a wait, and the one `io_uring_enter` per loop iteration.
//!
//! An op's `user_data` is its key in `ops`. A key stays allocated until the op's final CQE arrived,
//! also when the future waiting for it was dropped first (the op is then `Orphan` and a
//! `POLL_REMOVE` is queued), so a CQE can never be credited to a newer op reusing the key. Poll
//! ops reference no user memory (the kernel holds its own reference on the polled file), which is
//! why pushing them is sound whatever happens to the fd afterwards.
//!
//! Oneshot polls on purpose: a multishot read poll per socket (edge-triggered readiness, removed
//! before close) was tried (branch `ring`, commit 0412bb7) and measured no better in the same runs
//! (persistent connections -2 % CPU per request, connect-per-request +2 % CPU per connection for
//! the extra POLL_REMOVE), while edge-triggered readiness would stall a direction whenever
//! forward.rs waits after a short read that left data behind (it relies on level-triggered polls).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use io_uring::{opcode, squeue, types, IoUring};
use slab::Slab;

/// `user_data` of the eventfd poll.
const KICK: u64 = u64::MAX;
/// `user_data` of `POLL_REMOVE` ops (their CQEs carry nothing we need).
const REMOVE: u64 = u64::MAX - 1;

/// `IORING_ENTER_GETEVENTS` from `<linux/io_uring.h>` (the io-uring crate keeps its copy private).
const ENTER_GETEVENTS: u32 = 1;

/// Submission queue size; the completion queue is 4x (the kernel also keeps overflowed CQEs).
const ENTRIES: u32 = 1024;

enum Op {
    /// In flight; the waker of the future waiting for it.
    Waiting(Option<Waker>),
    /// Completed with this result, not yet collected by its future.
    Done(i32),
    /// In flight, its future dropped: freed when its CQE arrives.
    Orphan,
}

/// Setup flag sets to try, best first: SINGLE_ISSUER + DEFER_TASKRUN (6.1+) run completions only
/// when this thread asks for them (no inter-processor interrupts, no task work interrupting
/// syscalls); COOP_TASKRUN (5.19+) at least avoids the forced task-work notification.
const FLAG_SETS: [(&str, bool, bool, bool); 4] = [
    ("single_issuer+defer_taskrun+coop_taskrun", true, true, true),
    ("single_issuer+coop_taskrun", true, false, true),
    ("coop_taskrun", false, false, true),
    ("none", false, false, false),
];

/// Builds a ring with the best flags this kernel accepts.
pub(super) fn build_ring() -> io::Result<(IoUring, &'static str)> {
    let mut last = io::Error::from(io::ErrorKind::Unsupported);
    for (name, single, defer, coop) in FLAG_SETS {
        let mut b = IoUring::builder();
        b.setup_cqsize(ENTRIES * 4);
        if single {
            b.setup_single_issuer();
        }
        if defer {
            b.setup_defer_taskrun();
        }
        if coop {
            b.setup_coop_taskrun();
        }
        match b.build(ENTRIES) {
            Ok(r) => return Ok((r, name)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The worker's ring and its in-flight ops.
pub(super) struct Driver {
    ring: RefCell<IoUring>,
    ops: RefCell<Slab<Op>>,
    kick: RawFd,
}

impl Driver {
    /// A driver on `ring`, with `kick` (an eventfd owned by the executor, which outlives the
    /// driver's use of it) polled for remote wakes.
    pub(super) fn new(ring: IoUring, kick: RawFd) -> io::Result<Driver> {
        if !ring.params().is_feature_ext_arg() {
            return Err(io::Error::from(io::ErrorKind::Unsupported));
        }
        let d = Driver {
            ring: RefCell::new(ring),
            ops: RefCell::new(Slab::with_capacity(1024)),
            kick,
        };
        d.arm_kick()?;
        Ok(d)
    }

    /// (Re-)arms the oneshot poll of the wake-up eventfd (after each of its CQEs).
    pub(super) fn arm_kick(&self) -> io::Result<()> {
        let sqe = opcode::PollAdd::new(types::Fd(self.kick), libc::POLLIN as u32)
            .build()
            .user_data(KICK);
        self.push(&sqe)
    }

    /// Queues one SQE, flushing the queue to the kernel first when it is full.
    fn push(&self, sqe: &squeue::Entry) -> io::Result<()> {
        let mut ring = self.ring.borrow_mut();
        for _ in 0..3 {
            // SAFETY: only POLL_ADD and POLL_REMOVE entries are pushed; they reference no user
            // memory (the kernel takes its own reference on the polled file).
            if unsafe { ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            ring.submit()?;
        }
        Err(io::Error::from(io::ErrorKind::WouldBlock))
    }

    /// Starts a oneshot poll of `fd` for `mask`; the key to collect its result with.
    fn poll_add(&self, fd: RawFd, mask: u32, w: Waker) -> io::Result<usize> {
        let key = self.ops.borrow_mut().insert(Op::Waiting(Some(w)));
        let sqe = opcode::PollAdd::new(types::Fd(fd), mask)
            .build()
            .user_data(key as u64);
        if let Err(e) = self.push(&sqe) {
            self.ops.borrow_mut().remove(key);
            return Err(e);
        }
        Ok(key)
    }

    /// The result of op `key` if it completed (its key is then freed), else records `w`.
    fn take(&self, key: usize, w: &Waker) -> Poll<i32> {
        let mut ops = self.ops.borrow_mut();
        match ops.get_mut(key) {
            Some(Op::Done(r)) => {
                let r = *r;
                ops.remove(key);
                Poll::Ready(r)
            }
            Some(Op::Waiting(slot)) => {
                match slot {
                    Some(old) if old.will_wake(w) => {}
                    _ => *slot = Some(w.clone()),
                }
                Poll::Pending
            }
            // unreachable for a live future; report cancellation rather than hang
            _ => Poll::Ready(-libc::ECANCELED),
        }
    }

    /// The future of op `key` is gone: free the key now if the op completed, else ask the kernel
    /// to remove the poll and free the key on its CQE.
    fn cancel(&self, key: usize) {
        let waker = {
            let mut ops = self.ops.borrow_mut();
            match ops.get_mut(key) {
                Some(Op::Done(_)) => {
                    ops.remove(key);
                    return;
                }
                Some(op @ Op::Waiting(_)) => std::mem::replace(op, Op::Orphan),
                _ => return,
            }
        };
        drop(waker);
        let sqe = opcode::PollRemove::new(key as u64)
            .build()
            .user_data(REMOVE);
        if let Err(e) = self.push(&sqe) {
            // the poll stays until its socket is shut down or closed; the key is freed then
            tracing::debug!(error = %e, "cannot queue POLL_REMOVE");
        }
    }

    /// Submits what is queued and collects completions: waits for at least one (up to `timeout`)
    /// when `block`, else returns at once.
    pub(super) fn enter(&self, block: bool, timeout: Option<Duration>) {
        let mut ring = self.ring.borrow_mut();
        let queued = ring.submission().len() as u32;
        let sub = ring.submitter();
        let r = if !block {
            // SAFETY: no argument pointer is passed; GETEVENTS with min_complete 0 only runs
            // pending completion work (needed with DEFER_TASKRUN) without waiting.
            unsafe { sub.enter::<libc::sigset_t>(queued, 0, ENTER_GETEVENTS, None) }
        } else if let Some(t) = timeout {
            let ts = types::Timespec::from(t);
            let args = types::SubmitArgs::new().timespec(&ts);
            sub.submit_with_args(1, &args)
        } else {
            sub.submit_and_wait(1)
        };
        if let Err(e) = r {
            match e.raw_os_error() {
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => {}
                _ => tracing::warn!(error = %e, "io_uring_enter failed"),
            }
        }
    }

    /// Hands every available completion to its op; returns whether the eventfd fired (the caller
    /// then reads it and calls [`Driver::arm_kick`]).
    pub(super) fn reap(&self) -> bool {
        let mut kicked = false;
        {
            let mut ring = self.ring.borrow_mut();
            let mut ops = self.ops.borrow_mut();
            for cqe in ring.completion() {
                match cqe.user_data() {
                    KICK => kicked = true,
                    REMOVE => {}
                    k => {
                        let k = k as usize;
                        match ops.get_mut(k) {
                            Some(op @ Op::Waiting(_)) => {
                                if let Op::Waiting(Some(w)) =
                                    std::mem::replace(op, Op::Done(cqe.result()))
                                {
                                    // only pushes onto the ready queue: no borrow of ours is taken
                                    w.wake();
                                }
                            }
                            Some(Op::Orphan) => {
                                ops.remove(k);
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        kicked
    }

    /// Ops whose key is still allocated (in flight or not yet collected).
    #[cfg(test)]
    pub(super) fn in_flight(&self) -> usize {
        self.ops.borrow().len()
    }
}

/// Waits until an fd is ready: one oneshot `POLL_ADD`, removed from the kernel if the future is
/// dropped first. Resolves to the poll revents mask.
pub(crate) struct Readiness {
    fd: RawFd,
    mask: u32,
    key: Option<usize>,
    done: bool,
}

impl Readiness {
    /// Waits for `mask` (poll bits) on `fd` (the caller keeps it open while this is pending).
    pub(crate) fn new(fd: RawFd, mask: u32) -> Readiness {
        Readiness {
            fd,
            mask,
            key: None,
            done: false,
        }
    }
}

impl Future for Readiness {
    type Output = io::Result<u32>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u32>> {
        if self.done {
            return Poll::Ready(Err(io::Error::from_raw_os_error(libc::ECANCELED)));
        }
        let r = match self.key {
            None => {
                let (fd, mask) = (self.fd, self.mask);
                match super::with_core(|c| c.driver.poll_add(fd, mask, cx.waker().clone())) {
                    Ok(k) => {
                        self.key = Some(k);
                        return Poll::Pending;
                    }
                    Err(e) => {
                        self.done = true;
                        return Poll::Ready(Err(e));
                    }
                }
            }
            Some(k) => match super::with_core(|c| c.driver.take(k, cx.waker())) {
                Poll::Ready(r) => r,
                Poll::Pending => return Poll::Pending,
            },
        };
        self.key = None;
        self.done = true;
        Poll::Ready(if r < 0 {
            Err(io::Error::from_raw_os_error(-r))
        } else {
            Ok(r as u32)
        })
    }
}

impl Drop for Readiness {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            super::try_with_core(|c| c.driver.cancel(k));
        }
    }
}
