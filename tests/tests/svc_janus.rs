//! VP9 SVC compared with a real Janus 1.1.2, which selects layers only for remote publishers
//! that declare `svc` (Portunus also for WebRTC publishers in `video_svc` rooms, `svc.rs`): the
//! same remote publisher on each server, fed the same RTP, gives the same subscriber the same
//! `attached` entry, the same layer events in the same order, and the same layers.

use portunus_tests::janus_oracle::{placeholders, same_as_janus, Conn, JanusOracle};
use portunus_tests::peer::{svc_marks, TestSubscriber};
use portunus_tests::*;
use rtc::rtp;
use serde_json::{json, Value};

const ROOM: u64 = 99;

/// What one server did with the same VP9 SVC remote publisher and subscriber: its `attached`,
/// then per phase the layer events (in order) and the layers the subscriber received.
#[derive(Debug)]
struct SvcRun {
    attached: Value,
    phases: Vec<(Vec<Value>, Vec<(u8, u8)>)>,
}

/// Sends `frames` SVC frames (from `first`) to a remote publisher's port, 10 ms apart.
async fn send_frames(socket: &tokio::net::UdpSocket, to: std::net::SocketAddr, pt: u8, first: u32, frames: u32) {
    use rtc::shared::marshal::Marshal;
    for frame in first..first + frames {
        for sid in 0..3u8 {
            let header = rtp::header::Header {
                version: 2,
                payload_type: pt,
                sequence_number: (frame * 3 + u32::from(sid)) as u16,
                timestamp: frame * 3000,
                // The remote publisher's first stream, base layer (Janus's 1000 + 10 x mindex).
                ssrc: 1000,
                marker: sid == 2,
                ..Default::default()
            };
            let payload = bytes::Bytes::from(portunus_tests::peer::vp9_svc_payload(frame, sid, 0x55));
            let bytes = rtp::Packet { header, payload }.marshal().expect("marshal");
            socket.send_to(&bytes, to).await.expect("send");
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The layer events `c` got until quiet for 300 ms (the room's id left out), in order.
async fn layer_events_in_order(c: &mut Conn) -> Vec<Value> {
    let mut out = Vec::new();
    for m in c.drain(std::time::Duration::from_millis(300)).await {
        let d = &m["plugindata"]["data"];
        if d.get("spatial_layer").is_some() || d.get("temporal_layer").is_some() {
            let mut d = d.clone();
            d.as_object_mut().map(|o| o.remove("room"));
            out.push(d);
        }
    }
    out
}

/// A VP9-only room with `video_svc` on `url`, a remote publisher of one SVC video stream fed
/// from this host, and a subscriber that takes the base layers, then asks again for them.
async fn remote_svc(url: &str, host: std::net::Ipv4Addr) -> SvcRun {
    let mut c = Conn::open(url).await;
    let h = c.attach().await;
    let created =
        c.request(h, json!({"request": "create", "room": ROOM, "videocodec": "vp9", "video_svc": true}), None).await;
    assert_eq!(created["plugindata"]["data"]["videoroom"], "created", "{created}");
    let streams = json!([{"mid": "0", "mindex": 0, "type": "video", "codec": "vp9", "svc": true}]);
    let added =
        c.add_remote_publisher(h, json!({"request": "add_remote_publisher", "room": ROOM, "streams": streams})).await;
    let added = &added["plugindata"]["data"];
    let (feed, port) = (added["id"].as_u64().expect("id"), added["port"].as_u64().expect("port"));
    let to = std::net::SocketAddr::from((host, u16::try_from(port).expect("port")));

    let mut s = Conn::open(url).await;
    let sh = s.attach().await;
    let join = json!({"request": "join", "room": ROOM, "ptype": "subscriber", "streams": [{"feed": feed}]});
    s.request(sh, join, None).await;
    let attached = s.wait_for("attached", |m| m["plugindata"]["data"]["videoroom"] == "attached").await;
    let offer = attached["jsep"]["sdp"].as_str().expect("offer").to_owned();
    let pt: u8 = offer
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=video")?.split_whitespace().nth(2)?.parse().ok())
        .expect("video payload type");
    let (mut sub, answer) = TestSubscriber::answer(&offer).await;
    s.request(sh, json!({"request": "start"}), Some(json!({"type": "answer", "sdp": answer}))).await;
    s.wait_for("started", |m| m["plugindata"]["data"]["started"] == "ok").await;
    // Media flows to it from here (before, neither server relays anything).
    s.wait_for("webrtcup", |m| m["janus"] == "webrtcup").await;
    let mut attached = attached["plugindata"]["data"].clone();
    attached = placeholders(attached, &[(feed, "feed")]);

    let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await.expect("udp");
    let received = |sub: &mut TestSubscriber| {
        let mut layers: Vec<(u8, u8)> =
            std::iter::from_fn(|| sub.packets.try_recv().ok()).filter_map(|(_, p)| svc_marks(&p.payload)).collect();
        layers.sort_unstable();
        layers.dedup();
        layers
    };
    let mut phases = Vec::new();
    // The defaults, then the base layers, then the base layers asked for again.
    send_frames(&socket, to, pt, 0, 60).await;
    phases.push((layer_events_in_order(&mut s).await, received(&mut sub)));
    let base = json!({"request": "configure", "streams": [{"mid": "0", "spatial_layer": 0, "temporal_layer": 0}]});
    s.request(sh, base, None).await;
    // Applied once answered (a cluster's gateway acks before its media node has it).
    s.wait_for("configured", |m| m["plugindata"]["data"]["configured"] == "ok").await;
    send_frames(&socket, to, pt, 60, 60).await;
    phases.push((layer_events_in_order(&mut s).await, received(&mut sub)));
    s.request(sh, json!({"request": "configure", "streams": [{"mid": "0", "spatial_layer": 0}]}), None).await;
    send_frames(&socket, to, pt, 120, 30).await;
    phases.push((layer_events_in_order(&mut s).await, received(&mut sub)));
    sub.close().await;
    c.request(h, json!({"request": "destroy", "room": ROOM}), None).await;
    SvcRun { attached, phases }
}

/// Janus 1.1.2 selects VP9 SVC layers for remote publishers that declare `svc`: the same one
/// on Janus and on Portunus gives the subscriber the same layers and the same events.
#[actix_web::test]
async fn a_remote_svc_publishers_layers_are_selected_as_janus_selects_them() {
    let janus = JanusOracle::start("");
    let server = TestServer::with(janus.portunus_config());
    let theirs = remote_svc(&janus.ws_url, janus.addr).await;
    let ours = remote_svc(&server.ws_url, janus.client_addr).await;
    same_as_janus("attached", &theirs.attached, &ours.attached);
    assert_eq!(theirs.phases.len(), ours.phases.len());
    for (i, (j, p)) in theirs.phases.iter().zip(&ours.phases).enumerate() {
        assert_eq!(j, p, "phase {i}: Janus {j:?}, Portunus {p:?}");
    }
    // And the phases did what they say.
    assert!(ours.phases[0].1.iter().all(|(s, _)| *s <= 1) && ours.phases[0].1.contains(&(1, 2)), "{ours:?}");
    assert!(ours.phases[1].1.contains(&(0, 0)), "{ours:?}");
    assert_eq!(ours.phases[2].1, [(0, 0)], "{ours:?}");
}
