//! A soak, short: a standalone Portunus process while rooms open and close for a minute (each
//! cycle on fresh sockets and sessions, a publisher and two subscribers with real DTLS-SRTP),
//! its resident memory, file descriptors and live tasks sampled every 10 s. The run fails on
//! growth between the second sample and the end (same number of rooms open at each sample),
//! and on loss in the room open all along, whose stream (1,000 video packets a second) goes
//! past half the RTP sequence space.
//! `tests/bench/soak.sh` runs the same for as long as asked (`BENCHMARKS.md`: 30 minutes).

use portunus_tests::procs::spawn_standalone;
use serde_json::Value;
use std::process::Command;

const SECONDS: u64 = 60;
const MIB: u64 = 1 << 20;

#[test]
fn a_minute_of_rooms_opening_and_closing_grows_nothing() {
    let server = spawn_standalone(&[], &[("PORTUNUS_RATE_LIMIT_PER_CONNECTION", "0"), ("PORTUNUS_LOG", "warn")]);
    let pid = server.proc.pid().to_string();
    let json = std::env::temp_dir().join(format!("portunus-soak-{}.json", std::process::id()));
    let metrics = format!("{}/metrics", server.admin_url);
    let out = Command::new(env!("CARGO_BIN_EXE_portunus-loadgen"))
        .args(["soak", "--ws", &server.ws_url, "--duration", &SECONDS.to_string(), "--server-pid", &pid])
        .args(["--metrics", &metrics, "--long-room-video-pps", "1000", "--json"])
        .arg(&json)
        .output()
        .expect("run portunus-loadgen");
    assert!(out.status.success(), "soak failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let r = &v["result"];
    assert_eq!(r["failed_cycles"], 0, "{v}");
    assert!(r["cycles"].as_u64() >= Some(10), "rooms kept opening and closing: {v}");
    let long = &r["long_room"];
    let (sent, received) = (long["sent"].as_u64().unwrap_or(0), long["received"].as_u64().unwrap_or(0));
    assert!(sent > 40_000, "the long room's stream went past 32,768 packets: {long}");
    assert!(received >= sent * 99 / 100, "the long room's subscriber lost packets: {long}");
    let samples = r["samples"].as_array().unwrap();
    assert!(samples.len() >= 5, "{v}");
    let at = |i: usize, k: &str| samples[i][k].as_u64().unwrap_or_else(|| panic!("{k} sampled: {v}"));
    let (base, last) = (1, samples.len() - 1);
    let grew = |k: &str| at(last, k).min(at(last - 1, k));
    assert!(grew("rss_bytes") <= at(base, "rss_bytes") * 5 / 4 + 16 * MIB, "memory grew: {v}");
    assert!(grew("fds") <= at(base, "fds") + 16, "file descriptors grew: {v}");
    assert!(grew("tasks") <= at(base, "tasks") + 32, "tasks grew: {v}");
    eprintln!(
        "soak {SECONDS} s: {} cycles; RSS {} -> {} MiB, FDs {} -> {}, tasks {} -> {}; long room {received} of {sent}",
        r["cycles"],
        at(base, "rss_bytes") / MIB,
        at(last, "rss_bytes") / MIB,
        at(base, "fds"),
        at(last, "fds"),
        at(base, "tasks"),
        at(last, "tasks")
    );
    let _ = std::fs::remove_file(&json);
}
