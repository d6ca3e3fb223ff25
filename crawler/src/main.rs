//! `fritter-crawler`: the public aggregator over Fritter archives. With no subcommand it serves
//! (see [`fritter_crawler::serve::Server`]); `check` verifies the archives held. This file only
//! parses the command line, starts logging and turns an error into a message and exit code 1.

use std::process::ExitCode;

use clap::Parser;
use fritter_crawler::cli::Cli;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    fritter_crawler::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match fritter_crawler::cli::run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG`, else warnings only. The replication protocol crate logs every message it sends
/// or receives at `info` (a line per message, thousands a second while crawling): it is held to
/// warnings unless `RUST_LOG` names it, so `RUST_LOG=info` shows the crawler's progress.
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
