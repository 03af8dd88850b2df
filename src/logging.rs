//! HAProxy-style log lines (to be written).
