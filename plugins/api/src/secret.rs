//! Keeping secrets out of logs and printed configs.

/// What a secret is replaced with.
pub const MASK: &str = "******";

/// `amqp://user:pass@host/` → `amqp://user:******@host/`; other text unchanged.
pub fn mask_url_password(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let rest = &text[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return text.to_string();
    };
    let userinfo = &authority[..at];
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
    use super::mask_url_password;

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
}
