//! Human durations in configs (`30s`, `1m 30s`, `8h`), parsed by `humantime`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Serde `with` module for a required [`Duration`].
pub mod required {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde `with` module for an optional [`Duration`] (`null` or absent means none).
pub mod optional {
    use super::*;

    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => super::required::serialize(value, serializer),
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

/// Parses `8h`, `90s`, `1h 30m`, `250ms`; a bare number counts as seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Ok(Duration::from_secs_f64(seconds));
        }
        return Err(format!("invalid duration {text:?}: must not be negative"));
    }
    humantime::parse_duration(text).map_err(|error| {
        format!("invalid duration {text:?} ({error}); expected e.g. \"30s\", \"10m\" or \"8h\"")
    })
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
}
