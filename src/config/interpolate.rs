//! `${VAR}` and `${VAR:default}` in the pipeline file, substituted in the text before it is parsed
//! (as Vector does), so parse errors keep their line numbers.
//!
//! A value that would change the YAML's structure where it lands as a whole plain scalar
//! (`password: ${MQTT_PASSWORD}` with a `#` or `: ` in the password) is inserted double-quoted.
//! `$${` writes a literal `${`. Comment lines are left alone. Values with line breaks are refused.

use crate::env::Environment;

/// Substitutes every `${…}` in `text`; errors name the line and the variable.
pub fn interpolate(text: &str, env: &Environment) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') || !line.contains("${") {
            out.push_str(line);
            continue;
        }
        interpolate_line(line, env, &mut out)
            .map_err(|why| format!("line {}: {why}", index + 1))?;
    }
    Ok(out)
}

fn interpolate_line(line: &str, env: &Environment, out: &mut String) -> Result<(), String> {
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("unclosed \"${{\" in {:?}", line.trim_end()))?
            + start;
        let expression = &rest[start + 2..end];
        let (name, default) = match expression.split_once(':') {
            Some((name, default)) => (name, Some(default)),
            None => (expression, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "invalid variable name {name:?} in \"${{{expression}}}\""
            ));
        }
        let value = match env.get_raw(name) {
            Some(value) if !value.is_empty() || default.is_none() => value,
            _ => default.unwrap_or(""),
        };
        if value.contains(['\n', '\r']) {
            return Err(format!("environment variable {name} contains a line break"));
        }
        let before = &rest[..start];
        let after = &rest[end + 1..];
        out.push_str(before);
        if is_whole_plain_scalar(before, after) && needs_quoting(value) {
            out.push('"');
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c => out.push(c),
                }
            }
            out.push('"');
        } else {
            out.push_str(value);
        }
        rest = after;
    }
    out.push_str(rest);
    Ok(())
}

/// Whether the placeholder is the whole value after `key: ` or `- ` (not inside quotes or text).
fn is_whole_plain_scalar(before: &str, after: &str) -> bool {
    let before = before.trim_end();
    let after = after.trim_start();
    (before.ends_with(':') || before.ends_with('-')) && (after.is_empty() || after.starts_with('#'))
}

fn needs_quoting(value: &str) -> bool {
    value.is_empty()
        || value.trim() != value
        || value.contains(": ")
        || value.contains(" #")
        || value.starts_with([
            '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', '[', '{', '-', '?',
        ])
        || value.ends_with(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment::from_pairs([("HOST", "broker"), ("EMPTY", ""), ("PASS", "a #b: c\"d")])
    }

    #[test]
    fn substitutes_with_defaults_and_escapes() {
        let text = "host: ${HOST}\nport: ${PORT:1883}\nempty: ${EMPTY:x}\nurl: \"mqtt://${HOST}:1\"\n# ${NOPE\nlit: $${HOST}\n";
        assert_eq!(
            interpolate(text, &env()).unwrap(),
            "host: broker\nport: 1883\nempty: x\nurl: \"mqtt://broker:1\"\n# ${NOPE\nlit: ${HOST}\n"
        );
    }

    #[test]
    fn quotes_values_that_would_change_the_yaml() {
        let out = interpolate("password: ${PASS}\n", &env()).unwrap();
        assert_eq!(out, "password: \"a #b: c\\\"d\"\n");
        let parsed: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(parsed["password"].as_str(), Some("a #b: c\"d"));
        assert_eq!(
            interpolate("host: ${UNSET}\n", &env()).unwrap(),
            "host: \"\"\n"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let error = interpolate("a: 1\nb: ${BROKEN\n", &env()).unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
        assert!(
            interpolate("a: ${bad-name}\n", &env())
                .unwrap_err()
                .contains("bad-name")
        );
    }
}
