//! JSON string output byte-compatible with Python's `json.dumps` defaults (`ensure_ascii=True`).
//!
//! Consumers of the original service compare and hash payloads, so a customer id such as `José`
//! must come out as `"Jos\u00e9"`, exactly as Python wrote it, not as raw UTF-8. Python keeps
//! only the printable ASCII characters (space to `~`) as they are: `"` and `\` get a backslash,
//! `\n \r \t \b \f` their short forms, every other control character (DEL, 0x7f, too) and every
//! non-ASCII character `\u` and four lower-case hex digits (two, a surrogate pair, beyond
//! U+FFFF).

/// Appends `text` as a JSON string literal, escaped as Python's `json.dumps` escapes it.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut plain_from = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        // Printable ASCII, space to `~`, is kept (Python's `[^\ -~]` escapes the rest).
        if (0x20..0x7f).contains(&byte) && byte != b'"' && byte != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[plain_from..index]);
        plain_from = index + 1;
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            byte if byte < 0x80 => write_unicode_escape(out, u16::from(byte)),
            byte if byte >= 0xC0 => {
                // Start of a multi-byte character: escape it as UTF-16 code units.
                let rest = &text[index..];
                let character = rest.chars().next().expect("valid UTF-8 start byte");
                let mut units = [0u16; 2];
                for unit in character.encode_utf16(&mut units) {
                    write_unicode_escape(out, *unit);
                }
            }
            _ => {} // continuation byte of a character already escaped
        }
    }
    out.extend_from_slice(&bytes[plain_from..]);
    out.push(b'"');
}

fn write_unicode_escape(out: &mut Vec<u8>, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((unit >> shift) & 0xF)]);
    }
}

#[cfg(test)]
mod tests {
    use super::write_str;

    fn escaped(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn matches_python_json_dumps() {
        // Expected strings produced by Python 3: json.dumps(text)
        assert_eq!(escaped("997"), r#""997""#);
        assert_eq!(escaped("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(escaped("tab\tnl\n\u{1}"), r#""tab\tnl\n\u0001""#);
        assert_eq!(escaped("José"), r#""Jos\u00e9""#);
        assert_eq!(escaped("😀x"), r#""\ud83d\ude00x""#);
        assert_eq!(escaped("€"), r#""\u20ac""#);
        assert_eq!(escaped("a\u{7f}b"), r#""a\u007fb""#);
        assert_eq!(escaped("\u{80}\u{ffff}"), r#""\u0080\uffff""#);
    }

    /// Every control character, DEL, the edges of each UTF-8 length and of the surrogate range,
    /// compared byte for byte with what Python's `json.dumps` writes for them.
    #[test]
    fn every_tricky_character_is_escaped_byte_for_byte_as_python_does() {
        let mut tricky: Vec<char> = (0u32..0x80).filter_map(char::from_u32).collect();
        tricky.extend(
            [
                0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfeff, 0xfffd, 0xffff, 0x10000, 0x1f600,
                0x10ffff,
            ]
            .into_iter()
            .filter_map(char::from_u32),
        );
        // One string per character and all of them together, as JSON lines for Python to read.
        let mut strings: Vec<String> = tricky.iter().map(char::to_string).collect();
        strings.push(tricky.iter().collect());
        strings.push("id \"007\"\\\u{7f}José😀".into());
        let input: String = strings
            .iter()
            .map(|text| serde_json::to_string(text).unwrap() + "\n")
            .collect();
        let mut python = match std::process::Command::new("python3")
            .args([
                "-c",
                "import json, sys\nfor line in sys.stdin: print(json.dumps(json.loads(line)))",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(error) => panic!("python3 is needed for this comparison: {error}"),
        };
        use std::io::Write as _;
        python
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = python.wait_with_output().unwrap();
        assert!(output.status.success());
        let expected = String::from_utf8(output.stdout).unwrap();
        let expected: Vec<&str> = expected.lines().collect();
        assert_eq!(expected.len(), strings.len());
        for (text, python) in strings.iter().zip(expected) {
            assert_eq!(escaped(text), python, "{text:?}");
        }
    }
}
