//! Time, size, port and address parsing (to be written).
