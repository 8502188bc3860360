//! A WebSocket request and the work for it stay on the WebSocket worker's thread: standalone,
//! the in-process node's; in a cluster, the gateway's Redis I/O. The process's main thread
//! sleeps through a burst of joins and leaves (it keeps only its own once-a-second ticks: the
//! reaper, the declared rooms).

use portunus_tests::procs::{spawn_gateway_env, spawn_node, spawn_standalone, GatewayProc};
use portunus_tests::RedisServer;
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

/// Runs 3 s of the load generator's signaling loop against `server` and checks that its main
/// thread barely woke.
fn main_thread_sleeps_through_joins(server: &GatewayProc) {
    let pid = server.proc.pid();
    let json = std::env::temp_dir().join(format!("portunus-core-thread-{}-{pid}.json", std::process::id()));
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
    // Each join and leave crossed to the other thread and back when the work ran elsewhere:
    // at least one wake-up of that thread per join.
    eprintln!("{joins} joins and as many leaves; the main thread switched {main_thread} times");
    assert!(main_thread < joins / 10 + 30, "the main thread woke {main_thread} times for {joins} joins");
}

const ONE_WORKER: [(&str, &str); 2] = [("PORTUNUS_RATE_LIMIT_PER_CONNECTION", "0"), ("PORTUNUS_WORKERS", "1")];

#[test]
fn standalone_the_main_thread_sleeps_while_websocket_requests_reach_the_node() {
    main_thread_sleeps_through_joins(&spawn_standalone(&[], &ONE_WORKER));
}

#[test]
fn in_a_cluster_the_gateways_main_thread_sleeps_while_its_requests_go_through_redis() {
    let redis = RedisServer::start();
    let _node = spawn_node(&redis.url(), "node-1");
    main_thread_sleeps_through_joins(&spawn_gateway_env(&redis.url(), &[], &ONE_WORKER));
}
