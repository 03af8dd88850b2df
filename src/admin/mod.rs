//! The Runtime API on `stats socket`s, socat-compatible and worded as HAProxy 3.2.
//!
//! Layout: [`listener`] binds the sockets and accepts; [`session`] speaks the line protocol on
//! one connection; [`parse`] turns a line into [`parse::AdminCommand`]s; [`commands`] runs them
//! against the model; [`render`] prints stats in HAProxy's formats; [`help`] holds the help text.
//! Everything runs on one dedicated thread with a current-thread tokio runtime, one task per
//! connection, so admin clients never touch a data-plane worker.

pub mod commands;
pub mod help;
pub mod listener;
pub mod parse;
pub mod patterns;
pub mod render;
pub mod session;
pub mod ssl;
pub mod stats_page;
pub mod table;
pub mod vars;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::StatsSocket;
use crate::model::Registry;

/// What another module adds to the Runtime API: `show info` lines (Lua memory, dropped
/// events) and commands of its own (Lua's `core.register_cli`). A plain closure adds `show info`
/// lines only.
pub trait Extension: Send + Sync {
    /// Extra `show info` lines.
    fn info(&self) -> Vec<(String, String)>;

    /// The extra commands for `help`: their keywords and their line as printed (without the
    /// leading blanks).
    fn usages(&self) -> Vec<(Vec<String>, String)> {
        Vec::new()
    }

    /// Starts the extra command these words name, if any: its reply comes on the receiver.
    fn call(&self, _words: &[String]) -> Option<tokio::sync::oneshot::Receiver<String>> {
        None
    }
}

impl<F: Fn() -> Vec<(String, String)> + Send + Sync> Extension for F {
    fn info(&self) -> Vec<(String, String)> {
        self()
    }
}

/// The extension the Runtime API is started with.
pub type InfoHook = Arc<dyn Extension>;

/// Several extensions as one (Lua's commands, `show peers`): lines and commands of each, in
/// order; a command goes to the first that knows it.
pub struct Extensions(pub Vec<InfoHook>);

impl Extension for Extensions {
    fn info(&self) -> Vec<(String, String)> {
        self.0.iter().flat_map(|x| x.info()).collect()
    }

    fn usages(&self) -> Vec<(Vec<String>, String)> {
        self.0.iter().flat_map(|x| x.usages()).collect()
    }

    fn call(&self, words: &[String]) -> Option<tokio::sync::oneshot::Receiver<String>> {
        self.0.iter().find_map(|x| x.call(words))
    }
}

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
    /// The admin thread could not be started.
    #[error("cannot start the Runtime API thread: {0}")]
    Spawn(std::io::Error),
}

/// Where a running stats socket listens (TCP port resolved when 0 was asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listening {
    /// A TCP address.
    Tcp(std::net::SocketAddr),
    /// A unix socket path.
    Unix(PathBuf),
}

/// Running stats sockets.
pub struct Admin {
    stop: tokio::sync::watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    listening: Vec<Listening>,
    /// The unix socket files made, with their device and inode: removed at stop only when
    /// still the same file (a process replacing this one may have bound the path since).
    files: Vec<(PathBuf, u64, u64)>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("listening", &self.listening)
            .finish()
    }
}

/// Opens every `stats socket` of the configuration and the statistics pages of `mode http`
/// proxies (`stats enable`), and serves them on its own thread.
pub fn start(reg: Arc<Registry>, info: InfoHook) -> Result<Admin, AdminError> {
    let sockets = reg.global().stats_sockets.clone();
    let timeout = reg.global().stats_timeout;
    let pages = stats_page::bind_pages(&reg)?;
    start_inner(reg, info, &sockets, timeout, pages)
}

/// [`start`] with explicit sockets and timeout, without statistics pages (tests and embedders).
pub fn start_with(
    reg: Arc<Registry>,
    info: InfoHook,
    sockets: &[StatsSocket],
    timeout: Duration,
) -> Result<Admin, AdminError> {
    start_inner(reg, info, sockets, timeout, Vec::new())
}

fn start_inner(
    reg: Arc<Registry>,
    info: InfoHook,
    sockets: &[StatsSocket],
    timeout: Duration,
    pages: Vec<stats_page::PageListener>,
) -> Result<Admin, AdminError> {
    let bound = listener::bind_all(sockets)?;
    let listening: Vec<Listening> = bound
        .iter()
        .filter_map(|b| match b {
            listener::Bound::Tcp(l, _) => l.local_addr().ok().map(Listening::Tcp),
            listener::Bound::Unix(_, _, p) => Some(Listening::Unix(p.clone())),
        })
        .collect();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let limits = session::Limits {
        timeout: if timeout.is_zero() {
            Duration::from_secs(10)
        } else {
            timeout
        },
        max_line: session::MAX_LINE,
    };
    let page_reg = reg.clone();
    let page_stop = rx.clone();
    let exec = Arc::new(commands::Executor::new(reg, info));
    let thread = if bound.is_empty() && pages.is_empty() {
        None
    } else {
        let h = std::thread::Builder::new()
            .name("harp-admin".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "Runtime API: cannot build runtime");
                        return;
                    }
                };
                rt.block_on(async move {
                    tokio::join!(
                        listener::serve_all(bound, exec, limits, rx),
                        stats_page::serve_all(pages, page_reg, page_stop)
                    )
                });
            })
            .map_err(AdminError::Spawn)?;
        Some(h)
    };
    Ok(Admin {
        stop: tx,
        thread: Mutex::new(thread),
        files: listening
            .iter()
            .filter_map(|l| match l {
                Listening::Unix(p) => {
                    use std::os::unix::fs::MetadataExt;
                    let md = std::fs::symlink_metadata(p).ok()?;
                    Some((p.clone(), md.dev(), md.ino()))
                }
                Listening::Tcp(_) => None,
            })
            .collect(),
        listening,
    })
}

impl Admin {
    /// Closes the sockets (unix socket files are removed) and waits for the admin thread.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        // Only the first stop removes socket files (a later one could hit a newer process's).
        if let Some(h) = handle {
            let _ = h.join();
            use std::os::unix::fs::MetadataExt;
            for (p, dev, ino) in &self.files {
                let ours = std::fs::symlink_metadata(p)
                    .is_ok_and(|md| md.dev() == *dev && md.ino() == *ino);
                if ours {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
    }

    /// Where each socket listens, in configuration order.
    pub fn listening(&self) -> &[Listening] {
        &self.listening
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests;
