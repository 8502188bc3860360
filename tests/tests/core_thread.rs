//! Standalone, a WebSocket request and the in-process node's work for it stay on the WebSocket
//! worker's thread: the process's main thread sleeps through a burst of joins and leaves (it
//! keeps only its own once-a-second ticks: the reaper, the declared rooms).

use portunus_tests::procs::spawn_standalone;
use serde_json::Value;
use std::process::Command;

/// Context switches of one thread of a process, voluntary and not.
fn switches(pid: u32, tid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).expect("thread status");
    status
        .lines()
        .filter(|l| l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches"))
        .map(|l| l.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()).expect("a count"))
        .sum()
}

#[test]
fn the_main_thread_sleeps_while_websocket_requests_reach_the_node() {
    let server = spawn_standalone(&[], &[("PORTUNUS_RATE_LIMIT_PER_CONNECTION", "0"), ("PORTUNUS_WORKERS", "1")]);
    let pid = server.proc.pid();
    let json = std::env::temp_dir().join(format!("portunus-core-thread-{}.json", std::process::id()));
    let before = switches(pid, pid);
    let out = Command::new(env!("CARGO_BIN_EXE_portunus-loadgen"))
        .args(["signaling", "--ws", &server.ws_url, "--clients", "2", "--duration", "3", "--json"])
        .arg(&json)
        .output()
        .expect("run portunus-loadgen");
    let main_thread = switches(pid, pid) - before;
    assert!(out.status.success(), "signaling failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let r = &v["result"];
    assert_eq!(r["failed_cycles"], 0, "{v}");
    let joins = r["per_request"]["join"]["count"].as_u64().unwrap();
    assert!(joins >= 100, "joins and leaves kept coming: {v}");
    // Each join and leave crossed to the node's thread and back when the node ran elsewhere:
    // at least one wake-up of that thread per join.
    eprintln!("{joins} joins and as many leaves; the main thread switched {main_thread} times");
    assert!(main_thread < joins / 10 + 30, "the main thread woke {main_thread} times for {joins} joins");
}
