//! SQL functions registered in every apitrail session.
//!
//! - [`sketch`]: building, merging and reading the views' sketches.
//! - [`inventory`]: helpers the inventory views use, such as
//!   `auth_scheme_names`.

pub mod inventory;
pub mod sketch;

use datafusion::prelude::SessionContext;

/// Registers every apitrail function in `ctx`.
pub fn register_all(ctx: &SessionContext) {
    let (scalars, aggregates) = sketch::sketch_functions();
    for function in scalars.into_iter().chain(inventory::inventory_functions()) {
        ctx.register_udf(function);
    }
    for function in aggregates {
        ctx.register_udaf(function);
    }
}
