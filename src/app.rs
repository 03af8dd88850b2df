//! Wires the modules together for `harp -f` (to be written).
