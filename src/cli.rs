//! HAProxy's command-line flags (to be written).
