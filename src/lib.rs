//! customersim: simulated shoppers in a retail store, published as sensor events.
//!
//! A pipeline (one YAML file, `configs/default.yaml` when none is given) wires **sources** that
//! put events on a **timeline** to a **scheduler** that hands due events to **sinks**:
//!
//! ```text
//! sources ──► timeline ──► scheduler ──► sinks
//! (plugins)   (memory | redis)  (clock, CONSUME_*)   (plugins)
//! ```
//!
//! This crate is the core. It never names a plugin except in the `use … as _;` lines below, which
//! link the built-in plugins so their registrations are not dropped by the linker. Plugins, built
//! in or out of tree, depend only on [`customersim_plugin_api`] (re-exported as [`plugin_api`]).
//!
//! # Layout
//! - [`cli`]: the `customersim` command line (`run`, `validate`, `plugins`) and its exit codes;
//!   [`cli::main`] is also the entry point of out-of-tree binaries that add their own plugins.
//! - [`config`]: loading the pipeline file, `${VAR}` interpolation, environment and flag
//!   overrides (flag > env > YAML > default), validation, and secret masking for `validate`.
//! - [`env`]: the process environment as an injectable value, and the table of the core's
//!   environment variables.
//! - [`registry`]: finding registered source and sink types by name.
//! - [`timeline`]: the timeline backends: the in-process `memory` one and the `redis` one that
//!   several instances share (atomic leased claims, kept across restarts).
//! - [`scheduler`]: takes due events off the timeline (CONSUME_FREQUENCY, CONSUME_BATCH_SIZE,
//!   CONSUME_FROM), drives the virtual clock, hands batches to the sinks, counts and warns.
//! - [`pipeline`]: builds the plugins of a resolved config and runs them to the end.
//! - [`metrics`]: the core's Prometheus metrics.
//! - [`shutdown`]: SIGINT/SIGTERM handling.
//! - [`logging`]: LOG_LEVEL / LOG_FILENAME.
#![deny(unused_crate_dependencies)]

// Link the built-in plugins (inventory drops the registrations of a crate nothing names).
use customersim_sink_amqp as _;
use customersim_sink_mqtt as _;
use customersim_sink_stdout as _;
use customersim_source_customer_list as _;
use customersim_source_http_ingress as _;
use customersim_source_random_walk as _;
use customersim_source_shopping_trip as _;

pub mod cli;
pub mod config;
pub mod env;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod registry;
pub mod scheduler;
pub mod shutdown;
pub mod timeline;

pub use customersim_plugin_api as plugin_api;

#[cfg(test)]
use chrono_tz as _;
#[cfg(test)]
use futures_core as _;
#[cfg(test)]
use lapin as _;
#[cfg(test)]
use libc as _;
#[cfg(test)]
use rcgen as _;
#[cfg(test)]
use rumqttc as _;
#[cfg(test)]
use serde_json as _;
#[cfg(test)]
use tempfile as _;
#[cfg(test)]
use tokio_rustls as _;
#[cfg(test)]
use ureq as _;
