//! Why a plugin failed, and what the command line does about it.

use std::fmt::Display;

/// Why a plugin failed. The variant decides the exit code; the message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Bad configuration or input file: the message names the key, variable, file or line.
    /// The command line exits with code 2.
    #[error("{0}")]
    Config(String),
    /// A failure while running that retrying will not fix (the broker refused the credentials, a
    /// port is taken). The command line exits with code 1.
    #[error("{0}")]
    Fatal(String),
    /// A failure while running, with the error that caused it (an I/O or protocol error), kept so
    /// [`std::error::Error::source`] walks the chain. Exit code 1, like [`PluginError::Fatal`].
    #[error("{message}: {cause}")]
    Caused {
        /// What failed, in the plugin's words.
        message: String,
        /// Why.
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl PluginError {
    /// A configuration error (exit code 2).
    pub fn config(why: impl Display) -> PluginError {
        PluginError::Config(why.to_string())
    }

    /// A failure while running (exit code 1).
    pub fn fatal(why: impl Display) -> PluginError {
        PluginError::Fatal(why.to_string())
    }

    /// A failure while running caused by `cause`, which stays reachable through `source()`.
    pub fn caused_by(
        message: impl Display,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> PluginError {
        PluginError::Caused {
            message: message.to_string(),
            cause: Box::new(cause),
        }
    }

    /// The same error with `place` (e.g. `sinks[0] (type: mqtt)`) in front of its message, so a
    /// message from deep inside a plugin still says which part of the pipeline it is about.
    pub fn within(self, place: impl Display) -> PluginError {
        match self {
            PluginError::Config(why) => PluginError::Config(format!("{place}: {why}")),
            PluginError::Fatal(why) => PluginError::Fatal(format!("{place}: {why}")),
            PluginError::Caused { message, cause } => PluginError::Caused {
                message: format!("{place}: {message}"),
                cause,
            },
        }
    }

    /// Whether this is bad input (exit code 2) rather than a failure while running.
    pub fn is_config(&self) -> bool {
        matches!(self, PluginError::Config(_))
    }
}

/// Most characters of a value an error message quotes.
pub const EXCERPT_CHARS: usize = 64;

/// A value as error messages quote it: debug-quoted, cut to [`EXCERPT_CHARS`] characters with its
/// full length added, so a huge bad value (a 100 MB `listen`, a 10M-column header) costs a line
/// of stderr, not another copy of itself.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

#[cfg(test)]
mod excerpt_tests {
    use super::*;

    #[test]
    fn short_values_whole_long_values_cut() {
        assert_eq!(excerpt("abc"), "\"abc\"");
        let long = "é".repeat(1_000_000);
        let shown = excerpt(&long);
        assert!(
            shown.len() < 200 && shown.contains("2000000 bytes"),
            "{shown}"
        );
    }
}
