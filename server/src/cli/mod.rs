//! Command-line tools that work through a server or on a data directory.

pub mod import;
pub mod query;
pub mod simulate;
pub mod spec;
pub mod token;
