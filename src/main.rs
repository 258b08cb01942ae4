//! The `miv` command line.

use clap::Parser;

fn main() {
    // Like other Unix tools, end quietly when the reader of our output goes away (`miv h5 ls F | head`)
    // instead of panicking in `println!` on the broken pipe.
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = miv::cli::Cli::parse();
    std::process::exit(miv::cli::main(cli));
}
