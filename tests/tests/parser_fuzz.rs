//! Property test of the request parser: random JSON and mutated valid requests never panic and
//! always yield either a typed request or a Janus error with a known code.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use shared::janus::request::{parse, Transport};
use shared::janus::videoroom::parse_request;
use shared::testing::fuzz::mutate;

const CORE_CODES: [u16; 10] = [450, 453, 454, 455, 456, 457, 458, 459, 464, 465];

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    let keys = [
        "janus",
        "transaction",
        "session_id",
        "handle_id",
        "body",
        "jsep",
        "id",
        "plugin",
        "candidate",
        "candidates",
        "request",
        "room",
        "ptype",
        "type",
        "sdp",
        "completed",
        "display",
        "secret",
        "pin",
    ];
    match rng.random_range(0..if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>() >> rng.random_range(0..64)),
        3 => json!(rng.random::<f64>() * 1e6),
        4 => {
            let pool = [
                "create",
                "attach",
                "message",
                "trickle",
                "keepalive",
                "info",
                "offer",
                "answer",
                "v=0\r\n",
                "janus.plugin.videoroom",
                "join",
                "list",
                "publisher",
                "",
                "\u{0}",
                "é",
                "1234",
            ];
            json!(pool[rng.random_range(0..pool.len())])
        }
        5 | 6 => {
            let mut m = Map::new();
            for _ in 0..rng.random_range(0..6) {
                let k = keys[rng.random_range(0..keys.len())];
                m.insert(k.to_owned(), random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => Value::Array((0..rng.random_range(0..4)).map(|_| random_value(rng, depth + 1)).collect()),
    }
}

fn exercise(bytes: &[u8]) {
    for transport in [Transport::Ws, Transport::Http] {
        match parse(bytes, transport, None) {
            Err(e) => {
                assert!(
                    CORE_CODES.contains(&e.error.code.code()) || e.error.code.code() == 467,
                    "unexpected code {:?} for {:?}",
                    e.error,
                    String::from_utf8_lossy(bytes)
                );
                assert!(!e.error.reason.is_empty());
            }
            Ok(env) => {
                let _ = env.attach();
                let _ = env.trickle();
                if let Ok(m) = env.message() {
                    let _ = parse_request(&m.body, shared::janus::videoroom::Policy::new(Some("key"), true, false));
                }
            }
        }
    }
}

#[test]
fn random_json_never_panics_and_always_maps_to_janus_errors() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for _ in 0..20_000 {
        let mut v = random_value(&mut rng, 0);
        // Often make it look like a real request so deeper paths run.
        if rng.random_bool(0.7) {
            if let Value::Object(m) = &mut v {
                m.insert("transaction".into(), json!("t"));
                m.entry("janus").or_insert(json!("message"));
            }
        }
        exercise(v.to_string().as_bytes());
    }
}

#[test]
fn mutated_valid_requests_never_panic() {
    let seeds = [
        json!({"janus": "message", "transaction": "t", "session_id": 1, "handle_id": 2,
            "body": {"request": "join", "room": 1234, "ptype": "publisher", "display": "x"},
            "jsep": {"type": "offer", "sdp": "v=0\r\n"}}),
        json!({"janus": "trickle", "transaction": "t", "session_id": 1, "handle_id": 2,
            "candidates": [{"sdpMid": "0", "sdpMLineIndex": 0, "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}, {"completed": true}]}),
        json!({"janus": "message", "transaction": "t", "session_id": 1, "handle_id": 2,
            "body": {"request": "create", "room": 7, "publishers": 3, "videocodec": "vp8,h264", "allowed": ["a"]}}),
        json!({"janus": "create", "transaction": "t", "id": 99}),
    ];
    let mut rng = StdRng::seed_from_u64(42);
    for _ in 0..20_000 {
        let mut bytes = seeds[rng.random_range(0..seeds.len())].to_string().into_bytes();
        mutate(&mut rng, &mut bytes, false);
        exercise(&bytes);
    }
}

#[test]
fn deeply_nested_input_is_refused_without_overflowing_the_stack() {
    let deep = "[".repeat(100_000);
    exercise(deep.as_bytes());
    let deep_obj = format!("{{\"janus\":\"create\",\"transaction\":\"t\",\"x\":{}}}", "[".repeat(50_000));
    exercise(deep_obj.as_bytes());
}
