//! `fritter-crawler`: the public aggregator over Fritter archives.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fritter_common::store::Store;

#[derive(Parser)]
#[command(
    name = "fritter-crawler",
    version,
    about = "Replicates, validates and indexes public Fritter archives"
)]
struct Cli {
    /// Data directory holding the archives.
    #[arg(
        long,
        env = "FRITTER_CRAWLER_DATA_DIR",
        default_value = "fritter-crawler-data"
    )]
    data_dir: PathBuf,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify every archive held in the data directory: signatures, merkle tree, every entry
    /// against the schema. Exits 1 if any log fails to verify.
    Check,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let store = Store::new(&cli.data_dir);
    match cli.command {
        Command::Check => {
            let reports = fritter_crawler::validate::check_all(&store)?;
            let failed = reports.iter().filter(|r| r.error.is_some()).count();
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                if reports.is_empty() {
                    println!("no archives in {}", cli.data_dir.display());
                }
                for r in &reports {
                    let status = match &r.error {
                        Some(e) => format!("FAILED: {e}"),
                        None => "ok".to_owned(),
                    };
                    println!(
                        "hyper://{}/  length {} (fork {}), {} stored, {} files, {} invalid entries: {status}",
                        r.archive, r.length, r.fork, r.stored, r.files, r.skipped
                    );
                    for s in &r.skipped_examples {
                        println!("    entry {}: {}", s.seq, s.reason);
                    }
                }
            }
            Ok(if failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
