//! (worker: to be written)
