//! Smooth weighted round robin (nginx's algorithm): over one cycle each server is picked exactly
//! `weight` times and picks are interleaved rather than bursty.

/// Per-thread state of the smooth weighted round robin; reset when the server list changes.
#[derive(Debug, Clone, Default)]
pub struct SmoothRr {
    current: Vec<i64>,
}

impl SmoothRr {
    /// A fresh state.
    pub fn new() -> SmoothRr {
        SmoothRr::default()
    }

    /// Picks the next index for these weights (0 = skip). `None` when every weight is 0.
    pub fn pick(&mut self, weights: &[u32]) -> Option<usize> {
        if self.current.len() != weights.len() {
            self.current = vec![0; weights.len()];
        }
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for (i, &w) in weights.iter().enumerate() {
            if w == 0 {
                continue;
            }
            self.current[i] += w as i64;
            total += w as i64;
            if best.map_or(true, |b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        self.current[b] -= total;
        Some(b)
    }
}
