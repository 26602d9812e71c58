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
///
/// The text is kept as given (a config error must be able to say it is malformed) and read with
/// the `url` crate, the parser the AMQP and Redis clients use themselves, so what is masked and
/// checked is what they will connect with. A text that is not a URL with a host is shown as
/// [`MASK`] whole: nobody can tell where its password is.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CredentialUrl(String);

impl CredentialUrl {
    /// Wraps a URL (unchecked: [`CredentialUrl::parse`] checks it).
    pub fn new(url: impl Into<String>) -> CredentialUrl {
        CredentialUrl(url.into())
    }
    /// The URL with its password, for the connection only.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The URL with its password masked, for messages.
    pub fn masked(&self) -> String {
        match self.parse_any() {
            Ok(mut url) => {
                if url.password().is_some() {
                    url.set_password(Some(MASK)).expect("a URL with a host");
                } else if !url.username().is_empty() && url.scheme().starts_with("redis") {
                    // Redis clients before ACLs took `redis://secret@host` as the password.
                    url.set_username(MASK).expect("a URL with a host");
                }
                url.into()
            }
            Err(_) => MASK.to_string(),
        }
    }

    /// The URL parsed and checked: a well-formed URL with one of `schemes` (`amqp:`…), a host
    /// after `//`, and no `@` after the host (what a password with an unencoded `/`, `?` or `#`
    /// leaves there, and which would otherwise connect to the wrong host). The error says
    /// what is wrong without quoting the value (it may hold the password).
    pub fn parse(&self, schemes: &[&str]) -> Result<url::Url, UrlError> {
        let url = self.parse_any()?;
        if !schemes.contains(&url.scheme()) {
            return Err(UrlError(format!(
                "the scheme must be {}",
                schemes
                    .iter()
                    .map(|scheme| format!("{scheme}://"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        Ok(url)
    }

    /// The URL parsed, with a host and nothing that looks like a misplaced password.
    fn parse_any(&self) -> Result<url::Url, UrlError> {
        let url = url::Url::parse(&self.0)
            .map_err(|error| UrlError(format!("not a valid URL ({error})")))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError(
                "no host (a URL needs `//host` after its scheme)".into(),
            ));
        }
        if url[url::Position::AfterHost..].contains('@') {
            return Err(UrlError(
                "an `@` after the host: percent-encode `/`, `?`, `#` and `@` in the user name and password (%2F, %3F, %23, %40)".into(),
            ));
        }
        Ok(url)
    }
}

/// Why a [`CredentialUrl`] is refused; never quotes the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlError(String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UrlError {}

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

/// A secret is a text in the pipeline file; the schema says it is one and never shows a value.
impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "A secret (never logged, masked by `validate`); usually `${VARIABLE}` from the environment."
        })
    }
}

/// A URL that may hold a password.
impl schemars::JsonSchema for CredentialUrl {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CredentialUrl".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A URL such as `scheme://user:password@host:port/path`; its password is never logged and masked by `validate`."
        })
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
        assert_eq!(url.expose(), "amqp://u:hunter2@h/");
        assert_eq!(url.to_string(), "amqp://u:******@h/");
        let error = serde_yaml::from_str::<Secret>("[hunter2]").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    fn masked(url: &str) -> String {
        CredentialUrl::new(url).masked()
    }

    #[test]
    fn masks_the_password_of_urls_only() {
        assert_eq!(
            masked("amqp://guest:s3cret@host:5672/%2f"),
            "amqp://guest:******@host:5672/%2f"
        );
        assert_eq!(
            masked("redis://:pw@127.0.0.1/0"),
            "redis://:******@127.0.0.1/0"
        );
        assert_eq!(
            masked("redis://pw@127.0.0.1/0"),
            "redis://******@127.0.0.1/0"
        );
        assert_eq!(masked("amqp://guest@host/"), "amqp://guest@host/");
        assert_eq!(masked("mqtt://host:1883"), "mqtt://host:1883");
    }

    #[test]
    fn passwords_with_unencoded_delimiters_are_masked_whole() {
        for password in [
            "pa/ss",
            "pa#ss",
            "pa?ss",
            "p@ss",
            "/#?@:",
            "a/b?c#d@e",
            "12/ss",
            "99?x",
            "1#y",
        ] {
            for url in [
                format!("amqp://guest:{password}@host:5672/%2f"),
                format!("redis://:{password}@127.0.0.1:6379/0"),
                format!("rediss://user:{password}@h/0?x=1"),
            ] {
                let masked = masked(&url);
                assert!(!masked.contains(password), "{url} -> {masked}");
                assert!(masked.contains(MASK), "{url} -> {masked}");
                let error = CredentialUrl::new(&url)
                    .parse(&["amqp", "redis", "rediss"])
                    .map(|url| url.to_string());
                if password != "p@ss" {
                    assert!(error.is_err(), "{url} -> {error:?}");
                }
                assert!(
                    !format!("{error:?}").contains(password),
                    "{url} -> {error:?}"
                );
            }
        }
    }

    #[test]
    fn urls_without_a_host_are_refused_and_masked_whole() {
        for url in [
            "amqp:/user:PASS@host/vhost",
            "amqp:user:PASS@host",
            "amqp:///PASS@x",
            "user:PASS@host",
            "PASS",
            "",
            "amqp://user:PASS@[::1/",
        ] {
            let credential = CredentialUrl::new(url);
            assert_eq!(credential.masked(), MASK, "{url}");
            assert_eq!(format!("{credential} {credential:?}"), "****** ******");
            let error = credential
                .parse(&["amqp", "amqps"])
                .unwrap_err()
                .to_string();
            assert!(!error.contains("PASS"), "{url}: {error}");
        }
        let error = CredentialUrl::new("amqp:/user:PASS@host/")
            .parse(&["amqp"])
            .unwrap_err();
        assert!(error.to_string().contains("no host"), "{error}");
    }

    #[test]
    fn parse_checks_the_scheme() {
        let url = CredentialUrl::new("AMQPS://u:PASS@Broker.example:5671/prod");
        let parsed = url.parse(&["amqp", "amqps"]).unwrap();
        assert_eq!(parsed.scheme(), "amqps");
        assert_eq!(parsed.password(), Some("PASS"));
        let error = CredentialUrl::new("http://u:PASS@host/")
            .parse(&["amqp", "amqps"])
            .unwrap_err()
            .to_string();
        assert_eq!(error, "the scheme must be amqp:// or amqps://");
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
