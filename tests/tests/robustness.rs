//! Malformed input and limits: every message gets exactly one Janus reply, the connection
//! survives, and limits answer with clear errors. A PeerConnection takes at most 25 remote
//! candidates, as libnice under Janus does, so a client cannot make the node send ICE checks
//! to as many addresses as it names; a publisher's offer has 64 m-lines at most, and a
//! subscription 512.

use portunus_tests::peer::TestPublisher;
use portunus_tests::videoroom::join_as_publisher;
use portunus_tests::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;
use shared::testing::fuzz::mutate;
use std::time::Duration;

#[actix_web::test]
async fn mutated_requests_over_websocket_each_get_one_reply_and_the_socket_survives() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let hid = ws.attach(sid).await;
    let seeds = [
        json!({"janus": "message", "transaction": "m", "session_id": sid, "handle_id": hid,
            "body": {"request": "listparticipants", "room": 1234}}),
        json!({"janus": "trickle", "transaction": "m", "session_id": sid, "handle_id": hid, "candidate": {"completed": true}}),
        json!({"janus": "keepalive", "transaction": "m", "session_id": sid}),
        json!({"janus": "message", "transaction": "m", "session_id": sid, "handle_id": hid,
            "body": {"request": "exists", "room": 1234}, "jsep": {"type": "offer", "sdp": "v=0"}}),
    ];
    let mut rng = StdRng::seed_from_u64(7);
    for i in 0..400 {
        let mut bytes = seeds[i % seeds.len()].to_string().into_bytes();
        mutate(&mut rng, &mut bytes, true);
        // Invalid UTF-8 cannot go in a text frame; a real client could not send it either.
        let Ok(text) = String::from_utf8(bytes) else { continue };
        ws.send_text(text.clone()).await;
        let marker = format!("sync{i}");
        ws.send(&json!({"janus": "ping", "transaction": marker})).await;
        let mut replies = 0;
        loop {
            let m = ws.recv().await;
            if m["transaction"] == json!(marker) {
                break;
            }
            match m["janus"].as_str() {
                Some("error" | "success" | "ack" | "pong" | "server_info") => replies += 1,
                _ => {} // Events caused by an earlier (valid) mutation.
            }
        }
        assert_eq!(replies, 1, "exactly one reply to {text:?}");
    }
}

#[actix_web::test]
async fn limits_answer_with_clear_errors() {
    let mut cfg = test_config();
    cfg.max_sessions_per_connection = 2;
    cfg.max_handles_per_session = 2;
    cfg.max_sessions = 4;
    let server = TestServer::with(cfg);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    ws.create_session().await;
    let r = ws.request(json!({"janus": "create"})).await;
    assert_eq!(r["error"]["code"], 472, "{r}");
    assert!(r["error"]["reason"].as_str().unwrap().contains("limit 2"));
    ws.attach(sid).await;
    ws.attach(sid).await;
    let r = ws.request(json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom"})).await;
    assert_eq!(r["error"]["code"], 461, "{r}");
    // The deployment-wide limit.
    let http = HttpClient::new(&server.base_url);
    http.create_session().await;
    http.create_session().await;
    let r = http.post("", json!({"janus": "create"})).await;
    assert_eq!(r["error"]["code"], 472, "{r}");
}

#[actix_web::test]
async fn metrics_health_and_readiness_are_served_on_the_admin_port() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    ws.attach(sid).await;
    ws.request(json!({"janus": "bogus", "session_id": sid})).await;
    let client = awc::Client::new();
    let mut r = client.get(format!("{}/metrics", server.admin_url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = String::from_utf8(r.body().await.unwrap().to_vec()).unwrap();
    for needle in [
        "portunus_sessions 1",
        "portunus_handles 1",
        "portunus_ws_connections 1",
        r#"portunus_requests_total{result="ok",verb="create"} 1"#,
        r#"portunus_requests_total{result="453",verb="unknown"} 1"#,
        "portunus_request_duration_seconds_bucket",
    ] {
        assert!(text.contains(needle), "metrics lack {needle:?}:\n{text}");
    }
    for path in ["/healthz", "/readyz"] {
        let r = client.get(format!("{}{path}", server.admin_url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}

/// 40 candidates in a publisher's offer and 40 more trickled, each at a UDP socket of the
/// test's, none of them the publisher's own: the node's ICE agent checks 25 of them at most
/// (`media-node/src/media/candidates.rs`), and does check some.
#[actix_web::test]
async fn a_peer_connection_checks_at_most_25_remote_candidates() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let (h, _) = join_as_publisher(&mut ws, sid, "many candidates").await;
    let targets: Vec<std::net::UdpSocket> = (0..80)
        .map(|_| {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("a target socket");
            s.set_nonblocking(true).expect("non-blocking");
            s
        })
        .collect();
    let line = |s: &std::net::UdpSocket| {
        let port = s.local_addr().expect("bound").port();
        format!("candidate:{port} 1 udp 2130706431 127.0.0.1 {port} typ host")
    };
    let (publisher, offer) = TestPublisher::offer().await;
    // The offer's own candidates replaced by the first 40 targets (in its first m-section).
    let ours: String = targets[..40].iter().map(|s| format!("a={}\r\n", line(s))).collect();
    let mut sdp = String::new();
    let mut placed = false;
    for l in offer.split_inclusive('\n') {
        if l.starts_with("a=candidate:") {
            if !placed {
                sdp.push_str(&ours);
                placed = true;
            }
            continue;
        }
        sdp.push_str(l);
    }
    assert!(placed, "the offer had candidates to replace");
    let (ack, configured) = ws
        .call_then_next(json!({"janus": "message", "session_id": sid, "handle_id": h,
            "body": {"request": "publish"}, "jsep": {"type": "offer", "sdp": sdp, "trickle": true}}))
        .await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    assert_eq!(configured["plugindata"]["data"]["configured"], "ok", "{configured}");
    let trickled: Vec<_> =
        targets[40..].iter().map(|s| json!({"sdpMid": "0", "sdpMLineIndex": 0, "candidate": line(s)})).collect();
    let ack = ws.request(json!({"janus": "trickle", "session_id": sid, "handle_id": h, "candidates": trickled})).await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    // Checks go out every few tens of milliseconds: 80 would all be reached in this time.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut buf = [0u8; 1500];
    let checked = targets.iter().filter(|s| s.recv_from(&mut buf).is_ok()).count();
    eprintln!("{checked} of 80 candidates checked");
    assert!(checked > 0, "the node checks the candidates it takes");
    assert!(checked <= 25, "{checked} candidates checked: more than libnice's 25");
    publisher.close().await;
}

/// An offer of `n` audio m-lines (no ICE credentials: only the limit is looked at first).
fn offer_with_mlines(n: usize) -> String {
    let mut sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n".to_owned();
    for mid in 0..n {
        sdp += &format!("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n");
    }
    sdp
}

/// A publisher's offer has 64 m-lines at most: one with 65 is refused before the node builds
/// anything for it (437, the VideoRoom's invalid SDP), and the handle can publish after.
#[actix_web::test]
async fn an_offer_with_more_than_64_m_lines_is_refused() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let (h, _) = join_as_publisher(&mut ws, sid, "many m-lines").await;
    let mut publish = |sdp: String| {
        json!({"janus": "message", "session_id": sid, "handle_id": h,
            "body": {"request": "publish"}, "jsep": {"type": "offer", "sdp": sdp}})
    };
    let (ack, refused) = ws.call_then_next(publish(offer_with_mlines(65))).await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    let data = &refused["plugindata"]["data"];
    assert_eq!(data["error_code"], 437, "{refused}");
    assert_eq!(data["error"], "Too many m-lines (65, at most 64)", "{refused}");
    // 64 are not refused for their number (this offer fails later: it has no ICE credentials).
    let (_, reply) = ws.call_then_next(publish(offer_with_mlines(64))).await;
    assert!(!reply["plugindata"]["data"]["error"].as_str().unwrap_or("").starts_with("Too many m-lines"), "{reply}");
    // And a real offer publishes.
    let (mut publisher, offer) = TestPublisher::offer().await;
    let (_, configured) = ws.call_then_next(publish(offer)).await;
    assert_eq!(configured["plugindata"]["data"]["configured"], "ok", "{configured}");
    publisher.accept(configured["jsep"]["sdp"].as_str().expect("an answer")).await;
    assert!(publisher.connected(Duration::from_secs(10)).await, "published after the refusals");
    publisher.close().await;
}

/// A subscription has 512 m-lines at most, however often a request names a stream: a join
/// naming a two-stream feed 300 times is refused (430), and so is a `subscribe` that would take
/// a subscription past it; one within it goes through.
#[actix_web::test]
async fn a_subscription_past_512_m_lines_is_refused() {
    let server = TestServer::start();
    let publisher = portunus_tests::videoroom::publishing(&server.ws_url).await;
    let feed = publisher.feed;
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    let many: Vec<_> = (0..300).map(|_| json!({"feed": feed})).collect();
    let join = |streams: &Vec<serde_json::Value>| {
        json!({"janus": "message", "session_id": sid, "handle_id": h,
            "body": {"request": "join", "room": 1234, "ptype": "subscriber", "streams": streams}})
    };
    let (ack, _) = ws.call(join(&many)).await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    let refused = ws.expect_skipping_core("the join refused", |m| m["sender"] == h).await;
    assert_eq!(refused["plugindata"]["data"]["error_code"], 430, "{refused}");
    assert_eq!(refused["plugindata"]["data"]["error"], "Too many streams (600, at most 512)", "{refused}");
    ws.call(join(&vec![json!({"feed": feed})])).await;
    let attached = ws.expect_skipping_core("attached", |m| m["sender"] == h).await;
    assert_eq!(attached["plugindata"]["data"]["videoroom"], "attached", "{attached}");
    let more: Vec<_> = (0..256).map(|_| json!({"feed": feed})).collect();
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": h,
        "body": {"request": "subscribe", "streams": more}}))
        .await;
    let refused = ws.expect_skipping_core("the subscribe refused", |m| m["sender"] == h).await;
    assert_eq!(refused["plugindata"]["data"]["error"], "Too many streams (514, at most 512)", "{refused}");
}
