//! Tracing setup. Spans carry `session`, `handle`, `room` and `node` fields so a request can be
//! followed across actors and processes. The filter can be changed while running (the Admin
//! API's `set_log_level`), for the whole process.

use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

type SetFilter = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

/// The installed subscriber's filter switch (one subscriber per process).
static SET_FILTER: OnceLock<SetFilter> = OnceLock::new();

/// Installs a fmt subscriber; `RUST_LOG` wins over `default_filter`. Safe to call twice.
pub fn init(default_filter: &str) {
    install(default_filter, false);
}

/// For tests: like [`init`], but through the test harness's capture, so a passing test's logs
/// stay quiet and a failing test's are shown with it.
pub fn init_for_tests(default_filter: &str) {
    install(default_filter, true);
}

fn install(default_filter: &str, for_tests: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // The writer is chosen before the reloadable filter: the filter's handle names the
    // subscriber type, writer included.
    macro_rules! install_with {
        ($builder:expr) => {{
            let builder = $builder.with_target(false).with_env_filter(filter).with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                let _ = SET_FILTER.set(Box::new(move |f| handle.reload(f).map_err(|e| e.to_string())));
            }
        }};
    }
    if for_tests {
        install_with!(tracing_subscriber::fmt().with_test_writer())
    } else {
        install_with!(tracing_subscriber::fmt())
    }
}

/// Janus's log level (0 none, 1 fatal, 2 error, 3 warning, 4 info, 5 verbose, 6 huge, 7 debug)
/// as a filter.
fn janus_level_filter(level: u8) -> &'static str {
    match level {
        0 => "off",
        1 | 2 => "error",
        3 => "warn",
        4 => "info",
        5 | 6 => "debug",
        _ => "trace",
    }
}

/// The Janus log level last set with [`set_janus_level`] (4, info, until then).
static JANUS_LEVEL: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(4);

/// Sets this process's filter to a Janus log level, remembered for [`janus_level`].
pub fn set_janus_level(level: u8) -> Result<(), String> {
    set_filter(janus_level_filter(level))?;
    JANUS_LEVEL.store(level, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

pub fn janus_level() -> u8 {
    JANUS_LEVEL.load(std::sync::atomic::Ordering::Relaxed)
}

/// Replaces this process's filter (e.g. `"debug"`, `"info,gateway=trace"`).
pub fn set_filter(directives: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
    match SET_FILTER.get() {
        Some(set) => set(filter),
        None => Err("no subscriber of ours is installed".into()),
    }
}
