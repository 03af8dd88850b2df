//! A `data.<type> <op> <value>` filter on entries, as `show|clear table` and Lua's
//! `StickTable:dump()` take them (HAProxy's `get_std_op` operators).

use super::data::DataType;
use super::table::Entry;
use super::Schema;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `eq`.
    Eq,
    /// `ne`.
    Ne,
    /// `le`.
    Le,
    /// `lt`.
    Lt,
    /// `ge`.
    Ge,
    /// `gt`.
    Gt,
}

impl Op {
    /// The operator a word names (exactly one of `eq ne le lt ge gt`).
    pub fn parse(word: &str) -> Option<Op> {
        Some(match word {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "le" => Op::Le,
            "lt" => Op::Lt,
            "ge" => Op::Ge,
            "gt" => Op::Gt,
            _ => return None,
        })
    }
}

/// Keeps the entries whose `ty` compares with `value` by `op` (as signed 64-bit integers,
/// rates read now).
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    /// The stored type compared.
    pub ty: DataType,
    /// How.
    pub op: Op,
    /// With what.
    pub value: i64,
}

impl Filter {
    /// Whether `en` passes.
    pub fn keeps(&self, en: &Entry, schema: &Schema, now: u64) -> bool {
        // a name (`server_key`) compares as 0, as in HAProxy; `server_id` is signed
        let v = match (self.ty, en.get(schema, self.ty, now)) {
            (DataType::ServerId, Some(v)) => i64::from(v as u32 as i32),
            (_, Some(v)) => v as i64,
            (_, None) => 0,
        };
        match self.op {
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
            Op::Le => v <= self.value,
            Op::Lt => v < self.value,
            Op::Ge => v >= self.value,
            Op::Gt => v > self.value,
        }
    }
}
