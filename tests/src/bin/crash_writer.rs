//! A writer to kill: opens the own archive of the data directory given as its argument, prints
//! `ready <length>`, then appends statuses to its log from several threads (so appends share
//! group commits) until it is killed, printing `acked <seq> <hash>` after each append returns.
//! `tests/it/crash.rs` kills it with SIGKILL at random moments and checks that every
//! acknowledged entry survived.

use std::io::Write;
use std::process::ExitCode;

use fritter_common::crypto;
use fritter_common::model::{File, Status, StatusId, Timestamp};
use fritter_common::store::Store;

/// Threads appending at once.
const THREADS: usize = 4;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: crash_writer DATA_DIR");
        return ExitCode::from(2);
    };
    let own = match Store::new(dir).open_own() {
        Ok(own) => own,
        Err(err) => {
            eprintln!("error: cannot open the archive: {err}");
            return ExitCode::from(3);
        }
    };
    say(&format!("ready {}", own.info().length));
    std::thread::scope(|s| {
        for thread in 0..THREADS {
            let log = own.log();
            s.spawn(move || {
                for n in 0u64.. {
                    // Sizes vary so entries straddle the storage's block boundaries differently.
                    let pad = "x".repeat(((n * 37 + thread as u64 * 101) % 900) as usize);
                    let status = Status::new(
                        format!("writer {thread} status {n} {pad}"),
                        Timestamp::now(),
                    );
                    let file = File::Status {
                        id: StatusId::now(),
                        status,
                    };
                    let bytes = match file.to_entry().and_then(|entry| entry.encode_checked()) {
                        Ok(bytes) => bytes,
                        Err(err) => fail(&format!("cannot encode a status: {err}")),
                    };
                    // The log itself, not the archive view: the view would fold every earlier
                    // entry first, and this is about what the log keeps.
                    match log.append(&bytes) {
                        Ok(seq) => say(&format!(
                            "acked {seq} {}",
                            hex::encode(crypto::leaf_hash(&bytes))
                        )),
                        Err(err) => fail(&format!("append failed: {err}")),
                    }
                }
            });
        }
    });
    ExitCode::SUCCESS
}

/// One line on stdout, flushed before returning: once printed, it is acknowledged.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        // Nobody listens any more: the test is over.
        std::process::exit(0);
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(4);
}
