//! Weight and number parsing with HAProxy's C semantics, so every source gets the same errors.

/// C `strtol(s, &end, 10)`: the value (saturated) if digits were read, and the unparsed rest.
pub fn strtol(s: &str) -> (Option<i64>, &str) {
    let t = s.trim_start();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = body.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return (None, s);
    }
    // out of range saturates as C's does (LONG_MIN / LONG_MAX)
    let v = match body[..n].parse::<i64>() {
        Ok(v) if neg => -v,
        Ok(v) => v,
        Err(_) if neg => i64::MIN,
        Err(_) => i64::MAX,
    };
    (Some(v), &body[n..])
}

/// HAProxy's `server_parse_weight_change_request` text checks, in its order; returns the
/// absolute weight. Shared by the Runtime API and Lua's `Server:set_weight`.
pub fn parse_weight(iweight: u32, text: &str) -> Result<u32, &'static str> {
    if text.is_empty() {
        return Err("Require <weight> or <weight%>.");
    }
    let (v, rest) = strtol(text);
    let Some(mut w) = v else {
        return Err("Empty weight string empty or preceded by garbage");
    };
    if rest == "%" {
        if w < 0 {
            return Err("Relative weight must be positive.");
        }
        w = (iweight as i64 * w.min(25600) / 100).min(256);
    } else if !(0..=256).contains(&w) {
        return Err("Absolute weight can only be between 0 and 256 inclusive.");
    } else if !rest.is_empty() {
        return Err("Trailing garbage in weight string");
    }
    Ok(w as u32)
}

/// HAProxy's `server_parse_maxconn_change_request` text checks (harp refuses negative values):
/// the Runtime API's `set maxconn server`, Lua's `Server:set_maxconn` and an agent's `maxconn:`.
pub fn parse_maxconn(text: &str) -> Result<u32, &'static str> {
    if text.is_empty() {
        return Err("Require <maxconn>.");
    }
    match strtol(text) {
        (None, _) => Err("maxconn string empty or preceded by garbage"),
        (Some(_), rest) if !rest.is_empty() => Err("Trailing garbage in maxconn string"),
        (Some(v), _) => u32::try_from(v).map_err(|_| "Value out of range."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxconn_texts_follow_haproxy() {
        assert_eq!(parse_maxconn(""), Err("Require <maxconn>."));
        assert_eq!(
            parse_maxconn("x"),
            Err("maxconn string empty or preceded by garbage")
        );
        assert_eq!(
            parse_maxconn("10x"),
            Err("Trailing garbage in maxconn string")
        );
        assert_eq!(parse_maxconn("-1"), Err("Value out of range."));
        assert_eq!(parse_maxconn("100"), Ok(100));
    }

    #[test]
    fn weight_texts_follow_haproxy() {
        assert_eq!(parse_weight(1, ""), Err("Require <weight> or <weight%>."));
        assert_eq!(
            parse_weight(1, "x"),
            Err("Empty weight string empty or preceded by garbage")
        );
        assert_eq!(
            parse_weight(1, "5x"),
            Err("Trailing garbage in weight string")
        );
        assert_eq!(
            parse_weight(1, "300x"),
            Err("Absolute weight can only be between 0 and 256 inclusive.")
        );
        assert_eq!(
            parse_weight(1, "-1%"),
            Err("Relative weight must be positive.")
        );
        assert_eq!(parse_weight(10, "50%"), Ok(5));
        assert_eq!(parse_weight(100, "1000%"), Ok(256));
        assert_eq!(parse_weight(1, "256"), Ok(256));
    }
}
