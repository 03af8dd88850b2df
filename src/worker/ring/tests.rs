use std::cell::RefCell;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::*;

fn stats() -> (usize, usize, usize) {
    with_core(|c| (c.exec.len(), c.driver.in_flight(), c.timers.len()))
}

/// Sleeps on the ring until `f` holds (bounded).
async fn until(mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < end, "condition not reached");
        Ring::sleep(Duration::from_millis(1)).await;
    }
}

#[test]
fn wake_from_another_thread() {
    let v = Ring::block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(7u32)
        });
        let v = rx.await.unwrap();
        t.join().unwrap().unwrap();
        // a spawned task woken remotely too (the watch is how workers learn they must stop)
        let (wtx, mut wrx) = tokio::sync::watch::channel(0u8);
        let got = Rc::new(RefCell::new(0u8));
        let g = got.clone();
        Ring::spawn(async move {
            wrx.changed().await.unwrap();
            *g.borrow_mut() = *wrx.borrow();
        });
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            wtx.send(2).unwrap();
            // keep the sender until the value was seen
            std::thread::sleep(Duration::from_millis(200));
        });
        let g = got.clone();
        until(move || *g.borrow() == 2).await;
        v
    });
    assert_eq!(v, 7);
}

#[test]
fn late_wakes_of_finished_tasks_are_harmless() {
    let kept: Arc<Mutex<Vec<Waker>>> = Arc::default();
    Ring::block_on(async {
        for _ in 0..10 {
            let k = kept.clone();
            Ring::spawn(std::future::poll_fn(move |cx| {
                k.lock().unwrap().push(cx.waker().clone());
                std::task::Poll::Ready(())
            }));
        }
        until(|| kept.lock().unwrap().len() == 10).await;
        until(|| stats().0 == 0).await;
        // slots get reused by new tasks while the old wakers still exist
        let polls = Rc::new(RefCell::new(0));
        for _ in 0..10 {
            let p = polls.clone();
            Ring::spawn(async move {
                *p.borrow_mut() += 1;
                Ring::sleep(Duration::from_millis(30)).await;
            });
        }
        let ws = kept.lock().unwrap().clone();
        std::thread::spawn(move || ws.into_iter().for_each(Waker::wake))
            .join()
            .unwrap();
        for w in kept.lock().unwrap().iter() {
            w.wake_by_ref();
        }
        until(|| stats().0 == 0).await;
        assert_eq!(*polls.borrow(), 10);
    });
    // and after the runtime is gone
    for w in kept.lock().unwrap().drain(..) {
        w.wake();
    }
}

#[test]
fn timers_fire_in_order_and_cancelled_ones_never() {
    Ring::block_on(async {
        let order = Rc::new(RefCell::new(Vec::new()));
        for ms in [30u64, 10, 20, 0] {
            let o = order.clone();
            Ring::spawn(async move {
                Ring::sleep(Duration::from_millis(ms)).await;
                o.borrow_mut().push(ms);
            });
        }
        let t0 = Instant::now();
        let r = Ring::timeout(Duration::from_millis(15), std::future::pending::<()>()).await;
        assert_eq!(r, Err(Elapsed));
        assert!(t0.elapsed() >= Duration::from_millis(15));
        // a timeout whose future wins leaves no timer behind
        assert_eq!(
            Ring::timeout(Duration::from_secs(60), async { 5 }).await,
            Ok(5)
        );
        let fired = Rc::new(RefCell::new(false));
        let f = fired.clone();
        let cancelled = async move {
            Ring::sleep(Duration::from_millis(5)).await;
            *f.borrow_mut() = true;
        };
        tokio::select! {
            _ = cancelled => {}
            _ = Ring::sleep(Duration::from_millis(1)) => {}
        }
        let o = order.clone();
        until(move || o.borrow().len() == 4).await;
        assert_eq!(*order.borrow(), vec![0, 10, 20, 30]);
        Ring::sleep(Duration::from_millis(10)).await;
        assert!(!*fired.borrow());
        assert_eq!(stats().2, 0);
    });
}

#[test]
fn readiness_on_a_socketpair() {
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    Ring::block_on(async move {
        // writable at once
        let w = Ring::ready(a.as_raw_fd(), Interest::Write).await.unwrap();
        assert_ne!(w & libc::POLLOUT as u32, 0);
        let t0 = Instant::now();
        Ring::spawn(async move {
            Ring::sleep(Duration::from_millis(20)).await;
            b.write_all(b"x").unwrap();
            Ring::sleep(Duration::from_millis(20)).await;
            drop(b);
        });
        let r = Ring::ready(a.as_raw_fd(), Interest::Read).await.unwrap();
        assert_ne!(r & libc::POLLIN as u32, 0);
        assert!(t0.elapsed() >= Duration::from_millis(15));
        let mut buf = [0u8; 4];
        assert_eq!((&a).read(&mut buf).unwrap(), 1);
        // peer closed: readable with RDHUP/HUP
        let r = Ring::ready(a.as_raw_fd(), Interest::Read).await.unwrap();
        assert_ne!(r & (libc::POLLRDHUP | libc::POLLHUP) as u32, 0);
        assert_eq!(stats().1, 0);
    });
}

use std::io::Read;

#[test]
fn dropped_readiness_then_close_gives_no_stray_wake() {
    Ring::block_on(async {
        let mut keep = Vec::new();
        for _ in 0..50 {
            let (a, b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            // the poll loses against a timeout: its future is dropped with the op in flight
            let r = Ring::timeout(
                Duration::from_millis(1),
                Ring::ready(a.as_raw_fd(), Interest::Read),
            )
            .await;
            assert!(r.is_err());
            drop(a);
            keep.push(b);
        }
        // the removes complete and every key is freed
        until(|| stats().1 == 0).await;
        // new sockets (likely the same fd numbers) get only their own completions
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let woke = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let r = Ring::timeout(Duration::from_millis(30), async {
            let r = Ring::ready(a.as_raw_fd(), Interest::Read).await;
            woke.fetch_add(1, Ordering::Relaxed);
            r
        })
        .await;
        assert!(r.is_err(), "nothing was written: no wake expected");
        assert!(started.elapsed() >= Duration::from_millis(25));
        drop(keep);
        b.write_all(b"y").unwrap();
        let r = Ring::ready(a.as_raw_fd(), Interest::Read).await.unwrap();
        assert_ne!(r & libc::POLLIN as u32, 0);
        assert_eq!(woke.load(Ordering::Relaxed), 0);
        assert_eq!(stats(), (0, 0, 0));
    });
}

#[test]
fn shutdown_completes_a_poll_on_a_socket_about_to_close() {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let a = Rc::new(a);
    Ring::block_on(async move {
        let a2 = a.clone();
        Ring::spawn(async move {
            Ring::sleep(Duration::from_millis(10)).await;
            a2.shutdown(std::net::Shutdown::Both).unwrap();
        });
        let r = Ring::ready(a.as_raw_fd(), Interest::Read).await.unwrap();
        assert_ne!(
            r & (libc::POLLHUP | libc::POLLRDHUP | libc::POLLIN) as u32,
            0
        );
    });
}

#[test]
fn runtime_drop_with_pending_tasks_cleans_up() {
    let (a, _b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let fd = a.as_raw_fd();
    Ring::block_on(async move {
        for _ in 0..10 {
            Ring::spawn(async move {
                let _ = Ring::ready(fd, Interest::Read).await;
            });
            Ring::spawn(Ring::sleep(Duration::from_secs(60)));
        }
        Ring::sleep(Duration::from_millis(5)).await;
        assert_eq!(stats().0, 20);
    });
    // a second runtime on the same thread works
    assert_eq!(Ring::block_on(async { 3 }), 3);
    drop(a);
}
