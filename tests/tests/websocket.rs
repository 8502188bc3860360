//! The WebSocket transport: subprotocol negotiation, resilience to bad input, ownership of
//! session events, claim, what closing a socket does, and the heartbeat.

use portunus_tests::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A raw WebSocket handshake; returns the socket and the response head.
fn raw_handshake(addr: &str, protocols: Option<&str>) -> (TcpStream, String) {
    raw_handshake_with_key(addr, protocols, "dGhlIHNhbXBsZSBub25jZQ==")
}

fn raw_handshake_with_key(addr: &str, protocols: Option<&str>, key: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(p) = protocols {
        req.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (s, String::from_utf8_lossy(&head).to_lowercase())
}

fn ws_addr(server: &TestServer) -> String {
    server.ws_url.trim_start_matches("ws://").trim_end_matches('/').to_owned()
}

#[test]
fn handshake_without_janus_protocol_is_refused_with_a_reason() {
    let server = TestServer::start();
    let addr = ws_addr(&server);
    for offered in [None, Some("chat, superchat")] {
        let (mut s, head) = raw_handshake(&addr, offered);
        assert!(head.starts_with("http/1.1 400"), "expected 400, got {head}");
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        assert!(body.contains("janus-protocol"), "the refusal says what is missing: {body}");
    }
    // Offered among others, janus-protocol is accepted and is the only one echoed.
    let (_s, head) = raw_handshake(&addr, Some("foo, janus-protocol, bar"));
    assert!(head.starts_with("http/1.1 101"), "{head}");
    let echoed: Vec<&str> = head.lines().filter(|l| l.starts_with("sec-websocket-protocol:")).collect();
    assert_eq!(echoed, vec!["sec-websocket-protocol: janus-protocol"]);
}

#[actix_web::test]
async fn bad_input_gets_errors_and_the_socket_keeps_working() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    for junk in [
        "not json",
        "[1,2]",
        "5",
        "null",
        "\"s\"",
        "{}",
        "{\"janus\":5,\"transaction\":\"x\"}",
        "{\"janus\":\"nope\",\"transaction\":\"x\"}",
    ] {
        ws.send_text(junk).await;
        let r = ws.recv().await;
        assert_eq!(r["janus"], "error", "{junk} -> {r}");
    }
    // Binary frames are read like text frames.
    assert_eq!(ws.request(json!({"janus": "ping"})).await["janus"], "pong");
    // An oversized message gets a clear error, not a dropped connection.
    let big = format!("{{\"janus\":\"ping\",\"transaction\":\"big\",\"pad\":\"{}\"}}", "x".repeat((1 << 20) + 10));
    ws.send_text(big).await;
    let r = ws.recv().await;
    assert_eq!(r["error"]["code"], 450, "{r}");
    assert!(r["error"]["reason"].as_str().unwrap().contains("too large"));
    assert_eq!(ws.request(json!({"janus": "ping"})).await["janus"], "pong");
}

#[actix_web::test]
async fn back_to_back_requests_each_get_exactly_one_reply() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let n = 50;
    for i in 0..n {
        ws.send(&json!({"janus": "keepalive", "session_id": sid, "transaction": format!("k{i}")})).await;
    }
    let mut seen = std::collections::HashSet::new();
    for _ in 0..n {
        let r = ws.recv().await;
        assert_eq!(r["janus"], "ack");
        assert_eq!(r["session_id"], sid);
        assert!(seen.insert(r["transaction"].as_str().unwrap().to_owned()), "duplicate reply {r}");
    }
    assert!(ws.try_recv(Duration::from_millis(300)).await.is_none(), "no extra replies");
}

/// Joins `handle` to `room` and returns the participant id from `joined`.
async fn join(ws: &mut WsClient, sid: u64, h: u64, room: u64, display: &str) -> Value {
    ws.message(sid, h, json!({"request": "join", "room": room, "ptype": "publisher", "display": display})).await;
    let j = ws.expect("joined", |m| m["plugindata"]["data"]["videoroom"] == "joined").await;
    j["plugindata"]["data"]["id"].clone()
}

#[actix_web::test]
async fn events_go_to_the_connection_that_owns_the_session_and_move_on_claim() {
    let server = TestServer::start();
    let mut a = WsClient::connect(&server.ws_url).await;
    let mut other = WsClient::connect(&server.ws_url).await;
    let sid = a.create_session().await;
    let h = a.attach(sid).await;
    // A request sent on another connection: its event still goes to the owner (Janus does this).
    let ack = other
        .request(json!({"janus": "message", "session_id": sid, "handle_id": h,
        "body": {"request": "join", "room": 1234, "ptype": "publisher", "display": "x"}}))
        .await;
    assert_eq!(ack["janus"], "ack");
    a.expect("joined on the owner", |m| m["plugindata"]["data"]["videoroom"] == "joined").await;
    assert!(other.try_recv(Duration::from_millis(300)).await.is_none());
    // A second connection claims the session; from then on events go there.
    let mut b = WsClient::connect(&server.ws_url).await;
    let claimed = b.request(json!({"janus": "claim", "session_id": sid})).await;
    assert_eq!(claimed, json!({"janus": "success", "session_id": sid, "transaction": claimed["transaction"]}));
    b.request(json!({"janus": "message", "session_id": sid, "handle_id": h, "body": {"request": "leave"}})).await;
    b.expect("leaving on the claimer", |m| m["plugindata"]["data"]["leaving"] == "ok").await;
    assert!(a.try_recv(Duration::from_millis(300)).await.is_none(), "the old owner gets nothing more");
    // Closing the old owner's socket no longer destroys the claimed session.
    a.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.request(json!({"janus": "keepalive", "session_id": sid})).await["janus"], "ack");
}

#[actix_web::test]
async fn closing_a_socket_destroys_its_sessions_and_the_room_hears_it() {
    let server = TestServer::start();
    let mut a = WsClient::connect(&server.ws_url).await;
    let mut watcher = WsClient::connect(&server.ws_url).await;
    let (sa, sw) = (a.create_session().await, watcher.create_session().await);
    let (ha, hw) = (a.attach(sa).await, watcher.attach(sw).await);
    join(&mut watcher, sw, hw, 1234, "watcher").await;
    let id = join(&mut a, sa, ha, 1234, "leaver").await;
    a.close().await;
    let left = watcher.expect("leaving", |m| m["plugindata"]["data"]["leaving"].is_u64()).await;
    assert_eq!(left["plugindata"]["data"]["leaving"], id);
    let r = watcher.request(json!({"janus": "keepalive", "session_id": sa})).await;
    assert_eq!(r["error"]["code"], 458, "the closed socket's session is gone: {r}");
}

#[actix_web::test]
async fn with_a_reclaim_window_a_new_socket_can_claim_and_gets_the_queued_events() {
    let mut cfg = test_config();
    cfg.reclaim_timeout = 3;
    let server = TestServer::with(cfg);
    let mut a = WsClient::connect(&server.ws_url).await;
    let sid = a.create_session().await;
    let h = a.attach(sid).await;
    a.close().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // An event produced while nobody listens waits in the mailbox.
    let http = HttpClient::new(&server.base_url);
    let ack = http.message(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    assert_eq!(ack["janus"], "ack");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut b = WsClient::connect(&server.ws_url).await;
    let (reply, _) = b.call(json!({"janus": "claim", "session_id": sid})).await;
    assert_eq!(reply["janus"], "success");
    b.expect("the queued joined event", |m| m["plugindata"]["data"]["videoroom"] == "joined").await;
    // Unclaimed, a session is reaped once the window (counted from the close) has passed.
    let c = WsClient::connect(&server.ws_url).await;
    let mut c = c;
    let sid2 = c.create_session().await;
    c.close().await;
    let closed_at = Instant::now();
    loop {
        let r = b.request(json!({"janus": "keepalive", "session_id": sid2})).await;
        if r["janus"] == "error" {
            assert_eq!(r["error"]["code"], 458);
            break;
        }
        assert!(closed_at.elapsed() < Duration::from_secs(6), "session outlived its reclaim window");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(closed_at.elapsed() >= Duration::from_millis(2500), "reaped before the window ended");
}

#[test]
fn a_silent_peer_is_pinged_then_dropped() {
    let mut cfg = test_config();
    cfg.ws_ping_interval = 1;
    cfg.ws_client_timeout = 2;
    let server = TestServer::with(cfg);
    let (mut s, head) = raw_handshake(&ws_addr(&server), Some("janus-protocol"));
    assert!(head.starts_with("http/1.1 101"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut frames = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => frames.extend_from_slice(&buf[..n]),
        }
        // A close frame (opcode 8) ends the test; we never answer pings.
        if frames.chunks(1).any(|b| b[0] == 0x88) {
            break;
        }
    }
    assert!(frames.first() == Some(&0x89), "the server pings first: {frames:?}");
    assert!(frames.contains(&0x88), "then closes the connection: {frames:?}");
    assert!(started.elapsed() < Duration::from_secs(6));
}

/// An asynchronous request's ack and event leave at once: the listener disables Nagle's
/// algorithm, without which the event (the second small write) waited for the client's delayed
/// ACK of the ack, ~40 ms per request on Linux. The bound is far from both.
#[actix_web::test]
async fn the_event_after_an_ack_is_not_held_back() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let mut took = Vec::new();
    for i in 0..15 {
        // A handle that left cannot join again (Janus: "create a new handle").
        let h = ws.attach(sid).await;
        let t = Instant::now();
        join(&mut ws, sid, h, 1234, &format!("p{i}")).await;
        let left = ws.message_event(sid, h, json!({"request": "leave"})).await;
        assert_eq!(left["plugindata"]["data"]["leaving"], "ok", "{left}");
        took.push(t.elapsed());
    }
    took.sort();
    assert!(took[took.len() / 2] < Duration::from_millis(25), "join+leave round trips: {took:?}");
}

/// A reply that announces an event (a plugin request's `ack`, a `detach`'s `success`) leaves
/// in the same write as the event: the first read after each request finds both frames. On
/// loopback each write is a `send` whose delivery cost half of the gateway's CPU in the
/// signaling benchmark. The reply is held for `ws_reply_hold_ms` at most, so a slow event may
/// miss it: most requests, not all, must find both.
#[test]
fn a_reply_and_the_event_it_announces_leave_in_one_write() {
    // Held longer than the default 2 ms, so that a debug build's cluster (an event there is
    // three Redis round trips behind its reply) finds the event in time even on a busy machine.
    let mut cfg = test_config();
    cfg.ws_reply_hold_ms = 50;
    let (together, asked) = replies_with_their_event(cfg);
    assert!(together * 4 >= asked * 3, "only {together} of {asked} replies left in the same write as their event");
    // `ws_reply_hold_ms = 0` writes each reply at once, as Janus: the event comes in a read of
    // its own, unless the client was slower to read than the node to answer.
    let mut cfg = test_config();
    cfg.ws_reply_hold_ms = 0;
    let (together, asked) = replies_with_their_event(cfg);
    assert!(together * 2 <= asked, "{together} of {asked} replies left with their event without a hold");
}

/// How many of 30 replies that announce an event (join, leave, detach) came in the same read
/// as their event.
fn replies_with_their_event(cfg: shared::config::Config) -> (usize, usize) {
    let server = TestServer::with(cfg);
    let (mut s, head) = raw_handshake(&ws_addr(&server), Some("janus-protocol"));
    assert!(head.starts_with("http/1.1 101"), "{head}");
    let call = |s: &mut TcpStream, req: Value| -> Vec<Value> {
        s.write_all(&client_frame(0x1, req.to_string().as_bytes())).unwrap();
        read_frames(s)
    };
    let created = call(&mut s, json!({"janus": "create", "transaction": "c"}));
    let sid = created[0]["data"]["id"].as_u64().unwrap_or_else(|| panic!("{created:?}"));
    let (mut together, mut asked) = (0, 0);
    for i in 0..10 {
        let attached = call(
            &mut s,
            json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom", "transaction": "a"}),
        );
        let h = attached[0]["data"]["id"].as_u64().unwrap_or_else(|| panic!("{attached:?}"));
        let body = json!({"request": "join", "room": 1234, "ptype": "publisher", "display": format!("p{i}")});
        let requests = [
            (
                json!({"janus": "message", "session_id": sid, "handle_id": h, "body": body, "transaction": "j"}),
                "joined",
            ),
            (
                json!({"janus": "message", "session_id": sid, "handle_id": h, "body": {"request": "leave"}, "transaction": "l"}),
                "left",
            ),
            (json!({"janus": "detach", "session_id": sid, "handle_id": h, "transaction": "d"}), "detached"),
        ];
        for (req, what) in requests {
            let mut got = call(&mut s, req);
            let first = got[0]["janus"].clone();
            assert!(first == "ack" || first == "success", "{what}: the reply comes first: {got:?}");
            asked += 1;
            if got.len() >= 2 {
                together += 1;
            }
            // The event, if it did not come with the reply.
            while got.len() < 2 {
                got.extend(read_frames(&mut s));
            }
            let event = &got[1];
            let named = event["janus"] == "detached"
                || event["plugindata"]["data"]["videoroom"] == "joined"
                || event["plugindata"]["data"]["leaving"] == "ok";
            assert!(named, "{what}: then its event: {got:?}");
        }
    }
    eprintln!("{together} of {asked} replies left with their event");
    (together, asked)
}

/// The text frames one `read` returns (unmasked server frames, lengths up to 64 KiB), each as
/// JSON; reads again only while a frame is incomplete.
fn read_frames(s: &mut TcpStream) -> Vec<Value> {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = s.read(&mut buf).expect("a frame within the read timeout");
        assert!(n > 0, "the server closed the connection");
        got.extend_from_slice(&buf[..n]);
        let mut frames = Vec::new();
        let mut at = 0;
        while got.len() >= at + 2 {
            let (len, start) = match got[at + 1] & 0x7f {
                126 if got.len() >= at + 4 => (u16::from_be_bytes([got[at + 2], got[at + 3]]) as usize, at + 4),
                126 => break,
                127 => panic!("a frame over 64 KiB"),
                l => (l as usize, at + 2),
            };
            if got.len() < start + len {
                break;
            }
            assert_eq!(got[at] & 0x0f, 0x1, "a text frame");
            frames.push(serde_json::from_slice(&got[start..start + len]).expect("JSON"));
            at = start + len;
        }
        if at == got.len() {
            return frames;
        }
    }
}

/// A masked client frame (RFC 6455 §5.3) with `opcode` and a payload up to 64 KiB.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode];
    match u16::try_from(payload.len()) {
        Ok(n) if n < 126 => f.push(0x80 | n as u8),
        Ok(n) => {
            f.push(0x80 | 126);
            f.extend_from_slice(&n.to_be_bytes());
        }
        Err(_) => panic!("a client frame over 64 KiB"),
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads until the server's close frame; returns its status code.
fn read_close_code(s: &mut TcpStream) -> Option<u16> {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        if let Some(i) = got.iter().position(|b| *b == 0x88) {
            if got.len() >= i + 4 {
                return Some(u16::from_be_bytes([got[i + 2], got[i + 3]]));
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn the_websocket_protocol_is_kept_to_the_letter() {
    let server = TestServer::start();
    let addr = ws_addr(&server);
    // An upgrade without a proper key (RFC 6455 §4.2.1: 16 bytes, base64) is refused.
    for key in ["", "not base64 at all!!", "dGhlIHNhbXBsZQ=="] {
        let (_s, head) = raw_handshake_with_key(&addr, Some("janus-protocol"), key);
        assert!(head.starts_with("http/1.1 400"), "key {key:?}: {head}");
    }
    // A text frame that is not UTF-8 is closed with 1007 (invalid frame payload data).
    let (mut s, head) = raw_handshake(&addr, Some("janus-protocol"));
    assert!(head.starts_with("http/1.1 101"), "{head}");
    s.write_all(&client_frame(0x1, &[0xff, 0xfe, 0xfd])).unwrap();
    assert_eq!(read_close_code(&mut s), Some(1007));
    // After the close handshake the server closes the TCP connection at once.
    let (mut s, _) = raw_handshake(&addr, Some("janus-protocol"));
    s.write_all(&client_frame(0x8, &1000u16.to_be_bytes())).unwrap();
    assert_eq!(read_close_code(&mut s), Some(1000), "the server answers the close");
    let answered = Instant::now();
    let mut rest = [0u8; 64];
    let end = s.read(&mut rest);
    let lingered = answered.elapsed();
    eprintln!("TCP closed {} ms after the close handshake", lingered.as_millis());
    assert!(matches!(end, Ok(0)), "then the connection ends: {end:?}");
    assert!(lingered < Duration::from_millis(200), "the connection lingered {lingered:?}");
}
