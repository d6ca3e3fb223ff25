//! The `fritter` binary: parse the command line, start logging, run the command, and turn an
//! error into a message on stderr and exit code 1 (clap exits with 2 for usage errors).

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::Parser;
use fritter_app::cli::Cli;
use fritter_app::output::Output;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::prelude::*;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(io::stderr)
        // Colour codes are noise in a file or a pipe.
        .with_ansi(io::stderr().is_terminal())
        .with_filter(log_filter())
        .with_filter(filter_fn(not_secret));
    tracing_subscriber::registry().with(logs).init();
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

/// Crates whose `trace` level dumps the bytes they send or receive: ureq's hex dump of a request
/// holds the write token (`X-Fritter-Token`) the CLI sends to `fritter serve`.
const BYTE_DUMPERS: &[&str] = &["ureq", "ureq_proto", "hyper", "hyper_util", "h2"];

/// Whether an event may be logged whatever `RUST_LOG` asks: the byte dumpers stop at `debug`
/// (where ureq prints headers redacted).
fn not_secret(meta: &Metadata<'_>) -> bool {
    if *meta.level() != Level::TRACE {
        return true;
    }
    let target = meta.target();
    !BYTE_DUMPERS.iter().any(|crate_name| {
        target
            .strip_prefix(crate_name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}
