//! Peers: stick tables shared with other load balancers (HAProxy's `peers` sections and
//! `stick-table ... peers <section>`), over HAProxy's peers protocol 2.1, so that a harp
//! and an HAProxy (or two harps) in front of the same servers keep the same stickiness and
//! counters, and a restarted process learns the tables from a peer.
//!
//! # Layout
//! - [`wire`]: the protocol's bytes (lines, framing, integers, definitions), pure.
//! - [`update`]: update messages and the per-session name dictionary, pure.
//! - `shared`: what the sessions of a section share (tables, peers, the resync state).
//! - `session`: one established session, driven without blocking either way.
//! - `link`: the connections: opened to each peer, accepted from them, the hellos.
//!
//! Everything runs on one thread (`harp-peers`) with a current-thread tokio runtime. The
//! workers never wait on it: a local change only logs the entry in its table and wakes the
//! sessions through a `watch` channel.

pub mod update;
pub mod wire;

mod link;
mod session;
mod shared;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use crate::model::Registry;
use shared::{Peer, Section, SharedTable};

/// Why peers could not start.
#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    /// The local peer's address could not be listened on.
    #[error("[ALERT] Starting peers {section}: cannot bind socket (Address already in use) for peer '{peer}' [{addr}]: {source}")]
    Bind {
        /// The section.
        section: String,
        /// The local peer.
        peer: String,
        /// Its address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The thread or its runtime could not be made.
    #[error("cannot start the peers thread: {0}")]
    Spawn(std::io::Error),
}

/// The running peers sections; stopping it closes every session.
pub struct Peers {
    stop_tx: tokio::sync::watch::Sender<bool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Starts a thread for the `peers` sections that have a local peer and share at least one
/// table (`None` when there is none).
pub fn start(reg: &Arc<Registry>) -> Result<Option<Peers>, PeersError> {
    let mut sections = Vec::new();
    for sc in &reg.config.peers {
        let Some(local) = sc.local.clone() else {
            continue;
        };
        if sc.disabled {
            continue;
        }
        let (tx, rx) = tokio::sync::watch::channel(());
        let mut tables = Vec::new();
        for px in reg.proxies() {
            let Some(t) = &px.table else { continue };
            if t.config.peers.as_deref() == Some(sc.name.as_str()) {
                t.share(tx.clone());
                tables.push(SharedTable::new(t.clone(), tables.len() as u64 + 1));
            }
        }
        let peers: Vec<Arc<Peer>> = sc
            .remotes()
            .map(|(name, addr)| Arc::new(Peer::new(name, addr, tables.len())))
            .collect();
        let listener = match sc.listen_addr() {
            Some(addr) => Some(bind(addr).map_err(|source| PeersError::Bind {
                section: sc.name.clone(),
                peer: local.clone(),
                addr,
                source,
            })?),
            None => None,
        };
        // keep the sender alive as long as the section runs
        let sec = Arc::new(Section::new(&sc.name, &local, tables, peers, rx));
        sections.push((sec, listener, tx));
    }
    if sections.is_empty() {
        return Ok(None);
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PeersError::Spawn)?;
    let thread = std::thread::Builder::new()
        .name("harp-peers".into())
        .spawn(move || {
            rt.block_on(async move {
                let mut senders = Vec::new();
                let mut tasks = Vec::new();
                for (sec, listener, tx) in sections {
                    senders.push(tx);
                    if let Some(l) = listener {
                        match tokio::net::TcpListener::from_std(l) {
                            Ok(l) => tasks.push(tokio::spawn(link::accept_loop(
                                sec.clone(),
                                l,
                                stop_rx.clone(),
                            ))),
                            Err(e) => tracing::error!("peers {}: {e}", sec.name),
                        }
                    }
                    for p in &sec.peers {
                        tasks.push(tokio::spawn(link::connect_loop(
                            sec.clone(),
                            p.clone(),
                            stop_rx.clone(),
                        )));
                    }
                }
                let mut stop = stop_rx.clone();
                let _ = stop.wait_for(|s| *s).await;
                for t in tasks {
                    let _ = t.await;
                }
                drop(senders);
            })
        })
        .map_err(PeersError::Spawn)?;
    Ok(Some(Peers {
        stop_tx,
        thread: Mutex::new(Some(thread)),
    }))
}

fn bind(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(128)?;
    Ok(s.into())
}

impl Peers {
    /// Closes every session and waits for the thread.
    pub fn stop(&self) {
        let _ = self.stop_tx.send(true);
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::error!("peers thread panicked");
            }
        }
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.stop();
    }
}
