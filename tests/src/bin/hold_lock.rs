//! Holds the write lock of a data directory's own archive, as a running `fritter` would, until
//! its stdin closes: prints `locked <pid>` once it holds it. The locked-archive test runs it.

use std::io::{Read, Write};
use std::process::ExitCode;

use fritter_common::store::Store;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: hold_lock DATA_DIR");
        return ExitCode::from(2);
    };
    let _own = match Store::new(dir).open_own() {
        Ok(own) => own,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "locked {}", std::process::id())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::from(1);
    }
    // Blocks until the test closes our stdin (or dies); the lock goes with this process.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    ExitCode::SUCCESS
}
