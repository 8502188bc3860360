//! `forward`: what RTP forwarders and recordings cost the server. One publisher sends; its
//! audio and video are forwarded (`rtp_forward`) to K local UDP sinks, K stepping up, then
//! recorded (`configure` `record`); each window's server CPU, less the publisher-only
//! baseline's, is divided by the packets forwarded (counted at the sinks) or by the streams
//! recorded.

use crate::client::Result;
use crate::pool::Pool;
use crate::procstat;
use crate::room::BenchRoom;
use crate::scenarios::{header, TrafficArgs};
use crate::Common;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct ForwardArgs {
    #[command(flatten)]
    pub common: Common,
    /// Forwarder counts to step through (each forwards the audio and the video).
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    pub forwarders: Vec<usize>,
    /// Where the server writes the recording (the room's `rec_dir`; the server's default if not
    /// given).
    #[arg(long)]
    pub rec_dir: Option<String>,
    #[command(flatten)]
    pub traffic: TrafficArgs,
}

/// Server CPU-seconds per second over `secs` of waiting (the pool's sessions kept alive, their
/// sockets read, meanwhile).
async fn cpu_rate(pool: &mut Pool, pids: &[u32], secs: u64) -> Result<f64> {
    let before = procstat::sample(pids)?;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(secs).saturating_sub(t.elapsed()).min(Duration::from_secs(5))).await;
        pool.keepalive().await?;
    }
    let after = procstat::sample(pids)?;
    Ok((after.cpu_s - before.cpu_s) / t.elapsed().as_secs_f64())
}

/// A UDP sink counting what it receives, until the process ends.
fn sink(counter: Arc<AtomicU64>) -> Result<u16> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let port = socket.local_addr()?.port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while socket.recv(&mut buf).is_ok() {
            counter.fetch_add(1, Relaxed);
        }
    });
    Ok(port)
}

pub async fn forward(a: ForwardArgs) -> Result<Value> {
    let c = &a.common;
    let mut pool = Pool::new(&c.ws);
    let room = BenchRoom::open(&mut pool, &c.bind, a.traffic.into(), 10).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = cpu_rate(&mut pool, &c.server_pid, c.duration).await?;
    let (ci, handle) = pool.attach().await?;
    let received = Arc::new(AtomicU64::new(0));
    let mut running = 0;
    let mut steps = Vec::new();
    for &k in &a.forwarders {
        while running < k {
            let (audio, video) = (sink(received.clone())?, sink(received.clone())?);
            let conn = pool.conn(ci);
            conn.janus
                .sync(
                    conn.session,
                    handle,
                    json!({"request": "rtp_forward", "room": room.room, "publisher_id": room.feed(),
                        "host": "127.0.0.1", "streams": [{"mid": "0", "port": audio}, {"mid": "1", "port": video}]}),
                )
                .await?;
            running += 1;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let from = received.load(Relaxed);
        let rate = cpu_rate(&mut pool, &c.server_pid, c.duration).await?;
        let forwarded = (received.load(Relaxed) - from) as f64 / c.duration as f64;
        let us = (rate - baseline) * 1e6 / forwarded.max(1.0);
        println!("forward {k:>3} forwarders: {forwarded:>8.0} packets/s, server {us:.2} CPU-us per forwarded packet");
        steps.push(json!({"forwarders": k, "forwarded_per_second": forwarded, "server_cpu_share": rate,
            "server_cpu_us_per_forwarded_packet": us}));
    }
    // Recording: the same publisher's two streams into `.mjr` files, the forwarders still on.
    let with_forwarders = cpu_rate(&mut pool, &c.server_pid, c.duration).await?;
    room.record(&mut pool, true, a.rec_dir.as_deref()).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let recording = cpu_rate(&mut pool, &c.server_pid, c.duration).await?;
    room.record(&mut pool, false, None).await?;
    let per_stream_share = (recording - with_forwarders) / 2.0;
    let packets = f64::from(a.traffic.video_pps + a.traffic.audio_pps);
    println!(
        "recording: {:.3} % of a core per stream, {:.2} CPU-us per recorded packet",
        per_stream_share * 100.0,
        (recording - with_forwarders) * 1e6 / packets
    );
    room.close(&mut pool).await;
    pool.close().await;
    let mut out = header(c, "forward");
    out["baseline_cpu_share"] = json!(baseline);
    out["steps"] = json!(steps);
    out["recording"] = json!({"cpu_share_per_stream": per_stream_share,
        "cpu_us_per_recorded_packet": (recording - with_forwarders) * 1e6 / packets});
    Ok(out)
}
