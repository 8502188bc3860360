//! The scenarios: `fanout` (one publisher, subscribers stepping up until loss), `rooms` (many
//! small rooms) and `signaling` (request throughput and latency, no media).

use crate::client::{Janus, Result};
use crate::media::{RecvStats, Traffic};
use crate::pool::Pool;
use crate::procstat;
use crate::room::{measure, percentiles, BenchRoom};
use crate::Common;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn bar(multi: &MultiProgress, len: u64, what: &str) -> ProgressBar {
    let b = multi.add(ProgressBar::new(len));
    b.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    b.set_prefix(what.to_owned());
    b
}

pub fn header(common: &Common, scenario: &str) -> Value {
    json!({"scenario": scenario, "server": common.label, "url": common.ws, "server_pids": common.server_pid})
}

#[derive(clap::Args, Debug)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    /// Subscriber counts to step through (subscribers are added, never replaced); the run
    /// stops after the first step whose loss exceeds --max-loss-pct.
    #[arg(long, value_delimiter = ',', default_value = "10,25,50,100,200")]
    pub subscribers: Vec<usize>,
    #[arg(long, default_value_t = 0.5)]
    pub max_loss_pct: f64,
    /// Seconds between reaching a step's subscriber count and measuring.
    #[arg(long, default_value_t = 2)]
    pub settle: u64,
    /// Seconds between the publisher's start and the memory baseline the subscribers' memory is
    /// counted from: long enough for the publisher's own buffers to fill (the server's packet
    /// rings and kept group of pictures hold a few seconds of its media), so that they are not
    /// counted as the first subscribers'. Measured: 1 s put ~400 KiB of the publisher's on the
    /// first subscriber.
    #[arg(long, default_value_t = 6)]
    pub publisher_settle: u64,
    #[command(flatten)]
    pub traffic: TrafficArgs,
}

#[derive(clap::Args, Debug, Clone, Copy)]
pub struct TrafficArgs {
    /// Video packets per second from each publisher.
    #[arg(long, default_value_t = 130)]
    pub video_pps: u32,
    /// Bytes per video packet payload.
    #[arg(long, default_value_t = 1400)]
    pub video_bytes: usize,
    /// Audio packets per second from each publisher.
    #[arg(long, default_value_t = 50)]
    pub audio_pps: u32,
}

impl From<TrafficArgs> for Traffic {
    fn from(a: TrafficArgs) -> Self {
        Traffic { video_pps: a.video_pps, video_bytes: a.video_bytes, audio_pps: a.audio_pps, ..Traffic::default() }
    }
}

pub async fn fanout(a: FanoutArgs, multi: &MultiProgress) -> Result<Value> {
    let c = &a.common;
    let mut pool = Pool::new(&c.ws);
    let stats = Arc::new(RecvStats::default());
    let before = procstat::sample(&c.server_pid)?;
    let mut room = BenchRoom::open(&mut pool, &c.bind, a.traffic.into(), 10).await?;
    tokio::time::sleep(Duration::from_secs(a.publisher_settle)).await;
    let with_publisher = procstat::sample(&c.server_pid)?;
    let mut steps = Vec::new();
    let adding = bar(multi, 0, "subscribers");
    let measuring = bar(multi, c.duration, "measuring");
    let mut outcome = Ok(());
    for &n in &a.subscribers {
        adding.set_length(n as u64);
        let from = room.subscribers();
        while room.subscribers() < n {
            if let Err(e) = room.subscribe(&mut pool, &c.bind, &stats).await {
                outcome = Err(format!("subscriber {} of {n}: {e}", room.subscribers() + 1));
                break;
            }
            adding.set_position(room.subscribers() as u64);
            if room.subscribers() % 10 == 0 {
                pool.keepalive().await?;
            }
        }
        if outcome.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(a.settle)).await;
        measuring.set_message(format!("{n} subscribers"));
        let mut step =
            measure(std::slice::from_ref(&room), &mut pool, &stats, &c.server_pid, c.duration, &measuring).await?;
        let mut first = room.join_to_first_keyframe_ms(from);
        let p = percentiles(&mut first, &[0.5, 1.0]);
        step["join_to_first_keyframe_ms"] = json!({"p50": p[0], "max": p[1], "subscribers": first.len()});
        if let Some(rss) = step["server"]["rss_bytes"].as_u64() {
            step["server"]["rss_bytes_per_subscriber"] =
                json!((rss as f64 - with_publisher.rss_bytes as f64) / room.subscribers() as f64);
        }
        let loss = step["loss_pct"].as_f64().unwrap_or(100.0);
        multi.println(format!(
            "fanout {n:>4} subscribers: {:>8.0} forwarded/s, loss {loss:.2} %, latency p50 {:.2} ms p99 {:.2} ms, server {} CPU-us/packet",
            step["forwarded_per_second"].as_f64().unwrap_or(0.0),
            step["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
            step["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
            step["server_cpu_us_per_forwarded_packet"].as_f64().map_or("?".into(), |v| format!("{v:.1}")),
        ))?;
        steps.push(step);
        if loss > a.max_loss_pct {
            break;
        }
    }
    adding.finish_and_clear();
    measuring.finish_and_clear();
    room.close(&mut pool).await;
    pool.close().await;
    let mut out = header(c, "fanout");
    out["traffic"] = json!(format!("{:?}", Traffic::from(a.traffic)));
    out["server_rss_bytes_idle"] = json!(before.rss_bytes);
    out["server_rss_bytes_publisher"] = json!(with_publisher.rss_bytes.saturating_sub(before.rss_bytes));
    out["max_loss_pct"] = json!(a.max_loss_pct);
    out["steps"] = json!(steps);
    out["max_subscribers_within_loss"] = json!(steps
        .iter()
        .filter(|s| s["loss_pct"].as_f64().is_some_and(|l| l <= a.max_loss_pct))
        .filter_map(|s| s["subscribers"].as_u64())
        .max());
    if let Err(e) = outcome {
        out["error"] = json!(e);
    }
    Ok(out)
}

#[derive(clap::Args, Debug)]
pub struct RoomsArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,
    #[arg(long, default_value_t = 3)]
    pub subscribers_per_room: usize,
    #[command(flatten)]
    pub traffic: TrafficArgs,
}

pub async fn rooms(a: RoomsArgs, multi: &MultiProgress) -> Result<Value> {
    let c = &a.common;
    let mut pool = Pool::new(&c.ws);
    let stats = Arc::new(RecvStats::default());
    let setup = bar(multi, (a.rooms * (1 + a.subscribers_per_room)) as u64, "peers");
    let mut rooms = Vec::new();
    for _ in 0..a.rooms {
        let mut room = BenchRoom::open(&mut pool, &c.bind, a.traffic.into(), 1).await?;
        setup.inc(1);
        for _ in 0..a.subscribers_per_room {
            room.subscribe(&mut pool, &c.bind, &stats).await?;
            setup.inc(1);
        }
        rooms.push(room);
        pool.keepalive().await?;
    }
    setup.finish_and_clear();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let measuring = bar(multi, c.duration, "measuring");
    let mut result = measure(&rooms, &mut pool, &stats, &c.server_pid, c.duration, &measuring).await?;
    measuring.finish_and_clear();
    let mut first: Vec<f64> = rooms.iter().flat_map(|r| r.join_to_first_keyframe_ms(0)).collect();
    let p = percentiles(&mut first, &[0.5, 1.0]);
    result["join_to_first_keyframe_ms"] = json!({"p50": p[0], "max": p[1], "subscribers": first.len()});
    for r in rooms {
        r.close(&mut pool).await;
    }
    pool.close().await;
    let mut out = header(c, "rooms");
    out["rooms"] = json!(a.rooms);
    out["subscribers_per_room"] = json!(a.subscribers_per_room);
    out["result"] = result;
    Ok(out)
}

#[derive(clap::Args, Debug)]
pub struct SignalingArgs {
    #[command(flatten)]
    pub common: Common,
    /// Concurrent clients, each on its own WebSocket.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
}

/// Request latencies (ms) by request name.
type Latencies = BTreeMap<&'static str, Vec<f64>>;

/// One client: create -> attach -> join (publisher) -> leave -> detach -> destroy, until the
/// deadline. Returns its latencies and how many cycles failed.
async fn signaling_client(url: String, room: u64, deadline: Instant) -> Result<(Latencies, u64)> {
    let mut janus = Janus::connect(&url).await?;
    let mut lat = Latencies::new();
    let mut errors = 0;
    while Instant::now() < deadline {
        if let Err(e) = cycle(&mut janus, room, &mut lat).await {
            errors += 1;
            if errors == 1 {
                eprintln!("signaling: a cycle failed: {e}");
            }
            // A broken connection stays broken: reconnect.
            janus = Janus::connect(&url).await?;
        }
    }
    Ok((lat, errors))
}

async fn cycle(janus: &mut Janus, room: u64, lat: &mut Latencies) -> Result<()> {
    async fn timed<T>(
        lat: &mut Latencies,
        name: &'static str,
        f: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let t = Instant::now();
        let r = f.await?;
        lat.entry(name).or_default().push(t.elapsed().as_secs_f64() * 1e3);
        Ok(r)
    }
    let session = timed(lat, "create", janus.create_session()).await?;
    let handle = timed(lat, "attach", janus.attach(session)).await?;
    let join = json!({"request": "join", "room": room, "ptype": "publisher", "display": "loadgen"});
    timed(lat, "join", janus.request(session, handle, join, None)).await?;
    timed(lat, "leave", janus.request(session, handle, json!({"request": "leave"}), None)).await?;
    timed(lat, "detach", janus.detach(session, handle)).await?;
    timed(lat, "destroy", janus.destroy(session)).await?;
    janus.forget_events();
    Ok(())
}

fn latency_json(v: &mut [f64]) -> Value {
    let p = percentiles(v, &[0.5, 0.95, 0.99]);
    json!({"count": v.len(), "p50": p[0], "p95": p[1], "p99": p[2]})
}

pub async fn signaling(a: SignalingArgs, multi: &MultiProgress) -> Result<Value> {
    let c = &a.common;
    // The room every client joins, sized for all of them.
    let mut admin = Janus::connect(&c.ws).await?;
    let session = admin.create_session().await?;
    let handle = admin.attach(session).await?;
    let room = 10_000_000 + u64::from(rand::random::<u32>() % 1_000_000_000);
    admin
        .sync(
            session,
            handle,
            json!({"request": "create", "room": room, "publishers": a.clients + 10, "description": "portunus-loadgen"}),
        )
        .await?;
    let before = procstat::sample(&c.server_pid)?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(c.duration);
    let tasks: Vec<_> =
        (0..a.clients).map(|_| actix_web::rt::spawn(signaling_client(c.ws.clone(), room, deadline))).collect();
    let progress = bar(multi, c.duration, "signaling");
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        progress.set_position(started.elapsed().as_secs().min(c.duration));
    }
    let mut all = Latencies::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.map_err(|e| format!("client task: {e}"))??;
        errors += e;
        for (k, v) in lat {
            all.entry(k).or_default().extend(v);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = procstat::sample(&c.server_pid)?;
    progress.finish_and_clear();
    let _ = admin.sync(session, handle, json!({"request": "destroy", "room": room})).await;
    let _ = admin.destroy(session).await;
    let mut every: Vec<f64> = all.values().flatten().copied().collect();
    let requests = every.len();
    let server = procstat::window(&c.server_pid, before, after, elapsed);
    let per_cpu_s = server["cpu_seconds"].as_f64().filter(|s| *s > 0.0).map(|s| requests as f64 / s);
    let per_request: BTreeMap<&str, Value> = all.iter_mut().map(|(k, v)| (*k, latency_json(v))).collect();
    let mut out = header(c, "signaling");
    out["clients"] = json!(a.clients);
    out["result"] = json!({
        "seconds": elapsed,
        "requests": requests,
        "failed_cycles": errors,
        "requests_per_second": requests as f64 / elapsed,
        "requests_per_server_cpu_second": per_cpu_s,
        "latency_ms": latency_json(&mut every),
        "per_request": per_request,
        "server": server,
    });
    multi.println(format!(
        "signaling {} clients: {:.0} requests/s, p50 {:.3} ms p99 {:.3} ms, {} failed cycles",
        a.clients,
        requests as f64 / elapsed,
        out["result"]["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
        out["result"]["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
        errors
    ))?;
    Ok(out)
}
