//! A subscriber's `join` options besides its streams, compared live with a real Janus 1.1.2:
//! `crossrefid` echoed in the stream list, its publisher's stream descriptions (`descriptions`
//! of `publish` and of an offer-less `configure`) in it and in `publishers`, the deprecated
//! `offer_audio`/`offer_video` of a legacy `feed` join, `autoupdate` off (a stopped
//! publisher's m-lines are offered at the subscriber's next update, not at once), and their
//! type errors.

use portunus_tests::janus_oracle::{beside_janus, data, placeholders, Conn};
use portunus_tests::peer::{TestPublisher, TestSubscriber};
use serde_json::{json, Value};
use std::time::Duration;

const ROOM: u64 = 88;

/// A subscriber's `join` on a new handle of `c`; its handle and the first `attached` or error.
async fn join(c: &mut Conn, join: Value) -> (u64, Value) {
    let h = c.attach().await;
    let mut body = json!({"request": "join", "room": ROOM, "ptype": "subscriber"});
    body.as_object_mut().expect("an object").extend(join.as_object().expect("an object").clone());
    c.request(h, body, None).await;
    let m = c
        .wait_for("attached or an error", |m| {
            m["sender"] == h && (data(m)["videoroom"] == "attached" || data(m)["error_code"].is_number())
        })
        .await;
    (h, m)
}

/// A publisher called `display` on a connection of its own, its video described as `video`,
/// publishing; its connection, handle, id and peer.
async fn publishing(url: &str, display: &str, video: &str) -> (Conn, u64, u64, TestPublisher) {
    let mut c = Conn::open(url).await;
    let ph = c.attach().await;
    c.request(ph, json!({"request": "join", "room": ROOM, "ptype": "publisher", "display": display}), None).await;
    let joined = c.wait_for("joined", |m| m["sender"] == ph && data(m)["videoroom"] == "joined").await;
    let feed = data(&joined)["id"].as_u64().expect("feed");
    let (mut p, offer) = TestPublisher::offer().await;
    let publish = json!({"request": "publish", "descriptions": [{"mid": "1", "description": video}]});
    c.request(ph, publish, Some(json!({"type": "offer", "sdp": offer}))).await;
    let configured = c.wait_for("configured", |m| data(m)["configured"] == "ok").await;
    p.accept(configured["jsep"]["sdp"].as_str().expect("answer")).await;
    assert!(p.connected(Duration::from_secs(10)).await, "publisher connected");
    c.wait_for("webrtcup", |m| m["janus"] == "webrtcup").await;
    (c, ph, feed, p)
}

/// A subscriber's answer to `offer`, and its `start`; its peer.
async fn started(c: &mut Conn, h: u64, offer: &Value) -> TestSubscriber {
    let (sub, answer) = TestSubscriber::answer(offer["jsep"]["sdp"].as_str().expect("offer")).await;
    c.request(h, json!({"request": "start"}), Some(json!({"type": "answer", "sdp": answer}))).await;
    c.wait_for("started", |m| data(m)["started"] == "ok").await;
    sub
}

/// The same requests on one server; its answers, the publishers' ids as `<feed>` and `<q>`.
async fn run(url: &str) -> Vec<(&'static str, Value)> {
    let mut c = Conn::open(url).await;
    let h = c.attach().await;
    c.request(h, json!({"request": "create", "room": ROOM}), None).await;
    // A participant watching the room, on a connection of its own.
    let mut w = Conn::open(url).await;
    let (wh, _) = w.join(ROOM, "watcher").await;
    let (mut c, ph, feed, p) = publishing(url, "p", "front camera").await;
    let hide = |v: &Value| placeholders(data(v), &[(feed, "feed")]);
    let mut out = Vec::new();
    let announced = |m: &Value| m["sender"] == wh && data(m)["publishers"].is_array();
    out.push(("publishers, with a description", hide(&w.wait_for("publishers", announced).await)));
    // Described again without an offer: everyone is told; a description without its text is
    // refused.
    let describe = json!({"request": "configure", "descriptions": [{"mid": "0", "description": "mic"}]});
    c.request(ph, describe, None).await;
    out.push(("publishers, described again", hide(&w.wait_for("publishers", announced).await)));
    let bad = json!({"request": "configure", "descriptions": [{"mid": "0"}]});
    c.request(ph, bad, None).await;
    let refused = c.wait_for("an error", |m| m["sender"] == ph && data(m)["error_code"].is_number()).await;
    out.push(("a description without its text", hide(&refused)));

    let mut s = Conn::open(url).await;
    let (_, named) = join(&mut s, json!({"streams": [{"feed": feed, "crossrefid": "cam"}]})).await;
    out.push(("crossrefid", hide(&named)));
    let (_, video) = join(&mut s, json!({"feed": feed, "offer_audio": false})).await;
    out.push(("legacy feed without audio", hide(&video)));
    let (_, none) = join(&mut s, json!({"feed": feed, "offer_audio": false, "offer_video": false})).await;
    out.push(("legacy feed offered nothing", hide(&none)));
    let (_, bad) = join(&mut s, json!({"streams": [{"feed": feed}], "autoupdate": "no"})).await;
    out.push(("autoupdate not a boolean", hide(&bad)));
    let (_, bad) = join(&mut s, json!({"streams": [{"feed": feed, "crossrefid": 7}]})).await;
    out.push(("crossrefid not a string", hide(&bad)));
    let (_, bad) = join(&mut s, json!({"feed": feed, "offer_video": 0})).await;
    out.push(("offer_video not a boolean", hide(&bad)));

    // A `use_msid` subscriber of p switched to q: the listing names q's streams, the next
    // offer (an ICE restart) still p in its msid (Janus names the publisher an m-line was made
    // for); unsubscribed and subscribed to q, its m-lines are taken over for q and name it.
    let (_qc, _, qfeed, q) = publishing(url, "q", "back camera").await;
    let hide_both = |v: &Value| placeholders(data(v), &[(feed, "feed"), (qfeed, "q")]);
    // Which publisher each msid names (placeholders would match either).
    let msids = |offer: &Value| {
        let sdp = offer["jsep"]["sdp"].as_str().unwrap_or_default();
        let lines = sdp.lines().filter(|l| l.starts_with("a=msid:"));
        json!(lines.map(|l| l.replace(&feed.to_string(), "P").replace(&qfeed.to_string(), "Q")).collect::<Vec<_>>())
    };
    let mut mc = Conn::open(url).await;
    let (mh, attached) = join(&mut mc, json!({"streams": [{"feed": feed}], "use_msid": true})).await;
    let msub = started(&mut mc, mh, &attached).await;
    let to_q = json!([{"feed": qfeed, "mid": "0", "sub_mid": "0"}, {"feed": qfeed, "mid": "1", "sub_mid": "1"}]);
    mc.request(mh, json!({"request": "switch", "streams": to_q}), None).await;
    let switched = mc.wait_for("switched", |m| m["sender"] == mh && data(m)["switched"] == "ok").await;
    out.push(("switched to q", hide_both(&switched)));
    let offer_from = |m: &Value| m["sender"] == mh && m["jsep"]["type"] == "offer";
    mc.request(mh, json!({"request": "configure", "restart": true}), None).await;
    let restart = mc.wait_for("an offer", offer_from).await;
    out.push(("msid after a switch", msids(&restart)));
    // Each offer answered before the next change (one waits for the answer to the last).
    let answered = |offer: Value| {
        let (sub, mh) = (&msub, mh);
        async move { (mh, sub.reanswer(offer["jsep"]["sdp"].as_str().expect("offer")).await) }
    };
    let (h, answer) = answered(restart).await;
    mc.request(h, json!({"request": "start"}), Some(json!({"type": "answer", "sdp": answer}))).await;
    mc.wait_for("started", |m| m["sender"] == mh && data(m)["started"] == "ok").await;
    mc.request(mh, json!({"request": "unsubscribe", "streams": [{"feed": qfeed}]}), None).await;
    let (h, answer) = answered(mc.wait_for("an offer", offer_from).await).await;
    mc.request(h, json!({"request": "start"}), Some(json!({"type": "answer", "sdp": answer}))).await;
    mc.wait_for("started", |m| m["sender"] == mh && data(m)["started"] == "ok").await;
    mc.request(mh, json!({"request": "subscribe", "streams": [{"feed": qfeed}]}), None).await;
    out.push(("msid of m-lines taken over", msids(&mc.wait_for("an offer", offer_from).await)));
    msub.close().await;
    q.close().await;

    // Two subscribers, one without autoupdate, both started; then the publisher unpublishes.
    let mut subscribers = Vec::new();
    for autoupdate in [true, false] {
        let mut sc = Conn::open(url).await;
        let (sh, attached) = join(&mut sc, json!({"streams": [{"feed": feed}], "autoupdate": autoupdate})).await;
        let sub = started(&mut sc, sh, &attached).await;
        subscribers.push((sc, sh, sub));
    }
    c.request(ph, json!({"request": "unpublish"}), None).await;
    c.wait_for("unpublished", |m| m["sender"] == ph && data(m)["unpublished"] == "ok").await;
    let updated = |m: &Value| data(m)["videoroom"] == "updated";
    let (auto, manual) = subscribers.split_at_mut(1);
    let (ac, _, _) = &mut auto[0];
    out.push(("autoupdate: updated at once", hide(&ac.wait_for("updated", updated).await)));
    let (mc, mh, _) = &mut manual[0];
    let quiet = mc.drain(Duration::from_millis(700)).await;
    assert!(!quiet.iter().any(updated), "no offer without autoupdate: {quiet:?}");
    // Its next update, which changes nothing else, offers the inactive m-lines.
    let nothing = json!({"request": "unsubscribe", "streams": [{"feed": 424242}]});
    mc.request(*mh, nothing, None).await;
    let later = mc.wait_for("updated", updated).await;
    assert!(later["jsep"]["sdp"].as_str().is_some_and(|s| s.contains("a=inactive")), "{later}");
    out.push(("without autoupdate: updated at the next update", hide(&later)));
    p.close().await;
    for (_, _, sub) in &subscribers {
        sub.close().await;
    }
    out
}

#[actix_web::test]
async fn subscriber_join_options_answer_as_janus() {
    beside_janus("", |_| {}, |url| async move { run(&url).await }).await;
}
