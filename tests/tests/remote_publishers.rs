//! Remote publishers between Portunus and a real Janus 1.1.2, both ways: a publisher on one
//! server is remotized (`publish_remotely`) to a remote publisher created on the other
//! (`add_remote_publisher`), and a WebRTC subscriber there receives its video. The replies of
//! both servers to the same requests are compared (`add_remote_publisher`, `publish_remotely`,
//! `listremotes`, `unpublish_remotely`, `remove_remote_publisher`, and their errors). A remote
//! stream in a codec its room does not list is still offered to subscribers.

use portunus_tests::janus_oracle::{data, placeholders, same_as_janus, Conn, JanusOracle};
use portunus_tests::peer::{TestPublisher, TestSubscriber};
use portunus_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const ROOM: u64 = 4343;
/// The byte a test publisher's VP8 payloads are filled with.
const FILL: u8 = 0x55;

/// A room on `url` with a handle to ask it things.
async fn room(url: &str) -> (Conn, u64) {
    let mut c = Conn::open(url).await;
    let h = c.attach().await;
    let created = c.request(h, json!({"request": "create", "room": ROOM, "publishers": 6}), None).await;
    assert_eq!(created["plugindata"]["data"]["videoroom"], "created", "{created}");
    (c, h)
}

/// A publisher on `url` in `ROOM`, connected; with its connection, handle and id.
async fn publisher(url: &str) -> (Conn, u64, u64, TestPublisher) {
    let mut c = Conn::open(url).await;
    let (h, joined) = c.join(ROOM, "source").await;
    let id = joined["plugindata"]["data"]["id"].as_u64().expect("id");
    let (mut p, offer) = TestPublisher::offer().await;
    let ack = c.request(h, json!({"request": "publish"}), Some(json!({"type": "offer", "sdp": offer}))).await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    let configured = c.wait_for("configured", |m| m["plugindata"]["data"]["configured"] == "ok").await;
    p.accept(configured["jsep"]["sdp"].as_str().expect("answer")).await;
    assert!(p.connected(Duration::from_secs(10)).await, "publisher connected");
    (c, h, id, p)
}

/// Subscribes on `url` to `feed`'s streams; the subscriber, once its answer is in.
async fn subscriber(url: &str, feed: u64) -> (Conn, TestSubscriber) {
    let mut c = Conn::open(url).await;
    let h = c.attach().await;
    let body = json!({"request": "join", "room": ROOM, "ptype": "subscriber", "streams": [{"feed": feed}]});
    c.request(h, body, None).await;
    let attached = c.wait_for("attached", |m| m["plugindata"]["data"]["videoroom"] == "attached").await;
    let offer = attached["jsep"]["sdp"].as_str().unwrap_or_else(|| panic!("no offer: {attached}"));
    let (sub, answer) = TestSubscriber::answer(offer).await;
    c.request(h, json!({"request": "start"}), Some(json!({"type": "answer", "sdp": answer}))).await;
    c.wait_for("started", |m| m["plugindata"]["data"]["started"] == "ok").await;
    (c, sub)
}

/// Video payload fill bytes `sub` receives while `p` sends for `ms`.
async fn video_seen(p: &mut TestPublisher, sub: &mut TestSubscriber, ms: u64) -> Vec<u8> {
    for _ in 0..ms / 10 {
        p.send().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fills = Vec::new();
    while let Ok((kind, packet)) = sub.packets.try_recv() {
        if kind == "video" {
            fills.push(packet.payload.get(4).copied().unwrap_or(0));
        }
    }
    fills
}

/// The streams a remote publisher of a test publisher sends (audio and video).
fn streams() -> Value {
    json!([{"mid": "0", "mindex": 0, "type": "audio", "codec": "opus"},
           {"mid": "1", "mindex": 1, "type": "video", "codec": "vp8"}])
}

/// Publishes on `src`, remotizes to a remote publisher made on `dst`, subscribes there: the
/// subscriber gets the source's video; after `unpublish_remotely`, nothing more. Returns the
/// replies on each side (placeholders for ids and ports), and `dst`'s address for the source.
async fn cascade(src: &str, dst: &str, dst_host: &str) -> Vec<(&'static str, Value)> {
    let (mut far, fh) = room(dst).await;
    let added = far
        .add_remote_publisher(
            fh,
            json!({"request": "add_remote_publisher", "room": ROOM, "display": "cascaded", "streams": streams()}),
        )
        .await;
    let added = data(&added);
    let (remote_id, port, rtcp_port) = (
        added["id"].as_u64().expect("id"),
        added["port"].as_u64().expect("port"),
        added["rtcp_port"].as_u64().expect("rtcp"),
    );

    let (mut near, nh) = room(src).await;
    let (_pc, _ph, source_id, mut p) = publisher(src).await;
    let remotize = json!({"request": "publish_remotely", "room": ROOM, "publisher_id": source_id,
        "remote_id": "far", "host": dst_host, "port": port, "rtcp_port": rtcp_port});
    let remotized = data(&near.request(nh, remotize.clone(), None).await);
    let again = data(&near.request(nh, remotize, None).await);
    let listed =
        data(&near.request(nh, json!({"request": "listremotes", "room": ROOM, "publisher_id": source_id}), None).await);

    let (_sc, mut sub) = subscriber(dst, remote_id).await;
    let fills = video_seen(&mut p, &mut sub, 2000).await;
    assert!(fills.len() >= 20 && fills.iter().all(|f| *f == FILL), "the far subscriber got the video: {fills:?}");

    // A new display and stream descriptions for the remote publisher; then an unknown one.
    let described = json!([{"mid": "0", "mindex": 0, "type": "audio", "codec": "opus", "description": "voice"},
                           {"mid": "1", "mindex": 1, "type": "video", "codec": "vp8", "description": "camera"}]);
    let update = json!({"request": "update_remote_publisher", "room": ROOM, "id": remote_id, "display": "renamed",
        "streams": described});
    let updated = data(&far.request(fh, update.clone(), None).await);
    let mut unknown_update = update;
    unknown_update["id"] = json!(1);
    let update_unknown = data(&far.request(fh, unknown_update, None).await);
    let unpublish =
        json!({"request": "unpublish_remotely", "room": ROOM, "publisher_id": source_id, "remote_id": "far"});
    let unpublished = data(&near.request(nh, unpublish.clone(), None).await);
    video_seen(&mut p, &mut sub, 300).await; // in flight
    let after = video_seen(&mut p, &mut sub, 1000).await;
    assert!(after.is_empty(), "nothing once unpublished remotely: {} packets", after.len());
    let unknown = data(&near.request(nh, unpublish, None).await);

    let removed = data(
        &far.request(fh, json!({"request": "remove_remote_publisher", "room": ROOM, "id": remote_id}), None).await,
    );
    let gone = data(
        &far.request(fh, json!({"request": "remove_remote_publisher", "room": ROOM, "id": remote_id}), None).await,
    );
    let empty =
        data(&far.request(fh, json!({"request": "add_remote_publisher", "room": ROOM, "streams": []}), None).await);
    let no_codec = data(
        &far.request(
            fh,
            json!({"request": "add_remote_publisher", "room": ROOM, "streams": [{"mid": "0", "mindex": 0, "type": "video"}]}),
            None,
        )
        .await,
    );
    sub.close().await;
    p.close().await;
    for (c, h) in [(&mut near, nh), (&mut far, fh)] {
        c.request(h, json!({"request": "destroy", "room": ROOM}), None).await;
    }
    let random = [(remote_id, "remote"), (port, "port"), (rtcp_port, "rtcp_port"), (source_id, "source")];
    [
        ("add_remote_publisher", added),
        ("publish_remotely", remotized),
        ("publish_remotely again", again),
        ("listremotes", listed),
        ("unpublish_remotely", unpublished),
        ("unpublish_remotely unknown", unknown),
        ("update_remote_publisher", updated),
        ("update_remote_publisher unknown", update_unknown),
        ("remove_remote_publisher", removed),
        ("remove_remote_publisher unknown", gone),
        ("add_remote_publisher without streams", empty),
        ("add_remote_publisher without codec", no_codec),
    ]
    .into_iter()
    .map(|(what, mut v)| {
        // The destination differs by direction.
        if let Some(list) = v.get_mut("list").and_then(Value::as_array_mut) {
            for r in list {
                r["host"] = json!("<host>");
            }
        }
        (what, placeholders(v, &random))
    })
    .collect()
}

#[actix_web::test]
async fn publishers_cascade_between_portunus_and_janus_both_ways() {
    let janus = JanusOracle::start("");
    // Portunus gathers, and receives remote publishers, on the client host's address.
    let server = TestServer::with(janus.portunus_config());
    let to_janus = cascade(&server.ws_url, &janus.ws_url, &janus.addr.to_string()).await;
    let to_portunus = cascade(&janus.ws_url, &server.ws_url, &janus.client_addr.to_string()).await;
    // Each server answered what the other did in its place.
    let ours = to_janus.iter().take(6).chain(to_portunus.iter().skip(6)).chain(to_portunus.iter().take(1));
    let theirs = to_portunus.iter().take(6).chain(to_janus.iter().skip(6)).chain(to_janus.iter().take(1));
    for ((what, p), (_, j)) in ours.zip(theirs) {
        same_as_janus(what, j, p);
    }
}

/// A remote publisher's stream may carry a codec its room does not list (only a WebRTC
/// publisher's answer is held to the room's): a subscriber is still offered it.
#[actix_web::test]
async fn a_remote_stream_in_a_codec_the_room_does_not_list_is_offered() {
    let server = TestServer::start();
    let (mut c, h) = room(&server.ws_url).await;
    let streams = json!([{"mid": "0", "mindex": 0, "type": "video", "codec": "vp9"}]);
    let added = c
        .add_remote_publisher(
            h,
            json!({"request": "add_remote_publisher", "room": ROOM, "display": "vp9", "streams": streams}),
        )
        .await;
    let remote_id = data(&added)["id"].as_u64().unwrap_or_else(|| panic!("added: {added}"));
    let mut s = Conn::open(&server.ws_url).await;
    let sh = s.attach().await;
    let body = json!({"request": "join", "room": ROOM, "ptype": "subscriber", "streams": [{"feed": remote_id}]});
    s.request(sh, body, None).await;
    let attached = s.wait_for("attached", |m| m["plugindata"]["data"].is_object()).await;
    let offer = attached["jsep"]["sdp"].as_str().unwrap_or_else(|| panic!("no offer: {attached}"));
    assert!(offer.contains("VP9/90000"), "the remote stream's codec is offered: {offer}");
}
