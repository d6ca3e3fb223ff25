//! End-to-end tests: the real `fritter` binary run against temporary data directories, and a
//! crash loop that kills a writer with SIGKILL and checks that nothing acknowledged was lost.

// Tests unwrap freely: a panic is a failed test with its cause.
#![allow(clippy::unwrap_used)]

mod app;
mod app_crawler;
mod cli;
mod crash;
mod crawler;
mod crawler_web;
mod hosting;
mod serve_errors;
mod sync;
mod web;
