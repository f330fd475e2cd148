//! The one error type commands hand back to `main`.

use std::fmt;

/// A command that could not get as far as a verdict (bad options, a missing binary, a node that
/// does not start): printed as `<prefix>: <error>`, exit code 2.
#[derive(Debug)]
pub struct SetupError {
    prefix: &'static str,
    error: anyhow::Error,
}

impl SetupError {
    pub fn new(prefix: &'static str, error: impl Into<anyhow::Error>) -> Self {
        SetupError {
            prefix,
            error: error.into(),
        }
    }

    /// An error that is only a message.
    pub fn msg(prefix: &'static str, message: impl fmt::Display) -> Self {
        SetupError::new(prefix, anyhow::anyhow!("{message}"))
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:#}", self.prefix, self.error)
    }
}

impl std::error::Error for SetupError {}
