//! The HTTP half of `fritter-crawler-bench`: the marker that makes a corpus directory
//! reusable, the URL lists the load tools read (`wrk` with `crawler/bench/mentions.lua`, and
//! `fritter-crawler-load`), and serving the bench's index over the crawler's own server loop.
//!
//! A corpus of a million statuses takes minutes to generate and ingest; load runs should not
//! pay that each time. So once ingest has finished, the bench writes `bench-corpus.json` and
//! `urls/*.txt` next to the archives and the index; `--dir` on such a directory skips straight
//! to opening the index.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use fritter_crawler::api::{router, AppState};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Written into the corpus directory once ingest has finished: its presence means the
/// directory holds a complete corpus and an index of it.
pub(crate) const MARKER: &str = "bench-corpus.json";

/// What the marker records.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CorpusInfo {
    pub archives: usize,
    pub statuses: u64,
    /// When ingest finished (RFC 3339).
    pub created: String,
}

/// What `dir` holds, for `--dir`.
pub(crate) enum DirState {
    /// Missing or empty: generate a corpus into it.
    Fresh,
    /// A finished corpus: reuse it.
    Corpus(CorpusInfo),
}

/// Tells a reusable corpus from a fresh directory; anything else (a half-written corpus, an
/// unrelated directory) is an error rather than something to write into.
pub(crate) fn dir_state(dir: &Path) -> anyhow::Result<DirState> {
    let marker = dir.join(MARKER);
    match fs::read(&marker) {
        Ok(bytes) => {
            let info = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a corpus marker: remove the directory or pick another --dir",
                    marker.display()
                )
            })?;
            return Ok(DirState::Corpus(info));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", marker.display())),
    }
    let empty = match fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        Ok(mut entries) => entries.next().is_none(),
    };
    anyhow::ensure!(
        empty,
        "{} is not empty but holds no finished corpus (no {MARKER}; generation or ingest \
             was interrupted?): remove it or pick another --dir",
        dir.display()
    );
    Ok(DirState::Fresh)
}

/// Marks `dir` as holding a finished corpus.
pub(crate) fn write_marker(dir: &Path, archives: usize, statuses: u64) -> anyhow::Result<()> {
    let info = CorpusInfo {
        archives,
        statuses,
        created: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    };
    let path = dir.join(MARKER);
    fs::write(&path, serde_json::to_vec_pretty(&info)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Request paths per view, one list each; the in-process measurements and both load tools
/// draw from them.
pub(crate) struct UrlLists {
    pub mentions: Vec<String>,
    pub thread: Vec<String>,
    pub search: Vec<String>,
    pub trending: Vec<String>,
}

/// Search queries generated per corpus.
const SEARCH_QUERIES: usize = 2000;

impl UrlLists {
    /// Mentions of every archive, the threads of `statuses` (status URLs), a mix of searches
    /// (two words, one word sorted by relevance, a tag, a phrase OR a word) and the three
    /// trending windows.
    pub(crate) fn generate(
        keys: impl IntoIterator<Item = String>,
        statuses: &[String],
        words: &[&str],
        rng: &mut impl Rng,
    ) -> UrlLists {
        let mentions = keys
            .into_iter()
            .map(|k| format!("/v1/mentions/{k}"))
            .collect();
        let thread = statuses
            .iter()
            .map(|s| format!("/v1/thread?uri={s}"))
            .collect();
        let search = (0..SEARCH_QUERIES)
            .map(|_| {
                let w1 = words[rng.gen_range(0..words.len())];
                let w2 = words[rng.gen_range(0..words.len())];
                match rng.gen_range(0..4) {
                    0 => format!("/v1/search?q={w1}%20{w2}"),
                    1 => format!("/v1/search?q={w1}&sort=top"),
                    2 => format!("/v1/search?q=%23tag{}", rng.gen_range(0..50)),
                    _ => format!("/v1/search?q=%22{w1}%20{w2}%22%20OR%20{w1}"),
                }
            })
            .collect();
        let trending = ["1h", "24h", "7d"]
            .iter()
            .map(|w| format!("/v1/trending?window={w}"))
            .collect();
        UrlLists {
            mentions,
            thread,
            search,
            trending,
        }
    }

    pub(crate) fn views(&self) -> [(&'static str, &[String]); 4] {
        [
            ("mentions", &self.mentions),
            ("thread", &self.thread),
            ("search", &self.search),
            ("trending", &self.trending),
        ]
    }

    /// Writes `dir/urls/<view>.txt`, one request path a line; returns `dir/urls`.
    pub(crate) fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let out = dir.join("urls");
        fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        for (name, list) in self.views() {
            let path = out.join(format!("{name}.txt"));
            let mut f = std::io::BufWriter::new(
                fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?,
            );
            for line in list {
                writeln!(f, "{line}")?;
            }
            f.flush()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(out)
    }

    /// Reads the lists [`UrlLists::write`] wrote.
    pub(crate) fn read(dir: &Path) -> anyhow::Result<UrlLists> {
        let read = |name: &str| -> anyhow::Result<Vec<String>> {
            let path = dir.join("urls").join(format!("{name}.txt"));
            let text = fs::read_to_string(&path).with_context(|| {
                format!("reading {} (a corpus from an older bench?)", path.display())
            })?;
            let lines: Vec<String> = text
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            anyhow::ensure!(!lines.is_empty(), "{} is empty", path.display());
            Ok(lines)
        };
        Ok(UrlLists {
            mentions: read("mentions")?,
            thread: read("thread")?,
            search: read("search")?,
            trending: read("trending")?,
        })
    }
}

/// Serves the API of `state` on `addr` with the crawler binary's stack (the same router with
/// all its limits, the same hand-driven hyper server with its header timeout and connection
/// cap) until ctrl-c or SIGTERM. Prints the load commands for `urls`.
pub(crate) fn serve(
    rt: &tokio::runtime::Runtime,
    state: AppState,
    addr: SocketAddr,
    urls: &Path,
) -> anyhow::Result<()> {
    let config = state.config().clone();
    let app = router(state);
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}: pick another with --serve"))?;
        let http = listener.local_addr()?;
        let u = urls.display();
        println!(
            "serving on http://{http}/ (rate limit {} requests/s per client); ctrl-c to stop",
            config.rate_per_sec
        );
        println!("  wrk -t2 -c64 -d30s -s crawler/bench/mentions.lua http://{http} -- {u}/mentions.txt");
        println!(
            "  fritter-crawler-load --target http://{http} --rate 1000 --duration 60 \
             --urls {u}/mentions.txt --urls {u}/thread.txt --urls {u}/search.txt --urls {u}/trending.txt"
        );
        let _ = std::io::stdout().flush();
        fritter_common::http::serve(
            listener,
            app,
            config.limits(),
            fritter_common::http::shutdown_signal(),
        )
        .await;
        println!("stopped serving");
        Ok(())
    })
}
