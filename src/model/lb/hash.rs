//! `balance source`: map-based (modulo over the weighted list) and consistent hashing.

use std::net::IpAddr;

/// Hashes a client address (a 32-bit avalanche so neighbouring addresses spread).
pub fn hash_ip(ip: IpAddr) -> u32 {
    let mut h: u32 = 0;
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    for b in bytes {
        h = h.wrapping_mul(31).wrapping_add(b as u32);
    }
    avalanche(h)
}

fn avalanche(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Map-based: the hash modulo the total weight selects a slot of the weighted list.
pub fn source_map(weights: &[u32], hash: u32) -> Option<usize> {
    let total: u64 = weights.iter().map(|&w| w as u64).sum();
    if total == 0 {
        return None;
    }
    let mut x = hash as u64 % total;
    for (i, &w) in weights.iter().enumerate() {
        if x < w as u64 {
            return Some(i);
        }
        x -= w as u64;
    }
    None
}

/// A consistent-hash ring: each server owns `weight × 16` points keyed by its stable id, so
/// adding or removing one server only moves the keys it owned.
#[derive(Debug, Clone, Default)]
pub struct ConsistentRing {
    points: Vec<(u32, usize)>,
}

impl ConsistentRing {
    /// Builds the ring from `(stable id, weight)` per candidate index.
    pub fn new(servers: &[(u32, u32)]) -> ConsistentRing {
        let mut points = Vec::new();
        for (i, &(id, w)) in servers.iter().enumerate() {
            for k in 0..(w as u64 * 16) {
                let key = avalanche(id.wrapping_mul(0x9e37_79b9) ^ avalanche(k as u32 + 1));
                points.push((key, i));
            }
        }
        points.sort_unstable();
        ConsistentRing { points }
    }

    /// The candidate owning `hash`.
    pub fn pick(&self, hash: u32) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let pos = self.points.partition_point(|&(k, _)| k < hash);
        Some(self.points[pos % self.points.len()].1)
    }
}
