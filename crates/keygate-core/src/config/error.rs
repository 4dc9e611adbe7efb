//! The one error of configuration: which variable, what is wrong with it.

use std::error::Error as StdError;

/// A configuration problem: the variable and what is wrong with it.
///
/// Its `Display` is one line, `VAR: problem`; the problem never repeats a secret.
/// Builder settings are reported under the name of the environment variable that
/// sets the same thing, so both ways of configuring read alike.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault (several, comma-separated, when the problem
    /// is between them).
    pub var: String,
    /// What is wrong, without the value when the value is a secret.
    pub problem: String,
    /// The underlying error, when there is one (a parser's, an I/O error).
    #[source]
    pub source: Option<Box<dyn StdError + Send + Sync>>,
}

impl ConfigError {
    /// A problem with `var`.
    pub fn new(var: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            var: var.into(),
            problem: problem.into(),
            source: None,
        }
    }

    /// A problem with `var` caused by `source`.
    pub fn caused_by(
        var: impl Into<String>,
        problem: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> ConfigError {
        ConfigError {
            var: var.into(),
            problem: problem.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl PartialEq for ConfigError {
    fn eq(&self, other: &Self) -> bool {
        self.var == other.var && self.problem == other.problem
    }
}
