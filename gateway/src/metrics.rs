//! Prometheus metrics: requests by verb and result, request latency, live sessions and handles,
//! transport connections, and what the gateway knows of the cluster (media nodes and their load,
//! rooms). The registry is owned here; counters are atomic, so the hot paths never take a lock.
//! A standalone process also exposes its in-process media node's series here.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
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
    admin_ws_connections: IntGauge,
    http_connections: IntGaugeVec,
    http_requests: IntGauge,
    longpolls: IntGauge,
    events: IntCounterVec,
    cluster_nodes: IntGaugeVec,
    cluster_node_load: IntGaugeVec,
    cluster_rooms: IntGauge,
    /// Append the in-process media node's series (standalone mode).
    media: std::sync::atomic::AtomicBool,
}

/// What the gateway's store says about the cluster at scrape time.
pub struct ClusterView {
    pub sessions: u64,
    pub handles: u64,
    pub nodes: Vec<shared::store::NodeStatus>,
    pub rooms: u64,
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
        let cluster_nodes = IntGaugeVec::new(
            Opts::new("cluster_nodes", "Media nodes registered in the cluster, by state (serving or draining)"),
            &["state"],
        );
        let cluster_node_load = IntGaugeVec::new(
            Opts::new(
                "cluster_node_load",
                "Each registered media node's load (rooms + participants), as placement sees it",
            ),
            &["node"],
        );
        let http_connections = IntGaugeVec::new(
            Opts::new("http_connections", "Open connections on this gateway's HTTP listeners (Janus API, admin)"),
            &["listener"],
        );
        let gauge = |n: &str, h: &str| IntGauge::new(n, h);
        let (requests, latency, events, cluster_nodes, cluster_node_load, http_connections) =
            match (requests, latency, events, cluster_nodes, cluster_node_load, http_connections) {
                (Ok(a), Ok(b), Ok(c), Ok(d), Ok(e), Ok(f)) => (a, b, c, d, e, f),
                // The names and labels above are static and valid; this arm is unreachable in practice.
                _ => unreachable!("static metric definitions are valid"),
            };
        let gauges = [
            gauge("sessions", "Janus sessions in existence"),
            gauge("handles", "Plugin handles in existence"),
            gauge("ws_connections", "Open WebSocket connections on this gateway"),
            gauge("admin_ws_connections", "Open Admin API WebSocket connections on this gateway"),
            gauge("http_requests_in_flight", "HTTP requests this gateway is answering, parked long-polls included"),
            gauge("longpolls", "HTTP long-polls parked on this gateway"),
            gauge("cluster_rooms", "VideoRoom rooms in the cluster's store"),
        ];
        let [Ok(sessions), Ok(handles), Ok(ws_connections), Ok(admin_ws_connections), Ok(http_requests), Ok(longpolls), Ok(cluster_rooms)] =
            gauges
        else {
            unreachable!("static metric definitions are valid")
        };
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(events.clone()),
            Box::new(sessions.clone()),
            Box::new(handles.clone()),
            Box::new(ws_connections.clone()),
            Box::new(admin_ws_connections.clone()),
            Box::new(http_connections.clone()),
            Box::new(http_requests.clone()),
            Box::new(longpolls.clone()),
            Box::new(cluster_nodes.clone()),
            Box::new(cluster_node_load.clone()),
            Box::new(cluster_rooms.clone()),
        ] {
            let _ = registry.register(c);
        }
        // Both transports' series exist from the start, at 0: a dashboard shows no deliveries
        // rather than no data.
        for transport in ["ws", "http"] {
            events.with_label_values(&[transport]);
        }
        for listener in ["http", "admin"] {
            http_connections.with_label_values(&[listener]);
        }
        Self(Arc::new(Inner {
            registry,
            requests,
            latency,
            sessions,
            handles,
            ws_connections,
            admin_ws_connections,
            http_connections,
            http_requests,
            longpolls,
            events,
            cluster_nodes,
            cluster_node_load,
            cluster_rooms,
            media: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Standalone: `/metrics` also carries the in-process media node's series.
    pub fn include_media_node(&self) {
        self.0.media.store(true, std::sync::atomic::Ordering::Relaxed);
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

    pub fn admin_ws_connections(&self) -> &IntGauge {
        &self.0.admin_ws_connections
    }

    /// Open connections on the HTTP listener named `listener` (`http`, `admin`).
    pub fn http_connections(&self, listener: &str) -> IntGauge {
        self.0.http_connections.with_label_values(&[listener])
    }

    pub fn http_requests(&self) -> &IntGauge {
        &self.0.http_requests
    }

    /// Prometheus text format; `cluster` is what the store said (None: it did not answer, and
    /// the gauges keep their last values).
    pub fn render(&self, cluster: Option<ClusterView>) -> String {
        if let Some(c) = cluster {
            self.0.sessions.set(c.sessions as i64);
            self.0.handles.set(c.handles as i64);
            self.0.cluster_rooms.set(c.rooms as i64);
            let draining = c.nodes.iter().filter(|n| n.draining).count() as i64;
            self.0.cluster_nodes.with_label_values(&["serving"]).set(c.nodes.len() as i64 - draining);
            self.0.cluster_nodes.with_label_values(&["draining"]).set(draining);
            // Nodes that left are dropped from the series rather than shown at their last load.
            self.0.cluster_node_load.reset();
            for n in &c.nodes {
                self.0.cluster_node_load.with_label_values(&[n.node.0.as_str()]).set(n.load as i64);
            }
        }
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.0.registry.gather(), &mut buf);
        let mut text = String::from_utf8(buf).unwrap_or_default();
        #[cfg(feature = "standalone")]
        if self.0.media.load(std::sync::atomic::Ordering::Relaxed) {
            text += &media_node::metrics::METRICS.render();
        }
        shared::heap::render(&mut text);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
