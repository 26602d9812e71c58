//! The `customer_list` source: the shoppers are the customers of a CSV list (the original
//! service's `CUSTOMERS_LIST_FILE`), so downstream services find every published id in their
//! customer database.
//!
//! # Config
//! ```yaml
//! sources:
//!   - type: random_walk
//!     average_in_store: 6
//!   - type: customer_list
//!     path: customers.csv     # or CUSTOMERS_LIST_FILE; relative to the config file's folder
//! ```
//!
//! The file has a header row in the original's format
//! (`customer_id,name,age_range,marital_status,family_size,no_of_children,income_bracket,gender,…`).
//! Only `customer_id` is required; with a fleet of stores, a `store` column names each customer's
//! home store (without one, a stable hash of the id picks it). The other columns are not held:
//! nothing in the pipeline reads them. The whole file is checked when the pipeline is built: a missing
//! or unreadable file, no `customer_id` column, no rows, an empty or duplicate id or a malformed row
//! is a config error (exit code 2) naming the file and the line. A field that runs over a line
//! break is refused as malformed: it is what a stray `"` makes of every row after it.
//!
//! # Bounds
//! - Files are at most [`MAX_FILE_BYTES`] (4 GiB): a regular file's size is checked before
//!   reading, a named pipe's while reading.
//! - Lines are at most [`MAX_LINE_BYTES`] (16 MiB), so one endless line is refused after 16 MiB
//!   instead of being held whole.
//! - Ids are at most [`MAX_ID_BYTES`] (256 bytes, the limit of `http_ingress` too): every event
//!   repeats the id, so one 50 MB id made gigabytes of output. The error names the line and the
//!   column.
//!
//! # What may be read
//! A regular file, or a named pipe (`mkfifo`, a shell's `<(zcat customers.csv.gz)`): a pipe is
//! read once, by `run` (`validate` reads it too, so give `validate` a file). Directories,
//! devices, sockets and the kernel's pseudo-files (`/proc`, `/sys`: `/proc/self/environ` holds
//! the process's secrets) are refused before reading. Errors quote at most
//! [`EXCERPT_CHARS`] characters of what they refuse, and nothing of a pipe's contents.
//!
//! # How it composes with `random_walk`
//! This source publishes nothing itself. At build time it offers its [`CustomerList`] as the
//! pipeline's [`Roster`] ([`BuildContext::provide_roster`]); `random_walk` then draws each arriving
//! shopper uniformly among the listed customers who are not inside, and gives the customer back
//! when they exit. A customer is therefore never inside twice at once. With a fleet, each store
//! draws only its own customers, so no customer is inside two stores at once, and a shard keeps
//! only the customers of its stores. When every listed customer
//! is inside, arrivals wait for someone to leave (logged once by `random_walk`, counted in the
//! `customersim_customer_list_waiting_arrivals_total` metric); the number of listed customers
//! inside is the `customersim_customer_list_customers_inside` gauge. Without a `customer_list`,
//! `random_walk` generates ids.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hashbrown::HashTable;

use customersim_plugin_api::event::MAX_ID_BYTES;
use customersim_plugin_api::prometheus_client::metrics::counter::Counter;
use customersim_plugin_api::prometheus_client::metrics::gauge::Gauge;
use customersim_plugin_api::rand::{Rng, RngCore};
use customersim_plugin_api::{
    BuildContext, CustomerId, EnvKind, EnvOverride, Fleet, PluginConfig, PluginError, Roster,
    Source, SourceConfig, SourceContext, StoreIndex, async_trait, source_config,
};

/// The largest customer list accepted (4 GiB, about 100 million customers with the original's
/// columns): only the ids are held, in less memory than the file takes, and a shard holds only its
/// stores' customers.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// The longest line accepted (16 MiB): the CSV reader holds a whole line, so this bounds its
/// memory whatever the file (the original's rows are under 100 bytes; a header of 200,000
/// columns still fits, and is refused for what it lacks).
pub const MAX_LINE_BYTES: u64 = 16 * 1024 * 1024;

/// Most characters of the file an error quotes (a value, a column name).
pub const EXCERPT_CHARS: usize = 24;

/// Most header columns an error lists by name.
const COLUMNS_SHOWN: usize = 10;

/// The file systems of the kernel's pseudo-files, whose contents are no customer list and may be
/// secret (`/proc/self/environ`): procfs and sysfs.
const PSEUDO_FILE_SYSTEMS: [u64; 2] = [0x9fa0, 0x6265_6572];

/// A reader that fails once more than `max_bytes` bytes were read from it, or a line grows
/// longer than `max_line` bytes, so an oversized list (a pipe has no size to check up front)
/// or an endless line is refused after reading at most that much.
struct Bounded<R> {
    inner: R,
    max_bytes: u64,
    max_line: u64,
    read: u64,
    /// The line being read (from 1) and its bytes so far.
    line: u64,
    line_bytes: u64,
}

impl<R> Bounded<R> {
    fn new(inner: R, max_bytes: u64, max_line: u64) -> Bounded<R> {
        Bounded {
            inner,
            max_bytes,
            max_line,
            read: 0,
            line: 1,
            line_bytes: 0,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.max_bytes - self.read;
        let want = buf
            .len()
            .min(usize::try_from(left.saturating_add(1)).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..want])?;
        if read as u64 > left {
            return Err(std::io::Error::other(format!(
                "the file is larger than {} bytes, the most accepted",
                self.max_bytes
            )));
        }
        self.read += read as u64;
        let mut rest = &buf[..read];
        while let Some(newline) = memchr::memchr(b'\n', rest) {
            self.check_line(newline as u64)?;
            self.line += 1;
            self.line_bytes = 0;
            rest = &rest[newline + 1..];
        }
        self.check_line(rest.len() as u64)?;
        Ok(read)
    }
}

impl<R> Bounded<R> {
    /// Adds `bytes` to the current line, refusing it once it is too long.
    fn check_line(&mut self, bytes: u64) -> std::io::Result<()> {
        self.line_bytes += bytes;
        if self.line_bytes > self.max_line {
            return Err(std::io::Error::other(format!(
                "line {} is longer than {} bytes, the most accepted",
                self.line, self.max_line
            )));
        }
        Ok(())
    }
}

/// A value of the file as an error quotes it: cut to [`EXCERPT_CHARS`] characters, or only its
/// length when the file's contents are not to be shown (`show` false: a pipe).
fn quote(text: &str, show: bool) -> String {
    if !show {
        return format!("({} bytes, not shown)", text.len());
    }
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// Config of the `customer_list` source.
#[source_config]
#[derive(Clone, Debug)]
pub struct CustomerListConfig {
    /// The CSV of customers (header row, a `customer_id` column). A relative path resolves
    /// against the folder of the config file (for the built-in default pipeline: `./configs`
    /// when that folder exists, else the current directory).
    #[serde(default = "default_path")]
    pub path: PathBuf,
}

fn default_path() -> PathBuf {
    PathBuf::from("customers.csv")
}

impl Default for CustomerListConfig {
    fn default() -> Self {
        CustomerListConfig {
            path: default_path(),
        }
    }
}

impl PluginConfig for CustomerListConfig {
    const NAME: &'static str = "customer_list";
    const DESCRIPTION: &'static str =
        "who the shoppers are: customers drawn from a CSV list, never inside twice at once";
    const ENV: &'static [EnvOverride] = &[EnvOverride {
        var: "CUSTOMERS_LIST_FILE",
        key: "path",
        kind: EnvKind::Text,
        help: "CSV of customers: header row, customer_id column required (default customers.csv)",
    }];
}

impl SourceConfig for CustomerListConfig {
    /// Reads the whole list: a malformed row is a configuration error `validate` reports.
    fn check(&self, cx: &BuildContext) -> Result<(), PluginError> {
        CustomerList::load_for(&cx.resolve_path(&self.path), &cx.fleet).map(|_| ())
    }

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Source>, PluginError> {
        let path = cx.resolve_path(&self.path);
        let started = std::time::Instant::now();
        let list = Arc::new(CustomerList::load_for(&path, &cx.fleet)?);
        cx.provide_roster(list.clone())?;
        cx.metrics.register(
            "customer_list_waiting_arrivals",
            "Arrivals that found every listed customer inside and waited for someone to leave",
            list.waiting.clone(),
        );
        cx.metrics.register(
            "customer_list_customers_inside",
            "Listed customers inside the store",
            list.inside.clone(),
        );
        tracing::info!(
            "customer_list: {} customers{} from {} in {:.1} s",
            list.size(),
            if cx.fleet.is_configured() {
                format!(
                    " of the {} stores this process runs",
                    cx.fleet.local_stores().count()
                )
            } else {
                String::new()
            },
            path.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(Box::new(CustomerListSource))
    }
}

/// The running source: the list works through the roster, so there is nothing to run. It ends
/// at once, which the scheduler takes as a finished source that does not pace the clock.
struct CustomerListSource;

#[async_trait]
impl Source for CustomerListSource {
    async fn run(self: Box<Self>, _cx: SourceContext) -> Result<(), PluginError> {
        Ok(())
    }
}

/// Marks a customer who is inside in [`Occupancy::slot`].
const INSIDE: u32 = u32::MAX;

/// The customers of a CSV list and who of them is inside: the pipeline's [`Roster`].
///
/// Chains list millions of customers, so only what the pipeline reads is kept, compactly: the
/// ids of the customers of the stores this process runs, one after another in one string, with
/// the end of each (about the id's length plus 4 bytes per customer); a hash table of customer
/// numbers to find a customer by id (5 bytes a slot); and who is outside, per store. The other
/// columns are read past, never held (nothing in the pipeline reads them).
#[derive(Debug)]
pub struct CustomerList {
    /// Every kept id, one after another (customer `k` is `ids[ends[k - 1]..ends[k]]`).
    ids: String,
    /// Where each customer's id ends in `ids`, in file order.
    ends: Vec<u32>,
    /// Customer numbers by id, hashed with `hasher` (no id is stored twice).
    index: HashTable<u32>,
    hasher: RandomState,
    occupancy: Mutex<Occupancy>,
    /// Arrivals that found everyone inside.
    waiting: Counter,
    /// Customers inside now.
    inside: Gauge,
}

/// Who is outside, kept so a uniform draw among them and a release are both O(1).
#[derive(Debug)]
struct Occupancy {
    /// Per store (by position in the fleet), its customers (numbers) who are outside, in no
    /// particular order; empty for stores other processes run.
    outside: Vec<Vec<u32>>,
    /// For each customer, their position in their store's `outside`, or [`INSIDE`].
    slot: Vec<u32>,
}

impl CustomerList {
    /// Reads and checks the CSV at `path`, for a pipeline of one store.
    pub fn load(path: &Path) -> Result<CustomerList, PluginError> {
        CustomerList::load_for(path, &Fleet::single())
    }

    /// Reads and checks the CSV at `path`, keeping the customers of the stores `fleet` runs here.
    /// A regular file or a named pipe only (see the crate documentation); a regular file's size
    /// is checked before reading.
    pub fn load_for(path: &Path, fleet: &Fleet) -> Result<CustomerList, PluginError> {
        let refuse = |why: String| {
            PluginError::Config(format!(
                "customer list {}: {why} (set `path` or CUSTOMERS_LIST_FILE)",
                path.display()
            ))
        };
        let cannot_read = |error: std::io::Error| refuse(format!("cannot read the file: {error}"));
        let readable = |metadata: &std::fs::Metadata| {
            let kind = metadata.file_type();
            if kind.is_dir() {
                return Err(refuse("is a directory, not a CSV file".into()));
            }
            if !(kind.is_file() || kind.is_fifo()) {
                return Err(refuse(
                    "not a regular file or named pipe (a device or socket): give a CSV file".into(),
                ));
            }
            Ok(())
        };
        // Checked before opening (opening a device can do things), and again on what was
        // opened. Opening a named pipe waits for its writer, as reading it would.
        readable(&std::fs::metadata(path).map_err(cannot_read)?)?;
        let file = std::fs::File::open(path).map_err(cannot_read)?;
        let metadata = file.metadata().map_err(cannot_read)?;
        readable(&metadata)?;
        let kind = metadata.file_type();
        let file_system = rustix::fs::fstatfs(&file).map(|info| info.f_type as u64);
        if file_system.is_ok_and(|kind| PSEUDO_FILE_SYSTEMS.contains(&kind)) {
            return Err(refuse(
                "a pseudo-file of the kernel (/proc, /sys), not a CSV file".into(),
            ));
        }
        if kind.is_file() && metadata.len() > MAX_FILE_BYTES {
            return Err(refuse(format!(
                "the file is {} bytes, larger than {MAX_FILE_BYTES} (4 GiB), the most accepted",
                metadata.len()
            )));
        }
        CustomerList::parse(file, &path.display().to_string(), fleet, kind.is_file())
    }

    /// Parses a CSV from `reader` for a pipeline of one store; `origin` names it in errors.
    pub fn from_reader(reader: impl Read, origin: &str) -> Result<CustomerList, PluginError> {
        CustomerList::from_reader_for(reader, origin, &Fleet::single())
    }

    /// Parses a CSV from `reader`, keeping the customers of the stores `fleet` runs here (each
    /// customer's home store: its `store` column when the list has one and the pipeline a
    /// fleet, otherwise [`Fleet::home_store`] of its id); `origin` names it in errors.
    pub fn from_reader_for(
        reader: impl Read,
        origin: &str,
        fleet: &Fleet,
    ) -> Result<CustomerList, PluginError> {
        CustomerList::parse(reader, origin, fleet, true)
    }

    /// [`CustomerList::from_reader_for`], quoting values of the file in errors only when `show`.
    fn parse(
        reader: impl Read,
        origin: &str,
        fleet: &Fleet,
        show: bool,
    ) -> Result<CustomerList, PluginError> {
        let bad = |line: Option<u64>, why: String| {
            PluginError::Config(match line {
                Some(line) => format!("customer list {origin} line {line}: {why}"),
                None => format!("customer list {origin}: {why}"),
            })
        };
        let csv_error = |error: csv::Error| {
            let line = error.position().map(csv::Position::line);
            let why = match error.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("malformed row: {len} fields where the header has {expected_len}"),
                csv::ErrorKind::Utf8 { .. } => "malformed row: not valid UTF-8".to_string(),
                csv::ErrorKind::Io(error) => format!("cannot read the file: {error}"),
                _ => format!("malformed CSV: {}", quote(&error.to_string(), show)),
            };
            bad(line, why)
        };
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .buffer_capacity(1 << 16)
            .from_reader(Bounded::new(reader, MAX_FILE_BYTES, MAX_LINE_BYTES));
        let header = csv.headers().map_err(csv_error)?.clone();
        if header.is_empty() || (header.len() == 1 && header[0].trim().is_empty()) {
            return Err(bad(
                None,
                "the file is empty: expected a header row with a customer_id column".into(),
            ));
        }
        let column = |name: &str| {
            header
                .iter()
                .position(|column| column.trim().eq_ignore_ascii_case(name))
        };
        let id_column = column("customer_id").ok_or_else(|| {
            bad(
                Some(1),
                format!(
                    "no customer_id column in the header (columns: {}{})",
                    header
                        .iter()
                        .take(COLUMNS_SHOWN)
                        .map(|column| quote(column, show))
                        .collect::<Vec<_>>()
                        .join(", "),
                    match header.len().saturating_sub(COLUMNS_SHOWN) {
                        0 => String::new(),
                        more => format!(" and {more} more"),
                    }
                ),
            )
        })?;
        // A `store` column places customers only when the pipeline has a fleet of stores.
        let store_column = column("store").filter(|_| fleet.is_configured());
        let stores: HashMap<&str, StoreIndex> = fleet
            .ids()
            .iter()
            .enumerate()
            .map(|(index, id)| (&**id, index as StoreIndex))
            .collect();
        let hasher = RandomState::new();
        let mut ids = String::new();
        let mut ends: Vec<u32> = Vec::new();
        let mut homes: Vec<StoreIndex> = Vec::new();
        let mut index: HashTable<u32> = HashTable::new();
        let mut lines: Vec<u64> = Vec::new();
        let mut record = csv::ByteRecord::new();
        let mut rows = 0u64;
        loop {
            match csv.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(error) => return Err(csv_error(error)),
            }
            rows += 1;
            let line = record.position().map(csv::Position::line);
            if record
                .iter()
                .any(|field| field.contains(&b'\n') || field.contains(&b'\r'))
            {
                return Err(bad(
                    line,
                    "malformed row: a quoted field runs over the end of the line \
                     (a stray `\"` quotes every row after it)"
                        .into(),
                ));
            }
            if std::str::from_utf8(record.as_slice()).is_err() {
                return Err(bad(line, "malformed row: not valid UTF-8".into()));
            }
            let field = |column: usize| {
                std::str::from_utf8(&record[column])
                    .expect("checked above")
                    .trim()
            };
            let text = field(id_column);
            if text.is_empty() {
                return Err(bad(line, "empty customer_id".into()));
            }
            if text.len() > MAX_ID_BYTES {
                return Err(bad(
                    line,
                    format!(
                        "column {} (customer_id): an id of {} bytes, longer than the {MAX_ID_BYTES} bytes accepted",
                        id_column + 1,
                        text.len()
                    ),
                ));
            }
            let home = match store_column {
                Some(column) => {
                    let store = field(column);
                    *stores.get(store).ok_or_else(|| {
                        bad(
                            line,
                            format!(
                                "store {} is not a store of the fleet (fleet.stores)",
                                quote(store, show)
                            ),
                        )
                    })?
                }
                None if fleet.is_configured() => fleet
                    .home_store(text, None)
                    .expect("a hashed id has a store"),
                None => 0,
            };
            if !fleet.runs(home) {
                continue;
            }
            let number = u32::try_from(ends.len())
                .ok()
                .filter(|number| *number != INSIDE)
                .ok_or_else(|| bad(line, "too many customers".into()))?;
            let hash = hasher.hash_one(text);
            let id_of = |k: u32| id_at(&ids, &ends, k);
            if let Some(first) = index.find(hash, |k| id_of(*k) == text) {
                let first = lines[*first as usize];
                return Err(bad(
                    line,
                    format!(
                        "duplicate customer_id {} (first at line {first})",
                        quote(text, show)
                    ),
                ));
            }
            ids.push_str(text);
            let end = u32::try_from(ids.len())
                .map_err(|_| bad(line, "the ids of the list exceed 4 GiB".into()))?;
            ends.push(end);
            homes.push(home);
            lines.push(line.unwrap_or(0));
            index.insert_unique(hash, number, |k| hasher.hash_one(id_at(&ids, &ends, *k)));
        }
        if rows == 0 {
            return Err(bad(
                None,
                "no customers: the file has a header but no rows".into(),
            ));
        }
        drop(lines);
        ids.shrink_to_fit();
        ends.shrink_to_fit();
        let mut outside = vec![Vec::new(); fleet.len()];
        let mut slot = Vec::with_capacity(ends.len());
        for (number, home) in homes.into_iter().enumerate() {
            let store = &mut outside[home as usize];
            slot.push(store.len() as u32);
            store.push(number as u32);
        }
        for store in &mut outside {
            store.shrink_to_fit();
        }
        Ok(CustomerList {
            ids,
            ends,
            index,
            hasher,
            occupancy: Mutex::new(Occupancy { outside, slot }),
            waiting: Counter::default(),
            inside: Gauge::default(),
        })
    }

    /// The id of customer `number`.
    fn id(&self, number: u32) -> &str {
        id_at(&self.ids, &self.ends, number)
    }

    /// The number of the customer with this id, if listed (and kept).
    fn number_of(&self, customer: &CustomerId) -> Option<u32> {
        let mut digits = itoa::Buffer::new();
        let text = match customer {
            CustomerId::Number(number) => digits.format(*number),
            CustomerId::Text(text) => text,
        };
        self.index
            .find(self.hasher.hash_one(text), |k| self.id(*k) == text)
            .copied()
    }

    /// The kept ids, in file order.
    pub fn ids(&self) -> Vec<CustomerId> {
        (0..self.ends.len() as u32)
            .map(|number| CustomerId::parse(self.id(number)))
            .collect()
    }

    /// How many customers of `store` are outside now (all of them, right after loading).
    pub fn outside_of(&self, store: StoreIndex) -> usize {
        let occupancy = self.occupancy.lock().expect("occupancy lock");
        occupancy.outside.get(store as usize).map_or(0, Vec::len)
    }

    /// Whether a listed customer is inside now.
    pub fn is_inside(&self, customer: &CustomerId) -> bool {
        self.number_of(customer).is_some_and(|number| {
            self.occupancy.lock().expect("occupancy lock").slot[number as usize] == INSIDE
        })
    }

    /// Arrivals so far that found every listed customer inside.
    pub fn waiting_arrivals(&self) -> u64 {
        self.waiting.get()
    }
}

/// Customer `number`'s id in the concatenated `ids`.
fn id_at<'a>(ids: &'a str, ends: &[u32], number: u32) -> &'a str {
    let number = number as usize;
    let start = if number == 0 {
        0
    } else {
        ends[number - 1] as usize
    };
    &ids[start..ends[number] as usize]
}

impl Roster for CustomerList {
    fn admit(&self, store: StoreIndex, rng: &mut dyn RngCore) -> Option<CustomerId> {
        let mut occupancy = self.occupancy.lock().expect("occupancy lock");
        let Occupancy { outside, slot } = &mut *occupancy;
        let outside = match outside.get_mut(store as usize) {
            Some(outside) if !outside.is_empty() => outside,
            _ => {
                self.waiting.inc();
                return None;
            }
        };
        let draw = rng.random_range(0..outside.len());
        let customer = outside.swap_remove(draw);
        if let Some(&moved) = outside.get(draw) {
            slot[moved as usize] = draw as u32;
        }
        slot[customer as usize] = INSIDE;
        self.inside.inc();
        Some(CustomerId::parse(self.id(customer)))
    }

    fn release(&self, store: StoreIndex, customer: &CustomerId) {
        let Some(number) = self.number_of(customer) else {
            tracing::debug!("customer_list: release of {customer}, who is not listed");
            return;
        };
        let mut occupancy = self.occupancy.lock().expect("occupancy lock");
        let Occupancy { outside, slot } = &mut *occupancy;
        if slot[number as usize] != INSIDE {
            tracing::debug!("customer_list: release of {customer}, who is not inside");
            return;
        }
        let Some(outside) = outside.get_mut(store as usize) else {
            tracing::debug!("customer_list: release of {customer} to an unknown store");
            return;
        };
        slot[number as usize] = outside.len() as u32;
        outside.push(number);
        self.inside.dec();
    }

    fn size(&self) -> usize {
        self.ends.len()
    }
}

#[cfg(test)]
mod tests;
