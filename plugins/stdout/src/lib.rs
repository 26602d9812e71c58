//! The `stdout` sink: one JSON line per event on standard output,
//! `{"topic": "customer/move", "payload": {"id": "997", "ts": 192326400, "x": 2, "y": 3}}`.
//!
//! The payload object is byte for byte what the MQTT and AMQP sinks publish
//! ([`Event::write_payload`]), so a
//! test can compare a broker's messages with this output. With this sink, logs go to stderr and
//! stdout carries only events. `TESTING_MOCK_MQTT=true` or `SINKS=stdout` select it.

use std::io::Write;

use customersim_plugin_api::{
    BuildContext, EndRun, Event, PluginConfig, PluginError, Sink, SinkConfig, SinkContext, Topics,
    async_trait, event::kind_index, json, sink_config,
};

/// Config of the `stdout` sink. It has no settings: the topics come from the pipeline.
#[sink_config]
#[derive(Debug, Default)]
pub struct StdoutConfig {}

impl PluginConfig for StdoutConfig {
    const NAME: &'static str = "stdout";
    const SELECTED_BY: Option<&'static str> = Some("TESTING_MOCK_MQTT");
    const DESCRIPTION: &'static str =
        "prints one JSON line per event ({\"topic\": …, \"payload\": {…}}) to standard output";
}

impl SinkConfig for StdoutConfig {
    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Sink>, PluginError> {
        Ok(Box::new(StdoutSink::new(cx.topics.clone())))
    }
}

/// Bytes collected before they are written: a batch larger than this (8,192 events with
/// `speed: max`, or long ids) is written in pieces of whole lines, so the sink's memory stays
/// bounded whatever the batch holds.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Writes each batch in whole lines and flushes at its end, so events reach a reader as soon as
/// a batch is published (no partial lines, no waiting for a buffer to fill), through a write
/// buffer of at most [`WRITE_BUFFER_BYTES`] (plus one line).
pub struct StdoutSink {
    topics: Topics,
    /// Each line's start up to the payload, made once per topic.
    starts: LineStarts,
    buffer: Vec<u8>,
    /// Ends the run when the reader goes away (`customersim run | head`), like any Unix filter.
    end_run: Option<EndRun>,
    /// The reader closed stdout: nothing more can be delivered.
    reader_gone: bool,
}

impl StdoutSink {
    fn new(topics: Topics) -> StdoutSink {
        StdoutSink {
            starts: LineStarts::new(&topics),
            topics,
            buffer: Vec::with_capacity(WRITE_BUFFER_BYTES),
            end_run: None,
            reader_gone: false,
        }
    }
}

/// Appends one stdout line for `event`.
pub fn write_line(out: &mut Vec<u8>, topics: &Topics, event: &Event) {
    write_start(out, &topics.for_event(event));
    finish_line(out, event);
}

/// `{"topic": "…", "payload": ` for `topic`.
fn write_start(out: &mut Vec<u8>, topic: &str) {
    out.extend_from_slice(b"{\"topic\": ");
    json::write_str(out, topic);
    out.extend_from_slice(b", \"payload\": ");
}

/// The payload and the end of the line.
fn finish_line(out: &mut Vec<u8>, event: &Event) {
    event.write_payload(out);
    out.extend_from_slice(b"}\n");
}

/// The start of a line (`{"topic": "…", "payload": `) for each topic events go to, escaped once:
/// by store position with topics per store, else one set; by kind in [`Topics::patterns`] order.
/// All of them sit in one buffer, store after store: a fleet's events come in no order of store,
/// and starts kept apart (four small vectors a store) made each line a wait for memory.
struct LineStarts {
    per_store: bool,
    /// The starts, one after another.
    bytes: Vec<u8>,
    /// Where each start begins in `bytes`, by store then kind, and where the last one ends:
    /// start `i` is `bytes[bounds[i]..bounds[i + 1]]`.
    bounds: Vec<u32>,
}

impl LineStarts {
    fn new(topics: &Topics) -> LineStarts {
        let mut bytes = Vec::new();
        let mut bounds = vec![0];
        for kinds in topics.all_stores() {
            for topic in kinds {
                write_start(&mut bytes, &topic);
                bounds.push(bytes.len() as u32);
            }
        }
        LineStarts {
            per_store: topics.is_per_store(),
            bytes,
            bounds,
        }
    }

    /// Appends `event`'s line; the topics' own rule for a store the fleet does not have.
    fn write_line(&self, out: &mut Vec<u8>, topics: &Topics, event: &Event) {
        // Truth copies (sensors on) go to `topics.truth`, which these starts do not hold.
        if event.stamp.truth {
            return write_line(out, topics, event);
        }
        let store = if self.per_store {
            event.store as usize
        } else {
            0
        };
        let at = store * 4 + kind_index(&event.kind);
        match self.bounds.get(at..at + 2) {
            Some(&[start, end]) => {
                out.extend_from_slice(&self.bytes[start as usize..end as usize]);
                finish_line(out, event);
            }
            _ => write_line(out, topics, event),
        }
    }
}

/// Writes the lines of `batch` to `out` through `buffer`, writing whenever it holds
/// [`WRITE_BUFFER_BYTES`], and flushes. A buffer that one very long line grew is given back.
fn write_batch(
    out: &mut impl Write,
    buffer: &mut Vec<u8>,
    (topics, starts): (&Topics, &LineStarts),
    batch: &[Event],
) -> std::io::Result<()> {
    buffer.clear();
    for event in batch {
        starts.write_line(buffer, topics, event);
        if buffer.len() >= WRITE_BUFFER_BYTES {
            out.write_all(buffer)?;
            buffer.clear();
        }
    }
    out.write_all(buffer)?;
    buffer.clear();
    if buffer.capacity() > 2 * WRITE_BUFFER_BYTES {
        *buffer = Vec::with_capacity(WRITE_BUFFER_BYTES);
    }
    out.flush()
}

#[async_trait]
impl Sink for StdoutSink {
    async fn start(&mut self, cx: &SinkContext) -> Result<(), PluginError> {
        self.end_run = Some(cx.end_run.clone());
        Ok(())
    }

    async fn publish(&mut self, batch: &[Event]) -> Result<(), PluginError> {
        if self.reader_gone {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        let topics = (&self.topics, &self.starts);
        match write_batch(&mut stdout, &mut self.buffer, topics, batch) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                self.reader_gone = true;
                if let Some(end_run) = &self.end_run {
                    end_run.request("stdout sink", "the reader closed stdout");
                }
                Ok(())
            }
            Err(error) => Err(PluginError::caused_by("stdout sink: cannot write", error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use customersim_plugin_api::{CustomerId, EventKind};

    #[test]
    fn line_wraps_the_exact_payload_bytes() {
        let mut out = Vec::new();
        let event = Event {
            due_ms: 192_326_400_000,
            customer: CustomerId::parse("997"),
            kind: EventKind::Move { x: 2, y: 3 },
            store: 0,
            stamp: Default::default(),
        };
        write_line(&mut out, &Topics::default(), &event);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"topic\": \"customer/move\", \"payload\": {\"id\": \"997\", \"ts\": 192326400, \"x\": 2, \"y\": 3}}\n"
        );
    }

    #[test]
    fn prepared_line_starts_follow_the_topics_rule() {
        use customersim_plugin_api::{Fleet, intern};
        let fleet = Fleet::new(vec!["a".into(), "b\"q".into()], Default::default()).unwrap();
        let per_store = Topics {
            moves: "s/{store}/move".into(),
            focus: Some("f/{store}/\"focus\"".into()),
            ..Topics::default()
        };
        let kinds = [
            EventKind::Enter,
            EventKind::Move { x: 1, y: 2 },
            EventKind::Exit,
            EventKind::Focus {
                dep: intern("Women"),
                x: 1,
                y: 2,
            },
        ];
        for topics in [Topics::default(), per_store.for_fleet(&fleet)] {
            let starts = LineStarts::new(&topics);
            // Store 2 and 3 are beyond the fleet: the topics' own rule names them.
            for store in 0..4 {
                for kind in kinds {
                    let event = Event {
                        due_ms: 1_000,
                        customer: CustomerId::parse("7"),
                        kind,
                        store,
                        stamp: Default::default(),
                    };
                    let (mut prepared, mut plain) = (Vec::new(), Vec::new());
                    starts.write_line(&mut prepared, &topics, &event);
                    write_line(&mut plain, &topics, &event);
                    assert_eq!(
                        String::from_utf8(prepared).unwrap(),
                        String::from_utf8(plain).unwrap()
                    );
                }
            }
        }
    }

    /// Records each `write` call, to see how a batch is cut.
    #[derive(Default)]
    struct Writes {
        sizes: Vec<usize>,
        bytes: Vec<u8>,
        flushes: usize,
    }

    impl Write for Writes {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.sizes.push(data.len());
            self.bytes.extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    #[test]
    fn a_large_batch_is_written_in_bounded_pieces_of_whole_lines() {
        let topics = Topics::default();
        let batch: Vec<Event> = (0..20_000)
            .map(|n| Event {
                due_ms: 192_326_400_000 + n,
                customer: CustomerId::parse(&format!("shopper-{n}")),
                kind: EventKind::Move { x: 2, y: 3 },
                store: 0,
                stamp: Default::default(),
            })
            .collect();
        let mut expected = Vec::new();
        for event in &batch {
            write_line(&mut expected, &topics, event);
        }
        assert!(expected.len() > 10 * WRITE_BUFFER_BYTES);
        let mut out = Writes::default();
        let mut buffer = Vec::new();
        let starts = LineStarts::new(&topics);
        write_batch(&mut out, &mut buffer, (&topics, &starts), &batch).unwrap();
        assert_eq!(out.bytes, expected);
        assert_eq!(out.flushes, 1);
        assert!(out.sizes.len() > 10, "{:?}", out.sizes.len());
        let longest_line = expected
            .split(|b| *b == b'\n')
            .map(<[u8]>::len)
            .max()
            .unwrap();
        let mut written = 0;
        for size in &out.sizes {
            assert!(*size < WRITE_BUFFER_BYTES + longest_line + 1, "{size}");
            written += size;
            assert_eq!(expected[written - 1], b'\n', "every piece ends a line");
        }
        assert!(buffer.capacity() <= 2 * WRITE_BUFFER_BYTES);
    }

    #[test]
    fn rejects_unknown_keys() {
        let error = serde_yaml::from_str::<StdoutConfig>("pretty: true").unwrap_err();
        assert!(error.to_string().contains("pretty"), "{error}");
    }
}
