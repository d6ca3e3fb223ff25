//! The Fritter data model (placeholder; being written).
