//! Path templating for the `endpoint` column.
//!
//! - [`template_path`] applies fixed rules to one segment at a time: integers,
//!   UUIDs, hex and random ids, dates, emails and tokens become placeholders,
//!   everything else stays literal. `rules.rs` lists the rules.
//! - [`Templater`] applies the same rules and also learns, per host and per
//!   path position, which other segments are parameters, from how many
//!   distinct values and consumers a position receives. Operators can pin and
//!   split templates through [`TemplaterConfig`], and documented templates of
//!   an API description take precedence over what is learned.
//!
//! `docs/inventory.md`, section "Path templating", explains the rules for operators.

mod config;
mod learned;
mod patterns;
mod rules;
mod segment;
mod tree;

pub use config::{TemplaterConfig, TemplaterError};
pub use learned::{FORMAT_VERSION, Templated, Templater};
pub use rules::template_path;
