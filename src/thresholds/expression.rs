//! One threshold's text, `AGGREGATION OPERATOR VALUE` (`p(99) < 2s`, `rate < 0.01`,
//! `count == 0`, `avg >= 45000`), read by a small hand-written scanner: the grammar is three
//! tokens, and a scanner of its own names in its errors exactly which token is wrong and what
//! would be right, which a general parser's errors would not.
//!
//! This module reads the text only; which aggregations and units a metric accepts is the
//! caller's ([`super::Metric::resolve`]).

use std::fmt;

/// Most characters of a threshold's text: it names a testcase in the JUnit file and a line of the
/// table, so it stays short; a real expression is a dozen characters.
pub const MAX_CHARS: usize = 200;

/// What is computed over a metric's measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Aggregation {
    /// `p(N)`: the N-th percentile, 0 ≤ N ≤ 100.
    Percentile(f64),
    /// `avg`
    Avg,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `count`
    Count,
    /// `rate`
    Rate,
    /// `value`
    Value,
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Aggregation::Percentile(percent) => write!(f, "p({percent})"),
            Aggregation::Avg => f.write_str("avg"),
            Aggregation::Min => f.write_str("min"),
            Aggregation::Max => f.write_str("max"),
            Aggregation::Count => f.write_str("count"),
            Aggregation::Rate => f.write_str("rate"),
            Aggregation::Value => f.write_str("value"),
        }
    }
}

/// How the measured figure is compared with the bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
}

impl Operator {
    /// Whether `measured OPERATOR bound` holds (`==` and `!=` compare exactly: they are meant for
    /// counts).
    pub fn holds(self, measured: f64, bound: f64) -> bool {
        match self {
            Operator::Less => measured < bound,
            Operator::LessOrEqual => measured <= bound,
            Operator::Greater => measured > bound,
            Operator::GreaterOrEqual => measured >= bound,
            Operator::Equal => measured == bound,
            Operator::NotEqual => measured != bound,
        }
    }

    /// As written: `<`, `<=`, …
    pub fn symbol(self) -> &'static str {
        match self {
            Operator::Less => "<",
            Operator::LessOrEqual => "<=",
            Operator::Greater => ">",
            Operator::GreaterOrEqual => ">=",
            Operator::Equal => "==",
            Operator::NotEqual => "!=",
        }
    }
}

/// The unit written after the value's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A bare number.
    None,
    /// `us` or `µs`
    Micros,
    /// `ms`
    Millis,
    /// `s`
    Seconds,
    /// `m`
    Minutes,
    /// `%`
    Percent,
}

impl Unit {
    /// A duration unit's length in seconds; `None` for a bare number and `%`.
    pub fn seconds(self) -> Option<f64> {
        match self {
            Unit::Micros => Some(1e-6),
            Unit::Millis => Some(1e-3),
            Unit::Seconds => Some(1.0),
            Unit::Minutes => Some(60.0),
            Unit::None | Unit::Percent => None,
        }
    }
}

/// A threshold's text, read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expression {
    pub aggregation: Aggregation,
    pub operator: Operator,
    /// The value's number as written (before its unit).
    pub number: f64,
    pub unit: Unit,
}

/// What every error about the shape of the text ends with.
const EXAMPLE: &str = "write AGGREGATION OPERATOR VALUE, e.g. \"p(99) < 2s\"";

/// Reads `text`. The error says what is wrong, without the text itself (the caller quotes it).
pub fn parse(text: &str) -> Result<Expression, String> {
    if text.chars().count() > MAX_CHARS {
        return Err(format!("longer than {MAX_CHARS} characters"));
    }
    let mut scanner = Scanner { rest: text };
    scanner.skip_spaces();
    if scanner.rest.is_empty() {
        return Err(format!("empty; {EXAMPLE}"));
    }
    let aggregation = scanner.aggregation()?;
    let operator = scanner.operator(aggregation)?;
    let (number, unit) = scanner.value(operator)?;
    scanner.skip_spaces();
    if !scanner.rest.is_empty() {
        return Err(format!(
            "unexpected {} after the value; {EXAMPLE}",
            crate::plugin_api::excerpt(scanner.rest)
        ));
    }
    Ok(Expression {
        aggregation,
        operator,
        number,
        unit,
    })
}

/// The text not yet read.
struct Scanner<'a> {
    rest: &'a str,
}

impl<'a> Scanner<'a> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start();
    }

    /// The longest prefix whose characters satisfy `keep`, consumed.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let end = self
            .rest
            .char_indices()
            .find(|(_, c)| !keep(*c))
            .map_or(self.rest.len(), |(index, _)| index);
        let (taken, rest) = self.rest.split_at(end);
        self.rest = rest;
        taken
    }

    /// Consumes `prefix` if the text starts with it.
    fn eat(&mut self, prefix: &str) -> bool {
        match self.rest.strip_prefix(prefix) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn aggregation(&mut self) -> Result<Aggregation, String> {
        let name = self.take_while(|c| c.is_ascii_alphabetic());
        let aggregation = match name {
            "avg" => Aggregation::Avg,
            "min" => Aggregation::Min,
            "max" => Aggregation::Max,
            "count" => Aggregation::Count,
            "rate" => Aggregation::Rate,
            "value" => Aggregation::Value,
            "p" => self.percentile()?,
            "" => {
                return Err(format!(
                    "expected an aggregation (p(N), avg, min, max, count, rate or value) at {}; \
                     {EXAMPLE}",
                    crate::plugin_api::excerpt(self.rest)
                ));
            }
            other => {
                return Err(format!(
                    "unknown aggregation {}: expected p(N), avg, min, max, count, rate or value",
                    crate::plugin_api::excerpt(other)
                ));
            }
        };
        self.skip_spaces();
        Ok(aggregation)
    }

    /// After `p`: `(N)`.
    fn percentile(&mut self) -> Result<Aggregation, String> {
        let wrong = || "p(N) takes a percentile N from 0 to 100, e.g. p(99) or p(99.9)".to_string();
        self.skip_spaces();
        if !self.eat("(") {
            return Err(wrong());
        }
        self.skip_spaces();
        let number = self.take_while(|c| c.is_ascii_digit() || c == '.');
        self.skip_spaces();
        if !self.eat(")") {
            return Err(wrong());
        }
        match number.parse::<f64>() {
            Ok(percent) if (0.0..=100.0).contains(&percent) => Ok(Aggregation::Percentile(percent)),
            _ => Err(wrong()),
        }
    }

    fn operator(&mut self, after: Aggregation) -> Result<Operator, String> {
        // Two-character operators first, so `<=` is not read as `<` then `=`.
        let operators = [
            ("<=", Operator::LessOrEqual),
            (">=", Operator::GreaterOrEqual),
            ("==", Operator::Equal),
            ("!=", Operator::NotEqual),
            ("<", Operator::Less),
            (">", Operator::Greater),
        ];
        for (symbol, operator) in operators {
            if self.eat(symbol) {
                self.skip_spaces();
                return Ok(operator);
            }
        }
        let found = match self.rest {
            "" => "nothing".to_string(),
            rest => crate::plugin_api::excerpt(rest),
        };
        Err(format!(
            "expected an operator (<, <=, >, >=, == or !=) after {after}, found {found}"
        ))
    }

    fn value(&mut self, after: Operator) -> Result<(f64, Unit), String> {
        let number = self.take_while(|c| c.is_ascii_digit() || c == '.');
        if number.is_empty() {
            let found = match self.rest {
                "" => "nothing".to_string(),
                rest => crate::plugin_api::excerpt(rest),
            };
            return Err(format!(
                "expected a number (0 or more) after {}, found {found}",
                after.symbol()
            ));
        }
        let Ok(value) = number.parse::<f64>() else {
            return Err(format!(
                "{} is not a number",
                crate::plugin_api::excerpt(number)
            ));
        };
        self.skip_spaces();
        let unit = self.take_while(|c| c.is_alphabetic() || c == '%');
        let unit = match unit {
            "" => Unit::None,
            "us" | "µs" | "μs" => Unit::Micros,
            "ms" => Unit::Millis,
            "s" => Unit::Seconds,
            "m" => Unit::Minutes,
            "%" => Unit::Percent,
            other => {
                return Err(format!(
                    "unknown unit {} after {number}: expected us, ms, s or m (durations) or %",
                    crate::plugin_api::excerpt(other)
                ));
            }
        };
        Ok((value, unit))
    }
}
