//! The `amqp` sink over TLS (`amqps://`) with a client certificate. The shared RabbitMQ has no TLS
//! listener, so the test puts the kit's TLS endpoint in front of it: it requires a client
//! certificate signed by the test CA and forwards the decrypted bytes to RabbitMQ on
//! 127.0.0.1:5672. The certificates are made for each run.

use std::process::Command;
use std::time::Duration;

use customersim_testkit::amqp::{LOCAL_AMQP_URL as URL, TestQueue};
use customersim_testkit::pki::TestPki;
use customersim_testkit::rabbitmq::{ExclusiveUse, TlsFront};
use customersim_testkit::run::{clean_command, run_failing, run_ok};
use customersim_testkit::stdout_sink::parse_lines;
use customersim_testkit::temp::temp_dir;

/// The binary under test, with a clean environment.
fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

#[test]
fn publishes_over_tls_with_a_client_certificate() {
    // Alone on the shared broker: the queue counts everything published on amq.topic.
    let _alone = ExclusiveUse::acquire();
    let dir = temp_dir("amqp-tls");
    let pki = TestPki::generate(dir.path(), "");
    let other = TestPki::generate(dir.path(), "other-");
    let front = TlsFront::start(&pki);
    let queue = TestQueue::declare("tls", "amq.topic", &["customer.#"]);

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
    let url = format!("amqps://guest:guest@127.0.0.1:{}/%2f", front.port);
    let with_tls = |ca: &std::path::Path| {
        let mut command = customersim();
        command
            .args(["run", "--sink", "amqp"])
            .args(args)
            .env("AMQP_URL", &url)
            .env("AMQP_CA_FILE", ca)
            .env("AMQP_CLIENT_CERT_FILE", &pki.client_cert)
            .env("AMQP_CLIENT_KEY_FILE", &pki.client_key);
        command
    };

    // The right CA and a client certificate: every event arrives through TLS.
    run_ok(&mut with_tls(&pki.ca));
    let expected =
        parse_lines(&run_ok(customersim().args(["run", "--sink", "stdout"]).args(args)).stdout);
    let received: Vec<(String, String)> = queue
        .drain(expected.len())
        .into_iter()
        .map(|message| (message.routing_key, message.body))
        .collect();
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|line| (line.topic.replace('/', "."), line.payload))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(received, expected);

    // A CA that did not sign the broker's certificate: one TLS error, exit 1, no retries.
    let started = std::time::Instant::now();
    let (_, stderr) = run_failing(&mut with_tls(&other.ca), 1);
    assert!(stderr.contains("TLS with 127.0.0.1"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));

    // TLS files with a plain amqp:// URL are a configuration error.
    let (_, stderr) = run_failing(
        customersim()
            .args(["validate"])
            .env("SINKS", "amqp")
            .env("AMQP_URL", URL)
            .env("AMQP_CA_FILE", &pki.ca),
        2,
    );
    assert!(stderr.contains("amqps://"), "{stderr}");
}

#[test]
fn a_v1_client_certificate_made_by_openssl_is_presented_over_tls() {
    let _alone = ExclusiveUse::acquire();
    let dir = temp_dir("amqp-tls-v1");
    let pki = TestPki::generate(dir.path(), "");
    // `openssl x509 -req` without an extensions file (the brokers' TLS recipes): X.509 v1.
    let (v1_cert, v1_key) = pki.openssl_v1_client(dir.path(), "v1-client");
    // OpenSSL terminates the TLS, requiring a client certificate of the CA, as RabbitMQ's own
    // listener with `verify_peer` and `fail_if_no_peer_cert` does.
    let front = TlsFront::start_openssl(&pki);
    let queue = TestQueue::declare("tls-v1", "amq.topic", &["customer.#"]);

    let args = [
        "--seed",
        "4",
        "--speed",
        "max",
        "--start",
        "2024-03-01T08:00:00Z",
        "--duration",
        "1h",
    ];
    let url = format!("amqps://guest:guest@127.0.0.1:{}/%2f", front.port);
    let with_tls = |identity: Option<(&std::path::Path, &std::path::Path)>| {
        let mut command = customersim();
        command
            .args(["run", "--sink", "amqp"])
            .args(args)
            .env("AMQP_URL", &url)
            .env("AMQP_CA_FILE", &pki.ca);
        if let Some((cert, key)) = identity {
            command
                .env("AMQP_CLIENT_CERT_FILE", cert)
                .env("AMQP_CLIENT_KEY_FILE", key);
        }
        command
    };

    run_ok(&mut with_tls(Some((&v1_cert, &v1_key))));
    let expected =
        parse_lines(&run_ok(customersim().args(["run", "--sink", "stdout"]).args(args)).stdout);
    let received: Vec<(String, String)> = queue
        .drain(expected.len())
        .into_iter()
        .map(|message| (message.routing_key, message.body))
        .collect();
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|line| (line.topic.replace('/', "."), line.payload))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(received, expected);

    // The front does require a certificate: without one, the TLS handshake fails (exit 1).
    let (_, stderr) = run_failing(&mut with_tls(None), 1);
    assert!(stderr.contains("TLS with 127.0.0.1"), "{stderr}");

    // The v1 certificate with a key that is not its own: exit 2, before connecting.
    let (_, stderr) = run_failing(&mut with_tls(Some((&v1_cert, &pki.client_key))), 2);
    assert!(
        stderr.contains("AMQP_CLIENT_CERT_FILE")
            && stderr.contains("cannot be used together")
            && stderr.contains("not the key of the certificate"),
        "{stderr}"
    );
}
