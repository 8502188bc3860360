//! The VideoRoom's `string_ids`, compared live with a real Janus 1.1.2 started with
//! `string_ids = true`: rooms and participants named by strings in requests, events and
//! listings (a room created without a name and a publisher joining without an id get random
//! string ids), numbers refused where strings are due, and a subscriber of a named feed.

use portunus_tests::janus_oracle::{beside_janus, data, placeholders, placeholders_text, Conn};
use portunus_tests::peer::TestPublisher;
use serde_json::{json, Value};
use std::time::Duration;

/// The same requests on one server; its answers, random ids replaced by placeholders.
async fn run(url: &str) -> Vec<(&'static str, Value)> {
    let mut c = Conn::open(url).await;
    let h = c.attach().await;
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    let created =
        data(&c.request(h, json!({"request": "create", "room": "standup", "description": "Stand-up"}), None).await);
    out.push(("create", created));
    let unnamed = data(&c.request(h, json!({"request": "create"}), None).await);
    let random_room = unnamed["room"].as_str().unwrap_or_else(|| panic!("a string room id: {unnamed}")).to_owned();
    assert_eq!(random_room.len(), 36, "a UUID, as Janus makes them: {random_room}");
    out.push(("create without a room", unnamed));
    out.push(("create with a number", data(&c.request(h, json!({"request": "create", "room": 1234}), None).await)));
    out.push(("exists", data(&c.request(h, json!({"request": "exists", "room": "standup"}), None).await)));
    let list = data(&c.request(h, json!({"request": "list"}), None).await);
    let entry = list["list"].as_array().and_then(|l| l.iter().find(|r| r["room"] == "standup")).cloned();
    out.push(("list entry", entry.unwrap_or_else(|| panic!("standup listed: {list}"))));

    // Alice joins under her own name and publishes; Bob joins with none and gets one.
    let mut a = Conn::open(url).await;
    let ah = a.attach().await;
    let join = json!({"request": "join", "room": "standup", "ptype": "publisher", "display": "Alice", "id": "alice"});
    a.request(ah, join, None).await;
    let joined = a.wait_for("alice joined", |m| data(m)["videoroom"] == "joined").await;
    let alice_private = data(&joined)["private_id"].as_u64().unwrap_or_else(|| panic!("a number private_id: {joined}"));
    out.push(("joined (alice)", placeholders(data(&joined), &[(alice_private, "private")])));
    let (mut p, offer) = TestPublisher::offer().await;
    a.request(ah, json!({"request": "publish"}), Some(json!({"type": "offer", "sdp": offer}))).await;
    let configured = a.wait_for("configured", |m| data(m)["configured"] == "ok").await;
    p.accept(configured["jsep"]["sdp"].as_str().expect("answer")).await;
    assert!(p.connected(Duration::from_secs(10)).await, "publisher connected");
    // Janus lists a publisher, and lets it be subscribed to, once its media is up.
    a.wait_for("webrtcup", |m| m["janus"] == "webrtcup").await;

    let mut b = Conn::open(url).await;
    let bh = b.attach().await;
    b.request(bh, json!({"request": "join", "room": "standup", "ptype": "publisher", "display": "Bob"}), None).await;
    let joined = b.wait_for("bob joined", |m| data(m)["videoroom"] == "joined").await;
    let bob = data(&joined)["id"].as_str().unwrap_or_else(|| panic!("a string id: {joined}")).to_owned();
    let bob_private = data(&joined)["private_id"].as_u64().expect("private_id");
    let hide = |v: Value| placeholders_text(placeholders(v, &[(bob_private, "private")]), &[(bob.as_str(), "bob")]);
    out.push(("joined (bob, with alice publishing)", hide(data(&joined))));
    let mut participants = data(&c.request(h, json!({"request": "listparticipants", "room": "standup"}), None).await);
    // Janus lists them in its hash table's order: no order to compare.
    if let Some(list) = participants["participants"].as_array_mut() {
        list.sort_by_key(|p| p["display"].as_str().unwrap_or_default().to_owned());
    }
    out.push(("listparticipants", hide(participants)));

    // A subscriber of "alice"; then a feed given as a number, and an unknown room.
    let mut s = Conn::open(url).await;
    let sh = s.attach().await;
    let sub = json!({"request": "join", "room": "standup", "ptype": "subscriber", "streams": [{"feed": "alice"}]});
    s.request(sh, sub, None).await;
    let attached = s.wait_for("attached", |m| data(m)["videoroom"] == "attached").await;
    out.push(("attached", data(&attached)));
    let mut e = Conn::open(url).await;
    let eh = e.attach().await;
    let bad = json!({"request": "join", "room": "standup", "ptype": "subscriber", "streams": [{"feed": 5}]});
    e.request(eh, bad, None).await;
    out.push(("feed as a number", data(&e.wait_for("error", |m| data(m)["error_code"].is_number()).await)));
    let eh = e.attach().await;
    e.request(eh, json!({"request": "join", "room": "nowhere", "ptype": "publisher"}), None).await;
    out.push(("unknown room", data(&e.wait_for("error", |m| data(m)["error_code"].is_number()).await)));
    let kick = json!({"request": "kick", "room": "standup", "id": bob});
    out.push(("kick", data(&c.request(h, kick, None).await)));
    p.close().await;
    for room in ["standup", random_room.as_str()] {
        let destroyed = data(&c.request(h, json!({"request": "destroy", "room": room}), None).await);
        out.push(("destroy", placeholders_text(destroyed, &[(random_room.as_str(), "random room")])));
    }
    out.into_iter().map(|(what, v)| (what, placeholders_text(v, &[(random_room.as_str(), "random room")]))).collect()
}

#[actix_web::test]
async fn rooms_and_participants_named_by_strings_answer_as_janus() {
    beside_janus("string_ids = true", |cfg| cfg.string_ids = true, |url| async move { run(&url).await }).await;
}
