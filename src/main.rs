//! devloop binary: parse arguments, run, map the result to an exit code. Everything else is the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = devloop::cli::Cli::parse();
    ExitCode::from(devloop::run(cli))
}
