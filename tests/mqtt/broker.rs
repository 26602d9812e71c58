//! Private Mosquitto brokers for the MQTT tests, a subscriber that records what it receives, and
//! test certificates.
//!
//! Each broker is a `mosquitto` process on a free port with a config file written here. Mosquitto
//! started as root drops its privileges to the `mosquitto` user, so its folder, config,
//! certificates and persistence files are made readable and writable by everyone.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::common::{Line, free_port};

/// A fresh folder that the `mosquitto` user can use.
pub fn shared_dir(label: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "customersim-mqtt-{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Writes a file that the `mosquitto` user can read.
pub fn write_shared(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

/// A running private broker; killed when dropped.
pub struct Broker {
    /// The first listener's port (the one the sink under test uses).
    pub port: u16,
    /// A plain, anonymous-or-not listener for the test's subscriber (same as `port` unless the
    /// broker has a TLS listener).
    pub plain_port: u16,
    pub dir: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker with `max_queued_messages 0` (nothing dropped for a slow subscriber) and
    /// persistence. `listener` is the text after the first `listener PORT 127.0.0.1` line (TLS
    /// settings); `global` goes at the top (authentication). With a `listener` text, a second,
    /// plain listener is added for the subscriber.
    pub fn start(label: &str, global: &str, listener: &str) -> Broker {
        let dir = shared_dir(label);
        Broker::start_in(dir, free_port(), global, listener)
    }

    /// Like [`Broker::start`], in a prepared folder and on a given port.
    pub fn start_in(dir: PathBuf, port: u16, global: &str, listener: &str) -> Broker {
        let plain_port = if listener.trim().is_empty() {
            port
        } else {
            free_port()
        };
        let mut text = format!(
            "persistence true\npersistence_location {}/\nlog_dest file {}/mosquitto.log\nlog_type all\nmax_queued_messages 0\nmax_inflight_messages 0\n{global}\nlistener {port} 127.0.0.1\n{listener}\n",
            dir.display(),
            dir.display(),
        );
        if plain_port != port {
            text.push_str(&format!("listener {plain_port} 127.0.0.1\n"));
        }
        let config = write_shared(&dir, "mosquitto.conf", &text);
        let mut broker = Broker {
            port,
            plain_port,
            dir,
            config,
            child: None,
        };
        broker.restart();
        broker
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
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
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
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// The broker's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How a test subscriber connects.
#[derive(Clone, Default)]
pub struct SubscriberOptions {
    pub username: Option<(String, String)>,
    /// A fixed client id with a persistent session (clean session off): the broker keeps what
    /// arrives while the subscriber is away, including across a broker restart.
    pub persistent_id: Option<String>,
}

/// Records every message on `filter` (QoS 1), in arrival order, reconnecting when the broker goes
/// away. Stops when dropped.
pub struct Subscriber {
    received: Arc<Mutex<Vec<Line>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    /// Connects and subscribes; returns once the broker confirmed the subscription.
    pub fn start(port: u16, filter: &str, options: SubscriberOptions) -> Subscriber {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let received = received.clone();
            let stop = stop.clone();
            let filter = filter.to_string();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let id = options.persistent_id.clone().unwrap_or_else(|| {
                        format!("test-sub-{}-{}", std::process::id(), free_port())
                    });
                    let mut mqtt = MqttOptions::new(id, "127.0.0.1", port);
                    mqtt.set_clean_session(options.persistent_id.is_none());
                    mqtt.set_keep_alive(Duration::from_secs(5));
                    mqtt.set_max_packet_size(1 << 20, 1 << 20);
                    if let Some((user, password)) = &options.username {
                        mqtt.set_credentials(user, password);
                    }
                    let (client, mut events) = AsyncClient::new(mqtt, 1000);
                    let mut ready = Some(ready_tx);
                    let mut stopping = false;
                    loop {
                        if stop.load(Ordering::Relaxed) && !stopping {
                            stopping = true;
                            let _ = client.try_disconnect();
                        }
                        match tokio::time::timeout(Duration::from_millis(200), events.poll()).await
                        {
                            Err(_) => {}
                            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                                client
                                    .subscribe(filter.as_str(), QoS::AtLeastOnce)
                                    .await
                                    .unwrap();
                            }
                            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                                if let Some(ready) = ready.take() {
                                    let _ = ready.send(());
                                }
                            }
                            Ok(Ok(Event::Incoming(Packet::Publish(publish)))) => {
                                received.lock().unwrap().push(Line {
                                    topic: publish.topic.clone(),
                                    payload: String::from_utf8(publish.payload.to_vec()).unwrap(),
                                });
                            }
                            Ok(Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect))) => return,
                            Ok(Ok(_)) => {}
                            Ok(Err(_)) => {
                                if stopping {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                });
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the test subscriber subscribed");
        Subscriber {
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until at least `count` messages arrived (at most `limit`), then a little longer to
    /// catch extra ones, and returns them all.
    pub fn wait_for(&self, count: usize, limit: Duration) -> Vec<Line> {
        let deadline = Instant::now() + limit;
        while self.received.lock().unwrap().len() < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// PEM files of a test PKI: a CA, a server certificate for 127.0.0.1/localhost and a client
/// certificate, all signed by the CA.
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    /// Generates a PKI in `dir` (file names start with `prefix`).
    pub fn generate(dir: &Path, prefix: &str) -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("customersim test CA {prefix}"));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let mut server_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "customersim-test-client");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();

        TestPki {
            ca: write_shared(dir, &format!("{prefix}ca.pem"), &ca.pem()),
            server_cert: write_shared(dir, &format!("{prefix}server.pem"), &server.pem()),
            server_key: write_shared(
                dir,
                &format!("{prefix}server.key"),
                &server_key.serialize_pem(),
            ),
            client_cert: write_shared(dir, &format!("{prefix}client.pem"), &client.pem()),
            client_key: write_shared(
                dir,
                &format!("{prefix}client.key"),
                &client_key.serialize_pem(),
            ),
        }
    }

    /// The listener settings of a TLS broker using this PKI.
    pub fn listener(&self, require_client_certificate: bool) -> String {
        format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require_client_certificate}\n",
            self.ca.display(),
            self.server_cert.display(),
            self.server_key.display()
        )
    }
}
