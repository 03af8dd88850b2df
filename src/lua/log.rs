//! `core.log` output: HAProxy prints Lua log messages on stderr as
//! `[info] 328/175622 (1234) : message` (day-of-year/HHMMSS) when `tune.lua.log.stderr` says so.

use std::io::Write;

use crate::config::LuaLogStderr;

/// Syslog level names, indexed by level (`core.emerg` = 0 ... `core.debug` = 7).
const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Formats one stderr line as HAProxy does (UTC clock).
pub(crate) fn format_line(level: i64, msg: &str) -> String {
    let name = LEVELS
        .get(level.clamp(0, 7) as usize)
        .copied()
        .unwrap_or("info");
    let now = crate::model::unix_now();
    let secs_of_day = now.rem_euclid(86400);
    let days = now.div_euclid(86400);
    let yday = day_of_year(days);
    format!(
        "[{name}] {yday:03}/{:02}{:02}{:02} ({}) : {msg}",
        secs_of_day / 3600,
        (secs_of_day / 60) % 60,
        secs_of_day % 60,
        std::process::id()
    )
}

/// 0-based day of the year of a day count since 1970-01-01 (as `tm_yday`).
fn day_of_year(mut days: i64) -> i64 {
    let mut year = 1970;
    loop {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let len = if leap { 366 } else { 365 };
        if days < len {
            return days;
        }
        days -= len;
        year += 1;
    }
}

/// Emits a Lua log message (level -1 = `core.silent`: nothing).
pub(crate) fn emit(mode: LuaLogStderr, have_loggers: bool, level: i64, msg: &str) {
    if level < 0 {
        return;
    }
    let to_stderr = match mode {
        LuaLogStderr::On => true,
        LuaLogStderr::Off => false,
        LuaLogStderr::Auto => !have_loggers,
    }
        // HAProxy's `hlua_sendlog`: nothing on stderr under `-q`, and debug messages only with `-d`
        && !crate::logging::quiet()
        && (level < 7 || crate::logging::debug_mode());
    if to_stderr {
        let _ = writeln!(std::io::stderr().lock(), "{}", format_line(level, msg));
    }
    tracing::debug!(target: "lua", level, "{msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_of_year_matches_calendar() {
        assert_eq!(day_of_year(0), 0);
        assert_eq!(day_of_year(365), 0); // 1971-01-01
        assert_eq!(day_of_year(365 + 365 + 59), 59); // 1972-02-29
    }

    #[test]
    fn line_shape() {
        let l = format_line(6, "hello");
        assert!(l.starts_with("[info] "), "{l}");
        assert!(
            l.ends_with(&format!("({}) : hello", std::process::id())),
            "{l}"
        );
    }
}
