//! Prometheus metrics: requests by verb and result, request latency, live sessions and handles,
//! transport connections. The registry is owned here; counters are atomic, so the hot paths
//! never take a lock.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use std::sync::Arc;

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    sessions: IntGauge,
    handles: IntGauge,
    ws_connections: IntGauge,
    longpolls: IntGauge,
    events: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("portunus".into()), None).unwrap_or_default();
        let requests = IntCounterVec::new(
            Opts::new("requests_total", "Janus API requests by verb and result (ok or the Janus error code)"),
            &["verb", "result"],
        );
        let latency = HistogramVec::new(
            HistogramOpts::new("request_duration_seconds", "Janus API request latency").buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ]),
            &["verb"],
        );
        let events =
            IntCounterVec::new(Opts::new("events_delivered_total", "Session events delivered"), &["transport"]);
        let gauge = |n: &str, h: &str| IntGauge::new(n, h);
        let (requests, latency, events) = match (requests, latency, events) {
            (Ok(a), Ok(b), Ok(c)) => (a, b, c),
            // The names and labels above are static and valid; this arm is unreachable in practice.
            _ => unreachable!("static metric definitions are valid"),
        };
        let gauges = [
            gauge("sessions", "Janus sessions in existence"),
            gauge("handles", "Plugin handles in existence"),
            gauge("ws_connections", "Open WebSocket connections on this gateway"),
            gauge("longpolls", "HTTP long-polls parked on this gateway"),
        ];
        let [Ok(sessions), Ok(handles), Ok(ws_connections), Ok(longpolls)] = gauges else {
            unreachable!("static metric definitions are valid")
        };
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(events.clone()),
            Box::new(sessions.clone()),
            Box::new(handles.clone()),
            Box::new(ws_connections.clone()),
            Box::new(longpolls.clone()),
        ] {
            let _ = registry.register(c);
        }
        Self(Arc::new(Inner { registry, requests, latency, sessions, handles, ws_connections, longpolls, events }))
    }

    pub fn request(&self, verb: &str, error_code: Option<u16>, seconds: f64) {
        let result = error_code.map(|c| c.to_string());
        self.0.requests.with_label_values(&[verb, result.as_deref().unwrap_or("ok")]).inc();
        self.0.latency.with_label_values(&[verb]).observe(seconds);
    }

    pub fn events_delivered(&self, transport: &str, n: usize) {
        self.0.events.with_label_values(&[transport]).inc_by(n as u64);
    }

    pub fn ws_connections(&self) -> &IntGauge {
        &self.0.ws_connections
    }

    pub fn longpolls(&self) -> &IntGauge {
        &self.0.longpolls
    }

    /// Prometheus text format; `counts` are the store's live sessions and handles.
    pub fn render(&self, counts: Option<(u64, u64)>) -> String {
        if let Some((s, h)) = counts {
            self.0.sessions.set(s as i64);
            self.0.handles.set(h as i64);
        }
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.0.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
