//! Every registered plugin meets the shared contract ([`customersim::contract`]), and every
//! environment variable is in the book's table (*Configuration*, `docs/book/src/configuration.md`).

#[test]
fn every_plugin_meets_the_contract() {
    assert!(!customersim::registry::sources().is_empty());
    assert!(!customersim::registry::sinks().is_empty());
    assert!(!customersim::registry::timelines().is_empty());
    if let Err(problems) = customersim::contract::check_registered_plugins() {
        panic!("{}", problems.join("\n"));
    }
}

#[test]
fn every_environment_variable_is_in_the_books_table() {
    let readme = include_str!("../docs/book/src/configuration.md");
    let start = readme
        .find("## Environment variables")
        .expect("the Configuration chapter has the env table");
    let end = start
        + readme[start..]
            .find("\n## ")
            .expect("a section follows the table");
    let table = &readme[start..end];
    for var in customersim::env::known_variables() {
        assert!(
            table.contains(var),
            "{var} is missing from the book's environment table (docs/book/src/configuration.md)"
        );
    }
}
