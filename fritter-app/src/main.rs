//! The `fritter` binary: parse the command line, start logging, run the command, and turn an
//! error into a message on stderr and exit code 1 (clap exits with 2 for usage errors).

use std::io;
use std::process::ExitCode;

use clap::Parser;
use fritter_app::cli::Cli;
use fritter_app::output::Output;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(io::stderr)
        .init();
    let (mut stdout, mut stderr) = (io::stdout().lock(), io::stderr());
    let mut out = Output::new(cli.json, &mut stdout, &mut stderr);
    match fritter_app::run(cli, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if fritter_app::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG`, else warnings only. The protocol crate logs every message it encodes at `info`;
/// that stays off unless `RUST_LOG` names it.
fn log_filter() -> EnvFilter {
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    let mut filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("warn"));
    if !spec.contains("hypercore_protocol") {
        if let Ok(quiet) = "hypercore_protocol=warn".parse() {
            filter = filter.add_directive(quiet);
        }
    }
    filter
}
