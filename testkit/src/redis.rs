//! Redis for the timeline tests: a key namespace of its own on a shared server (so tests never
//! see each other's events), and private `redis-server` processes a test may crash.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::pki::TestPki;
use crate::temp::{TempDir, temp_dir};

/// The shared Redis of the test machine.
pub const LOCAL_REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// A timeline key (`timeline.redis.key`) nobody else uses; every key under it is deleted when
/// created and when dropped.
pub struct Namespace {
    key: String,
    url: String,
}

impl Namespace {
    /// A namespace on the shared Redis, named after `label`.
    pub fn new(label: &str) -> Namespace {
        Namespace::on(LOCAL_REDIS_URL, label)
    }

    /// A namespace on the Redis at `url`.
    pub fn on(url: &str, label: &str) -> Namespace {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after the epoch")
            .subsec_nanos();
        let namespace = Namespace {
            key: format!(
                "test-{label}-{}-{}-{nanos}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            url: url.to_string(),
        };
        namespace.clear();
        namespace
    }

    /// The timeline key, for `timeline.redis.key`.
    pub fn name(&self) -> &str {
        &self.key
    }

    /// The URL of its Redis.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A fresh connection to its Redis.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .expect("a valid Redis URL")
            .get_connection()
            .unwrap_or_else(|error| panic!("Redis at {} is not reachable: {error}", self.url))
    }

    /// The full name of one of the timeline's keys (`due`, `leases`, `instances`, …).
    pub fn key(&self, name: &str) -> String {
        format!("{{{}}}:{name}", self.key)
    }

    /// The number of members of the sorted set `name` (`due`, `leases`, `instances`).
    pub fn zcard(&self, name: &str) -> u64 {
        redis::cmd("ZCARD")
            .arg(self.key(name))
            .query(&mut self.connection())
            .expect("ZCARD")
    }

    /// Deletes every key of the namespace.
    pub fn clear(&self) {
        let mut connection = self.connection();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{{{}}}:*", self.key))
            .query(&mut connection)
            .expect("KEYS");
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(keys)
                .query(&mut connection)
                .expect("DEL");
        }
    }

    /// Waits until nothing is waiting or leased, for at most `limit`.
    pub fn wait_drained(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.zcard("due") > 0 || self.zcard("leases") > 0 {
            assert!(
                Instant::now() < deadline,
                "the timeline did not drain in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `count` instances have joined.
    pub fn wait_instances(&self, count: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.zcard("instances") < count {
            assert!(Instant::now() < deadline, "instances did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        self.clear();
    }
}

/// A private Redis on a free port with an append-only file synced on every write, so a restart
/// keeps everything it acknowledged. Killed, and its folder removed, when dropped.
pub struct PrivateRedis {
    /// Its port on 127.0.0.1 (its TLS port when started with [`PrivateRedis::start_tls`]).
    pub port: u16,
    /// The TLS settings, when it speaks TLS only.
    tls: Option<Vec<String>>,
    child: Child,
    dir: TempDir,
}

impl PrivateRedis {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> PrivateRedis {
        PrivateRedis::start_with(None)
    }

    /// Starts one that speaks TLS only (`--port 0 --tls-port …`) with the PKI's server
    /// certificate; with `require_client_certificate` (`--tls-auth-clients yes`) a client must
    /// present a certificate signed by the PKI's CA. Its URL is `rediss://`.
    pub fn start_tls(pki: &TestPki, require_client_certificate: bool) -> PrivateRedis {
        let auth = if require_client_certificate {
            "yes"
        } else {
            "no"
        };
        let path = |path: &std::path::Path| path.display().to_string();
        PrivateRedis::start_with(Some(vec![
            "--tls-cert-file".into(),
            path(&pki.server_cert),
            "--tls-key-file".into(),
            path(&pki.server_key),
            "--tls-ca-cert-file".into(),
            path(&pki.ca),
            "--tls-auth-clients".into(),
            auth.into(),
        ]))
    }

    fn start_with(tls: Option<Vec<String>>) -> PrivateRedis {
        let dir = temp_dir("redis");
        let port = crate::net::free_port();
        let child = PrivateRedis::launch(port, tls.as_deref(), &dir);
        PrivateRedis {
            port,
            tls,
            child,
            dir,
        }
    }

    fn launch(port: u16, tls: Option<&[String]>, dir: &TempDir) -> Child {
        let mut command = Command::new("redis-server");
        match tls {
            None => command.args(["--port", &port.to_string()]),
            Some(settings) => command
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(settings),
        };
        let child = command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "private redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    /// Its URL.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    /// SIGKILL, a pause, and a start from the append-only file on the same port.
    pub fn crash_and_restart(&mut self, down_for: Duration) {
        self.child.kill().expect("kill redis-server");
        self.child.wait().expect("reap redis-server");
        std::thread::sleep(down_for);
        self.child = PrivateRedis::launch(self.port, self.tls.as_deref(), &self.dir);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
