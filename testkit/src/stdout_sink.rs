//! What the stdout sink prints: one line per event, `{"topic": "...", "payload": {...}}`, where
//! the payload is exactly the bytes a broker would receive. Tests compare other sinks with it.

/// One stdout-sink line, split into topic and the exact payload bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Line {
    /// The topic the event is published on.
    pub topic: String,
    /// The payload object's bytes, exactly as a broker would receive them.
    pub payload: String,
}

/// Splits stdout-sink output into lines; panics on anything that is not a stdout-sink line.
pub fn parse_lines(stdout: &[u8]) -> Vec<Line> {
    let text = std::str::from_utf8(stdout).expect("utf-8 output");
    text.lines().map(parse_line).collect()
}

/// Splits one stdout-sink line (without its newline); panics if it is not one.
pub fn parse_line(line: &str) -> Line {
    let rest = line
        .strip_prefix("{\"topic\": ")
        .unwrap_or_else(|| panic!("not a stdout sink line: {line}"));
    let (topic, rest) = rest.split_once(", \"payload\": ").expect("payload member");
    let payload = rest.strip_suffix('}').expect("closing brace");
    Line {
        topic: serde_json::from_str(topic).expect("topic is a JSON string"),
        payload: payload.to_string(),
    }
}
