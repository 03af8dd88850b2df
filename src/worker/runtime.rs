//! The few runtime services the data plane uses, behind one trait, so that replacing
//! tokio-uring (which has no active maintainer) with compio or another io_uring runtime only means
//! writing another implementation of [`Rt`].

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use crate::sys::{self, Interest};

/// What a worker needs from its runtime. Sockets themselves are plain non-blocking std sockets;
/// the runtime only reports readiness, runs tasks and keeps time.
pub(crate) trait Rt: 'static {
    /// Runs the worker's root future on the current thread until it completes.
    fn block_on<F: Future>(f: F) -> F::Output;
    /// Spawns a task on the current worker (tasks never cross threads).
    fn spawn<F: Future<Output = ()> + 'static>(f: F);
    /// Waits until `fd` is ready for `interest`, or has an error/hang-up; returns the poll
    /// revents mask so callers can skip a syscall when it shows no error (e.g. SO_ERROR after a
    /// connect).
    fn ready(fd: RawFd, interest: Interest) -> impl Future<Output = io::Result<u32>>;
    /// Sleeps.
    fn sleep(d: Duration) -> impl Future<Output = ()>;
    /// Runs `f` for at most `d` (the worker's only timeouts: connect and idle sides), on the
    /// runtime's own timers so no other runtime is needed.
    fn timeout<F: Future>(d: Duration, f: F) -> impl Future<Output = Result<F::Output, Elapsed>>;
}

/// A [`Rt::timeout`] ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// Which runtime the workers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// [`super::ring::Ring`], the default.
    Ring,
    /// [`Uring`] (tokio-uring), kept for A/B comparisons and for kernels without what `Ring`
    /// needs (io_uring `EXT_ARG`, Linux 5.11).
    TokioUring,
}

/// The runtime for this process: `Ring` unless the hidden `HARP_RUNTIME=tokio-uring` environment
/// variable asks for tokio-uring (benchmarks compare both in one build) or the kernel cannot run
/// `Ring`. An error when the kernel refuses io_uring altogether.
pub(crate) fn choose() -> Result<Kind, super::WorkerError> {
    // `ring::available()` set up a ring already: only when it could not is io_uring probed again,
    // for the error to report
    let ring = super::ring::available();
    if !ring {
        if let Err(e) = io_uring::IoUring::new(2) {
            return Err(super::WorkerError::NoUring(e));
        }
        tracing::debug!("io_uring EXT_ARG unavailable: workers use tokio-uring");
    }
    let asked = std::env::var("HARP_RUNTIME").unwrap_or_default();
    if ring && asked != "tokio-uring" {
        Ok(Kind::Ring)
    } else {
        Ok(Kind::TokioUring)
    }
}

/// tokio-uring: readiness through io_uring `POLL_ADD` ops; timers and tasks from the tokio
/// current-thread runtime it runs on.
pub(crate) struct Uring;

impl Rt for Uring {
    fn block_on<F: Future>(f: F) -> F::Output {
        tokio_uring::builder()
            .entries(1024)
            .uring_builder(&uring_flags())
            .start(f)
    }

    fn spawn<F: Future<Output = ()> + 'static>(f: F) {
        tokio_uring::spawn(f);
    }

    async fn ready(fd: RawFd, interest: Interest) -> io::Result<u32> {
        sys::poll_ready(fd, interest).await
    }

    async fn sleep(d: Duration) {
        tokio::time::sleep(d).await
    }

    async fn timeout<F: Future>(d: Duration, f: F) -> Result<F::Output, Elapsed> {
        tokio::time::timeout(d, f).await.map_err(|_| Elapsed)
    }
}

/// The ring's setup flags. `IORING_SETUP_COOP_TASKRUN` (Linux 5.19+): completions of POLL_ADD ops
/// are run as task work when the worker enters the kernel anyway, instead of interrupting
/// whatever syscall it is in with a signal-like notification. Measured on connrate (split
/// pinning, same run): 87-98 -> 73-81 proxy CPU-us per connection. Older kernels refuse the flag,
/// so it is probed once on a throw-away ring.
fn uring_flags() -> io_uring::Builder {
    let mut coop = io_uring::IoUring::builder();
    coop.setup_coop_taskrun();
    if coop.build(2).is_ok() {
        coop
    } else {
        io_uring::IoUring::builder()
    }
}
