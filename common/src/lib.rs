//! Shared core of Fritter: the Hypercore-compatible signed log, its durable storage, the archive
//! (files written as log entries), the Fritter data model and the data directory.
//!
//! ```no_run
//! use fritter_common::store::Store;
//! use fritter_common::model::{File, Profile};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::new("/tmp/fritter-example");
//! store.save_identity(&fritter_common::crypto::KeyPair::generate())?;
//! let archive = store.open_own()?;
//! let profile = Profile { name: "Ada".into(), bio: String::new(), avatar: None };
//! archive.put_file(&File::Profile(profile))?;
//! println!("{}", archive.url());
//! # Ok(()) }
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod archive;
pub mod backup;
pub mod crypto;
pub mod discovery;
#[cfg(feature = "http")]
pub mod http;
pub mod log;
pub mod model;
pub mod replicate;
pub mod store;
pub mod swarm;
