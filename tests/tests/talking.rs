//! Audio levels and talk detection, compared live with a real Janus 1.1.2: the same webrtc-rs
//! publisher (Opus with the `ssrc-audio-level` header extension, as browsers send it) publishes
//! into a room with `audiolevel_event` on Janus and on Portunus; both must announce the same
//! `talking` / `stopped-talking` events and list the publisher the same way (`configured`,
//! `publishers`, `joined`, `listparticipants`).

use portunus_tests::janus_oracle::{placeholders, same_as_janus, Conn, JanusOracle};
use portunus_tests::peer::{Offering, TestPublisher};
use portunus_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const ROOM: u64 = 4242;

/// Sends audio at `level` (and video) for `packets` packets, 10 ms apart.
async fn speak(p: &mut TestPublisher, level: u8, packets: usize) {
    p.audio_level = level;
    for _ in 0..packets {
        p.send().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a server said, ids replaced by placeholders so two servers' replies compare.
#[derive(Debug)]
struct Said {
    configured: Value,
    publishers: Value,
    talking: Value,
    stopped: Value,
    joined_entry: Value,
    listed: Value,
}

/// One run against the server at `url`: a listener and a speaker join the room (created with
/// talk detection: 20 packets, threshold 40), the speaker publishes and talks loudly; a
/// newcomer joins and the room is listed; the speaker falls silent.
async fn run(url: &str) -> Said {
    let mut room = Conn::open(url).await;
    let admin = room.attach().await;
    let create = json!({"request": "create", "room": ROOM, "publishers": 6, "audiolevel_event": true,
        "audio_active_packets": 20, "audio_level_average": 40});
    let created = room.request(admin, create, None).await;
    assert_eq!(created["plugindata"]["data"]["videoroom"], "created", "{created}");
    let (listener, _) = room.join(ROOM, "listener").await;

    let mut speaking = Conn::open(url).await;
    let (speaker, joined) = speaking.join(ROOM, "speaker").await;
    let speaker_id = joined["plugindata"]["data"]["id"].as_u64().expect("speaker id");
    let (mut p, offer) = TestPublisher::offer_with(Offering { audio_level: true, ..Offering::default() }).await;
    let jsep = json!({"type": "offer", "sdp": offer});
    let ack = speaking.request(speaker, json!({"request": "publish"}), Some(jsep)).await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    let mut configured = speaking.wait_for("configured", |m| m["plugindata"]["data"]["configured"] == "ok").await;
    let answer = configured["jsep"]["sdp"].as_str().expect("answer").to_owned();
    assert!(answer.contains("ssrc-audio-level"), "the audio level extension is negotiated:\n{answer}");
    p.accept(&answer).await;
    assert!(p.connected(Duration::from_secs(10)).await, "publisher connected");
    configured.as_object_mut().map(|o| o.remove("jsep"));
    let publishers = room
        .wait_for("publishers", |m| m["sender"] == listener && m["plugindata"]["data"]["publishers"].is_array())
        .await;

    // Loud for three windows of 20 packets: talking, announced to the room and the speaker.
    speak(&mut p, 10, 60).await;
    let talking = room
        .wait_for("talking", |m| m["sender"] == listener && m["plugindata"]["data"]["videoroom"] == "talking")
        .await;
    speaking.wait_for("own talking", |m| m["plugindata"]["data"]["videoroom"] == "talking").await;

    // A newcomer lists the speaker talking, and so does `listparticipants`.
    let mut newcomer = Conn::open(url).await;
    let (_, joined) = newcomer.join(ROOM, "newcomer").await;
    let joined_entry = joined["plugindata"]["data"]["publishers"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["id"] == speaker_id))
        .cloned()
        .expect("the speaker in joined");
    let list = room.request(admin, json!({"request": "listparticipants", "room": ROOM}), None).await;
    let listed = list["plugindata"]["data"]["participants"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["id"] == speaker_id))
        .cloned()
        .expect("the speaker listed");

    // Silent for three windows: stopped talking.
    speak(&mut p, 127, 60).await;
    let stopped = room
        .wait_for("stopped-talking", |m| {
            m["sender"] == listener && m["plugindata"]["data"]["videoroom"] == "stopped-talking"
        })
        .await;
    p.close().await;
    let data = |m: Value| m["plugindata"]["data"].clone();
    let said = Said {
        configured: data(configured),
        publishers: data(publishers),
        talking: data(talking),
        stopped: data(stopped),
        joined_entry,
        listed,
    };
    room.request(admin, json!({"request": "destroy", "room": ROOM}), None).await;
    anonymize(said, speaker_id)
}

/// The speaker's id as a placeholder (each server picks its own).
fn anonymize(said: Said, id: u64) -> Said {
    let p = |v: Value| placeholders(v, &[(id, "speaker")]);
    Said {
        configured: p(said.configured),
        publishers: p(said.publishers),
        talking: p(said.talking),
        stopped: p(said.stopped),
        joined_entry: p(said.joined_entry),
        listed: p(said.listed),
    }
}

#[actix_web::test]
async fn talking_events_and_listings_match_janus() {
    let janus = JanusOracle::start("");
    let server = TestServer::start();
    let theirs = run(&janus.ws_url).await;
    let ours = run(&server.ws_url).await;
    for (what, j, p) in [
        ("configured", &theirs.configured, &ours.configured),
        ("publishers", &theirs.publishers, &ours.publishers),
        ("talking", &theirs.talking, &ours.talking),
        ("stopped-talking", &theirs.stopped, &ours.stopped),
        ("joined entry", &theirs.joined_entry, &ours.joined_entry),
        ("listparticipants entry", &theirs.listed, &ours.listed),
    ] {
        same_as_janus(what, j, p);
    }
    // What was compared is what the feature is about.
    assert_eq!(ours.talking["audio-level-dBov-avg"], json!(10.0), "{:?}", ours.talking);
    assert_eq!(ours.listed["talking"], true, "{:?}", ours.listed);
}
