//! Load-balancing algorithms as pure functions over candidate lists, so they can be tested with
//! proptest and benchmarked without sockets. The worker builds the candidate list (usable servers,
//! backups only when no active one is usable) and keeps any per-thread state.
//!
//! Every function returns an index into the slice it was given, and never an entry with weight 0.

mod hash;
mod leastconn;
mod random;
mod roundrobin;

pub use hash::{full_hash, hash_ip, hash_key, server_map, source_map, ConsistentRing};
pub use leastconn::{first, leastconn};
pub use random::random_two;
pub use roundrobin::SmoothRr;

/// What an algorithm needs to know about one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Effective weight; 0 = never pick.
    pub weight: u32,
    /// Current connections (for leastconn and random).
    pub conns: u64,
}

#[cfg(test)]
mod tests;
