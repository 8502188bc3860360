//! The load generator's smoke run: each scenario for a few seconds against a Portunus, then the
//! report. It asserts that packets flowed and results were written, never how fast anything was
//! (timings on a shared CI machine mean nothing; the benchmark is tests/bench/compare.sh).

use portunus_tests::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn loadgen(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_portunus-loadgen")).args(args).output().expect("run portunus-loadgen");
    assert!(
        out.status.success(),
        "portunus-loadgen {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("result file")).expect("result JSON")
}

#[test]
fn every_scenario_runs_and_the_report_is_written() {
    // The signalling scenario makes requests as fast as the server answers them: no rate limit.
    let mut cfg = test_config();
    cfg.rate_limit_per_connection = 0;
    let server = TestServer::with(cfg);
    let dir = std::env::temp_dir().join(format!("portunus-loadgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    // The server runs in this process: its CPU time is ours.
    let pid = std::process::id().to_string();
    let common = |json: &str| -> Vec<String> {
        ["--ws", &server.ws_url, "--duration", "2", "--server-pid", &pid, "--label", "portunus", "--json", &file(json)]
            .map(str::to_owned)
            .to_vec()
    };

    let mut args = vec!["fanout".to_owned(), "--subscribers".into(), "1,3".into()];
    args.extend(common("fanout.json"));
    loadgen(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let fanout = read(&dir.join("fanout.json"));
    let steps = fanout["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{fanout}");
    for s in steps {
        assert!(s["packets_received"].as_u64().unwrap() > 0, "packets flowed: {s}");
        assert!(s["server"]["cpu_seconds"].is_number(), "server CPU sampled: {s}");
        assert!(s["latency_ms"]["p99"].as_f64().unwrap() > 0.0, "latency measured: {s}");
    }

    let mut args = vec!["rooms".to_owned(), "--rooms".into(), "2".into(), "--subscribers-per-room".into(), "2".into()];
    args.extend(common("rooms.json"));
    loadgen(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let rooms = read(&dir.join("rooms.json"));
    assert_eq!(rooms["result"]["subscribers"], 4, "{rooms}");
    assert!(rooms["result"]["packets_received"].as_u64().unwrap() > 0, "{rooms}");
    assert_eq!(rooms["result"]["join_to_first_keyframe_ms"]["subscribers"], 4, "every subscriber got video: {rooms}");

    let mut args = vec!["signaling".to_owned(), "--clients".into(), "2".into()];
    args.extend(common("signaling.json"));
    loadgen(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let signaling = read(&dir.join("signaling.json"));
    assert!(signaling["result"]["requests"].as_u64().unwrap() > 0, "{signaling}");
    assert_eq!(signaling["result"]["failed_cycles"], 0, "{signaling}");
    for r in ["create", "attach", "join", "leave", "detach", "destroy"] {
        assert!(signaling["result"]["per_request"][r]["count"].as_u64().unwrap() > 0, "{r}: {signaling}");
    }

    // Forwarders to local sinks, then a recording (into the test's folder).
    let rec = dir.join("rec");
    let mut args = vec!["forward".to_owned(), "--forwarders".into(), "1,2".into(), "--rec-dir".into(), file("rec")];
    args.extend(common("forward.json"));
    loadgen(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let forward = read(&dir.join("forward.json"));
    let steps = forward["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{forward}");
    for (s, k) in steps.iter().zip([1.0, 2.0]) {
        // Each forwarder gets the publisher's audio and video (180 packets/s by default).
        let per_second = s["forwarded_per_second"].as_f64().unwrap();
        assert!(per_second > 100.0 * k, "the sinks received the forwarded packets: {s}");
    }
    assert!(forward["recording"]["cpu_share_per_stream"].is_number(), "{forward}");
    let recorded = std::fs::read_dir(&rec).map(|d| d.count()).unwrap_or(0);
    assert_eq!(recorded, 2, "the recording wrote its audio and video files");

    let report = dir.join("report");
    loadgen(&[
        "report",
        "--out",
        report.to_str().unwrap(),
        "--baseline",
        "portunus",
        &file("fanout.json"),
        &file("rooms.json"),
        &file("signaling.json"),
        &file("forward.json"),
    ]);
    let md = std::fs::read_to_string(report.join("results.md")).expect("results.md");
    assert!(md.contains("### Fanout") && md.contains("### Rooms") && md.contains("### Signaling"), "{md}");
    assert!(md.contains("### Forwarders and recording"), "{md}");
    for png in ["fanout-cpu.png", "fanout-latency.png"] {
        let bytes = std::fs::read(report.join(png)).expect(png);
        assert!(bytes.starts_with(b"\x89PNG"), "{png} is a PNG");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The sans-IO core's cost measurement runs on both stacks, and what it timed reached the
/// receivers.
#[test]
fn the_rtc_cost_measurement_delivers_what_it_times() {
    for (stack, send, checked) in [("rtc", "none", 40), ("rtc", "mmsg", 40), ("async", "sendto", 120)] {
        let out = Command::new(env!("CARGO_BIN_EXE_portunus-rtc-cost"))
            .args(["--stack", stack, "--subscribers", "2", "--packets", "60", "--send", send])
            .output()
            .expect("run portunus-rtc-cost");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "portunus-rtc-cost failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_str(&stdout).expect("a JSON report");
        assert_eq!(v["checked"], checked, "{v}");
        assert!(v["received"].as_u64() >= Some(checked * 99 / 100), "{v}");
        assert!(v["cpu_us_per_forwarded_packet"].as_f64().unwrap() > 0.0, "{v}");
        assert!(v["allocations_per_forwarded_packet"].as_f64().unwrap() > 0.0, "{v}");
    }
}
