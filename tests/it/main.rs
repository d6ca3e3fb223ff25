//! End-to-end tests: the real `fritter` binary run against temporary data directories, and a
//! crash loop that kills a writer with SIGKILL and checks that nothing acknowledged was lost.

mod cli;
mod crash;
mod sync;
mod app;
mod web;
mod crawler;
mod crawler_web;
