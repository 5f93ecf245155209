//! `ringgate-load`: parses the command line and runs the load (see the library crate).

use std::process::ExitCode;

use clap::Parser;
use ringgate_load::cli::Args;
use ringgate_load::config::Invocation;

fn main() -> ExitCode {
    let args = Args::parse();
    let inv = match Invocation::from_args(&args) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("ringgate-load: {e}");
            return ExitCode::from(2);
        }
    };
    match ringgate_load::execute(&inv) {
        Ok(errors) if errors > 0 && inv.fail_on_error => ExitCode::from(1),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringgate-load: {e}");
            ExitCode::from(1)
        }
    }
}
