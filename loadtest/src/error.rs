//! The error of checking options and reading the files they name, shared by [`crate::config`]
//! and [`crate::scenario`] (its own module, so neither depends on the other for it).

use std::fmt;

/// The options do not make sense, or a file they name cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}
