//! Hostile and careless configuration through the real binary: every bad value is exit code 2
//! with one message naming the key, variable or line, never a panic, a hang or a quoted secret;
//! `${VAR}` values never change the file's structure; the scheduler's defaults keep up.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use customersim_testkit::run::{clean_command, run_failing, run_ok, terminate};
use customersim_testkit::temp::{TempDir, TempFile, temp_dir, temp_file};

/// The binary under test, with a clean environment.
fn customersim() -> Command {
    clean_command(env!("CARGO_BIN_EXE_customersim"))
}

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn default_yaml() -> PathBuf {
    repository().join("configs/default.yaml")
}

/// A pipeline file of `sources`, `sinks` and further top-level `extra` (YAML).
fn pipeline(sources: &str, sinks: &str, extra: &str) -> TempFile {
    temp_file(
        "pipeline.yaml",
        &format!("{extra}sources: {sources}\nsinks: {sinks}\n"),
    )
}

/// Exit 2, no panic, and stderr holds every needle; returns stderr.
fn refused(command: &mut Command, needles: &[&str]) -> String {
    let (_, stderr) = run_failing(command, 2);
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "no {needle:?} in:\n{stderr}");
    }
    stderr
}

#[test]
fn no_config_value_panics_each_is_refused_naming_its_key() {
    let walk = "[{type: random_walk}]";
    let stdout = "[{type: stdout}]";
    let run = |args: &[&str]| {
        let mut command = customersim();
        command.args(["run", "--sink", "stdout"]).args(args);
        command
    };
    refused(&mut run(&["--duration", "1e20"]), &["--duration", "1e20"]);
    refused(
        &mut run(&["--duration", "300000000y"]),
        &["--duration", "longer than"],
    );
    refused(&mut run(&["--speed", "1e300"]), &["--speed", "1e300"]);
    refused(&mut run(&["--speed", "1e-300"]), &["--speed"]);
    refused(
        run(&[]).env("SIMULATION_DURATION", "1e20"),
        &["SIMULATION_DURATION", "simulation.duration"],
    );
    refused(
        run(&[]).env("CONSUME_FREQUENCY", "1e300"),
        &["CONSUME_FREQUENCY", "consume_frequency"],
    );
    refused(
        run(&[]).env("CUSTOMERS_AVERAGE_IN_STORE", "1e-300"),
        &["average_in_store"],
    );
    refused(
        run(&[]).env("CONSUME_FROM", "0001-01-01T00:00:00+01:00"),
        &["CONSUME_FROM", "years 1 to 9999"],
    );
    let validate = |config: &TempFile| {
        let mut command = customersim();
        command.args(["validate", "--config"]).arg(config.path());
        command
    };
    for (config, needles) in [
        (
            pipeline(
                walk,
                stdout,
                "timeline: {backend: redis, redis: {lease: 1e20}}\n",
            ),
            &["timeline.redis", "lease"][..],
        ),
        (
            pipeline("[{type: random_walk, mean_visit: \"1e20\"}]", stdout, ""),
            &["sources[0]", "mean_visit"],
        ),
        (
            pipeline(walk, "[{type: amqp, close_timeout: \"1e20\"}]", ""),
            &["sinks[0]", "close_timeout"],
        ),
        (
            pipeline(walk, stdout, "timeline: {consume_batch_size: 1e300}\n"),
            &["consume_batch_size"],
        ),
        (
            pipeline(
                walk,
                stdout,
                "simulation: {start: \"9999-12-31T00:00:00Z\", duration: 2d}\n",
            ),
            &["simulation.duration", "9999"],
        ),
        (
            pipeline(
                walk,
                stdout,
                "simulation: {start: \"0000-06-01T00:00:00Z\"}\n",
            ),
            &["simulation.start", "years 1 to 9999"],
        ),
        (
            pipeline(
                "[{type: shopping_trip, average_in_store: 1e300}]",
                stdout,
                "",
            ),
            &["sources[0]", "average_in_store"],
        ),
    ] {
        refused(&mut validate(&config), needles);
    }
}

#[test]
fn a_secret_that_resolves_to_nothing_is_an_error_not_no_authentication() {
    let config = pipeline(
        "[{type: http_ingress, token: ${TOKEN}}]",
        "[{type: stdout}]",
        "",
    );
    for value in ["~", "null", "NULL", ""] {
        refused(
            customersim()
                .args(["validate", "--config"])
                .arg(config.path())
                .env("TOKEN", value),
            &[
                "sources[0] (type: http_ingress)",
                "token",
                "must not be empty",
            ],
        );
    }
    // Unset is refused before the token's own check: the variable is named.
    refused(
        customersim()
            .args(["validate", "--config"])
            .arg(config.path())
            .env_remove("TOKEN"),
        &["sources[0].token", "TOKEN is not set"],
    );
    // A token that is not UTF-8 is not "no token".
    for variable in ["HTTP_TOKEN", "TOKEN"] {
        refused(
            customersim()
                .args(["validate", "--config"])
                .arg(config.path())
                .env("TOKEN", "set")
                .env(variable, OsStr::from_bytes(b"s3cr\xffet")),
            &[variable, "not valid UTF-8"],
        );
    }
    // A real token is used, and masked.
    let output = run_ok(
        customersim()
            .args(["validate", "--config"])
            .arg(config.path())
            .env("TOKEN", "123456"),
    );
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown.contains("token: '******'") && !shown.contains("123456"),
        "{shown}"
    );
}

#[test]
fn secrets_are_never_printed_whatever_their_characters_or_the_error() {
    let password = "pa/ss#wo?rd@x";
    // URLs: validate's output and the error of a refused setting.
    let amqp = format!("amqp://guest:{password}@127.0.0.1:5672/%2f");
    let redis = format!("redis://:{password}@127.0.0.1:6379/0");
    let config = pipeline("[{type: random_walk}]", "[{type: amqp}]", "");
    for (variable, url, extra) in [
        ("AMQP_URL", amqp.as_str(), None),
        (
            "AMQP_URL",
            amqp.as_str(),
            Some(("AMQP_CA_FILE", "/nonexistent/ca.pem")),
        ),
        (
            "REDIS_URL",
            redis.as_str(),
            Some(("TIMELINE_BACKEND", "redis")),
        ),
    ] {
        let mut command = customersim();
        command
            .args(["validate", "--config"])
            .arg(config.path())
            .env(variable, url);
        if let Some((name, value)) = extra {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        for part in ["pa/ss", "wo?rd", "ss#wo"] {
            assert!(!all.contains(part), "{variable} {extra:?}: {all}");
        }
    }
    // A flow-style password that looks like more YAML, and numeric secrets, next to a type error.
    let config = pipeline(
        "[{type: http_ingress, token: ${NUMERIC}}]",
        "[{type: mqtt, host: h, username: u, password: ${MQTT_PW}, port: x}]",
        "",
    );
    let stderr = refused(
        customersim()
            .args(["validate", "--config"])
            .arg(config.path())
            .env("MQTT_PW", "ab, SECRETTAIL")
            .env("NUMERIC", "123456"),
        &["sinks[0] (type: mqtt)", "port"],
    );
    assert!(
        !stderr.contains("SECRETTAIL") && !stderr.contains("123456"),
        "{stderr}"
    );
    for password in ["[123456]", "{hunter2: 123456}", "123456"] {
        let config = pipeline(
            "[{type: random_walk}]",
            &format!("[{{type: mqtt, host: h, username: u, password: {password}, port: x}}]"),
            "",
        );
        let stderr = refused(
            customersim()
                .args(["validate", "--config"])
                .arg(config.path()),
            &["sinks[0]"],
        );
        assert!(
            !stderr.contains("123456") && !stderr.contains("hunter2"),
            "{stderr}"
        );
    }
}

#[test]
fn a_variable_cannot_change_the_structure_of_the_file() {
    let config = pipeline(
        "[{type: http_ingress, listen: \"127.0.0.1:0\", token: ${TOKEN}}]",
        "[{type: stdout}]",
        "",
    );
    let output = run_ok(
        customersim()
            .args(["validate", "--config"])
            .arg(config.path())
            .env("TOKEN", "x}, {type: http_ingress, listen: \"127.0.0.1:0\""),
    );
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        shown.matches("type: http_ingress").count(),
        1,
        "one source, whatever TOKEN holds: {shown}"
    );
    assert!(shown.contains("token: '******'"), "{shown}");
    // Typed values still work from variables, in flow style too.
    let config = pipeline(
        "[{type: random_walk, average_in_store: ${AVG}}]",
        "[{type: stdout}]",
        "store: {width: ${W:7}, height: ${H}}\n",
    );
    let output = run_ok(
        customersim()
            .args(["validate", "--config"])
            .arg(config.path())
            .env("AVG", "2.5")
            .env("H", "12"),
    );
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown.contains("width: 7")
            && shown.contains("height: 12")
            && shown.contains("average_in_store: 2.5"),
        "{shown}"
    );
}

fn customer_list_pipeline(dir: &TempDir, csv: &str) -> PathBuf {
    std::fs::write(dir.path().join("people.csv"), csv).unwrap();
    let path = dir.path().join("pipeline.yaml");
    std::fs::write(
        &path,
        "sources: [{type: random_walk}, {type: customer_list, path: people.csv}]\nsinks: [{type: stdout}]\n",
    )
    .unwrap();
    path
}

#[test]
fn a_malformed_customer_row_is_an_error_naming_its_line() {
    let dir = temp_dir("stray-quote");
    let path = customer_list_pipeline(
        &dir,
        "customer_id,name\n1,Ann\n2,\"Bob\n3,Cid\n4,Dan\n5,Eve\n",
    );
    refused(
        customersim().args(["validate", "--config"]).arg(&path),
        &["people.csv line 3", "malformed row"],
    );
    let header: Vec<String> = (0..200_000).map(|i| format!("c{i}")).collect();
    let path = customer_list_pipeline(&dir, &format!("{}\n1\n", header.join(",")));
    let stderr = refused(
        customersim().args(["validate", "--config"]).arg(&path),
        &["no customer_id column", "more"],
    );
    assert!(
        stderr.len() < 4_000,
        "a short excerpt: {} bytes",
        stderr.len()
    );
}

#[test]
fn oversized_and_deeply_nested_input_is_refused_fast_with_short_messages() {
    // A 10 MB flow sequence in a plugin section: over the file limit.
    let items = vec!["1"; 5_000_000].join(",");
    let big = pipeline(
        &format!("[{{type: random_walk, zones: [{items}]}}]"),
        "[{type: stdout}]",
        "",
    );
    let started = Instant::now();
    refused(
        customersim().args(["validate", "--config"]).arg(big.path()),
        &["larger than", "1 MiB"],
    );
    // 200 KB of `[`.
    let deep = temp_file("deep.yaml", &format!("sources: {}\n", "[".repeat(200_000)));
    refused(
        customersim()
            .args(["validate", "--config"])
            .arg(deep.path()),
        &["line 1", "nested"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "refused without parsing it all"
    );
    // Huge bad values are quoted by excerpt only, whoever reports them.
    let listen = "9".repeat(900_000);
    let config = pipeline(
        &format!("[{{type: http_ingress, listen: \"{listen}\"}}]"),
        "[{type: stdout}]",
        "",
    );
    let output = customersim()
        .env_remove("HTTP_LISTEN")
        .args(["run", "--duration", "1s", "--config"])
        .arg(config.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        output.stderr.len() < 10_000,
        "{} bytes of stderr",
        output.stderr.len()
    );
    let stderr = refused(
        customersim()
            .args(["validate", "--config"])
            .arg(default_yaml())
            .env("MQTT_HOST", "h")
            .env("HTTP_LISTEN", "9".repeat(100_000)),
        &["HTTP_LISTEN", "bytes"],
    );
    assert!(stderr.len() < 4_000, "{} bytes of stderr", stderr.len());
}

#[test]
fn validate_shows_how_the_scheduler_paces() {
    let shown = |env: &[(&str, &str)]| {
        let mut command = customersim();
        command
            .args(["validate", "--config"])
            .arg(default_yaml())
            .env("MQTT_HOST", "h");
        for (name, value) in env {
            command.env(name, value);
        }
        String::from_utf8_lossy(&run_ok(&mut command).stdout).into_owned()
    };
    let default = shown(&[]);
    assert!(
        default.contains("# scheduler: keeps up with the sources")
            && !default.contains("consume_batch_size"),
        "{default}"
    );
    let explicit = shown(&[("CONSUME_BATCH_SIZE", "10"), ("CONSUME_FREQUENCY", "1")]);
    assert!(
        explicit.contains("# scheduler: takes at most 10 events every 1 s")
            && explicit.contains("consume_batch_size: 10"),
        "{explicit}"
    );
}

/// Runs the default pipeline at `--speed 60` for 10 simulated minutes on stdout; returns whether
/// a falling-behind warning came, stopping at the first one.
fn falls_behind(env: &[(&str, &str)]) -> bool {
    let mut command = customersim();
    command
        .args([
            "run",
            "--sink",
            "stdout",
            "--speed",
            "60",
            "--duration",
            "10m",
            "--seed",
            "3",
        ])
        .args(["--config"])
        .arg(default_yaml())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut warned = false;
    for line in stderr.lines() {
        if line.unwrap().contains("falling behind") {
            warned = true;
            terminate(&child);
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(warned || status.success(), "{status:?}");
    warned
}

#[test]
fn the_default_pipeline_keeps_up_at_speed_60_unless_throttled() {
    assert!(
        !falls_behind(&[]),
        "unset CONSUME_*: the scheduler keeps up with the sources"
    );
    // A busier store: still no warning while the settings are unset ...
    let busy = ("CUSTOMERS_AVERAGE_IN_STORE", "200");
    assert!(!falls_behind(&[busy]), "a busy store, CONSUME_* unset");
    // ... and the control: the original's throttle, set explicitly, is honoured and falls behind.
    assert!(falls_behind(&[
        busy,
        ("CONSUME_BATCH_SIZE", "10"),
        ("CONSUME_FREQUENCY", "1")
    ]));
}

/// Runs `command` to its end with stdout to /dev/null: its exit code, its stderr and the
/// highest resident memory the child's own accounting showed (`VmHWM` of `/proc/PID/status`,
/// read until it exits; `wait4`'s `ru_maxrss` would also count the test process it was spawned
/// from). A peak in the last moments before exit may be missed, never overstated.
fn peak_rss(command: &mut Command) -> (Option<i32>, String, u64) {
    use std::io::Read;
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut stderr = String::new();
        pipe.read_to_string(&mut stderr).map(|_| stderr)
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        let hwm = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            });
        peak = peak.max(hwm.unwrap_or(0) * 1024);
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let stderr = reader.join().unwrap().unwrap();
    (status.code(), stderr, peak)
}

const MIB: u64 = 1024 * 1024;

/// Finding 7: a store id or topic a sink's protocol cannot publish to is refused by `validate`
/// and `run` (exit 2, naming the store and the topic key) instead of ending or hanging the run.
#[test]
fn store_ids_and_topics_a_protocol_cannot_carry_are_refused_naming_the_store() {
    let per_store = "topics: {enter: \"s/{store}/enter\", move: \"s/{store}/move\", exit: \"s/{store}/exit\"}\n";
    // Nothing listens there: refused before connecting.
    let mqtt = format!(
        "[{{type: mqtt, host: 127.0.0.1, port: {}}}]",
        customersim_testkit::net::free_port()
    );
    let long = "x".repeat(70_000);
    for (id, why) in [
        ("\"a#\"", "wildcard '#'"),
        ("\"a+\"", "wildcard '+'"),
        ("\"a\\0b\"", "control character"),
        (long.as_str(), "longer than the 65535 bytes"),
    ] {
        let config = pipeline(
            "[{type: random_walk}]",
            &mqtt,
            &format!("fleet: {{stores: [north, {id}]}}\n{per_store}"),
        );
        for command in ["validate", "run"] {
            refused(
                customersim()
                    .args([command, "--config"])
                    .arg(config.path())
                    .args(if command == "run" {
                        &["--speed", "max"][..]
                    } else {
                        &[]
                    }),
                &["sinks[0] (type: mqtt)", "topics.enter", "(store \"", why],
            );
        }
    }
    // `/` adds a topic level, for every sink.
    let slash = pipeline(
        "[{type: random_walk}]",
        "[{type: stdout}]",
        &format!("fleet: {{stores: [north, a/b]}}\n{per_store}"),
    );
    refused(
        customersim()
            .args(["validate", "--config"])
            .arg(slash.path()),
        &["fleet.stores", "\"a/b\"", "add a level"],
    );
    // Static topics pass the same check.
    for (topic, why) in [("\"a\\0b\"", "control character"), (long.as_str(), "65535")] {
        let config = pipeline(
            "[{type: random_walk}]",
            &mqtt,
            &format!("topics: {{exit: {topic}}}\n"),
        );
        refused(
            customersim()
                .args(["validate", "--config"])
                .arg(config.path()),
            &["topics.exit", why],
        );
    }
    // AMQP routing keys: at most 255 bytes.
    let amqp = pipeline(
        "[{type: random_walk}]",
        "[{type: amqp}]",
        &format!(
            "fleet: {{stores: [north, {}]}}\n{per_store}",
            "y".repeat(300)
        ),
    );
    refused(
        customersim()
            .args(["validate", "--config"])
            .arg(amqp.path()),
        &[
            "sinks[0] (type: amqp)",
            "topics.enter",
            "(store \"yyy",
            "255 bytes",
        ],
    );
}

/// Finding 10: `fleet.stores` beyond the maximum is refused (exit 2, naming the key) before a
/// store is made, and a run at the maximum stays small.
#[test]
fn a_fleet_beyond_the_maximum_is_refused_and_one_at_it_runs_small() {
    let max = customersim::plugin_api::MAX_STORES;
    let per_store = "topics: {enter: \"store/{store}/enter\", move: \"store/{store}/move\", exit: \"store/{store}/exit\"}\n";
    for stores in ["100000000".to_string(), (max + 1).to_string()] {
        let config = pipeline(
            "[{type: random_walk}]",
            "[{type: stdout}]",
            &format!("fleet: {{stores: {stores}}}\n{per_store}"),
        );
        let (code, stderr, peak) = peak_rss(
            customersim()
                .args(["validate", "--config"])
                .arg(config.path()),
        );
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains("fleet.stores") && stderr.contains(&max.to_string()),
            "{stderr}"
        );
        assert!(peak < 64 * MIB, "validate peaked at {} MiB", peak / MIB);
    }
    let ids: Vec<String> = (0..=max).map(|n| format!("s{n}")).collect();
    let listed = pipeline(
        "[{type: random_walk}]",
        "[{type: stdout}]",
        &format!("fleet: {{stores: [{}]}}\n{per_store}", ids.join(", ")),
    );
    refused(
        customersim()
            .args(["run", "--speed", "max", "--config"])
            .arg(listed.path()),
        &["fleet.stores", &format!("{} stores", max + 1)],
    );
    // At the maximum, a short run stays far from the gigabytes a million stores took.
    let at_max = pipeline(
        "[{type: random_walk}]",
        "[{type: stdout}]",
        &format!("fleet: {{stores: {max}}}\n{per_store}"),
    );
    let (code, stderr, peak) = peak_rss(
        customersim()
            .args([
                "run",
                "--seed",
                "1",
                "--speed",
                "max",
                "--duration",
                "1m",
                "--config",
            ])
            .arg(at_max.path()),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        peak < 256 * MIB,
        "a run of {max} stores peaked at {} MiB",
        peak / MIB
    );
}

/// Finding 11: what `${VAR}` adds to a pipeline is bounded; beyond it, exit 2 naming the key
/// and the variable, with memory that never sees the expansion.
#[test]
fn variable_expansion_is_bounded() {
    let big = "v".repeat(64 * 1024 - 1);
    let refs = vec!["${BIG}"; 2_000].join(", ");
    let config = pipeline(
        "[{type: random_walk}]",
        "[{type: stdout}]",
        &format!("store:\n  zones: [{refs}]\n"),
    );
    let (code, stderr, peak) = peak_rss(
        customersim()
            .args(["validate", "--config"])
            .arg(config.path())
            .env("BIG", &big),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("store.zones[") && stderr.contains("${BIG}") && stderr.contains("4 MiB"),
        "{stderr}"
    );
    assert!(peak < 64 * MIB, "validate peaked at {} MiB", peak / MIB);
}

/// Finding 17: keys keep their `${…}`; an unset variable without a default is an error naming
/// it and its key, except in the settings of a sink the run does not use.
#[test]
fn keys_are_left_alone_and_unset_variables_are_refused() {
    let key = pipeline(
        "[{type: random_walk}]",
        "[{type: stdout}]",
        "store: {\"${K}\": 7}\n",
    );
    refused(
        customersim()
            .args(["validate", "--config"])
            .arg(key.path())
            .env("K", "width"),
        &["${K}"],
    );
    let unset = pipeline(
        "[{type: random_walk}]",
        "[{type: stdout}]",
        "topics: {move: \"x${T}\"}\n",
    );
    for command in ["validate", "run"] {
        refused(
            customersim()
                .args([command, "--config"])
                .arg(unset.path())
                .env_remove("T"),
            &["topics.move", "environment variable T is not set", "line 1"],
        );
    }
    for default in ["${T:-d}", "${T:d}"] {
        let config = pipeline(
            "[{type: random_walk}]",
            "[{type: stdout}]",
            &format!("topics: {{move: \"x{default}\"}}\n"),
        );
        let output = run_ok(
            customersim()
                .args(["validate", "--config"])
                .arg(config.path())
                .env_remove("T"),
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("move: xd"));
    }
    // The built-in pipeline's `${MQTT_HOST}` is needed only when its mqtt sink is used.
    refused(
        customersim().arg("validate"),
        &["sinks[0].host", "MQTT_HOST is not set"],
    );
    run_ok(customersim().arg("validate").env("SINKS", "stdout"));
    run_ok(
        customersim()
            .arg("validate")
            .env("TESTING_MOCK_MQTT", "true"),
    );
    run_ok(
        customersim()
            .current_dir(repository())
            .args([
                "run",
                "--sink",
                "stdout",
                "--speed",
                "max",
                "--duration",
                "1m",
            ])
            .stdout(Stdio::null()),
    );
}

/// Finding 20: two servers on one port are refused by `validate` and `run` (exit 2, naming both
/// plugins and the address) rather than failing the run.
#[test]
fn two_listeners_on_one_port_are_refused_naming_both() {
    let port = customersim_testkit::net::free_port();
    let ingress_and_view = pipeline(
        &format!("[{{type: random_walk}}, {{type: http_ingress, listen: \"127.0.0.1:{port}\"}}]"),
        &format!("[{{type: live_view, listen: \"127.0.0.1:{port}\"}}]"),
        "",
    );
    let two_ingresses = pipeline(
        &format!(
            "[{{type: http_ingress, listen: \"0.0.0.0:{port}\"}}, {{type: http_ingress, listen: \"127.0.0.1:{port}\"}}]"
        ),
        "[{type: stdout}]",
        "",
    );
    for (config, first, second) in [
        (
            &ingress_and_view,
            "sources[1] (type: http_ingress)",
            "sinks[0] (type: live_view)",
        ),
        (
            &two_ingresses,
            "sources[0] (type: http_ingress)",
            "sources[1] (type: http_ingress)",
        ),
    ] {
        for command in ["validate", "run"] {
            refused(
                customersim()
                    .args([command, "--config"])
                    .arg(config.path())
                    .env_remove("HTTP_LISTEN"),
                &[first, second, &format!(":{port}"), "one port"],
            );
        }
    }
}
