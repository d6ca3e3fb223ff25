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
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
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
