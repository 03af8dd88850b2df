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
    /// (slow starts change weights between generations).
    map: Vec<usize>,
    map_weights: Vec<u32>,
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

    /// Picks a server of `be` for a client at `src`, never `exclude` when another one can take it.
    pub(crate) fn pick(&mut self, be: &Proxy, src: IpAddr, exclude: Option<&Arc<Server>>) -> Pick {
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
        let hashing = be.config.balance == BalanceAlgo::Source;
        let mut cands: Vec<Candidate> = st
            .set
            .iter()
            .map(|s| {
                let usable = s.is_usable();
                any_usable |= usable;
                // a hash must keep mapping a client to its server even when that server is
                // full (the connection then waits in the server's queue), as HAProxy does
                let ok = usable && (hashing || s.has_free_slot());
                Candidate {
                    weight: if ok { s.effective_weight() } else { 0 },
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
        if let Some(x) = exclude {
            let others = st
                .set
                .iter()
                .zip(&cands)
                .any(|(s, c)| c.weight > 0 && !Arc::ptr_eq(s, x));
            if others {
                for (s, c) in st.set.iter().zip(cands.iter_mut()) {
                    if Arc::ptr_eq(s, x) {
                        c.weight = 0;
                    }
                }
            }
        }
        let weights: Vec<u32> = cands.iter().map(|c| c.weight).collect();
        let idx = match be.config.balance {
            BalanceAlgo::RoundRobin | BalanceAlgo::StaticRr => st.rr.pick(&weights),
            BalanceAlgo::LeastConn => {
                st.rotate = st.rotate.wrapping_add(1);
                lb::leastconn(&cands, st.rotate % cands.len())
            }
            BalanceAlgo::First => lb::first(&cands),
            BalanceAlgo::Random => lb::random_two(&cands, r1, r2),
            BalanceAlgo::Source => {
                let mut h = lb::hash_ip(src);
                if be.config.hash_avalanche && be.config.hash_type == HashType::MapBased {
                    h = lb::full_hash(h);
                }
                if st.map_weights != weights {
                    st.map = lb::server_map(&weights).unwrap_or_default();
                    st.map_weights = weights.clone();
                }
                match be.config.hash_type {
                    // HAProxy looks the ring up with the avalanched hash, modifier or not
                    HashType::Consistent => match st.ring.pick(lb::full_hash(h)) {
                        Some(i) if weights[i] > 0 => Some(i),
                        _ => lb::source_map(&st.map, h),
                    },
                    HashType::MapBased => lb::source_map(&st.map, h),
                }
            }
        };
        match idx {
            Some(i) => Pick::Server(st.set[i].clone()),
            None => Pick::AllFull,
        }
    }
}
