//! miv-nmodl: NEURON `.mod` files read at run time.
pub mod ast;
pub mod error;
pub mod lexer;
pub mod parser;
pub mod units;
pub mod check;
pub mod model;
pub mod verbatim;
