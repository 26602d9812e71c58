//! customersim: simulated shoppers in a retail store, published as sensor events.
//!
//! A pipeline (one YAML file, `configs/default.yaml` when none is given) wires **sources** that
//! put events on a **timeline** to a **scheduler** that hands due events to **sinks**:
//!
//! ```text
//! sources ──► timeline ──► scheduler ──► sinks
//! (plugins)   (a backend plugin)  (clock, CONSUME_*)   (plugins, each fed from its own queue)
//! ```
//!
//! This crate is the core. It finds sources, sinks and timeline backends through the registry, by
//! the names in the pipeline file, and never names one in its code: the `use … as _;` lines below
//! only link the built-in plugins (each behind its cargo feature) so the linker keeps their
//! registrations, and the embedded default pipeline (`configs/default.yaml`) names the ones it
//! uses. Plugins, built in or out of tree, depend only on [`customersim_plugin_api`] (re-exported
//! as [`plugin_api`]).
//!
//! The book's *Architecture* chapter (`docs/book/src/architecture.md`) is the maintainer's map:
//! the data flow, the crates, how plugins register, the determinism model, the timeline backends
//! and the test layout.
//!
//! # Layout
//! - [`cli`]: the `customersim` command line (`run`, `validate`, `asyncapi`, `plugins`) and its
//!   exit codes;
//!   [`cli::main`] is also the entry point of out-of-tree binaries that add their own plugins.
//! - [`config`]: loading the pipeline file, `${VAR}` interpolation, environment and flag
//!   overrides (flag > env > YAML > default), and checks.
//! - [`env`](mod@env): the process environment as an injectable value (tests build one from
//!   pairs). The variables themselves are tables of one kind
//!   ([`plugin_api::EnvOverride`]): the core's in [`config::overrides::CORE_ENV`], each plugin's
//!   in its config type's `ENV`; the book's *Configuration* chapter lists them all.
//! - [`registry`]: finding registered plugins by role and name; `customersim plugins`' list.
//! - [`contract`]: the rules every registered plugin must meet, checked by the test suite (and by
//!   out-of-tree plugin crates in theirs).
//! - [`pipeline`]: checks and builds the plugins of a resolved config and runs them in named
//!   phases (timeline, clock, sinks, sources, scheduling, stop).
//! - [`scheduler`]: takes due events off the timeline (CONSUME_FREQUENCY, CONSUME_BATCH_SIZE,
//!   CONSUME_FROM), drives the virtual clock, hands batches to the sinks, counts and warns.
//!   [`wake`]: the timer thread that wakes it to a fraction of a millisecond.
//! - [`fanout`]: each sink's bounded queue and task, so a slow sink slows only itself.
//! - [`metrics`]: the core's Prometheus metrics; [`lateness`]: the publish-lateness histogram.
//! - [`report`]: the run report (`run --report FILE`), counted from the published events;
//!   [`report_file`]: where it is written (a temporary file renamed onto FILE);
//!   [`thresholds`]: pass/fail criteria on what the run measured (`thresholds:`), their ✓/✗
//!   table, JUnit XML (`run --junit FILE`), `abort_on_fail` and the exit code when breached;
//!   [`progress`]: the progress bar of a `--speed max` run on a terminal.
//! - [`checks`]: what a run measured for its [`thresholds`] (pass/fail limits, their table,
//!   JUnit file and exit code 99), live and at the end.
//! - [`verdict`]: whether the system under test answered (`expect:`) and what the broker
//!   delivered (`delivery_check:`), read back through a sink's subscriber; on a timeline shared
//!   with other instances, replies are decided with them through the backend's
//!   [`plugin_api::Peers`], so their figures add up.
//! - [`shutdown`]: SIGINT/SIGTERM handling.
//! - [`logging`]: LOG_LEVEL / LOG_FILENAME.
//! - [`reference`]: the book's reference pages (configuration keys, environment variables,
//!   command line), rendered from the config types, the override tables and the CLI.
//! - [`asyncapi`]: the AsyncAPI 3.0 document of a pipeline (`customersim asyncapi`), made from
//!   the resolved config and the brokers the sinks describe.
#![deny(unused_crate_dependencies)]

// Link the built-in plugins (inventory drops the registrations of a crate nothing names), each
// behind its cargo feature.
#[cfg(feature = "amqp")]
use customersim_sink_amqp as _;
#[cfg(feature = "live-view")]
use customersim_sink_live_view as _;
#[cfg(feature = "mqtt")]
use customersim_sink_mqtt as _;
#[cfg(feature = "stdout")]
use customersim_sink_stdout as _;
#[cfg(feature = "customer-list")]
use customersim_source_customer_list as _;
#[cfg(feature = "http-ingress")]
use customersim_source_http_ingress as _;
#[cfg(feature = "random-walk")]
use customersim_source_random_walk as _;
#[cfg(feature = "shopping-trip")]
use customersim_source_shopping_trip as _;
#[cfg(feature = "memory-timeline")]
use customersim_timeline_memory as _;
#[cfg(feature = "redis-timeline")]
use customersim_timeline_redis as _;

pub mod asyncapi;
pub mod batch;
pub mod checks;
pub mod cli;
pub mod config;
pub mod contract;
pub mod env;
pub mod fanout;
pub mod lateness;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod report;
pub mod report_file;
pub mod scheduler;
pub mod shutdown;
pub mod thresholds;
pub mod verdict;
pub mod wake;
pub mod watch;

pub use customersim_plugin_api as plugin_api;

#[cfg(test)]
use chrono_tz as _;
#[cfg(test)]
use customersim_testkit as _;
#[cfg(test)]
use fantoccini as _;
#[cfg(test)]
use hyper_util as _;
#[cfg(test)]
use lapin as _;
#[cfg(test)]
use libc as _;
#[cfg(test)]
use redis as _;
#[cfg(test)]
use rumqttc as _;
#[cfg(test)]
use serde_json as _;
#[cfg(test)]
use ureq as _;
