//! The typed configuration: what the parser produces and what the rest of harp reads.
//!
//! Every field documents the HAProxy directive it comes from and its default, so that an operator
//! can map a config line to a field. Durations are `std::time::Duration`; "unset" is `None` where
//! HAProxy distinguishes unset from a value.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Where a directive was written, for `[ALERT] parsing [file:line]` messages and Lua errors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The file as named on the command line (or the directory entry), not canonicalised.
    pub file: String,
    /// 1-based line number of the directive's first line.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A whole, validated configuration: every file given with `-f`, merged in order.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The `global` section (several `global` sections merge, as in HAProxy).
    pub global: Global,
    /// `frontend`, `backend` and `listen` sections in file order, defaults already applied.
    pub proxies: Vec<ProxyConfig>,
    /// `mailers` sections, by name.
    pub mailers: Vec<MailersConfig>,
    /// `resolvers` sections, by name.
    pub resolvers: Vec<ResolversConfig>,
    /// `peers` sections, by name.
    pub peers: Vec<PeersConfig>,
    /// `ring` sections, by name.
    pub rings: Vec<RingConfig>,
    /// Warnings found while parsing, already formatted `[WARNING] ...`, printed by the caller.
    pub warnings: Vec<String>,
}

impl Config {
    /// Names this process in the `peers` sections: each one's peer of that name is the local
    /// peer. A section without one shares nothing, with HAProxy's warning; one with it twice
    /// is an error (returned, HAProxy's text).
    pub fn set_local_peer(&mut self, name: &str) -> Vec<(Location, String)> {
        let mut errors = Vec::new();
        for sc in &mut self.peers {
            let mut mine = sc.peers.iter().filter(|p| p.name == name);
            if let (Some(first), Some(again)) = (mine.next(), mine.next()) {
                errors.push((
                    again.location.clone(),
                    format!(
                        "'peer {name}' : local peer name already referenced at {}. {name}",
                        first.location
                    ),
                ));
            }
            if sc.peers.iter().any(|p| p.name == name) {
                sc.local = Some(name.to_string());
            } else {
                sc.local = None;
                self.warnings.push(format!(
                    "[WARNING] config : Removing incomplete section 'peers {}' (no peer named '{name}').",
                    sc.name
                ));
            }
        }
        errors
    }

    /// Finds a proxy by name with the given capability (a `listen` has both).
    pub fn proxy(&self, name: &str, want_backend: bool) -> Option<&ProxyConfig> {
        self.proxies.iter().find(|p| {
            p.name == name
                && if want_backend {
                    p.cap.backend
                } else {
                    p.cap.frontend
                }
        })
    }
}

/// The `global` section.
#[derive(Debug, Clone)]
pub struct Global {
    /// `localpeer <name>`: this process's name in `peers` sections (`-L` wins; default: the
    /// host name).
    pub localpeer: Option<String>,
    /// `ssl-default-bind-options|ciphers|ciphersuites`, `tune.ssl.cachesize`: what every
    /// later `bind` line's TLS settings start from.
    pub bind_tls: crate::tls::BindTls,
    /// `ssl-default-server-options|ciphers|ciphersuites`: what servers' TLS settings start from.
    pub server_tls: crate::tls::TlsTuning,
    /// `nbthread`: number of data-plane workers; `None` = one per CPU.
    pub nbthread: Option<usize>,
    /// `maxconn`: process-wide limit on concurrent client connections; `None` = derived from
    /// `ulimit -n` as HAProxy does.
    pub maxconn: Option<u32>,
    /// `maxsslconn`: TLS connections open at once, process-wide (0: no limit); past it a new
    /// one fails (`Too many SSL connections`), as in HAProxy.
    pub maxsslconn: u32,
    /// `maxconnrate`: connections accepted per second, process-wide (0 = no limit); above it
    /// the listeners wait, and connections wait in the kernel's backlog, as in HAProxy.
    pub maxconnrate: u32,
    /// `maxsessrate`: sessions per second, process-wide (in TCP a connection is a session).
    pub maxsessrate: u32,
    /// `maxsslrate`: TLS sessions per second; harp does not pace handshakes (yet), so it
    /// limits nothing, and `show info` reports it as HAProxy does.
    pub maxsslrate: u32,
    /// `tune.pipesize`: capacity asked for each splice pipe (F_SETPIPE_SZ); `None` = harp's
    /// default (see `worker::forward::splice::PIPE_SIZE`). Bigger pipes mean fewer splice calls per GB;
    /// the kernel caps unprivileged users at `fs.pipe-max-size` and `fs.pipe-user-pages-soft`.
    pub pipesize: Option<u32>,
    /// `tune.listener.incoming-cpu on|off` (harp's own keyword, default on): a pinned worker's
    /// listeners get the connections whose SYN its CPU processed (SO_INCOMING_CPU), with a
    /// watchdog that goes back to hashing if that piles everything on one worker.
    pub incoming_cpu: bool,
    /// `stats socket` lines, each a Runtime API listener.
    pub stats_sockets: Vec<StatsSocket>,
    /// `stats timeout`: idle timeout of an interactive Runtime API session (default 10s).
    pub stats_timeout: Duration,
    /// `lua-load` and `lua-load-per-thread` lines, in order.
    pub lua_loads: Vec<LuaLoad>,
    /// The `proc.*` variables the `set-var` and `set-var-fmt` lines left, evaluated as the
    /// section was read (`None`: declared, no value).
    pub proc_vars: Vec<(crate::rules::vars::VarName, Option<crate::rules::Value>)>,
    /// `lua-prepend-path <str> [path|cpath]` lines, in order.
    pub lua_prepend_paths: Vec<LuaPrependPath>,
    /// `tune.lua.*`.
    pub lua: LuaTune,
    /// `httpclient.*`.
    pub httpclient: HttpClientSettings,
    /// `log` lines (targets for traffic and event logs).
    pub logs: Vec<LogTarget>,
    /// `log-tag`: the syslog tag (default: the program name as launched, as in HAProxy).
    pub log_tag: Option<String>,
    /// `daemon`: fork into the background (accepted; `-D` does the same).
    pub daemon: bool,
    /// `pidfile <path>`.
    pub pidfile: Option<PathBuf>,
    /// `hard-stop-after <time>`: bounds a graceful stop.
    pub hard_stop_after: Option<Duration>,
    /// `spread-checks <0..50>`: percentage of random jitter added to check intervals.
    pub spread_checks: u32,
    /// `ssl-server-verify none|required`: whether TLS to servers (`check-ssl`) verifies
    /// certificates when a server says neither `verify none` nor `verify required`.
    pub ssl_server_verify: bool,
    /// `max-spread-checks <time>`: the first checks after start-up are spread over at most
    /// this (else over each server's `inter`).
    pub max_spread_checks: Option<Duration>,
    /// `quiet`: as `-q`, no log lines on stderr.
    pub quiet: bool,
    /// `zero-warning`: a configuration with warnings is refused.
    pub zero_warning: bool,
    /// `nosplice`: never splice (every session copies), as HAProxy's `-dS`.
    pub nosplice: bool,
    /// `tune.rcvbuf.client|server`, `tune.sndbuf.client|server`: socket buffer sizes set on
    /// client and server connections (the kernel's autotuning otherwise).
    pub bufs: SocketBufs,
    /// `server-state-file <path>`: the servers' states saved before a restart (`show servers
    /// state`), applied at start-up to the backends that `load-server-state-from-file global`.
    pub server_state_file: Option<PathBuf>,
    /// `server-state-base <dir>`: where relative state file names are looked up.
    pub server_state_base: Option<PathBuf>,
    /// `ulimit-n <n>`: the open-file limit harp sets for itself at start-up.
    pub ulimit_n: Option<u64>,
    /// `maxpipes <n>`: most splice pipes in use at once; beyond, sessions copy instead.
    pub maxpipes: Option<u32>,
    /// `unix-bind`: defaults for the unix sockets declared after it (`stats socket`).
    pub unix_bind: UnixBind,
    /// `node <name>`: shown in `show info`.
    pub node: Option<String>,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            localpeer: None,
            bind_tls: crate::tls::BindTls::default(),
            server_tls: crate::tls::TlsTuning::default(),
            log_tag: None,
            nbthread: None,
            maxconn: None,
            maxsslconn: 0,
            maxconnrate: 0,
            maxsessrate: 0,
            maxsslrate: 0,
            pipesize: None,
            incoming_cpu: true,
            stats_sockets: Vec::new(),
            stats_timeout: Duration::from_secs(10),
            lua_loads: Vec::new(),
            proc_vars: Vec::new(),
            lua_prepend_paths: Vec::new(),
            lua: LuaTune::default(),
            httpclient: HttpClientSettings::default(),
            logs: Vec::new(),
            daemon: false,
            pidfile: None,
            hard_stop_after: None,
            spread_checks: 0,
            max_spread_checks: None,
            ssl_server_verify: true,
            quiet: false,
            zero_warning: false,
            nosplice: false,
            bufs: SocketBufs::default(),
            server_state_file: None,
            server_state_base: None,
            ulimit_n: None,
            maxpipes: None,
            unix_bind: UnixBind::default(),
            node: None,
        }
    }
}

/// An address harp listens on or connects to, with HAProxy's `ipv4@`/`ipv6@`/`unix@` prefixes
/// already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A TCP address (`ipv4@`, `ipv6@`, or a bare `ip:port`).
    Tcp(SocketAddr),
    /// A unix stream socket path (`unix@/path` or a bare path starting with `/`).
    Unix(PathBuf),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Unix(p) => write!(f, "unix@{}", p.display()),
        }
    }
}

/// Runtime API access level of a stats socket (`level`), lowest first so they compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum AccessLevel {
    /// Read non-sensitive stats; change nothing.
    User,
    /// Read all; non-sensitive changes. HAProxy's default.
    #[default]
    Operator,
    /// Everything.
    Admin,
}

/// `unix-bind [prefix <p>] [mode <octal>] [user|uid <u>] [group|gid <g>]`: what unix sockets
/// declared after it take by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnixBind {
    /// Prepended to every unix socket path.
    pub prefix: Option<String>,
    /// Permissions.
    pub mode: Option<u32>,
    /// Owner.
    pub user: Option<String>,
    /// Group.
    pub group: Option<String>,
}

/// `tune.rcvbuf.*` / `tune.sndbuf.*`: SO_RCVBUF / SO_SNDBUF of client and server sockets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketBufs {
    /// `tune.rcvbuf.client`.
    pub rcv_client: Option<u32>,
    /// `tune.sndbuf.client`.
    pub snd_client: Option<u32>,
    /// `tune.rcvbuf.server`.
    pub rcv_server: Option<u32>,
    /// `tune.sndbuf.server`.
    pub snd_server: Option<u32>,
}

/// `load-server-state-from-file`: where a backend's saved server states come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadServerState {
    /// Nowhere (the default).
    #[default]
    None,
    /// The global `server-state-file`.
    Global,
    /// The backend's own file (`server-state-file-name`).
    Local,
}

/// One `init-addr` method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitAddr {
    /// `last`: the address from a server state file (harp has none: skipped).
    Last,
    /// `libc`: the system's resolver.
    Libc,
    /// `none`: start without an address, in resolution maintenance.
    None,
    /// `<ip>`: this address.
    Ip(IpAddr),
}

/// `source <addr>[:<port>] [interface <name>]`: where connections to servers come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAddr {
    /// Local address (port 0: any).
    pub addr: SocketAddr,
    /// `interface <name>`: bound to that device (SO_BINDTODEVICE).
    pub interface: Option<String>,
}

/// One `stats socket` line.
#[derive(Debug, Clone)]
pub struct StatsSocket {
    /// Where it listens.
    pub addr: Address,
    /// `level user|operator|admin` (default operator).
    pub level: AccessLevel,
    /// `mode <octal>` for a unix socket.
    pub mode: Option<u32>,
    /// `user <name>` (or `uid`) owning a unix socket.
    pub user: Option<String>,
    /// `group <name>` (or `gid`) owning a unix socket.
    pub group: Option<String>,
    /// Where the line was written.
    pub location: Location,
}

/// One `lua-load` / `lua-load-per-thread` line.
#[derive(Debug, Clone)]
pub struct LuaLoad {
    /// The script path as written (relative paths are relative to the working directory, as in
    /// HAProxy).
    pub file: PathBuf,
    /// Extra words, passed to the script body as `...`.
    pub args: Vec<String>,
    /// `lua-load-per-thread` rather than `lua-load`.
    pub per_thread: bool,
    /// Where the line was written.
    pub location: Location,
}

/// One `lua-prepend-path` line.
#[derive(Debug, Clone)]
pub struct LuaPrependPath {
    /// The template, e.g. `/usr/share/lua/5.4/?.lua`.
    pub path: String,
    /// `cpath` rather than `path` (the default).
    pub cpath: bool,
}

/// `tune.lua.log.stderr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LuaLogStderr {
    /// Always copy Lua logs to stderr.
    On,
    /// Copy to stderr only when no logger is configured (HAProxy's default).
    #[default]
    Auto,
    /// Never.
    Off,
}

/// harp's `tune.lua.nice`: the priority the Lua thread moves to while a script runs pure Lua for
/// more than `lua::runner::DEMOTE_AFTER` without yielding, so a busy script never takes CPU time
/// from the I/O workers, while ordinary callbacks keep the normal priority (prompt alerts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LuaPriority {
    /// A nice value, -20 (highest) to 19 (lowest); below 0 needs CAP_SYS_NICE.
    Nice(i32),
    /// SCHED_IDLE: the thread only runs on CPU time nothing else wants. The default: measured
    /// with a 1 s spinning callback (perf/lua_nice_ab.sh, perf/README.md), only it left the
    /// workers' run-queue wait at its plain level (nice 19 still doubled it, nice 0 multiplied it
    /// by 10).
    #[default]
    Idle,
}

/// Default of `tune.lua.max-cpu`, in percent of one CPU.
pub const DEFAULT_LUA_MAX_CPU: u8 = 10;

/// `tune.lua.*` settings.
#[derive(Debug, Clone)]
pub struct LuaTune {
    /// `tune.lua.maxmem <MB>`: 0 = unlimited (default). Stored in bytes.
    pub maxmem: u64,
    /// `tune.lua.forced-yield <n>`: instructions between forced yields (`None` = HAProxy's
    /// default, 10000 scaled by threads).
    pub forced_yield: Option<u32>,
    /// `tune.lua.task-timeout`: unset by default (tasks may live forever).
    pub task_timeout: Option<Duration>,
    /// `tune.lua.burst-timeout`: default 1000 ms; zero disables.
    pub burst_timeout: Duration,
    /// `tune.lua.session-timeout`: default 4s; bounds a `core.register_cli` command's run, as
    /// in HAProxy (actions are not run yet).
    pub session_timeout: Duration,
    /// `tune.lua.service-timeout`: default 4s (accepted; services are not run yet).
    pub service_timeout: Duration,
    /// `tune.lua.log.loggers on|off` (default on).
    pub log_loggers: bool,
    /// `tune.lua.log.stderr on|auto|off` (default auto).
    pub log_stderr: LuaLogStderr,
    /// `tune.lua.nice <n>|idle` (harp only): priority of the Lua thread during long runs.
    pub priority: LuaPriority,
    /// `tune.lua.max-cpu <percent>` (harp only): the share of one CPU a script may use while it
    /// runs pure Lua for more than `lua::runner::DEMOTE_AFTER` without yielding; the rest of
    /// the time it sleeps. A low priority alone does not make a spinning script harmless: a
    /// worker waking on a CPU busy with it needs an inter-processor interrupt where an idle CPU
    /// would have noticed at once (+18 us per request measured, perf/README.md). 100 = no limit.
    pub max_cpu: u8,
}

impl Default for LuaTune {
    fn default() -> Self {
        LuaTune {
            maxmem: 0,
            forced_yield: None,
            task_timeout: None,
            burst_timeout: Duration::from_millis(1000),
            session_timeout: Duration::from_secs(4),
            service_timeout: Duration::from_secs(4),
            log_loggers: true,
            log_stderr: LuaLogStderr::Auto,
            priority: LuaPriority::default(),
            max_cpu: DEFAULT_LUA_MAX_CPU,
        }
    }
}

/// Address family preference (`httpclient.resolvers.prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    /// `ipv4`
    V4,
    /// `ipv6`
    V6,
}

/// `httpclient.*` global settings used by `core.httpclient()`.
#[derive(Debug, Clone)]
pub struct HttpClientSettings {
    /// `httpclient.resolvers.id <name>`: the `resolvers` section to use (default `default`).
    pub resolvers_id: Option<String>,
    /// `httpclient.resolvers.prefer ipv4|ipv6` (HAProxy's default prefers ipv6).
    pub prefer: Option<IpFamily>,
    /// `httpclient.resolvers.disabled on|off`.
    pub resolvers_disabled: bool,
    /// `httpclient.retries <n>` (default 3).
    pub retries: u32,
    /// `httpclient.timeout.connect <time>` (default 5s).
    pub timeout_connect: Duration,
    /// `httpclient.ssl.ca-file <path>`; `None` = the system/webpki roots.
    pub ssl_ca_file: Option<PathBuf>,
    /// `httpclient.ssl.verify none|required` (default required).
    pub ssl_verify: bool,
}

impl Default for HttpClientSettings {
    fn default() -> Self {
        HttpClientSettings {
            resolvers_id: None,
            prefer: None,
            resolvers_disabled: false,
            retries: 3,
            timeout_connect: Duration::from_secs(5),
            ssl_ca_file: None,
            ssl_verify: true,
        }
    }
}

/// A `log` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// `log stdout ...`: write lines to the process's stream.
    Stdout {
        /// Facility name (the `<prio>` of the framed formats).
        facility: String,
        /// Its level filters and format.
        levels: LogLevels,
    },
    /// `log stderr ...`
    Stderr {
        /// Facility name.
        facility: String,
        /// Its level filters and format.
        levels: LogLevels,
    },
    /// `log <addr> <facility> [level [minlevel]]`: syslog RFC3164 over UDP (or a unix datagram
    /// path).
    Syslog {
        /// Where to send.
        addr: Address,
        /// Facility name, e.g. `local0`.
        facility: String,
        /// Its level filters.
        levels: LogLevels,
    },
    /// `log ring@<name> ...`: into a `ring` section's buffer (`show events <name>`), which
    /// its servers are sent over TCP.
    Ring {
        /// The ring's name.
        ring: String,
        /// Facility name.
        facility: String,
        /// Its level filters (the ring's own `format` frames the lines).
        levels: LogLevels,
        /// Where the `log` line is, for the start-up check that the ring exists.
        location: Location,
    },
    /// `log global` in a proxy: use the global targets.
    Global,
}

/// A `ring <name>` section: an in-memory buffer of log lines, sent on to TCP syslog servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingConfig {
    /// Section name.
    pub name: String,
    /// `description <text>` (`show events` prints it; default: the name).
    pub description: Option<String>,
    /// `format <fmt>`: how lines are framed in it (default `raw`).
    pub format: LogFormat,
    /// `maxlen <n>`: the longest line kept, cut beyond (default and most: `size`).
    pub maxlen: Option<usize>,
    /// `size <n>`: bytes it holds (default and least: 16384); the oldest lines go first.
    pub size: usize,
    /// `timeout connect <t>` to its servers (default 5s).
    pub timeout_connect: Duration,
    /// `timeout server <t>`: how long a write to a server may wait (default 5s).
    pub timeout_server: Duration,
    /// `server <name> <addr>:<port>` lines: TCP syslog receivers, each sent every line
    /// followed by a newline.
    pub servers: Vec<(String, SocketAddr)>,
    /// Where the section starts.
    pub location: Location,
}

impl RingConfig {
    /// HAProxy's default and smallest ring size (its buffer size).
    pub const MIN_SIZE: usize = 16_384;

    /// A ring with HAProxy's defaults.
    pub fn new(name: &str, location: Location) -> RingConfig {
        RingConfig {
            name: name.to_string(),
            description: None,
            format: LogFormat::Raw,
            maxlen: None,
            size: Self::MIN_SIZE,
            timeout_connect: Duration::from_secs(5),
            timeout_server: Duration::from_secs(5),
            servers: Vec::new(),
            location,
        }
    }
}

/// A log target's `[level [minlevel]]`, as syslog severities (0 = emerg ... 7 = debug), and
/// its `format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogLevels {
    /// Lines less severe than this are not sent (`None`: all are).
    pub max: Option<u8>,
    /// Lines more severe than this are sent at this severity (`None`: as they are).
    pub min: Option<u8>,
    /// How each line is framed.
    pub format: LogFormat,
}

/// `log ... format <name>`: how a line is framed, HAProxy's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `<prio>Mmm dd hh:mm:ss tag[pid]: line` (the default).
    #[default]
    Rfc3164,
    /// `local`: the same, never with a host name (a ring's `rfc3164` lines name one).
    Local,
    /// `<prio>1 <iso time> - tag pid - - line`.
    Rfc5424,
    /// The line alone.
    Raw,
    /// `<severity>line`.
    Short,
    /// `<severity><iso time> line`.
    Timed,
    /// `<iso time> line`.
    Iso,
    /// `<prio>line`.
    Priority,
}

impl LogLevels {
    /// The severity a line of `severity` is sent at, or `None` when it is filtered out.
    pub fn apply(self, severity: u8) -> Option<u8> {
        if self.max.is_some_and(|m| severity > m) {
            return None;
        }
        Some(self.min.map_or(severity, |m| severity.max(m)))
    }
}

/// Which sections a proxy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Accepts connections (`frontend`, `listen`).
    pub frontend: bool,
    /// Has servers (`backend`, `listen`).
    pub backend: bool,
}

/// `mode`. Only `tcp` is forwarded today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// `mode tcp` (harp's default as it is HAProxy's for proxies without `mode http`).
    #[default]
    Tcp,
    /// `mode http`: accepted in a `defaults` section (many configurations set it there while
    /// every proxy says `mode tcp`) and for a statistics page without servers; any other proxy
    /// left in it is refused when its section ends.
    Http,
}

/// A proxy's statistics page (`stats enable`, `stats uri`, ...): the one use of `mode http`
/// harp serves, on a proxy without servers (HAProxy's `listen stats` section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsPage {
    /// `stats uri <prefix>` (default `/haproxy?stats`).
    pub uri: String,
    /// `stats realm <realm>` (default `HAProxy Statistics`).
    pub realm: String,
    /// `stats auth <user>:<password>` lines: when any, HTTP basic authentication is required.
    pub auth: Vec<(String, String)>,
    /// `stats refresh <time>`: the HTML page reloads itself.
    pub refresh: Option<Duration>,
    /// `stats hide-version`.
    pub hide_version: bool,
    /// `stats scope <proxy>` lines: only these proxies are shown (all when none).
    pub scope: Vec<String>,
}

impl ProxyMode {
    /// The name `show stat` and Lua's `Proxy:get_mode()` give it.
    pub fn name(self) -> &'static str {
        match self {
            ProxyMode::Tcp => "tcp",
            ProxyMode::Http => "http",
        }
    }
}

impl Default for StatsPage {
    fn default() -> Self {
        StatsPage {
            uri: "/haproxy?stats".into(),
            realm: "HAProxy Statistics".into(),
            auth: Vec::new(),
            refresh: None,
            hide_version: false,
            scope: Vec::new(),
        }
    }
}

/// What a `defaults` section in `mode http` hands to the proxies that take it, for the checks
/// HAProxy makes once a proxy is complete (a proxy still in `mode http` is refused; one in
/// `mode tcp` is warned about the HTTP-only options it inherits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpDefaults {
    /// Where `mode http` was set.
    pub mode_at: Option<Location>,
    /// `option forwardfor` was set: ignored, with HAProxy's warning, by each proxy in tcp mode.
    pub forwardfor: bool,
    /// `option httplog` was set: a frontend in tcp mode falls back to `option tcplog`, warned.
    pub httplog: bool,
}

/// `balance` algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BalanceAlgo {
    /// Smooth weighted round robin; dynamic (weights change at runtime). HAProxy's default.
    #[default]
    RoundRobin,
    /// Static weighted round robin: weights cannot change at runtime except 0%/100%.
    StaticRr,
    /// Fewest current connections.
    LeastConn,
    /// First server with a free slot, by id.
    First,
    /// Hash of the client source address.
    Source,
    /// Random, with power-of-two choices (`random(2)`).
    Random,
    /// Hash of the client's RDP cookie (`rdp-cookie[(<name>)]`), round robin without one.
    RdpCookie,
}

impl BalanceAlgo {
    /// The name `show stat` prints in the `algo` column.
    pub fn name(self) -> &'static str {
        match self {
            BalanceAlgo::RoundRobin => "roundrobin",
            BalanceAlgo::StaticRr => "static-rr",
            BalanceAlgo::LeastConn => "leastconn",
            BalanceAlgo::First => "first",
            BalanceAlgo::Source => "source",
            BalanceAlgo::Random => "random",
            BalanceAlgo::RdpCookie => "rdp-cookie",
        }
    }

    /// Whether servers can be added at runtime and weights changed freely (HAProxy's "dynamic"
    /// algorithms; `add server` requires one).
    pub fn is_dynamic(self) -> bool {
        !matches!(self, BalanceAlgo::StaticRr)
    }

    /// Whether it hashes (the map-based kind is static, the consistent one dynamic).
    pub fn hashes(self) -> bool {
        matches!(self, BalanceAlgo::Source | BalanceAlgo::RdpCookie)
    }
}

/// `hash-type` for hashing algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashType {
    /// `map-based` (HAProxy's default): modulo over the weighted server list.
    #[default]
    MapBased,
    /// `consistent`: a hash ring, stable when servers come and go.
    Consistent,
}

/// `hash-type ... <function>`: how `balance rdp-cookie` hashes the cookie (HAProxy's
/// `gen_hash`; `sdbm` by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashFunction {
    /// `sdbm`.
    #[default]
    Sdbm,
    /// `djb2`.
    Djb2,
    /// `wt6`.
    Wt6,
    /// `crc32`.
    Crc32,
    /// `none`: the key is a number already.
    None,
}

impl HashFunction {
    /// The function of a `hash-type` word.
    pub fn by_name(name: &str) -> Option<HashFunction> {
        Some(match name {
            "sdbm" => HashFunction::Sdbm,
            "djb2" => HashFunction::Djb2,
            "wt6" => HashFunction::Wt6,
            "crc32" => HashFunction::Crc32,
            "none" => HashFunction::None,
            _ => return None,
        })
    }
}

/// `timeout *` values of a proxy. `None` = unset (HAProxy then warns or uses infinity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// `timeout connect`
    pub connect: Option<Duration>,
    /// `timeout client`
    pub client: Option<Duration>,
    /// `timeout server`
    pub server: Option<Duration>,
    /// `timeout queue` (unset = `timeout connect`)
    pub queue: Option<Duration>,
    /// `timeout check` (unset = `inter`)
    pub check: Option<Duration>,
    /// `timeout tunnel` (overrides client/server once both sides are established)
    pub tunnel: Option<Duration>,
    /// `timeout client-fin`
    pub client_fin: Option<Duration>,
    /// `timeout server-fin`
    pub server_fin: Option<Duration>,
}

/// How one direction of a TCP session moves its bytes: splicing through a pipe saves copying bulk
/// data; copying through a buffer needs no pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpliceMode {
    /// HAProxy's `option splice-auto`, harp's default: copy small messages (they answer sooner),
    /// splice once the direction streams (bulk data costs less CPU spliced).
    #[default]
    Auto,
    /// Splice from the first byte (`option splice-request` / `option splice-response`).
    Always,
    /// Always copy through user-space buffers (`no option splice-auto`).
    Off,
}

/// The splice modes of a proxy's two directions (`option splice-auto|splice-request|
/// splice-response`, each also as `no option ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Splice {
    /// Client to server.
    pub request: SpliceMode,
    /// Server to client.
    pub response: SpliceMode,
}

impl Splice {
    /// Both directions.
    pub fn both(mode: SpliceMode) -> Splice {
        Splice {
            request: mode,
            response: mode,
        }
    }

    /// What a session between frontend `self` and backend `be` uses. As in HAProxy an explicit
    /// `splice-request`/`splice-response` on either side wins; since harp splices by default,
    /// `no option splice-auto` on either side turns the automatic mode off.
    pub fn with_backend(self, be: Splice) -> Splice {
        let pick = |a: SpliceMode, b: SpliceMode| {
            if a == SpliceMode::Always || b == SpliceMode::Always {
                SpliceMode::Always
            } else if a == SpliceMode::Off || b == SpliceMode::Off {
                SpliceMode::Off
            } else {
                SpliceMode::Auto
            }
        };
        Splice {
            request: pick(self.request, be.request),
            response: pick(self.response, be.response),
        }
    }
}

/// What a health check sends and expects (`option httpchk`, `option tcp-check`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CheckKind {
    /// L4: a TCP connect (the default).
    #[default]
    Tcp,
    /// `option tcp-check` (its rules in `ProxyConfig::tcp_check_rules`; without rules a connect,
    /// like `Tcp` but reported as tcp-check), or a protocol check made of such rules.
    TcpCheck,
    /// `option httpchk [METHOD URI [VERSION]]` with `http-check expect status <code>`.
    Http(HttpCheck),
}

/// `option httpchk` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// Default `OPTIONS`.
    pub method: String,
    /// Default `/`.
    pub uri: String,
    /// Default `HTTP/1.0`.
    pub version: String,
    /// Extra request headers (`http-check send hdr`), may be empty.
    pub headers: Vec<(String, String)>,
    /// `http-check expect status <code>`; `None` = any 2xx or 3xx passes.
    pub expect_status: Option<u16>,
}

impl Default for HttpCheck {
    fn default() -> Self {
        HttpCheck {
            method: "OPTIONS".into(),
            uri: "/".into(),
            version: "HTTP/1.0".into(),
            headers: Vec::new(),
            expect_status: None,
        }
    }
}

/// `email-alert *` settings of a proxy (read by Lua `Proxy:get_mailers()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAlert {
    /// `email-alert mailers <name>`
    pub mailers: Option<String>,
    /// `email-alert from <addr>`
    pub from: Option<String>,
    /// `email-alert to <addr>`
    pub to: Option<String>,
    /// `email-alert level <syslog level>` as a number 0..7 (default 6 = info? HAProxy: alert=1;
    /// its default is `alert`).
    pub level: u8,
    /// `email-alert myhostname <name>` (default: the host name).
    pub myhostname: Option<String>,
}

impl Default for EmailAlert {
    fn default() -> Self {
        EmailAlert {
            mailers: None,
            from: None,
            to: None,
            level: 1,
            myhostname: None,
        }
    }
}

/// The TLS TLVs `proxy-v2-options` asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pp2Tls {
    /// `ssl`: the `PP2_TYPE_SSL` TLV (the client's TLS flags and version).
    pub ssl: bool,
    /// `cert-cn`: in it, the client certificate's common name.
    pub cert_cn: bool,
    /// `ssl-cipher`: in it, the cipher.
    pub cipher: bool,
    /// `authority`: the client's SNI (`PP2_TYPE_AUTHORITY`).
    pub authority: bool,
}

/// Per-server settings, also used for `default-server` (where every field may be set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerParams {
    /// `check`: run health checks.
    pub check: bool,
    /// `inter` (default 2s).
    pub inter: Duration,
    /// `fastinter` (unset = `inter`): interval while a server is changing state.
    pub fastinter: Option<Duration>,
    /// `observe layer4`: connection failures to the server count as passive health errors.
    pub observe_layer4: bool,
    /// `error-limit <n>` (default 10): consecutive passive errors that trigger `on-error`.
    pub error_limit: u32,
    /// `on-error`: what `error-limit` consecutive passive errors do.
    pub on_error: OnError,
    /// `downinter` (unset = `inter`): interval while a server is DOWN.
    pub downinter: Option<Duration>,
    /// `rise` (default 2).
    pub rise: u32,
    /// `fall` (default 3).
    pub fall: u32,
    /// `weight` 0..=256 (default 1).
    pub weight: u32,
    /// `maxconn` (0 = unlimited, the default).
    pub maxconn: u32,
    /// `minconn`: with a backend `fullconn`, the server's limit grows from this to `maxconn` as
    /// the backend fills (HAProxy's dynamic maxconn); 0 = `maxconn` (a static limit).
    pub minconn: u32,
    /// `maxqueue` (0 = unlimited).
    pub maxqueue: u32,
    /// `backup`
    pub backup: bool,
    /// `non-stick`: `stick` rules never store this server for a client (a backup's clients
    /// go back to the active servers once these return).
    pub non_stick: bool,
    /// `disabled`: starts in maintenance (CMAINT + FMAINT, as HAProxy).
    pub disabled: bool,
    /// `port`: the health check port.
    pub check_port: Option<u16>,
    /// `addr`: the health check address.
    pub check_addr: Option<IpAddr>,
    /// `slowstart <time>`: ramp the weight up after coming UP.
    pub slowstart: Option<Duration>,
    /// `on-marked-down shutdown-sessions`.
    pub shutdown_on_down: bool,
    /// `on-marked-up shutdown-backup-sessions`: when this server comes up, the sessions on the
    /// backend's backup servers are closed, so that clients reconnect to it.
    pub shutdown_backup_on_up: bool,
    /// `send-proxy`: a PROXY protocol v1 line starts every connection to the server, so that
    /// it learns the client's address.
    pub send_proxy: bool,
    /// `send-proxy-v2`: the binary v2 header instead (wins over `send-proxy`, as in HAProxy).
    pub send_proxy_v2: bool,
    /// `proxy-v2-options unique-id`: the v2 header carries the stream's unique id (a
    /// `PP2_TYPE_UNIQUE_ID` TLV) when the frontend has a `unique-id-format`.
    pub pp2_unique_id: bool,
    /// `proxy-v2-options ssl|cert-cn|ssl-cipher|authority`: the client's TLS in the v2 header.
    pub pp2_tls: Pp2Tls,
    /// `check-send-proxy`: checks send a PROXY header even to a check `port`/`addr` (v2 when
    /// the server sends v2, else v1).
    pub check_send_proxy: bool,
    /// `source`: this server's connections (and checks) come from there, over the backend's.
    pub source: Option<SourceAddr>,
    /// The host name of the server's address, when it was a name: resolved again at run time
    /// with `resolvers`.
    pub fqdn: Option<String>,
    /// `resolvers <id>`: the section whose name servers resolve `fqdn` at run time.
    pub resolvers: Option<String>,
    /// `init-addr <method>[,...]`: how the address is found at start-up (default `last,libc`).
    pub init_addr: Option<Vec<InitAddr>>,
    /// `resolve-prefer ipv4|ipv6`: the family picked at run time (default ipv6, as HAProxy).
    pub resolve_prefer_v4: bool,
    /// The server's place in its `server-template` (0 for the first): with `resolvers`, the
    /// servers of a template share the addresses of their name, one each.
    pub template_slot: Option<u32>,
    /// `resolve-opts allow-dup-ip`: servers of one backend resolving the same name may take
    /// the same address (by default, as in HAProxy, each takes one the others do not hold).
    pub allow_dup_ip: bool,
    /// The address could not be found at start-up (`init-addr none`): the server starts in
    /// resolution maintenance (RMAINT) until its name resolves.
    pub unresolved: bool,
    /// `tcp-ut <time>`: TCP_USER_TIMEOUT on connections to the server.
    pub tcp_ut: Option<Duration>,
    /// `check-ssl`: health checks speak TLS even when the traffic does not.
    pub check_ssl: bool,
    /// `ssl`: connections to the server speak TLS (and so do its checks, unless they go to
    /// another `port` or `addr`).
    pub ssl: bool,
    /// `sni <expr>`: the server name sent, a sample of the session (`ssl_fc_sni`,
    /// `req.ssl_sni`, `str(...)`); none by default, as in HAProxy.
    pub sni: Option<crate::rules::Fetch>,
    /// `alpn <proto>,...`: offered to the server.
    pub alpn: Vec<Vec<u8>>,
    /// `crt <file>`: the client certificate shown to the server (chain and key, one PEM file).
    pub crt: Option<PathBuf>,
    /// `ssl-min-ver`, `ssl-max-ver`, `no-tlsv1x`, `force-tlsv1x`, `ciphers`, `ciphersuites`.
    pub tls_tuning: crate::tls::TlsTuning,
    /// `crl-file`: revoked server certificates.
    pub crl_file: Option<PathBuf>,
    /// `verify none|required`; unset: the global `ssl-server-verify` (required by default).
    pub verify: Option<bool>,
    /// `ca-file <path>`: the CAs a verified certificate must chain to.
    pub ca_file: Option<PathBuf>,
    /// `check-sni <name>`: the SNI of TLS checks (the name verified too).
    pub check_sni: Option<String>,
    /// `verifyhost <name>`: the name a verified certificate must carry.
    pub verifyhost: Option<String>,
    /// `id <n>`: forced proxy-unique id (`puid`). After parsing, every `server` line has its
    /// final puid here (forced or assigned as HAProxy does: next free from 1 in file order).
    pub id: Option<u32>,
    /// The puid was forced with `id` (`srv_f_forced_id` in `show servers state`).
    pub forced_id: bool,
    /// `agent-check`: a second, independent check asks an agent on the server how it is
    /// (`up`, `down`, `drain`, `75%`, `maxconn:30`...), so the server's own software can steer
    /// its weight and state; a server is UP only while both checks say so.
    pub agent_check: bool,
    /// `agent-port`: where the agent listens (required with `agent-check`).
    pub agent_port: Option<u16>,
    /// `agent-addr`: the agent's address when it is not the server's.
    pub agent_addr: Option<IpAddr>,
    /// `agent-inter` (unset = 2s, HAProxy's default, whatever `inter` says): time between
    /// two agent checks.
    pub agent_inter: Option<Duration>,
    /// `agent-send`: a string sent to the agent once connected (e.g. the service's name).
    pub agent_send: Option<String>,
    /// `track [<backend>/]<server>`: this server takes the state of another one (checked
    /// there, once), e.g. the same machine in two backends.
    pub track: Option<String>,
}

impl ServerParams {
    /// The PROXY protocol version sent to the server, if any.
    pub fn proxy_protocol(&self) -> Option<ProxyProtocol> {
        if self.send_proxy_v2 {
            Some(ProxyProtocol::V2)
        } else if self.send_proxy {
            Some(ProxyProtocol::V1)
        } else {
            None
        }
    }
}

/// `on-error`: HAProxy's reactions to `error-limit` consecutive errors seen by `observe`
/// (`HANA_ONERR_*`); every one also schedules the next check at `fastinter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// `fastinter` (default): only check sooner.
    #[default]
    FastInter,
    /// `fail-check`: count as one failed check.
    FailCheck,
    /// `sudden-death`: as a failed check that leaves one more before DOWN.
    SuddenDeath,
    /// `mark-down`: the server goes DOWN at once.
    MarkDown,
}

/// A PROXY protocol version (HAProxy's `proxy-protocol.txt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// The human-readable line: `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`.
    V1,
    /// The binary header.
    V2,
}

impl Default for ServerParams {
    fn default() -> Self {
        ServerParams {
            check: false,
            inter: Duration::from_secs(2),
            fastinter: None,
            observe_layer4: false,
            error_limit: 10,
            on_error: OnError::FastInter,
            downinter: None,
            rise: 2,
            fall: 3,
            weight: 1,
            minconn: 0,
            maxconn: 0,
            maxqueue: 0,
            backup: false,
            non_stick: false,
            disabled: false,
            check_port: None,
            check_addr: None,
            slowstart: None,
            shutdown_on_down: false,
            shutdown_backup_on_up: false,
            send_proxy: false,
            send_proxy_v2: false,
            pp2_unique_id: false,
            pp2_tls: Pp2Tls::default(),
            check_send_proxy: false,
            source: None,
            fqdn: None,
            resolvers: None,
            init_addr: None,
            resolve_prefer_v4: false,
            template_slot: None,
            allow_dup_ip: false,
            unresolved: false,
            tcp_ut: None,
            check_ssl: false,
            ssl: false,
            sni: None,
            alpn: Vec::new(),
            crt: None,
            tls_tuning: crate::tls::TlsTuning::default(),
            crl_file: None,
            verify: None,
            ca_file: None,
            check_sni: None,
            verifyhost: None,
            id: None,
            forced_id: false,
            agent_check: false,
            agent_port: None,
            agent_addr: None,
            agent_inter: None,
            agent_send: None,
            track: None,
        }
    }
}

/// One `server` line (or `add server` command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The server's name, unique in its backend.
    pub name: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// Its settings, `default-server` already applied.
    pub params: ServerParams,
    /// Where the line was written (`Location::default()` for `add server`).
    pub location: Location,
}

/// One `bind` address (a `bind` line with `a:1,b:2` yields several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// `accept-proxy`: connections start with a PROXY protocol header (v1 or v2) from a load
    /// balancer in front, which names the real client.
    pub accept_proxy: bool,
    /// `name`: the listener's name in logs (HAProxy's default: its `id`, else its number in the
    /// frontend).
    pub name: Option<String>,
    /// `id`: the listener's number.
    pub id: Option<u32>,
    /// `ssl crt ...`: connections are TLS, ended here with this configuration.
    pub tls: Option<crate::tls::Acceptor>,
    /// TLS settings HAProxy refuses once the configuration is read: the whole message
    /// (`Proxy 'fe': no SSL certificate specified for bind ':443' at [f:3] (use 'crt').`).
    pub tls_problem: Option<String>,
    /// Where the line was written.
    pub location: Location,
}

/// TCP keepalive on one side's connections: a peer that vanished behind a silent network (no
/// FIN, no RST) is found by the kernel and its session freed before `timeout client|server`,
/// or at all when those are long. Unset values keep the system's (`net.ipv4.tcp_keepalive_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keepalive {
    /// `option clitcpka|srvtcpka|tcpka`: SO_KEEPALIVE on.
    pub on: bool,
    /// `*tcpka-idle`: idle time before the first probe (TCP_KEEPIDLE).
    pub idle: Option<Duration>,
    /// `*tcpka-intvl`: time between probes (TCP_KEEPINTVL).
    pub intvl: Option<Duration>,
    /// `*tcpka-cnt`: unanswered probes before the connection is dropped (TCP_KEEPCNT).
    pub cnt: Option<u32>,
}

/// A `frontend`, `backend` or `listen` section, with its `defaults` applied.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Section name.
    pub name: String,
    /// frontend / backend / both.
    pub cap: Capabilities,
    /// `id <n>`, or after parsing the final uuid assigned as HAProxy 3.x does: in file order, the
    /// next free id starting at 2 (HAProxy skips 1 for historical reasons; the reference
    /// transcript shows `fe` = 2, `test` = 3), each proxy, forced or not, moving the cursor on.
    pub id: Option<u32>,
    /// The uuid was forced with `id` (`bk_f_forced_id` in `show servers state`).
    pub forced_id: bool,
    /// `mode` (tcp; http only as inherited from a `defaults` section, see [`HttpDefaults`]).
    pub mode: ProxyMode,
    /// What a `defaults` section in `mode http` left to check (parse time only).
    pub http_defaults: HttpDefaults,
    /// The statistics page, when a `stats` keyword enabled it (served only in `mode http`).
    pub stats: Option<StatsPage>,
    /// `source`: where connections to the servers (and checks) come from.
    pub source: Option<SourceAddr>,
    /// A `retry-on` list without `conn-failure` (or `all-retryable-errors`), `none` among
    /// them: a failed connect is not retried (whatever `retries` says), as in HAProxy.
    pub conn_retries_off: bool,
    /// `load-server-state-from-file global|local|none`.
    pub load_server_state: LoadServerState,
    /// `server-state-file-name [<name>|use-backend-name]`: the file `local` reads (default:
    /// the backend's name, under `server-state-base`).
    pub server_state_file_name: Option<String>,
    /// `bind` addresses.
    pub binds: Vec<BindConfig>,
    /// `backlog <n>` for listeners (default: maxconn).
    pub backlog: Option<u32>,
    /// `default_backend <name>`; checked to exist.
    pub default_backend: Option<String>,
    /// `acl`, `tcp-request` and `use_backend` lines.
    pub rules: crate::rules::Rules,
    /// `stick-table ...`: the proxy's table (named after it), and where it was written.
    pub stick_table: Option<(crate::stick::TableConfig, Location)>,
    /// `balance <algo>`.
    pub balance: BalanceAlgo,
    /// `hash-type map-based|consistent`.
    pub hash_type: HashType,
    /// `hash-type <type> <function> avalanche`, or `hash-type consistent` alone: the address
    /// hash goes through HAProxy's `full_hash` first.
    pub hash_avalanche: bool,
    /// `hash-type <type> <function>`: what hashes an `rdp-cookie` (the address of `balance
    /// source` is hashed its own way).
    pub hash_function: HashFunction,
    /// `balance rdp-cookie[(<name>)]`: the cookie hashed (default `mstshash`).
    pub rdp_cookie: String,
    /// `persist rdp-cookie[(<name>)]`: a client whose cookie (default `msts`) names a
    /// server's address and port goes to that server.
    pub persist_rdp: Option<String>,
    /// `timeout *`.
    pub timeouts: Timeouts,
    /// `retries <n>` (default 3).
    pub retries: u32,
    /// `option redispatch`.
    pub redispatch: bool,
    /// `option redispatch <interval>`: redispatch on every Nth retry, or on the Nth before the
    /// last when negative (HAProxy's default -1: the last retry).
    pub redispatch_after: i32,
    /// `maxconn <n>` (frontend: concurrent connections; default 0 = global maxconn).
    pub maxconn: u32,
    /// `rate-limit sessions <n>` (frontend): new sessions per second, 0 = no limit; above it
    /// the frontend stops accepting until the rate falls again.
    pub rate_limit_sessions: u32,
    /// `fullconn <n>` (backend; accepted, used for dynamic maxconn).
    pub fullconn: Option<u32>,
    /// `option allbackups`.
    pub allbackups: bool,
    /// `default-server` values (applied to every `server` line already; kept for `add server`).
    pub default_server: ServerParams,
    /// `server` lines in order.
    pub servers: Vec<ServerConfig>,
    /// Health check kind.
    pub check: CheckKind,
    /// `tcp-check` rules (or those of a protocol check such as `option redis-check`), run by
    /// the checks when `check` is `TcpCheck`.
    pub tcp_check_rules: Vec<crate::config::tcp_check::TcpCheckRule>,
    /// `tcp_check_rules` are a protocol check's (`option redis-check`...), not `tcp-check`
    /// lines: a later `option tcp-check` or `tcp-check` line starts from none, as in HAProxy.
    pub tcp_check_proto: bool,
    /// `email-alert *`.
    pub email_alert: EmailAlert,
    /// `option log-health-checks`.
    pub log_health_checks: bool,
    /// `option tcplog`.
    pub tcplog: bool,
    /// `log-format <fmt>` as written and where (the last of it and `option tcplog` wins; the
    /// format is compiled once the proxy is complete, for each proxy that inherits it).
    pub log_format: Option<(String, Location)>,
    /// `error-log-format <fmt>` as written and where: the line of a connection that never
    /// became a session (a PROXY header error), instead of HAProxy's legacy text.
    pub error_log_format: Option<(String, Location)>,
    /// The compiled `error-log-format`. Set by the config check.
    pub error_log: Option<std::sync::Arc<crate::rules::logformat::LogFormat>>,
    /// `unique-id-format <fmt>` as written and where (compiled with the log format).
    pub unique_id_format: Option<(String, Location)>,
    /// The compiled `unique-id-format`: what `%ID` prints. Set by the config check.
    pub unique_id: Option<std::sync::Arc<crate::rules::logformat::LogFormat>>,
    /// The format of this frontend's session log lines: `log-format`'s, or `option
    /// tcplog`'s; `None`: sessions are not logged. Set by the config check.
    pub session_log: Option<std::sync::Arc<crate::rules::logformat::LogFormat>>,
    /// `log` lines (`log global` included as `LogTarget::Global`).
    pub logs: Vec<LogTarget>,
    /// `log-tag`: this proxy's syslog tag, over the global one.
    pub log_tag: Option<String>,
    /// `option dontlognull`: no log line for a connection whose client sent nothing (a
    /// balancer's or a monitor's probe).
    pub dontlognull: bool,
    /// `option logasap`: a session is logged once its server connection is made, its total
    /// time and byte count (what is known then) marked with `+`.
    pub logasap: bool,
    /// `option log-separate-errors`: a session that failed (an error state, a retry, a
    /// redispatch) is logged at `err` rather than `info`.
    pub log_separate_errors: bool,
    /// `option dontlog-normal`: only such failed sessions are logged.
    pub dontlog_normal: bool,
    /// `option splice-*` / `no option splice-*`.
    pub splice: Splice,
    /// `option clitcpka` (or `tcpka`) and `clitcpka-*`: keepalive probes on client connections.
    pub cli_ka: Keepalive,
    /// `option srvtcpka` (or `tcpka`) and `srvtcpka-*`: keepalive probes on server connections.
    pub srv_ka: Keepalive,
    /// `option nolinger`: in a frontend, a client connection closed before the client's FIN is
    /// reset after harp's own FIN, so it does not linger in FIN_WAIT. In a backend, the end of
    /// the client's direction reaches the server as a reset instead of a FIN, as in HAProxy.
    /// Server connections closed before the server's FIN are reset with or without it
    /// (HAProxy's linger risk).
    pub nolinger: bool,
    /// `disabled` proxy keyword.
    pub disabled: bool,
    /// Where the section starts.
    pub location: Location,
}

impl ProxyConfig {
    /// Whether its balancing is dynamic (weights change freely, `add server` works): not
    /// `static-rr`, nor a map-based hash, as HAProxy judges it.
    pub fn lb_is_dynamic(&self) -> bool {
        self.balance.is_dynamic()
            && !(self.balance.hashes() && self.hash_type == HashType::MapBased)
    }

    /// Every pattern list the proxy uses: its rules' and its log format's map files, in the
    /// order they were made.
    pub fn pattern_refs(&self) -> Vec<&std::sync::Arc<crate::rules::patref::PatRef>> {
        let mut all = self.rules.pattern_refs();
        if let Some(f) = &self.session_log {
            all.extend(f.fetches().flat_map(|x| x.maps()));
            all.sort_by_key(|r| r.seq());
            all.dedup_by(|a, b| std::sync::Arc::ptr_eq(a, b));
        }
        all
    }

    /// A proxy with HAProxy's defaults and no servers or binds, as a `defaults`-less section
    /// would be.
    pub fn new(name: &str, cap: Capabilities, location: Location) -> Self {
        ProxyConfig {
            name: name.to_string(),
            log_tag: None,
            dontlognull: false,
            logasap: false,
            log_separate_errors: false,
            dontlog_normal: false,
            cap,
            id: None,
            forced_id: false,
            mode: ProxyMode::Tcp,
            http_defaults: HttpDefaults::default(),
            stats: None,
            source: None,
            conn_retries_off: false,
            load_server_state: LoadServerState::None,
            server_state_file_name: None,
            binds: Vec::new(),
            backlog: None,
            default_backend: None,
            rules: crate::rules::Rules::default(),
            stick_table: None,
            balance: BalanceAlgo::RoundRobin,
            hash_type: HashType::MapBased,
            hash_avalanche: false,
            hash_function: HashFunction::Sdbm,
            rdp_cookie: "mstshash".into(),
            persist_rdp: None,
            timeouts: Timeouts::default(),
            retries: 3,
            redispatch: false,
            redispatch_after: -1,
            rate_limit_sessions: 0,
            maxconn: 0,
            fullconn: None,
            allbackups: false,
            default_server: ServerParams::default(),
            servers: Vec::new(),
            check: CheckKind::Tcp,
            tcp_check_rules: Vec::new(),
            tcp_check_proto: false,
            email_alert: EmailAlert::default(),
            log_health_checks: false,
            tcplog: false,
            log_format: None,
            unique_id_format: None,
            error_log_format: None,
            error_log: None,
            unique_id: None,
            session_log: None,
            logs: Vec::new(),
            splice: Splice::default(),
            cli_ka: Keepalive::default(),
            srv_ka: Keepalive::default(),
            nolinger: false,
            disabled: false,
            location,
        }
    }
}

/// A `peers <name>` section: the processes sharing the stick tables that name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeersConfig {
    /// Section name.
    pub name: String,
    /// `peer <name> <addr>:<port>` and `server <name> [<addr>:<port>]` lines, in order; the
    /// one named as this process (`-L`, `localpeer`, else the host name) is the local peer.
    pub peers: Vec<PeerConfig>,
    /// `bind <addr>:<port>`: where the local peer listens when its `server` line has no
    /// address.
    pub bind: Option<SocketAddr>,
    /// `disabled`: the section shares nothing.
    pub disabled: bool,
    /// `table <name> type ...` lines: tables of the section itself, named
    /// `<section>/<name>` elsewhere (`track-sc0 src table mypeers/t1`).
    pub tables: Vec<PeersTable>,
    /// The local peer's name, once known (see [`Config::set_local_peer`]); `None` when the
    /// section has no peer of that name, and so shares nothing (HAProxy removes it).
    pub local: Option<String>,
    /// Where the section starts.
    pub location: Location,
}

impl PeersConfig {
    /// The name a `table` line's table goes by elsewhere: `<section>/<name>`.
    pub fn table_name(&self, t: &PeersTable) -> String {
        format!("{}/{}", self.name, t.name)
    }

    /// Where the local peer listens.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        let local = self.local.as_deref()?;
        self.peers
            .iter()
            .find(|p| p.name == local)
            .and_then(|p| p.addr)
            .or(self.bind)
    }

    /// The other peers, with their addresses.
    pub fn remotes(&self) -> impl Iterator<Item = (&str, SocketAddr)> {
        self.peers
            .iter()
            .filter(move |p| Some(p.name.as_str()) != self.local.as_deref())
            .filter_map(|p| p.addr.map(|a| (p.name.as_str(), a)))
    }
}

/// A `table` line of a `peers` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeersTable {
    /// Its name in the section (what peers know it by).
    pub name: String,
    /// The rest of the line, as a `stick-table` line reads.
    pub config: crate::stick::TableConfig,
    /// Where the line is.
    pub location: Location,
}

/// One `peer` (or `server`) line of a `peers` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's name: the host name or `-L` name of that process.
    pub name: String,
    /// Where it listens (`None`: a `server` line without address, for the local peer).
    pub addr: Option<SocketAddr>,
    /// Where the line is.
    pub location: Location,
}

/// A `mailers <name>` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailersConfig {
    /// Section name.
    pub name: String,
    /// `mailer <name> <addr>:<port>` lines in order.
    pub mailers: Vec<(String, SocketAddr)>,
    /// `timeout mail <time>` (default 10s).
    pub timeout_mail: Duration,
    /// Where the section starts.
    pub location: Location,
}

/// A `resolvers <name>` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolversConfig {
    /// Section name.
    pub name: String,
    /// `nameserver <name> <addr>:<port>` lines.
    pub nameservers: Vec<(String, SocketAddr)>,
    /// `hold valid <time>`: how long an answer is used before the name is asked again (10s).
    pub hold_valid: Duration,
    /// `hold nx <time>`: how long a name may not exist (NXDOMAIN) after its last valid answer
    /// before its servers go into maintenance (30s).
    pub hold_nx: Duration,
    /// `hold timeout <time>`: the same when no name server answers (30s).
    pub hold_timeout: Duration,
    /// `hold refused <time>`: the same when the name servers refuse (30s).
    pub hold_refused: Duration,
    /// `hold other <time>`: the same for any other failure (30s).
    pub hold_other: Duration,
    /// `timeout resolve <time>`: how soon a failed resolution is tried again (1s).
    pub timeout_resolve: Duration,
    /// `timeout retry <time>`: the wait for an answer before asking again (1s).
    pub timeout_retry: Duration,
    /// `resolve_retries <n>`: questions per resolution before it fails (3).
    pub resolve_retries: u32,
    /// `accepted_payload_size <n>` (512): the answer size announced with EDNS0, as HAProxy
    /// does; Kubernetes and Consul setups raise it for names with many addresses.
    pub accepted_payload_size: u16,
    /// Where the section starts.
    pub location: Location,
}
