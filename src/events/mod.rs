//! events (being written)
