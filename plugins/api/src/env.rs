//! Environment variables that override plugin config keys.

/// How an environment variable's value is checked before it overrides a config key. A value that
/// does not fit is refused with a message naming the variable; text values are never echoed, so a
/// password read from the environment cannot leak through an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvKind {
    /// Any text (mark secret fields with [`crate::Secret`] in the config type).
    Text,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`).
    Boolean,
    /// Whole numbers separated by commas (`0,0`), for a key that holds a list.
    List,
}

/// An environment variable that overrides one key of a config (precedence: flag > env > YAML >
/// default). The core applies the table of each plugin type to each of its instances, and lists
/// every table in `customersim plugins` and the book.
#[derive(Clone, Copy, Debug)]
pub struct EnvOverride {
    /// The variable, e.g. `CUSTOMERS_AVERAGE_IN_STORE`.
    pub var: &'static str,
    /// The config key it sets; dots reach into nested maps (`tls.ca_file`).
    pub key: &'static str,
    /// How the value is checked and typed.
    pub kind: EnvKind,
    /// One line for the book and `customersim plugins`.
    pub help: &'static str,
}
