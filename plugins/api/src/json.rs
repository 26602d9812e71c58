//! JSON string output byte-compatible with Python's `json.dumps` defaults (`ensure_ascii=True`).
//!
//! Consumers of the original service compare and hash payloads, so a customer id such as `José`
//! must come out as `"Jos\u00e9"`, exactly as Python wrote it, not as raw UTF-8.

/// Appends `text` as a JSON string literal, escaped as Python's `json.dumps` escapes it.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut plain_from = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        if byte >= 0x20 && byte != b'"' && byte != b'\\' && byte < 0x80 {
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
            byte if byte < 0x20 => write_unicode_escape(out, u16::from(byte)),
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
    }
}
