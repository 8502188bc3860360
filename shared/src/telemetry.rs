//! Tracing setup. Spans carry `session`, `handle`, `room` and `node` fields so a request can be
//! followed across actors and processes.

use tracing_subscriber::EnvFilter;

/// Installs a fmt subscriber; `RUST_LOG` wins over `default_filter`. Safe to call twice.
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

/// For tests: like [`init`], but through the test harness's capture, so a passing test's logs
/// stay quiet and a failing test's are shown with it.
pub fn init_for_tests(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_test_writer().try_init();
}
