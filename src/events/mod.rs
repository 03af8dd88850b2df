//! SERVER_* events and the bus that carries them from the model to consumers (Lua, tests).
//!
//! Producers (whoever calls into the model: a worker, the check thread, the Runtime API, Lua)
//! never block here: each subscriber has its own bounded lock-free queue, a full queue drops the
//! event and counts the drop.

mod bus;
mod types;

pub use bus::{EventBus, Subscription};
pub use types::{AdminChange, EventData, EventMask, EventType, ServerEvent, StateChange};
