//! `leastconn` and `first`.

use super::Candidate;

/// Fewest connections relative to weight; ties go to the first one found from `start`, so a
/// rotating `start` spreads ties.
pub fn leastconn(c: &[Candidate], start: usize) -> Option<usize> {
    let n = c.len();
    let mut best: Option<usize> = None;
    for k in 0..n {
        let i = (start + k) % n;
        if c[i].weight == 0 {
            continue;
        }
        match best {
            None => best = Some(i),
            Some(b) => {
                // (conns_i+1)/w_i < (conns_b+1)/w_b, without division
                let lhs = (c[i].conns as u128 + 1) * c[b].weight as u128;
                let rhs = (c[b].conns as u128 + 1) * c[i].weight as u128;
                if lhs < rhs {
                    best = Some(i);
                }
            }
        }
    }
    best
}

/// The first server (in id order) that can take the connection; the caller drops full servers
/// from the list first.
pub fn first(c: &[Candidate]) -> Option<usize> {
    c.iter().position(|x| x.weight > 0)
}
