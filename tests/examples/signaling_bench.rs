//! Signalling throughput over WebSocket: K clients each loop create -> attach videoroom ->
//! destroy for D seconds and report requests/s and latency percentiles. Measures, asserts nothing.
//!
//! usage: cargo run --release -p portunus-tests --example signaling_bench -- [WS_URL] [CLIENTS] [SECONDS]
//! Without WS_URL it starts a standalone Portunus in-process on free ports.

use portunus_tests::{test_config, TestServer, WsClient};
use serde_json::json;
use std::time::{Duration, Instant};

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[actix_web::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cfg = test_config();
    cfg.workers = 1;
    let server = if args.first().is_some_and(|a| a.starts_with("ws")) { None } else { Some(TestServer::with(cfg)) };
    let url = server.as_ref().map(|s| s.ws_url.clone()).unwrap_or_else(|| args[0].clone());
    let rest: Vec<&String> = args.iter().filter(|a| !a.starts_with("ws")).collect();
    let clients: usize = rest.first().and_then(|a| a.parse().ok()).unwrap_or(8);
    let seconds: u64 = rest.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let url = url.clone();
        tasks.push(actix_web::rt::spawn(async move {
            let mut ws = WsClient::connect(&url).await;
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let sid = ws.create_session().await;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                ws.attach(sid).await;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                let t = Instant::now();
                let r = ws.request(json!({"janus": "destroy", "session_id": sid})).await;
                assert_eq!(r["janus"], "success");
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            lat
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{}",
        json!({
            "clients": clients,
            "seconds": elapsed,
            "requests": all.len(),
            "requests_per_second": all.len() as f64 / elapsed,
            "cycles_per_second": all.len() as f64 / 3.0 / elapsed,
            "latency_ms": {"p50": pct(&all, 0.5), "p95": pct(&all, 0.95), "p99": pct(&all, 0.99), "max": all.last().copied().unwrap_or(0.0)}
        })
    );
}
