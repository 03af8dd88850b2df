//! What a stick-table entry stores (`store conn_cnt,conn_rate(10s),...`): HAProxy's data types,
//! in its order (the order `show table` prints them in), and the sliding-window counter its
//! rates use.

use std::time::Duration;

/// A data type a table may store, as `store` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    /// `server_id`: the server a `stick` rule stored for the key (its `id`).
    ServerId,
    /// `gpt0`: a general purpose tag, set by `sc-set-gpt0`.
    Gpt0,
    /// `gpc0`: a general purpose counter, `sc-inc-gpc0`.
    Gpc0,
    /// `gpc0_rate(<period>)`: how often `gpc0` was incremented.
    Gpc0Rate,
    /// `conn_cnt`: connections tracked with this key.
    ConnCnt,
    /// `conn_rate(<period>)`.
    ConnRate,
    /// `conn_cur`: sessions tracking the entry now.
    ConnCur,
    /// `sess_cnt`: sessions tracked (a connection that passed the connection rules).
    SessCnt,
    /// `sess_rate(<period>)`.
    SessRate,
    /// `http_req_cnt`: HTTP requests (never counted by a TCP proxy; stored all the same).
    HttpReqCnt,
    /// `http_req_rate(<period>)`.
    HttpReqRate,
    /// `http_err_cnt`.
    HttpErrCnt,
    /// `http_err_rate(<period>)`.
    HttpErrRate,
    /// `bytes_in_cnt`: bytes from the client.
    BytesInCnt,
    /// `bytes_in_rate(<period>)`.
    BytesInRate,
    /// `bytes_out_cnt`: bytes to the client.
    BytesOutCnt,
    /// `bytes_out_rate(<period>)`.
    BytesOutRate,
    /// `gpc1`.
    Gpc1,
    /// `gpc1_rate(<period>)`.
    Gpc1Rate,
    /// `server_key` (alias `server_name`): the name of that server.
    ServerKey,
    /// `http_fail_cnt`.
    HttpFailCnt,
    /// `http_fail_rate(<period>)`.
    HttpFailRate,
    /// `glitch_cnt`: front connection glitches (an HTTP/2 and QUIC notion; never counted here).
    GlitchCnt,
    /// `glitch_rate(<period>)`.
    GlitchRate,
}

/// Every type, in HAProxy's order.
pub const ALL: &[DataType] = &[
    DataType::ServerId,
    DataType::Gpt0,
    DataType::Gpc0,
    DataType::Gpc0Rate,
    DataType::ConnCnt,
    DataType::ConnRate,
    DataType::ConnCur,
    DataType::SessCnt,
    DataType::SessRate,
    DataType::HttpReqCnt,
    DataType::HttpReqRate,
    DataType::HttpErrCnt,
    DataType::HttpErrRate,
    DataType::BytesInCnt,
    DataType::BytesInRate,
    DataType::BytesOutCnt,
    DataType::BytesOutRate,
    DataType::Gpc1,
    DataType::Gpc1Rate,
    DataType::ServerKey,
    DataType::HttpFailCnt,
    DataType::HttpFailRate,
    DataType::GlitchCnt,
    DataType::GlitchRate,
];

/// Types HAProxy has that harp refuses, with why.
const REFUSED: &[(&str, &str)] = &[
    (
        "gpt",
        "harp stores only the single counters gpt0, gpc0 and gpc1",
    ),
    (
        "gpc",
        "harp stores only the single counters gpt0, gpc0 and gpc1",
    ),
    (
        "gpc_rate",
        "harp stores only the single counters gpt0, gpc0 and gpc1",
    ),
];

impl DataType {
    /// Its name in `store`, `show table` and `data.<type>` filters.
    pub fn name(self) -> &'static str {
        match self {
            DataType::ServerId => "server_id",
            DataType::ServerKey => "server_key",
            DataType::Gpt0 => "gpt0",
            DataType::Gpc0 => "gpc0",
            DataType::Gpc0Rate => "gpc0_rate",
            DataType::ConnCnt => "conn_cnt",
            DataType::ConnRate => "conn_rate",
            DataType::ConnCur => "conn_cur",
            DataType::SessCnt => "sess_cnt",
            DataType::SessRate => "sess_rate",
            DataType::HttpReqCnt => "http_req_cnt",
            DataType::HttpReqRate => "http_req_rate",
            DataType::HttpErrCnt => "http_err_cnt",
            DataType::HttpErrRate => "http_err_rate",
            DataType::BytesInCnt => "bytes_in_cnt",
            DataType::BytesInRate => "bytes_in_rate",
            DataType::BytesOutCnt => "bytes_out_cnt",
            DataType::BytesOutRate => "bytes_out_rate",
            DataType::Gpc1 => "gpc1",
            DataType::Gpc1Rate => "gpc1_rate",
            DataType::HttpFailCnt => "http_fail_cnt",
            DataType::HttpFailRate => "http_fail_rate",
            DataType::GlitchCnt => "glitch_cnt",
            DataType::GlitchRate => "glitch_rate",
        }
    }

    /// The type of a name; `Err` says why a known HAProxy type is refused, `Ok(None)` that
    /// the name is unknown.
    pub fn by_name(name: &str) -> Result<Option<DataType>, String> {
        if name == "server_name" {
            return Ok(Some(DataType::ServerKey));
        }
        if let Some(t) = ALL.iter().find(|t| t.name() == name) {
            return Ok(Some(*t));
        }
        match REFUSED.iter().find(|(n, _)| *n == name) {
            Some((n, why)) => Err(format!("data type '{n}' is not supported by harp ({why})")),
            None => Ok(None),
        }
    }

    /// Whether it is a rate, written `name(<period>)`.
    pub fn is_rate(self) -> bool {
        self.name().ends_with("_rate")
    }

    /// Whether HAProxy keeps it as a 64-bit counter (the byte counts).
    pub fn is_wide(self) -> bool {
        matches!(self, DataType::BytesInCnt | DataType::BytesOutCnt)
    }
}

/// HAProxy's `freq_ctr` over any period: the events of the current period, and those of the
/// previous one, weighted by the part of it still inside a window of one period ending now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FreqCtr {
    /// When the current period began (ms clock).
    tick: u64,
    curr: u64,
    prev: u64,
}

impl FreqCtr {
    /// Adds `n` events at `now` (`update_freq_ctr_period`): once a period is over the next one
    /// begins a period later with this count as the previous one; after two idle periods or
    /// more, the window starts again now, with nothing before it.
    pub fn add(&mut self, n: u64, period: u64, now: u64) {
        self.rotate(period, now);
        self.curr = self.curr.saturating_add(n);
    }

    fn rotate(&mut self, period: u64, now: u64) {
        let period = period.max(1);
        if now < self.tick + period {
            return;
        }
        if now >= self.tick + 2 * period {
            self.prev = 0;
            self.tick = now;
        } else {
            self.prev = self.curr;
            self.tick += period;
        }
        self.curr = 0;
    }

    /// When its current period began (ms clock), and the counts of that period and the
    /// previous one: what peers exchange.
    pub fn parts(&self) -> (u64, u64, u64) {
        (self.tick, self.curr, self.prev)
    }

    /// A counter from [`FreqCtr::parts`].
    pub fn from_parts(tick: u64, curr: u64, prev: u64) -> FreqCtr {
        FreqCtr { tick, curr, prev }
    }

    /// The rate at `now` (`read_freq_ctr_period`): the current count plus the previous one's
    /// share of the window.
    pub fn read(&self, period: u64, now: u64) -> u64 {
        let period = period.max(1);
        let (mut curr, mut past) = (self.curr, self.prev);
        let end = self.tick + period;
        let remain = if now < end {
            end - now
        } else {
            // past the current period: part of it is now the previous one, or nothing is left
            let over = now - end;
            if over > period {
                return 0;
            }
            past = curr;
            curr = 0;
            period - over
        };
        if curr == 0 && past <= 1 {
            // HAProxy's correction for a counter flapping between 0 and 1
            return past;
        }
        ((u128::from(past) * u128::from(remain) + u128::from(curr) * u128::from(period))
            / u128::from(period)) as u64
    }
}

/// One stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// A counter or tag.
    Count(u64),
    /// A rate and its period (ms).
    Rate(FreqCtr, u64),
    /// A server's name (`server_key`), none yet.
    Text(Option<std::sync::Arc<str>>),
}

/// What a table stores: each type at most once, rates with their period, in HAProxy's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    types: Vec<(DataType, u64)>,
}

impl Schema {
    /// Parses one `store` argument, `type[,type(period)]...`, with HAProxy's messages;
    /// returns warnings (a type stored twice is ignored).
    pub fn parse_store(&mut self, arg: &str) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        for item in arg.split(',') {
            let (name, period) = match item.split_once('(') {
                Some((n, rest)) => {
                    let Some(p) = rest.strip_suffix(')') else {
                        return Err(format!(
                            "missing closing parenthesis after store option '{n}'."
                        ));
                    };
                    (n, Some(p))
                }
                None => (item, None),
            };
            let t = match DataType::by_name(name)? {
                Some(t) => t,
                None => return Err(format!("unknown store option '{name}'.")),
            };
            let period = match (t.is_rate(), period) {
                (true, Some(p)) => {
                    let d = crate::config::units::parse_time(p, "store")
                        .map_err(|_| format!("error when processing store option '{name}'."))?;
                    if d.is_zero() || d > Duration::from_millis(i32::MAX as u64) {
                        return Err(format!("error when processing store option '{name}'."));
                    }
                    d.as_millis() as u64
                }
                (true, None) => return Err(format!("missing argument to store option '{name}'.")),
                (false, Some(_)) => {
                    return Err(format!("unexpected argument to store option '{name}'."))
                }
                (false, None) => 0,
            };
            if self.has(t) {
                warnings.push(format!("store option '{name}' already enabled, ignored."));
                continue;
            }
            self.types.push((t, period));
            self.types.sort();
        }
        Ok(warnings)
    }

    /// Whether `t` is stored.
    pub fn has(&self, t: DataType) -> bool {
        self.types.iter().any(|(x, _)| *x == t)
    }

    /// The stored types with their periods (0 for the others), in HAProxy's order.
    pub fn types(&self) -> &[(DataType, u64)] {
        &self.types
    }

    /// The fresh values of a new entry.
    pub fn fresh(&self) -> Vec<Stored> {
        self.types
            .iter()
            .map(|(t, p)| {
                if t.is_rate() {
                    Stored::Rate(FreqCtr::default(), *p)
                } else if *t == DataType::ServerKey {
                    Stored::Text(None)
                } else {
                    Stored::Count(0)
                }
            })
            .collect()
    }

    /// Stores `t` too, unless it already does (`stick` rules add `server_id` and
    /// `server_key` to their table, as HAProxy does).
    pub fn ensure(&mut self, t: DataType) {
        if !self.has(t) {
            let period = if t.is_rate() { 1000 } else { 0 };
            self.types.push((t, period));
            self.types.sort();
        }
    }

    /// Where `t`'s value sits in an entry's values.
    pub fn slot(&self, t: DataType) -> Option<usize> {
        self.types.iter().position(|(x, _)| *x == t)
    }
}
