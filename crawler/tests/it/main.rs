//! The crawler's integration tests, one test binary (each binary links the whole crawler and
//! tantivy, so one link instead of four): the API in-process over real logs and a real index,
//! the hosting service, HTTP limits over real sockets, and a junk-archive flood.

// Tests unwrap freely: a panic is a failed test with its cause.
#![allow(clippy::unwrap_used)]

mod api;
mod flood;
mod hosting;
mod http_limits;
mod support;
