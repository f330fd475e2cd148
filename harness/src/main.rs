//! The `harness` command: parse, run, and map the result to an exit code (see the library's
//! documentation for what the commands do).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = harness::Cli::parse();
    match harness::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            harness::errln!("{err}");
            ExitCode::from(2)
        }
    }
}
