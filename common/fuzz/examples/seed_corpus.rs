//! Writes the seed corpus (see `fritter_fuzz::seeds`) into `<dir>/<target>/`, by default
//! `corpus/` beside this package:
//!
//! `cargo run --manifest-path common/fuzz/Cargo.toml --no-default-features --example seed_corpus [dir]`
//!
//! The smoke script gets the same seeds without this extra build, through the `proof_verify`
//! target and `FRITTER_FUZZ_WRITE_SEEDS`.

use std::path::{Path, PathBuf};

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let n = fritter_fuzz::seeds::write_all(&dir);
    println!("seed_corpus: {n} new seeds in {}", dir.display());
}
