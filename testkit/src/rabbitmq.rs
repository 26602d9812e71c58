//! The shared RabbitMQ in situations it is not in by itself: used by one test at a time, stopped
//! for a while (a broker restart mid-run), and reachable over TLS with a client certificate (it
//! has no TLS listener).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

use crate::net::free_port;
use crate::pki::TestPki;

/// The shared RabbitMQ to this test alone until dropped, across processes: test binaries, benchmarks
/// and other checkouts on the machine. A test holds it while it counts what arrives on
/// `amq.topic` (anyone else's events would be counted too) or stops the broker (anyone else's
/// connections would break). An exclusive `flock(2)` on a file in the temp folder: the kernel
/// releases it when the process ends, however it ends.
pub struct ExclusiveUse {
    _lock: File,
}

impl ExclusiveUse {
    /// Waits for the turn.
    pub fn acquire() -> ExclusiveUse {
        let path = std::env::temp_dir().join("customersim-shared-rabbitmq.lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
        loop {
            // SAFETY: flock(2) on a descriptor this function owns; no memory is shared.
            if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return ExclusiveUse { _lock: lock };
            }
            let error = std::io::Error::last_os_error();
            assert_eq!(
                error.kind(),
                std::io::ErrorKind::Interrupted,
                "lock {}: {error}",
                path.display()
            );
        }
    }
}

/// The RabbitMQ application stopped (`rabbitmqctl stop_app`) until this is dropped, so a failing
/// test never leaves the shared broker stopped. Hold an [`ExclusiveUse`] meanwhile.
pub struct StoppedApp(());

impl StoppedApp {
    /// Stops the application; the Erlang node keeps running, so starting it again is quick.
    pub fn stop() -> StoppedApp {
        rabbitmqctl("stop_app");
        StoppedApp(())
    }
}

impl Drop for StoppedApp {
    fn drop(&mut self) {
        rabbitmqctl("start_app");
    }
}

fn rabbitmqctl(command: &str) {
    let status = Command::new("rabbitmqctl")
        .arg(command)
        .stdout(Stdio::null())
        .status()
        .expect("rabbitmqctl runs");
    assert!(status.success(), "rabbitmqctl {command} failed");
}

/// A TLS endpoint in front of the shared RabbitMQ: a server on a free port that presents the
/// PKI's server certificate, requires a client certificate signed by the PKI's CA, and forwards
/// the decrypted bytes to 127.0.0.1:5672. Stops when dropped.
pub struct TlsFront {
    /// Where to connect with `amqps://`.
    pub port: u16,
    _server: FrontServer,
}

/// What terminates the TLS of a [`TlsFront`].
enum FrontServer {
    /// rustls in this process (webpki verifies the client certificate: v3 only).
    Rustls {
        /// Runs the accept loop; dropping it stops the server.
        _runtime: tokio::runtime::Runtime,
    },
    /// An OpenSSL server (`socat`), which, like RabbitMQ's own TLS listener, accepts client
    /// certificates of every X.509 version.
    OpenSsl(Child),
}

impl Drop for FrontServer {
    fn drop(&mut self) {
        if let FrontServer::OpenSsl(child) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl TlsFront {
    /// Starts the endpoint.
    pub fn start(pki: &TestPki) -> TlsFront {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certificates: Vec<CertificateDer> = CertificateDer::pem_file_iter(&pki.server_cert)
            .expect("read the server certificate")
            .map(|certificate| certificate.expect("a PEM certificate"))
            .collect();
        let key = PrivateKeyDer::from_pem_file(&pki.server_key).expect("read the server key");
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&pki.ca).expect("read the CA") {
            roots
                .add(ca.expect("a PEM certificate"))
                .expect("a CA certificate");
        }
        let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .expect("a client verifier");
        let config = ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certificates, key)
            .expect("a TLS server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let port = free_port();
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
            .expect("listen on the free port");
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Ok(mut broker) = tokio::net::TcpStream::connect("127.0.0.1:5672").await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
                });
            }
        });
        TlsFront {
            port,
            _server: FrontServer::Rustls { _runtime: runtime },
        }
    }

    /// Starts the endpoint with OpenSSL (`socat OPENSSL-LISTEN`, `verify=1`: a client
    /// certificate signed by the PKI's CA is required) instead of rustls, for client
    /// certificates webpki does not read, such as X.509 v1 ([`TestPki::openssl_v1_client`]).
    pub fn start_openssl(pki: &TestPki) -> TlsFront {
        let port = free_port();
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},cafile={},verify=1",
            pki.server_cert.display(),
            pki.server_key.display(),
            pki.ca.display()
        );
        let child = Command::new("socat")
            .arg(listen)
            .arg("TCP:127.0.0.1:5672")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat is installed");
        let server = FrontServer::OpenSsl(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "socat did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsFront {
            port,
            _server: server,
        }
    }
}
