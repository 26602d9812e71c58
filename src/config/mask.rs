//! Secret masking for `customersim validate` and logs: passwords, tokens and URL credentials are
//! replaced by `******` wherever they appear in the resolved config.

use serde_yaml::Value;

use crate::plugin_api::secret::MASK;
pub use crate::plugin_api::secret::mask_url_password;

/// The config as YAML with secrets masked: values of keys that name a secret (`password`,
/// `token`, `secret`, …, plus `extra_secret_keys`) and the password part of URLs.
pub fn masked_yaml(config: &impl serde::Serialize, extra_secret_keys: &[&str]) -> String {
    let mut value = serde_yaml::to_value(config).expect("config serializes");
    mask(&mut value, extra_secret_keys);
    serde_yaml::to_string(&value).expect("value serializes")
}

fn is_secret_key(key: &str, extra: &[&str]) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "passphrase",
        "private_key",
    ]
    .iter()
    .any(|word| key.contains(word))
        || extra.iter().any(|extra| extra.eq_ignore_ascii_case(&key))
}

fn mask(value: &mut Value, extra: &[&str]) {
    match value {
        Value::Mapping(map) => {
            for (key, child) in map.iter_mut() {
                if key.as_str().is_some_and(|key| is_secret_key(key, extra)) && !child.is_null() {
                    *child = Value::String(MASK.into());
                } else {
                    mask(child, extra);
                }
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(|item| mask(item, extra)),
        Value::String(text) => *text = mask_url_password(text),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_url_passwords_and_secret_keys() {
        assert_eq!(
            mask_url_password("amqp://guest:s3cret@host:5672/%2f"),
            "amqp://guest:******@host:5672/%2f"
        );
        assert_eq!(
            mask_url_password("redis://:pw@127.0.0.1/0"),
            "redis://:******@127.0.0.1/0"
        );
        assert_eq!(mask_url_password("mqtt://host:1883"), "mqtt://host:1883");
        let config: Value = serde_yaml::from_str("sinks:\n- type: mqtt\n  password: hunter2\n  client_key_file: /k.pem\n  url: amqp://u:p@h/\n").unwrap();
        let text = masked_yaml(&config, &[]);
        assert!(!text.contains("hunter2") && !text.contains(":p@"), "{text}");
        assert!(text.contains("/k.pem"), "paths are not secrets: {text}");
    }
}
