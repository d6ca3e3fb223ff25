//! Checks archives held on disk: the signed log verifies end to end, and each entry is a valid
//! Fritter file operation. Invalid entries are counted per archive with their reason.

use fritter_common::archive::{Archive, Skipped};
use fritter_common::crypto::PublicKey;
use fritter_common::store::Store;
use serde::Serialize;

/// The outcome for one archive.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveReport {
    pub archive: PublicKey,
    pub length: u64,
    pub fork: u64,
    /// Entries stored locally (a replica may hold fewer than `length`).
    pub stored: u64,
    pub files: usize,
    /// Entries that did not decode or validate, and the first reasons.
    pub skipped: u64,
    pub skipped_examples: Vec<Skipped>,
    /// Set when the log itself failed to open or verify.
    pub error: Option<String>,
}

/// Verifies one archive: opens its log read-only, folds every entry, counts invalid ones.
pub fn check_archive(store: &Store, key: &PublicKey) -> ArchiveReport {
    let mut report = ArchiveReport {
        archive: *key,
        length: 0,
        fork: 0,
        stored: 0,
        files: 0,
        skipped: 0,
        skipped_examples: Vec::new(),
        error: None,
    };
    let archive = match store.open_view(key) {
        Ok(a) => a,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    let info = archive.info();
    report.length = info.length;
    report.fork = info.fork;
    report.stored = info.contiguous;
    if let Err(e) = fold(&archive, &mut report) {
        report.error = Some(e.to_string());
    }
    report
}

fn fold(
    archive: &Archive,
    report: &mut ArchiveReport,
) -> Result<(), fritter_common::archive::ArchiveError> {
    archive.refresh()?;
    report.files = archive
        .list(&fritter_common::model::FilePath::root())?
        .len();
    let (count, examples) = archive.skipped();
    report.skipped = count;
    report.skipped_examples = examples;
    Ok(())
}

/// Checks every archive in the data directory.
pub fn check_all(store: &Store) -> anyhow::Result<Vec<ArchiveReport>> {
    Ok(store
        .archives()?
        .iter()
        .map(|k| check_archive(store, k))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fritter_common::crypto::KeyPair;
    use fritter_common::model::{File, Profile};

    #[test]
    fn counts_invalid_entries_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.save_identity(&KeyPair::generate()).unwrap();
        let key = {
            let own = store.open_own().unwrap();
            own.put_file(&File::Profile(Profile {
                name: "Ada".into(),
                bio: String::new(),
                avatar: None,
            }))
            .unwrap();
            // A hostile or buggy writer can put anything in its log.
            own.log().append(b"<script>not json</script>").unwrap();
            own.log()
                .append(br#"{"op":"put","path":"/../etc/passwd","value":{}}"#)
                .unwrap();
            own.key()
        };
        let report = check_archive(&store, &key);
        assert_eq!(report.error, None);
        assert_eq!(report.length, 3);
        assert_eq!(report.files, 1);
        assert_eq!(report.skipped, 2);
        assert_eq!(
            report
                .skipped_examples
                .iter()
                .map(|s| s.seq)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
    }

    #[test]
    fn reports_a_tampered_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.save_identity(&KeyPair::generate()).unwrap();
        let key = {
            let own = store.open_own().unwrap();
            own.put_file(&File::Profile(Profile {
                name: "Ada".into(),
                bio: String::new(),
                avatar: None,
            }))
            .unwrap();
            own.put_file(&File::Profile(Profile {
                name: "Ada L.".into(),
                bio: String::new(),
                avatar: None,
            }))
            .unwrap();
            own.key()
        };
        // Flip a byte of the first entry (not of the last commit, which open re-checks and
        // would roll back as an interrupted write).
        let data = store.archive_dir(&key).join("data");
        let mut bytes = std::fs::read(&data).unwrap();
        bytes[5] ^= 1;
        std::fs::write(&data, bytes).unwrap();
        let report = check_archive(&store, &key);
        let err = report.error.expect("tampering must be reported");
        assert!(err.contains("corrupt") && err.contains("entry 0"), "{err}");
    }
}
