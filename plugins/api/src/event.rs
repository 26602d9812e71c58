//! The event model and the payload bytes of the original service's contract: JSON written as
//! Python's `json.dumps` wrote it (`", "` between members, `": "` after keys), keys in the order
//! `id`, `ts`, `x`, `y`, which existing consumers depend on byte for byte (the README's *Events*
//! section).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::json;

/// Who a shopper is. Generated and most listed ids are decimal numbers; keeping those as integers
/// makes a simulated shopper small (a million of them fit in memory) and comparisons cheap.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CustomerId {
    /// A canonical decimal number (no sign, no leading zeros), printed as its digits.
    Number(u64),
    /// Any other id, printed verbatim (escaped as JSON).
    Text(Arc<str>),
}

impl CustomerId {
    /// Parses an id given as text; only canonical decimal numbers become [`CustomerId::Number`], so
    /// `"007"` is published back as `"007"`.
    pub fn parse(text: &str) -> CustomerId {
        let canonical = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        match text.parse::<u64>() {
            Ok(number) if canonical => CustomerId::Number(number),
            _ => CustomerId::Text(Arc::from(text)),
        }
    }

    /// Appends the id as a JSON string (`"997"`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            CustomerId::Number(number) => {
                out.push(b'"');
                out.extend_from_slice(itoa::Buffer::new().format(*number).as_bytes());
                out.push(b'"');
            }
            CustomerId::Text(text) => json::write_str(out, text),
        }
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CustomerId::Number(number) => write!(f, "{number}"),
            CustomerId::Text(text) => f.write_str(text),
        }
    }
}

impl From<u64> for CustomerId {
    fn from(number: u64) -> Self {
        CustomerId::Number(number)
    }
}

impl From<&str> for CustomerId {
    fn from(text: &str) -> Self {
        CustomerId::parse(text)
    }
}

/// What happened to a shopper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The shopper came in (through the door, for simulated shoppers).
    Enter,
    /// The shopper is now in cell (`x`, `y`).
    Move { x: i64, y: i64 },
    /// The shopper left.
    Exit,
}

/// One sensor report: a shopper entered, moved or left at a simulated instant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// When the event happens, in milliseconds since the Unix epoch (simulated time). The payload's
    /// `ts` is this in whole seconds; the milliseconds keep the order of events within a second.
    pub due_ms: i64,
    /// Who.
    pub customer: CustomerId,
    /// What.
    pub kind: EventKind,
}

impl Event {
    /// The payload's `ts`: whole seconds since the epoch, rounded down.
    pub fn ts(&self) -> i64 {
        self.due_ms.div_euclid(1000)
    }

    /// Appends the payload exactly as the original service wrote it (Python `json.dumps`):
    /// `{"id": "997", "ts": 192326400, "x": 2, "y": 3}`.
    pub fn write_payload(&self, out: &mut Vec<u8>) {
        let mut numbers = itoa::Buffer::new();
        out.extend_from_slice(b"{\"id\": ");
        self.customer.write_json(out);
        out.extend_from_slice(b", \"ts\": ");
        out.extend_from_slice(numbers.format(self.ts()).as_bytes());
        if let EventKind::Move { x, y } = self.kind {
            out.extend_from_slice(b", \"x\": ");
            out.extend_from_slice(numbers.format(x).as_bytes());
            out.extend_from_slice(b", \"y\": ");
            out.extend_from_slice(numbers.format(y).as_bytes());
        }
        out.push(b'}');
    }

    /// The payload bytes as a new buffer.
    pub fn payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.write_payload(&mut out);
        out
    }
}

/// The topic each kind of event is published on (the pipeline file's `topics:` section).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, crate = "serde")]
pub struct Topics {
    /// Topic of enter events.
    #[serde(default = "default_enter_topic")]
    pub enter: String,
    /// Topic of move events.
    #[serde(default = "default_move_topic", rename = "move")]
    pub moves: String,
    /// Topic of exit events.
    #[serde(default = "default_exit_topic")]
    pub exit: String,
}

fn default_enter_topic() -> String {
    "customer/enter".into()
}
fn default_move_topic() -> String {
    "customer/move".into()
}
fn default_exit_topic() -> String {
    "customer/exit".into()
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            enter: default_enter_topic(),
            moves: default_move_topic(),
            exit: default_exit_topic(),
        }
    }
}

impl Topics {
    /// The topic an event of this kind goes to.
    pub fn for_kind(&self, kind: &EventKind) -> &str {
        match kind {
            EventKind::Enter => &self.enter,
            EventKind::Move { .. } => &self.moves,
            EventKind::Exit => &self.exit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event {
            due_ms: 192_326_400_999,
            customer: CustomerId::parse("997"),
            kind,
        }
    }

    #[test]
    fn payload_bytes_match_the_original_service() {
        assert_eq!(
            event(EventKind::Enter).payload(),
            br#"{"id": "997", "ts": 192326400}"#
        );
        assert_eq!(
            event(EventKind::Move { x: 2, y: 3 }).payload(),
            br#"{"id": "997", "ts": 192326400, "x": 2, "y": 3}"#
        );
        assert_eq!(
            event(EventKind::Exit).payload(),
            br#"{"id": "997", "ts": 192326400}"#
        );
    }

    #[test]
    fn ids_keep_their_spelling() {
        assert_eq!(CustomerId::parse("42"), CustomerId::Number(42));
        assert!(matches!(CustomerId::parse("007"), CustomerId::Text(_)));
        assert!(matches!(CustomerId::parse("x-1"), CustomerId::Text(_)));
        assert!(matches!(
            CustomerId::parse("99999999999999999999999"),
            CustomerId::Text(_)
        ));
        assert_eq!(CustomerId::parse("007").to_string(), "007");
    }

    #[test]
    fn ts_rounds_down_before_the_epoch_too() {
        let mut e = event(EventKind::Enter);
        e.due_ms = -1;
        assert_eq!(e.ts(), -1);
    }
}
