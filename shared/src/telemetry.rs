//! Tracing setup. Spans carry `session`, `handle`, `room` and `node` fields so a request can be
//! followed across actors and processes.

use tracing_subscriber::EnvFilter;

/// Installs a fmt subscriber; `RUST_LOG` wins over `default_filter`. Safe to call twice.
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}
