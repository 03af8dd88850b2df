//! harp: an HAProxy-compatible TCP load balancer core.
//!
//! # Layout
//!
//! ```text
//! haproxy.cfg ──► config   (lexer → sections → typed Config; every item keeps its file:line)
//!                   │
//!                   ▼
//!               model::Registry (proxies + servers in a slab; ONE writer applies every
//!                   │            Command; readers see atomics / arc-swap snapshots)
//!      ┌────────────┼────────────────────┬───────────────────────┐
//!      ▼            ▼                    ▼                       ▼
//!  worker × N    health (checks)      admin (Runtime API)     lua (engine thread)
//!  io_uring      result → Command     line → Command          Server:set_* → Command
//!  accept →            └──────────────┬──┴───────────────────────┘
//!  pick server →                      ▼
//!  connect →            model applies the change and publishes Event(s) in HAProxy order
//!  splice ⇄                           │
//!                                     ▼
//!                     events (bounded crossbeam queues; try_send, drops counted)
//!                                     │
//!                                     ▼
//!                     lua thread: mlua + current-thread tokio, one coroutine per callback
//! ```
//!
//! Who owns what:
//! - [`config`]: parsing HAProxy-syntax files into [`config::Config`]; errors carry `file:line`.
//! - [`model`]: the live proxies and servers, their state machine, weights and counters. The only
//!   module that changes server state; everyone else sends it a [`model::Command`].
//! - [`events`]: SERVER_* event values and the bus that carries them without ever blocking.
//! - [`worker`] + [`sys`]: the data plane (accept, balance, connect, splice); `sys` holds the raw
//!   syscalls and `unsafe`, except the workers' own io_uring runtime (`worker::ring`).
//! - [`rules`]: `acl`, `tcp-request`, `use_backend`, `use-server`, sample converters and map
//!   files: pure logic the config builds and the workers evaluate per connection; its pattern
//!   lists (`rules::patref`) are what the Runtime API's `acl`/`map` commands and Lua's Patref
//!   change live.
//! - [`stick`]: stick tables, the per-key counters `track-sc*` rules fill and ACLs read.
//! - [`health`]: health checks; they report results to the model.
//! - [`proxy_protocol`]: the PROXY protocol header, written for servers (`send-proxy`, their
//!   health checks too) and read from a load balancer in front (`accept-proxy`).
//! - [`tls`]: rustls configurations: the server side of `bind ... ssl` listeners (certificates
//!   picked by SNI), the client side of `server ... ssl`, `check-ssl` and Lua's `connect_ssl`;
//!   the workers drive them on their own sockets (`worker::tls`).
//! - [`peers`]: stick tables shared with other harp or HAProxy processes (HAProxy's peers
//!   protocol), on their own thread.
//! - [`admin`]: the Runtime API on `stats socket`s, and the statistics pages of `listen stats`.
//! - [`lua`]: the Lua 5.4 engine running HAProxy scripts on its own thread.
//! - [`app`]: wires them together for `harp -f`.
//!
//! Rules the picture encodes: workers never wait on anything but their sockets; only the model
//! writes state; every state change from any source goes through the same function and yields the
//! same events; Lua never touches worker memory.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod events;
pub mod health;
pub mod logging;
pub mod lua;
pub mod model;
pub mod peers;
pub mod proxy_protocol;
pub mod rules;
pub mod stick;
pub mod sys;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tls;
pub mod worker;
