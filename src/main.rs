//! The `miv` command line.

use clap::Parser;

fn main() {
    let cli = miv::cli::Cli::parse();
    std::process::exit(miv::cli::main(cli));
}
