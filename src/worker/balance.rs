//! Per-worker balancer state over the model's pure algorithms (`model::lb`): rebuilt whenever the
//! backend's `generation()` moves, so a server going DOWN, into MAINT or away is skipped at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::config::{BalanceAlgo, HashType};
use crate::model::lb::{self, Candidate, ConsistentRing, SmoothRr};
use crate::model::{Proxy, Server};

/// What the balancer decided.
#[derive(Debug)]
pub(crate) enum Pick {
    /// Connect to this server.
    Server(Arc<Server>),
    /// Usable servers exist but all are at `maxconn`: queue.
    AllFull,
    /// No usable server.
    NoServer,
}

#[derive(Default)]
struct State {
    generation: u64,
    set: Vec<Arc<Server>>,
    rr: SmoothRr,
    ring: ConsistentRing,
    rotate: usize,
    /// HAProxy's server map for map-based `balance source`, and the weights it was built for
    /// (a server can drop out of it, or come back, within a generation).
    map: Vec<usize>,
    map_weights: Vec<u32>,
}

/// Who a connection is for, as the hashing algorithms see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client {
    /// Its address (`balance source`).
    pub ip: IpAddr,
    /// The hash of its RDP cookie (`balance rdp-cookie`), when it sent one.
    pub rdp: Option<u32>,
}

impl From<IpAddr> for Client {
    fn from(ip: IpAddr) -> Client {
        Client { ip, rdp: None }
    }
}

impl Client {
    /// The client at `ip` whose request so far is `content`, for `be`'s balancing: with
    /// `balance rdp-cookie`, the hash of its cookie (HAProxy's `get_server_rch`: a cookie
    /// missing, empty or not whole yet leaves it to round robin).
    pub(crate) fn new(be: &Proxy, ip: IpAddr, content: &[u8]) -> Client {
        let rdp = (be.config.balance == BalanceAlgo::RdpCookie)
            .then(|| crate::rules::rdp::cookie(content, Some(&be.config.rdp_cookie)))
            .and_then(|c| match c {
                crate::rules::hello::Hello::Found(v) if !v.is_empty() => Some(v),
                _ => None,
            })
            .map(|v| {
                let h = lb::hash_key(be.config.hash_function, v);
                if be.config.hash_avalanche {
                    lb::full_hash(h)
                } else {
                    h
                }
            });
        Client { ip, rdp }
    }

    /// Whether the balancer hashes this client (it then keeps its server even when full).
    pub(crate) fn hashed(&self, be: &Proxy) -> bool {
        match be.config.balance {
            BalanceAlgo::Source => true,
            BalanceAlgo::RdpCookie => self.rdp.is_some(),
            _ => false,
        }
    }
}

/// `persist rdp-cookie`: the server whose address and port the client's routing token
/// (`msts=<addr>.<port>.<x>`) names, while it runs, as HAProxy's `tcp_persist_rdp_cookie`.
pub(crate) fn rdp_persist(be: &Proxy, content: &[u8]) -> Option<Arc<Server>> {
    let name = be.config.persist_rdp.as_deref()?;
    let crate::rules::hello::Hello::Found(v) = crate::rules::rdp::cookie(content, Some(name))
    else {
        return None;
    };
    let at = crate::rules::rdp::msts_server(v)?;
    be.servers()
        .iter()
        .find(|s| s.addr() == std::net::SocketAddr::V4(at) && s.may_persist())
        .cloned()
}

/// Balancer states of one worker, by backend index.
#[derive(Default)]
pub(crate) struct Balancers {
    states: HashMap<usize, State>,
    rng: u64,
}

/// Servers eligible now: usable active ones, else usable backups (all of them with
/// `option allbackups`, else the first).
fn eligible(be: &Proxy) -> Vec<Arc<Server>> {
    let all = be.servers();
    let act: Vec<_> = all
        .iter()
        .filter(|s| !s.params.backup && s.is_usable())
        .cloned()
        .collect();
    if !act.is_empty() {
        return act;
    }
    let mut bck = all
        .iter()
        .filter(|s| s.params.backup && s.is_usable())
        .cloned();
    if be.config.allbackups {
        bck.collect()
    } else {
        bck.next().into_iter().collect()
    }
}

impl Balancers {
    fn next_rand(&mut self) -> u64 {
        // xorshift64*, seeded lazily from the clock
        if self.rng == 0 {
            self.rng = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1;
        }
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Picks a server of `be` for `client`, never `exclude` when another one can take it.
    pub(crate) fn pick(
        &mut self,
        be: &Proxy,
        client: impl Into<Client>,
        exclude: Option<&Arc<Server>>,
    ) -> Pick {
        let client = client.into();
        let gen = be.generation();
        let r1 = self.next_rand();
        let r2 = self.next_rand();
        let st = self.states.entry(be.index).or_default();
        if st.generation != gen || st.set.is_empty() {
            st.generation = gen;
            st.set = eligible(be);
            st.rr = SmoothRr::new();
            if be.config.hash_type == HashType::Consistent {
                let ids: Vec<(u32, u32)> = st
                    .set
                    .iter()
                    .map(|s| (s.puid, s.effective_weight()))
                    .collect();
                st.ring = ConsistentRing::new(&ids);
            }
        }
        if st.set.is_empty() {
            return Pick::NoServer;
        }
        let mut any_usable = false;
        // the hash to pick by: the address, or the RDP cookie (without one, round robin)
        let key = match be.config.balance {
            BalanceAlgo::Source => {
                let h = lb::hash_ip(client.ip);
                Some(if be.config.hash_avalanche {
                    lb::full_hash(h)
                } else {
                    h
                })
            }
            BalanceAlgo::RdpCookie => client.rdp,
            _ => None,
        };
        let hashing = key.is_some();
        // a map-based hash's map (and its round robin without a key) uses static weights
        let map_based = be.config.balance == BalanceAlgo::StaticRr
            || (be.config.balance.hashes() && be.config.hash_type == HashType::MapBased);
        let mut cands: Vec<Candidate> = st
            .set
            .iter()
            .map(|s| {
                let usable = s.is_usable();
                any_usable |= usable;
                // a hash must keep mapping a client to its server even when that server is
                // full (the connection then waits in the server's queue), as HAProxy does
                let ok = usable && (hashing || s.has_free_slot(be));
                Candidate {
                    weight: match (ok, map_based) {
                        (false, _) => 0,
                        (true, true) => s.static_weight(),
                        (true, false) => s.effective_weight(),
                    },
                    conns: s
                        .counters
                        .cur_sess
                        .load(std::sync::atomic::Ordering::Relaxed),
                }
            })
            .collect();
        if !any_usable {
            // a change raced with the generation read: rebuild next time
            st.generation = gen.wrapping_sub(1);
            return Pick::NoServer;
        }
        // the server a retry leaves, when another one can take the connection
        let avoid = exclude
            .and_then(|x| st.set.iter().position(|s| Arc::ptr_eq(s, x)))
            .filter(|&i| {
                cands
                    .iter()
                    .enumerate()
                    .any(|(j, c)| j != i && c.weight > 0)
            });
        // a hash keeps its client: HAProxy's map ignores the server to avoid, and its ring
        // walks on past it (below)
        if let (Some(i), false) = (avoid, hashing) {
            cands[i].weight = 0;
        }
        let weights: Vec<u32> = cands.iter().map(|c| c.weight).collect();
        let idx = match (be.config.balance, key) {
            (_, Some(h)) => match be.config.hash_type {
                HashType::Consistent => st
                    .ring
                    .pick_skipping(h, |i| weights[i] == 0 || avoid == Some(i)),
                HashType::MapBased => {
                    if st.map_weights != weights {
                        st.map = lb::server_map(&weights).unwrap_or_default();
                        st.map_weights = weights;
                    }
                    lb::source_map(&st.map, h)
                }
            },
            (BalanceAlgo::RoundRobin | BalanceAlgo::StaticRr | BalanceAlgo::RdpCookie, _) => {
                st.rr.pick(&weights)
            }
            (BalanceAlgo::LeastConn, _) => {
                st.rotate = st.rotate.wrapping_add(1);
                lb::leastconn(&cands, st.rotate % cands.len())
            }
            (BalanceAlgo::First, _) => lb::first(&cands),
            (BalanceAlgo::Random, _) => lb::random_two(&cands, r1, r2),
            // no address to hash cannot happen; a map built for nothing picks nothing
            (BalanceAlgo::Source, None) => None,
        };
        match idx {
            Some(i) => Pick::Server(st.set[i].clone()),
            None => Pick::AllFull,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventBus;
    use crate::model::{Cause, Command, ForcedHealth, OpState, Registry};

    /// Backend `b` (`balance source` and `extra`) over servers s1..s4 of weights 1, 2, 3, 4,
    /// s4 with an hour of slow start.
    fn backend(extra: &str) -> (Arc<Registry>, Arc<Proxy>) {
        let text = format!(
            "backend b\n balance source\n {extra}\n server s1 127.0.0.1:1 weight 1\n \
             server s2 127.0.0.1:2 weight 2\n server s3 127.0.0.1:3 weight 3\n \
             server s4 127.0.0.1:4 weight 4 slowstart 1h\n"
        );
        let cfg = crate::config::parse_str("t.cfg", &text).expect("config");
        let reg = Registry::new(cfg, Arc::new(EventBus::new()));
        let be = reg.proxies()[0].clone();
        (reg, be)
    }

    fn server(p: Pick) -> Arc<Server> {
        match p {
            Pick::Server(s) => s,
            o => panic!("{o:?}"),
        }
    }

    fn clients() -> impl Iterator<Item = IpAddr> {
        (1..=200u8).map(|n| IpAddr::from([127, 0, n, n.wrapping_mul(7)]))
    }

    /// A retry of a map-hashed client goes back to its server, as HAProxy's map ignores the
    /// server to avoid; the consistent ring walks on to another one.
    #[test]
    fn a_retry_keeps_or_walks_as_haproxy_hashes() {
        let mut lb = Balancers::default();
        let (_reg, map) = backend("hash-type map-based");
        for ip in clients() {
            let s = server(lb.pick(&map, ip, None));
            assert!(Arc::ptr_eq(&s, &server(lb.pick(&map, ip, Some(&s)))));
        }
        let (_reg, ring) = backend("hash-type consistent");
        let mut lb = Balancers::default();
        for ip in clients() {
            let s = server(lb.pick(&ring, ip, None));
            assert!(!Arc::ptr_eq(&s, &server(lb.pick(&ring, ip, Some(&s)))));
            assert!(Arc::ptr_eq(&s, &server(lb.pick(&ring, ip, None))));
        }
    }

    /// A slow start ramps the weight of a dynamic algorithm only: map-based hashing sends a
    /// client to the same server before and during the ramp (HAProxy's `BE_LB_PROP_DYN`).
    #[test]
    fn slow_start_leaves_the_map_alone() {
        let (reg, be) = backend("hash-type map-based");
        let mut lb = Balancers::default();
        let before: Vec<_> = clients().map(|ip| server(lb.pick(&be, ip, None))).collect();
        let s4 = be.server("s4").expect("s4");
        for health in [ForcedHealth::Down, ForcedHealth::Up] {
            reg.apply(Command::SetHealth {
                server: s4.clone(),
                health,
                cause: Cause::Cli,
            })
            .expect("apply");
        }
        assert_eq!(s4.op_state(), OpState::Starting);
        assert_eq!((s4.effective_weight(), s4.static_weight()), (1, 4));
        let mut lb = Balancers::default();
        for (ip, was) in clients().zip(&before) {
            assert!(Arc::ptr_eq(was, &server(lb.pick(&be, ip, None))), "{ip}");
        }
    }
}
