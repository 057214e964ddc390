use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = muster::cli::Cli::parse();
    match muster::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // The terminal may be gone (closed, SIGHUP): `eprintln!` would panic on the failed write.
            let _ = writeln!(std::io::stderr(), "muster: {e:#}");
            ExitCode::from(1)
        }
    }
}
