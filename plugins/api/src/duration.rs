//! Human durations in configs (`30s`, `1m 30s`, `8h`), parsed by `humantime`.
//!
//! Every duration a config gives goes through [`parse`], which refuses what no run can use
//! (negative, not a number, longer than [`MAX`]) instead of panicking or wrapping: arithmetic on
//! instants plus a configured duration can then never overflow.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Serde `with` path for a required [`Duration`] written as `30s`, `1m 30s` or a number of
/// seconds (`#[serde(with = "duration::required")]`). A type rather than a module, so that
/// schemars, which reads the same attribute, describes the field as such a text.
#[allow(non_camel_case_types)]
pub struct required;

impl required {
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for required {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "number"],
            "description": "A duration: `250ms`, `30s`, `1m 30s`, `8h`, `2d`; a bare number is seconds (0 to 1,000 years).",
            "examples": ["30s", "10m", "8h"]
        })
    }
}

/// A duration as configs write it (`2m 30s`), for messages that quote one.
pub fn format(value: Duration) -> String {
    humantime::format_duration(value).to_string()
}

/// Serde `with` path for an optional [`Duration`] (`null` or absent means none).
#[allow(non_camel_case_types)]
pub struct optional;

impl optional {
    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => required::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => parse(&text).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

impl schemars::JsonSchema for optional {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OptionalDuration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "number", "null"],
            "description": "A duration: `250ms`, `30s`, `1m 30s`, `8h`, `2d`; a bare number is seconds (0 to 1,000 years); null for none.",
            "examples": ["8h", null]
        })
    }
}

/// The longest duration a config may give: 1,000 years (of 365.25 days), far beyond any run,
/// yet small enough that an instant in years 1–9999 plus it stays representable.
pub const MAX: Duration = Duration::from_secs(1_000 * 31_557_600);

/// Parses `8h`, `90s`, `1h 30m`, `250ms`; a bare number counts as seconds. Refuses negative
/// values, non-numbers and anything longer than [`MAX`]; errors quote at most a short excerpt.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let shown = crate::excerpt(text);
    let duration = if let Ok(seconds) = text.parse::<f64>() {
        if seconds.is_nan() || seconds < 0.0 {
            return Err(format!(
                "invalid duration {shown}: must be a number of seconds >= 0"
            ));
        }
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    } else {
        humantime::parse_duration(text).map_err(|error| {
            format!(
                "invalid duration {shown} ({}); expected e.g. \"30s\", \"10m\" or \"8h\"",
                crate::excerpt(&error.to_string())
            )
        })?
    };
    if duration > MAX {
        return Err(format!(
            "invalid duration {shown}: longer than the longest allowed ({})",
            humantime::format_duration(MAX)
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_bare_seconds() {
        assert_eq!(parse("8h").unwrap(), Duration::from_secs(8 * 3600));
        assert_eq!(parse("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("2.5").unwrap(), Duration::from_millis(2500));
        assert!(parse("soon").unwrap_err().contains("soon"));
        assert!(parse("-3").is_err());
    }

    #[test]
    fn absurd_durations_are_refused_not_panicking() {
        for text in [
            "1e20",
            "1e300",
            "inf",
            "NaN",
            "300000000y",
            "18446744073709551616s",
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains("invalid duration"), "{text}: {error}");
        }
        assert_eq!(parse("1000y").unwrap(), MAX);
        let long = "9".repeat(10_000);
        assert!(
            parse(&long).unwrap_err().len() < 300,
            "a short excerpt only"
        );
    }
}
