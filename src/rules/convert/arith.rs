//! The integer converters (`add`, `sub`, `mul`, `div`, `mod`, `and`, `or`, `xor`, `neg`,
//! `cpl`, `odd`, `even`) with HAProxy's edge cases: sums and products saturate, a division by
//! zero gives the largest integer and a modulo by zero gives 0.

/// One integer converter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntConv {
    /// `add(<n>)`.
    Add(i64),
    /// `sub(<n>)`.
    Sub(i64),
    /// `mul(<n>)`.
    Mul(i64),
    /// `div(<n>)`.
    Div(i64),
    /// `mod(<n>)`.
    Mod(i64),
    /// `and(<n>)`.
    And(i64),
    /// `or(<n>)`.
    Or(i64),
    /// `xor(<n>)`.
    Xor(i64),
    /// `neg`.
    Neg,
    /// `cpl`: the bits inverted.
    Cpl,
    /// `odd`: a boolean.
    Odd,
    /// `even`: a boolean.
    Even,
}

/// The keywords, for messages.
pub const NAMES: &[&str] = &[
    "add", "sub", "mul", "div", "mod", "and", "or", "xor", "neg", "cpl", "odd", "even",
];

/// What a converter gives: an integer, or a boolean (`odd`, `even`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

impl IntConv {
    /// Parses `name(args)`; `None` when `name` is not one of these converters.
    pub fn parse(name: &str, args: Option<&str>) -> Option<Result<IntConv, String>> {
        if !NAMES.contains(&name) {
            return None;
        }
        // not trimmed: HAProxy refuses `add( 1)`
        let args = args.unwrap_or("");
        let unary = match name {
            "neg" => Some(IntConv::Neg),
            "cpl" => Some(IntConv::Cpl),
            "odd" => Some(IntConv::Odd),
            "even" => Some(IntConv::Even),
            _ => None,
        };
        if let Some(c) = unary {
            return Some(if args.is_empty() {
                Ok(c)
            } else {
                Err(format!("converter '{name}' does not support any args"))
            });
        }
        if let Some((_, rest)) = args.split_once(',') {
            return Some(Err(format!(
                "invalid arg 2 in converter '{name}' : expected ')' before ',{rest})'"
            )));
        }
        // HAProxy's read_int64, whole: a sign, digits, clamped (nothing at all reads as 0)
        let (n, used) = crate::rules::pattern::read_int64(args.as_bytes());
        if used != args.len() {
            return Some(Err(format!(
                "invalid args in converter '{name}' : expects an integer or a variable name"
            )));
        }
        Some(Ok(match name {
            "add" => IntConv::Add(n),
            "sub" => IntConv::Sub(n),
            "mul" => IntConv::Mul(n),
            "div" => IntConv::Div(n),
            "mod" => IntConv::Mod(n),
            "and" => IntConv::And(n),
            "or" => IntConv::Or(n),
            _ => IntConv::Xor(n),
        }))
    }

    /// The same converter with `n` as its operand (a variable's value, read when it runs).
    pub fn with_operand(self, n: i64) -> IntConv {
        match self {
            IntConv::Add(_) => IntConv::Add(n),
            IntConv::Sub(_) => IntConv::Sub(n),
            IntConv::Mul(_) => IntConv::Mul(n),
            IntConv::Div(_) => IntConv::Div(n),
            IntConv::Mod(_) => IntConv::Mod(n),
            IntConv::And(_) => IntConv::And(n),
            IntConv::Or(_) => IntConv::Or(n),
            IntConv::Xor(_) => IntConv::Xor(n),
            other => other,
        }
    }

    /// Its keyword.
    pub fn name(&self) -> &'static str {
        match self {
            IntConv::Add(_) => "add",
            IntConv::Sub(_) => "sub",
            IntConv::Mul(_) => "mul",
            IntConv::Div(_) => "div",
            IntConv::Mod(_) => "mod",
            IntConv::And(_) => "and",
            IntConv::Or(_) => "or",
            IntConv::Xor(_) => "xor",
            IntConv::Neg => "neg",
            IntConv::Cpl => "cpl",
            IntConv::Odd => "odd",
            IntConv::Even => "even",
        }
    }

    /// Whether it gives a boolean.
    pub fn is_bool(&self) -> bool {
        matches!(self, IntConv::Odd | IntConv::Even)
    }

    /// `v` converted.
    pub fn apply(&self, v: i64) -> Out {
        Out::Int(match *self {
            IntConv::Add(n) => v.saturating_add(n),
            IntConv::Sub(n) => v.saturating_sub(n),
            IntConv::Mul(n) => v.saturating_mul(n),
            IntConv::Div(0) => i64::MAX,
            IntConv::Div(n) => v.checked_div(n).unwrap_or(i64::MAX),
            IntConv::Mod(0) => 0,
            IntConv::Mod(n) => v.checked_rem(n).unwrap_or(0),
            IntConv::And(n) => v & n,
            IntConv::Or(n) => v | n,
            IntConv::Xor(n) => v ^ n,
            IntConv::Neg => v.checked_neg().unwrap_or(i64::MAX),
            IntConv::Cpl => !v,
            IntConv::Odd => return Out::Bool(v & 1 == 1),
            IntConv::Even => return Out::Bool(v & 1 == 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, args: Option<&str>) -> IntConv {
        IntConv::parse(name, args).expect("known").expect(name)
    }

    #[test]
    fn what_haproxy_2_6_gave_for_req_len_11() {
        let chain = [
            c("add", Some("5")),
            c("mul", Some("3")),
            c("div", Some("2")),
            c("mod", Some("7")),
        ];
        let v = chain.iter().fold(11, |v, c| match c.apply(v) {
            Out::Int(i) => i,
            Out::Bool(_) => unreachable!("integers only"),
        });
        assert_eq!(v, 3);
        assert_eq!(c("neg", None).apply(11), Out::Int(-11));
        assert_eq!(c("cpl", None).apply(11), Out::Int(-12));
        assert_eq!(c("odd", None).apply(11), Out::Bool(true));
        assert_eq!(c("div", Some("0")).apply(11), Out::Int(i64::MAX));
        assert_eq!(c("mod", Some("0")).apply(11), Out::Int(0));
    }

    #[test]
    fn arithmetic_saturates_as_haproxy_s() {
        assert_eq!(c("add", Some("5")).apply(i64::MAX), Out::Int(i64::MAX));
        assert_eq!(c("sub", Some("3")).apply(1), Out::Int(-2));
        assert_eq!(c("mul", Some("-2")).apply(i64::MAX), Out::Int(i64::MIN));
        assert_eq!(c("div", Some("0")).apply(7), Out::Int(i64::MAX));
        assert_eq!(c("div", Some("-1")).apply(i64::MIN), Out::Int(i64::MAX));
        assert_eq!(c("div", Some("2")).apply(-7), Out::Int(-3));
        assert_eq!(c("mod", Some("0")).apply(7), Out::Int(0));
        assert_eq!(c("mod", Some("3")).apply(-7), Out::Int(-1));
        assert_eq!(c("and", Some("6")).apply(3), Out::Int(2));
        assert_eq!(c("neg", None).apply(i64::MIN), Out::Int(i64::MAX));
        assert_eq!(c("cpl", None).apply(0), Out::Int(-1));
        assert_eq!(c("odd", None).apply(3), Out::Bool(true));
        assert_eq!(c("even", None).apply(3), Out::Bool(false));
        // no operand: 0, as HAProxy's check_operator reads an empty one
        assert_eq!(c("add", None).apply(7), Out::Int(7));
        assert_eq!(c("mul", Some("")).apply(7), Out::Int(0));
        assert!(IntConv::parse("add", Some(" 1")).expect("known").is_err());
        assert_eq!(
            IntConv::parse("add", Some("1,2"))
                .expect("known")
                .unwrap_err(),
            "invalid arg 2 in converter 'add' : expected ')' before ',2)'"
        );
        assert!(IntConv::parse("add", Some("x")).expect("known").is_err());
        assert!(IntConv::parse("neg", Some("1")).expect("known").is_err());
        assert!(IntConv::parse("lower", None).is_none());
    }
}
