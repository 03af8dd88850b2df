//! Hashing balancers (`balance source`, `balance rdp-cookie`): HAProxy's hash functions,
//! map-based (modulo over the weighted list) and consistent hashing.

use std::net::IpAddr;

use crate::config::HashFunction;

/// Hashes a client address as HAProxy's `balance source` does (`get_server_sh`): the XOR of its
/// 32-bit big-endian words (an IPv4 address is its own hash), so a client lands on the server
/// HAProxy would send it to, and moving from HAProxy to harp moves no client.
pub fn hash_ip(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => a
            .octets()
            .chunks_exact(4)
            .fold(0, |h, w| h ^ u32::from_be_bytes([w[0], w[1], w[2], w[3]])),
    }
}

/// HAProxy's `full_hash` (Bob Jenkins' 32-bit integer hash, then a multiply by a prime near
/// 3/4 of the range): `hash-type ... avalanche`.
pub fn full_hash(mut a: u32) -> u32 {
    a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    a = (a ^ 0xc761_c23c) ^ (a >> 19);
    a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    a = (a ^ 0xb55a_4f09) ^ (a >> 16);
    a.wrapping_mul(3_221_225_473)
}

/// HAProxy's map for map-based hashing (`recalc_server_map`): one slot per unit of weight (the
/// weights divided by their greatest common divisor), servers interleaved by a weighted score
/// that favours the first declared on ties. `None` when every weight is 0. The map holds the
/// sum of the reduced weights: server weights (at most 256 each) keep it small.
pub fn server_map(weights: &[u32]) -> Option<Vec<usize>> {
    let g = weights.iter().fold(0u32, |g, &w| gcd(g, w));
    if g == 0 {
        return None;
    }
    let ew: Vec<i64> = weights.iter().map(|&w| i64::from(w / g)).collect();
    let tot: i64 = ew.iter().sum();
    let mut score = vec![0i64; ew.len()];
    let mut map = Vec::with_capacity(tot as usize);
    for _ in 0..tot {
        let mut best: Option<(usize, i64)> = None;
        for (i, &w) in ew.iter().enumerate() {
            if w == 0 {
                continue;
            }
            if tot == 1 {
                best = Some((i, 0));
                break;
            }
            score[i] += w;
            let v = (score[i] + tot) / tot;
            if best.map_or(true, |(_, m)| v > m) {
                best = Some((i, v));
            }
        }
        let (b, _) = best?;
        if tot > 1 {
            score[b] -= tot;
        }
        map.push(b);
    }
    Some(map)
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Map-based: the slot `hash` modulo the map's size names the server.
pub fn source_map(map: &[usize], hash: u32) -> Option<usize> {
    if map.is_empty() {
        return None;
    }
    map.get(hash as usize % map.len()).copied()
}

/// A consistent-hash ring, HAProxy's (`lb_chash.c`): a server of weight `w` owns `w × 16`
/// points keyed `full_hash(id × 4096 + n)`, so adding or removing one server only moves the
/// keys it owned, and a key goes to the nearest point on either side, as in HAProxy (checked:
/// the same clients on the same servers).
#[derive(Debug, Clone, Default)]
pub struct ConsistentRing {
    points: Vec<(u32, usize)>,
}

impl ConsistentRing {
    /// Builds the ring from `(server id, weight)` per candidate index.
    pub fn new(servers: &[(u32, u32)]) -> ConsistentRing {
        let mut points = Vec::new();
        for (i, &(id, w)) in servers.iter().enumerate() {
            for n in 0..w.saturating_mul(16) {
                points.push((full_hash(id.wrapping_mul(4096).wrapping_add(n)), i));
            }
        }
        points.sort_unstable();
        ConsistentRing { points }
    }

    /// The candidate owning `key` (a client's address hash, through [`full_hash`] when the
    /// hash type says so): the nearest point after or before it, the one before on a tie.
    pub fn pick(&self, key: u32) -> Option<usize> {
        self.pick_skipping(key, |_| false)
    }

    /// [`pick`](Self::pick), then on along the ring past the points of the candidates `skip`
    /// refuses, as HAProxy's `chash_get_server_hash` walks past the server a retry avoids;
    /// `None` when it refuses them all.
    pub fn pick_skipping(&self, key: u32, skip: impl Fn(usize) -> bool) -> Option<usize> {
        let len = self.points.len();
        if len == 0 {
            return None;
        }
        let next = self.points.partition_point(|&(k, _)| k < key) % len;
        let prev = (next + len - 1) % len;
        let dp = key.wrapping_sub(self.points[prev].0);
        let dn = self.points[next].0.wrapping_sub(key);
        let start = if dp <= dn { prev } else { next };
        (0..len)
            .map(|n| self.points[(start + n) % len].1)
            .find(|&i| !skip(i))
    }
}

/// The hash of `key` by `f`, as HAProxy's `hash_<function>` computes it (`gen_hash`).
pub fn hash_key(f: HashFunction, key: &[u8]) -> u32 {
    match f {
        HashFunction::Sdbm => key.iter().fold(0u32, |h, &c| {
            u32::from(c)
                .wrapping_add(h << 6)
                .wrapping_add(h << 16)
                .wrapping_sub(h)
        }),
        HashFunction::Djb2 => key.iter().fold(5381u32, |h, &c| {
            (h << 5).wrapping_add(h).wrapping_add(u32::from(c))
        }),
        HashFunction::Wt6 => {
            let (mut h0, mut h1) = (0xa53c_965a_u32, 0x5ca6_953a_u32);
            let (mut step0, mut step1) = (6u32, 18u32);
            for &c in key {
                let t = u32::from(c);
                h0 = !(h0 ^ t);
                h1 = !(h1.wrapping_add(t));
                let t = h1.rotate_left(step0);
                h1 = h0.rotate_left(step1);
                h0 = t;
                let t = ((h0 >> 16) ^ h1) & 0xffff;
                step0 = t & 0x1f;
                step1 = t >> 11;
            }
            h0 ^ h1
        }
        HashFunction::Crc32 => {
            let mut h = !0u32;
            for &c in key {
                h ^= u32::from(c);
                for _ in 0..8 {
                    h = (h >> 1) ^ if h & 1 != 0 { 0xedb8_8320 } else { 0 };
                }
            }
            !h
        }
        // the key is a number already (HAProxy's `read_int64`: a sign, digits; past i64's
        // range it stops at its ends)
        HashFunction::None => {
            let (neg, rest) = match key.first() {
                Some(b'-') => (true, &key[1..]),
                Some(b'+') => (false, &key[1..]),
                _ => (false, key),
            };
            let mut v: i64 = 0;
            for c in rest.iter().take_while(|c| c.is_ascii_digit()) {
                let d = i64::from(c - b'0');
                v = v.saturating_mul(10);
                v = if neg {
                    v.saturating_sub(d)
                } else {
                    v.saturating_add(d)
                };
            }
            if v == i64::MAX {
                u32::MAX
            } else {
                v as u32
            }
        }
    }
}

#[cfg(test)]
mod walk_tests {
    use super::*;

    /// The walk past skipped servers goes clockwise from the nearest point, as HAProxy's
    /// `eb32_next` loop does: the first later point whose owner is not skipped, wrapping.
    #[test]
    fn skipping_walks_clockwise_from_the_nearest_point() {
        let ring = ConsistentRing::new(&[(1, 1), (2, 2), (3, 1)]);
        let len = ring.points.len();
        for h in 0..2_000u32 {
            let key = h.wrapping_mul(2_654_435_761);
            let own = ring.pick(key).expect("a point");
            // the nearest point, found by brute force over the whole ring
            let dist = |k: u32| key.wrapping_sub(k).min(k.wrapping_sub(key));
            let start = (0..len)
                .min_by_key(|&i| (dist(ring.points[i].0), i))
                .expect("a point");
            assert_eq!(ring.points[start].1, own, "{key}");
            let want = (1..len)
                .map(|n| ring.points[(start + n) % len].1)
                .find(|&i| i != own);
            assert_eq!(ring.pick_skipping(key, |i| i == own), want, "{key}");
        }
    }
}
