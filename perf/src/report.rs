//! The result of one load run, printed for people or as one JSON line for `perf/summarize.py`.
//! Hand-written JSON (flat numbers and strings) keeps the tool free of a serde dependency.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Latency percentiles in microseconds, taken from an HdrHistogram.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    /// Number of recorded samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
}

impl Latency {
    /// Reads the percentiles every comparison reports from a histogram of microseconds.
    pub fn from_hist(h: &Histogram<u64>) -> Self {
        Self {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One measured window (after warm-up) of one scenario against one target.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// throughput, connrate or rr.
    pub scenario: String,
    /// The address the load went to.
    pub target: String,
    /// Concurrent connections (throughput, rr) or workers (connrate).
    pub conns: usize,
    /// Length of the measured window in seconds (warm-up excluded).
    pub secs: f64,
    /// Bytes the client sent in the window.
    pub tx_bytes: u64,
    /// Bytes the client received in the window.
    pub rx_bytes: u64,
    /// Connections completed (connrate).
    pub connections: u64,
    /// Requests answered (rr, connrate).
    pub requests: u64,
    /// Failed connects, reads or writes.
    pub errors: u64,
    /// Requests per second offered by the schedule (rr; 0 = closed loop).
    pub offered_rate: f64,
    /// Latency percentiles (rr: from the intended send time; connrate: full connection cycle).
    pub latency: Option<Latency>,
    /// CPU seconds the watched processes used in the window.
    pub cpu_s: Option<f64>,
    /// CPU seconds the load generator itself used in the window (to spot a client bottleneck).
    pub client_cpu_s: Option<f64>,
    /// Resident memory of the watched processes at the end, KiB.
    pub rss_kib: Option<u64>,
    /// Resident memory of the watched processes before the first connection (idle), KiB.
    pub rss_before_kib: Option<u64>,
    /// First error seen, to explain a failed run.
    pub first_error: Option<String>,
}

impl Report {
    /// Bytes moved through the target in both directions.
    pub fn bytes(&self) -> u64 {
        self.tx_bytes + self.rx_bytes
    }

    /// Gbit/s of all bytes the client moved (sent + received).
    pub fn gbit_s(&self) -> f64 {
        if self.secs > 0.0 {
            self.bytes() as f64 * 8.0 / self.secs / 1e9
        } else {
            0.0
        }
    }

    /// Connections per second (connrate).
    pub fn conn_s(&self) -> f64 {
        if self.secs > 0.0 {
            self.connections as f64 / self.secs
        } else {
            0.0
        }
    }

    /// Requests per second achieved.
    pub fn req_s(&self) -> f64 {
        if self.secs > 0.0 {
            self.requests as f64 / self.secs
        } else {
            0.0
        }
    }

    /// CPU seconds of the watched processes per GB (1e9 bytes) moved.
    pub fn cpu_s_per_gb(&self) -> Option<f64> {
        let cpu = self.cpu_s?;
        (self.bytes() > 0).then(|| cpu / (self.bytes() as f64 / 1e9))
    }

    /// CPU microseconds of the watched processes per completed connection.
    pub fn cpu_us_per_conn(&self) -> Option<f64> {
        let cpu = self.cpu_s?;
        (self.connections > 0).then(|| cpu * 1e6 / self.connections as f64)
    }

    /// CPU microseconds of the watched processes per answered request (rr: the proxy's cost of
    /// one request/response at the offered rate, comparable across targets at the same rate).
    pub fn cpu_us_per_req(&self) -> Option<f64> {
        let cpu = self.cpu_s?;
        (self.scenario == "rr" && self.requests > 0).then(|| cpu * 1e6 / self.requests as f64)
    }

    /// Proxy memory per held connection in bytes (idle scenario).
    pub fn rss_per_conn_b(&self) -> Option<f64> {
        let (a, b) = (self.rss_kib?, self.rss_before_kib?);
        (self.connections > 0).then(|| (a as f64 - b as f64) * 1024.0 / self.connections as f64)
    }

    /// The headline figure of the scenario, used to decide whether a run measured anything.
    pub fn primary(&self) -> f64 {
        match self.scenario.as_str() {
            "throughput" => self.gbit_s(),
            "connrate" => self.conn_s(),
            "idle" => self.connections as f64,
            _ => self.req_s(),
        }
    }

    /// One JSON object on one line.
    pub fn to_json(&self) -> String {
        let mut s = String::from("{");
        let mut field = |k: &str, v: String| {
            if s.len() > 1 {
                s.push(',');
            }
            let _ = write!(s, "\"{k}\":{v}");
        };
        field("scenario", json_str(&self.scenario));
        field("target", json_str(&self.target));
        field("conns", self.conns.to_string());
        field("secs", num(self.secs));
        field("tx_bytes", self.tx_bytes.to_string());
        field("rx_bytes", self.rx_bytes.to_string());
        field("gbit_s", num(self.gbit_s()));
        field("connections", self.connections.to_string());
        field("conn_s", num(self.conn_s()));
        field("requests", self.requests.to_string());
        field("req_s", num(self.req_s()));
        field("offered_rate", num(self.offered_rate));
        field("errors", self.errors.to_string());
        match &self.latency {
            Some(l) => {
                field("lat_count", l.count.to_string());
                field("p50_us", l.p50.to_string());
                field("p90_us", l.p90.to_string());
                field("p99_us", l.p99.to_string());
                field("p999_us", l.p999.to_string());
                field("max_us", l.max.to_string());
            }
            None => {
                for k in ["p50_us", "p90_us", "p99_us", "p999_us", "max_us"] {
                    field(k, "null".into());
                }
            }
        }
        field("cpu_s", opt(self.cpu_s));
        field("cpu_s_per_gb", opt(self.cpu_s_per_gb()));
        field("client_cpu_s", opt(self.client_cpu_s));
        field("cpu_us_per_conn", opt(self.cpu_us_per_conn()));
        field("cpu_us_per_req", opt(self.cpu_us_per_req()));
        field(
            "rss_kib",
            self.rss_kib.map_or("null".into(), |v| v.to_string()),
        );
        field(
            "rss_before_kib",
            self.rss_before_kib.map_or("null".into(), |v| v.to_string()),
        );
        field("rss_per_conn_b", opt(self.rss_per_conn_b()));
        field(
            "first_error",
            self.first_error.as_deref().map_or("null".into(), json_str),
        );
        s.push('}');
        s
    }

    /// A few aligned lines for a person at a terminal.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} -> {}  conns={} window={:.2}s errors={}",
            self.scenario, self.target, self.conns, self.secs, self.errors
        );
        match self.scenario.as_str() {
            "throughput" => {
                let _ = writeln!(
                    s,
                    "  {:.2} Gbit/s (tx {:.2} + rx {:.2} GB)",
                    self.gbit_s(),
                    self.tx_bytes as f64 / 1e9,
                    self.rx_bytes as f64 / 1e9
                );
            }
            "connrate" => {
                let _ = writeln!(s, "  {:.0} conn/s", self.conn_s());
            }
            "idle" => {
                let _ = writeln!(
                    s,
                    "  {} connections held (opened in {:.2}s); RSS {:?} -> {:?} KiB, {} B per connection",
                    self.connections,
                    self.secs,
                    self.rss_before_kib,
                    self.rss_kib,
                    self.rss_per_conn_b().map_or("n/a".into(), |v| format!("{v:.0}"))
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "  {:.0} req/s achieved (offered {:.0}/s{})",
                    self.req_s(),
                    self.offered_rate,
                    if self.offered_rate == 0.0 {
                        ", closed loop"
                    } else {
                        ""
                    }
                );
            }
        }
        if let Some(l) = &self.latency {
            let _ = writeln!(
                s,
                "  latency us: p50 {} p90 {} p99 {} p99.9 {} max {} (n={})",
                l.p50, l.p90, l.p99, l.p999, l.max, l.count
            );
        }
        if let Some(cpu) = self.cpu_s {
            let _ = write!(s, "  watched CPU {cpu:.2} s");
            match self.scenario.as_str() {
                "throughput" => {
                    if let Some(g) = self.cpu_s_per_gb() {
                        let _ = write!(s, ", {g:.3} CPU-s/GB");
                    }
                }
                "connrate" => {
                    if let Some(c) = self.cpu_us_per_conn() {
                        let _ = write!(s, ", {c:.1} CPU-us/conn");
                    }
                }
                "rr" => {
                    if let Some(c) = self.cpu_us_per_req() {
                        let _ = write!(s, ", {c:.1} CPU-us/req");
                    }
                }
                _ => {}
            }
            if let Some(r) = self.rss_kib {
                let _ = write!(s, ", RSS {r} KiB");
            }
            s.push('\n');
        }
        if let Some(c) = self.client_cpu_s {
            let _ = writeln!(s, "  load generator CPU {c:.2} s");
        }
        if let Some(e) = &self.first_error {
            let _ = writeln!(s, "  first error: {e}");
        }
        s
    }
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        "null".into()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or("null".into(), num)
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_one_line_and_escaped() {
        let r = Report {
            scenario: "rr".into(),
            first_error: Some("a \"b\"\n".into()),
            ..Default::default()
        };
        let j = r.to_json();
        assert!(!j.contains('\n'));
        assert!(j.contains("\\\"b\\\"\\u000a"));
        assert!(j.starts_with('{') && j.ends_with('}'));
    }
}
