//! The Runtime API on `stats socket`s, compatible with HAProxy's (`socat`, hatop, exporters).
//!
//! Sockets are bound at start-up (errors reported), then served by one dedicated thread running a
//! current-thread tokio runtime, never by a data-plane worker. Each connection is its own task
//! with read/write deadlines. Commands change the model only through `Registry::apply`.

mod commands;
mod help;
mod listener;
pub mod parse;
mod render;
mod session;
mod stat_fields;

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use listener::Bound;
use session::Shared;

use crate::model::Registry;

pub use commands::{execute, Next, SessionCtx};

/// Extra `show info` lines from other modules (e.g. Lua memory and dropped events).
pub type InfoHook = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// Why the Runtime API could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A stats socket could not be opened.
    #[error("cannot bind stats socket {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The admin thread or its runtime could not start.
    #[error("cannot start the Runtime API thread: {0}")]
    Thread(std::io::Error),
}

/// Running stats sockets.
#[derive(Debug)]
pub struct Admin {
    stop_tx: Option<tokio::sync::watch::Sender<bool>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    unix_paths: Vec<PathBuf>,
}

/// Opens every `stats socket` and serves the Runtime API on its own thread.
pub fn start(reg: Arc<Registry>, info: InfoHook) -> Result<Admin, AdminError> {
    let mut bound = Vec::new();
    for s in &reg.global().stats_sockets {
        bound.push(listener::bind(s)?);
    }
    let unix_paths = bound
        .iter()
        .filter_map(|b| match b {
            Bound::Unix(_, p, _) => Some(p.clone()),
            Bound::Tcp(..) => None,
        })
        .collect();
    if bound.is_empty() {
        return Ok(Admin {
            stop_tx: None,
            thread: Mutex::new(None),
            unix_paths,
        });
    }
    let shared = Arc::new(Shared {
        timeout: reg.global().stats_timeout,
        reg,
        info,
        sessions: AtomicUsize::new(0),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AdminError::Thread)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("harp-admin".into())
        .spawn(move || rt.block_on(run(bound, shared, stop_rx)))
        .map_err(AdminError::Thread)?;
    Ok(Admin {
        stop_tx: Some(stop_tx),
        thread: Mutex::new(Some(thread)),
        unix_paths,
    })
}

async fn run(bound: Vec<Bound>, shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    for b in bound {
        let shared = shared.clone();
        let stop = stop.clone();
        match b {
            Bound::Tcp(l, level) => match tokio::net::TcpListener::from_std(l) {
                Ok(l) => {
                    tokio::spawn(accept_tcp(l, shared, level, stop));
                }
                Err(e) => tracing::error!(error = %e, "stats socket: cannot register listener"),
            },
            Bound::Unix(l, _, level) => match tokio::net::UnixListener::from_std(l) {
                Ok(l) => {
                    tokio::spawn(accept_unix(l, shared, level, stop));
                }
                Err(e) => tracing::error!(error = %e, "stats socket: cannot register listener"),
            },
        }
    }
    stopped(&mut stop).await;
}

/// Resolves once stop was requested (or the sender is gone).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn accept_tcp(
    l: tokio::net::TcpListener,
    shared: Arc<Shared>,
    level: crate::config::AccessLevel,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = l.accept() => match r {
                Ok((s, _)) => {
                    let _ = s.set_nodelay(true);
                    if let Some(g) = session::admit(&shared) {
                        let sh = shared.clone();
                        tokio::spawn(async move {
                            session::serve(s, sh, level).await;
                            drop(g);
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "stats socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = stopped(&mut stop) => return,
        }
    }
}

async fn accept_unix(
    l: tokio::net::UnixListener,
    shared: Arc<Shared>,
    level: crate::config::AccessLevel,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = l.accept() => match r {
                Ok((s, _)) => {
                    if let Some(g) = session::admit(&shared) {
                        let sh = shared.clone();
                        tokio::spawn(async move {
                            session::serve(s, sh, level).await;
                            drop(g);
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "stats socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = stopped(&mut stop) => return,
        }
    }
}

impl Admin {
    /// Closes the sockets (unix socket files are removed).
    pub fn stop(&self) {
        if let Some(tx) = &self.stop_tx {
            let _ = tx.send(true);
        }
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        for p in &self.unix_paths {
            let _ = std::fs::remove_file(p);
        }
    }
}
