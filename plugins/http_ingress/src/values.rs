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
/// Instants outside years 1..=9999 (UTC) are refused: consumers of the original service parse
/// `ts` with Python's `datetime`, which knows no other years.
pub(crate) const MIN_MS: i64 = -62_135_596_800_000;
pub(crate) const MAX_MS: i64 = 253_402_300_799_999;

/// Longest customer id accepted, in bytes (UTF-8): the plugin API's, shared with customer lists.
pub use customersim_plugin_api::event::MAX_ID_BYTES;

/// Longest excerpt of a refused value quoted in an error message, in characters, so a huge
/// value does not come back whole in the answer or the log.
const EXCERPT_CHARS: usize = 40;

/// `text` quoted for an error message, cut to its first [`EXCERPT_CHARS`] characters.
pub(crate) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// A customer id: a JSON string, or a whole number published as its digits (as the original
/// did). Numbers that JSON parsers keep only approximately (above `u64::MAX`, with a fraction or
/// an exponent) are refused rather than rounded, so two ids never collide.
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
        if text.len() > MAX_ID_BYTES {
            return Err(E::custom(format!(
                "id of {} bytes is longer than the limit of {MAX_ID_BYTES} bytes",
                text.len()
            )));
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
        // serde_json reads the integer `-0` as the float -0.0, where Python's json reads int 0
        // (published as "0" by the original). `-0.0` arrives the same way and is taken alike.
        if number == 0.0 && number.is_sign_negative() {
            return Ok(Id(CustomerId::Number(0)));
        }
        // serde_json hands over as f64 every number that is not a 64-bit integer: its digits
        // may already be lost (18446744073709551616 and ...617 are the same f64).
        Err(E::custom(format!(
            "the number {number} cannot be kept exactly as an id (only whole numbers from {} to {} can): send the id as a string",
            i64::MIN,
            u64::MAX
        )))
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
            _ => Err(E::custom(format!(
                "invalid value: string {}, expected an integer",
                excerpt(text)
            ))),
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
    check_range(ms).map(Instant).map_err(E::custom)
}

/// `ms` if it lies within years 1 to 9999 (UTC).
pub(crate) fn check_range(ms: i64) -> Result<i64, String> {
    if (MIN_MS..=MAX_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!(
            "{ms} ms since the epoch is outside years 1 to 9999"
        ))
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

/// Parses an ISO 8601 timestamp that carries a time zone, in years 1 to 9999 (UTC).
pub fn parse_iso(text: &str) -> Result<i64, String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let within = |ms: i64| {
        check_range(ms).map_err(|_| {
            format!(
                "timestamp {} is outside years 1 to 9999 (UTC)",
                excerpt(text)
            )
        })
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return within(at.timestamp_millis());
    }
    // ISO 8601 forms RFC 3339 leaves out, such as a "+0100" offset.
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(at) = DateTime::parse_from_str(text, format) {
            return within(at.timestamp_millis());
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
            "timestamp {} has no time zone: add one, e.g. \"Z\" for UTC or an offset such as \"+01:00\"",
            excerpt(text)
        ))
    } else {
        Err(format!(
            "{} is not an ISO 8601 timestamp with a time zone (e.g. \"2021-01-01T00:00:00Z\") nor a number of seconds since the epoch",
            excerpt(text)
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
            Err(_) => Err(E::custom(format!("{number} is outside years 1 to 9999"))),
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
            "unknown step type {}: expected ENTER, MOVE, EXIT or FOCUS",
            excerpt(text)
        )))
    }
}

/// An instant as RFC 3339 in UTC with milliseconds.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// An instant as the original's drafts answer it, Python's `datetime.isoformat()` of a UTC
/// instant: `2021-01-01T00:00:10.123456+00:00`, the fraction left out on a whole second.
pub fn format_us(us: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(us) {
        Some(at) => {
            let seconds = at.format("%Y-%m-%dT%H:%M:%S");
            match at.timestamp_subsec_micros() {
                0 => format!("{seconds}+00:00"),
                micros => format!("{seconds}.{micros:06}+00:00"),
            }
        }
        None => us.to_string(),
    }
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
        // Only years 1 to 9999 (UTC), however they are written.
        assert_eq!(parse_iso("0001-01-01T00:00:00Z"), Ok(MIN_MS));
        assert_eq!(parse_iso("9999-12-31T23:59:59.999Z"), Ok(MAX_MS));
        for outside in [
            "-262143-01-01T00:00:00+0000",
            "+262142-12-31T23:59:59+0000",
            "0001-01-01T00:00:00+01:00",
            "+10000-01-01T00:00:00+0000",
        ] {
            let why = parse_iso(outside).unwrap_err();
            assert!(why.contains("outside years 1 to 9999"), "{outside}: {why}");
            let why = read(&format!("{outside:?}")).unwrap_err().to_string();
            assert!(why.contains("outside years 1 to 9999"), "{outside}: {why}");
        }
        assert!(read("18446744073709551615").is_err());
        assert!(read("-9223372036854775808").is_err());
    }

    #[test]
    fn ids_are_kept_exactly_or_refused() {
        let read = |text: &str| serde_json::from_str::<Id>(text).map(|id| id.0);
        assert_eq!(read("997").unwrap(), CustomerId::Number(997));
        assert_eq!(
            read("18446744073709551615").unwrap(),
            CustomerId::Number(u64::MAX)
        );
        assert_eq!(read("-5").unwrap(), CustomerId::parse("-5"));
        // Python's json reads -0 as int 0: the id "0".
        assert_eq!(read("-0").unwrap(), CustomerId::Number(0));
        assert_eq!(read("-0").unwrap().to_string(), "0");
        assert_eq!(read("\"007\"").unwrap(), CustomerId::parse("007"));
        // Above u64::MAX: a JSON parser keeps only an approximation, so two ids would collide.
        for lossy in ["18446744073709551616", "18446744073709551617", "1e3", "3.5"] {
            let why = read(lossy).unwrap_err().to_string();
            assert!(why.contains("cannot be kept exactly"), "{lossy}: {why}");
        }
        let longest = "x".repeat(MAX_ID_BYTES);
        assert!(read(&format!("{longest:?}")).is_ok());
        let why = read(&format!("\"{longest}y\"")).unwrap_err().to_string();
        assert!(
            why.contains("257 bytes is longer than the limit of 256"),
            "{why}"
        );
        assert!(!why.contains("xxxx"), "the id is not echoed: {why}");
    }

    #[test]
    fn refused_values_are_quoted_as_short_excerpts() {
        assert_eq!(excerpt("ab"), "\"ab\"");
        let long = "é".repeat(1000);
        let quoted = excerpt(&long);
        assert!(quoted.len() < 120, "{quoted}");
        assert!(quoted.ends_with("… (2000 bytes)"), "{quoted}");
        let why = parse_iso(&"9".repeat(100_000)).unwrap_err();
        assert!(why.len() < 300, "{why}");
    }
}
