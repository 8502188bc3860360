//! Video codecs beyond VP8: a room's `videocodec` list decides what a publisher's answer takes
//! (the first of the room's codecs the offer has, or the publisher's own `videocodec` when the
//! room allows it), subscribers are offered the publisher's codec (and none the room does not
//! allow), and a subscriber's stream
//! starts on that codec's keyframe. The publisher-facing replies are compared with a real Janus
//! 1.1.2 given the same webrtc-rs publisher.

use portunus_tests::janus_oracle::{data, same_as_janus, Conn, JanusOracle};
use portunus_tests::peer::{Offering, TestPublisher, TestSubscriber};
use portunus_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const ROOM: u64 = 4545;

/// The codec name of the first video m-line of `sdp`.
fn video_codec(sdp: &str) -> String {
    let section = sdp.split("m=video").nth(1).unwrap_or_default();
    let pt = section.split_whitespace().nth(2).unwrap_or_default().to_owned();
    section
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("a=rtpmap:{pt} "))
                .map(|c| c.split('/').next().unwrap_or_default().to_ascii_lowercase())
        })
        .unwrap_or_default()
}

/// Every codec name the first video m-line of `sdp` lists.
fn video_codecs(sdp: &str) -> std::collections::BTreeSet<String> {
    let section = sdp.split("m=video").nth(1).unwrap_or_default();
    let section = section.split("m=").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=rtpmap:"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|c| c.split('/').next().unwrap_or_default().to_ascii_lowercase())
        .collect()
}

/// What a server answered a publisher offering `codec` in a room whose `videocodec` is `room`,
/// the publisher asking for `asked`: its `configured` (without the SDP), the codec of the answer,
/// and the `publishers` event another participant got; or the error it got.
struct Published {
    configured: Value,
    answer_codec: String,
    publishers: Value,
}

/// The connections a publishing run keeps open (closing one ends its session).
type Kept = (Conn, Conn);

async fn publish(
    url: &str,
    room: &str,
    codec: &'static str,
    asked: Option<&str>,
) -> Result<(Published, TestPublisher, u64, Kept), Value> {
    let mut owner = Conn::open(url).await;
    let oh = owner.attach().await;
    owner.request(oh, json!({"request": "destroy", "room": ROOM}), None).await;
    let created = owner.request(oh, json!({"request": "create", "room": ROOM, "videocodec": room}), None).await;
    assert_eq!(data(&created)["videoroom"], "created", "{created}");
    let (watcher, _) = owner.join(ROOM, "watcher").await;
    let mut c = Conn::open(url).await;
    let (h, joined) = c.join(ROOM, "source").await;
    let id = joined["plugindata"]["data"]["id"].as_u64().expect("id");
    let (mut p, offer) = TestPublisher::offer_with(Offering { video_codec: Some(codec), ..Offering::default() }).await;
    let mut body = json!({"request": "publish"});
    if let Some(a) = asked {
        body["videocodec"] = json!(a);
    }
    c.request(h, body, Some(json!({"type": "offer", "sdp": offer}))).await;
    let reply = c.wait_for("configured", |m| m["sender"] == h && m["plugindata"].is_object()).await;
    if data(&reply)["configured"] != "ok" {
        return Err(data(&reply));
    }
    let answer = reply["jsep"]["sdp"].as_str().expect("answer").to_owned();
    p.accept(&answer).await;
    assert!(p.connected(Duration::from_secs(10)).await, "publisher connected");
    let publishers = owner
        .wait_for("publishers", |m| m["sender"] == watcher && m["plugindata"]["data"]["publishers"].is_array())
        .await;
    let configured = data(&reply);
    let anonymize = |mut v: Value| {
        if let Some(list) = v.get_mut("publishers").and_then(Value::as_array_mut) {
            for e in list {
                e["id"] = json!("<id>");
            }
        }
        v
    };
    let published =
        Published { configured, answer_codec: video_codec(&answer), publishers: anonymize(data(&publishers)) };
    Ok((published, p, id, (owner, c)))
}

/// Subscribes on `url` to `feed`: the subscriber offer (its video codec first), and the first
/// byte and fill of each video packet received while `p` sends for 1.5 s.
async fn watch(url: &str, feed: u64, p: &mut TestPublisher) -> (String, Vec<(u8, u8)>) {
    let mut c = Conn::open(url).await;
    let h = c.attach().await;
    c.request(h, json!({"request": "join", "room": ROOM, "ptype": "subscriber", "streams": [{"feed": feed}]}), None)
        .await;
    let attached = c.wait_for("attached", |m| m["sender"] == h && m["plugindata"].is_object()).await;
    let offer = attached["jsep"]["sdp"].as_str().unwrap_or_else(|| panic!("no offer: {attached}")).to_owned();
    let (mut sub, answer) = TestSubscriber::answer(&offer).await;
    c.request(h, json!({"request": "start"}), Some(json!({"type": "answer", "sdp": answer}))).await;
    c.wait_for("started", |m| m["plugindata"]["data"]["started"] == "ok").await;
    for _ in 0..150 {
        p.send().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut seen = Vec::new();
    while let Ok((kind, packet)) = sub.packets.try_recv() {
        if kind == "video" {
            seen.push((packet.payload.first().copied().unwrap_or(0), packet.payload.get(4).copied().unwrap_or(0)));
        }
    }
    sub.close().await;
    (offer, seen)
}

#[actix_web::test]
async fn rooms_negotiate_their_video_codecs_and_subscribers_start_on_keyframes() {
    let janus = JanusOracle::start("");
    let server = TestServer::start();
    // (room's list, what the publisher sends, what it asks for, the codec expected, the
    // first byte of a keyframe in that codec)
    let cases: [(&str, &str, Option<&str>, &str, u8); 4] = [
        ("vp9", "vp9", None, "vp9", 0x0c),
        ("h264,vp8", "h264", None, "h264", 0x65),
        ("h265,vp8", "h265", None, "h265", 0x26),
        ("vp8,vp9", "vp9", Some("vp9"), "vp9", 0x0c),
    ];
    for (room, codec, asked, expected, keyframe) in cases {
        let (theirs, jp, _, _kept) =
            publish(&janus.ws_url, room, codec, asked).await.unwrap_or_else(|e| panic!("Janus: {e}"));
        jp.close().await;
        let (ours, mut p, feed, _kept) =
            publish(&server.ws_url, room, codec, asked).await.unwrap_or_else(|e| panic!("Portunus: {e}"));
        assert_eq!((theirs.answer_codec.as_str(), ours.answer_codec.as_str()), (expected, expected), "room {room}");
        same_as_janus(&format!("configured ({room})"), &theirs.configured, &ours.configured);
        same_as_janus(&format!("publishers ({room})"), &theirs.publishers, &ours.publishers);
        let (offer, seen) = watch(&server.ws_url, feed, &mut p).await;
        assert_eq!(video_codec(&offer), expected, "the subscriber is offered the publisher's codec");
        // And nothing else (Janus offers the publisher's codec alone).
        let allowed: Vec<&str> = room.split(',').chain(["rtx"]).collect();
        let offered = video_codecs(&offer);
        assert!(offered.iter().all(|c| allowed.contains(&c.as_str())), "room {room}: offered {offered:?}");
        assert!(seen.len() > 20, "{expected}: {} video packets", seen.len());
        assert_eq!(seen[0].0, keyframe, "{expected}: the stream starts on a keyframe: {:x?}", &seen[..8]);
        assert!(seen.iter().all(|(_, fill)| *fill == p.fill), "{expected}: the publisher's content");
        p.close().await;
    }
    // A codec the room does not allow, asked for: Janus's error.
    let theirs = publish(&janus.ws_url, "vp9", "vp9", Some("h264")).await.err().expect("Janus refuses");
    let ours = publish(&server.ws_url, "vp9", "vp9", Some("h264")).await.err().expect("Portunus refuses");
    same_as_janus("videocodec not allowed", &theirs, &ours);
}
