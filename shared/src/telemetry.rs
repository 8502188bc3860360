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

/// The WebRTC stack's modules that warn per packet or per join about what is normal on a
/// server or comes from the remote peer: a STUN check before its ICE credentials, a trickling
/// peer with no candidate yet, the DTLS client's missing `server_name`, a packet a peer sent
/// that does not parse. At warn level they write a line per join, and a peer sending garbage to
/// the media port would write one per datagram; what an operator acts on (a PeerConnection that
/// fails, with its reason) Portunus logs itself. They log errors only, unless the filter names
/// them (`"info,rtc_ice=warn"` brings the ICE agent's back).
const QUIETED: [&str; 3] = ["rtc_ice::agent", "rtc_dtls::config", "rtc::peer_connection::handler"];

/// `directives` with [`QUIETED`]'s modules at `error`, those it names left as they are.
pub fn quieted(directives: &str) -> String {
    let mut out = directives.trim().to_owned();
    for target in QUIETED.iter().filter(|t| !directives.contains(*t)) {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(target);
        out.push_str("=error");
    }
    out
}

fn install(default_filter: &str, for_tests: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(quieted(default_filter)));
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
    // Up to info, the stack's chatter stays quiet; verbose and beyond show everything.
    let filter = janus_level_filter(level);
    set_filter(&if level <= 4 { quieted(filter) } else { filter.to_owned() })?;
    JANUS_LEVEL.store(level, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Writes `line` to the log at Janus's log `level` (0 writes nothing).
pub fn janus_log(level: u8, line: &str) {
    match level {
        0 => {}
        1 | 2 => tracing::error!(target: "admin", "{line}"),
        3 => tracing::warn!(target: "admin", "{line}"),
        4 => tracing::info!(target: "admin", "{line}"),
        5 | 6 => tracing::debug!(target: "admin", "{line}"),
        _ => tracing::trace!(target: "admin", "{line}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// What a subscriber with `directives` writes for a warning from each of `targets`.
    fn written(directives: &str, targets: &[&str]) -> String {
        written_by(directives, || {
            for t in targets {
                match *t {
                    "rtc_ice::agent" => tracing::warn!(target: "rtc_ice::agent", "from rtc_ice::agent"),
                    "rtc_dtls::config" => tracing::warn!(target: "rtc_dtls::config", "from rtc_dtls::config"),
                    "rtc::peer_connection::handler" => {
                        tracing::warn!(target: "rtc::peer_connection::handler", "from rtc::peer_connection::handler")
                    }
                    _ => tracing::warn!(target: "media_node::room", "from media_node::room"),
                }
            }
            tracing::error!(target: "rtc_ice::agent", "rtc_ice::agent's error");
        })
    }

    /// What a subscriber with `directives` writes while `log` runs.
    fn written_by(directives: &str, log: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl Write for Buffer {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let out = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(directives))
            .with_writer(move || out.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn the_stacks_per_join_warnings_are_quiet_and_its_errors_and_ours_are_not() {
        let all = ["rtc_ice::agent", "rtc_dtls::config", "rtc::peer_connection::handler", "ours"];
        let text = written(&quieted("info"), &all);
        for t in QUIETED {
            assert!(!text.contains(&format!("from {t}")), "{t} warned: {text}");
        }
        assert!(text.contains("from media_node::room"), "{text}");
        assert!(text.contains("rtc_ice::agent's error"), "{text}");
        // Without the quieting all of them would have been written.
        let loud = written("info", &all);
        assert!(QUIETED.iter().all(|t| loud.contains(&format!("from {t}"))), "{loud}");
    }

    #[test]
    fn a_filter_that_names_a_quieted_module_keeps_its_level() {
        assert_eq!(
            quieted("debug,rtc_ice::agent=warn"),
            "debug,rtc_ice::agent=warn,rtc_dtls::config=error,rtc::peer_connection::handler=error"
        );
        let text = written(&quieted("info,rtc_ice::agent=warn"), &["rtc_ice::agent"]);
        assert!(text.contains("from rtc_ice::agent"), "{text}");
        assert_eq!(quieted(""), "rtc_ice::agent=error,rtc_dtls::config=error,rtc::peer_connection::handler=error");
    }

    #[test]
    fn a_custom_log_line_is_written_at_its_janus_level() {
        let text = written_by("warn", || {
            janus_log(3, "a warning line");
            janus_log(4, "an info line");
            janus_log(0, "no line");
        });
        assert!(text.contains("WARN") && text.contains("a warning line"), "{text}");
        assert!(!text.contains("an info line") && !text.contains("no line"), "{text}");
        assert!(written_by("trace", || janus_log(0, "no line")).is_empty());
    }
}
