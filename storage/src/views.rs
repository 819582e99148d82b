//! State of the continuous views: partial aggregates per flush.
//!
//! Every batch appended to the store is folded into [`ViewPartials`] right
//! away, after [`SightingIndex`] has marked the sightings that repeat a call
//! another sensor already reported. The partials wait in memory beside the
//! write buffer, where queries read them, and each flush commits them to the
//! `views` Delta table right after the events, with the same WAL position as
//! application transaction. The module [`partial`] describes the rows,
//! [`dedupe`] the cross-sensor rule.

pub mod all_grain;
pub mod dedupe;
pub mod partial;

pub use all_grain::AllGrainCache;

pub use dedupe::{DedupeConfig, SightingIndex};
pub use partial::{
    AUTH_SCHEMES, GRAIN_ALL, GRAIN_COLUMN, GRAIN_HOUR, PartialKey, PartialRow, PartialsError,
    ViewPartials, auth_scheme_names, network_of, object_ids, partials_schema,
};
