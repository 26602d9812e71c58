//! `${VAR}` and `${VAR:default}` in the pipeline file, substituted inside the string values of
//! the parsed YAML tree, never in its text.
//!
//! Substituting after parsing means a value can never change the file's structure, whatever it
//! holds: `password: ${MQTT_PW}` with `ab, SECRETTAIL` in flow style is that password, and no
//! variable can add a key, an item or a plugin. A value that is a whole `${VAR}` is typed like a
//! plain YAML scalar when it is one exactly as written (`1883` a number, `true` a boolean), so
//! `port: ${MQTT_PORT}` works; anything else stays text (`~`, `null` and an empty value are text,
//! never null, so a secret that resolves to nothing is refused by its type rather than dropped).
//! `$${` writes a literal `${`. Only values are substituted, not keys; comments are not values.
//! Errors name the line of the file the placeholder is on.

use serde_yaml::Value;

use crate::env::Environment;

/// Opens and closes a placeholder's stand-in in the text handed to the YAML parser: private-use
/// characters, which YAML treats as ordinary text in every scalar style and context (a `${X}`
/// written as is would end a flow mapping at its `}`).
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// The `${…}` of a file, in order, after [`protect`] replaced each with a stand-in.
#[derive(Debug, Default)]
pub struct Placeholders(Vec<Placeholder>);

#[derive(Debug)]
struct Placeholder {
    /// The variable and its default; `None` for `$${`, a literal `${`.
    variable: Option<(String, Option<String>)>,
    /// Where it is in the file (1-based), for errors.
    line: usize,
}

/// Replaces every `${…}` of `text` with a stand-in the YAML parser reads as plain text, so the
/// text parses whatever the variables hold. Lines stay where they are.
pub fn protect(text: &str) -> Result<(String, Placeholders), String> {
    let mut out = String::with_capacity(text.len());
    let mut found = Placeholders::default();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') || !line.contains("${") {
            out.push_str(line);
            continue;
        }
        let at_line = |why: String| format!("line {}: {why}", index + 1);
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            let (before, variable, after) = if rest[..start].ends_with('$') {
                (&rest[..start - 1], None, &rest[start + 2..])
            } else {
                let end = rest[start..].find('}').ok_or_else(|| {
                    at_line(format!(
                        "unclosed \"${{\" in {}",
                        crate::plugin_api::excerpt(rest[start..].trim_end())
                    ))
                })? + start;
                let expression = &rest[start + 2..end];
                let (name, default) = match expression.split_once(':') {
                    Some((name, default)) => (name, Some(default.to_string())),
                    None => (expression, None),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(at_line(format!(
                        "invalid variable name {} in \"${{…}}\"",
                        crate::plugin_api::excerpt(name)
                    )));
                }
                (
                    &rest[..start],
                    Some((name.to_string(), default)),
                    &rest[end + 1..],
                )
            };
            out.push_str(before);
            out.push(OPEN);
            out.push_str(&found.0.len().to_string());
            out.push(CLOSE);
            found.0.push(Placeholder {
                variable,
                line: index + 1,
            });
            rest = after;
        }
        out.push_str(rest);
    }
    Ok((out, found))
}

/// Substitutes the variables into the string values (and keys) of `tree`, parsed from the text
/// [`protect`] returned with `placeholders`.
pub fn interpolate(
    tree: &mut Value,
    env: &Environment,
    placeholders: &Placeholders,
) -> Result<(), String> {
    if placeholders.0.is_empty() {
        return Ok(());
    }
    match tree {
        Value::String(scalar) if scalar.contains(OPEN) => {
            let (value, whole) = substitute(scalar, env, placeholders)?;
            *tree = if whole {
                typed(value)
            } else {
                Value::String(value)
            };
            Ok(())
        }
        Value::Sequence(items) => items
            .iter_mut()
            .try_for_each(|item| interpolate(item, env, placeholders)),
        Value::Mapping(map) => {
            if map
                .keys()
                .any(|key| key.as_str().is_some_and(|key| key.contains(OPEN)))
            {
                let mut renamed = serde_yaml::Mapping::with_capacity(map.len());
                for (key, value) in std::mem::take(map) {
                    let key = match key.as_str() {
                        Some(text) if text.contains(OPEN) => {
                            Value::String(substitute(text, env, placeholders)?.0)
                        }
                        _ => key,
                    };
                    renamed.insert(key, value);
                }
                *map = renamed;
            }
            map.values_mut()
                .try_for_each(|value| interpolate(value, env, placeholders))
        }
        Value::Tagged(tagged) => interpolate(&mut tagged.value, env, placeholders),
        _ => Ok(()),
    }
}

/// The scalar with its stand-ins replaced, and whether it was one variable and nothing else.
fn substitute(
    scalar: &str,
    env: &Environment,
    placeholders: &Placeholders,
) -> Result<(String, bool), String> {
    let mut out = String::with_capacity(scalar.len());
    let mut rest = scalar;
    let mut whole = false;
    while let Some(start) = rest.find(OPEN) {
        let body = &rest[start + OPEN.len_utf8()..];
        let found = body.find(CLOSE).and_then(|end| {
            let index: usize = body[..end].parse().ok()?;
            Some((placeholders.0.get(index)?, end))
        });
        let Some((placeholder, end)) = found else {
            // Not a stand-in of ours: the character was in the file.
            out.push_str(&rest[..start + OPEN.len_utf8()]);
            rest = body;
            continue;
        };
        out.push_str(&rest[..start]);
        let after = &body[end + CLOSE.len_utf8()..];
        match &placeholder.variable {
            None => out.push_str("${"),
            Some((name, default)) => {
                env.check_readable([name.as_str()])
                    .map_err(|why| format!("line {}: {why}", placeholder.line))?;
                let value = match env.get_raw(name) {
                    Some(value) if !value.is_empty() || default.is_none() => value,
                    _ => default.as_deref().unwrap_or(""),
                };
                whole = start == 0 && after.is_empty() && out.is_empty();
                out.push_str(value);
            }
        }
        rest = after;
    }
    out.push_str(rest);
    Ok((out, whole))
}

/// A whole-placeholder value as YAML would type it written plainly, when it is a boolean or a
/// number spelled exactly as YAML prints it back (so `0123`, `1e3` or `0x10` stay text and a
/// numeric password keeps its digits); otherwise text.
fn typed(value: String) -> Value {
    match value.as_str() {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if value.starts_with(|c: char| c.is_ascii_digit() || c == '-')
        && let Ok(Value::Number(number)) = serde_yaml::from_str::<Value>(&value)
        && number.to_string() == value
    {
        return Value::Number(number);
    }
    Value::String(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment::from_pairs([
            ("HOST", "broker"),
            ("EMPTY", ""),
            ("PASS", "a #b: c\"d"),
            ("FLOW", "ab, SECRETTAIL"),
            ("PORT", "1883"),
            ("NUMERIC", "0123"),
            ("NULLISH", "~"),
        ])
    }

    fn resolved_in(text: &str, env: &Environment) -> Result<Value, String> {
        let (protected, placeholders) = protect(text)?;
        let mut tree: Value = serde_yaml::from_str(&protected).unwrap();
        interpolate(&mut tree, env, &placeholders).map(|()| tree)
    }

    fn resolved(text: &str) -> Result<Value, String> {
        resolved_in(text, &env())
    }

    #[test]
    fn substitutes_with_defaults_and_literals() {
        let tree = resolved(
            "host: ${HOST}\nport: ${PORT:1}\nempty: ${EMPTY:x}\nurl: \"mqtt://${HOST}:1\"\n# ${NOPE\nlit: $${HOST}\n",
        )
        .unwrap();
        assert_eq!(tree["host"].as_str(), Some("broker"));
        assert_eq!(tree["port"].as_u64(), Some(1883), "a whole number is typed");
        assert_eq!(tree["empty"].as_str(), Some("x"));
        assert_eq!(tree["url"].as_str(), Some("mqtt://broker:1"));
        assert_eq!(tree["lit"].as_str(), Some("${HOST}"));
    }

    #[test]
    fn values_never_change_the_structure() {
        let tree = resolved("sinks: [{type: mqtt, password: ${FLOW}}]\nkey: ${PASS}\n").unwrap();
        let tree2 = resolved("a: {b: ${HOST}}\n'q': '${HOST}'\n\"d\": \"x${HOST}y\"\n").unwrap();
        assert_eq!(tree2["a"]["b"].as_str(), Some("broker"));
        assert_eq!(tree2["q"].as_str(), Some("broker"));
        assert_eq!(tree2["d"].as_str(), Some("xbrokery"));
        assert_eq!(
            tree["sinks"][0]["password"].as_str(),
            Some("ab, SECRETTAIL")
        );
        assert_eq!(tree["sinks"][0].as_mapping().unwrap().len(), 2);
        assert_eq!(tree["key"].as_str(), Some("a #b: c\"d"));
        let tree = resolved("a: ${NUMERIC}\nb: ${NULLISH}\nc: ${UNSET}\nd: [${PORT}]\n").unwrap();
        assert_eq!(tree["a"].as_str(), Some("0123"), "digits kept as written");
        assert_eq!(tree["b"].as_str(), Some("~"), "never null");
        assert_eq!(tree["c"].as_str(), Some(""), "unset is empty text");
        assert_eq!(tree["d"][0].as_u64(), Some(1883));
    }

    #[test]
    fn errors_name_the_line() {
        let error = resolved("a: 1\nb: ${BROKEN\n").unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
        assert!(
            resolved("a: ${bad-name}\n")
                .unwrap_err()
                .contains("bad-name")
        );
        let env = Environment::default().with_unreadable("T");
        let error = resolved_in("a: 1\nt: ${T}\n", &env).unwrap_err();
        assert!(
            error.starts_with("line 2:") && error.contains("UTF-8"),
            "{error}"
        );
    }
}
