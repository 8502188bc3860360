//! Publishing real media: a webrtc-rs client publishes Opus and VP8 through the VideoRoom with
//! a real DTLS-SRTP PeerConnection on loopback; the room and the client see what Janus shows.

use portunus_tests::peer::{TestPublisher, TestSubscriber};
use portunus_tests::videoroom::{join_as_publisher, publish_offer, publish_via, publishing, received_while_sending};
use portunus_tests::videoroom::{subscribe_via, Publishing};
use portunus_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

#[actix_web::test]
async fn a_publisher_gets_an_answer_goes_up_and_the_room_sees_it() {
    let server = TestServer::start();
    let mut watcher = WsClient::connect(&server.ws_url).await;
    let sw = watcher.create_session().await;
    let hw = watcher.attach(sw).await;
    watcher
        .message_event(sw, hw, json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "watcher"}))
        .await;

    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    ws.message_event(
        sid,
        h,
        json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "videoroom_media_ws-publisher"}),
    )
    .await;
    let (mut publisher, offer) = TestPublisher::offer().await;
    let ack = ws
        .request(json!({"janus": "message", "session_id": sid, "handle_id": h,
            "body": {"request": "publish"}, "jsep": {"type": "offer", "sdp": offer}}))
        .await;
    assert_eq!(ack["janus"], "ack");
    let configured = ws.recv().await;
    assert_golden("videoroom.configured_event.json", &configured);
    let answer = configured["jsep"]["sdp"].as_str().unwrap().to_owned();
    assert!(answer.contains("a=candidate:"), "half-trickle: the answer carries the server's candidates");
    publisher.accept(&answer).await;
    assert!(publisher.connected(Duration::from_secs(10)).await, "DTLS-SRTP up");
    let up = ws.recv().await;
    assert_golden("event.webrtcup.json", &up);
    // Media flows: Janus's `media` event, per m-line, once.
    for _ in 0..50 {
        publisher.send().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut media = Vec::new();
    while let Some(m) = ws.try_recv(Duration::from_millis(500)).await {
        media.push(m);
    }
    let mut kinds: Vec<String> = media.iter().map(|m| m["type"].as_str().unwrap_or_default().to_owned()).collect();
    kinds.sort();
    assert_eq!(kinds, vec!["audio", "video"], "{media:?}");
    for m in &media {
        let golden = if m["type"] == "audio" { "event.media_audio.json" } else { "event.media_video.json" };
        assert_golden(golden, m);
    }
    // Silent for Janus's no_media_timer (1 s): `receiving: false` per m-line; media again:
    // `receiving: true`.
    for receiving in [false, true] {
        if receiving {
            for _ in 0..10 {
                publisher.send().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let mut kinds = Vec::new();
        for _ in 0..2 {
            let m = ws.recv().await;
            assert_eq!((m["janus"].as_str(), m["receiving"].as_bool()), (Some("media"), Some(receiving)), "{m}");
            kinds.push(m["type"].as_str().unwrap_or_default().to_owned());
        }
        kinds.sort();
        assert_eq!(kinds, vec!["audio", "video"]);
    }
    // The other participant is told of the new publisher, as Janus does.
    let publishers = watcher.recv().await;
    assert_golden("videoroom.publishers_event.json", &publishers);
    let parts = watcher.message(sw, hw, json!({"request": "listparticipants", "room": 1234})).await;
    let me = parts["plugindata"]["data"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["display"] == "videoroom_media_ws-publisher")
        .cloned()
        .unwrap();
    assert_eq!(me["publisher"], true);
    // Unpublish: `unpublished: ok`, the PeerConnection closes (`hangup`, "Close PC"), the
    // others hear the publisher's id.
    let (_, early) =
        ws.call(json!({"janus": "message", "session_id": sid, "handle_id": h, "body": {"request": "unpublish"}})).await;
    // The publisher has been silent a while: `media` events may come and go meanwhile.
    let mut got: Vec<Value> = early.into_iter().filter(|m| m["janus"] != "media").collect();
    while got.len() < 2 {
        let m = ws.recv().await;
        if m["janus"] != "media" {
            got.push(m);
        }
    }
    got.sort_by_key(|m| m["janus"].as_str().unwrap_or_default().to_owned());
    assert_golden("videoroom.unpublished_self_event.json", &got[0]);
    assert_golden("event.hangup.json", &got[1]);
    assert_golden("videoroom.unpublished_other_event.json", &watcher.recv().await);
    publisher.close().await;
}

#[actix_web::test]
async fn the_publisher_limit_and_bad_offers_are_refused_like_janus() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let admin = ws.attach(sid).await;
    ws.message(sid, admin, json!({"request": "create", "room": 77, "publishers": 1})).await;
    let mut peers = Vec::new();
    let mut results = Vec::new();
    for i in 0..2 {
        let h = ws.attach(sid).await;
        ws.message_event(
            sid,
            h,
            json!({"request": "join", "room": 77, "ptype": "publisher", "display": format!("p{i}")}),
        )
        .await;
        let (p, offer) = TestPublisher::offer().await;
        peers.push(p);
        ws.message(sid, h, json!({"request": "publish"})).await;
        let no_jsep = ws.recv().await;
        assert_eq!(no_jsep["plugindata"]["data"]["error_code"], 437, "{no_jsep}");
        let ack = ws
            .request(json!({"janus": "message", "session_id": sid, "handle_id": h,
            "body": {"request": "publish"}, "jsep": {"type": "offer", "sdp": offer}}))
            .await;
        assert_eq!(ack["janus"], "ack");
        let mut ev = ws.recv().await;
        while ev["plugindata"].is_null() {
            ev = ws.recv().await; // core events of the first publisher (webrtcup, media)
        }
        results.push(ev);
    }
    assert_eq!(results[0]["plugindata"]["data"]["configured"], "ok");
    assert_eq!(results[1]["plugindata"]["data"]["error_code"], 432, "{}", results[1]);
    assert_eq!(results[1]["plugindata"]["data"]["error"], "Maximum number of publishers (1) reached");
    for p in peers {
        p.close().await;
    }
}

#[actix_web::test]
async fn a_subscriber_receives_the_publishers_media_starting_on_a_keyframe() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let (hp, feed) = join_as_publisher(&mut ws, sid, "videoroom_media_ws-publisher").await;
    let mut publisher = publish_via(&mut ws, sid, hp).await;

    // A subscriber on another connection (and session), multistream API.
    let mut sws = WsClient::connect(&server.ws_url).await;
    let ss = sws.create_session().await;
    let hs = sws.attach(ss).await;
    let attached = sws
        .message_event(
            ss,
            hs,
            json!({"request": "join", "room": 1234, "ptype": "subscriber", "streams": [{"feed": feed}]}),
        )
        .await;
    assert_golden("videoroom.attached_event.json", &attached);
    let (mut subscriber, answer) = TestSubscriber::answer(attached["jsep"]["sdp"].as_str().unwrap()).await;
    let ack = sws
        .request(json!({"janus": "message", "session_id": ss, "handle_id": hs,
        "body": {"request": "start"}, "jsep": {"type": "answer", "sdp": answer}}))
        .await;
    assert_eq!(ack["janus"], "ack");
    assert_golden("videoroom.started_event.json", &sws.recv().await);
    // Publish for a while (the subscriber's PeerConnection comes up meanwhile: `webrtcup`); the subscriber gets audio and video, video from a keyframe on.
    let sender = async {
        for _ in 0..150 {
            publisher.send().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let receiver = async {
        let (mut audio, mut video, mut first_video_key) = (0usize, 0usize, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while audio < 20 || video < 20 {
            match tokio::time::timeout_at(deadline, subscriber.packets.recv()).await {
                Ok(Some((kind, p))) => {
                    if kind == "video" {
                        if first_video_key.is_none() {
                            first_video_key = Some(p.payload.get(1).is_some_and(|b| b & 0x01 == 0));
                        }
                        assert_eq!(p.payload.len(), 904, "the publisher's payload, unchanged");
                        video += 1;
                    } else {
                        assert_eq!(&p.payload[..], &[0xf8u8; 80][..]);
                        audio += 1;
                    }
                }
                _ => break,
            }
        }
        (audio, video, first_video_key)
    };
    let (_, (audio, video, first_key)) = tokio::join!(sender, receiver);
    assert!(audio >= 20 && video >= 20, "received audio {audio}, video {video}");
    assert_eq!(first_key, Some(true), "video starts on a keyframe");
    assert_golden("event.webrtcup.json", &sws.recv().await);
    // The media plane's metrics saw it (the media node's admin port in a cluster, the gateway's
    // standalone). Other tests of this binary share the process's series: lower bounds only.
    let (status, text) = get_text(&format!("{}/metrics", server.media_admin_url())).await;
    assert_eq!(status, 200);
    let at_least = |series: &str, min: f64| {
        let v = metric(&text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
        assert!(v >= min, "{series} = {v}, expected >= {min}");
    };
    // Each stream counts in batches of 16: 20 audio and 20 video packets make at least 32.
    at_least("portunus_forwarded_packets_total", 32.0);
    at_least("portunus_forwarded_bytes_total", 16.0 * 904.0);
    at_least("portunus_publishers", 1.0);
    at_least("portunus_subscribers", 1.0);
    at_least(r#"portunus_peer_connections{role="subscriber",state="connected"}"#, 1.0);
    at_least(r#"portunus_peer_connections{role="publisher",state="connected"}"#, 1.0);
    at_least("portunus_node_rooms", 1.0);
    at_least("portunus_plis_sent_total", 1.0);
    for probe in ["healthz", "readyz"] {
        assert_eq!(get_text(&format!("{}/{probe}", server.media_admin_url())).await.0, 200, "{probe}");
    }
    // Leaving: `left`.
    let left = sws.message_event(ss, hs, json!({"request": "leave"})).await;
    assert_eq!(left["plugindata"]["data"]["left"], "ok", "{left}");
    subscriber.close().await;
    publisher.close().await;
}

#[actix_web::test]
async fn a_publisher_that_trickles_its_candidates_connects() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let (h, _) = join_as_publisher(&mut ws, sid, "trickler").await;
    let (mut publisher, offer) = TestPublisher::offer().await;
    // Send the offer without candidates, then trickle them (before and after the offer, as
    // browsers do) and end-of-candidates.
    let (lines, candidates): (Vec<&str>, Vec<&str>) = offer.lines().partition(|l| !l.starts_with("a=candidate:"));
    assert!(!candidates.is_empty());
    let bare = lines.join("\r\n") + "\r\n";
    let first = json!({"janus": "trickle", "session_id": sid, "handle_id": h,
        "candidate": {"sdpMid": "0", "sdpMLineIndex": 0, "candidate": candidates[0].trim_start_matches("a=")}});
    assert_eq!(ws.request(first).await["janus"], "ack");
    ws.request(json!({"janus": "message", "session_id": sid, "handle_id": h,
        "body": {"request": "publish"}, "jsep": {"type": "offer", "sdp": bare, "trickle": true}}))
        .await;
    let rest: Vec<_> = candidates[1..]
        .iter()
        .map(|c| json!({"sdpMid": "0", "sdpMLineIndex": 0, "candidate": c.trim_start_matches("a=")}))
        .chain(std::iter::once(json!({"completed": true})))
        .collect();
    let (ack, configured) =
        ws.call_then_next(json!({"janus": "trickle", "session_id": sid, "handle_id": h, "candidates": rest})).await;
    assert_eq!(ack["janus"], "ack");
    assert_eq!(configured["plugindata"]["data"]["configured"], "ok", "{configured}");
    publisher.accept(configured["jsep"]["sdp"].as_str().unwrap()).await;
    assert!(publisher.connected(Duration::from_secs(10)).await, "connected with trickled candidates");
    publisher.close().await;
}

#[actix_web::test]
async fn one_publisher_reaches_twenty_subscribers() {
    let server = TestServer::start();
    let Publishing { ws: _publisher_ws, feed, peer: mut publisher, .. } = publishing(&server.ws_url).await;
    let mut sws = WsClient::connect(&server.ws_url).await;
    let ss = sws.create_session().await;
    let mut subscribers = Vec::new();
    for _ in 0..20 {
        // Core events of the subscribers already set up (webrtcup) may arrive in between.
        let (att, _) = sws.call(json!({"janus": "attach", "session_id": ss, "plugin": "janus.plugin.videoroom"})).await;
        let h = att["data"]["id"].as_u64().unwrap();
        let (ack, _) = sws
            .call(json!({"janus": "message", "session_id": ss, "handle_id": h,
            "body": {"request": "join", "room": 1234, "ptype": "subscriber", "feed": feed}}))
            .await;
        assert_eq!(ack["janus"], "ack");
        let attached = sws.expect_skipping_core("attached", |m| m["sender"] == h).await;
        assert_eq!(attached["plugindata"]["data"]["warning"], "deprecated_api", "the legacy feed form: {attached}");
        let (sub, answer) = TestSubscriber::answer(attached["jsep"]["sdp"].as_str().unwrap()).await;
        let (ack, _) = sws
            .call(json!({"janus": "message", "session_id": ss, "handle_id": h,
            "body": {"request": "start"}, "jsep": {"type": "answer", "sdp": answer}}))
            .await;
        assert_eq!(ack["janus"], "ack");
        let started = sws.expect_skipping_core("started", |m| m["sender"] == h).await;
        assert_eq!(started["plugindata"]["data"]["started"], "ok");
        subscribers.push(sub);
    }
    let sender = async {
        for _ in 0..200 {
            publisher.send().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let receivers = futures_util::future::join_all(subscribers.iter_mut().map(|s| async move {
        let mut video = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while video < 30 {
            match tokio::time::timeout_at(deadline, s.packets.recv()).await {
                Ok(Some((kind, _))) if kind == "video" => video += 1,
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        video
    }));
    let (_, counts) = tokio::join!(sender, receivers);
    assert!(counts.iter().all(|&c| c >= 30), "every subscriber gets video: {counts:?}");
    for s in &subscribers {
        s.close().await;
    }
    publisher.close().await;
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// 100 join/publish/subscribe/leave cycles leave nothing behind: no socket, no task (peers,
/// forwarding loops, keyframe relays), nobody in the room.
#[actix_web::test]
async fn repeated_publish_subscribe_leave_cycles_leak_nothing() {
    // A hundred cycles as fast as the server answers: beyond any client's request rate.
    let mut cfg = test_config();
    cfg.rate_limit_per_connection = 0;
    let server = TestServer::with(cfg);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    // Warm up (lazily created runtime pieces), then measure.
    publish_subscribe_leave(&mut ws, sid).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds, tasks) = (open_fds(), server.alive_tasks());
    for _ in 0..100 {
        publish_subscribe_leave(&mut ws, sid).await;
    }
    // Closing is asynchronous on both sides; give it a moment to finish.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let settled = || open_fds() <= fds + 4 && server.alive_tasks() <= tasks + 4;
    while !settled() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(open_fds() <= fds + 4, "file descriptors grew from {fds} to {} over 100 cycles", open_fds());
    assert!(server.alive_tasks() <= tasks + 4, "tasks grew from {tasks} to {} over 100 cycles", server.alive_tasks());
    let (att, _) = ws.call(json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom"})).await;
    let h = att["data"]["id"].as_u64().unwrap();
    let (p, _) = ws
        .call(json!({"janus": "message", "session_id": sid, "handle_id": h,
        "body": {"request": "listparticipants", "room": 1234}}))
        .await;
    assert_eq!(p["plugindata"]["data"]["participants"], json!([]), "nobody is left in the room");
}

/// One publisher and one subscriber come, exchange media setup, and go.
async fn publish_subscribe_leave(ws: &mut WsClient, sid: u64) {
    {
        {
            // Events of the previous cycle (detached, hangup) may still be arriving: skip them.
            let (att, _) =
                ws.call(json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom"})).await;
            let hp = att["data"]["id"].as_u64().unwrap();
            ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hp,
                "body": {"request": "join", "room": 1234, "ptype": "publisher"}}))
                .await;
            let joined = ws.expect_skipping_core("joined", |m| m["sender"] == hp).await;
            let feed = joined["plugindata"]["data"]["id"].as_u64().unwrap();
            let (mut publisher, offer) = TestPublisher::offer().await;
            ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hp,
                "body": {"request": "publish"}, "jsep": {"type": "offer", "sdp": offer}}))
                .await;
            let configured = ws.expect_skipping_core("configured", |m| m["sender"] == hp).await;
            publisher.accept(configured["jsep"]["sdp"].as_str().unwrap()).await;
            assert!(publisher.connected(Duration::from_secs(10)).await);
            let (att, _) =
                ws.call(json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom"})).await;
            let hs = att["data"]["id"].as_u64().unwrap();
            ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs,
                "body": {"request": "join", "room": 1234, "ptype": "subscriber", "streams": [{"feed": feed}]}}))
                .await;
            let attached = ws.expect_skipping_core("attached", |m| m["sender"] == hs).await;
            let (sub, answer) = TestSubscriber::answer(attached["jsep"]["sdp"].as_str().unwrap()).await;
            ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs,
                "body": {"request": "start"}, "jsep": {"type": "answer", "sdp": answer}}))
                .await;
            ws.expect_skipping_core("started", |m| m["sender"] == hs).await;
            ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs, "body": {"request": "leave"}}))
                .await;
            ws.expect_skipping_core("left", |m| m["sender"] == hs).await;
            ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hp, "body": {"request": "leave"}}))
                .await;
            ws.expect_skipping_core("leaving", |m| m["sender"] == hp).await;
            ws.call(json!({"janus": "detach", "session_id": sid, "handle_id": hs})).await;
            ws.call(json!({"janus": "detach", "session_id": sid, "handle_id": hp})).await;
            sub.close().await;
            publisher.close().await;
        }
    }
}

/// A paused subscriber gets nothing; started again, it resumes on the keyframe its publisher's
/// layer kept (sent while it was paused, too long ago for its group to go out whole), then on a
/// fresh one asked for, its sequence unbroken.
#[actix_web::test]
async fn a_paused_subscriber_gets_nothing_until_it_starts_again_on_a_keyframe() {
    let server = TestServer::start();
    let Publishing { mut ws, sid, feed, peer: mut publisher, .. } = publishing(&server.ws_url).await;
    let (mut sub, hs) = subscribe_via(&mut ws, sid, feed).await;
    // What arrives while the publisher sends for `ms` milliseconds: (kind, keyframe, sequence).
    async fn flow(publisher: &mut TestPublisher, sub: &mut TestSubscriber, ms: u64) -> Vec<(String, bool, u16)> {
        let got = received_while_sending(&mut [publisher], sub, ms).await;
        got.into_iter()
            .map(|(k, p)| (k, p.payload.get(1).is_some_and(|b| b & 0x01 == 0), p.header.sequence_number))
            .collect()
    }
    // Keyframes only when it wants to or 200 ms after being asked.
    publisher.keyframes_only_when_asked(Duration::from_millis(200));
    publisher.keyframe_next();
    let before = flow(&mut publisher, &mut sub, 800).await;
    assert!(before.len() > 20, "flowing before the pause");
    let last_video = before.iter().rev().find(|(k, _, _)| k == "video").expect("video before the pause").2;
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs, "body": {"request": "pause"}})).await;
    let paused = ws.expect_skipping_core("paused", |m| m["sender"] == hs).await;
    assert_eq!(paused["plugindata"]["data"]["paused"], "ok");
    // A keyframe while it is paused, which the publisher's layer keeps.
    publisher.keyframe_next();
    assert!(flow(&mut publisher, &mut sub, 500).await.is_empty(), "nothing while paused");
    let asked = publisher.keyframe_requests();
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs, "body": {"request": "start"}})).await;
    let started = ws.expect_skipping_core("started", |m| m["sender"] == hs).await;
    assert_eq!(started["plugindata"]["data"]["started"], "ok");
    let again = flow(&mut publisher, &mut sub, 800).await;
    let video: Vec<_> = again.iter().filter(|(k, _, _)| k == "video").collect();
    assert!(video.len() > 2, "video resumes: {again:?}");
    // The kept keyframe at once, then the fresh one (the publisher's next keyframe): the
    // frames between would need the ones before them.
    assert!(video[0].1 && video[1].1, "video resumes on the kept keyframe, then the fresh one: {video:?}");
    // Seamless for the subscriber's jitter buffer: the sequence goes on where it stopped,
    // although the publisher sent ~60 packets meanwhile.
    assert_eq!(video[0].2, last_video.wrapping_add(1), "sequence numbers continue across the pause");
    assert!(publisher.keyframe_requests() > asked, "a fresh keyframe was asked for");
    let seqs: Vec<u16> = video.iter().map(|(_, _, s)| *s).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)), "no packet twice, none missing: {seqs:?}");
    sub.close().await;
    publisher.close().await;
}

/// The `a=candidate` lines of `sdp` as (address, port).
fn candidates(sdp: &str) -> Vec<(String, u16)> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .map(|c| {
            let f: Vec<&str> = c.split_whitespace().collect();
            (f[4].to_owned(), f[5].parse().unwrap())
        })
        .collect()
}

#[actix_web::test]
async fn media_stays_inside_the_configured_port_range() {
    let mut cfg = test_config();
    cfg.media_port_min = 42100;
    cfg.media_port_max = 42109;
    // The range itself, also when the suite runs on one port (which takes precedence).
    cfg.media_port = 0;
    let server = TestServer::with(cfg);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let (h, _) = join_as_publisher(&mut ws, sid, "ranged").await;
    let (mut publisher, answer) = publish_offer(&mut ws, sid, h).await;
    let cands = candidates(&answer);
    assert!(!cands.is_empty(), "{answer}");
    for (_, port) in &cands {
        assert!((42100..=42109).contains(port), "candidate port {port} outside 42100-42109");
    }
    publisher.accept(&answer).await;
    assert!(publisher.connected(Duration::from_secs(10)).await, "DTLS-SRTP up through the ranged port");
    publisher.close().await;
}

#[actix_web::test]
async fn behind_nat_the_answer_announces_the_public_address_even_if_stun_is_unreachable() {
    let mut cfg = test_config();
    // Still a loopback address, so nothing could leave the machine even if a peer tried it.
    cfg.public_ip = Some("127.0.0.9".into());
    // Nothing listens there: gathering gives up after its timeout and answers with host candidates.
    cfg.ice_servers = vec!["stun:127.0.0.1:3478".into()];
    let server = TestServer::with(cfg);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let (h, _) = join_as_publisher(&mut ws, sid, "natted").await;
    let (publisher, answer) = publish_offer(&mut ws, sid, h).await;
    let hosts: Vec<String> = candidates(&answer).into_iter().map(|(ip, _)| ip).collect();
    assert!(!hosts.is_empty(), "{answer}");
    assert!(hosts.iter().all(|ip| ip == "127.0.0.9"), "host candidates announce the public address: {hosts:?}");
    publisher.close().await;
}

/// Sends frames every `every` until the publisher's first keyframe is older than what a
/// publisher keeps for new subscribers (so a new subscriber must ask for one).
async fn outlast_the_kept_keyframe(publisher: &mut TestPublisher, every: Duration) {
    for _ in 0..=media_node::media::gop::GOP_FRAMES {
        publisher.send().await;
        tokio::time::sleep(every).await;
    }
}

/// Keyframes on demand: a subscriber coming up with no keyframe kept makes the server ask the
/// publisher for one, and a subscriber's own PLI (a decoder that lost its reference) is
/// relayed to the publisher, coalesced to about one per 300 ms per track, as Janus does.
#[actix_web::test]
async fn keyframe_requests_reach_the_publisher_coalesced() {
    let server = TestServer::start();
    let Publishing { mut ws, sid, feed, peer: mut publisher, .. } = publishing(&server.ws_url).await;
    // Its first keyframe goes out before anyone subscribes; the next only when asked.
    publisher.keyframes_only_when_asked(Duration::ZERO);
    outlast_the_kept_keyframe(&mut publisher, Duration::from_millis(2)).await;
    let (mut sub, _) = subscribe_via(&mut ws, sid, feed).await;
    for _ in 0..60 {
        publisher.send().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(sub.packets.try_recv().is_ok(), "media flows");
    assert!(publisher.keyframe_requests() >= 1, "the new subscriber's stream asked for a keyframe");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = publisher.keyframe_requests();
    for _ in 0..10 {
        assert_eq!(sub.request_keyframe().await, 1, "one video track");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let relayed = publisher.keyframe_requests() - before;
    // Ten PLIs in 200 ms: one at once, one after the 300 ms pause.
    assert!((1..=3).contains(&relayed), "{relayed} keyframe requests reached the publisher");
    sub.close().await;
    publisher.close().await;
}

/// A subscriber's keyframe request that shares its RTCP packet with transport-wide feedback
/// (which the node drops unparsed when it is alone) still reaches the publisher.
#[actix_web::test]
async fn a_keyframe_request_behind_transport_feedback_reaches_the_publisher() {
    let server = TestServer::start();
    let Publishing { mut ws, sid, feed, peer: mut publisher, .. } = publishing(&server.ws_url).await;
    publisher.keyframes_only_when_asked(Duration::ZERO);
    let (mut sub, _) = subscribe_via(&mut ws, sid, feed).await;
    for _ in 0..60 {
        publisher.send().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(sub.packets.try_recv().is_ok(), "media flows");
    // Past the coalescing pause of the subscriber's own first request.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = publisher.keyframe_requests();
    assert_eq!(sub.request_keyframe_after_transport_feedback().await, 1, "one video track");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(publisher.keyframe_requests() > before, "the PLI behind the feedback was relayed");
    sub.close().await;
    publisher.close().await;
}

/// A subscriber that answered but whose ICE starts only a second later (a browser's ICE and
/// DTLS take 100-300 ms) while the publisher sends a frame `every` so often (until then, if
/// `silent_from_connect`: an encoder that sends nothing for a while after a keyframe): when
/// it connected, and its first `want` video packets with when each came.
async fn connect_late(
    server: &TestServer,
    feed: u64,
    publisher: &mut TestPublisher,
    every: Duration,
    want: usize,
    silent_from_connect: bool,
) -> Late {
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let hs = ws.attach(sid).await;
    let join = json!({"request": "join", "room": 1234, "ptype": "subscriber", "streams": [{"feed": feed}]});
    let attached = ws.message_event(sid, hs, join).await;
    let offer = attached["jsep"]["sdp"].as_str().unwrap_or_else(|| panic!("no offer in {attached}"));
    let (late, answer) = TestSubscriber::answer_later(offer).await;
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs, "body": {"request": "start"},
        "jsep": {"type": "answer", "sdp": answer}}))
        .await;
    ws.expect_skipping_core("started", |m| m["sender"] == hs).await;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let sender = async {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            publisher.send().await;
            tokio::time::sleep(every).await;
        }
    };
    let receiver = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if silent_from_connect {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let mut sub = late.connect().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut connected = None;
        let mut video = Vec::new();
        while video.len() < want || connected.is_none() {
            tokio::select! {
                s = sub.states.recv() => {
                    if s == Some(webrtc::peer_connection::RTCPeerConnectionState::Connected) {
                        connected.get_or_insert(std::time::Instant::now());
                    }
                }
                p = sub.packets.recv() => {
                    let Some((kind, p)) = p else { break };
                    if kind == "video" && video.len() < want {
                        video.push((std::time::Instant::now(), p));
                    }
                }
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (connected, video, sub)
    };
    let (_, (connected, video, sub)) = tokio::join!(sender, receiver);
    assert!(video.len() == want, "{} of {want} video packets reached the subscriber", video.len());
    Late { connected: connected.expect("the subscriber connected"), video, sub, _ws: ws }
}

/// A subscriber that connected late: when, its first video packets with when each came, and
/// the subscriber itself (its session lives as long as its socket).
struct Late {
    connected: std::time::Instant,
    video: Vec<(std::time::Instant, rtc::rtp::Packet)>,
    sub: TestSubscriber,
    _ws: WsClient,
}

/// `next`'s timestamp is `kept`'s plus `waited` at 90 kHz, within 100 ms: after a gap of ours,
/// the time between (not the publisher's own timestamps, which count from its capture).
fn timestamps_go_on_by(kept: &rtc::rtp::Packet, next: &rtc::rtp::Packet, waited: Duration) {
    let step = next.header.timestamp.wrapping_sub(kept.header.timestamp);
    let elapsed = (waited.as_secs_f64() * 90_000.0) as u32;
    assert!(step.abs_diff(elapsed) < 9000, "timestamps go on by the time between: {step} ticks for {waited:?}");
}

/// VP8 (the test publisher's payload): bit 0 of the frame header clear marks a keyframe.
fn starts_keyframe(p: &rtc::rtp::Packet) -> bool {
    p.payload[1] & 0x01 == 0
}

/// Join -> first frame: a subscriber gets the keyframe asked for while it connects as soon as
/// DTLS is up. The publisher's last keyframe is too old to be kept, and it sends one only
/// 300 ms after being asked (an encoder's reaction and pacing). Asked at its answer and kept
/// meanwhile, the keyframe is the first packet the subscriber gets, right at connect; asked
/// only at connect, it would come 300 ms later.
#[actix_web::test]
async fn a_subscriber_gets_the_keyframe_asked_for_while_it_connects_at_once() {
    let server = TestServer::start();
    // The publisher's socket stays open: its session would end with it.
    let Publishing { peer: mut publisher, feed, ws: _publisher_ws, .. } = publishing(&server.ws_url).await;
    publisher.keyframes_only_when_asked(Duration::from_millis(300));
    outlast_the_kept_keyframe(&mut publisher, Duration::from_millis(2)).await;
    let asked_before = publisher.keyframe_requests();
    let Late { connected, video, sub, .. } =
        connect_late(&server, feed, &mut publisher, Duration::from_millis(10), 1, false).await;
    sub.close().await;
    let (at, first) = &video[0];
    assert!(starts_keyframe(first), "its first video packet starts a keyframe");
    let after = at.saturating_duration_since(connected);
    eprintln!("first video {after:?} after connecting");
    assert!(after < Duration::from_millis(200), "first video {after:?} after connecting");
    assert!(publisher.keyframe_requests() > asked_before, "the keyframe was asked for");
    publisher.close().await;
}

/// A publisher at 30 frames/s that sends a keyframe when it wants to (one after 5 frames) or
/// 1.5 s after being asked, and 10 frames after it; then a
/// subscriber that connects late ([`connect_late`]), whose first video packet must start that
/// keyframe within 200 ms of connecting.
async fn starts_on_the_kept_keyframe(
    server: &TestServer,
    feed: u64,
    publisher: &mut TestPublisher,
    want: usize,
    silent_from_connect: bool,
) -> Late {
    // Asked at the answer, it answers half a second after the subscriber connects.
    publisher.keyframes_only_when_asked(Duration::from_millis(1500));
    let every = Duration::from_millis(33);
    // (The very first frame, a keyframe, may come before the server's side of DTLS is ready.)
    for frame in 0..15 {
        if frame == 5 {
            publisher.keyframe_next();
        }
        publisher.send().await;
        tokio::time::sleep(every).await;
    }
    let late = connect_late(server, feed, publisher, every, want, silent_from_connect).await;
    let (at, first) = &late.video[0];
    assert!(starts_keyframe(first), "its first video packet starts the kept keyframe");
    let after = at.saturating_duration_since(late.connected);
    assert!(after < Duration::from_millis(200), "first video {after:?} after connecting");
    late
}

/// Join -> first frame without waiting for the publisher: it keeps its latest group of pictures
/// (here its keyframe and the frames since, 300 ms and more), and a new subscriber starts on
/// it at connect. A group that long goes out as its keyframe alone: its frames in a burst with
/// their own timestamps would make the receiver play the live ones that much late, and drawn
/// together a receiver recording at a fixed frame rate (aiortc's) could not take them. The
/// live frames go on from a fresh keyframe, asked for at the answer, their timestamps going on
/// from the kept one's by the time between.
#[actix_web::test]
async fn a_subscriber_starts_on_the_keyframe_its_publisher_sent_before_it_joined() {
    let server = TestServer::start();
    let Publishing { peer: mut publisher, feed, ws: _publisher_ws, .. } = publishing(&server.ws_url).await;
    let asked_before = publisher.keyframe_requests();
    let Late { video, sub, .. } = starts_on_the_kept_keyframe(&server, feed, &mut publisher, 30, false).await;
    sub.close().await;
    assert!(publisher.keyframe_requests() > asked_before, "a fresh keyframe was asked for");
    let (kept_at, fresh_at) = (video[0].0, video[1].0);
    assert!(starts_keyframe(&video[1].1), "after the kept keyframe, the fresh one: {:?}", video[1].1.payload);
    let waited = fresh_at.saturating_duration_since(kept_at);
    assert!(waited > Duration::from_millis(300), "the fresh keyframe came {waited:?} after the kept one");
    timestamps_go_on_by(&video[0].1, &video[1].1, waited);
    let steps: Vec<u32> =
        video[1..].windows(2).map(|w| w[1].1.header.timestamp.wrapping_sub(w[0].1.header.timestamp)).collect();
    assert!(steps.iter().all(|s| *s == 2880), "the live frames as sent: {steps:?}");
    let seqs: Vec<u16> = video.iter().map(|(_, p)| p.header.sequence_number).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)), "no packet twice, none missing: {seqs:?}");
    publisher.close().await;
}

/// What was kept goes out as soon as the subscriber connects, not with the publisher's next
/// packet: here the publisher sends nothing from then on. Its next packet is a keyframe: the
/// stream goes on with it at once, its timestamp after the kept keyframe's by the time between
/// (not by the publisher's own, which counts from the kept keyframe's capture a second before).
#[actix_web::test]
async fn what_was_kept_goes_out_at_connect_even_if_the_publisher_is_silent() {
    let server = TestServer::start();
    let Publishing { peer: mut publisher, feed, ws: _publisher_ws, .. } = publishing(&server.ws_url).await;
    let Late { video, mut sub, _ws, .. } = starts_on_the_kept_keyframe(&server, feed, &mut publisher, 1, true).await;
    let (kept_at, kept) = &video[0];
    tokio::time::sleep(Duration::from_millis(500)).await;
    publisher.keyframe_next();
    publisher.send().await;
    let fresh = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match sub.packets.recv().await {
                Some((kind, p)) if kind == "video" => return p,
                Some(_) => continue,
                None => panic!("the subscriber's packets ended"),
            }
        }
    })
    .await
    .expect("the publisher's next keyframe reached the subscriber");
    let waited = kept_at.elapsed();
    assert!(starts_keyframe(&fresh), "the publisher's next keyframe");
    assert_eq!(fresh.header.sequence_number, kept.header.sequence_number.wrapping_add(1), "the sequence goes on");
    timestamps_go_on_by(kept, &fresh, waited);
    sub.close().await;
    publisher.close().await;
}

/// When a publisher unpublishes, its subscribers keep their m-lines, now inactive: `updated`
/// with the streams (as Janus records it) and a new offer, which the subscriber answers with
/// `start` like the first one.
#[actix_web::test]
async fn a_publisher_that_unpublishes_leaves_its_subscribers_an_updated_offer() {
    let server = TestServer::start();
    let Publishing { mut ws, sid, handle: hp, feed, peer: mut publisher } = publishing(&server.ws_url).await;
    let mut sub_ws = WsClient::connect(&server.ws_url).await;
    let ssid = sub_ws.create_session().await;
    let (sub, hs) = subscribe_via(&mut sub_ws, ssid, feed).await;
    for _ in 0..30 {
        publisher.send().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hp, "body": {"request": "unpublish"}})).await;
    let updated = sub_ws.expect_skipping_core("updated", |m| m["sender"] == hs).await;
    assert_golden("videoroom.subscriber_updated_after_unpublish.json", &updated);
    let offer = updated["jsep"]["sdp"].as_str().expect("a new offer");
    let media: Vec<&str> = offer.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(media.len(), 2, "the m-lines stay: {offer}");
    assert!(
        offer.lines().filter(|l| *l == "a=inactive").count() == 2
            || media.iter().all(|m| m.split(' ').nth(1) == Some("0")),
        "both streams inactive: {offer}"
    );
    let answer = sub.reanswer(offer).await;
    sub_ws
        .call(json!({"janus": "message", "session_id": ssid, "handle_id": hs, "body": {"request": "start"},
            "jsep": {"type": "answer", "sdp": answer}}))
        .await;
    let started = sub_ws.expect_skipping_core("started", |m| m["sender"] == hs).await;
    assert_eq!(started["plugindata"]["data"]["started"], "ok", "{started}");
    sub.close().await;
    publisher.close().await;
}

/// `switch` changes a subscriber's sources without renegotiation: the same m-lines now carry
/// the other publisher's media, video starting on the keyframe its layer kept (then on a fresh
/// one: the kept group is too long to go out whole), the sequence unbroken.
#[actix_web::test]
async fn a_subscriber_switches_to_another_publisher_without_renegotiating() {
    let server = TestServer::start();
    let (
        Publishing { ws: _alice_ws, feed: alice, peer: mut a, .. },
        Publishing { ws: _bob_ws, feed: bob, peer: mut b, .. },
    ) = alice_and_bob(&server.ws_url).await;
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let (mut sub, hs) = subscribe_via(&mut ws, sid, alice).await;
    // Video packets received while both publishers send: (fill byte, keyframe, sequence).
    async fn flow(a: &mut TestPublisher, b: &mut TestPublisher, sub: &mut TestSubscriber) -> Vec<(u8, bool, u16)> {
        let got = received_while_sending(&mut [a, b], sub, 600).await;
        let video = got.into_iter().filter(|(k, _)| k == "video");
        video.map(|(_, p)| (p.payload[4], p.payload[1] & 0x01 == 0, p.header.sequence_number)).collect()
    }
    // Bob sends keyframes only when he wants to, or 200 ms after being asked: one before the
    // switch, which his layer keeps.
    b.keyframes_only_when_asked(Duration::from_millis(200));
    b.keyframe_next();
    let before = flow(&mut a, &mut b, &mut sub).await;
    assert!(!before.is_empty() && before.iter().all(|v| v.0 == 0x55), "alice's video first: {before:?}");
    let last = before.last().unwrap().2;
    let asked = b.keyframe_requests();
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs, "body": {"request": "switch",
        "streams": [{"feed": bob, "mid": "0", "sub_mid": "0"}, {"feed": bob, "mid": "1", "sub_mid": "1"}]}}))
        .await;
    let switched = ws.expect_skipping_core("switched", |m| m["sender"] == hs).await;
    let data = &switched["plugindata"]["data"];
    assert_eq!((data["switched"].as_str(), data["changes"].as_u64()), (Some("ok"), Some(2)), "{switched}");
    assert!(switched.get("jsep").is_none(), "no renegotiation");
    assert_eq!(data["streams"][1]["feed_id"], bob, "{switched}");
    let after = flow(&mut a, &mut b, &mut sub).await;
    let first_bob = after.iter().position(|v| v.0 == 0xbb).expect("bob's video arrives");
    assert!(after[first_bob].1, "it starts on a keyframe");
    assert!(after[first_bob..].iter().all(|v| v.0 == 0xbb), "and only bob's follows: {after:?}");
    assert!(after.get(first_bob + 1).is_some_and(|v| v.1), "the kept keyframe, then the fresh one: {after:?}");
    let expected_next = after.get(first_bob.wrapping_sub(1)).map_or(last, |v| v.2).wrapping_add(1);
    assert_eq!(after[first_bob].2, expected_next, "the sequence goes on across the switch");
    let seqs: Vec<u16> = after[first_bob..].iter().map(|v| v.2).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)), "no packet twice, none missing: {seqs:?}");
    assert!(b.keyframe_requests() > asked, "a fresh keyframe was asked for");
    sub.close().await;
    a.close().await;
    b.close().await;
}

/// One subscriber handle, several publishers (the 1.x multistream way): `subscribe` adds a
/// publisher's streams as new m-lines with a new offer, answered with `start`, and its media
/// flows on them; `unsubscribe` makes the other publisher's m-lines inactive.
#[actix_web::test]
async fn a_subscriber_adds_drops_and_readds_publishers_on_one_peer_connection() {
    let server = TestServer::start();
    let (
        Publishing { ws: _alice_ws, feed: alice, peer: mut a, .. },
        Publishing { ws: _bob_ws, feed: bob, peer: mut b, .. },
    ) = alice_and_bob(&server.ws_url).await;
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let (mut sub, hs) = subscribe_via(&mut ws, sid, alice).await;
    // Renegotiates with `request`, answers the new offer, returns the `updated` event.
    async fn renegotiate(ws: &mut WsClient, sub: &TestSubscriber, sid: u64, hs: u64, request: Value) -> Value {
        ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs, "body": request})).await;
        let updated = ws.expect_skipping_core("updated", |m| m["sender"] == hs).await;
        assert_eq!(updated["plugindata"]["data"]["videoroom"], "updated", "{updated}");
        let answer = sub.reanswer(updated["jsep"]["sdp"].as_str().expect("a new offer")).await;
        ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs, "body": {"request": "start"},
            "jsep": {"type": "answer", "sdp": answer}}))
            .await;
        let started = ws.expect_skipping_core("started", |m| m["sender"] == hs).await;
        assert_eq!(started["plugindata"]["data"]["started"], "ok", "{started}");
        updated
    }
    // Video fill bytes received while both publishers send.
    async fn video(a: &mut TestPublisher, b: &mut TestPublisher, sub: &mut TestSubscriber) -> Vec<u8> {
        let got = received_while_sending(&mut [a, b], sub, 800).await;
        got.into_iter().filter(|(k, _)| k == "video").map(|(_, p)| p.payload[4]).collect()
    }
    let updated =
        renegotiate(&mut ws, &sub, sid, hs, json!({"request": "subscribe", "streams": [{"feed": bob}]})).await;
    let streams = updated["plugindata"]["data"]["streams"].as_array().unwrap().clone();
    assert_eq!(streams.len(), 4, "{updated}");
    assert_eq!((streams[2]["feed_id"].as_u64(), streams[3]["mid"].as_str()), (Some(bob), Some("3")));
    let got = video(&mut a, &mut b, &mut sub).await;
    assert!(got.contains(&0x55) && got.contains(&0xbb), "both publishers' video arrives");
    let updated =
        renegotiate(&mut ws, &sub, sid, hs, json!({"request": "unsubscribe", "streams": [{"feed": alice}]})).await;
    let streams = &updated["plugindata"]["data"]["streams"];
    assert_eq!((streams[0]["active"].as_bool(), streams[1]["active"].as_bool()), (Some(false), Some(false)));
    assert_eq!(streams[2]["active"], true);
    video(&mut a, &mut b, &mut sub).await; // drains what was in flight
    let got = video(&mut a, &mut b, &mut sub).await;
    assert!(!got.is_empty() && got.iter().all(|f| *f == 0xbb), "only bob's video now: {got:?}");
    // Subscribing to alice again takes her inactive m-lines back (as Janus): still four.
    let updated =
        renegotiate(&mut ws, &sub, sid, hs, json!({"request": "subscribe", "streams": [{"feed": alice}]})).await;
    let streams = updated["plugindata"]["data"]["streams"].as_array().unwrap().clone();
    assert_eq!(streams.len(), 4, "{updated}");
    assert_eq!((streams[0]["active"].as_bool(), streams[0]["feed_id"].as_u64()), (Some(true), Some(alice)));
    assert_eq!(updated["jsep"]["sdp"].as_str().unwrap().matches("m=").count(), 4, "{updated}");
    video(&mut a, &mut b, &mut sub).await;
    let got = video(&mut a, &mut b, &mut sub).await;
    assert!(got.contains(&0x55) && got.contains(&0xbb), "both publishers' video again: {got:?}");
    sub.close().await;
    a.close().await;
    b.close().await;
}

/// `configure` with `send: false` holds one stream of a subscription (audio keeps flowing);
/// `send: true` brings it back on a keyframe with its sequence unbroken.
#[actix_web::test]
async fn a_subscriber_holds_and_resumes_its_video_with_configure() {
    let server = TestServer::start();
    let Publishing { mut ws, sid, feed, peer: mut publisher, .. } = publishing(&server.ws_url).await;
    let (mut sub, hs) = subscribe_via(&mut ws, sid, feed).await;
    // (kind, keyframe, sequence) of what arrives while the publisher sends for 600 ms.
    async fn flow(publisher: &mut TestPublisher, sub: &mut TestSubscriber) -> Vec<(String, bool, u16)> {
        let got = received_while_sending(&mut [publisher], sub, 600).await;
        got.into_iter()
            .map(|(k, p)| (k, p.payload.get(1).is_some_and(|b| b & 0x01 == 0), p.header.sequence_number))
            .collect()
    }
    async fn configure(ws: &mut WsClient, sid: u64, hs: u64, send: bool) {
        ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs,
            "body": {"request": "configure", "streams": [{"mid": "1", "send": send}]}}))
            .await;
        let ev = ws.expect_skipping_core("configured", |m| m["sender"] == hs).await;
        assert_eq!(ev["plugindata"]["data"]["configured"], "ok", "{ev}");
    }
    let before = flow(&mut publisher, &mut sub).await;
    let last_video = before.iter().rev().find(|p| p.0 == "video").expect("video flows").2;
    configure(&mut ws, sid, hs, false).await;
    flow(&mut publisher, &mut sub).await; // what was in flight
    let held = flow(&mut publisher, &mut sub).await;
    assert!(held.iter().any(|p| p.0 == "audio"), "audio goes on");
    assert!(!held.iter().any(|p| p.0 == "video"), "video is held: {held:?}");
    configure(&mut ws, sid, hs, true).await;
    let back = flow(&mut publisher, &mut sub).await;
    let first = back.iter().find(|p| p.0 == "video").expect("video is back");
    assert!(first.1, "on a keyframe");
    assert_eq!(first.2, last_video.wrapping_add(1), "the sequence goes on");
    sub.close().await;
    publisher.close().await;
}

/// `moderate` mutes one stream of a publisher for every subscriber (the room's secret
/// required); everyone in the room hears it; unmuted, the stream comes back on a keyframe.
#[actix_web::test]
async fn a_moderator_mutes_and_unmutes_a_publishers_video() {
    let server = TestServer::start();
    let Publishing { mut ws, sid, handle: hp, feed, peer: mut publisher } = publishing(&server.ws_url).await;
    let (mut sub, _) = subscribe_via(&mut ws, sid, feed).await;
    // Kinds of what arrives while the publisher sends for 600 ms.
    async fn kinds(publisher: &mut TestPublisher, sub: &mut TestSubscriber) -> Vec<String> {
        received_while_sending(&mut [publisher], sub, 600).await.into_iter().map(|(k, _)| k).collect()
    }
    let mut moderator = WsClient::connect(&server.ws_url).await;
    let ms = moderator.create_session().await;
    let mh = moderator.attach(ms).await;
    let moderate = |secret: &str, mute: bool| json!({"request": "moderate", "room": 1234, "secret": secret, "id": feed, "mid": "1", "mute": mute});
    let denied = moderator.message(ms, mh, moderate("guess", true)).await;
    assert_eq!(denied["plugindata"]["data"]["error_code"], 433, "{denied}");
    assert!(kinds(&mut publisher, &mut sub).await.contains(&"video".to_owned()));
    let ok = moderator.message(ms, mh, moderate("adminpwd", true)).await;
    assert_eq!(ok["plugindata"]["data"]["videoroom"], "success", "{ok}");
    let told = ws.expect_skipping_core("moderation", |m| m["sender"] == hp).await;
    assert_eq!(told["plugindata"]["data"]["moderation"], "muted", "{told}");
    kinds(&mut publisher, &mut sub).await; // what was in flight
    let muted = kinds(&mut publisher, &mut sub).await;
    assert!(muted.contains(&"audio".to_owned()) && !muted.contains(&"video".to_owned()), "{muted:?}");
    moderator.message(ms, mh, moderate("adminpwd", false)).await;
    let back = kinds(&mut publisher, &mut sub).await;
    assert!(back.contains(&"video".to_owned()), "video is back");
    sub.close().await;
    publisher.close().await;
}

/// The room's `bitrate` reaches its publishers as REMB (the demo room: 128 kbit/s), as Janus
/// caps publishers.
#[actix_web::test]
async fn publishers_are_told_the_rooms_bitrate_cap() {
    let server = TestServer::start();
    let Publishing { peer: mut publisher, ws: _ws, .. } = publishing(&server.ws_url).await;
    for _ in 0..30 {
        publisher.send().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // REMB carries an 18-bit mantissa and an exponent: exact for 128000.
    assert_eq!(publisher.bitrate_cap(), Some(128_000));
    publisher.close().await;
}

/// A `subscribe` while the subscriber has not answered its offer yet gets `updating` (Janus:
/// "clients should never expect an offer any time they request one"); its offer follows the
/// answer, as `updated` without a transaction, and both publishers' video then arrives.
#[actix_web::test]
async fn a_change_before_the_answer_is_offered_after_it() {
    let server = TestServer::start();
    let (
        Publishing { ws: _alice_ws, feed: alice, peer: mut a, .. },
        Publishing { ws: _bob_ws, feed: bob, peer: mut b, .. },
    ) = alice_and_bob(&server.ws_url).await;
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let hs = ws.attach(sid).await;
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs,
        "body": {"request": "join", "room": 1234, "ptype": "subscriber", "streams": [{"feed": alice}]}}))
        .await;
    let attached = ws.expect_skipping_core("attached", |m| m["sender"] == hs).await;
    let (mut sub, answer) = TestSubscriber::answer(attached["jsep"]["sdp"].as_str().unwrap()).await;

    let (ack, _) = ws
        .call(json!({"janus": "message", "session_id": sid, "handle_id": hs,
            "body": {"request": "subscribe", "streams": [{"feed": bob}]}}))
        .await;
    let updating = ws.expect_skipping_core("updating", |m| m["sender"] == hs).await;
    assert_eq!(updating["transaction"], ack["transaction"], "{updating}");
    assert_eq!(updating["plugindata"]["data"], json!({"videoroom": "updating", "room": 1234}));
    assert!(updating.get("jsep").is_none(), "{updating}");

    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs, "body": {"request": "start"},
        "jsep": {"type": "answer", "sdp": answer}}))
        .await;
    ws.expect_skipping_core("started", |m| m["plugindata"]["data"]["started"] == "ok").await;
    let updated = ws.expect_skipping_core("updated", |m| m["plugindata"]["data"]["videoroom"] == "updated").await;
    assert!(updated.get("transaction").is_none(), "nobody's request: {updated}");
    assert_eq!(updated["plugindata"]["data"]["streams"].as_array().map(Vec::len), Some(4), "{updated}");
    let answer = sub.reanswer(updated["jsep"]["sdp"].as_str().expect("the postponed offer")).await;
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs, "body": {"request": "start"},
        "jsep": {"type": "answer", "sdp": answer}}))
        .await;
    ws.expect_skipping_core("started", |m| m["plugindata"]["data"]["started"] == "ok").await;
    let got = received_while_sending(&mut [&mut a, &mut b], &mut sub, 1000).await;
    let fills: Vec<u8> = got.iter().filter(|(k, _)| k == "video").map(|(_, p)| p.payload[4]).collect();
    assert!(fills.contains(&0x55) && fills.contains(&0xbb), "both publishers' video: {fills:?}");
    sub.close().await;
    a.close().await;
    b.close().await;
}

/// `configure` with `restart: true` (janus.js's `iceRestart`, after a network change) is
/// answered with `configured` and an offer with new ICE credentials, marked `restart`; once
/// answered, media flows over the restarted connection.
#[actix_web::test]
async fn a_subscriber_restarts_ice_with_configure() {
    let server = TestServer::start();
    let Publishing { ws: _pws, feed, peer: mut publisher, .. } = publishing(&server.ws_url).await;
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let ((mut sub, hs), attached) =
        portunus_tests::videoroom::subscribe_to_streams(&mut ws, sid, json!([{"feed": feed}])).await;
    let ufrag = |sdp: &str| sdp.lines().find_map(|l| l.trim().strip_prefix("a=ice-ufrag:")).map(str::to_owned);
    let before = ufrag(attached["jsep"]["sdp"].as_str().unwrap()).expect("an ICE ufrag");
    let got = received_while_sending(&mut [&mut publisher], &mut sub, 500).await;
    assert!(got.iter().any(|(k, _)| k == "video"), "video before the restart");

    let (ack, _) = ws
        .call(json!({"janus": "message", "session_id": sid, "handle_id": hs,
            "body": {"request": "configure", "restart": true}}))
        .await;
    let configured = ws.expect_skipping_core("configured", |m| m["sender"] == hs).await;
    assert_eq!(configured["transaction"], ack["transaction"], "{configured}");
    assert_eq!(configured["plugindata"]["data"]["configured"], "ok", "{configured}");
    assert_eq!(configured["jsep"]["type"], "offer", "{configured}");
    assert_eq!(configured["jsep"]["restart"], true, "{configured}");
    let offer = configured["jsep"]["sdp"].as_str().unwrap();
    assert_ne!(ufrag(offer).as_deref(), Some(before.as_str()), "new ICE credentials");
    assert!(offer.contains("a=candidate:"), "candidates included (half-trickle)");
    let answer = sub.reanswer(offer).await;
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hs, "body": {"request": "start"},
        "jsep": {"type": "answer", "sdp": answer}}))
        .await;
    ws.expect_skipping_core("started", |m| m["plugindata"]["data"]["started"] == "ok").await;
    received_while_sending(&mut [&mut publisher], &mut sub, 1000).await;
    let got = received_while_sending(&mut [&mut publisher], &mut sub, 500).await;
    assert!(got.iter().filter(|(k, _)| k == "video").count() > 20, "video after the restart");
    sub.close().await;
    publisher.close().await;
}

/// A publisher's `configure` without an offer, as the demo's bandwidth menu sends it: its
/// bitrate cap reaches it as REMB at once, `keyframe` asks it for one, `send: false` on its
/// video mid holds that stream for its subscribers (audio goes on) until `send: true`, and a new
/// `display` is announced to the room.
#[actix_web::test]
async fn a_publisher_reconfigures_its_bitrate_keyframes_streams_and_name() {
    let server = TestServer::start();
    let Publishing { ws: mut aws, sid: asid, handle: ah, feed: alice, peer: mut a } = publishing(&server.ws_url).await;
    let Publishing { ws: mut bws, peer: b, .. } = publishing(&server.ws_url).await;
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let (mut sub, _) = subscribe_via(&mut ws, sid, alice).await;
    received_while_sending(&mut [&mut a], &mut sub, 300).await;
    async fn configure(ws: &mut WsClient, sid: u64, h: u64, body: Value) {
        let mut body = body;
        body["request"] = "configure".into();
        ws.call(json!({"janus": "message", "session_id": sid, "handle_id": h, "body": body})).await;
        let ev = ws.expect_skipping_core("configured", |m| m["sender"] == h).await;
        assert_eq!(ev["plugindata"]["data"]["configured"], "ok", "{ev}");
    }

    configure(&mut aws, asid, ah, json!({"bitrate": 256000})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while a.bitrate_cap() != Some(256000) && tokio::time::Instant::now() < deadline {
        a.send().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.bitrate_cap(), Some(256000), "the new cap, not the room's 128000");

    let before = a.keyframe_requests();
    configure(&mut aws, asid, ah, json!({"keyframe": true})).await;
    received_while_sending(&mut [&mut a], &mut sub, 300).await;
    assert!(a.keyframe_requests() > before, "a PLI for the keyframe asked for");

    configure(&mut aws, asid, ah, json!({"streams": [{"mid": "1", "send": false}]})).await;
    received_while_sending(&mut [&mut a], &mut sub, 200).await;
    let got = received_while_sending(&mut [&mut a], &mut sub, 500).await;
    assert!(got.iter().any(|(k, _)| k == "audio"), "audio goes on");
    assert!(!got.iter().any(|(k, _)| k == "video"), "video held");
    configure(&mut aws, asid, ah, json!({"streams": [{"mid": "1", "send": true}]})).await;
    let got = received_while_sending(&mut [&mut a], &mut sub, 800).await;
    assert!(got.iter().any(|(k, _)| k == "video"), "video again");

    configure(&mut aws, asid, ah, json!({"display": "alice (away)"})).await;
    let renamed = bws.expect_skipping_core("display", |m| m["plugindata"]["data"].get("display").is_some()).await;
    assert_eq!(renamed["plugindata"]["data"], json!({"videoroom": "event", "id": alice, "display": "alice (away)"}));

    // An unknown mid is refused before anything changes, as Janus.
    aws.call(json!({"janus": "message", "session_id": asid, "handle_id": ah,
        "body": {"request": "configure", "streams": [{"mid": "7", "send": false}]}}))
        .await;
    let refused = aws.expect_skipping_core("error", |m| m["sender"] == ah).await;
    assert_eq!(refused["plugindata"]["data"]["error_code"], 428, "{refused}");
    assert_eq!(refused["plugindata"]["data"]["error"], "No such mid '7' published", "{refused}");
    sub.close().await;
    a.close().await;
    b.close().await;
}

/// Two publishers in the demo room, media up: alice's video payloads filled with 0x55, bob's
/// with 0xbb, so a subscriber can tell whose it gets.
async fn alice_and_bob(ws_url: &str) -> (Publishing, Publishing) {
    let alice = publishing(ws_url).await;
    let mut bob = publishing(ws_url).await;
    bob.peer.fill = 0xbb;
    (alice, bob)
}
