//! The leaf values of request bodies: customer ids, integers, instants and step types, each with a
//! hand-written serde visitor, plus the ISO 8601 parsing and formatting of instants.
//!
//! They are apart from the bodies that hold them (`body`, `draft`) because they carry the
//! original service's lenient input rules (numeric ids published as their digits, floats
//! truncated, epoch numbers in seconds or milliseconds, timestamps that must carry a zone,
//! case-insensitive step types) and must accept exactly what it accepted; the visitors read a
//! value without allocating, which keeps scenario parsing fast.

use std::fmt;

use customersim_plugin_api::CustomerId;
use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};

/// Epoch numbers above this are milliseconds, below it seconds (the original's pydantic rule).
const MS_WATERSHED: f64 = 2e10;
/// Instants outside years 1..=9999 are refused.
pub(crate) const MIN_MS: i64 = -62_135_596_800_000;
pub(crate) const MAX_MS: i64 = 253_402_300_799_999;

/// A customer id: a JSON string, or a number published as its digits (as the original did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id(pub CustomerId);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Id, D::Error> {
        deserializer.deserialize_any(IdVisitor)
    }
}

struct IdVisitor;

impl Visitor<'_> for IdVisitor {
    type Value = Id;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a customer id (a string or a number)")
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Id, E> {
        if text.is_empty() {
            return Err(E::invalid_value(Unexpected::Str(text), &"a non-empty id"));
        }
        Ok(Id(CustomerId::parse(text)))
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Id, E> {
        Ok(Id(CustomerId::Number(number)))
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Id, E> {
        Ok(Id(CustomerId::parse(&number.to_string())))
    }
    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Id, E> {
        Ok(Id(CustomerId::parse(&number.to_string())))
    }
}

/// An integer: a JSON integer, a float (truncated toward zero, as the original's `int` fields
/// did) or a string holding a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Int, D::Error> {
        deserializer.deserialize_any(IntVisitor)
    }
}

struct IntVisitor;

fn truncate<E: de::Error>(number: f64) -> Result<i64, E> {
    // 2^63 as f64; anything at or past it does not fit.
    if number.is_finite() && number.abs() < 9.223_372_036_854_775e18 {
        Ok(number.trunc() as i64)
    } else {
        Err(E::invalid_value(
            Unexpected::Float(number),
            &"an integer within ±9.2e18",
        ))
    }
}

impl Visitor<'_> for IntVisitor {
    type Value = Int;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Int, E> {
        Ok(Int(number))
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Int, E> {
        i64::try_from(number).map(Int).map_err(|_| {
            E::invalid_value(Unexpected::Unsigned(number), &"an integer within ±9.2e18")
        })
    }
    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Int, E> {
        truncate(number).map(Int)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Int, E> {
        let trimmed = text.trim();
        if let Ok(number) = trimmed.parse::<i64>() {
            return Ok(Int(number));
        }
        match trimmed.parse::<f64>() {
            Ok(number) if number.is_finite() => truncate(number).map(Int),
            _ => Err(E::invalid_value(Unexpected::Str(text), &self)),
        }
    }
}

/// An instant in milliseconds since the epoch: an ISO 8601 timestamp with a time zone, or a
/// number of seconds since the epoch (milliseconds when above 2e10), as the original accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub i64);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Instant, D::Error> {
        deserializer.deserialize_any(InstantVisitor)
    }
}

struct InstantVisitor;

fn in_range<E: de::Error>(ms: i64) -> Result<Instant, E> {
    if (MIN_MS..=MAX_MS).contains(&ms) {
        Ok(Instant(ms))
    } else {
        Err(E::custom(format!(
            "{ms} ms since the epoch is outside years 1 to 9999"
        )))
    }
}

fn epoch_float<E: de::Error>(number: f64) -> Result<Instant, E> {
    if !number.is_finite() {
        return Err(E::invalid_value(Unexpected::Float(number), &InstantVisitor));
    }
    let ms = if number.abs() > MS_WATERSHED {
        number.round()
    } else {
        (number * 1000.0).round()
    };
    if ms.abs() > 1e15 {
        return Err(E::custom(format!("{number} is outside years 1 to 9999")));
    }
    in_range(ms as i64)
}

fn epoch_int<E: de::Error>(number: i64) -> Result<Instant, E> {
    if number.unsigned_abs() > MS_WATERSHED as u64 {
        in_range(number)
    } else {
        in_range(number * 1000)
    }
}

/// Parses an ISO 8601 timestamp that carries a time zone.
pub fn parse_iso(text: &str) -> Result<i64, String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp_millis());
    }
    // ISO 8601 forms RFC 3339 leaves out, such as a "+0100" offset.
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(at) = DateTime::parse_from_str(text, format) {
            return Ok(at.timestamp_millis());
        }
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .any(|format| NaiveDateTime::parse_from_str(text, format).is_ok())
        || NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok();
    if naive {
        Err(format!(
            "timestamp {text:?} has no time zone: add one, e.g. \"Z\" for UTC or an offset such as \"+01:00\""
        ))
    } else {
        Err(format!(
            "{text:?} is not an ISO 8601 timestamp with a time zone (e.g. \"2021-01-01T00:00:00Z\") nor a number of seconds since the epoch"
        ))
    }
}

impl Visitor<'_> for InstantVisitor {
    type Value = Instant;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ISO 8601 timestamp with a time zone or a number of seconds since the epoch")
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Instant, E> {
        epoch_int(number)
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Instant, E> {
        match i64::try_from(number) {
            Ok(number) => epoch_int(number),
            Err(_) => in_range(i64::MAX),
        }
    }
    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Instant, E> {
        epoch_float(number)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Instant, E> {
        let trimmed = text.trim();
        if let Ok(number) = trimmed.parse::<i64>() {
            return epoch_int(number);
        }
        if let Ok(number) = trimmed.parse::<f64>() {
            return epoch_float(number);
        }
        parse_iso(trimmed).map(Instant).map_err(E::custom)
    }
}

/// What a scenario step does. Case-insensitive on input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepType {
    Enter,
    Move,
    Exit,
    /// Drafts only: stay at this place for a while.
    Focus,
}

impl StepType {
    pub(crate) fn name(self) -> &'static str {
        match self {
            StepType::Enter => "ENTER",
            StepType::Move => "MOVE",
            StepType::Exit => "EXIT",
            StepType::Focus => "FOCUS",
        }
    }
}

impl<'de> Deserialize<'de> for StepType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StepType, D::Error> {
        deserializer.deserialize_str(StepTypeVisitor)
    }
}

struct StepTypeVisitor;

impl Visitor<'_> for StepTypeVisitor {
    type Value = StepType;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a step type (ENTER, MOVE, EXIT or FOCUS)")
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<StepType, E> {
        for kind in [
            StepType::Enter,
            StepType::Move,
            StepType::Exit,
            StepType::Focus,
        ] {
            if text.eq_ignore_ascii_case(kind.name()) {
                return Ok(kind);
            }
        }
        Err(E::custom(format!(
            "unknown step type {text:?}: expected ENTER, MOVE, EXIT or FOCUS"
        )))
    }
}

/// An instant as RFC 3339 in UTC with milliseconds.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_need_a_zone_or_are_epoch_numbers() {
        assert_eq!(parse_iso("2021-01-01T00:00:00Z"), Ok(1_609_459_200_000));
        assert_eq!(
            parse_iso("2021-01-01T01:00:00.250+01:00"),
            Ok(1_609_459_200_250)
        );
        assert_eq!(parse_iso("2021-01-01T01:00:00+0100"), Ok(1_609_459_200_000));
        let why = parse_iso("2021-01-01T00:00:00.000000").unwrap_err();
        assert!(why.contains("no time zone"), "{why}");
        let read = |text: &str| serde_json::from_str::<Instant>(text).map(|at| at.0);
        assert_eq!(read("1609459200").unwrap(), 1_609_459_200_000);
        assert_eq!(read("1609459200.5").unwrap(), 1_609_459_200_500);
        assert_eq!(read("1609459200123").unwrap(), 1_609_459_200_123);
        assert_eq!(read("\"1609459200\"").unwrap(), 1_609_459_200_000);
        assert!(read("1e300").is_err());
        assert!(read("true").is_err());
    }
}
