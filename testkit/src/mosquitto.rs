//! Private Mosquitto brokers: a `mosquitto` process on a free port with a config file written for
//! the test, so authentication, TLS, broker settings and restarts never touch the shared broker.
//!
//! Mosquitto started as root drops its privileges to the `mosquitto` user, so the broker's folder
//! is a [`shared_temp_dir`] and its files are written with [`write_shared`].

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::free_port;
use crate::pki::TestPki;
use crate::temp::{TempDir, shared_temp_dir, write_shared};

/// A running private broker; killed, and its folder removed, when dropped.
pub struct Broker {
    /// The first listener's port (the one the client under test uses).
    pub port: u16,
    /// A plain listener for the test's subscriber: `port` itself, unless the first listener has
    /// TLS settings.
    pub plain_port: u16,
    dir: TempDir,
    config: PathBuf,
    log: Option<PathBuf>,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker that keeps every message: `max_queued_messages 0` (nothing dropped for a
    /// slow subscriber), persistence (kept across [`Broker::restart`]) and a full log for failure
    /// messages. `global` goes at the top (authentication); `listener` follows the first
    /// `listener PORT 127.0.0.1` line (TLS settings), and when it is not empty a second, plain
    /// listener is added for the subscriber.
    pub fn start(label: &str, global: &str, listener: &str) -> Broker {
        Broker::start_in(shared_temp_dir(label), free_port(), global, listener)
    }

    /// Like [`Broker::start`], in a folder the test prepared (password file, certificates) and
    /// on a given port.
    pub fn start_in(dir: TempDir, port: u16, global: &str, listener: &str) -> Broker {
        let plain_port = if listener.trim().is_empty() {
            port
        } else {
            free_port()
        };
        let log = dir.path().join("mosquitto.log");
        let mut text = format!(
            "persistence true\npersistence_location {}/\nlog_dest file {}\nlog_type all\nmax_queued_messages 0\nmax_inflight_messages 0\n{global}\nlistener {port} 127.0.0.1\n{listener}\n",
            dir.path().display(),
            log.display(),
        );
        if plain_port != port {
            text.push_str(&format!("listener {plain_port} 127.0.0.1\n"));
        }
        Broker::launch(dir, port, plain_port, &text, Some(log))
    }

    /// Like [`Broker::start`] with a TLS first listener, using a fresh [`TestPki`] made in the
    /// broker's folder (so the broker can read it); the subscriber's plain listener is
    /// [`Broker::plain_port`].
    pub fn start_tls(
        label: &str,
        global: &str,
        require_client_certificate: bool,
    ) -> (Broker, TestPki) {
        let dir = shared_temp_dir(label);
        let pki = TestPki::generate(dir.path(), "");
        let listener = pki.mosquitto_listener(require_client_certificate);
        (Broker::start_in(dir, free_port(), global, &listener), pki)
    }

    /// A broker for throughput measurements, anonymous, on a free port: nothing dropped for a
    /// slow subscriber, no in-flight limit, and neither persistence nor a log to slow it down.
    pub fn start_for_benchmark(label: &str) -> Broker {
        let dir = shared_temp_dir(label);
        let port = free_port();
        let text = format!(
            "persistence false\nlog_dest none\nmax_queued_messages 0\nmax_inflight_messages 0\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
        );
        Broker::launch(dir, port, port, &text, None)
    }

    fn launch(
        dir: TempDir,
        port: u16,
        plain_port: u16,
        config_text: &str,
        log: Option<PathBuf>,
    ) -> Broker {
        let config = write_shared(dir.path(), "mosquitto.conf", config_text);
        let mut broker = Broker {
            port,
            plain_port,
            dir,
            config,
            log,
            child: None,
        };
        broker.restart();
        broker
    }

    /// The broker's folder (its config, log and persistence file; the test's files too).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the process (again), same config and port, and waits until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto runs (Debian package mosquitto)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in [self.port, self.plain_port] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                let child = self.child.as_mut().expect("started above");
                if let Some(status) = child.try_wait().expect("query mosquitto") {
                    panic!("mosquitto exited with {status}; log:\n{}", self.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "mosquitto did not come up; log:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Stops the broker with SIGTERM (it saves its persistence file) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::run::terminate(&child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().expect("query mosquitto").is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// The broker's log, for failure messages (empty for a benchmark broker).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|log| std::fs::read_to_string(log).ok())
            .unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
