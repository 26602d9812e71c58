//! `${VAR}`, `${VAR:-default}` and `${VAR:default}` in the pipeline file, substituted inside the
//! string values of the parsed YAML tree, never in its text.
//!
//! Substituting after parsing means a value can never change the file's structure, whatever it
//! holds: `password: ${MQTT_PW}` with `ab, SECRETTAIL` in flow style is that password, and no
//! variable can add a key, an item or a plugin. A value that is a whole `${VAR}` is typed like a
//! plain YAML scalar when it is one exactly as written (`1883` a number, `true` a boolean), so
//! `port: ${MQTT_PORT}` works; anything else stays text (`~`, `null` and an empty value are text,
//! never null, so a secret that resolves to nothing is refused by its type rather than dropped).
//! `$${` writes a literal `${`. Only values are substituted: keys keep their `${…}` as written,
//! and comments are not values. A variable that is not set and has no default is reported
//! ([`Unset`]), never silently empty; the caller decides whether the value is used at all. The
//! values substituted add at most [`MAX_SUBSTITUTED_BYTES`] to the file. Errors name the line of
//! the file the placeholder is on and the key of the value.

use serde_yaml::Value;

use crate::env::Environment;

/// Opens and closes a placeholder's stand-in in the text handed to the YAML parser: private-use
/// characters, which YAML treats as ordinary text in every scalar style and context (a `${X}`
/// written as is would end a flow mapping at its `}`).
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// The most bytes the substituted values may add to a pipeline (4 MiB, four times the largest
/// file): a file of 1 MiB can name one 64 KiB variable 200,000 times, which would otherwise
/// expand to 13 GB before anything is checked. Real pipelines substitute a few hosts and secrets.
pub const MAX_SUBSTITUTED_BYTES: usize = 4 * 1024 * 1024;

/// The `${…}` of a file, in order, after [`protect`] replaced each with a stand-in.
#[derive(Debug, Default)]
pub struct Placeholders(Vec<Placeholder>);

#[derive(Debug)]
struct Placeholder {
    /// As written in the file: `${NAME}`, `${NAME:-default}`, `${NAME:default}` or `$${` (a
    /// literal `${`). Keys get it back unchanged.
    text: Box<str>,
    /// Where it is in the file (1-based), for errors.
    line: u32,
}

impl Placeholder {
    /// The variable and its default; `None` for `$${`, a literal `${`.
    fn variable(&self) -> Option<(&str, Option<&str>)> {
        let expression = self.text.strip_prefix("${")?.strip_suffix('}')?;
        Some(match expression.split_once(':') {
            // `${NAME:-default}` as in the shell; `${NAME:default}` as documented before it.
            Some((name, default)) => (name, Some(default.strip_prefix('-').unwrap_or(default))),
            None => (expression, None),
        })
    }
}

/// A variable that is not set (and has no default) where a value needed it; its value was
/// taken as empty. An error unless the value is never used (a sink replaced by `--sink`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unset {
    /// The variable.
    pub variable: String,
    /// The key of the value, `sinks[0].host`.
    pub key: String,
    /// The line of the placeholder (1-based).
    pub line: usize,
}

impl std::fmt::Display for Unset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Unset {
            variable,
            key,
            line,
        } = self;
        write!(
            f,
            "line {line}: {key}: environment variable {variable} is not set \
             (set it, or give a default: ${{{variable}:-default}})"
        )
    }
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
            let (before, written, after) = if rest[..start].ends_with('$') {
                (
                    &rest[..start - 1],
                    &rest[start - 1..start + 2],
                    &rest[start + 2..],
                )
            } else {
                let end = rest[start..].find('}').ok_or_else(|| {
                    at_line(format!(
                        "unclosed \"${{\" in {}",
                        crate::plugin_api::excerpt(rest[start..].trim_end())
                    ))
                })? + start;
                let expression = &rest[start + 2..end];
                let name = expression
                    .split_once(':')
                    .map_or(expression, |(name, _)| name);
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(at_line(format!(
                        "invalid variable name {} in \"${{…}}\"",
                        crate::plugin_api::excerpt(name)
                    )));
                }
                (&rest[..start], &rest[start..=end], &rest[end + 1..])
            };
            out.push_str(before);
            out.push(OPEN);
            out.push_str(&found.0.len().to_string());
            out.push(CLOSE);
            found.0.push(Placeholder {
                text: written.into(),
                line: u32::try_from(index + 1).unwrap_or(u32::MAX),
            });
            rest = after;
        }
        out.push_str(rest);
    }
    Ok((out, found))
}

/// Substitutes the variables into the string values of `tree`, parsed from the text [`protect`]
/// returned with `placeholders`; keys get their `${…}` back as written. Returns the variables
/// that were not set and had no default (their values are empty), in file order.
pub fn interpolate(
    tree: &mut Value,
    env: &Environment,
    placeholders: &Placeholders,
) -> Result<Vec<Unset>, String> {
    if placeholders.0.is_empty() {
        return Ok(Vec::new());
    }
    let mut pass = Pass {
        env,
        placeholders,
        substituted: 0,
        unset: Vec::new(),
    };
    pass.walk(tree, &mut String::new())?;
    Ok(pass.unset)
}

/// One substitution over a tree: what it has added so far, and the unset variables it met.
struct Pass<'a> {
    env: &'a Environment,
    placeholders: &'a Placeholders,
    /// Bytes of variable values substituted so far (at most [`MAX_SUBSTITUTED_BYTES`]).
    substituted: usize,
    unset: Vec<Unset>,
}

impl<'a> Pass<'a> {
    /// Substitutes inside `tree`, whose key is `path` (`sinks[0].host`; empty at the top).
    fn walk(&mut self, tree: &mut Value, path: &mut String) -> Result<(), String> {
        let depth = path.len();
        match tree {
            Value::String(scalar) if scalar.contains(OPEN) => {
                let (value, whole) = self.substitute(scalar, path)?;
                *tree = if whole {
                    typed(value)
                } else {
                    Value::String(value)
                };
            }
            Value::Sequence(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    path.push_str(&format!("[{index}]"));
                    self.walk(item, path)?;
                    path.truncate(depth);
                }
            }
            Value::Mapping(map) => {
                if map
                    .keys()
                    .any(|key| key.as_str().is_some_and(|key| key.contains(OPEN)))
                {
                    // Keys are left alone: each gets its `${…}` back as written.
                    let mut restored = serde_yaml::Mapping::with_capacity(map.len());
                    for (key, value) in std::mem::take(map) {
                        let key = match key.as_str() {
                            Some(text) if text.contains(OPEN) => Value::String(self.restore(text)),
                            _ => key,
                        };
                        restored.insert(key, value);
                    }
                    *map = restored;
                }
                for (key, value) in map.iter_mut() {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    match key {
                        Value::String(key) => path.push_str(key),
                        other => path
                            .push_str(serde_yaml::to_string(other).unwrap_or_default().trim_end()),
                    }
                    self.walk(value, path)?;
                    path.truncate(depth);
                }
            }
            Value::Tagged(tagged) => self.walk(&mut tagged.value, path)?,
            _ => {}
        }
        Ok(())
    }

    /// The placeholder a stand-in at the start of `text` (just after [`OPEN`]) names, and the
    /// text after it; `None` when the character was in the file rather than put there by us.
    fn stand_in<'t>(&self, text: &'t str) -> Option<(&'a Placeholder, &'t str)> {
        let end = text.find(CLOSE)?;
        let index: usize = text[..end].parse().ok()?;
        Some((
            self.placeholders.0.get(index)?,
            &text[end + CLOSE.len_utf8()..],
        ))
    }

    /// A key with its stand-ins replaced by the `${…}` they stand for.
    fn restore(&self, key: &str) -> String {
        let mut out = String::with_capacity(key.len());
        let mut rest = key;
        while let Some(start) = rest.find(OPEN) {
            let body = &rest[start + OPEN.len_utf8()..];
            out.push_str(&rest[..start]);
            match self.stand_in(body) {
                Some((placeholder, after)) => {
                    out.push_str(&placeholder.text);
                    rest = after;
                }
                None => {
                    out.push(OPEN);
                    rest = body;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The scalar at `key` with its stand-ins replaced, and whether it was one variable and
    /// nothing else.
    fn substitute(&mut self, scalar: &str, key: &str) -> Result<(String, bool), String> {
        let mut out = String::with_capacity(scalar.len());
        let mut rest = scalar;
        let mut whole = false;
        while let Some(start) = rest.find(OPEN) {
            let body = &rest[start + OPEN.len_utf8()..];
            let Some((placeholder, after)) = self.stand_in(body) else {
                // Not a stand-in of ours: the character was in the file.
                out.push_str(&rest[..start + OPEN.len_utf8()]);
                rest = body;
                continue;
            };
            out.push_str(&rest[..start]);
            match placeholder.variable() {
                None => out.push_str("${"),
                Some((name, default)) => {
                    let line = placeholder.line;
                    self.env
                        .check_readable([name])
                        .map_err(|why| format!("line {line}: {key}: {why}"))?;
                    let value = match (self.env.get_raw(name), default) {
                        (Some(value), None) => value,
                        (Some(value), Some(_)) if !value.is_empty() => value,
                        (_, Some(default)) => default,
                        (None, None) => {
                            self.unset.push(Unset {
                                variable: name.to_string(),
                                key: key.to_string(),
                                line: line as usize,
                            });
                            ""
                        }
                    };
                    self.substituted += value.len();
                    if self.substituted > MAX_SUBSTITUTED_BYTES {
                        return Err(format!(
                            "line {line}: {key}: ${{{name}}} takes the substituted values past \
                             {MAX_SUBSTITUTED_BYTES} bytes (4 MiB), the most a pipeline may add \
                             through variables"
                        ));
                    }
                    whole = start == 0 && after.is_empty() && out.is_empty();
                    out.push_str(value);
                }
            }
            rest = after;
        }
        out.push_str(rest);
        Ok((out, whole))
    }
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
        let (tree, unset) = with_unset(text, env)?;
        assert_eq!(unset, [], "unset variables");
        Ok(tree)
    }

    fn with_unset(text: &str, env: &Environment) -> Result<(Value, Vec<Unset>), String> {
        let (protected, placeholders) = protect(text)?;
        let mut tree: Value = serde_yaml::from_str(&protected).unwrap();
        let unset = interpolate(&mut tree, env, &placeholders)?;
        Ok((tree, unset))
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
        let tree = resolved("a: ${NUMERIC}\nb: ${NULLISH}\nc: ${UNSET:}\nd: [${PORT}]\n").unwrap();
        assert_eq!(tree["a"].as_str(), Some("0123"), "digits kept as written");
        assert_eq!(tree["b"].as_str(), Some("~"), "never null");
        assert_eq!(
            tree["c"].as_str(),
            Some(""),
            "an empty default is empty text"
        );
        assert_eq!(tree["d"][0].as_u64(), Some(1883));
    }

    #[test]
    fn unset_variables_without_a_default_are_reported_with_key_and_line() {
        let text =
            "a: 1\nsinks:\n  - {type: mqtt, host: \"x${T}\"}\nb: [${EMPTY}, ${U:-d}, ${V:w}]\n";
        let (tree, unset) = with_unset(text, &env()).unwrap();
        assert_eq!(
            unset,
            [Unset {
                variable: "T".into(),
                key: "sinks[0].host".into(),
                line: 3
            }]
        );
        let shown = unset[0].to_string();
        assert!(
            shown.contains("line 3: sinks[0].host") && shown.contains("T is not set"),
            "{shown}"
        );
        assert_eq!(tree["b"][0].as_str(), Some(""), "set but empty is empty");
        assert_eq!(
            tree["b"][1].as_str(),
            Some("d"),
            "${{U:-d}}, the shell's syntax"
        );
        assert_eq!(
            tree["b"][2].as_str(),
            Some("w"),
            "${{V:w}}, the documented one"
        );
        let tree = resolved("n: ${UNSET:--5}\nm: ${EMPTY:-x}\n").unwrap();
        assert_eq!(tree["n"].as_i64(), Some(-5));
        assert_eq!(
            tree["m"].as_str(),
            Some("x"),
            "an empty value takes the default"
        );
    }

    #[test]
    fn keys_are_left_alone() {
        let tree = resolved("${HOST}: ${HOST}\n\"k$${x}\": 1\n").unwrap();
        let map = tree.as_mapping().unwrap();
        assert_eq!(map.get("${HOST}").and_then(Value::as_str), Some("broker"));
        assert_eq!(map.get("k$${x}").and_then(Value::as_u64), Some(1));
    }

    #[test]
    fn the_substituted_values_are_bounded() {
        let big = "v".repeat(64 * 1024);
        let env = Environment::from_pairs([("BIG", big.as_str())]);
        let fits = MAX_SUBSTITUTED_BYTES / big.len();
        let text = |count: usize| format!("a:\n  b: [{}]\n", vec!["${BIG}"; count].join(", "));
        assert!(with_unset(&text(fits), &env).is_ok());
        let error = with_unset(&text(fits + 1), &env).unwrap_err();
        assert!(
            error.contains(&format!("a.b[{fits}]"))
                && error.contains("${BIG}")
                && error.contains("4 MiB"),
            "{error}"
        );
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
            error.starts_with("line 2: t:") && error.contains("UTF-8"),
            "{error}"
        );
    }
}
