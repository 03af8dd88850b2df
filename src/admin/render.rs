//! Stats renderings in HAProxy 3.2's formats: `show info`, `show stat` (CSV, typed, JSON),
//! `show servers state` and `show backend`. Column names and order are what exporters parse.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::parse::{Format, StatFilter};
use crate::model::{OpState, Proxy, Registry, Server};

/// A stats value, typed as HAProxy types it (the type shows in `typed`/`json` output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// `str` (may be empty and still present).
    Str(String),
    /// `u32`.
    U32(u64),
    /// `u64`.
    U64(u64),
    /// `s32`.
    S32(i64),
}

impl Val {
    fn type_name(&self) -> &'static str {
        match self {
            Val::Str(_) => "str",
            Val::U32(_) => "u32",
            Val::U64(_) => "u64",
            Val::S32(_) => "s32",
        }
    }
}

impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Str(s) => f.write_str(s),
            Val::U32(v) | Val::U64(v) => write!(f, "{v}"),
            Val::S32(v) => write!(f, "{v}"),
        }
    }
}

/// Number of generic stats fields before the `-` module separator in CSV.
const GENERIC: usize = 113;

/// Every `show stat` field in order (the CSV `-` separator excluded) with its default tags
/// (origin, nature, scope letters as in `typed` output).
pub const COLUMNS: &[(&str, &str)] = &[
    ("pxname", "KNS"),
    ("svname", "KNS"),
    ("qcur", "MGP"),
    ("qmax", "MMP"),
    ("scur", "MGP"),
    ("smax", "MMP"),
    ("slim", "CLP"),
    ("stot", "MCP"),
    ("bin", "MCP"),
    ("bout", "MCP"),
    ("dreq", "MCP"),
    ("dresp", "MCP"),
    ("ereq", "MCP"),
    ("econ", "MCP"),
    ("eresp", "MCP"),
    ("wretr", "MCP"),
    ("wredis", "MCP"),
    ("status", "SGP"),
    ("weight", "MaP"),
    ("act", "SGP"),
    ("bck", "SGP"),
    ("chkfail", "MCP"),
    ("chkdown", "MCP"),
    ("lastchg", "MAP"),
    ("downtime", "MCP"),
    ("qlimit", "MCP"),
    ("pid", "KGP"),
    ("iid", "KGS"),
    ("sid", "KGS"),
    ("throttle", "MCP"),
    ("lbtot", "MCP"),
    ("tracked", "MCP"),
    ("type", "CGS"),
    ("rate", "MRP"),
    ("rate_lim", "CLP"),
    ("rate_max", "MMP"),
    ("check_status", "MOP"),
    ("check_code", "MOP"),
    ("check_duration", "MDP"),
    ("hrsp_1xx", "MCP"),
    ("hrsp_2xx", "MCP"),
    ("hrsp_3xx", "MCP"),
    ("hrsp_4xx", "MCP"),
    ("hrsp_5xx", "MCP"),
    ("hrsp_other", "MCP"),
    ("hanafail", "MCP"),
    ("req_rate", "MRP"),
    ("req_rate_max", "MMP"),
    ("req_tot", "MCP"),
    ("cli_abrt", "MCP"),
    ("srv_abrt", "MCP"),
    ("comp_in", "MCP"),
    ("comp_out", "MCP"),
    ("comp_byp", "MCP"),
    ("comp_rsp", "MCP"),
    ("lastsess", "MAP"),
    ("last_chk", "MOP"),
    ("last_agt", "MOP"),
    ("qtime", "MaP"),
    ("ctime", "MaP"),
    ("rtime", "MaP"),
    ("ttime", "MaP"),
    ("agent_status", "MCP"),
    ("agent_code", "MCP"),
    ("agent_duration", "MCP"),
    ("check_desc", "MOP"),
    ("agent_desc", "MCP"),
    ("check_rise", "CGS"),
    ("check_fall", "CGS"),
    ("check_health", "CGS"),
    ("agent_rise", "MCP"),
    ("agent_fall", "MCP"),
    ("agent_health", "MCP"),
    ("addr", "CGS"),
    ("cookie", "MCP"),
    ("mode", "CGS"),
    ("algo", "CGS"),
    ("conn_rate", "MRP"),
    ("conn_rate_max", "MMP"),
    ("conn_tot", "MCP"),
    ("intercepted", "MCP"),
    ("dcon", "MCP"),
    ("dses", "MCP"),
    ("wrew", "MCP"),
    ("connect", "MCP"),
    ("reuse", "MCP"),
    ("cache_lookups", "MCP"),
    ("cache_hits", "MCP"),
    ("srv_icur", "MGP"),
    ("src_ilim", "MCP"),
    ("qtime_max", "MMP"),
    ("ctime_max", "MMP"),
    ("rtime_max", "MMP"),
    ("ttime_max", "MMP"),
    ("eint", "MCP"),
    ("idle_conn_cur", "MGP"),
    ("safe_conn_cur", "MGP"),
    ("used_conn_cur", "MGP"),
    ("need_conn_est", "MGP"),
    ("uweight", "MaP"),
    ("agg_server_status", "MGP"),
    ("agg_server_check_status", "MGP"),
    ("agg_check_status", "MGP"),
    ("srid", "MCP"),
    ("sess_other", "MCP"),
    ("h1sess", "MCP"),
    ("h2sess", "MCP"),
    ("h3sess", "MCP"),
    ("req_other", "MCP"),
    ("h1req", "MCP"),
    ("h2req", "MCP"),
    ("h3req", "MCP"),
    ("proto", "MCP"),
    ("ssl_sess", "MCP"),
    ("ssl_reused_sess", "MCP"),
    ("ssl_failed_handshake", "MCP"),
    ("ssl_ocsp_staple", "MCP"),
    ("ssl_failed_ocsp_staple", "MCP"),
    ("h2_headers_rcvd", "MCP"),
    ("h2_data_rcvd", "MCP"),
    ("h2_settings_rcvd", "MCP"),
    ("h2_rst_stream_rcvd", "MCP"),
    ("h2_goaway_rcvd", "MCP"),
    ("h2_detected_conn_protocol_errors", "MCP"),
    ("h2_detected_strm_protocol_errors", "MCP"),
    ("h2_rst_stream_resp", "MCP"),
    ("h2_goaway_resp", "MCP"),
    ("h2_open_connections", "MGP"),
    ("h2_backend_open_streams", "MGP"),
    ("h2_total_connections", "MCP"),
    ("h2_backend_total_streams", "MCP"),
    ("h1_open_connections", "MGP"),
    ("h1_open_streams", "MGP"),
    ("h1_total_connections", "MCP"),
    ("h1_total_streams", "MCP"),
    ("h1_bytes_in", "MCP"),
    ("h1_bytes_out", "MCP"),
    ("h1_spliced_bytes_in", "MCP"),
    ("h1_spliced_bytes_out", "MCP"),
];

fn col(name: &str) -> usize {
    COLUMNS
        .iter()
        .position(|(n, _)| *n == name)
        .unwrap_or(usize::MAX)
}

/// The CSV header line of `show stat`.
pub fn stat_header() -> String {
    let mut h = String::from("# ");
    for (i, (n, _)) in COLUMNS.iter().enumerate() {
        if i == GENERIC {
            h.push_str("-,");
        }
        h.push_str(n);
        h.push(',');
    }
    h.push('\n');
    h
}

/// Which kind of object a stats row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// A frontend (`FRONTEND`).
    Frontend,
    /// A backend (`BACKEND`).
    Backend,
    /// A server.
    Server,
}

/// One `show stat` row.
#[derive(Debug, Clone)]
pub struct Row {
    /// What it is.
    pub kind: RowKind,
    /// Proxy uuid.
    pub iid: u32,
    /// Server id (0 for proxies).
    pub sid: u32,
    /// Values by column, `None` = absent (empty in CSV).
    pub vals: Vec<Option<Val>>,
}

impl Row {
    fn new(kind: RowKind, iid: u32, sid: u32) -> Row {
        Row {
            kind,
            iid,
            sid,
            vals: vec![None; COLUMNS.len()],
        }
    }

    fn set(&mut self, name: &str, v: Val) {
        if let Some(slot) = self.vals.get_mut(col(name)) {
            *slot = Some(v);
        }
    }

    fn zeros_u64(&mut self, names: &[&str]) {
        for n in names {
            self.set(n, Val::U64(0));
        }
    }

    fn zeros_u32(&mut self, names: &[&str]) {
        for n in names {
            self.set(n, Val::U32(0));
        }
    }

    /// A value by column name (tests, filters).
    pub fn get(&self, name: &str) -> Option<&Val> {
        self.vals.get(col(name)).and_then(|v| v.as_ref())
    }

    fn tags(&self, idx: usize) -> &'static str {
        let name = COLUMNS[idx].0;
        if self.kind == RowKind::Backend && matches!(name, "act" | "bck" | "rate_max") {
            return "MGP";
        }
        COLUMNS[idx].1
    }

    fn csv(&self, out: &mut String) {
        for (i, v) in self.vals.iter().enumerate() {
            if i == GENERIC {
                out.push_str("-,");
            }
            if let Some(v) = v {
                let _ = write!(out, "{v}");
            }
            out.push(',');
        }
        out.push('\n');
    }

    fn letter(&self) -> char {
        match self.kind {
            RowKind::Frontend => 'F',
            RowKind::Backend => 'B',
            RowKind::Server => 'S',
        }
    }

    fn typed(&self, out: &mut String) {
        for (i, v) in self.vals.iter().enumerate() {
            if let Some(v) = v {
                let _ = writeln!(
                    out,
                    "{}.{}.{}.{}.{}.1:{}:{}:{}",
                    self.letter(),
                    self.iid,
                    self.sid,
                    i,
                    COLUMNS[i].0,
                    self.tags(i),
                    v.type_name(),
                    v
                );
            }
        }
    }

    fn json(&self, out: &mut String) {
        let obj = match self.kind {
            RowKind::Frontend => "Frontend",
            RowKind::Backend => "Backend",
            RowKind::Server => "Server",
        };
        out.push('[');
        let mut first = true;
        for (i, v) in self.vals.iter().enumerate() {
            let Some(v) = v else { continue };
            if !first {
                out.push(',');
            }
            first = false;
            let t = self.tags(i).as_bytes();
            let value = match v {
                Val::Str(s) => json_str(s),
                other => other.to_string(),
            };
            let _ = write!(
                out,
                "{{\"objType\":\"{obj}\",\"proxyId\":{},\"id\":{},\"field\":{{\"pos\":{i},\"name\":\"{}\"}},\"processNum\":1,\"tags\":{{\"origin\":\"{}\",\"nature\":\"{}\",\"scope\":\"{}\"}},\"value\":{{\"type\":\"{}\",\"value\":{value}}}}}",
                self.iid,
                self.sid,
                COLUMNS[i].0,
                origin(t[0]),
                nature(t[1]),
                scope(t[2]),
                v.type_name(),
            );
        }
        out.push(']');
    }
}

fn origin(c: u8) -> &'static str {
    match c {
        b'M' => "Metric",
        b'S' => "Status",
        b'K' => "Key",
        b'C' => "Config",
        _ => "Product",
    }
}

fn nature(c: u8) -> &'static str {
    match c {
        b'A' => "Age",
        b'a' => "Avg",
        b'C' => "Counter",
        b'D' => "Duration",
        b'G' => "Gauge",
        b'L' => "Limit",
        b'M' => "Max",
        b'N' => "Name",
        b'O' => "Output",
        b'R' => "Rate",
        _ => "Time",
    }
}

fn scope(c: u8) -> &'static str {
    match c {
        b'P' => "Process",
        b'S' => "Service",
        _ => "System",
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn ld(a: &std::sync::atomic::AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn now() -> u64 {
    crate::model::unix_now().max(0) as u64
}

const MODULE_SSL: &[&str] = &[
    "ssl_sess",
    "ssl_reused_sess",
    "ssl_failed_handshake",
    "ssl_ocsp_staple",
    "ssl_failed_ocsp_staple",
];

fn module_h2_h1(r: &mut Row) {
    let start = col("h2_headers_rcvd");
    for i in start..COLUMNS.len() {
        r.vals[i] = Some(Val::U64(0));
    }
}

/// The global connection limit as `show info` and frontends report it.
pub fn global_maxconn(reg: &Registry) -> u32 {
    u32::try_from(reg.maxconn()).unwrap_or(u32::MAX)
}

/// A frontend's `slim`: its own limit, else the global one.
fn fe_maxconn(reg: &Registry, p: &Proxy) -> u32 {
    p.maxconn().unwrap_or_else(|| global_maxconn(reg))
}

/// The frontend row of a proxy.
pub fn frontend_row(reg: &Registry, p: &Proxy) -> Row {
    let c = &p.counters;
    let mut r = Row::new(RowKind::Frontend, p.uuid, 0);
    r.set("pxname", Val::Str(p.name.to_string()));
    r.set("svname", Val::Str("FRONTEND".into()));
    r.set("scur", Val::U32(ld(&c.cur_sess)));
    r.set("smax", Val::U32(ld(&c.max_sess)));
    r.set("slim", Val::U32(fe_maxconn(reg, p) as u64));
    r.set("stot", Val::U64(ld(&c.tot_sess)));
    r.set("bin", Val::U64(ld(&c.bytes_in)));
    r.set("bout", Val::U64(ld(&c.bytes_out)));
    r.set("dreq", Val::U64(ld(&c.denied_req)));
    r.set("dresp", Val::U64(0));
    r.set("ereq", Val::U64(0));
    let status = if p.stopped.load(Ordering::Relaxed) {
        "STOP"
    } else if p.paused.load(Ordering::Relaxed) {
        "PAUSED"
    } else {
        "OPEN"
    };
    r.set("status", Val::Str(status.into()));
    r.set("pid", Val::U32(1));
    r.set("iid", Val::U32(p.uuid as u64));
    r.set("sid", Val::U32(0));
    r.set("type", Val::U32(0));
    // in TCP every connection is one session
    r.set("rate", Val::U32(c.conn_rate.read()));
    r.set("rate_max", Val::U32(c.conn_rate.max()));
    r.set(
        "rate_lim",
        Val::U32(u64::from(p.config.rate_limit_sessions)),
    );
    r.zeros_u32(&["req_rate", "req_rate_max"]);
    r.zeros_u64(&["req_tot", "comp_in", "comp_out", "comp_byp", "comp_rsp"]);
    r.set("mode", Val::Str(p.config.mode.name().into()));
    r.set("conn_rate", Val::U32(c.conn_rate.read()));
    r.set("conn_rate_max", Val::U32(c.conn_rate.max()));
    r.set("conn_tot", Val::U64(ld(&c.cum_conn)));
    r.set("dcon", Val::U64(ld(&c.denied)));
    r.set("dses", Val::U64(ld(&c.denied_sess)));
    r.zeros_u64(&["wrew", "eint"]);
    r.zeros_u64(&[
        "sess_other",
        "h1sess",
        "h2sess",
        "h3sess",
        "req_other",
        "h1req",
        "h2req",
        "h3req",
    ]);
    r.zeros_u64(MODULE_SSL);
    // `bind ... ssl`: handshakes done and failed (a timeout is neither, as in HAProxy)
    r.set("ssl_sess", Val::U64(ld(&c.ssl_sess)));
    r.set(
        "ssl_failed_handshake",
        Val::U64(ld(&c.ssl_failed_handshake)),
    );
    module_h2_h1(&mut r);
    r
}

/// HAProxy's `status` text of a server.
pub fn server_status(s: &Server) -> String {
    let admin = s.admin();
    if admin.0 & crate::model::AdminFlags::RMAINT != 0 {
        return "MAINT (resolution)".into();
    }
    if let (true, Some(t)) = (admin.has(crate::model::AdminFlags::IMAINT), s.tracked()) {
        return format!("MAINT (via {}/{})", t.proxy_name, t.name);
    }
    if admin.maint() {
        return "MAINT".into();
    }
    // a tracking server shows the checks at the end of its chain, with its own state
    let (c, agent) = match s.track_ref() {
        Some(r) => (r.check_state(), r.agent_state().check),
        None => (s.check_state(), s.agent_state().check),
    };
    let enabled = c.configured && c.enabled;
    let h = c.health;
    let top = h.rise + h.fall - 1;
    match s.op_state() {
        OpState::Running | OpState::Starting => {
            let going_down = enabled && h.cur < top;
            if admin.drain() {
                if agent.enabled {
                    // HAProxy's SRV_STATS_STATE_DRAIN_AGENT: the agent may have said drain
                    "DRAIN (agent)".into()
                } else if going_down {
                    format!("DRAIN {}/{}", (h.cur + 1).saturating_sub(h.rise), h.fall)
                } else {
                    "DRAIN".into()
                }
            } else if going_down {
                format!("UP {}/{}", (h.cur + 1).saturating_sub(h.rise), h.fall)
            } else if !enabled {
                "no check".into()
            } else {
                "UP".into()
            }
        }
        OpState::Stopping => {
            if !enabled || h.cur == top {
                "NOLB".into()
            } else {
                format!("NOLB {}/{}", (h.cur + 1).saturating_sub(h.rise), h.fall)
            }
        }
        OpState::Stopped => {
            if agent.enabled && agent.health.cur == 0 {
                "DOWN (agent)".into()
            } else if enabled && h.cur == 0 {
                "DOWN".into()
            } else if enabled || agent.enabled {
                // going up: the health check's progress
                format!("DOWN {}/{}", h.cur, h.rise)
            } else {
                "DOWN".into()
            }
        }
    }
}

/// A server row.
pub fn server_row(p: &Proxy, s: &Server) -> Row {
    let c = &s.counters;
    let mut r = Row::new(RowKind::Server, p.uuid, s.puid);
    let chk = s.check_state();
    let enabled = chk.configured && chk.enabled;
    r.set("pxname", Val::Str(p.name.to_string()));
    r.set("svname", Val::Str(s.name.to_string()));
    r.set("qcur", Val::U32(ld(&c.queue_cur)));
    r.set("qmax", Val::U32(ld(&c.queue_max)));
    if s.params.maxqueue > 0 {
        r.set("qlimit", Val::U32(u64::from(s.params.maxqueue)));
    }
    r.set("scur", Val::U32(ld(&c.cur_sess)));
    r.set("smax", Val::U32(ld(&c.max_sess)));
    if s.maxconn() > 0 {
        // HAProxy shows a server's limit only when it has one
        r.set("slim", Val::U32(u64::from(s.maxconn())));
    }
    r.set("stot", Val::U64(ld(&c.tot_sess)));
    r.set("bin", Val::U64(ld(&c.bytes_in)));
    r.set("bout", Val::U64(ld(&c.bytes_out)));
    r.set("dresp", Val::U64(0));
    r.set("econ", Val::U64(ld(&c.econ)));
    r.set("eresp", Val::U64(ld(&c.eresp)));
    r.set("wretr", Val::U64(ld(&c.wretr)));
    r.set("wredis", Val::U64(ld(&c.wredis)));
    r.set("status", Val::Str(server_status(s)));
    r.set("weight", Val::U32(s.effective_weight() as u64));
    r.set("act", Val::U32(u64::from(!s.params.backup)));
    r.set("bck", Val::U32(u64::from(s.params.backup)));
    let since = now().saturating_sub(s.last_change());
    if enabled {
        r.set("chkfail", Val::U64(ld(&c.chkfail)));
        r.set("chkdown", Val::U64(ld(&c.chkdown)));
    }
    if s.params.observe_layer4 {
        r.set("hanafail", Val::U64(ld(&c.hanafail)));
    }
    r.set("lastchg", Val::U32(since));
    if enabled {
        let mut down = ld(&c.downtime);
        if !s.op_state().is_up() {
            down += since;
        }
        r.set("downtime", Val::U32(down));
    }
    r.set("pid", Val::U32(1));
    r.set("iid", Val::U32(p.uuid as u64));
    r.set("sid", Val::U32(s.puid as u64));
    r.set("lbtot", Val::U64(ld(&c.lbtot)));
    r.set("type", Val::U32(2));
    if let Some(t) = s.tracked() {
        r.set("tracked", Val::Str(format!("{}/{}", t.proxy_name, t.name)));
    }
    r.set("rate", Val::U32(c.sess_rate.read()));
    r.set("rate_max", Val::U32(c.sess_rate.max()));
    if enabled {
        let st = chk.status();
        r.set("check_status", Val::Str(st.short().into()));
        if let Some(last) = &chk.last {
            if st.has_code() {
                let code = last.result.code.unwrap_or(0);
                r.set("check_code", Val::U32(code.max(0) as u64));
            }
            r.set(
                "check_duration",
                Val::U64(last.result.duration_ms.max(0) as u64),
            );
        }
    }
    r.set("cli_abrt", Val::U64(ld(&c.cli_abrt)));
    r.set("srv_abrt", Val::U64(ld(&c.srv_abrt)));
    r.set("lastsess", Val::S32(-1));
    if enabled {
        let info = chk
            .last
            .as_ref()
            .and_then(|l| l.result.info.clone())
            .unwrap_or_default();
        r.set("last_chk", Val::Str(info));
    }
    let agent = s.agent_state().check;
    if agent.enabled {
        // HAProxy fills these only while the agent check is enabled
        let last = agent.last.as_ref();
        let st = last.map_or(crate::model::CheckStatus::Ini, |l| l.result.status);
        r.set("agent_status", Val::Str(st.short().into()));
        if st.has_code() {
            let code = last.and_then(|l| l.result.code).unwrap_or(0);
            r.set("agent_code", Val::U32(code.max(0) as u64));
        }
        let took = last.map_or(0, |l| l.result.duration_ms.max(0));
        r.set("agent_duration", Val::U64(took as u64));
        r.set("agent_desc", Val::Str(st.desc().into()));
        let info = last.and_then(|l| l.result.info.clone()).unwrap_or_default();
        r.set("last_agt", Val::Str(info));
        r.set("agent_rise", Val::U32(agent.health.rise as u64));
        r.set("agent_fall", Val::U32(agent.health.fall as u64));
        r.set("agent_health", Val::U32(agent.health.cur as u64));
    }
    r.zeros_u32(&["qtime", "ctime", "rtime", "ttime"]);
    if enabled {
        r.set("check_desc", Val::Str(chk.status().desc().into()));
        r.set("check_rise", Val::U32(chk.health.rise as u64));
        r.set("check_fall", Val::U32(chk.health.fall as u64));
        r.set("check_health", Val::U32(chk.health.cur as u64));
    }
    r.set("addr", Val::Str(s.addr_text()));
    r.set("mode", Val::Str("tcp".into()));
    r.set("wrew", Val::U64(0));
    r.set("connect", Val::U64(ld(&c.tot_sess)));
    r.set("reuse", Val::U64(0));
    r.set("srv_icur", Val::U32(0));
    r.zeros_u32(&["qtime_max", "ctime_max", "rtime_max", "ttime_max"]);
    r.set("eint", Val::U64(0));
    r.zeros_u32(&[
        "idle_conn_cur",
        "safe_conn_cur",
        "used_conn_cur",
        "need_conn_est",
    ]);
    r.set("uweight", Val::U32(s.uweight() as u64));
    r.set("srid", Val::U32(s.rid as u64));
    r.zeros_u64(MODULE_SSL);
    // `ssl`: handshakes with the server done and failed (every attempt, as HAProxy counts)
    r.set("ssl_sess", Val::U64(ld(&c.ssl_sess)));
    r.set(
        "ssl_failed_handshake",
        Val::U64(ld(&c.ssl_failed_handshake)),
    );
    r
}

/// The backend row of a proxy.
pub fn backend_row(reg: &Registry, p: &Proxy) -> Row {
    let c = &p.counters;
    let servers = p.servers();
    let mut r = Row::new(RowKind::Backend, p.uuid, 0);
    r.set("pxname", Val::Str(p.name.to_string()));
    r.set("svname", Val::Str("BACKEND".into()));
    r.set("qcur", Val::U32(ld(&c.queue_cur)));
    r.set("qmax", Val::U32(ld(&c.queue_max)));
    r.set("scur", Val::U32(ld(&c.cur_sess)));
    r.set("smax", Val::U32(ld(&c.max_sess)));
    r.set("slim", Val::U32(fullconn(p) as u64));
    r.set("stot", Val::U64(ld(&c.tot_sess)));
    r.set("bin", Val::U64(ld(&c.bytes_in)));
    r.set("bout", Val::U64(ld(&c.bytes_out)));
    r.set("dreq", Val::U64(ld(&c.denied_req)));
    r.set("dresp", Val::U64(0));
    r.set("econ", Val::U64(ld(&c.econ)));
    r.set("eresp", Val::U64(ld(&c.eresp)));
    r.set("wretr", Val::U64(ld(&c.wretr)));
    r.set("wredis", Val::U64(ld(&c.wredis)));
    let (act, bck) = (p.srv_act(), p.srv_bck());
    r.set(
        "status",
        Val::Str(if act + bck > 0 { "UP" } else { "DOWN" }.into()),
    );
    let usable = |backup: bool| {
        servers
            .iter()
            .filter(move |s| s.params.backup == backup && s.is_usable())
    };
    let use_backup = act == 0;
    let weight: u64 = usable(use_backup)
        .map(|s| s.effective_weight() as u64)
        .sum();
    let uweight: u64 = usable(use_backup).map(|s| s.uweight() as u64).sum();
    r.set("weight", Val::U32(weight));
    r.set("act", Val::U32(act as u64));
    r.set("bck", Val::U32(bck as u64));
    r.set("chkdown", Val::U64(ld(&c.chkdown)));
    let last = servers
        .iter()
        .map(|s| s.last_change())
        .max()
        .unwrap_or(reg.start_time.max(0) as u64);
    r.set("lastchg", Val::U32(now().saturating_sub(last)));
    r.set("downtime", Val::U32(0));
    r.set("pid", Val::U32(1));
    r.set("iid", Val::U32(p.uuid as u64));
    r.set("sid", Val::U32(0));
    r.set("lbtot", Val::U64(ld(&c.lbtot)));
    r.set("type", Val::U32(1));
    r.set("rate", Val::U32(c.sess_rate.read()));
    r.set("rate_max", Val::U32(c.sess_rate.max()));
    r.set("cli_abrt", Val::U64(ld(&c.cli_abrt)));
    r.set("srv_abrt", Val::U64(ld(&c.srv_abrt)));
    r.zeros_u64(&["comp_in", "comp_out", "comp_byp", "comp_rsp"]);
    r.set("lastsess", Val::S32(-1));
    r.zeros_u32(&["qtime", "ctime", "rtime", "ttime"]);
    r.set("mode", Val::Str(p.config.mode.name().into()));
    r.set("algo", Val::Str(p.config.balance.name().into()));
    r.set("wrew", Val::U64(0));
    r.set("connect", Val::U64(ld(&c.tot_sess)));
    r.set("reuse", Val::U64(0));
    r.zeros_u32(&["qtime_max", "ctime_max", "rtime_max", "ttime_max"]);
    r.set("eint", Val::U64(0));
    r.set("uweight", Val::U32(uweight));
    r.zeros_u32(&[
        "agg_server_status",
        "agg_server_check_status",
        "agg_check_status",
    ]);
    r.zeros_u64(MODULE_SSL);
    // `ssl` servers: the backend's handshakes are its servers'
    let sum = |f: fn(&Server) -> &std::sync::atomic::AtomicU64| {
        servers.iter().map(|s| ld(f(s))).sum::<u64>()
    };
    r.set("ssl_sess", Val::U64(sum(|s| &s.counters.ssl_sess)));
    r.set(
        "ssl_failed_handshake",
        Val::U64(sum(|s| &s.counters.ssl_failed_handshake)),
    );
    module_h2_h1(&mut r);
    r
}

/// A backend's `fullconn`: configured, else 10% of the frontends' maxconn that use it (rounded
/// up), computed once at start as HAProxy does (the model's, which dynamic maxconn uses).
pub fn fullconn(p: &Proxy) -> u32 {
    u32::try_from(p.fullconn()).unwrap_or(u32::MAX)
}

/// Options of a `show stat` dump.
#[derive(Debug, Clone, Default)]
pub struct StatOptions {
    /// Proxy/type/sid filter.
    pub filter: Option<StatFilter>,
    /// Output format.
    pub format: Format,
    /// Only servers that are up.
    pub up: bool,
    /// Hide servers in maintenance.
    pub no_maint: bool,
}

/// Every row `show stat` prints, in HAProxy's order (per proxy: FRONTEND, servers, BACKEND).
pub fn stat_rows(reg: &Registry, o: &StatOptions) -> Result<Vec<Row>, String> {
    let (only, types, sid) = match &o.filter {
        Some(f) => {
            let uuid = reg
                .proxies()
                .iter()
                .find(|p| *p.name == *f.proxy)
                .map(|p| p.uuid)
                .or_else(|| f.proxy.parse::<u32>().ok().filter(|v| *v != 0));
            match uuid {
                Some(u) => (Some(u), f.types, f.sid),
                None => return Err("No such proxy.".into()),
            }
        }
        None => (None, -1, -1),
    };
    let want = |bit: i64| types == -1 || types & bit != 0;
    let mut rows = Vec::new();
    for p in reg.proxies() {
        if only.is_some_and(|u| u != p.uuid) {
            continue;
        }
        if p.is_frontend() && want(1) {
            rows.push(frontend_row(reg, p));
        }
        if p.is_backend() {
            if want(4) {
                for s in p.servers().iter() {
                    if sid != -1 && s.puid as i64 != sid {
                        continue;
                    }
                    if o.no_maint && s.admin().maint() {
                        continue;
                    }
                    if o.up && (!s.op_state().is_up() || s.admin().maint()) {
                        continue;
                    }
                    rows.push(server_row(p, s));
                }
            }
            if want(2) {
                rows.push(backend_row(reg, p));
            }
        }
    }
    Ok(rows)
}

/// `show stat` in the requested format.
pub fn show_stat(reg: &Registry, o: &StatOptions) -> Result<String, String> {
    let rows = stat_rows(reg, o)?;
    let mut out = String::new();
    match o.format {
        Format::Plain => {
            out.push_str(&stat_header());
            for r in &rows {
                r.csv(&mut out);
            }
        }
        Format::Typed => {
            for r in &rows {
                r.typed(&mut out);
            }
        }
        Format::Json => {
            out.push('[');
            for (i, r) in rows.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                r.json(&mut out);
            }
            out.push_str("]\n");
        }
    }
    Ok(out)
}

/// `show servers state [<backend>]`.
pub fn servers_state(reg: &Registry, backend: Option<&str>) -> Result<String, String> {
    let proxies: Vec<_> = match backend {
        Some(b) => vec![reg.backend(b).ok_or("Can't find backend.")?.clone()],
        None => reg
            .proxies()
            .iter()
            .filter(|p| p.is_backend())
            .cloned()
            .collect(),
    };
    let mut out = String::from("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n");
    let t = now();
    for p in &proxies {
        for s in p.servers().iter() {
            let c = s.check_state();
            let a = s.agent_state();
            let addr = s.addr();
            let result = c.last.as_ref().map(|l| l.outcome as u8).unwrap_or(0);
            let check_addr = s
                .params
                .check_addr
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} - 0 {} {} {} {}",
                p.uuid,
                p.name,
                s.puid,
                s.name,
                addr.ip(),
                s.op_state() as u8,
                s.admin().0,
                s.uweight(),
                s.iweight(),
                t.saturating_sub(s.last_change()),
                c.status() as u8,
                result,
                // HAProxy zeroes the health counter when a server enters maintenance.
                if s.admin().maint() { 0 } else { c.health.cur },
                // HAProxy's CHK_ST_PAUSED (0x08): maintenance pauses an enabled check
                c.flags()
                    | if c.enabled && s.admin().maint() {
                        0x08
                    } else {
                        0
                    },
                agent_flags(&a.check),
                u8::from(p.config.forced_id),
                u8::from(s.params.forced_id),
                s.params.fqdn.as_deref().unwrap_or("-"),
                addr.port(),
                s.params.check_port.unwrap_or(0),
                check_addr,
                a.addr.map_or_else(|| "-".to_string(), |ip| ip.to_string()),
                a.port,
            );
        }
    }
    Ok(out)
}

/// HAProxy's `srv_agent_state`: its check flags plus CHK_ST_AGENT (0x10), 0 without agent.
fn agent_flags(c: &crate::model::CheckState) -> u32 {
    match c.flags() {
        0 => 0,
        f => f | 0x10,
    }
}

/// `show backend`.
pub fn show_backend(reg: &Registry) -> String {
    let mut out = String::from("# name\n");
    for p in reg.proxies().iter().filter(|p| p.is_backend()) {
        out.push_str(&p.name);
        out.push('\n');
    }
    out
}

/// `show info` lines as (name, value, tags) in HAProxy's order, harp's own fields appended.
pub fn info_fields(reg: &Registry, extra: &[(String, String)]) -> Vec<(String, Val, &'static str)> {
    use crate::model::RateLimit;
    let g = &reg.counters;
    let up = reg.started.elapsed().as_secs();
    let uptime = format!(
        "{}d {}h{:02}m{:02}s",
        up / 86400,
        (up / 3600) % 24,
        (up / 60) % 60,
        up % 60
    );
    let nbthread = reg.nbthread();
    let maxconn = global_maxconn(reg) as u64;
    // as HAProxy's: the fds it plans for, not the limit it runs under
    let ulimit = reg.maxsock();
    let listeners: usize = reg
        .proxies()
        .iter()
        .map(|p| p.config.binds.len())
        .sum::<usize>()
        + reg.global().stats_sockets.len();
    let node = reg
        .global()
        .node
        .clone()
        .or_else(crate::sys::hostname)
        .unwrap_or_default();
    let version = env!("CARGO_PKG_VERSION");
    let s = |v: &str| Val::Str(v.to_string());
    let u = Val::U32;
    let u64v = Val::U64;
    let cur = ld(&g.cur_conns);
    let mut f: Vec<(String, Val, &'static str)> = vec![
        ("Name".into(), s("harp"), "POS"),
        ("Version".into(), s(version), "POS"),
        ("Release_date".into(), s("2026/11/24"), "POS"),
        ("Nbthread".into(), u(nbthread as u64), "CGS"),
        ("Nbproc".into(), u(1), "CGS"),
        ("Process_num".into(), u(1), "KGP"),
        ("Pid".into(), u(std::process::id() as u64), "SGP"),
        ("Uptime".into(), s(&uptime), "MDP"),
        ("Uptime_sec".into(), u(up), "MDP"),
        ("Memmax_MB".into(), u(0), "CLP"),
        ("PoolAlloc_MB".into(), u(0), "MGP"),
        ("PoolUsed_MB".into(), u(0), "MGP"),
        ("PoolFailed".into(), u(0), "MCP"),
        ("Ulimit-n".into(), u(ulimit), "CLP"),
        ("Maxsock".into(), u(ulimit), "CLP"),
        ("Maxconn".into(), u(maxconn), "CLP"),
        ("Hard_maxconn".into(), u(reg.hard_maxconn()), "CLP"),
        ("CurrConns".into(), u(cur), "MGP"),
        ("CumConns".into(), u(ld(&g.cum_conns)), "MCP"),
        ("CumReq".into(), u(ld(&g.cum_req)), "MCP"),
        (
            "MaxSslConns".into(),
            u(u64::from(reg.global().maxsslconn)),
            "CLP",
        ),
        ("CurrSslConns".into(), u(ld(&g.cur_ssl_conns)), "MGP"),
        ("CumSslConns".into(), u(ld(&g.cum_ssl_conns)), "MCP"),
        (
            "Maxpipes".into(),
            u(u64::from(reg.global().maxpipes.unwrap_or(0))),
            "CLP",
        ),
        ("PipesUsed".into(), u(ld(&g.pipes_used)), "MGP"),
        ("PipesFree".into(), u(ld(&g.pipes_free)), "MGP"),
        ("ConnRate".into(), u(g.conn_rate.read()), "MRP"),
        (
            "ConnRateLimit".into(),
            u(reg.rate_limit(RateLimit::Connections)),
            "CLP",
        ),
        ("MaxConnRate".into(), u(g.conn_rate.max()), "MMP"),
        ("SessRate".into(), u(g.conn_rate.read()), "MRP"),
        (
            "SessRateLimit".into(),
            u(reg.rate_limit(RateLimit::Sessions)),
            "CLP",
        ),
        ("MaxSessRate".into(), u(g.conn_rate.max()), "MMP"),
        ("SslRate".into(), u(0), "MRP"),
        (
            "SslRateLimit".into(),
            u(reg.rate_limit(RateLimit::SslSessions)),
            "CLP",
        ),
        ("MaxSslRate".into(), u(0), "MMP"),
        ("SslFrontendKeyRate".into(), u(0), "MRP"),
        ("SslFrontendMaxKeyRate".into(), u(0), "MMP"),
        ("SslFrontendSessionReuse_pct".into(), u(0), "MaP"),
        ("SslBackendKeyRate".into(), u(0), "MRP"),
        ("SslBackendMaxKeyRate".into(), u(0), "MMP"),
        ("SslCacheLookups".into(), u(0), "MCP"),
        ("SslCacheMisses".into(), u(0), "MCP"),
        ("CompressBpsIn".into(), u(0), "MRP"),
        ("CompressBpsOut".into(), u(0), "MRP"),
        (
            "CompressBpsRateLim".into(),
            u(reg.rate_limit(RateLimit::Compression)),
            "CLP",
        ),
        ("Tasks".into(), u(0), "MGP"),
        ("Run_queue".into(), u(0), "MGP"),
        ("Idle_pct".into(), u(100), "MaP"),
        ("node".into(), s(&node), "COS"),
        (
            "Stopping".into(),
            u(u64::from(reg.stopping.load(Ordering::Relaxed))),
            "SGP",
        ),
        (
            "Jobs".into(),
            u(cur + listeners as u64 + ld(&g.cli_conns)),
            "MGP",
        ),
        ("Unstoppable Jobs".into(), u(0), "MGP"),
        ("Listeners".into(), u(listeners as u64), "MGP"),
        ("ActivePeers".into(), u(0), "MGP"),
        ("ConnectedPeers".into(), u(0), "MGP"),
        ("DroppedLogs".into(), u(0), "MCP"),
        ("BusyPolling".into(), u(0), "MGP"),
        ("FailedResolutions".into(), u(0), "MCP"),
        ("TotalBytesOut".into(), u64v(ld(&g.bytes_out)), "MCP"),
        (
            "TotalSplicedBytesOut".into(),
            u64v(ld(&g.spliced_out)),
            "MCP",
        ),
        ("BytesOutRate".into(), u64v(0), "MRP"),
        ("DebugCommandsIssued".into(), u(0), "MCP"),
        ("CumRecvLogs".into(), u64v(0), "MCP"),
        ("Build info".into(), s(version), "POS"),
        ("Memmax_bytes".into(), u64v(0), "CLP"),
        ("PoolAlloc_bytes".into(), u64v(0), "MGP"),
        ("PoolUsed_bytes".into(), u64v(0), "MGP"),
        (
            "Start_time_sec".into(),
            u(reg.start_time.max(0) as u64),
            "MGP",
        ),
        ("Tainted".into(), s("0"), "CGS"),
        ("TotalWarnings".into(), u(0), "MCP"),
        ("MaxconnReached".into(), u(ld(&g.maxconn_reached)), "MCP"),
        ("BootTime_ms".into(), u(0), "MGP"),
        ("Niced_tasks".into(), u(0), "MGP"),
        ("CurrStreams".into(), u64v(cur), "MGP"),
        ("CumStreams".into(), u64v(ld(&g.cum_conns)), "MCP"),
        ("BlockedTrafficWarnings".into(), u(0), "MCP"),
    ];
    // harp's own fields: always present so exporters can rely on them.
    let pick = |name: &str| {
        extra
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "0".into())
    };
    for name in ["LuaEventsDropped", "LuaMemory_bytes"] {
        f.push((name.into(), Val::Str(pick(name)), "MGP"));
    }
    // Events lost by any bus subscriber (Lua, checks, ...) because its queue was full.
    f.push(("EventsDropped".into(), u64v(reg.bus().dropped()), "MCP"));
    for (k, v) in extra {
        if k != "LuaEventsDropped" && k != "LuaMemory_bytes" && k != "EventsDropped" {
            f.push((k.clone(), Val::Str(v.clone()), "MGP"));
        }
    }
    f
}

/// `show info` in the requested format.
pub fn show_info(reg: &Registry, extra: &[(String, String)], format: Format) -> String {
    let fields = info_fields(reg, extra);
    let mut out = String::new();
    match format {
        Format::Plain => {
            for (k, v, _) in &fields {
                let _ = writeln!(out, "{k}: {v}");
            }
        }
        Format::Typed => {
            for (i, (k, v, t)) in fields.iter().enumerate() {
                let _ = writeln!(out, "{i}.{k}.1:{t}:{}:{v}", v.type_name());
            }
        }
        Format::Json => {
            out.push('[');
            for (i, (k, v, t)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let t = t.as_bytes();
                let value = match v {
                    Val::Str(s) => json_str(s),
                    other => other.to_string(),
                };
                let _ = write!(
                    out,
                    "{{\"field\":{{\"pos\":{i},\"name\":{}}},\"processNum\":1,\"tags\":{{\"origin\":\"{}\",\"nature\":\"{}\",\"scope\":\"{}\"}},\"value\":{{\"type\":\"{}\",\"value\":{value}}}}}",
                    json_str(k),
                    origin(t[0]),
                    nature(t[1]),
                    scope(t[2]),
                    v.type_name()
                );
            }
            out.push_str("]\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AdminAction, Cause, CheckResult, CheckStatus, Command, ForcedHealth};

    fn check(status: CheckStatus) -> CheckResult {
        CheckResult {
            status,
            duration_ms: 3,
            info: None,
            code: None,
            agent: false,
        }
    }

    #[test]
    fn server_status_texts() {
        let (reg, _sub) = crate::testutil::reference_registry();
        let w1 = reg.find_server("test/webserver1").unwrap();
        let w2 = reg.find_server("test/webserver2").unwrap();
        // health = rise (2) of rise+fall-1 (3): HAProxy shows the UP side counter.
        assert_eq!(server_status(&w1), "UP 1/2");
        assert_eq!(server_status(&w2), "no check");
        let apply = |c| reg.apply(c).unwrap();
        apply(Command::CheckDone {
            server: w1.clone(),
            result: check(CheckStatus::L4Ok),
        });
        assert_eq!(server_status(&w1), "UP");
        apply(Command::CheckDone {
            server: w1.clone(),
            result: check(CheckStatus::L4Con),
        });
        assert_eq!(server_status(&w1), "UP 1/2");
        apply(Command::CheckDone {
            server: w1.clone(),
            result: check(CheckStatus::L4Con),
        });
        assert_eq!(server_status(&w1), "DOWN");
        apply(Command::CheckDone {
            server: w1.clone(),
            result: check(CheckStatus::L4Ok),
        });
        assert_eq!(server_status(&w1), "DOWN 1/2");
        apply(Command::SetHealth {
            server: w2.clone(),
            health: ForcedHealth::Stopping,
            cause: Cause::Cli,
        });
        assert_eq!(server_status(&w2), "NOLB");
        apply(Command::SetAdmin {
            server: w2.clone(),
            action: AdminAction::Ready,
            cause: Cause::Cli,
        });
        apply(Command::SetHealth {
            server: w2.clone(),
            health: ForcedHealth::Up,
            cause: Cause::Cli,
        });
        apply(Command::SetAdmin {
            server: w2.clone(),
            action: AdminAction::Drain,
            cause: Cause::Cli,
        });
        assert_eq!(server_status(&w2), "DRAIN");
        apply(Command::SetAdmin {
            server: w2.clone(),
            action: AdminAction::Maint,
            cause: Cause::Cli,
        });
        assert_eq!(server_status(&w2), "MAINT");
    }

    #[test]
    fn header_has_haproxy_columns() {
        let h = stat_header();
        assert!(h.starts_with("# pxname,svname,qcur,qmax,"));
        assert!(h.contains(",proto,-,ssl_sess,"));
        assert!(h.ends_with("h1_spliced_bytes_out,\n"));
        assert_eq!(COLUMNS.len(), 139);
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn backend_down_and_fullconn() {
        let (reg, _sub) = crate::testutil::reference_registry();
        let be = reg.backend("test").unwrap().clone();
        assert_eq!(fullconn(&be), 999);
        for s in be.servers().iter() {
            reg.apply(Command::SetAdmin {
                server: s.clone(),
                action: AdminAction::Maint,
                cause: Cause::Cli,
            })
            .unwrap();
        }
        let row = backend_row(&reg, &be);
        assert_eq!(row.get("status"), Some(&Val::Str("DOWN".into())));
        assert_eq!(row.get("act"), Some(&Val::U32(0)));
        assert_eq!(row.get("weight"), Some(&Val::U32(0)));
    }
}
