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
mod show;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use crate::model::Registry;
use shared::{Peer, Section, SharedTable};

/// Why peers could not start.
#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    /// The local peer's address could not be listened on.
    #[error("[ALERT] Starting peers {section}: cannot bind socket for local peer '{peer}' [{addr}]: {source}")]
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
    sections: Vec<Arc<Section>>,
    /// Ends the sessions, the listeners and the connections to peers.
    end_tx: tokio::sync::watch::Sender<bool>,
    /// Ends everything, a hand-over under way too.
    stop_tx: tokio::sync::watch::Sender<bool>,
    /// Starts the hand-over to the process replacing this one.
    hand_over_tx: tokio::sync::watch::Sender<bool>,
    /// Ends the hand-over once what is left is sent.
    finish_tx: tokio::sync::watch::Sender<bool>,
    /// Told when the hand-over is over.
    handed_over: crossbeam_channel::Receiver<()>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Starts a thread for the `peers` sections that have a local peer (none when no section
/// has one). `old_process`: this process replaces another one (`-sf`), which is to teach it
/// the tables before the peers are asked.
pub fn start(reg: &Arc<Registry>, old_process: bool) -> Result<Peers, PeersError> {
    let mut sections = Vec::new();
    for sc in &reg.config.peers {
        let Some(local) = sc.local.clone() else {
            continue;
        };
        if sc.disabled {
            continue;
        }
        // the workers poke `notify`; the peers thread passes it on to every session
        let notify = Arc::new(tokio::sync::Notify::new());
        let (tx, rx) = tokio::sync::watch::channel(());
        let mut tables = Vec::new();
        for t in reg.tables() {
            if t.config.peers.as_deref() == Some(sc.name.as_str()) {
                t.share(notify.clone());
                // a peers section's own table goes by its name after the section's, slash
                // included: "/t1", byte for byte what HAProxy 2.6 sends
                let wire = t
                    .name
                    .strip_prefix(sc.name.as_str())
                    .filter(|n| n.starts_with('/'));
                let wire = wire.unwrap_or(&t.name).to_string();
                tables.push(SharedTable::new(t.clone(), tables.len() as u64 + 1, &wire));
            }
        }
        let peers: Vec<Arc<Peer>> = sc
            .remotes()
            .map(|(name, addr)| Arc::new(Peer::new(name, addr, tables.len())))
            .collect();
        let listen = sc.listen_addr();
        let listener = match listen {
            Some(addr) => Some(bind(addr).map_err(|source| PeersError::Bind {
                section: sc.name.clone(),
                peer: local.clone(),
                addr,
                source,
            })?),
            None => None,
        };
        let mut sec = Section::new(&sc.name, &local, tables, peers, rx, listen, old_process);
        sec.names = sc.peers.iter().map(|p| p.name.clone()).collect();
        // the sender lives as long as the section runs
        sections.push((Arc::new(sec), listener, (notify, tx)));
    }
    let (end_tx, end_rx) = tokio::sync::watch::channel(false);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (hand_over_tx, mut hand_over_rx) = tokio::sync::watch::channel(false);
    let (finish_tx, finish_rx) = tokio::sync::watch::channel(false);
    let (done_tx, handed_over) = crossbeam_channel::bounded(1);
    let mut peers = Peers {
        sections: sections.iter().map(|(s, _, _)| s.clone()).collect(),
        end_tx,
        stop_tx,
        hand_over_tx,
        finish_tx,
        handed_over,
        thread: Mutex::new(None),
    };
    if sections.is_empty() {
        let _ = done_tx.send(());
        return Ok(peers);
    }
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
                let secs: Vec<Arc<Section>> = sections.iter().map(|(s, _, _)| s.clone()).collect();
                for (sec, listener, (notify, tx)) in sections {
                    let relay = tokio::spawn(async move {
                        loop {
                            notify.notified().await;
                            // a millisecond gathers a burst of changes into one wake-up
                            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                            tx.send_replace(());
                        }
                    });
                    senders.push(relay);
                    if let Some(l) = listener {
                        match tokio::net::TcpListener::from_std(l) {
                            Ok(l) => tasks.push(tokio::spawn(link::accept_loop(
                                sec.clone(),
                                l,
                                end_rx.clone(),
                            ))),
                            Err(e) => tracing::error!("peers {}: {e}", sec.name),
                        }
                    }
                    for p in &sec.peers {
                        tasks.push(tokio::spawn(link::connect_loop(
                            sec.clone(),
                            p.clone(),
                            end_rx.clone(),
                        )));
                    }
                }
                let mut stop = stop_rx.clone();
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => {}
                    r = hand_over_rx.wait_for(|h| *h) => {
                        if r.is_ok() {
                            // the listeners and sessions end first, so that our own address
                            // reaches the new process only
                            for t in tasks.drain(..) {
                                let _ = t.await;
                            }
                            let hand = secs
                                .iter()
                                .map(|s| tokio::spawn(link::hand_over(s.clone(), finish_rx.clone())));
                            let hand: Vec<_> = hand.collect();
                            for h in hand {
                                let _ = h.await;
                            }
                        }
                    }
                }
                let _ = done_tx.send(());
                let _ = stop.wait_for(|s| *s).await;
                for t in tasks {
                    let _ = t.await;
                }
                for relay in senders {
                    relay.abort();
                }
            })
        })
        .map_err(PeersError::Spawn)?;
    peers.thread = Mutex::new(Some(thread));
    Ok(peers)
}

fn bind(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    // the process replacing this one binds the same address before this one lets it go
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(128)?;
    Ok(s.into())
}

impl Peers {
    /// A graceful stop began: closes the sessions and the listeners, then teaches the
    /// tables to the process that replaces this one (on our own address), as HAProxy's
    /// soft-stop does. Returns at once; [`Peers::wait_hand_over`] waits for the end.
    pub fn hand_over(&self) {
        let _ = self.hand_over_tx.send(true);
        let _ = self.end_tx.send(true);
    }

    /// This process's last sessions ended: the hand-over sends what is left and ends;
    /// waits (at most `limit`) for it.
    pub fn finish_hand_over(&self, limit: std::time::Duration) {
        let _ = self.finish_tx.send(true);
        if *self.hand_over_tx.borrow() {
            let _ = self.handed_over.recv_timeout(limit);
        }
    }

    /// Closes every session and waits for the thread.
    pub fn stop(&self) {
        let _ = self.end_tx.send(true);
        let _ = self.finish_tx.send(true);
        let _ = self.stop_tx.send(true);
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::error!("peers thread panicked");
            }
        }
    }
}

/// `show peers` on the Runtime API.
impl crate::admin::Extension for Peers {
    fn info(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    fn usages(&self) -> Vec<(Vec<String>, String)> {
        vec![(
            vec!["show".into(), "peers".into()],
            format!(
                "{:<40}: dump some information about all the peers",
                "show peers [dict|-] [section]"
            ) + " or this peers section",
        )]
    }

    fn call(&self, words: &[String]) -> Option<tokio::sync::oneshot::Receiver<String>> {
        if words.len() < 2 || words[0] != "show" || words[1] != "peers" {
            return None;
        }
        let mut rest = &words[2..];
        if rest.first().is_some_and(|w| w == "dict" || w == "-") {
            rest = &rest[1..];
        }
        let text = match rest.first() {
            Some(name) if !self.sections.iter().any(|s| &s.name == name) => {
                "No such peers\n".to_string()
            }
            only => show::render(&self.sections, only.map(String::as_str)),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = tx.send(text);
        Some(rx)
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.stop();
    }
}
