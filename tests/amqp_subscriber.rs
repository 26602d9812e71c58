//! The `amqp` sink's subscriber (what expectations and the delivery check read replies with)
//! against the real RabbitMQ on 127.0.0.1:5672: made through the registry from the sink's
//! settings as a pipeline gives them, it hears every message published to the routing keys of its
//! topics, in order and with the right topic, nothing else, keeps up through a full channel, and
//! reports a connection the broker closed (Lost, then Restored once it is subscribed again), a
//! broker unreachable at start the same way, and uses the sink's TLS files and exchange settings.
//!
//! Each test has the shared broker to itself ([`ExclusiveUse`]): another test binary stopping
//! RabbitMQ meanwhile would show up here as a loss.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use customersim::plugin_api::host::Shutdown;
use customersim::plugin_api::{
    BuildContext, Heard, Message, MetricsRegistry, PluginError, Sink, StoreLayout, Subscriber,
    Topics,
};
use customersim::registry;
use customersim_testkit::amqp::{LOCAL_AMQP_URL, connect};
use customersim_testkit::rabbitmq::ExclusiveUse;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel};
use tokio::sync::mpsc;

/// The `amqp` sink's subscriber for `settings` (YAML, as under `sinks:`), made through the
/// registry as the run makes it.
fn subscriber(settings: &str) -> Result<Box<dyn Subscriber>, PluginError> {
    let cx = BuildContext::new(
        StoreLayout::default(),
        Topics::default(),
        1,
        PathBuf::from("."),
        MetricsRegistry::default(),
    );
    let settings = serde_yaml::from_str(settings).expect("settings are YAML");
    registry::lookup::<dyn Sink>("amqp")
        .expect("the amqp sink is registered")
        .subscriber(settings, &cx)
        .expect("the amqp sink can subscribe")
}

/// Topics no other test publishes to: `test/<pid>-<nanos>/<name>`.
fn unique_topic(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_nanos();
    format!("test/{}-{nanos}/{name}", std::process::id())
}

/// Publishes `body` to `amq.topic` with the routing key of `topic` (`/` → `.`), as the sink does.
async fn publish(channel: &Channel, topic: &str, body: &str) {
    channel
        .basic_publish(
            "amq.topic".into(),
            topic.replace('/', ".").as_str().into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("published");
}

/// The next thing heard, failing the test after `limit`.
async fn next(heard: &mut mpsc::Receiver<Heard>, limit: Duration) -> Heard {
    tokio::time::timeout(limit, heard.recv())
        .await
        .expect("something is heard in time")
        .expect("the subscriber is running")
}

/// The next message, failing the test on a loss or after `limit`.
async fn next_message(heard: &mut mpsc::Receiver<Heard>, limit: Duration) -> Message {
    match next(heard, limit).await {
        Heard::Message(message) => message,
        other => panic!("expected a message, heard {other:?}"),
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_micros() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hears_each_topic_in_order_and_nothing_else() {
    let _broker = ExclusiveUse::acquire();
    let reply = unique_topic("prediction");
    let other = unique_topic("focus");
    let unbound = unique_topic("move");
    let shutdown = Shutdown::new();
    let (sender, mut heard) = mpsc::channel(64);
    let settings = format!("url: {LOCAL_AMQP_URL}\nexchange: amq.topic");
    subscriber(&settings)
        .expect("valid settings")
        .start(
            vec![reply.clone(), other.clone()],
            sender,
            shutdown.signal(),
        )
        .await
        .expect("the subscriber starts");
    // Published right after start returned: the bindings are in place, nothing may be missed.
    let before = now_us();
    let (connection, channel) = connect().await;
    let sent: Vec<(usize, String)> = (0..30)
        .map(|i| (i % 3, format!("{{\"customer\": {{\"id\": \"{i}\"}}}}")))
        .collect();
    for (which, body) in &sent {
        let topic = [&reply, &other, &unbound][*which];
        publish(&channel, topic, body).await;
    }
    let expected: Vec<(usize, String)> = sent.into_iter().filter(|(which, _)| *which < 2).collect();
    for (topic, body) in &expected {
        let message = next_message(&mut heard, Duration::from_secs(10)).await;
        assert_eq!(
            (message.topic, String::from_utf8(message.payload).unwrap()),
            (*topic, body.clone())
        );
        assert!(
            message.received_us >= before && message.received_us <= now_us(),
            "received_us {} is the wall clock at receipt (published after {before})",
            message.received_us
        );
    }
    // The unbound routing key's messages never arrive.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), heard.recv())
            .await
            .is_err(),
        "nothing more is heard"
    );
    shutdown.trigger();
    assert!(
        tokio::time::timeout(Duration::from_secs(10), heard.recv())
            .await
            .expect("the subscriber stops at shutdown")
            .is_none(),
        "the subscriber dropped its sender"
    );
    connection.close(200, "OK".into()).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_channel_holds_the_broker_back_and_loses_nothing() {
    let _broker = ExclusiveUse::acquire();
    let topic = unique_topic("prediction");
    let shutdown = Shutdown::new();
    // A channel far smaller than the prefetch: the subscriber waits on it, acknowledging only
    // what it handed on, so the broker keeps the rest.
    let (sender, mut heard) = mpsc::channel(4);
    subscriber("exchange: amq.topic")
        .expect("valid settings")
        .start(vec![topic.clone()], sender, shutdown.signal())
        .await
        .expect("the subscriber starts");
    let (connection, channel) = connect().await;
    let prefetch = u64::from(customersim_sink_amqp::PREFETCH);
    let count = 2 * prefetch + 500;
    for i in 0..count {
        publish(&channel, &topic, &i.to_string()).await;
    }
    // Nobody reads: the subscriber holds at most the prefetch (plus the channel's 4, acknowledged),
    // the broker the rest.
    let key = topic.replace('/', ".");
    let (ready, unacked) = tokio::task::spawn_blocking(move || {
        let queue = bound_queue(&key).expect("the subscriber's queue is bound to the key");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (ready, unacked) = queue_counts(&queue);
            if ready + unacked + 4 == count || std::time::Instant::now() > deadline {
                return (ready, unacked);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    assert_eq!(ready + unacked + 4, count, "every message was routed");
    assert!(
        unacked <= prefetch && ready >= count - prefetch - 4,
        "{unacked} unacknowledged, {ready} ready in the broker"
    );
    for i in 0..count {
        if i % 500 == 0 {
            // A slow reader now and then.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let message = next_message(&mut heard, Duration::from_secs(10)).await;
        assert_eq!(String::from_utf8(message.payload).unwrap(), i.to_string());
    }
    // The core closing its end stops the subscriber as well.
    drop(heard);
    connection.close(200, "OK".into()).await.ok();
}

/// The broker's process id of the connection whose client properties mention `marker` (the
/// subscriber names its connection after its topics).
fn connection_pid(marker: &str) -> Option<String> {
    // The table format: its pids are what `close_connection` takes (the JSON's are not).
    rabbitmqctl(&["list_connections", "pid", "client_properties"])
        .lines()
        .find(|line| line.contains(marker))
        .and_then(|line| line.split('\t').next())
        .map(str::to_string)
}

/// The queue bound to `amq.topic` with `routing_key`.
fn bound_queue(routing_key: &str) -> Option<String> {
    rabbitmqctl(&[
        "list_bindings",
        "source_name",
        "destination_name",
        "routing_key",
    ])
    .lines()
    .map(|line| line.split('\t').collect::<Vec<_>>())
    .find(|columns| columns.len() == 3 && columns[0] == "amq.topic" && columns[2] == routing_key)
    .map(|columns| columns[1].to_string())
}

/// The messages of `queue` waiting in the broker and those delivered but not acknowledged.
fn queue_counts(queue: &str) -> (u64, u64) {
    let table = rabbitmqctl(&[
        "list_queues",
        "name",
        "messages_ready",
        "messages_unacknowledged",
    ]);
    let columns: Vec<&str> = table
        .lines()
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .find(|columns| columns[0] == queue)
        .expect("the queue is listed");
    (columns[1].parse().unwrap(), columns[2].parse().unwrap())
}

/// The table `rabbitmqctl <args>` prints, without headers.
fn rabbitmqctl(args: &[&str]) -> String {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .args(["--quiet", "--no-table-headers"])
        .output()
        .expect("rabbitmqctl runs");
    assert!(output.status.success(), "rabbitmqctl {args:?}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// Closes the connection with process id `pid` from the broker's side.
fn close_connection(pid: &str) {
    let status = Command::new("rabbitmqctl")
        .args(["close_connection", pid, "closed by the test"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("rabbitmqctl runs");
    assert!(status.success(), "rabbitmqctl close_connection {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_by_the_broker_is_reported_and_restored() {
    let _broker = ExclusiveUse::acquire();
    let topic = unique_topic("prediction");
    let shutdown = Shutdown::new();
    let (sender, mut heard) = mpsc::channel(64);
    subscriber("exchange: amq.topic")
        .expect("valid settings")
        .start(vec![topic.clone()], sender, shutdown.signal())
        .await
        .expect("the subscriber starts");
    let (connection, channel) = connect().await;
    publish(&channel, &topic, "before").await;
    let message = next_message(&mut heard, Duration::from_secs(10)).await;
    assert_eq!(message.payload, b"before");

    let pid = tokio::task::spawn_blocking({
        let topic = topic.clone();
        move || connection_pid(&topic)
    })
    .await
    .unwrap()
    .expect("the subscriber's connection is named after its topic");
    let closed_at = now_us();
    tokio::task::spawn_blocking(move || close_connection(&pid))
        .await
        .unwrap();
    let lost_at = match next(&mut heard, Duration::from_secs(10)).await {
        Heard::Lost { at_us, why } => {
            assert!(!why.is_empty());
            at_us
        }
        other => panic!("expected the loss, heard {other:?}"),
    };
    assert!(lost_at >= closed_at - 1_000_000, "lost at the close");
    let restored_at = match next(&mut heard, Duration::from_secs(20)).await {
        Heard::Restored { at_us } => at_us,
        other => panic!("expected the restoration, heard {other:?}"),
    };
    assert!(restored_at >= lost_at);
    // Subscribed again before Restored was sent: what is published now arrives.
    publish(&channel, &topic, "after").await;
    let message = next_message(&mut heard, Duration::from_secs(10)).await;
    assert_eq!((message.topic, message.payload), (0, b"after".to_vec()));
    shutdown.trigger();
    connection.close(200, "OK".into()).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_and_a_missing_exchange_fail_start_clearly() {
    // Not while another test stops the broker: unreachable would be a gap, not a failure.
    let _broker = ExclusiveUse::acquire();
    let shutdown = Shutdown::new();
    let (sender, _heard) = mpsc::channel(4);
    let error = subscriber("url: amqp://guest:wrong-s3cret@127.0.0.1:5672/%2f")
        .expect("valid settings")
        .start(vec![unique_topic("prediction")], sender, shutdown.signal())
        .await
        .expect_err("the broker refuses the login")
        .to_string();
    assert!(
        error.contains("refused the login") && !error.contains("wrong-s3cret"),
        "{error}"
    );
    let (sender, _heard) = mpsc::channel(4);
    let exchange = unique_topic("no-such-exchange").replace('/', "-");
    let error = subscriber(&format!("exchange: {exchange}"))
        .expect("valid settings")
        .start(vec![unique_topic("prediction")], sender, shutdown.signal())
        .await
        .expect_err("the exchange does not exist")
        .to_string();
    assert!(
        error.contains(&exchange) && error.contains("declare: true"),
        "{error}"
    );
    let error = subscriber("exchange: ''")
        .err()
        .expect("the default exchange cannot be subscribed to")
        .to_string();
    assert!(error.starts_with("exchange:"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_declare_the_subscriber_declares_the_exchange_as_the_sink_would() {
    let _broker = ExclusiveUse::acquire();
    let exchange = unique_topic("replies").replace('/', "-");
    let topic = unique_topic("prediction");
    let shutdown = Shutdown::new();
    let (sender, mut heard) = mpsc::channel(8);
    // Before the sink: the subscriber may start first.
    subscriber(&format!(
        "exchange: {exchange}\nexchange_type: direct\ndeclare: true"
    ))
    .expect("valid settings")
    .start(vec![topic.clone()], sender, shutdown.signal())
    .await
    .expect("the subscriber declares the exchange and starts");
    let (connection, channel) = connect().await;
    channel
        .basic_publish(
            exchange.as_str().into(),
            topic.replace('/', ".").as_str().into(),
            BasicPublishOptions::default(),
            b"direct",
            BasicProperties::default(),
        )
        .await
        .expect("the exchange exists")
        .await
        .expect("published");
    let message = next_message(&mut heard, Duration::from_secs(10)).await;
    assert_eq!((message.topic, message.payload), (0, b"direct".to_vec()));
    shutdown.trigger();
    channel
        .exchange_delete(
            exchange.as_str().into(),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await
        .expect("delete the test's exchange");
    connection.close(200, "OK".into()).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_unreachable_at_start_is_a_gap_until_it_answers() {
    let _broker = ExclusiveUse::acquire();
    let port = customersim_testkit::net::free_port();
    let topic = unique_topic("prediction");
    let shutdown = Shutdown::new();
    let (sender, mut heard) = mpsc::channel(8);
    subscriber(&format!("url: amqp://guest:guest@127.0.0.1:{port}/%2f"))
        .expect("valid settings")
        .start(vec![topic.clone()], sender, shutdown.signal())
        .await
        .expect("an unreachable broker does not fail the start");
    match next(&mut heard, Duration::from_secs(5)).await {
        Heard::Lost { why, .. } => assert!(why.contains(&port.to_string()), "{why}"),
        other => panic!("expected the gap from the start, heard {other:?}"),
    }
    // The broker answers on that port from now on (a forwarder to the shared RabbitMQ).
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("listen on the free port");
    let forwarder = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect("127.0.0.1:5672").await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    match next(&mut heard, Duration::from_secs(15)).await {
        Heard::Restored { .. } => {}
        other => panic!("expected the restoration, heard {other:?}"),
    }
    let (connection, channel) = connect().await;
    publish(&channel, &topic, "heard").await;
    let message = next_message(&mut heard, Duration::from_secs(10)).await;
    assert_eq!(message.payload, b"heard");
    shutdown.trigger();
    forwarder.abort();
    connection.close(200, "OK".into()).await.ok();
}

#[test]
fn over_tls_with_a_client_certificate() {
    let _broker = ExclusiveUse::acquire();
    let dir = customersim_testkit::temp::temp_dir("amqp-subscriber-tls");
    let pki = customersim_testkit::pki::TestPki::generate(dir.path(), "");
    let front = customersim_testkit::rabbitmq::TlsFront::start(&pki);
    let settings = format!(
        "url: amqps://guest:guest@127.0.0.1:{}/%2f\nca_file: {}\nclient_cert_file: {}\nclient_key_file: {}",
        front.port,
        pki.ca.display(),
        pki.client_cert.display(),
        pki.client_key.display()
    );
    customersim_testkit::amqp::block_on(async {
        let topic = unique_topic("prediction");
        let shutdown = Shutdown::new();
        let (sender, mut heard) = mpsc::channel(8);
        subscriber(&settings)
            .expect("valid settings")
            .start(vec![topic.clone()], sender, shutdown.signal())
            .await
            .expect("the subscriber connects over TLS");
        let (connection, channel) = connect().await;
        publish(&channel, &topic, "over TLS").await;
        let message = next_message(&mut heard, Duration::from_secs(10)).await;
        assert_eq!(message.payload, b"over TLS");
        shutdown.trigger();
        connection.close(200, "OK".into()).await.ok();
    });
    // Without the client certificate the endpoint refuses the handshake: a permanent error.
    let without_identity = format!(
        "url: amqps://guest:guest@127.0.0.1:{}/%2f\nca_file: {}",
        front.port,
        pki.ca.display()
    );
    let error = customersim_testkit::amqp::block_on(async {
        let (sender, _heard) = mpsc::channel(8);
        subscriber(&without_identity)
            .expect("valid settings")
            .start(
                vec![unique_topic("prediction")],
                sender,
                Shutdown::new().signal(),
            )
            .await
            .expect_err("no client certificate")
            .to_string()
    });
    assert!(error.contains("TLS"), "{error}");
}
