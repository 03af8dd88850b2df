//! Server operational state and administrative flags, with HAProxy's names and numeric values.

/// Operational state (HAProxy's `srv_state`); the numbers are what `show servers state` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpState {
    /// Down.
    Stopped = 0,
    /// Up and warming up (`slowstart`).
    Starting = 1,
    /// Fully up.
    Running = 2,
    /// Soft-stopping: no new connections (`set server health stopping`).
    Stopping = 3,
}

impl OpState {
    /// The name Lua events and logs use (`"STOPPED"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            OpState::Stopped => "STOPPED",
            OpState::Starting => "STARTING",
            OpState::Running => "RUNNING",
            OpState::Stopping => "STOPPING",
        }
    }

    /// Decodes the stored byte; unknown values read as STOPPED (never produced).
    pub fn from_u8(v: u8) -> OpState {
        match v {
            1 => OpState::Starting,
            2 => OpState::Running,
            3 => OpState::Stopping,
            _ => OpState::Stopped,
        }
    }

    /// Whether the server counts as up (RUNNING or STARTING), i.e. not STOPPED.
    pub fn is_up(self) -> bool {
        !matches!(self, OpState::Stopped)
    }
}

/// Administrative flags (HAProxy's `srv_admin`), bit values as `show servers state` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct AdminFlags(pub u8);

impl AdminFlags {
    /// Forced maintenance (CLI, Lua, `disable server`).
    pub const FMAINT: u8 = 0x01;
    /// Maintenance inherited from a tracked server.
    pub const IMAINT: u8 = 0x02;
    /// The configuration said `disabled` (a mark kept for the state file; the maintenance
    /// itself is the FMAINT set with it, as in HAProxy).
    pub const CMAINT: u8 = 0x04;
    /// Forced drain.
    pub const FDRAIN: u8 = 0x08;
    /// Drain inherited from a tracked server.
    pub const IDRAIN: u8 = 0x10;
    /// Maintenance because of a resolution failure.
    pub const RMAINT: u8 = 0x20;
    /// Any maintenance flag.
    pub const MAINT: u8 = Self::FMAINT | Self::IMAINT | Self::RMAINT;
    /// Any drain flag.
    pub const DRAIN: u8 = Self::FDRAIN | Self::IDRAIN;

    /// Whether `flag` (one of the constants) is set.
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    /// In maintenance for any reason.
    pub fn maint(self) -> bool {
        self.0 & Self::MAINT != 0
    }

    /// Draining for any reason (and not in maintenance, which takes precedence for display).
    pub fn drain(self) -> bool {
        self.0 & Self::DRAIN != 0
    }

    /// The flag names and values, in the order Lua's `old_admin`/`new_admin` maps list them.
    pub fn named(self) -> [(&'static str, bool); 8] {
        let b = |m: u8| self.0 & m != 0;
        [
            ("MAINT", b(Self::MAINT)),
            ("FMAINT", b(Self::FMAINT)),
            ("IMAINT", b(Self::IMAINT)),
            ("RMAINT", b(Self::RMAINT)),
            ("CMAINT", b(Self::CMAINT)),
            ("DRAIN", b(Self::DRAIN)),
            ("FDRAIN", b(Self::FDRAIN)),
            ("IDRAIN", b(Self::IDRAIN)),
        ]
    }
}

/// Why a change happened; becomes the `cause` string of events and log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The Runtime API.
    Cli,
    /// A Lua script (`Server:set_*`).
    Lua,
    /// A health or agent check (events then carry `check` instead of a cause).
    Check,
    /// Start-up / configuration.
    Config,
    /// Name resolution (`resolvers`): its outcome, as HAProxy names it in maintenance lines.
    Dns(DnsStatus),
    /// The tracked server changed (`track`): HAProxy's cause "none".
    Track,
}

/// How a run-time resolution of a server's name ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsStatus {
    /// An address came back.
    Valid,
    /// The name does not exist (NXDOMAIN).
    Nx,
    /// No name server answered in time.
    Timeout,
    /// The name servers refused.
    Refused,
    /// Anything else (no address of the wanted family, a malformed answer).
    Other,
    /// The name resolved, but to fewer addresses than its `server-template` has servers.
    NoIp,
}

impl DnsStatus {
    /// HAProxy's text in `is going DOWN for maintenance (...)`.
    pub fn text(self) -> &'static str {
        match self {
            DnsStatus::Valid => "",
            DnsStatus::Nx => "DNS NX status",
            DnsStatus::Timeout => "DNS timeout status",
            DnsStatus::Refused => "DNS refused status",
            DnsStatus::Other => "unspecified DNS error",
            DnsStatus::NoIp => "No IP for server ",
        }
    }
}

impl Cause {
    /// HAProxy's printable cause for operational changes.
    pub fn text(self) -> &'static str {
        match self {
            Cause::Cli => "changed from CLI",
            Cause::Lua => "changed from Lua script",
            Cause::Check | Cause::Config | Cause::Dns(_) | Cause::Track => "",
        }
    }
}
