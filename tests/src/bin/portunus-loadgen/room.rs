//! A benchmark room (one publisher, any number of subscribers) and the measuring window that
//! every media scenario shares.

use crate::client::Result;
use crate::media::{LoadPublisher, LoadSubscriber, RecvStats, Traffic};
use crate::pool::Pool;
use crate::procstat;
use indicatif::ProgressBar;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct BenchRoom {
    pub room: u64,
    owner: (usize, u64),
    publisher: LoadPublisher,
    feed: u64,
    subscribers: Vec<Subscriber>,
}

struct Subscriber {
    peer: LoadSubscriber,
    joined_at: Instant,
}

impl BenchRoom {
    /// Creates a room, joins it as a publisher, publishes and starts sending `traffic`.
    pub async fn open(pool: &mut Pool, bind: &str, traffic: Traffic, max_publishers: usize) -> Result<Self> {
        let (ci, handle) = pool.attach().await?;
        let c = pool.conn(ci);
        let room = 10_000_000 + u64::from(rand::random::<u32>() % 1_000_000_000);
        c.janus
            .sync(
                c.session,
                handle,
                json!({"request": "create", "room": room, "publishers": max_publishers, "fir_freq": 10,
                       "audiocodec": "opus", "videocodec": "vp8", "description": "portunus-loadgen"}),
            )
            .await?;
        let (joined, _) = c
            .janus
            .request(c.session, handle, json!({"request": "join", "room": room, "ptype": "publisher"}), None)
            .await?;
        let feed = joined["id"].as_u64().ok_or_else(|| format!("joined without an id: {joined}"))?;
        let (mut publisher, offer) = LoadPublisher::offer(bind).await?;
        let (_, answer) = c
            .janus
            .request(
                c.session,
                handle,
                json!({"request": "publish", "audio": true, "video": true}),
                Some(json!({"type": "offer", "sdp": offer})),
            )
            .await?;
        publisher.accept(answer.ok_or("configured without an answer")?).await?;
        publisher.start(traffic);
        Ok(Self { room, owner: (ci, handle), publisher, feed, subscribers: Vec::new() })
    }

    /// Subscribes one more peer to all the publisher's streams, through `start`.
    pub async fn subscribe(&mut self, pool: &mut Pool, bind: &str, stats: &Arc<RecvStats>) -> Result<()> {
        let (ci, handle) = pool.attach().await?;
        let c = pool.conn(ci);
        let joined_at = Instant::now();
        let join =
            json!({"request": "join", "room": self.room, "ptype": "subscriber", "streams": [{"feed": self.feed}]});
        // Janus knows a feed only once the publisher's PeerConnection is up on its side, which
        // can be a moment after ours (browsers wait for the `publishers` event instead).
        let mut tries = 0;
        let offer = loop {
            match c.janus.request(c.session, handle, join.clone(), None).await {
                Ok((_, offer)) => break offer,
                Err(e) if e.to_string().starts_with("VideoRoom error 428") && tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let (mut peer, answer) =
            LoadSubscriber::answer(bind, offer.ok_or("attached without an offer")?, stats.clone()).await?;
        c.janus
            .request(c.session, handle, json!({"request": "start"}), Some(json!({"type": "answer", "sdp": answer})))
            .await?;
        peer.connected(Duration::from_secs(10)).await?;
        self.subscribers.push(Subscriber { peer, joined_at });
        Ok(())
    }

    pub fn subscribers(&self) -> usize {
        self.subscribers.len()
    }

    /// Starts or stops counting the publisher's packets as measured (the subscribers count the
    /// measured ones they receive); the count so far.
    pub fn measuring(&self, on: bool) -> u64 {
        self.publisher.stats.measuring.store(on, Relaxed);
        self.publisher.stats.measured.load(Relaxed)
    }

    /// The publisher's id in the room.
    pub fn feed(&self) -> u64 {
        self.feed
    }

    /// Starts (or stops) recording the publisher (`configure` `record`), into `dir` (the
    /// room's `rec_dir`, set first with `edit`) when given.
    pub async fn record(&self, pool: &mut Pool, on: bool, dir: Option<&str>) -> Result<()> {
        let c = pool.conn(self.owner.0);
        if let Some(d) = dir {
            let edit = json!({"request": "edit", "room": self.room, "new_rec_dir": d});
            c.janus.sync(c.session, self.owner.1, edit).await?;
        }
        let body = json!({"request": "configure", "record": on});
        c.janus.request(c.session, self.owner.1, body, None).await?;
        Ok(())
    }

    /// Milliseconds from each subscriber's `join` to its first keyframe (the first video it can
    /// decode), for those past index `from`.
    pub fn join_to_first_keyframe_ms(&self, from: usize) -> Vec<f64> {
        self.subscribers[from.min(self.subscribers.len())..]
            .iter()
            .filter_map(|s| s.peer.first_keyframe().map(|t| (t - s.joined_at).as_secs_f64() * 1e3))
            .collect()
    }

    pub async fn close(self, pool: &mut Pool) {
        for s in self.subscribers {
            s.peer.close().await;
        }
        self.publisher.close().await;
        let c = pool.conn(self.owner.0);
        let _ = c.janus.sync(c.session, self.owner.1, json!({"request": "destroy", "room": self.room})).await;
    }
}

/// Percentiles of `v` (sorted in place); zeros when empty.
pub fn percentiles(v: &mut [f64], ps: &[f64]) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    ps.iter()
        .map(|p| if v.is_empty() { 0.0 } else { v[(((v.len() as f64) * p).ceil() as usize).clamp(1, v.len()) - 1] })
        .collect()
}

/// Measures `secs` seconds of forwarding in `rooms`: packets the publishers sent and the
/// subscribers received in the window, loss, one-way latency and the servers' CPU and memory.
pub async fn measure(
    rooms: &[BenchRoom],
    pool: &mut Pool,
    stats: &RecvStats,
    pids: &[u32],
    secs: u64,
    bar: &ProgressBar,
) -> Result<Value> {
    let sent_before: Vec<u64> = rooms.iter().map(|r| r.publisher.stats.measured.load(Relaxed)).collect();
    let recv_before = stats.measured.load(Relaxed);
    let gaps_before = stats.gaps.load(Relaxed);
    stats.take_latency(&[]);
    let cpu_before = procstat::sample(pids)?;
    let own = [std::process::id()];
    let own_before = procstat::sample(&own)?;
    let started = Instant::now();
    for r in rooms {
        r.publisher.stats.measuring.store(true, Relaxed);
    }
    bar.set_length(secs);
    bar.set_position(0);
    for s in 0..secs {
        tokio::time::sleep_until(tokio::time::Instant::from_std(started + Duration::from_secs(s + 1))).await;
        bar.set_position(s + 1);
        if s % 10 == 9 {
            pool.keepalive().await?;
        }
    }
    for r in rooms {
        r.publisher.stats.measuring.store(false, Relaxed);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = procstat::sample(pids)?;
    let own_after = procstat::sample(&own)?;
    // Packets still in flight when the window closed.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut expected = 0u64;
    let mut sent = 0u64;
    for (r, before) in rooms.iter().zip(sent_before) {
        let s = r.publisher.stats.measured.load(Relaxed) - before;
        sent += s;
        expected += s * r.subscribers() as u64;
    }
    let received = stats.measured.load(Relaxed) - recv_before;
    let loss = if expected == 0 { 0.0 } else { 1.0 - received as f64 / expected as f64 };
    let lat = stats.take_latency(&[0.5, 0.95, 0.99]);
    let server = procstat::window(pids, cpu_before, cpu_after, elapsed);
    let cpu_us_per_packet = server["cpu_seconds"].as_f64().filter(|_| received > 0).map(|c| c * 1e6 / received as f64);
    Ok(json!({
        "seconds": elapsed,
        "subscribers": rooms.iter().map(BenchRoom::subscribers).sum::<usize>(),
        "packets_sent": sent,
        "packets_expected": expected,
        "packets_received": received,
        "forwarded_per_second": received as f64 / elapsed,
        "loss_pct": loss * 100.0,
        "sequence_gaps": stats.gaps.load(Relaxed) - gaps_before,
        "latency_ms": {"p50": lat[0], "p95": lat[1], "p99": lat[2]},
        "server": server,
        "server_cpu_us_per_forwarded_packet": cpu_us_per_packet,
        // Whether the load generator itself kept up: near 1.0 on its one core, it may not have.
        "load_generator_cpu_share": (own_after.cpu_s - own_before.cpu_s) / elapsed,
    }))
}
