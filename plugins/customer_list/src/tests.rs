use std::collections::HashSet;

use customersim_plugin_api::rand::SeedableRng;
use customersim_plugin_api::{MetricsRegistry, StoreLayout, Topics};
use rand_pcg::Pcg64;

use super::*;

const ORIGINAL: &str = "customer_id,name,age_range,marital_status,family_size,no_of_children,income_bracket,gender\n\
1,Linda Anderson,70+,,1,,6,F\n\
2,Susan Clark,46-55,Single,3,2,10,F\n\
007,\"Harris, Jeffrey\",36-45,Married,3,3+,5,M\n\
C-42,Ann Lee,26-35,Single,1,,4,F\n";

fn parse(text: &str) -> Result<CustomerList, PluginError> {
    CustomerList::from_reader(text.as_bytes(), "customers.csv")
}

fn error(text: &str) -> String {
    match parse(text) {
        Err(PluginError::Config(why)) => why,
        Err(other) => panic!("not a config error: {other}"),
        Ok(_) => panic!("accepted {text:?}"),
    }
}

#[test]
fn reads_the_original_format_and_keeps_only_the_ids() {
    let list = parse(ORIGINAL).unwrap();
    assert_eq!(
        list.ids(),
        &[
            CustomerId::Number(1),
            CustomerId::Number(2),
            CustomerId::parse("007"),
            CustomerId::parse("C-42"),
        ]
    );
    // "007" stays text, so it is published back as "007", not "7".
    assert!(matches!(list.ids()[2], CustomerId::Text(_)));
    assert_eq!(list.size(), 4);
    // The ids are all that is held: 1 + 1 + 3 + 4 bytes.
    assert_eq!(list.ids.len(), 9);
}

#[test]
fn customer_id_may_be_any_column_and_a_bom_is_ignored() {
    let list = parse("\u{feff}name,customer_id\nAnn,5\nBob,6\n").unwrap();
    assert_eq!(list.ids(), &[CustomerId::Number(5), CustomerId::Number(6)]);
    let only_ids = parse("customer_id\r\n10\r\n11\r\n").unwrap();
    assert_eq!(only_ids.size(), 2);
}

fn fleet(stores: &[&str], shard: &str) -> Fleet {
    Fleet::new(
        stores.iter().map(|s| s.to_string()).collect(),
        shard.parse().unwrap(),
    )
    .unwrap()
}

#[test]
fn a_store_column_places_customers_and_shards_keep_only_theirs() {
    let text = "customer_id,name,store\n1,Ann,north\n2,Bob,south\n3,Cid,north\n";
    let both = fleet(&["north", "south"], "0/1");
    let list = CustomerList::from_reader_for(text.as_bytes(), "c.csv", &both).unwrap();
    assert_eq!((list.outside_of(0), list.outside_of(1)), (2, 1));
    let mut rng = Pcg64::seed_from_u64(3);
    assert_eq!(list.admit(1, &mut rng), Some(CustomerId::Number(2)));
    assert_eq!(list.admit(1, &mut rng), None, "store south has only Bob");
    let second = fleet(&["north", "south"], "1/2");
    let list = CustomerList::from_reader_for(text.as_bytes(), "c.csv", &second).unwrap();
    assert_eq!(
        list.ids(),
        &[CustomerId::Number(2)],
        "shard 1/2 runs south only"
    );
    let why =
        match CustomerList::from_reader_for(text.as_bytes(), "c.csv", &fleet(&["north"], "0/1")) {
            Err(PluginError::Config(why)) => why,
            other => panic!("{other:?}"),
        };
    assert!(
        why.contains("line 3") && why.contains("\"south\" is not a store"),
        "{why}"
    );
}

#[test]
fn without_a_store_column_the_id_picks_the_home_store_the_same_way_in_every_shard() {
    let text: String = std::iter::once("customer_id\n".to_string())
        .chain((0..1000).map(|id| format!("{id}\n")))
        .collect();
    let whole =
        CustomerList::from_reader_for(text.as_bytes(), "c.csv", &fleet(&["a", "b", "c"], "0/1"))
            .unwrap();
    let mut union = Vec::new();
    for shard in 0..3 {
        let part = CustomerList::from_reader_for(
            text.as_bytes(),
            "c.csv",
            &fleet(&["a", "b", "c"], &format!("{shard}/3")),
        )
        .unwrap();
        assert_eq!(part.outside_of(shard), whole.outside_of(shard));
        assert!(
            part.outside_of(shard) > 250,
            "hashing spreads the customers"
        );
        union.extend(part.ids());
    }
    union.sort();
    let mut all = whole.ids();
    all.sort();
    assert_eq!(union, all);
}

#[test]
fn a_missing_file_is_named() {
    let why = match CustomerList::load(Path::new("/nonexistent/folder/customers.csv")) {
        Err(PluginError::Config(why)) => why,
        other => panic!("{other:?}"),
    };
    assert!(
        why.contains("/nonexistent/folder/customers.csv") && why.contains("cannot read"),
        "{why}"
    );
}

#[test]
fn no_customer_id_column_names_the_columns() {
    let why = error("id,name\n1,Ann\n");
    assert!(
        why.contains("customers.csv line 1")
            && why.contains("no customer_id column")
            && why.contains("\"id\", \"name\""),
        "{why}"
    );
}

#[test]
fn an_empty_file_or_no_rows_is_refused() {
    assert!(error("").contains("the file is empty"), "{}", error(""));
    let why = error("customer_id,name\n");
    assert!(
        why.contains("customers.csv") && why.contains("no rows"),
        "{why}"
    );
}

#[test]
fn an_empty_id_names_its_line() {
    let why = error("customer_id,name\n1,Ann\n  ,Bob\n");
    assert!(
        why.contains("customers.csv line 3") && why.contains("empty customer_id"),
        "{why}"
    );
}

#[test]
fn a_duplicate_id_names_both_lines() {
    let why = error("customer_id,name\n1,Ann\n2,Bob\n1,Cid\n");
    assert!(
        why.contains("line 4")
            && why.contains("duplicate customer_id \"1\"")
            && why.contains("first at line 2"),
        "{why}"
    );
}

#[test]
fn a_malformed_row_names_its_line() {
    let why = error("customer_id,name\n1,Ann\n2,Bob,extra\n");
    assert!(
        why.contains("line 3") && why.contains("malformed row") && why.contains("3 fields"),
        "{why}"
    );
    let bytes = b"customer_id,name\n1,Ann\n2,B\xffb\n";
    let why = match CustomerList::from_reader(&bytes[..], "customers.csv") {
        Err(PluginError::Config(why)) => why,
        other => panic!("{other:?}"),
    };
    assert!(why.contains("line 3") && why.contains("UTF-8"), "{why}");
}

#[test]
fn admits_only_customers_who_are_outside_until_all_are_inside() {
    let list = parse(ORIGINAL).unwrap();
    let mut rng = Pcg64::seed_from_u64(1);
    let mut inside = HashSet::new();
    for _ in 0..4 {
        let id = list.admit(0, &mut rng).expect("someone is outside");
        assert!(inside.insert(id.clone()), "{id} admitted twice");
        assert!(list.is_inside(&id));
    }
    assert_eq!(list.admit(0, &mut rng), None);
    assert_eq!(list.admit(0, &mut rng), None);
    assert_eq!(list.waiting_arrivals(), 2);
    assert_eq!(list.inside.get(), 4);
    // Releasing one makes exactly that one available again.
    list.release(0, &CustomerId::Number(2));
    assert!(!list.is_inside(&CustomerId::Number(2)));
    assert_eq!(list.admit(0, &mut rng), Some(CustomerId::Number(2)));
    // Releasing someone twice, or someone unknown, changes nothing.
    list.release(0, &CustomerId::Number(1));
    list.release(0, &CustomerId::Number(1));
    list.release(0, &CustomerId::Number(99));
    assert_eq!(list.admit(0, &mut rng), Some(CustomerId::Number(1)));
    assert_eq!(list.admit(0, &mut rng), None);
}

#[test]
fn draws_are_uniform_among_customers_outside() {
    let text: String = std::iter::once("customer_id\n".to_string())
        .chain((0..10).map(|id| format!("{id}\n")))
        .collect();
    let list = parse(&text).unwrap();
    let mut rng = Pcg64::seed_from_u64(7);
    // Keep customers 0 and 1 inside for good: only 2..10 may be drawn.
    let mut held = Vec::new();
    while held.len() < 10 {
        held.push(list.admit(0, &mut rng).unwrap());
    }
    for id in &held {
        if !matches!(id, CustomerId::Number(0 | 1)) {
            list.release(0, id);
        }
    }
    let mut counts = [0u32; 10];
    let draws = 80_000;
    for _ in 0..draws {
        let id = list.admit(0, &mut rng).unwrap();
        let CustomerId::Number(n) = id else { panic!() };
        counts[n as usize] += 1;
        list.release(0, &id);
    }
    assert_eq!(counts[0] + counts[1], 0, "{counts:?}");
    let expected = f64::from(draws) / 8.0;
    for count in &counts[2..] {
        assert!(
            (f64::from(*count) / expected - 1.0).abs() < 0.05,
            "{counts:?}"
        );
    }
}

#[test]
fn build_resolves_the_path_against_the_config_folder_and_provides_the_roster() {
    let dir = std::env::temp_dir().join(format!("customer-list-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("people.csv"), ORIGINAL).unwrap();
    let metrics = MetricsRegistry::default();
    let mut cx = BuildContext::new(
        StoreLayout::default(),
        Topics::default(),
        1,
        dir.clone(),
        metrics.clone(),
    );
    let config: CustomerListConfig = serde_yaml::from_str("path: people.csv").unwrap();
    config.build(&mut cx).unwrap();
    assert_eq!(cx.roster().expect("a roster").size(), 4);
    assert!(
        metrics
            .encode()
            .contains("customersim_customer_list_waiting_arrivals_total 0"),
        "{}",
        metrics.encode()
    );
    // A second list in one pipeline is refused.
    let again: CustomerListConfig = serde_yaml::from_str("path: people.csv").unwrap();
    assert!(matches!(again.build(&mut cx), Err(PluginError::Config(_))));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn config_rejects_unknown_keys_and_defaults_the_path() {
    let error = serde_yaml::from_str::<CustomerListConfig>("file: x.csv").unwrap_err();
    assert!(error.to_string().contains("file"), "{error}");
    let config: CustomerListConfig = serde_yaml::from_str("{}").unwrap();
    assert_eq!(config.path, PathBuf::from("customers.csv"));
}

#[test]
fn a_stray_quote_is_a_malformed_row_not_lost_rows() {
    let why = error("customer_id,name\n1,Ann\n2,\"Bob\n3,Cid\n4,Dan\n5,Eve\n");
    assert!(
        why.contains("customers.csv line 3") && why.contains("stray"),
        "{why}"
    );
}

#[test]
fn a_huge_header_is_quoted_by_excerpt() {
    let header: Vec<String> = (0..50_000).map(|i| format!("column{i}")).collect();
    let why = error(&format!("{}\n1\n", header.join(",")));
    assert!(
        why.contains("no customer_id column")
            && why.contains("and 49990 more")
            && why.len() < 1_000,
        "{}",
        &why[..why.len().min(2_000)]
    );
}

#[test]
fn a_file_over_the_limit_is_refused() {
    use std::io::Read;
    let text = "customer_id\n1\n2\n3\n";
    let mut within = String::new();
    Bounded::new(text.as_bytes(), text.len() as u64, 100)
        .read_to_string(&mut within)
        .expect("a file of exactly the limit is read");
    assert_eq!(within, text);
    let why = Bounded::new(text.as_bytes(), 10, 100)
        .read_to_string(&mut String::new())
        .expect_err("one byte over the limit is refused")
        .to_string();
    assert!(why.contains("larger than 10 bytes"), "{why}");
}

#[test]
fn a_line_over_the_limit_is_refused_naming_it() {
    use std::io::Read;
    let text = format!("id\n1\n{}\n3\n", "x".repeat(11));
    let mut within = String::new();
    Bounded::new(text.as_bytes(), 1_000, 11)
        .read_to_string(&mut within)
        .expect("a line of exactly the limit is read");
    // Read in small pieces, a line is still counted whole.
    let mut pieces = Bounded::new(text.as_bytes(), 1_000, 10);
    let mut buf = [0u8; 3];
    let why = loop {
        match pieces.read(&mut buf) {
            Ok(0) => panic!("a line of 11 bytes passed a limit of 10"),
            Ok(_) => {}
            Err(error) => break error.to_string(),
        }
    };
    assert!(why.contains("line 3 is longer than 10 bytes"), "{why}");
    let why = error(&format!(
        "customer_id\n1\n{}\n",
        "7".repeat(MAX_LINE_BYTES as usize + 1)
    ));
    assert!(
        why.contains("customers.csv")
            && why.contains(&format!("line 3 is longer than {MAX_LINE_BYTES} bytes")),
        "{}",
        &why[..why.len().min(500)]
    );
}

#[test]
fn an_id_over_the_limit_is_refused_naming_line_and_column() {
    let longest = "x".repeat(MAX_ID_BYTES);
    assert!(parse(&format!("name,customer_id\nAnn,{longest}\n")).is_ok());
    let why = error(&format!("name,customer_id\nAnn,1\nBob,{longest}y\n"));
    assert!(
        why.contains("customers.csv line 3")
            && why.contains("column 2 (customer_id)")
            && why.contains("257 bytes")
            && !why.contains(&longest),
        "{why}"
    );
}

#[test]
fn errors_quote_a_few_dozen_characters_at_most() {
    let secret = format!("{}SECRET", "a".repeat(EXCERPT_CHARS));
    let why = error(&format!("{secret}\n1\n"));
    assert!(why.contains("no customer_id column"), "{why}");
    assert!(!why.contains("SECRET"), "{why}");
    let why = error(&format!("customer_id\n{secret}\n{secret}\n"));
    assert!(
        why.contains("duplicate") && !why.contains("SECRET"),
        "{why}"
    );
    assert_eq!(quote("hunter2", false), "(7 bytes, not shown)");
}

#[test]
fn directories_devices_and_kernel_pseudo_files_are_refused_before_reading() {
    let dir = std::env::temp_dir();
    for (path, why) in [
        (dir.as_path(), "directory"),
        (Path::new("/dev/zero"), "not a regular file or named pipe"),
        (Path::new("/proc/self/environ"), "pseudo-file"),
        (
            Path::new("/sys/kernel/mm/transparent_hugepage/enabled"),
            "pseudo-file",
        ),
    ] {
        if !path.exists() {
            continue;
        }
        match CustomerList::load(path) {
            Err(PluginError::Config(message)) => {
                assert!(message.contains(why), "{}: {message}", path.display())
            }
            other => panic!("{}: {other:?}", path.display()),
        }
    }
}
