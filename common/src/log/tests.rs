//! Unit tests of the log.
