//! Tracing setup. Spans carry `session`, `handle`, `room` and `node` fields so a request can be
//! followed across actors and processes. The filter, and whether lines carry their time and
//! colours, can be changed while running (the Admin API's `set_log_level`, `set_log_timestamps`,
//! `set_log_colors`), for the whole process.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::OnceLock;
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Format, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
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
            let builder = $builder
                .with_ansi(true)
                .fmt_fields(PlainFields)
                .event_format(Line::new())
                .with_env_filter(filter)
                .with_filter_reloading();
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

/// Whether log lines start with their time (on until `set_log_timestamps` turns it off).
static TIMESTAMPS: AtomicBool = AtomicBool::new(true);
/// Whether log lines are coloured: on unless `NO_COLOR` is set, as tracing's own default, until
/// `set_log_colors` says otherwise.
static COLORS: OnceLock<AtomicBool> = OnceLock::new();

fn colors_switch() -> &'static AtomicBool {
    COLORS.get_or_init(|| AtomicBool::new(std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())))
}

/// Turns the time at the start of each log line on or off (Janus's `set_log_timestamps`).
pub fn set_timestamps(on: bool) {
    TIMESTAMPS.store(on, Relaxed);
}

pub fn timestamps() -> bool {
    TIMESTAMPS.load(Relaxed)
}

/// Turns colours (ANSI escapes: the level, the time dimmed) on or off (Janus's `set_log_colors`).
pub fn set_colors(on: bool) {
    colors_switch().store(on, Relaxed);
}

pub fn colors() -> bool {
    colors_switch().load(Relaxed)
}

/// A log line: tracing's full format without the target, with or without its time and colours
/// as the two switches say. The layer under it always writes colours; a line that must not
/// have them is formatted into a plain buffer first.
struct Line {
    timed: Format<Full, SystemTime>,
    untimed: Format<Full, ()>,
}

impl Line {
    fn new() -> Self {
        let format = tracing_subscriber::fmt::format().with_target(false);
        Self { untimed: format.clone().without_time(), timed: format }
    }

    fn write<S, N>(&self, ctx: &FmtContext<'_, S, N>, writer: Writer<'_>, event: &Event<'_>) -> fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        if timestamps() {
            self.timed.format_event(ctx, writer, event)
        } else {
            self.untimed.format_event(ctx, writer, event)
        }
    }
}

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        if writer.has_ansi_escapes() && !colors() {
            let mut plain = String::new();
            self.write(ctx, Writer::new(&mut plain), event)?;
            return writer.write_str(&plain);
        }
        self.write(ctx, writer, event)
    }
}

/// Fields written without colours: a span's fields are formatted once, when it opens, so that
/// they read the same whichever way the colours are switched later.
struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        if !writer.has_ansi_escapes() {
            return DefaultFields::new().format_fields(writer, fields);
        }
        let mut plain = String::new();
        DefaultFields::new().format_fields(Writer::new(&mut plain), fields)?;
        writer.write_str(&plain)
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

    /// Where a test's subscriber writes.
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

    /// What the subscriber `make` builds around a buffer writes while `log` runs.
    fn captured<S>(make: impl FnOnce(Buffer) -> S, log: impl FnOnce()) -> String
    where
        S: tracing::Subscriber + Send + Sync + 'static,
    {
        let buffer = Buffer::default();
        tracing::subscriber::with_default(make(buffer.clone()), log);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text
    }

    /// What a subscriber with `directives` writes while `log` runs.
    fn written_by(directives: &str, log: impl FnOnce()) -> String {
        captured(
            |out| {
                tracing_subscriber::fmt()
                    .with_env_filter(EnvFilter::new(directives))
                    .with_writer(move || out.clone())
                    .with_ansi(false)
                    .finish()
            },
            log,
        )
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

    /// What our line format writes for one event, with colours on at the layer as installed.
    fn line_written(log: impl FnOnce()) -> String {
        captured(
            |out| {
                tracing_subscriber::fmt()
                    .with_ansi(true)
                    .fmt_fields(PlainFields)
                    .event_format(Line::new())
                    .with_writer(move || out.clone())
                    .finish()
            },
            log,
        )
    }

    #[test]
    fn the_time_and_colours_of_a_line_follow_their_switches() {
        let event = || {
            let span = tracing::info_span!("request", session = 7);
            let _in = span.enter();
            tracing::warn!(handle = 9, "a line");
        };
        // The line without its ANSI escapes (ESC [ ... m).
        let plain = |line: &str| {
            let mut out = String::new();
            let mut chars = line.chars();
            while let Some(c) = chars.next() {
                if c == '\u{1b}' {
                    chars.by_ref().find(|c| *c == 'm');
                } else {
                    out.push(c);
                }
            }
            out
        };
        for (timed, coloured) in [(true, true), (false, false), (true, false), (false, true)] {
            set_timestamps(timed);
            set_colors(coloured);
            let line = line_written(event);
            let text = plain(&line);
            assert_eq!(text.starts_with("20"), timed, "timestamps {timed}: {line:?}");
            assert_eq!(text.starts_with(" WARN"), !timed, "timestamps {timed}: {line:?}");
            assert_eq!(line.contains('\u{1b}'), coloured, "colours {coloured}: {line:?}");
            // The span's fields and the event's, plain either way.
            assert!(text.contains("request{session=7}: a line handle=9"), "{line:?}");
            assert_eq!((timestamps(), colors()), (timed, coloured));
        }
        set_timestamps(true);
        set_colors(true);
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
