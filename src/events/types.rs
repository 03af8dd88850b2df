//! Event values: what HAProxy's SERVER family carries, captured at the moment of the change.

use std::sync::Arc;
use std::time::Instant;

use crate::model::{AdminFlags, CheckReport, OpState, Server};

/// The SERVER family's event types, with HAProxy's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A server was added at runtime (`add server`).
    ServerAdd,
    /// A server was removed (`del server`).
    ServerDel,
    /// A server went from STOPPED to up.
    ServerUp,
    /// A server went from up to STOPPED, whatever the cause (maintenance included).
    ServerDown,
    /// Operational state changed.
    ServerState,
    /// Administrative flags changed.
    ServerAdmin,
    /// A check result was reported.
    ServerCheck,
    /// The server's address changed.
    ServerInetAddr,
}

impl EventType {
    /// Every type, in HAProxy's declaration order.
    pub const ALL: [EventType; 8] = [
        EventType::ServerAdd,
        EventType::ServerDel,
        EventType::ServerUp,
        EventType::ServerDown,
        EventType::ServerState,
        EventType::ServerAdmin,
        EventType::ServerCheck,
        EventType::ServerInetAddr,
    ];

    /// The name scripts use (`"SERVER_DOWN"`).
    pub fn name(self) -> &'static str {
        match self {
            EventType::ServerAdd => "SERVER_ADD",
            EventType::ServerDel => "SERVER_DEL",
            EventType::ServerUp => "SERVER_UP",
            EventType::ServerDown => "SERVER_DOWN",
            EventType::ServerState => "SERVER_STATE",
            EventType::ServerAdmin => "SERVER_ADMIN",
            EventType::ServerCheck => "SERVER_CHECK",
            EventType::ServerInetAddr => "SERVER_INETADDR",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of event types, as a subscription selects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventMask(u32);

impl EventMask {
    /// The whole SERVER family.
    pub const SERVER: EventMask = EventMask(0xff);

    /// HAProxy 3.2's PAT_REF family (ACL pattern lists). HAProxy publishes these only to a
    /// list's own subscriptions (`Patref:event_sub`): a global subscription to them is
    /// accepted and never fires, as there.
    pub const PAT_REF: EventMask = EventMask(0x1f << 16);

    /// The PAT_REF family's type names, in HAProxy's order (`event_hdl_sub_type_map`).
    const PAT_REF_NAMES: [&'static str; 5] = [
        "PAT_REF_ADD",
        "PAT_REF_DEL",
        "PAT_REF_SET",
        "PAT_REF_COMMIT",
        "PAT_REF_CLEAR",
    ];

    /// An empty set.
    pub fn empty() -> Self {
        EventMask(0)
    }

    /// Adds a type name or a family name (`"SERVER"`, `"PAT_REF"`); `Err` carries HAProxy's
    /// message `'<NAME>' event type is unknown`. `SERVER_NAME` is accepted (and never published).
    pub fn add_name(&mut self, name: &str) -> Result<(), String> {
        match name {
            "SERVER" => self.0 |= Self::SERVER.0,
            "PAT_REF" => self.0 |= Self::PAT_REF.0,
            "SERVER_NAME" => {}
            _ => {
                if let Some(t) = EventType::ALL.iter().find(|t| t.name() == name) {
                    self.0 |= t.bit();
                } else if let Some(i) = Self::PAT_REF_NAMES.iter().position(|n| *n == name) {
                    self.0 |= 1 << (16 + i);
                } else {
                    return Err(format!("'{name}' event type is unknown"));
                }
            }
        }
        Ok(())
    }

    /// Adds one type.
    pub fn with(mut self, t: EventType) -> Self {
        self.0 |= t.bit();
        self
    }

    /// Whether the set holds `t`.
    pub fn contains(self, t: EventType) -> bool {
        self.0 & t.bit() != 0
    }

    /// Whether nothing is selected.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the set holds the type called `name` (`"PAT_REF_ADD"`, `"SERVER_UP"`).
    pub fn has_name(self, name: &str) -> bool {
        let mut one = EventMask::empty();
        one.add_name(name).is_ok() && !one.is_empty() && self.0 & one.0 == one.0
    }

    /// The PAT_REF types of the set only (a pattern list's subscription hears nothing else).
    pub fn only_pat_ref(self) -> EventMask {
        EventMask(self.0 & Self::PAT_REF.0)
    }
}

/// `data.state` of a SERVER_STATE event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// Caused by an administrative change rather than an operational one.
    pub admin: bool,
    /// The check result that caused it, when a health/agent check did.
    pub check: Option<CheckReport>,
    /// Printable cause, may be empty.
    pub cause: String,
    /// State before.
    pub old_state: OpState,
    /// State after.
    pub new_state: OpState,
    /// Connections requeued by the change.
    pub requeued: u32,
}

/// `data.admin` of a SERVER_ADMIN event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminChange {
    /// Printable cause, may be empty.
    pub cause: String,
    /// Flags before.
    pub old_admin: AdminFlags,
    /// Flags after.
    pub new_admin: AdminFlags,
    /// Connections requeued by the change.
    pub requeued: u32,
}

/// The per-type part of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventData {
    /// ADD, DEL, UP, DOWN, INETADDR: common fields only.
    None,
    /// SERVER_STATE.
    State(StateChange),
    /// SERVER_ADMIN.
    Admin(AdminChange),
    /// SERVER_CHECK.
    Check(CheckReport),
}

/// One SERVER event. Identity fields are copied at publish time so that the event stays true
/// after the server changes again or is deleted.
#[derive(Debug, Clone)]
pub struct ServerEvent {
    /// Which event.
    pub kind: EventType,
    /// Generation time, seconds since the Epoch (Lua's `when`).
    pub when: i64,
    /// Server name.
    pub name: Arc<str>,
    /// Proxy-unique server id.
    pub puid: u32,
    /// Revision id.
    pub rid: u32,
    /// Backend name.
    pub proxy_name: Arc<str>,
    /// Backend uuid.
    pub proxy_uuid: u32,
    /// The live server (`None` for SERVER_DEL), for Lua's `data.reference`.
    pub reference: Option<Arc<Server>>,
    /// Per-type data.
    pub data: EventData,
    /// When `EventBus::publish` queued it (set there; build events with `None`). Lets a consumer
    /// measure publish-to-handler latency (`core.harp_event_age_us()` in Lua) without reading
    /// the clock anywhere but once per published event.
    pub published: Option<Instant>,
}

impl ServerEvent {
    /// A data-less `kind` event of server `be/s1` (puid 1, proxy uuid 1, no reference), made
    /// without a registry: what the event bus tests and the bus and Lua-dispatch benches publish.
    #[doc(hidden)]
    pub fn sample(kind: EventType, when: i64) -> ServerEvent {
        ServerEvent {
            kind,
            when,
            name: "s1".into(),
            puid: 1,
            rid: 0,
            proxy_name: "be".into(),
            proxy_uuid: 1,
            reference: None,
            data: EventData::None,
            published: None,
        }
    }
}
