//! Errors of the NMODL front end and of running compiled mechanisms. Every error about a source file
//! carries `file:line:col`, so a user with a folder of `.mod` files can go straight to the place.

use std::fmt;
use std::sync::Arc;

/// A position in a source file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// What went wrong in a source file, where.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: Arc<str>,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.pos, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not NMODL (lexer or parser).
    #[error("syntax error: {0}")]
    Syntax(Diagnostic),
    /// Well-formed NMODL with a meaning error: undeclared name, wrong ion use, bad TABLE, ...
    #[error("error: {0}")]
    Semantic(Diagnostic),
    /// Valid NMODL that miv does not implement (named precisely in the message).
    #[error("unsupported: {0}")]
    Unsupported(Diagnostic),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Two files in one folder define the same mechanism name.
    #[error("mechanism {name} is defined twice: in {first} and in {second}")]
    Duplicate { name: String, first: String, second: String },
    /// A name given through the API (parameter, field, mechanism) does not exist.
    #[error("mechanism {mechanism}: {what}")]
    Lookup { mechanism: String, what: String },
    /// An implicit solve (derivimplicit / sparse) did not converge, as NEURON's abort_run.
    #[error("mechanism {mechanism}: {method} did not converge for instance {instance} within {iterations} iterations")]
    Convergence { mechanism: String, method: &'static str, instance: usize, iterations: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Builds diagnostics for one file.
#[derive(Debug, Clone)]
pub struct Source {
    pub file: Arc<str>,
}

impl Source {
    pub fn new(file: &str) -> Source {
        Source { file: Arc::from(file) }
    }
    fn diag(&self, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic { file: self.file.clone(), pos, message: message.into() }
    }
    pub fn syntax(&self, pos: Pos, message: impl Into<String>) -> Error {
        Error::Syntax(self.diag(pos, message))
    }
    pub fn semantic(&self, pos: Pos, message: impl Into<String>) -> Error {
        Error::Semantic(self.diag(pos, message))
    }
    pub fn unsupported(&self, pos: Pos, message: impl Into<String>) -> Error {
        Error::Unsupported(self.diag(pos, message))
    }
}
