//! The executor: spawned tasks in a slab, a local ready queue of task ids, and wakers that are
//! `Send + Sync` (std requires it) although tasks never leave their worker.
//!
//! A wake on the worker thread pushes the id onto the local queue (one atomic swap on the task's
//! `queued` flag, no lock). A wake from another thread (the main thread's stop signal, the admin
//! thread's `shutdown sessions`) pushes the id onto [`Shared`]'s mutex-protected queue and writes
//! the worker's eventfd, which has a `POLL_ADD` in the ring, so a worker blocked in
//! `io_uring_enter` wakes up.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};

use slab::Slab;

/// The id of the root future of `block_on` (never a slab key: slab keys stay far below).
pub(super) const ROOT: usize = usize::MAX;

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

/// The part of the executor other threads may touch.
pub(super) struct Shared {
    /// Ids of tasks woken from other threads.
    remote: Mutex<Vec<usize>>,
    /// `remote` may hold ids (set by wakers, cleared by the worker under the lock).
    notified: AtomicBool,
    /// eventfd polled by the ring: written once per batch of remote wakes.
    kick: OwnedFd,
}

impl Shared {
    fn push_remote(&self, id: usize) {
        match self.remote.lock() {
            Ok(mut q) => q.push(id),
            Err(poisoned) => poisoned.into_inner().push(id),
        }
        if !self.notified.swap(true, Ordering::AcqRel) {
            // EAGAIN (counter full) still leaves the eventfd readable: the worker wakes anyway
            let _ = rustix::io::write(&self.kick, &1u64.to_ne_bytes());
        }
    }

    /// The eventfd to poll for remote wakes.
    pub(super) fn kick_fd(&self) -> &OwnedFd {
        &self.kick
    }
}

/// One task's wake state; the waker is an `Arc` of it.
pub(super) struct Header {
    id: usize,
    /// In a ready queue (or finished: then it stays set so late wakes push nothing).
    queued: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for Header {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // an RMW on both sides (here and when the worker clears it before polling) so a wake racing
        // with a poll is never lost
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let local = super::try_with_core(|c| {
            if Arc::ptr_eq(&c.exec.shared, &self.shared) {
                c.exec.ready.borrow_mut().push_back(self.id);
                true
            } else {
                false
            }
        });
        if local != Some(true) {
            self.shared.push_remote(self.id);
        }
    }
}

struct Task {
    /// `None` while the task is being polled (taken out so no borrow is held across its poll).
    run: Option<(BoxFuture, Waker)>,
    header: Arc<Header>,
}

/// Tasks of one worker.
pub(super) struct Executor {
    pub(super) shared: Arc<Shared>,
    tasks: RefCell<Slab<Task>>,
    pub(super) ready: RefCell<VecDeque<usize>>,
    root: Arc<Header>,
}

impl Executor {
    /// `kick`: a non-blocking eventfd the driver polls.
    pub(super) fn new(kick: OwnedFd) -> Executor {
        let shared = Arc::new(Shared {
            remote: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            kick,
        });
        let root = Arc::new(Header {
            id: ROOT,
            queued: AtomicBool::new(true),
            shared: shared.clone(),
        });
        Executor {
            shared,
            tasks: RefCell::new(Slab::with_capacity(256)),
            ready: RefCell::new(VecDeque::from([ROOT])),
            root,
        }
    }

    /// The root future's waker.
    pub(super) fn root_waker(&self) -> Waker {
        Waker::from(self.root.clone())
    }

    /// Marks the root as not queued before polling it (an RMW, as for tasks).
    pub(super) fn unqueue_root(&self) {
        self.root.queued.swap(false, Ordering::AcqRel);
    }

    /// Adds a task, ready to run.
    pub(super) fn spawn(&self, fut: BoxFuture) {
        let mut tasks = self.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let id = entry.key();
        let header = Arc::new(Header {
            id,
            queued: AtomicBool::new(true),
            shared: self.shared.clone(),
        });
        let waker = Waker::from(header.clone());
        entry.insert(Task {
            run: Some((fut, waker)),
            header,
        });
        drop(tasks);
        self.ready.borrow_mut().push_back(id);
    }

    /// Next ready task id.
    pub(super) fn pop(&self) -> Option<usize> {
        self.ready.borrow_mut().pop_front()
    }

    /// Whether a task is ready to run.
    pub(super) fn has_ready(&self) -> bool {
        !self.ready.borrow().is_empty()
    }

    /// Moves the ids woken from other threads into the local queue.
    pub(super) fn drain_remote(&self) {
        if !self.shared.notified.load(Ordering::Acquire) {
            return;
        }
        let mut q = match self.shared.remote.lock() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        };
        // cleared under the lock: a waker that pushes after we unlock sees `false` and kicks
        self.shared.notified.store(false, Ordering::Release);
        self.ready.borrow_mut().extend(q.drain(..));
    }

    /// Polls task `id` once (a stale or unknown id is ignored: spurious polls are harmless).
    pub(super) fn poll_task(&self, id: usize) {
        let (mut fut, waker) = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(task) = tasks.get_mut(id) else {
                return;
            };
            let Some(run) = task.run.take() else {
                return;
            };
            task.header.queued.swap(false, Ordering::AcqRel);
            run
        };
        let done = fut
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        let mut tasks = self.tasks.borrow_mut();
        if done {
            let task = tasks.remove(id);
            drop(tasks);
            task.header.queued.store(true, Ordering::Release);
            // the finished future is dropped without any borrow held
            drop((fut, waker, task));
        } else if let Some(task) = tasks.get_mut(id) {
            task.run = Some((fut, waker));
        }
    }

    /// Number of live tasks.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.tasks.borrow().len()
    }

    /// Drops every task (end of `block_on`); their drops may spawn or wake, hence the loop.
    pub(super) fn drop_all(&self) {
        loop {
            let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
            if tasks.is_empty() {
                break;
            }
            for (_, t) in tasks {
                t.header.queued.store(true, Ordering::Release);
                drop(t);
            }
        }
        self.ready.borrow_mut().clear();
        self.root.queued.store(true, Ordering::Release);
    }
}
