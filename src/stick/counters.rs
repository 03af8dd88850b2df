//! A session's stick counters (`sc0`..`sc2`): the entries its `track-sc*` rules hold, and
//! what the session counts in them as it goes.

use std::sync::Arc;

use super::data::DataType;
use super::key::Key;
use super::table::{Table, Tracked};
use super::SLOTS;

/// The entries one session tracks, released when it ends (dropped). One pointer while it
/// tracks nothing: every session carries it through its forwarding, tables or not.
#[derive(Debug, Default)]
pub struct Counters {
    slots: Option<Box<[Option<Tracked>; SLOTS]>>,
}

impl Counters {
    /// `track-sc<n>`: tracks `key` in `table` unless counter `n` already tracks something
    /// (HAProxy ignores the rule then). Whether it tracks it now.
    pub fn track(&mut self, n: usize, table: &Arc<Table>, key: Key) -> bool {
        if n >= SLOTS {
            return false;
        }
        let slots = self.slots.get_or_insert_with(Default::default);
        let slot = &mut slots[n];
        if slot.is_some() {
            return false;
        }
        *slot = table.track(key);
        slot.is_some()
    }

    /// What counter `n` tracks.
    pub fn slot(&self, n: usize) -> Option<&Tracked> {
        self.slots.as_ref()?.get(n)?.as_ref()
    }

    /// Counts the session in `sess_cnt` and `sess_rate` of every tracked entry.
    pub fn session_started(&self) {
        self.each(|t| {
            t.update(|en, s, now| {
                en.add(s, DataType::SessCnt, 1, now);
                en.add(s, DataType::SessRate, 1, now);
            });
        });
    }

    /// Counts bytes from the client (`bytes_in_*`) and to it (`bytes_out_*`).
    pub fn add_bytes(&self, from_client: u64, to_client: u64) {
        if from_client == 0 && to_client == 0 {
            return;
        }
        self.each(|t| {
            t.update(|en, s, now| {
                en.add(s, DataType::BytesInCnt, from_client, now);
                en.add(s, DataType::BytesInRate, from_client, now);
                en.add(s, DataType::BytesOutCnt, to_client, now);
                en.add(s, DataType::BytesOutRate, to_client, now);
            });
        });
    }

    /// `sc-inc-gpc0(<n>)`/`sc-inc-gpc1(<n>)`: `which` is 0 or 1.
    pub fn inc_gpc(&self, n: usize, which: u8) {
        let (c, r) = if which == 0 {
            (DataType::Gpc0, DataType::Gpc0Rate)
        } else {
            (DataType::Gpc1, DataType::Gpc1Rate)
        };
        if let Some(t) = self.slot(n) {
            t.update(|en, s, now| {
                en.add(s, c, 1, now);
                en.add(s, r, 1, now);
            });
        }
    }

    /// `sc-set-gpt0(<n>) <value>`.
    pub fn set_gpt0(&self, n: usize, v: u64) {
        if let Some(t) = self.slot(n) {
            t.update(|en, s, now| en.set(s, DataType::Gpt0, v, now));
        }
    }

    fn each(&self, f: impl FnMut(&Tracked)) {
        if let Some(s) = &self.slots {
            s.iter().flatten().for_each(f);
        }
    }
}
