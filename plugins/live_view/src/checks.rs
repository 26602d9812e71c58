//! The run's checks (its expectations, the delivery check, its thresholds) as the page and
//! `/state` get them.
//!
//! The core makes a fresh JSON text on every [`LiveChecks::json`] call (it takes locks and
//! allocates), so the frame task reads it at most once per [`CHECKS_INTERVAL`], never per event
//! or per page. What it read becomes one `checks` event, built once and shared by every page like
//! a frame, and is kept for `/state`. Pages are sent it only when it changed: a page holds the
//! newest one, so one that reads slowly gets the newest checks, never a backlog, and a run whose
//! figures stand still costs the pages nothing.
//!
//! The event's data is the core's object as it is, on one line:
//! `{"expectations": [{"name", "expected", "answered", "late", "missing", "unexpected",
//! "invalid", "latency_seconds": {"p50", "p95", "p99", "max"}, …}], "delivery": {…} | null,
//! "subscription_gaps": n, "thresholds": [{"metric", "threshold", "measured", "unit",
//! "passed"}]}`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use customersim_plugin_api::LiveChecks;
use serde_json::Value;
use tokio::sync::watch;

use crate::frame::sse_event;

/// The shortest time between two reads of the checks.
pub const CHECKS_INTERVAL: Duration = Duration::from_secs(1);

/// A run's checks, read by the frame task and shared by the pages and `/state`.
pub struct Checks {
    source: LiveChecks,
    /// The last read, for `/state`.
    latest: Mutex<Option<Arc<Value>>>,
    /// The last read as a `checks` event (empty before the first); each page's stream waits on
    /// its own clone.
    pub events: watch::Receiver<Bytes>,
    sender: watch::Sender<Bytes>,
    /// Whether a text that was not a JSON object was already reported (once is enough).
    warned: AtomicBool,
}

impl Checks {
    /// Checks read from `source`; nothing is read before the first [`Checks::refresh`].
    pub fn new(source: LiveChecks) -> Checks {
        let (sender, events) = watch::channel(Bytes::new());
        Checks {
            source,
            latest: Mutex::new(None),
            events,
            sender,
            warned: AtomicBool::new(false),
        }
    }

    /// Reads the checks now; the pages are told only when the event differs from the last one.
    /// A text that is not a JSON object is dropped (the pages keep the last good one).
    pub fn refresh(&self) {
        let text = self.source.json();
        let (value, event) = match checks_event(&text) {
            Ok(read) => read,
            Err(why) => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!("live_view: the run's checks are not shown: {why}");
                }
                return;
            }
        };
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(value));
        self.sender.send_if_modified(|current| {
            if *current == event {
                return false;
            }
            *current = event;
            true
        });
    }

    /// The checks as last read, for `/state`; `None` before the first read.
    pub fn latest(&self) -> Option<Arc<Value>> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The core's checks text as the page gets it: parsed (a text that is not one JSON object would
/// break the page's stream, so it is refused) and written back on one line as a `checks` event.
fn checks_event(text: &str) -> Result<(Value, Bytes), String> {
    let value: Value = serde_json::from_str(text).map_err(|error| format!("not JSON ({error})"))?;
    if !value.is_object() {
        return Err("not a JSON object".into());
    }
    let json = serde_json::to_vec(&value).expect("a JSON value serializes");
    Ok((value, sse_event("checks", &json)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Checks whose text is `texts[i]` on the i-th read (the last one after that), and how many
    /// reads there were.
    pub(crate) fn scripted(texts: &[&str]) -> (LiveChecks, Arc<AtomicUsize>) {
        let texts: Vec<String> = texts.iter().map(|text| text.to_string()).collect();
        let reads = Arc::new(AtomicUsize::new(0));
        let counter = reads.clone();
        let checks = LiveChecks::new(move || {
            let read = counter.fetch_add(1, Ordering::SeqCst);
            texts[read.min(texts.len() - 1)].clone()
        });
        (checks, reads)
    }

    const PRETTY: &str = r#"{
  "expectations": [
    {"name": "coupons", "expected": 12, "answered": 10, "late": 1, "missing": 0,
     "unexpected": 0, "invalid": 0, "latency_seconds": {"p50": 0.02, "p95": 0.03, "p99": 0.04, "max": 0.05}}
  ],
  "delivery": null,
  "subscription_gaps": 0,
  "thresholds": [{"metric": "replies_missing", "threshold": "rate < 0.5", "measured": 0.0, "passed": true}]
}"#;

    #[test]
    fn the_core_text_is_sent_as_one_line_checks_event_and_kept_for_state() {
        let (source, reads) = scripted(&[PRETTY]);
        let checks = Checks::new(source);
        assert!(
            checks.latest().is_none(),
            "nothing read before the first refresh"
        );
        assert!(checks.events.borrow().is_empty());
        checks.refresh();
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        let event = checks.events.borrow().clone();
        let text = std::str::from_utf8(&event).unwrap();
        let data = text
            .strip_prefix("event: checks\ndata: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("a checks event: {text}"));
        assert!(!data.contains('\n'), "the data is one line: {data}");
        let sent: Value = serde_json::from_str(data).unwrap();
        let core: Value = serde_json::from_str(PRETTY).unwrap();
        assert_eq!(sent, core, "the core's object, unchanged");
        assert_eq!(*checks.latest().unwrap(), core);
    }

    #[test]
    fn unchanged_checks_are_not_sent_again_and_bad_text_keeps_the_last_good_one() {
        let changed = PRETTY.replace("\"answered\": 10", "\"answered\": 11");
        let (source, _) = scripted(&[PRETTY, PRETTY, "not json", "[1, 2]", &changed]);
        let checks = Checks::new(source);
        let mut page = checks.events.clone();
        checks.refresh();
        assert!(page.has_changed().unwrap());
        let first = page.borrow_and_update().clone();
        checks.refresh();
        assert!(
            !page.has_changed().unwrap(),
            "the same figures: nothing new"
        );
        checks.refresh();
        checks.refresh();
        assert!(
            !page.has_changed().unwrap(),
            "text that is no object is dropped"
        );
        assert_eq!(*page.borrow(), first);
        assert_eq!(checks.latest().unwrap()["expectations"][0]["answered"], 10);
        checks.refresh();
        assert!(page.has_changed().unwrap());
        assert_eq!(checks.latest().unwrap()["expectations"][0]["answered"], 11);
    }

    #[test]
    fn text_that_is_not_one_json_object_is_refused() {
        for text in ["", "{", "[]", "3", "{} {}"] {
            assert!(checks_event(text).is_err(), "{text:?}");
        }
        let (value, _) = checks_event("{\"a\":\n1}").unwrap();
        assert_eq!(value, serde_json::json!({"a": 1}));
    }
}
