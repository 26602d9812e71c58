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
//! Only `customer_id` is required; every other column is kept as the customer's attributes
//! ([`CustomerList::attributes`]). The whole file is checked when the pipeline is built: a missing
//! or unreadable file, no `customer_id` column, no rows, an empty or duplicate id or a malformed row
//! is a config error (exit code 2) naming the file and the line. A field that runs over a line
//! break is refused as malformed: it is what a stray `"` makes of every row after it. Files are
//! at most [`MAX_FILE_BYTES`] (32 MiB); errors quote short excerpts of what they refuse.
//!
//! # How it composes with `random_walk`
//! This source publishes nothing itself. At build time it offers its [`CustomerList`] as the
//! pipeline's [`Roster`] ([`BuildContext::provide_roster`]); `random_walk` then draws each arriving
//! shopper uniformly among the listed customers who are not inside, and gives the customer back
//! when they exit. A customer is therefore never inside twice at once. When every listed customer
//! is inside, arrivals wait for someone to leave (logged once by `random_walk`, counted in the
//! `customersim_customer_list_waiting_arrivals_total` metric); the number of listed customers
//! inside is the `customersim_customer_list_customers_inside` gauge. Without a `customer_list`,
//! `random_walk` generates ids.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use customersim_plugin_api::prometheus_client::metrics::counter::Counter;
use customersim_plugin_api::prometheus_client::metrics::gauge::Gauge;
use customersim_plugin_api::rand::{Rng, RngCore};
use customersim_plugin_api::{
    BuildContext, CustomerId, EnvKind, EnvOverride, PluginConfig, PluginError, Roster, Source,
    SourceConfig, SourceContext, async_trait, source_config,
};

/// The largest customer list accepted (32 MiB, about a million customers with the original's
/// columns): the list is held in memory, at a multiple of the file's size.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Most header columns an error lists by name.
const COLUMNS_SHOWN: usize = 10;

/// A reader that fails once more than [`MAX_FILE_BYTES`] were read from it, so an oversized list
/// is refused after reading at most that much.
struct Limited<R> {
    inner: R,
    left: u64,
}

impl<R: std::io::Read> std::io::Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..want])?;
        if read as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "the file is larger than {MAX_FILE_BYTES} bytes (32 MiB), the most accepted"
            )));
        }
        self.left -= read as u64;
        Ok(read)
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
        CustomerList::load(&cx.resolve_path(&self.path)).map(|_| ())
    }

    fn build(self, cx: &mut BuildContext) -> Result<Box<dyn Source>, PluginError> {
        let path = cx.resolve_path(&self.path);
        let list = Arc::new(CustomerList::load(&path)?);
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
            "customer_list: {} customers from {}",
            list.size(),
            path.display()
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
#[derive(Debug)]
pub struct CustomerList {
    /// Ids in file order.
    ids: Vec<CustomerId>,
    /// Where each id is in `ids`.
    index: HashMap<CustomerId, u32>,
    /// Names of the columns other than `customer_id`, in file order.
    columns: Vec<Box<str>>,
    /// Per customer (in file order), the values of `columns`.
    values: Vec<Box<[Box<str>]>>,
    occupancy: Mutex<Occupancy>,
    /// Arrivals that found everyone inside.
    waiting: Counter,
    /// Customers inside now.
    inside: Gauge,
}

/// Who is outside, kept so a uniform draw among them and a release are both O(1).
#[derive(Debug)]
struct Occupancy {
    /// Customers (indexes into `ids`) who are outside, in no particular order.
    outside: Vec<u32>,
    /// For each customer, their position in `outside`, or [`INSIDE`].
    slot: Vec<u32>,
}

impl CustomerList {
    /// Reads and checks the CSV at `path`.
    pub fn load(path: &Path) -> Result<CustomerList, PluginError> {
        let file = std::fs::File::open(path).map_err(|error| {
            PluginError::Config(format!(
                "customer list {}: cannot read the file: {error} (set `path` or CUSTOMERS_LIST_FILE)",
                path.display()
            ))
        })?;
        CustomerList::from_reader(file, &path.display().to_string())
    }

    /// Parses a CSV from `reader`; `origin` names it in errors.
    pub fn from_reader(
        reader: impl std::io::Read,
        origin: &str,
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
                _ => format!(
                    "malformed CSV: {}",
                    customersim_plugin_api::excerpt(&error.to_string())
                ),
            };
            bad(line, why)
        };
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(Limited {
                inner: reader,
                left: MAX_FILE_BYTES,
            });
        let header = csv.headers().map_err(csv_error)?.clone();
        if header.is_empty() || (header.len() == 1 && header[0].trim().is_empty()) {
            return Err(bad(
                None,
                "the file is empty: expected a header row with a customer_id column".into(),
            ));
        }
        let id_column = header
            .iter()
            .position(|name| name.trim().eq_ignore_ascii_case("customer_id"))
            .ok_or_else(|| {
                bad(
                    Some(1),
                    format!(
                        "no customer_id column in the header (columns: {}{})",
                        header
                            .iter()
                            .take(COLUMNS_SHOWN)
                            .map(customersim_plugin_api::excerpt)
                            .collect::<Vec<_>>()
                            .join(", "),
                        match header.len().saturating_sub(COLUMNS_SHOWN) {
                            0 => String::new(),
                            more => format!(" and {more} more"),
                        }
                    ),
                )
            })?;
        let columns: Vec<Box<str>> = header
            .iter()
            .enumerate()
            .filter(|(column, _)| *column != id_column)
            .map(|(_, name)| Box::from(name.trim()))
            .collect();
        let mut ids = Vec::new();
        let mut values = Vec::new();
        let mut index = HashMap::new();
        let mut first_line = HashMap::new();
        let mut record = csv::StringRecord::new();
        loop {
            match csv.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(error) => return Err(csv_error(error)),
            }
            let line = record.position().map(csv::Position::line);
            if record.iter().any(|field| field.contains(['\n', '\r'])) {
                return Err(bad(
                    line,
                    "malformed row: a quoted field runs over the end of the line \
                     (a stray `\"` quotes every row after it)"
                        .into(),
                ));
            }
            let text = record[id_column].trim();
            if text.is_empty() {
                return Err(bad(line, "empty customer_id".into()));
            }
            let id = CustomerId::parse(text);
            let position = u32::try_from(ids.len())
                .ok()
                .filter(|position| *position != INSIDE)
                .ok_or_else(|| bad(line, "too many customers".into()))?;
            match index.entry(id.clone()) {
                Entry::Occupied(_) => {
                    let first = first_line.get(&id).copied().flatten().unwrap_or(0);
                    return Err(bad(
                        line,
                        format!(
                            "duplicate customer_id {} (first at line {first})",
                            customersim_plugin_api::excerpt(text)
                        ),
                    ));
                }
                Entry::Vacant(slot) => {
                    slot.insert(position);
                }
            }
            first_line.insert(id.clone(), line);
            ids.push(id);
            values.push(
                record
                    .iter()
                    .enumerate()
                    .filter(|(column, _)| *column != id_column)
                    .map(|(_, value)| Box::from(value))
                    .collect(),
            );
        }
        if ids.is_empty() {
            return Err(bad(
                None,
                "no customers: the file has a header but no rows".into(),
            ));
        }
        let count = ids.len() as u32;
        Ok(CustomerList {
            ids,
            index,
            columns,
            values,
            occupancy: Mutex::new(Occupancy {
                outside: (0..count).collect(),
                slot: (0..count).collect(),
            }),
            waiting: Counter::default(),
            inside: Gauge::default(),
        })
    }

    /// The listed ids, in file order.
    pub fn ids(&self) -> &[CustomerId] {
        &self.ids
    }

    /// Names of the attribute columns (every column but `customer_id`), in file order.
    pub fn columns(&self) -> &[Box<str>] {
        &self.columns
    }

    /// A listed customer's attributes as (column, value) pairs, in file order.
    pub fn attributes(&self, customer: &CustomerId) -> Option<Vec<(&str, &str)>> {
        let position = *self.index.get(customer)? as usize;
        Some(
            self.columns
                .iter()
                .zip(self.values[position].iter())
                .map(|(column, value)| (&**column, &**value))
                .collect(),
        )
    }

    /// Whether a listed customer is inside now.
    pub fn is_inside(&self, customer: &CustomerId) -> bool {
        self.index.get(customer).is_some_and(|position| {
            self.occupancy.lock().expect("occupancy lock").slot[*position as usize] == INSIDE
        })
    }

    /// Arrivals so far that found every listed customer inside.
    pub fn waiting_arrivals(&self) -> u64 {
        self.waiting.get()
    }
}

impl Roster for CustomerList {
    fn admit(&self, rng: &mut dyn RngCore) -> Option<CustomerId> {
        let mut occupancy = self.occupancy.lock().expect("occupancy lock");
        if occupancy.outside.is_empty() {
            self.waiting.inc();
            return None;
        }
        let draw = rng.random_range(0..occupancy.outside.len());
        let customer = occupancy.outside.swap_remove(draw);
        if let Some(&moved) = occupancy.outside.get(draw) {
            occupancy.slot[moved as usize] = draw as u32;
        }
        occupancy.slot[customer as usize] = INSIDE;
        self.inside.inc();
        Some(self.ids[customer as usize].clone())
    }

    fn release(&self, customer: &CustomerId) {
        let Some(&position) = self.index.get(customer) else {
            tracing::debug!("customer_list: release of {customer}, who is not listed");
            return;
        };
        let mut occupancy = self.occupancy.lock().expect("occupancy lock");
        if occupancy.slot[position as usize] != INSIDE {
            tracing::debug!("customer_list: release of {customer}, who is not inside");
            return;
        }
        occupancy.slot[position as usize] = occupancy.outside.len() as u32;
        occupancy.outside.push(position);
        self.inside.dec();
    }

    fn size(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests;
