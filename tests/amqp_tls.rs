//! The `amqp` sink over TLS (`amqps://`) with a client certificate. The shared RabbitMQ has no TLS
//! listener, so the test puts a TLS endpoint in front of it: a rustls server on a free port that
//! requires a client certificate signed by the test CA and forwards the decrypted bytes to
//! RabbitMQ on 127.0.0.1:5672. The certificates are made with `openssl` for each run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{customersim, free_port, parse_lines, run_failing, run_ok};
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`{name}-ca.pem`) and a certificate signed by it for `cn` with the SAN `san`.
fn certificates(dir: &Path, name: &str, cn: &str, san: &str) {
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let cert = format!("{name}.pem");
    let ext = format!("{name}.ext");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    std::fs::write(dir.join(&ext), format!("subjectAltName={san}\n")).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("customersim-amqp-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Accepts TLS connections that present a client certificate of `client_ca`, and forwards them
/// to RabbitMQ. Runs until the runtime is dropped.
async fn tls_front(dir: &Path, port: u16) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(dir.join("client-ca.pem")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let config = ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut broker) = tokio::net::TcpStream::connect("127.0.0.1:5672").await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
            });
        }
    });
}

#[test]
fn publishes_over_tls_with_a_client_certificate() {
    let dir = temp_dir();
    certificates(&dir, "server", "127.0.0.1", "IP:127.0.0.1");
    certificates(&dir, "client", "customersim", "DNS:customersim");
    certificates(&dir, "other", "127.0.0.1", "IP:127.0.0.1");
    let port = free_port();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(tls_front(&dir, port));

    let queue = format!("customersim-test-tls-{}", std::process::id());
    runtime.block_on(async {
        let connection = Connection::connect(URL, ConnectionProperties::default())
            .await
            .expect("RabbitMQ on 127.0.0.1:5672");
        let channel = connection.create_channel().await.unwrap();
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                "amq.topic".into(),
                "customer.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        connection.close(200, "OK".into()).await.ok();
    });

    let args = [
        "--seed",
        "3",
        "--speed",
        "max",
        "--start",
        "2024-03-01T08:00:00Z",
        "--duration",
        "1h",
    ];
    let url = format!("amqps://guest:guest@127.0.0.1:{port}/%2f");
    let with_tls = |ca: &str| {
        let mut command = customersim();
        command
            .args(["run", "--sink", "amqp"])
            .args(args)
            .env("AMQP_URL", &url)
            .env("AMQP_CA_FILE", dir.join(ca))
            .env("AMQP_CLIENT_CERT_FILE", dir.join("client.pem"))
            .env("AMQP_CLIENT_KEY_FILE", dir.join("client.key"));
        command
    };

    // The right CA and a client certificate: every event arrives through TLS.
    run_ok(&mut with_tls("server-ca.pem"));
    let expected =
        parse_lines(&run_ok(customersim().args(["run", "--sink", "stdout"]).args(args)).stdout);
    let received = runtime.block_on(async {
        let connection = Connection::connect(URL, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let mut received = Vec::new();
        while let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            received.push((
                message.delivery.routing_key.as_str().to_string(),
                String::from_utf8(message.delivery.data.clone()).unwrap(),
            ));
        }
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .ok();
        connection.close(200, "OK".into()).await.ok();
        received
    });
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|line| (line.topic.replace('/', "."), line.payload))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(received, expected);

    // A CA that did not sign the broker's certificate: one TLS error, exit 1, no retries.
    let started = std::time::Instant::now();
    let (_, stderr) = run_failing(&mut with_tls("other-ca.pem"), 1);
    assert!(stderr.contains("TLS with 127.0.0.1"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));

    // TLS files with a plain amqp:// URL are a configuration error.
    let (_, stderr) = run_failing(
        customersim()
            .args(["validate"])
            .env("SINKS", "amqp")
            .env("AMQP_URL", URL)
            .env("AMQP_CA_FILE", dir.join("server-ca.pem")),
        2,
    );
    assert!(stderr.contains("amqps://"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
