//! How an event is stored in Redis: one sorted-set member (a string), scored by its due time.
//!
//! `<seq:12 hex><instance:16 hex><due ms>|[S<store>|][C<clock ms>|][T|]<kind>|<id>`: the store
//! segment only for an event of a fleet's store other than the first (position > 0), so a
//! one-store member is what it was before fleets; the clock (`C`) and truth (`T`) segments only
//! for what the sensor stage marked ([`customersim_plugin_api::Stamp`]), so a member without
//! sensors is what it was before them; kind is `E`, `X`, `M<x>,<y>` or
//! `F<x>,<y>,<length>:<department>` (the length in bytes, so the name needs no escaping); id is
//! `n<digits>` for a numeric id or `t<text>` for a text id (so `"007"` and `"7"` stay apart), and
//! comes last so it needs no escaping. The instance's random id and its sequence number make every
//! member unique (identical events are not collapsed) and make a retried `schedule` idempotent.
//!
//! The layout is fixed-width up to the due time because the Lua scripts read it too:
//! `claim.lua` takes the owner from bytes 13 to 28 (counting from 1, as Lua does) to count a
//! lease's events per instance, and the due time from byte 29 to put the events of an expired
//! lease back with their score.
//! Changing it means changing them, and events already stored in Redis would no longer decode.

use std::sync::Arc;

use customersim_plugin_api::{CustomerId, Event, EventKind, Stamp, intern};

/// Appends the member of `event`.
pub(super) fn encode(out: &mut Vec<u8>, seq: u64, instance: &str, event: &Event) {
    use std::io::Write;
    let _ = write!(
        out,
        "{:012x}{instance}{}|",
        seq & 0xFFFF_FFFF_FFFF,
        event.due_ms
    );
    if event.store != 0 {
        let _ = write!(out, "S{}|", event.store);
    }
    if event.stamp.clock_ms != 0 {
        let _ = write!(out, "C{}|", event.stamp.clock_ms);
    }
    if event.stamp.truth {
        out.extend_from_slice(b"T|");
    }
    match event.kind {
        EventKind::Enter => out.push(b'E'),
        EventKind::Exit => out.push(b'X'),
        EventKind::Move { x, y } => {
            let _ = write!(out, "M{x},{y}");
        }
        EventKind::Focus { dep, x, y } => {
            let _ = write!(out, "F{x},{y},{}:{dep}", dep.len());
        }
    }
    out.push(b'|');
    match &event.customer {
        CustomerId::Number(number) => {
            let _ = write!(out, "n{number}");
        }
        CustomerId::Text(text) => {
            out.push(b't');
            out.extend_from_slice(text.as_bytes());
        }
    }
}

/// Parses a member back into its event.
pub(super) fn decode(member: &[u8]) -> Result<Event, String> {
    let bad = || format!("unreadable event {:?}", String::from_utf8_lossy(member));
    let rest = member.get(28..).ok_or_else(bad)?;
    let text = std::str::from_utf8(rest).map_err(|_| bad())?;
    let (due, rest) = text.split_once('|').ok_or_else(bad)?;
    let due_ms = due.parse::<i64>().map_err(|_| bad())?;
    let (store, rest) = match rest.strip_prefix('S') {
        Some(stored) => {
            let (store, rest) = stored.split_once('|').ok_or_else(bad)?;
            (store.parse::<u32>().map_err(|_| bad())?, rest)
        }
        None => (0, rest),
    };
    let mut stamp = Stamp::default();
    let rest = match rest.strip_prefix('C') {
        Some(clock) => {
            let (clock, rest) = clock.split_once('|').ok_or_else(bad)?;
            stamp.clock_ms = clock.parse::<i32>().map_err(|_| bad())?;
            rest
        }
        None => rest,
    };
    let rest = match rest.strip_prefix("T|") {
        Some(rest) => {
            stamp.truth = true;
            rest
        }
        None => rest,
    };
    if let Some(focus) = rest.strip_prefix('F') {
        // F<x>,<y>,<length>:<department>|<id>: the name may hold any character.
        let (x, focus) = focus.split_once(',').ok_or_else(bad)?;
        let (y, focus) = focus.split_once(',').ok_or_else(bad)?;
        let (length, focus) = focus.split_once(':').ok_or_else(bad)?;
        let length = length.parse::<usize>().map_err(|_| bad())?;
        let (dep, id) = focus.split_at_checked(length).ok_or_else(bad)?;
        let id = id.strip_prefix('|').ok_or_else(bad)?;
        return Ok(Event {
            due_ms,
            customer: decode_id(id).ok_or_else(bad)?,
            kind: EventKind::Focus {
                dep: intern(dep),
                x: x.parse().map_err(|_| bad())?,
                y: y.parse().map_err(|_| bad())?,
            },
            store,
            stamp,
        });
    }
    let (kind, id) = rest.split_once('|').ok_or_else(bad)?;
    let kind = match kind.as_bytes().first() {
        Some(b'E') if kind.len() == 1 => EventKind::Enter,
        Some(b'X') if kind.len() == 1 => EventKind::Exit,
        Some(b'M') => {
            let (x, y) = kind[1..].split_once(',').ok_or_else(bad)?;
            EventKind::Move {
                x: x.parse().map_err(|_| bad())?,
                y: y.parse().map_err(|_| bad())?,
            }
        }
        _ => return Err(bad()),
    };
    Ok(Event {
        due_ms,
        customer: decode_id(id).ok_or_else(bad)?,
        kind,
        store,
        stamp,
    })
}

/// Parses the id part of a member.
fn decode_id(id: &str) -> Option<CustomerId> {
    match id.split_at_checked(1)? {
        ("n", digits) => Some(CustomerId::Number(digits.parse().ok()?)),
        ("t", text) => Some(CustomerId::Text(Arc::from(text))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(event: Event) {
        let mut member = Vec::new();
        encode(&mut member, 42, "8000000000000abc", &event);
        assert_eq!(&member[..12], b"00000000002a");
        assert_eq!(&member[12..28], b"8000000000000abc");
        assert_eq!(decode(&member).unwrap(), event);
    }

    #[test]
    fn members_keep_every_event_exactly() {
        round_trip(Event {
            due_ms: 1_767_603_600_123,
            customer: CustomerId::Number(997),
            kind: EventKind::Enter,
            store: 0,
            stamp: Default::default(),
        });
        round_trip(Event {
            due_ms: -5,
            customer: CustomerId::parse("007"),
            kind: EventKind::Move { x: -2, y: 30 },
            store: 0,
            stamp: Default::default(),
        });
        // A fleet's store other than the first keeps its position.
        round_trip(Event {
            due_ms: 9,
            customer: CustomerId::Number(49_000_000_001),
            kind: EventKind::Move { x: 1, y: 2 },
            store: 48,
            stamp: Default::default(),
        });
        round_trip(Event {
            due_ms: 9,
            customer: CustomerId::parse("S|1"),
            kind: EventKind::Focus {
                dep: intern("Men"),
                x: 1,
                y: 2,
            },
            store: 3,
            stamp: Default::default(),
        });
        // What the sensor stage marked: a device clock behind, a truth copy.
        round_trip(Event {
            due_ms: 5_000,
            customer: CustomerId::Number(3),
            kind: EventKind::Move { x: 1, y: 2 },
            store: 2,
            stamp: Stamp {
                clock_ms: -1_250,
                truth: true,
            },
        });
        round_trip(Event {
            due_ms: 0,
            customer: CustomerId::parse("a|b|\n ü"),
            kind: EventKind::Exit,
            store: 0,
            stamp: Default::default(),
        });
        round_trip(Event {
            due_ms: 7,
            customer: CustomerId::parse("x|y"),
            kind: EventKind::Focus {
                dep: intern("Snack|bar, 2: ü"),
                x: 450,
                y: -460,
            },
            store: 0,
            stamp: Default::default(),
        });
        assert!(decode(b"00000000002a8000000000000abc12|F1,2,9:Women|n1").is_err());
        assert!(decode(b"short").is_err());
        assert!(decode(b"00000000002a8000000000000abc12|Q|n1").is_err());
    }

    #[test]
    fn text_and_number_ids_stay_apart() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let event = |customer| Event {
            due_ms: 1,
            customer,
            kind: EventKind::Enter,
            store: 0,
            stamp: Default::default(),
        };
        encode(&mut a, 0, "8000000000000000", &event(CustomerId::Number(7)));
        encode(
            &mut b,
            0,
            "8000000000000000",
            &event(CustomerId::parse("07")),
        );
        assert_ne!(a, b);
        assert_eq!(decode(&b).unwrap().customer, CustomerId::parse("07"));
    }
}
