//! Stick tables: HAProxy's per-key counters (`stick-table type ip size 100k expire 30s store
//! conn_rate(10s),conn_cur`), filled by `tcp-request ... track-sc<n>` rules and read by the
//! `sc_*`/`src_*` fetches of ACLs — how TCP configs limit a client's connections or rate.
//!
//! A [`Table`] lives in its proxy ([`crate::model::Proxy`]) and is shared by every worker
//! behind one lock (a few hash operations per tracked connection). A session holds its
//! entries in [`Counters`], which give them back when it ends. The Runtime API reads and
//! changes tables through [`Table::dump`], [`Table::clear`] and [`Table::with_entry`].

pub mod config;
pub mod counters;
pub mod data;
pub mod fetch;
pub mod filter;
pub mod key;
pub mod table;
#[cfg(test)]
mod tests;

pub use counters::Counters;
pub use data::{DataType, Schema};
pub use key::{Key, KeySample, KeyType};
pub use table::{Table, TableConfig, Tracked};

/// Stick counters per session (`track-sc0` to `track-sc2`): HAProxy's default
/// `MAX_SESS_STKCTR`.
pub const SLOTS: usize = 3;
