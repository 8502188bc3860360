//! The soak: rooms opened and closed over and over for a long time (each cycle on fresh
//! WebSockets and sessions: create, attach, create room, publish, subscribe, hold, destroy
//! room, destroy sessions), while the server's resident memory, open file descriptors and live
//! tasks (its `/metrics`' `portunus_node_tasks`) are sampled every few seconds. A server that
//! leaks shows it as growth between samples taken with the same number of rooms open. One more
//! room stays open the whole time, its one subscriber receiving all along: a stream the server
//! stops forwarding partway (or a subscriber the churn disturbs) shows as that room's loss.

use crate::client::Result;
use crate::media::{RecvStats, Traffic};
use crate::pool::Pool;
use crate::procstat;
use crate::room::BenchRoom;
use crate::Common;
use indicatif::MultiProgress;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    #[command(flatten)]
    pub common: Common,
    /// Rooms open at once, each cycling on its own.
    #[arg(long, default_value_t = 2)]
    pub rooms: usize,
    #[arg(long, default_value_t = 2)]
    pub subscribers_per_room: usize,
    /// How long a room stays open before it is closed and another opened.
    #[arg(long, default_value_t = 4)]
    pub room_seconds: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    pub sample_every: u64,
    /// The server's Prometheus endpoint (`http://host:port/metrics`), for its live tasks.
    #[arg(long)]
    pub metrics: Option<String>,
    /// Video packets per second in the room open the whole time (0: no such room). At 1,000 a
    /// minute's stream goes past half the RTP sequence space.
    #[arg(long, default_value_t = 130)]
    pub long_room_video_pps: u32,
}

/// Open file descriptors of the processes.
fn fds(pids: &[u32]) -> u64 {
    pids.iter().map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).map_or(0, |d| d.count() as u64)).sum()
}

/// `portunus_node_tasks` from a `/metrics` URL (plain HTTP, 2 s at most).
fn tasks(url: &str) -> Option<u64> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/"), |(h, p)| (h, p));
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines().find_map(|l| l.strip_prefix("portunus_node_tasks ")?.trim().parse().ok())
}

/// One room slot: open, hold, close, again, until the deadline; (cycles, failures).
async fn cycle_rooms(c: Common, subscribers: usize, hold: Duration, deadline: Instant) -> (u64, u64) {
    let stats = Arc::new(RecvStats::default());
    let (mut cycles, mut failures) = (0, 0);
    // Rooms go on cycling until the last sample is taken (the deadline), so that every sample
    // sees as many rooms as the others.
    while Instant::now() < deadline {
        let mut pool = Pool::new(&c.ws);
        let opened = async {
            let mut room = BenchRoom::open(&mut pool, &c.bind, Default::default(), 1).await?;
            for _ in 0..subscribers {
                room.subscribe(&mut pool, &c.bind, &stats).await?;
            }
            Ok::<_, crate::client::Error>(room)
        }
        .await;
        match opened {
            Ok(room) => {
                tokio::time::sleep(hold).await;
                room.close(&mut pool).await;
                cycles += 1;
            }
            Err(e) => {
                failures += 1;
                eprintln!("soak: a cycle failed: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        pool.close().await;
    }
    (cycles, failures)
}

/// The room open from start to `deadline`: what its publisher sent and its subscriber
/// received meanwhile.
async fn long_room(c: &Common, video_pps: u32, deadline: Instant) -> Result<Value> {
    let stats = Arc::new(RecvStats::default());
    let mut pool = Pool::new(&c.ws);
    let traffic = Traffic { video_pps, ..Traffic::default() };
    let mut room = BenchRoom::open(&mut pool, &c.bind, traffic, 1).await?;
    room.subscribe(&mut pool, &c.bind, &stats).await?;
    // From the subscriber's first keyframe on, nothing should be missing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received_before = stats.measured.load(Relaxed);
    let sent_before = room.measuring(true);
    while Instant::now() < deadline {
        tokio::time::sleep(deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(10))).await;
        pool.keepalive().await?;
    }
    let sent = room.measuring(false) - sent_before;
    // Packets still in flight.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = stats.measured.load(Relaxed) - received_before;
    room.close(&mut pool).await;
    pool.close().await;
    let loss = if sent == 0 { 100.0 } else { 100.0 * (1.0 - received as f64 / sent as f64) };
    Ok(json!({"video_pps": video_pps, "sent": sent, "received": received, "loss_pct": loss}))
}

pub async fn soak(a: SoakArgs, _multi: &MultiProgress) -> Result<Value> {
    let c = &a.common;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(c.duration);
    let hold = Duration::from_secs(a.room_seconds);
    let slots = (0..a.rooms).map(|i| {
        let c = c.clone();
        async move {
            // Staggered, so that rooms open and close all the time rather than together.
            tokio::time::sleep(hold * i as u32 / a.rooms.max(1) as u32).await;
            cycle_rooms(c, a.subscribers_per_room, hold, deadline).await
        }
    });
    let sampler = async {
        let mut samples = Vec::new();
        let every = Duration::from_secs(a.sample_every.max(1));
        let mut next = started + every;
        while next <= deadline {
            tokio::time::sleep_until(next.into()).await;
            let p = procstat::sample(&c.server_pid).unwrap_or_default();
            let t = a.metrics.as_deref().and_then(tasks);
            samples.push(json!({"t": started.elapsed().as_secs(), "rss_bytes": p.rss_bytes, "fds": fds(&c.server_pid), "tasks": t}));
            eprintln!("soak: {}", samples.last().unwrap_or(&Value::Null));
            next += every;
        }
        samples
    };
    let long = async {
        match a.long_room_video_pps {
            0 => Value::Null,
            pps => long_room(c, pps, deadline).await.unwrap_or_else(|e| json!({"error": e.to_string()})),
        }
    };
    let (results, samples, long) = futures_util::join!(futures_util::future::join_all(slots), sampler, long);
    let cycles: u64 = results.iter().map(|r| r.0).sum();
    let failed: u64 = results.iter().map(|r| r.1).sum();
    let mut out = super::scenarios::header(c, "soak");
    out["result"] = json!({"cycles": cycles, "failed_cycles": failed, "rooms": a.rooms,
        "subscribers_per_room": a.subscribers_per_room, "room_seconds": a.room_seconds, "samples": samples, "long_room": long});
    Ok(out)
}
