//! Keeping secrets out of logs, error messages and printed configs.
//!
//! A config field holding a secret has the type [`Secret`] (a password, a token) or
//! [`CredentialUrl`] (a URL whose password part is secret). That type is the one way to mark a
//! secret: it prints, debug-prints and serializes (`customersim validate`) masked, and its
//! deserializer never echoes the value in an error.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// What a secret is replaced with.
pub const MASK: &str = "******";

/// A secret config value (a password, a token). Only [`Secret::expose`] reveals it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The secret itself, for the one place that needs it (the connection).
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether the secret is empty (unset).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

impl<'de> Deserialize<'de> for Secret {
    /// Any scalar, as text. A secret that resolves to nothing (empty, or YAML's null words
    /// `~`/`null`, e.g. `token: ${TOKEN}` with TOKEN unset or `~`) is an error, never "no
    /// secret": leaving the key out is the one way to have none.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = deserializer.deserialize_any(ScalarText)?;
        if is_nothing(&text) {
            return Err(de::Error::custom(
                "a secret must not be empty or null (leave the key out for none)",
            ));
        }
        Ok(Secret(text))
    }
}

/// Whether a secret's text means nothing: empty or blank, or one of YAML's null words.
fn is_nothing(text: &str) -> bool {
    matches!(text.trim(), "" | "~" | "null" | "Null" | "NULL")
}

/// A URL whose password part is secret (`amqp://user:pass@host/`): shown as
/// `amqp://user:******@host/`, so the host stays visible in logs and `validate`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CredentialUrl(String);

impl CredentialUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> CredentialUrl {
        CredentialUrl(url.into())
    }
    /// The URL with its password, for the connection only.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The URL with its password masked, for messages.
    pub fn masked(&self) -> String {
        mask_url_password(&self.0)
    }
}

impl fmt::Debug for CredentialUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for CredentialUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for CredentialUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.masked())
    }
}

impl<'de> Deserialize<'de> for CredentialUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarText).map(CredentialUrl)
    }
}

/// Takes any scalar as text (a numeric password is still a password) and never puts the value in
/// an error message.
struct ScalarText;

impl Visitor<'_> for ScalarText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string (the value is secret and not shown)")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        Err(E::custom("a secret must not be empty (null)"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Err(E::custom("a secret must not be empty (null)"))
    }
}

/// `amqp://user:pass@host/` → `amqp://user:******@host/`; other text unchanged.
///
/// The password ends at the *last* `@` of the URL, not at the first `/`, `?` or `#`: a password
/// with those characters left unencoded is still masked whole (a URL with an `@` in its path
/// may have more masked than needed, never less).
pub fn mask_url_password(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let rest = &text[scheme_end + 3..];
    let Some(at) = rest.rfind('@') else {
        return text.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.split_once(':') {
        Some((user, _password)) => {
            format!("{}{user}:{MASK}{}", &text[..scheme_end + 3], &rest[at..])
        }
        None if !userinfo.is_empty() && text.starts_with("redis") => {
            format!("{}{MASK}{}", &text[..scheme_end + 3], &rest[at..])
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let secret: Secret = serde_yaml::from_str("123456").unwrap();
        assert_eq!(secret.expose(), "123456");
        assert_eq!(format!("{secret} {secret:?}"), "****** ******");
        assert_eq!(serde_yaml::to_string(&secret).unwrap().trim(), "'******'");
        let url: CredentialUrl = serde_yaml::from_str("amqp://u:hunter2@h/").unwrap();
        assert_eq!(url.to_string(), "amqp://u:******@h/");
        let error = serde_yaml::from_str::<Secret>("[hunter2]").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn masks_the_password_of_urls_only() {
        assert_eq!(
            mask_url_password("amqp://guest:s3cret@host:5672/%2f"),
            "amqp://guest:******@host:5672/%2f"
        );
        assert_eq!(
            mask_url_password("redis://:pw@127.0.0.1/0"),
            "redis://:******@127.0.0.1/0"
        );
        assert_eq!(
            mask_url_password("redis://pw@127.0.0.1/0"),
            "redis://******@127.0.0.1/0"
        );
        assert_eq!(
            mask_url_password("amqp://guest@host/"),
            "amqp://guest@host/"
        );
        assert_eq!(mask_url_password("mqtt://host:1883"), "mqtt://host:1883");
    }

    #[test]
    fn passwords_with_unencoded_delimiters_are_masked_whole() {
        for password in ["pa/ss", "pa#ss", "pa?ss", "p@ss", "/#?@:", "a/b?c#d@e"] {
            for url in [
                format!("amqp://guest:{password}@host:5672/%2f"),
                format!("redis://:{password}@127.0.0.1:6379/0"),
                format!("rediss://user:{password}@h/0?x=1"),
            ] {
                let masked = mask_url_password(&url);
                assert!(!masked.contains(password), "{url} -> {masked}");
                assert!(masked.contains(MASK), "{url} -> {masked}");
            }
        }
    }

    #[test]
    fn empty_or_null_secrets_are_refused_without_echoing_values() {
        for text in ["''", "~", "null", "'null'", "'~'", "' '"] {
            assert!(serde_yaml::from_str::<Secret>(text).is_err(), "{text}");
        }
        for text in ["123456", "12.5", "true", "'0'"] {
            let secret: Secret = serde_yaml::from_str(text).unwrap();
            assert!(!secret.is_empty(), "{text}");
        }
        let error = serde_yaml::from_str::<Secret>("{hunter2: 1}").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
