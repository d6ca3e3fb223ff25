//! The Fritter data model: what an archive may contain, how it is encoded in the log, and the
//! checks every value from a peer passes before the rest of Fritter sees it.
//!
//! An archive belongs to one [`ArchiveKey`] and is addressed as `hyper://<key>/` ([`ArchiveUrl`]).
//! Its signed, append-only log holds [`Entry`]s, each writing (`put`) or deleting (`del`) one JSON
//! file at a [`FilePath`]. Only six kinds of file exist (see [`File`]): the profile, the follow
//! list, statuses named by time-sorted [`StatusId`]s, likes, ownership proofs and hosting
//! requests. Everything else is refused.
//!
//! Reading from a peer goes bytes → [`Entry::decode`] (bounded: size, nesting, path) →
//! [`Entry::validate`] (the layout and each file's schema, via [`validate_file`]) → a typed,
//! normalized [`File`]. Writing goes the other way through [`File::to_entry`] and
//! [`Entry::encode_checked`], which run the same checks, so a writer never publishes what readers
//! refuse. All limits live in [`limits`].
//!
//! ```
//! use fritter_common::model::{
//!     extract_tags, resolve_mentions, ArchiveUrl, Entry, File, ModelError, Status, StatusId, Timestamp,
//! };
//!
//! # fn main() -> Result<(), ModelError> {
//! // Someone the writer follows, and how the app knows them.
//! let bob = ArchiveUrl::parse_lenient("8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c")?;
//! let follows = [("Bob Jones", bob.clone())];
//!
//! // Write a status: text, time, tags and mentions found in the text.
//! let text = "Lunch with @bobjones at the #café";
//! let mut status = Status::new(text, Timestamp::now());
//! status.tags = extract_tags(text);
//! status.mentions = resolve_mentions(text, &follows);
//! assert_eq!(status.tags, ["café"]);
//! assert_eq!(status.mentions[0].url, bob);
//!
//! let id = StatusId::now();
//! let bytes = File::Status { id, status }.to_entry()?.encode_checked()?;
//!
//! // Read it back as a peer would: decode the untrusted bytes, then check the file.
//! let entry = Entry::decode(&bytes)?;
//! assert_eq!(entry.path().as_str(), format!("/statuses/{id}.json"));
//! match entry.validate()? {
//!     Some(File::Status { status, .. }) => assert_eq!(status.text, text),
//!     other => panic!("expected a status, got {other:?}"),
//! }
//!
//! // Hostile input is an error, never a panic.
//! assert!(Entry::decode(&[b'['; 10_000]).is_err());
//! assert!(Entry::decode(br#"{"op":"put","path":"/../etc/passwd","value":{}}"#).is_err());
//! # Ok(())
//! # }
//! ```

mod entry;
mod error;
mod file;
mod follows;
mod hosting;
mod id;
mod key;
mod like;
pub mod limits;
mod path;
mod profile;
mod proof;
mod status;
mod text;
mod timestamp;
mod url;

pub use entry::Entry;
pub use error::ModelError;
pub use file::{validate_file, File};
pub use follows::Follows;
pub use hosting::HostingRequest;
pub use id::StatusId;
pub use key::ArchiveKey;
pub use like::Like;
pub use path::FilePath;
pub use profile::Profile;
pub use proof::{OwnershipProof, ServiceUrl};
pub use status::{Mention, Reply, Status, ThreadRef};
pub use text::{extract_mentions, extract_tags, resolve_mentions, scan_tags, MentionSpan, TagScan};
pub use timestamp::Timestamp;
pub use url::ArchiveUrl;
