//! Errors of the solvers crate. Each names the thing that is wrong (section, mechanism, parameter) so that a
//! front end can map it back to its own input (a YAML key, an HDF5 path).

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum MorphologyError {
    #[error("the morphology has no sections")]
    Empty,
    #[error("the morphology must have exactly one root section (one without a parent); found {n}: {names:?}", n = .0.len(), names = .0)]
    Roots(Vec<String>),
    #[error("section {index} ({name:?}) is part of a parent cycle and never reaches the root")]
    Cycle { index: usize, name: String },
    #[error("section {index} ({name:?}): {what}")]
    Section { index: usize, name: String, what: String },
}

impl MorphologyError {
    /// The index of the offending section, when there is one.
    pub fn section(&self) -> Option<usize> {
        match self {
            MorphologyError::Cycle { index, .. } | MorphologyError::Section { index, .. } => Some(*index),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum SolverError {
    #[error("cell {cell}: {source}")]
    Morphology { cell: usize, source: MorphologyError },
    #[error("unknown mechanism {name:?}{}", context_suffix(.context))]
    UnknownMechanism { name: String, context: String },
    #[error("mechanism {mechanism:?} has no parameter {parameter:?} (it has: {known})")]
    UnknownParameter { mechanism: String, parameter: String, known: String },
    #[error("mechanism {mechanism:?} is a {actual} mechanism, but it is used as a {expected}")]
    WrongKind { mechanism: String, actual: &'static str, expected: &'static str },
    #[error("cell {cell}: {what}")]
    Cell { cell: usize, what: String },
    #[error("mechanism {mechanism} failed in {phase} at t = {time} ms: {message}")]
    Kernel { mechanism: String, phase: &'static str, time: f64, message: String },
    #[error("invalid option: {0}")]
    Option(String),
    #[error("{0}")]
    Invalid(String),
}

fn context_suffix(c: &str) -> String {
    if c.is_empty() {
        String::new()
    } else {
        format!(" ({c})")
    }
}
