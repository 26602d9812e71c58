//! Shared helpers of customersim's integration tests and benchmarks, so every test starts the
//! binary, writes temp files, talks HTTP, MQTT and AMQP, and runs private brokers the same way.
//!
//! Everything here drives real parts: the real binary, real brokers, Redis and files. Nothing
//! stands in for what a test checks.
//!
//! # Modules
//! - [`run`]: a [`Command`](std::process::Command) for a customersim binary (the core's or an
//!   out-of-tree one) with none of the caller's environment, run-to-the-end and
//!   expect-a-failure helpers, SIGTERM, and [`run::Process`] for binaries that run alongside the
//!   test.
//! - [`stdout_sink`]: the stdout sink's lines split into topic and payload bytes.
//! - [`temp`]: temp files and folders with unique names, removed when dropped.
//! - [`net`]: a free TCP port.
//! - [`turns`]: tests of one file that must run alone next to ones that may share.
//! - [`http`]: a small HTTP client for the `http_ingress` API.
//! - [`mqtt`]: a subscriber that records or counts what arrives on a topic filter.
//! - [`mosquitto`]: private Mosquitto brokers on free ports, from a written config.
//! - [`pki`]: a test certificate authority with server and client certificates.
//! - [`amqp`]: queues bound to an exchange on RabbitMQ, drained or counted.
//! - [`rabbitmq`]: the shared RabbitMQ to one test at a time (across processes), stopped for a
//!   while, and a TLS endpoint in front of it.
//! - [`responder`]: a stand-in for the system under test of expectations, answering requests on
//!   Mosquitto or RabbitMQ after a delay, with skipped, late, invalid and unmatched replies, and
//!   a record of exactly what it did.
//! - [`redis`]: key namespaces of their own on Redis, and private Redis servers.
//! - [`timeline`]: the conformance suite every
//!   [`Timeline`](customersim::plugin_api::Timeline) backend must pass.

pub mod amqp;
pub mod http;
pub mod mosquitto;
pub mod mqtt;
pub mod net;
pub mod pki;
pub mod rabbitmq;
pub mod redis;
pub mod responder;
pub mod run;
pub mod stdout_sink;
pub mod temp;
pub mod timeline;
pub mod turns;
