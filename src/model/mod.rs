//! The live proxies and servers (being written).
pub mod check;
pub mod state;
