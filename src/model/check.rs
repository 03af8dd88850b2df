//! Health check results as HAProxy names and numbers them, and the health counter rules.

/// HAProxy's `HCHK_STATUS_*`; the discriminant is what `show servers state` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CheckStatus {
    /// No check ran.
    Unknown = 0,
    /// Configured, not run yet.
    Ini = 1,
    /// An agent replied without a health word: nothing to count.
    Checked = 3,
    /// Health analyze: `observe` saw `error-limit` consecutive errors on live traffic.
    Hana = 4,
    /// Socket error (could not create the socket).
    SockErr = 5,
    /// TCP connect succeeded.
    L4Ok = 6,
    /// TCP connect timed out.
    L4Tout = 7,
    /// TCP connect refused / reset / unreachable.
    L4Con = 8,
    /// Layer 6 (TLS) passed.
    L6Ok = 9,
    /// Layer 6 timeout.
    L6Tout = 10,
    /// Layer 6 invalid response.
    L6Rsp = 11,
    /// Layer 7 timeout (no full response in time).
    L7Tout = 12,
    /// Layer 7 invalid response (garbage, not HTTP).
    L7Rsp = 13,
    /// Layer 7 passed.
    L7Ok = 15,
    /// Layer 7 conditionally passed (e.g. HTTP 404 with `disable-on-404`).
    L7OkC = 16,
    /// Layer 7 wrong status.
    L7Sts = 17,
}

impl CheckStatus {
    /// Short name (`L4CON`), as in Lua `check.reason.short` and `show stat` `check_status`.
    pub fn short(self) -> &'static str {
        match self {
            CheckStatus::Unknown => "UNK",
            CheckStatus::Ini => "INI",
            CheckStatus::Checked => "CHECKED",
            CheckStatus::Hana => "HANA",
            CheckStatus::SockErr => "SOCKERR",
            CheckStatus::L4Ok => "L4OK",
            CheckStatus::L4Tout => "L4TOUT",
            CheckStatus::L4Con => "L4CON",
            CheckStatus::L6Ok => "L6OK",
            CheckStatus::L6Tout => "L6TOUT",
            CheckStatus::L6Rsp => "L6RSP",
            CheckStatus::L7Tout => "L7TOUT",
            CheckStatus::L7Rsp => "L7RSP",
            CheckStatus::L7Ok => "L7OK",
            CheckStatus::L7OkC => "L7OKC",
            CheckStatus::L7Sts => "L7STS",
        }
    }

    /// Description (`Layer4 connection problem`), as in logs and `check.reason.desc`.
    pub fn desc(self) -> &'static str {
        match self {
            CheckStatus::Unknown => "Unknown",
            CheckStatus::Ini => "Initializing",
            CheckStatus::Checked => "No status change",
            CheckStatus::Hana => "Health analyze",
            CheckStatus::SockErr => "Socket error",
            CheckStatus::L4Ok => "Layer4 check passed",
            CheckStatus::L4Tout => "Layer4 timeout",
            CheckStatus::L4Con => "Layer4 connection problem",
            CheckStatus::L6Ok => "Layer6 check passed",
            CheckStatus::L6Tout => "Layer6 timeout",
            CheckStatus::L6Rsp => "Layer6 invalid response",
            CheckStatus::L7Tout => "Layer7 timeout",
            CheckStatus::L7Rsp => "Layer7 invalid response",
            CheckStatus::L7Ok => "Layer7 check passed",
            CheckStatus::L7OkC => "Layer7 check conditionally passed",
            CheckStatus::L7Sts => "Layer7 wrong status",
        }
    }

    /// The result class this status implies.
    pub fn outcome(self) -> CheckOutcome {
        match self {
            CheckStatus::L4Ok | CheckStatus::L6Ok | CheckStatus::L7Ok => CheckOutcome::Passed,
            CheckStatus::L7OkC => CheckOutcome::CondPass,
            CheckStatus::Unknown | CheckStatus::Ini => CheckOutcome::Unknown,
            CheckStatus::Checked => CheckOutcome::Neutral,
            _ => CheckOutcome::Failed,
        }
    }

    /// Whether the status reached layer 5-7 data analysis (then `code` is meaningful).
    pub fn has_code(self) -> bool {
        (self as u8) >= 14
    }
}

/// HAProxy's `CHK_RES_*`; the discriminant is `srv_check_result` in `show servers state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CheckOutcome {
    /// Not run.
    Unknown = 0,
    /// Ran, with nothing to count (an agent's reply without a health word).
    Neutral = 1,
    /// Failed.
    Failed = 2,
    /// Passed.
    Passed = 3,
    /// Conditionally passed.
    CondPass = 4,
}

impl CheckOutcome {
    /// Lua's `check.result` string (`None` for unknown).
    pub fn lua_name(self) -> Option<&'static str> {
        match self {
            CheckOutcome::Unknown | CheckOutcome::Neutral => None,
            CheckOutcome::Failed => Some("FAILED"),
            CheckOutcome::Passed => Some("PASSED"),
            CheckOutcome::CondPass => Some("CONDPASS"),
        }
    }
}

/// What one check run observed, as the health module reports it to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The status reached.
    pub status: CheckStatus,
    /// How long it took, in ms (-1 if unknown).
    pub duration_ms: i64,
    /// Extra information for logs, e.g. `Connection refused` or `HTTP status check returned code <503>`.
    pub info: Option<String>,
    /// HTTP status (L7 statuses only).
    pub code: Option<i32>,
    /// Agent check rather than health check.
    pub agent: bool,
}

/// The health counter at the moment of a report (`cur` in `[0, rise+fall-1]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    /// Current counter: `[0, rise-1]` = DOWN side, `[rise, rise+fall-1]` = UP side.
    pub cur: u32,
    /// Consecutive successes to go UP.
    pub rise: u32,
    /// Consecutive failures to go DOWN.
    pub fall: u32,
}

impl Health {
    /// HAProxy's `status: x/y UP|DOWN` fragment of health check log lines.
    pub fn status_text(&self) -> String {
        if self.cur >= self.rise {
            format!("{}/{} UP", self.cur + 1 - self.rise, self.fall)
        } else {
            format!("{}/{} DOWN", self.cur, self.rise)
        }
    }

    /// Applies one result and says whether the server must now go up (`Some(true)`), down
    /// (`Some(false)`), or stays as it is. Rules (HAProxy `check.c`): a success counts up and jumps
    /// to `rise+fall-1` once `rise` is reached; a failure on the UP side counts down while above
    /// `rise`, else falls to 0 (DOWN at once).
    pub fn apply(&mut self, passed: bool, currently_up: bool) -> Option<bool> {
        let top = self.rise + self.fall - 1;
        if passed {
            if self.cur < top {
                self.cur += 1;
                if self.cur >= self.rise {
                    self.cur = top;
                }
            }
            if self.cur >= self.rise && !currently_up {
                return Some(true);
            }
            None
        } else {
            if self.cur > self.rise {
                self.cur -= 1;
            } else {
                self.cur = 0;
            }
            if self.cur < self.rise && currently_up {
                return Some(false);
            }
            None
        }
    }
}

/// A check result with the health counter after it, as events and stats show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// What the check saw.
    pub result: CheckResult,
    /// PASSED / FAILED / CONDPASS.
    pub outcome: CheckOutcome,
    /// The counter after applying it.
    pub health: Health,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_haproxy_transcript() {
        // rise 2 fall 2, starts at rise: first failure goes down at once.
        let mut h = Health {
            cur: 2,
            rise: 2,
            fall: 2,
        };
        assert_eq!(h.apply(false, true), Some(false));
        assert_eq!(h.cur, 0);
        assert_eq!(h.status_text(), "0/2 DOWN");
        assert_eq!(h.apply(true, false), None);
        assert_eq!((h.cur, h.status_text().as_str()), (1, "1/2 DOWN"));
        assert_eq!(h.apply(true, false), Some(true));
        assert_eq!((h.cur, h.status_text().as_str()), (3, "2/2 UP"));
        assert_eq!(h.apply(false, true), None);
        assert_eq!((h.cur, h.status_text().as_str()), (2, "1/2 UP"));
        assert_eq!(h.apply(false, true), Some(false));
        assert_eq!(h.cur, 0);
    }

    #[test]
    fn fall_three_counts_down() {
        let mut h = Health {
            cur: 4,
            rise: 2,
            fall: 3,
        };
        assert_eq!(h.apply(false, true), None);
        assert_eq!(h.apply(false, true), None);
        assert_eq!(h.cur, 2);
        assert_eq!(h.apply(false, true), Some(false));
    }
}
