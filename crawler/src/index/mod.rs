//! The on-disk tantivy index of every archive the crawler holds, and the per-archive checkpoints
//! that say how far each archive is indexed.
//!
//! One document per file that matters for the views: each status, each profile, each follow
//! list. A document is keyed by `<archive hex><path>`, so rewriting a file replaces its document
//! and deleting the file deletes it; indexing an entry twice is harmless.
//!
//! The checkpoints (per archive: fork, next entry to index, skipped entries with reasons) and the
//! stream cursor travel in the payload of the tantivy commit that contains the documents they
//! describe, so after a crash the index and the checkpoints always agree (a commit is atomic; a
//! power loss may bring back the previous commit, which is consistent too). A change of
//! [`SCHEMA_VERSION`] (or of the schema itself) wipes the index: every archive is then indexed
//! again from the logs on disk.

pub mod columns;
pub mod packed;
pub mod query;
pub mod search;
pub mod tokenizer;
pub mod trends;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, STORED,
};
use tantivy::{IndexReader, ReloadPolicy};

/// Bump when the schema or the meaning of a field changes: the index is rebuilt from the logs.
pub const SCHEMA_VERSION: u32 = 4;

/// Bytes of stored hits compressed together. Reading one hit decompresses its whole block: at
/// tantivy's default (16 KiB) that was a fifth of the time of a mentions request, at 4 KiB the
/// store is 8% larger (see docs/benchmarks.md).
pub const DOCSTORE_BLOCK: usize = 4096;

/// Errors of the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index {}: {source}", dir.display())]
    Tantivy {
        dir: PathBuf,
        source: tantivy::TantivyError,
    },
    #[error("index {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("search: {0}")]
    Search(#[from] tantivy::TantivyError),
}

/// The fields of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// `status`, `profile` or `follows`.
    pub kind: Field,
    /// `<archive hex><path>`: one document per file.
    pub key: Field,
    /// The archive (hex key) that wrote the file.
    pub archive: Field,
    /// The first 8 bytes of the archive key, for counting distinct authors fast.
    pub author_id: Field,
    /// Thread root URL (replies). A status is found by its URL through `key` (the URL without
    /// `hyper://`), and the parent is read from the stored hit: no field of their own, so the
    /// index holds one unique string per document, not three.
    pub root: Field,
    pub text: Field,
    /// Profile name and bio.
    pub name: Field,
    pub tags: Field,
    /// Hex keys of mentioned archives.
    pub mentions: Field,
    /// Hex keys of followed archives (follows documents).
    pub follows: Field,
    pub lang: Field,
    /// `createdAt`, Unix milliseconds. Fast only: tantivy's range queries run on fast fields,
    /// so an inverted index of it would be dead weight.
    pub created: Field,
    /// The ingest sequence: increases with every document written, the stream cursor (fast
    /// only, like `created`).
    pub iseq: Field,
    /// The hit as served (normalized file and provenance): JSON, stored [`packed`].
    pub json: Field,
}

fn build_schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer::NAME)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    // Exact-match fields are never scored: no field norms (a byte per document each).
    let exact = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::Basic),
    );
    let fields = Fields {
        kind: b.add_text_field("kind", exact.clone()),
        key: b.add_text_field("key", exact.clone()),
        archive: b.add_text_field("archive", exact.clone()),
        author_id: b.add_u64_field("author_id", FAST),
        root: b.add_text_field("root", exact.clone()),
        text: b.add_text_field("text", text.clone()),
        name: b.add_text_field("name", text),
        tags: b.add_text_field("tags", exact.clone() | FAST),
        mentions: b.add_text_field("mentions", exact.clone()),
        follows: b.add_text_field("follows", exact.clone()),
        lang: b.add_text_field("lang", exact),
        created: b.add_i64_field("created", FAST),
        iseq: b.add_u64_field("iseq", FAST),
        json: b.add_bytes_field("json", STORED),
    };
    (b.build(), fields)
}

/// How far one archive is indexed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The fork of the log the documents come from; another fork means reindexing the archive.
    pub fork: u64,
    /// Entries `0..next` are indexed.
    pub next: u64,
    /// Entries that did not decode or validate.
    pub skipped: u64,
    /// The first few of them, with the reason.
    pub reasons: Vec<SkippedEntry>,
}

/// An entry the index left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedEntry {
    pub seq: u64,
    pub reason: String,
}

/// What each commit records next to its documents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub schema: u32,
    /// The next ingest sequence to hand out; documents of this commit have smaller ones.
    pub next_iseq: u64,
    /// Per archive (hex key).
    pub archives: BTreeMap<String, Checkpoint>,
}

/// The index: tantivy plus its reader.
pub struct Index {
    pub index: tantivy::Index,
    pub reader: IndexReader,
    pub f: Fields,
    pub dir: PathBuf,
    /// Per-segment tag summaries behind the trending view.
    pub trends: trends::TrendCache,
    /// Per-segment fast-field columns, opened once.
    pub columns: std::sync::Arc<columns::ColumnCache>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Index {
    /// Opens the index in `dir`, or creates it; an index of another schema version is wiped
    /// (the caller then reindexes every archive from its log). Returns the last commit's payload.
    pub fn open(dir: &Path) -> Result<(Index, Payload), IndexError> {
        let tan = |source| IndexError::Tantivy {
            dir: dir.to_owned(),
            source,
        };
        let io = |source| IndexError::Io {
            dir: dir.to_owned(),
            source,
        };
        let (schema, f) = build_schema();
        let mut payload = None;
        let mut existing = None;
        if dir.join("meta.json").exists() {
            match tantivy::Index::open_in_dir(dir) {
                Ok(index) => {
                    let stored: Option<Payload> = index
                        .load_metas()
                        .ok()
                        .and_then(|m| m.payload)
                        .and_then(|p| serde_json::from_str(&p).ok());
                    match stored {
                        Some(p) if p.schema == SCHEMA_VERSION && index.schema() == schema => {
                            payload = Some(p);
                            existing = Some(index);
                        }
                        other => tracing::warn!(
                            "index schema {} differs from {SCHEMA_VERSION}: rebuilding the index from the archives",
                            other.map_or("unknown".to_owned(), |p| p.schema.to_string())
                        ),
                    }
                }
                Err(e) => {
                    tracing::warn!("index does not open ({e}): rebuilding it from the archives")
                }
            }
        }
        let index = match existing {
            Some(index) => index,
            None => {
                if dir.exists() {
                    std::fs::remove_dir_all(dir).map_err(io)?;
                }
                std::fs::create_dir_all(dir).map_err(io)?;
                tantivy::Index::builder()
                    .schema(schema)
                    .settings(tantivy::IndexSettings {
                        docstore_blocksize: DOCSTORE_BLOCK,
                        ..tantivy::IndexSettings::default()
                    })
                    .create_in_dir(dir)
                    .map_err(tan)?
            }
        };
        index
            .tokenizers()
            .register(tokenizer::NAME, tokenizer::FritterTokenizer::default());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tan)?;
        let payload = payload.unwrap_or(Payload {
            schema: SCHEMA_VERSION,
            ..Payload::default()
        });
        Ok((
            Index {
                index,
                reader,
                f,
                dir: dir.to_owned(),
                trends: trends::TrendCache::default(),
                columns: Default::default(),
            },
            payload,
        ))
    }

    /// Bytes the index takes on disk.
    pub fn disk_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            std::fs::read_dir(p)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| match e.metadata() {
                            Ok(m) if m.is_dir() => walk(&e.path()),
                            Ok(m) => m.len(),
                            Err(_) => 0,
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        walk(&self.dir)
    }
}

/// The document key of the status at `uri` (`hyper://<hex>/statuses/<id>.json`), as
/// [`crate::ingest::doc_key`] builds it.
pub fn status_key(uri: &str) -> &str {
    uri.strip_prefix("hyper://").unwrap_or(uri)
}

/// The 8-byte author id of an archive key (hex).
pub fn author_id(hex_key: &str) -> u64 {
    let mut b = [0u8; 8];
    let _ = hex::decode_to_slice(hex_key.get(..16).unwrap_or("0000000000000000"), &mut b);
    u64::from_be_bytes(b)
}
