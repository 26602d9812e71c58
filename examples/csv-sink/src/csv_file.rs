//! The `csv_file` sink: one CSV line per event, `topic,id,ts,x,y`, in a file.
//!
//! ```yaml
//! sinks:
//!   - type: csv_file
//!     path: events.csv      # relative to the pipeline file's folder; env CSV_FILE_PATH
//!     header: true          # first line `topic,id,ts,x,y` (default true)
//!     flush_every: 100      # also write to the file after every 100 events (default: unset)
//! ```
//!
//! `x` and `y` are empty for enter and exit events; ids containing a comma, quote or line break
//! are quoted as CSV requires (the `csv` crate does it).
//!
//! Blocking I/O: `publish` runs on the async runtime, so it never writes the file itself. Records
//! are encoded into a buffer in memory; once it holds [`WRITE_AT`] bytes (or `flush_every` events,
//! or at `flush`) it is handed to [`tokio::fs::File`], which does the blocking `write` on tokio's
//! blocking thread pool, and `publish` waits for that write: the buffer stays bounded and a slow
//! disk slows the pipeline down (back-pressure) instead of losing events.

use std::num::NonZeroU64;
use std::path::PathBuf;

use customersim_plugin_api::{
    BuildContext, EnvKind, EnvOverride, Event, EventKind, PluginConfig, PluginError, Sink,
    SinkConfig, SinkContext, Topics, async_trait, sink_config,
};
use tokio::io::AsyncWriteExt;

/// Bytes of encoded lines collected before they are written to the file: large enough that
/// writes are few, small enough to keep memory flat.
pub const WRITE_AT: usize = 64 * 1024;

/// The header line's fields.
const HEADER: [&str; 5] = ["topic", "id", "ts", "x", "y"];

/// Config of the `csv_file` sink.
#[sink_config]
#[derive(Debug)]
pub struct CsvFileConfig {
    /// The file to write, created or truncated when the run starts. A relative path is relative
    /// to the pipeline file's folder.
    pub path: PathBuf,
    /// Whether the first line is the header `topic,id,ts,x,y`.
    #[serde(default = "default_header")]
    pub header: bool,
    /// Also write to the file once this many events wait, so a reader following the file
    /// (`tail -f`) sees them soon; unset: only when the buffer is full and at the end of the run.
    #[serde(default)]
    pub flush_every: Option<NonZeroU64>,
}

fn default_header() -> bool {
    true
}

impl PluginConfig for CsvFileConfig {
    const NAME: &'static str = "csv_file";
    const DESCRIPTION: &'static str = "writes one CSV line per event (topic,id,ts,x,y) to a file";
    const ENV: &'static [EnvOverride] = &[EnvOverride {
        var: "CSV_FILE_PATH",
        key: "path",
        kind: EnvKind::Text,
        help: "file the csv_file sink writes",
    }];
}

impl SinkConfig for CsvFileConfig {
    /// The folder must exist (the file is created at start, not here: checks have no side
    /// effects, and `validate` runs only this).
    fn check(&self, cx: &BuildContext) -> Result<(), PluginError> {
        let path = cx.resolve_path(&self.path);
        if path.is_dir() {
            return Err(PluginError::Config(format!(
                "path: {} is a folder",
                path.display()
            )));
        }
        match path.parent() {
            Some(folder) if folder.is_dir() => Ok(()),
            _ => Err(PluginError::Config(format!(
                "path: the folder of {} does not exist",
                path.display()
            ))),
        }
    }

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Sink>, PluginError> {
        Ok(Box::new(CsvFileSink {
            path: cx.resolve_path(&self.path),
            header: self.header,
            flush_every: self.flush_every.map_or(u64::MAX, NonZeroU64::get),
            topics: cx.topics.clone(),
            pending: Vec::with_capacity(WRITE_AT),
            file: None,
            unwritten_events: 0,
        }))
    }
}

/// The running sink.
struct CsvFileSink {
    path: PathBuf,
    header: bool,
    flush_every: u64,
    topics: Topics,
    /// Lines encoded but not yet written to the file.
    pending: Vec<u8>,
    /// Opened in `start`.
    file: Option<tokio::fs::File>,
    /// Events encoded since the last write to the file.
    unwritten_events: u64,
}

impl CsvFileSink {
    fn fail(&self, what: &str, error: impl std::fmt::Display) -> PluginError {
        PluginError::Fatal(format!(
            "csv_file: cannot {what} {}: {error}",
            self.path.display()
        ))
    }

    /// Writes the pending lines to the file and waits until the write is done.
    /// `tokio::fs::File` runs the blocking `write` on the blocking pool; its `flush` waits for
    /// that and reports its error.
    async fn write_out(&mut self) -> Result<(), PluginError> {
        let Some(file) = self.file.as_mut() else {
            return Err(self.fail("write", "the file was never opened"));
        };
        let written = match file.write_all(&self.pending).await {
            Ok(()) => file.flush().await,
            Err(error) => Err(error),
        };
        self.pending.clear();
        self.unwritten_events = 0;
        written.map_err(|error| self.fail("write", error))
    }
}

#[async_trait]
impl Sink for CsvFileSink {
    /// Creates (or truncates) the file: a folder that cannot be written fails the run here, before
    /// anything is published.
    async fn start(&mut self, _cx: &SinkContext) -> Result<(), PluginError> {
        let file = tokio::fs::File::create(&self.path)
            .await
            .map_err(|error| self.fail("create", error))?;
        self.file = Some(file);
        if self.header {
            encode(&mut self.pending, [HEADER])
                .map_err(|error| self.fail("encode the header for", error))?;
        }
        Ok(())
    }

    async fn publish(&mut self, batch: &[Event]) -> Result<(), PluginError> {
        let topics = &self.topics;
        encode(
            &mut self.pending,
            batch.iter().map(|event| record(topics, event)),
        )
        .map_err(|error| self.fail("encode a line for", error))?;
        self.unwritten_events += batch.len() as u64;
        if self.pending.len() >= WRITE_AT || self.unwritten_events >= self.flush_every {
            self.write_out().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), PluginError> {
        self.write_out().await
    }

    /// When the run ended without a `flush` (something else failed first), the lines already
    /// accepted are still written rather than dropped silently. Dropping the file closes it.
    async fn close(mut self: Box<Self>) -> Result<(), PluginError> {
        if self.file.is_some() && !self.pending.is_empty() {
            self.write_out().await?;
        }
        Ok(())
    }
}

/// Appends CSV lines to `out` (in memory; the `csv` crate quotes fields that need it).
fn encode<R, F>(out: &mut Vec<u8>, records: impl IntoIterator<Item = R>) -> csv::Result<()>
where
    R: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    let mut encoder = csv::Writer::from_writer(out);
    for record in records {
        encoder.write_record(record)?;
    }
    encoder.flush()?;
    Ok(())
}

/// One event's fields: `topic,id,ts,x,y`, `x` and `y` empty unless it is a move (or a focus,
/// which happens where the shopper stands).
fn record(topics: &Topics, event: &Event) -> [String; 5] {
    let (x, y) = match event.kind {
        EventKind::Move { x, y } | EventKind::Focus { x, y, .. } => (x.to_string(), y.to_string()),
        EventKind::Enter | EventKind::Exit => (String::new(), String::new()),
    };
    [
        topics.for_event(event).to_string(),
        event.customer.to_string(),
        event.ts().to_string(),
        x,
        y,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use customersim_plugin_api::CustomerId;

    fn line(id: &str, kind: EventKind) -> String {
        let event = Event {
            due_ms: 192_326_400_999,
            customer: CustomerId::parse(id),
            kind,
            store: 0,
            stamp: Default::default(),
        };
        let mut out = Vec::new();
        encode(&mut out, [record(&Topics::default(), &event)]).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn moves_have_coordinates_and_enter_exit_leave_them_empty() {
        assert_eq!(
            line("997", EventKind::Move { x: 2, y: 3 }),
            "customer/move,997,192326400,2,3\n"
        );
        assert_eq!(
            line("997", EventKind::Enter),
            "customer/enter,997,192326400,,\n"
        );
        assert_eq!(
            line("997", EventKind::Exit),
            "customer/exit,997,192326400,,\n"
        );
    }

    /// Ids are free text (`id_prefix`, customer lists): a comma or quote must not shift columns.
    #[test]
    fn ids_with_commas_and_quotes_are_quoted() {
        assert_eq!(
            line("a,\"b", EventKind::Enter),
            "customer/enter,\"a,\"\"b\",192326400,,\n"
        );
    }
}
