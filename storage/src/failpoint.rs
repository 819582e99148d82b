//! Crash points for recovery tests.
//!
//! When the environment variable `APITRAIL_FAILPOINT` names a point, the
//! process aborts there, as a power cut would stop it. Tests use this to
//! crash the server between the steps of a flush. It costs one string
//! comparison per flush step when the variable is unset.

use std::sync::OnceLock;

/// Environment variable that names the crash point.
pub const FAILPOINT_ENV: &str = "APITRAIL_FAILPOINT";

/// Aborts the process if `name` is the configured crash point.
pub fn hit(name: &str) {
    static CONFIGURED: OnceLock<Option<String>> = OnceLock::new();
    let configured = CONFIGURED.get_or_init(|| std::env::var(FAILPOINT_ENV).ok());
    if configured.as_deref() == Some(name) {
        eprintln!("apitrail: aborting at failpoint {name}");
        std::process::abort();
    }
}
