//! `random` with power-of-two choices: draw two servers by weight, keep the less loaded.

use super::Candidate;

fn weighted(c: &[Candidate], total: u64, r: u64) -> Option<usize> {
    let mut x = r % total;
    for (i, s) in c.iter().enumerate() {
        if s.weight == 0 {
            continue;
        }
        if x < s.weight as u64 {
            return Some(i);
        }
        x -= s.weight as u64;
    }
    None
}

/// Picks with two random numbers `r1`, `r2` supplied by the caller (so tests are deterministic).
pub fn random_two(c: &[Candidate], r1: u64, r2: u64) -> Option<usize> {
    let total: u64 = c.iter().map(|s| s.weight as u64).sum();
    if total == 0 {
        return None;
    }
    let a = weighted(c, total, r1)?;
    let b = weighted(c, total, r2)?;
    let la = (c[a].conns as u128 + 1) * c[b].weight as u128;
    let lb = (c[b].conns as u128 + 1) * c[a].weight as u128;
    Some(if lb < la { b } else { a })
}
