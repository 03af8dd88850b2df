//! Where HAProxy-style log lines go: a proxy's `log` targets (syslog over UDP or a unix
//! datagram socket, stdout, stderr), with a severity each target filters on (`level`) or caps
//! (`minlevel`). Syslog sends never block (non-blocking datagram sockets; a full socket drops
//! the line); stdout and stderr are plain writes, as HAProxy's own.

use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::SystemTime;

use crate::config::{Address, LogFormat, LogTarget};

/// Syslog severities HAProxy uses for what it logs to a proxy's targets.
pub(crate) const EMERG: u8 = 0;
/// A server going down.
pub(crate) const ALERT: u8 = 1;
/// syslog severity `warning`: a frontend paused, resumed or stopped.
pub(crate) const WARNING: u8 = 4;
/// A server coming up, health check results, drain.
pub(crate) const NOTICE: u8 = 5;
/// Traffic logs (`tcplog`).
pub(crate) const INFO: u8 = 6;
/// Failed sessions under `option log-separate-errors`.
pub(crate) const ERR: u8 = 3;

/// The severity target `t` takes a line of `severity` at (its `[level [minlevel]]`), or `None`.
fn level_for(t: &LogTarget, severity: u8) -> Option<u8> {
    match t {
        LogTarget::Stdout { levels: l, .. }
        | LogTarget::Stderr { levels: l, .. }
        | LogTarget::Syslog { levels: l, .. }
        | LogTarget::Ring { levels: l, .. } => l.apply(severity),
        LogTarget::Global => Some(severity),
    }
}

pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The local time's offset from UTC at `t`, in seconds east (the `TZ` environment variable or
/// /etc/localtime, as C's `localtime_r` reads them): HAProxy writes its log dates in local
/// time. Kept per worker thread for the minute it was read in.
pub(crate) fn utc_offset(t: SystemTime) -> i64 {
    use std::cell::Cell;
    thread_local! {
        static CACHE: Cell<(i64, i64)> = const { Cell::new((i64::MIN, 0)) };
    }
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let minute = secs.div_euclid(60);
    let (m, off) = CACHE.with(Cell::get);
    if m == minute {
        return off;
    }
    let off = offset_now(secs);
    CACHE.with(|c| c.set((minute, off)));
    off
}

/// `localtime_r`'s `tm_gmtoff` for `secs` since the epoch (0 if it fails).
fn offset_now(secs: i64) -> i64 {
    let t: libc::time_t = secs as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the thread-safe variant
    // and writes only into `tm`.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        0
    } else {
        tm.tm_gmtoff as i64
    }
}

/// [`civil`] in local time, and the offset used (seconds east of UTC).
pub(crate) fn civil_local(t: SystemTime) -> (Civil, i64) {
    let off = utc_offset(t);
    let shifted = if off >= 0 {
        t + std::time::Duration::from_secs(off as u64)
    } else {
        t.checked_sub(std::time::Duration::from_secs(off.unsigned_abs()))
            .unwrap_or(t)
    };
    (civil(shifted), off)
}

/// An offset as `+hhmm` (`sep`: `+hh:mm`, ISO 8601's).
pub(crate) fn offset_text(off: i64, sep: bool) -> String {
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.unsigned_abs();
    let (h, m) = (a / 3600, a / 60 % 60);
    if sep {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}")
    }
}

/// A broken-down date: (year, month 1..12, day, h, m, s, ms).
pub(crate) type Civil = (i64, usize, u32, u32, u32, u32, u32);

/// (year, month 1..12, day, h, m, s, ms) in UTC.
pub(crate) fn civil(t: SystemTime) -> Civil {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's civil_from_days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (
        year,
        month,
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis(),
    )
}

fn facility_code(name: &str) -> u8 {
    const F: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
        "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
        "local5", "local6", "local7",
    ];
    F.iter().position(|f| *f == name).unwrap_or(16) as u8
}

/// The syslog tag when no `log-tag` sets one: the program name as launched, as HAProxy's
/// default (so a harp installed as `haproxy` keeps the tag rsyslog rules match on).
pub(crate) fn default_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        std::env::args_os()
            .next()
            .and_then(|a| {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "harp".into())
    })
}

/// `line` framed in `format`, as HAProxy frames it (byte for byte for its stdout output).
pub(crate) fn frame(
    format: LogFormat,
    facility: &str,
    severity: u8,
    tag: &str,
    now: SystemTime,
    line: &str,
) -> String {
    let prio = facility_code(facility) as u32 * 8 + u32::from(severity);
    let pid = std::process::id();
    match format {
        LogFormat::Rfc3164 | LogFormat::Local => {
            let ((_, mo, d, h, mi, s, _), _) = civil_local(now);
            format!(
                "<{prio}>{} {d:>2} {h:02}:{mi:02}:{s:02} {tag}[{pid}]: {line}",
                MONTHS[mo - 1]
            )
        }
        LogFormat::Rfc5424 => format!("<{prio}>1 {} - {tag} {pid} - - {line}", iso(now)),
        LogFormat::Raw => line.to_string(),
        LogFormat::Short => format!("<{severity}>{line}"),
        LogFormat::Timed => format!("<{severity}>{} {line}", iso(now)),
        LogFormat::Iso => format!("{} {line}", iso(now)),
        LogFormat::Priority => format!("<{prio}>{line}"),
    }
}

/// `2026-11-25T14:47:46.928167+00:00` (local time, microseconds, its offset), HAProxy's ISO
/// 8601 stamp.
fn iso(now: SystemTime) -> String {
    let ((y, mo, d, h, mi, s, _), off) = civil_local(now);
    let us = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_micros())
        .unwrap_or(0);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}{}",
        offset_text(off, true)
    )
}

/// A worker's log sockets, opened lazily and non-blocking.
#[derive(Default)]
pub(crate) struct LogSockets {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    unix: Option<UnixDatagram>,
}

impl LogSockets {
    fn udp(&mut self, v6: bool) -> Option<&UdpSocket> {
        let slot = if v6 { &mut self.v6 } else { &mut self.v4 };
        if slot.is_none() {
            let bind = if v6 { "[::]:0" } else { "0.0.0.0:0" };
            let s = UdpSocket::bind(bind).ok()?;
            s.set_nonblocking(true).ok()?;
            *slot = Some(s);
        }
        slot.as_ref()
    }

    /// Sends `line` of `severity` to every target whose level lets it through, syslog ones
    /// tagged `tag`; errors (including EAGAIN) drop the line.
    pub(crate) fn send(&mut self, targets: &[&LogTarget], severity: u8, tag: &str, line: &str) {
        for t in targets {
            let Some(severity) = level_for(t, severity) else {
                continue;
            };
            let now = SystemTime::now();
            match t {
                LogTarget::Stdout { facility, levels } => {
                    let f = frame(levels.format, facility, severity, tag, now, line);
                    let _ = writeln!(std::io::stdout().lock(), "{f}");
                }
                LogTarget::Stderr { facility, levels } => {
                    let f = frame(levels.format, facility, severity, tag, now, line);
                    let _ = writeln!(std::io::stderr().lock(), "{f}");
                }
                LogTarget::Syslog {
                    addr,
                    facility,
                    levels,
                } => {
                    // HAProxy ends every datagram with a newline, as a stream would
                    let mut frame = frame(levels.format, facility, severity, tag, now, line);
                    frame.push('\n');
                    match addr {
                        Address::Tcp(a) => {
                            if let Some(s) = self.udp(a.is_ipv6()) {
                                let _ = s.send_to(frame.as_bytes(), a);
                            }
                        }
                        Address::Unix(p) => {
                            if self.unix.is_none() {
                                self.unix = UnixDatagram::unbound().ok();
                                if let Some(u) = &self.unix {
                                    let _ = u.set_nonblocking(true);
                                }
                            }
                            if let Some(u) = &self.unix {
                                let _ = u.send_to(frame.as_bytes(), p);
                            }
                        }
                    }
                }
                LogTarget::Ring { ring, facility, .. } => {
                    if let Some(r) = super::ring::find(ring) {
                        let mut f = frame(r.format, facility, severity, tag, now, line);
                        if r.format == LogFormat::Rfc3164 {
                            // HAProxy names the host in a ring's RFC3164 lines
                            if let Some(at) = f.find('>').map(|p| p + 17) {
                                if at <= f.len() && f.is_char_boundary(at) {
                                    f.insert_str(at, "localhost ");
                                }
                            }
                        }
                        r.write(&f);
                    }
                }
                LogTarget::Global => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_level_keeps_what_is_at_least_as_severe() {
        let t = |max: Option<u8>, min: Option<u8>| LogTarget::Syslog {
            addr: Address::Tcp("127.0.0.1:514".parse().unwrap()),
            facility: "local0".into(),
            levels: crate::config::LogLevels {
                max,
                min,
                ..Default::default()
            },
        };
        assert_eq!(level_for(&t(None, None), INFO), Some(INFO));
        assert_eq!(level_for(&t(Some(NOTICE), None), ALERT), Some(ALERT));
        assert_eq!(level_for(&t(Some(NOTICE), None), INFO), None);
        assert_eq!(level_for(&t(Some(INFO), Some(NOTICE)), EMERG), Some(NOTICE));
        let out = LogTarget::Stdout {
            facility: "local0".into(),
            levels: crate::config::LogLevels {
                max: Some(NOTICE),
                ..Default::default()
            },
        };
        assert_eq!(level_for(&out, INFO), None, "stdout filters too");
    }

    #[test]
    fn formats_as_haproxy_writes_them() {
        // HAProxy 2.6 on `log stdout [format F] local0`, a tcplog line (captured)
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_764_082_066_928_167);
        // dates are local time: these are UTC's (CI's zone)
        if utc_offset(t) != 0 {
            return;
        }
        let f = |fmt| frame(fmt, "local0", INFO, "haproxy", t, "L");
        let pid = std::process::id();
        assert_eq!(
            f(LogFormat::Rfc3164),
            format!("<134>Nov 25 14:47:46 haproxy[{pid}]: L")
        );
        assert_eq!(
            f(LogFormat::Rfc5424),
            format!("<134>1 2025-11-25T14:47:46.928167+00:00 - haproxy {pid} - - L")
        );
        assert_eq!(f(LogFormat::Raw), "L");
        assert_eq!(f(LogFormat::Short), "<6>L");
        assert_eq!(f(LogFormat::Timed), "<6>2025-11-25T14:47:46.928167+00:00 L");
        assert_eq!(f(LogFormat::Iso), "2025-11-25T14:47:46.928167+00:00 L");
        assert_eq!(f(LogFormat::Priority), "<134>L");
    }

    #[test]
    fn offsets_read_as_haproxy_prints_them() {
        assert_eq!(offset_text(7200, false), "+0200");
        assert_eq!(offset_text(-16200, true), "-04:30");
        assert_eq!(offset_text(0, false), "+0000");
    }

    #[test]
    fn the_frame_carries_facility_and_severity() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let f = frame(LogFormat::Rfc3164, "local0", ALERT, "haproxy", t, "x");
        assert!(f.starts_with("<129>Nov 1"), "{f}");
        if utc_offset(t) == 0 {
            assert!(f.starts_with("<129>Nov 14 22:13:20 haproxy["), "{f}");
        }
        assert!(frame(LogFormat::Rfc3164, "local7", EMERG, "harp", t, "x").starts_with("<184>"));
    }
}
