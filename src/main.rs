use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = muster::cli::Cli::parse();
    match muster::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("muster: {e:#}");
            ExitCode::from(1)
        }
    }
}
