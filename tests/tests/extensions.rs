//! RTP header extensions on both legs, as Janus's VideoRoom negotiates them: a publisher's audio
//! level, video orientation and playout delay reach each subscriber under the ids that
//! subscriber negotiated, its video carries abs-send-time and transport-wide sequence numbers,
//! a room with the extensions off negotiates none of them, and Janus's `min_delay`/`max_delay`
//! (a publisher's for all its subscribers, a subscriber's for itself) set the playout delay.

use portunus_tests::peer::{
    extmap_id, Offering, TestSubscriber, ABS_SEND_TIME_URI, AUDIO_LEVEL_URI, PLAYOUT_DELAY, PLAYOUT_DELAY_URI,
    VIDEO_ORIENTATION_URI,
};
use portunus_tests::videoroom::{publishing_in, received_while_sending, subscribe_in, Publishing};
use portunus_tests::*;
use rtc::rtp;
use serde_json::{json, Value};

const TRANSPORT_CC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// The `a=extmap` URIs of the m-line at `mindex` in `sdp`.
fn extmaps_at(sdp: &str, mindex: usize) -> Vec<String> {
    let section = sdp.split("\nm=").nth(mindex + 1).unwrap_or_default();
    section
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=extmap:"))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

/// The `a=extmap` URIs of the first m-line of `kind` in `sdp`.
fn extmaps(sdp: &str, kind: &str) -> Vec<String> {
    let Some(section) = sdp.split("m=").find(|m| m.starts_with(kind)) else { return Vec::new() };
    section
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=extmap:"))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

/// A publisher offering audio level, video orientation and playout delay in `room`, and a
/// subscriber of all its streams; with the subscriber's offer.
async fn publisher_and_subscriber(url: &str, room: u64) -> (Publishing, String, Subscribed) {
    let offering = Offering { audio_level: true, orientation: true, ..Offering::default() };
    let (p, answer) = publishing_in(url, room, "phone", offering).await;
    let mut ws = WsClient::connect(url).await;
    let sid = ws.create_session().await;
    let ((sub, handle), attached) =
        subscribe_in(&mut ws, sid, room, json!([{"feed": p.feed}]), Default::default()).await;
    let offer = attached["jsep"]["sdp"].as_str().expect("subscriber offer").to_owned();
    (p, answer, Subscribed { ws, sid, handle, sub, offer })
}

/// A subscriber, its WebSocket, session and handle, and the offer it answered.
struct Subscribed {
    ws: WsClient,
    sid: u64,
    handle: u64,
    sub: TestSubscriber,
    offer: String,
}

fn of_kind<'a>(got: &'a [(String, rtp::Packet)], kind: &str) -> Vec<&'a rtp::Packet> {
    got.iter().filter(|(k, _)| k == kind).map(|(_, p)| p).collect()
}

fn ext(p: &rtp::Packet, id: Option<u8>) -> Option<Vec<u8>> {
    p.header.get_extension(id?).map(|b| b.to_vec())
}

#[actix_web::test]
async fn a_subscriber_gets_the_publishers_levels_and_orientation_under_its_own_ids_with_send_times() {
    let server = TestServer::start();
    // Room 1234 has Janus's defaults: every extension on.
    let (mut p, answer, Subscribed { ws: _keep_session, mut sub, offer, .. }) =
        publisher_and_subscriber(&server.ws_url, 1234).await;
    assert!(
        extmaps(&answer, "audio").iter().any(|u| u == AUDIO_LEVEL_URI),
        "publisher answer takes {AUDIO_LEVEL_URI}:\n{answer}"
    );
    for uri in [VIDEO_ORIENTATION_URI, PLAYOUT_DELAY_URI, TRANSPORT_CC_URI] {
        assert!(extmaps(&answer, "video").iter().any(|u| u == uri), "publisher answer takes {uri}:\n{answer}");
    }
    assert_eq!(extmaps(&offer, "audio"), [AUDIO_LEVEL_URI, MID_URI], "subscriber audio:\n{offer}");
    let video = extmaps(&offer, "video");
    let expected = [ABS_SEND_TIME_URI, TRANSPORT_CC_URI, MID_URI, PLAYOUT_DELAY_URI, VIDEO_ORIENTATION_URI];
    assert_eq!(video, expected, "subscriber video:\n{offer}");
    let level = extmap_id(&offer, AUDIO_LEVEL_URI);
    let orientation = extmap_id(&offer, VIDEO_ORIENTATION_URI);
    let delay = extmap_id(&offer, PLAYOUT_DELAY_URI);
    let send_time = extmap_id(&offer, ABS_SEND_TIME_URI);
    let twcc = extmap_id(&offer, TRANSPORT_CC_URI);
    // Janus's ids (`janus_rtp_extension_id`).
    let ids = [level, send_time, twcc, extmap_id(&offer, MID_URI), delay, orientation];
    assert_eq!(ids, [1, 2, 3, 4, 12, 13].map(Some), "subscriber ids:\n{offer}");

    // A loud speaker holding the phone turned by 90 degrees (R0).
    p.peer.audio_level = 33;
    p.peer.orientation = 0b0001;
    let got = received_while_sending(&mut [&mut p.peer], &mut sub, 1000).await;
    let audio = of_kind(&got, "audio");
    assert!(audio.len() >= 50, "audio arrives: {}", audio.len());
    for a in &audio {
        // The voice-activity bit set, as the publisher sent it.
        assert_eq!(ext(a, level), Some(vec![0x80 | 33]), "audio level relayed: {:?}", a.header);
        assert_eq!(a.header.extensions.len(), 1, "nothing else on audio: {:?}", a.header);
    }
    let video = of_kind(&got, "video");
    assert!(video.len() >= 50, "video arrives: {}", video.len());
    let mut twcc_seqs = Vec::new();
    let mut send_times = Vec::new();
    for v in &video {
        assert_eq!(ext(v, orientation), Some(vec![0b0001]), "orientation relayed: {:?}", v.header);
        assert_eq!(ext(v, delay), Some(PLAYOUT_DELAY.to_vec()), "playout delay relayed: {:?}", v.header);
        let t = ext(v, send_time).unwrap_or_else(|| panic!("abs-send-time on every video packet: {:?}", v.header));
        send_times.push(u32::from(t[0]) << 16 | u32::from(t[1]) << 8 | u32::from(t[2]));
        let s = ext(v, twcc).unwrap_or_else(|| panic!("a transport-wide sequence number: {:?}", v.header));
        twcc_seqs.push(u16::from_be_bytes([s[0], s[1]]));
    }
    // One transport-wide number per packet sent, none skipped (loopback loses nothing).
    twcc_seqs.sort_unstable();
    twcc_seqs.dedup();
    assert_eq!(twcc_seqs.len(), video.len(), "distinct transport sequence numbers");
    assert_eq!(usize::from(twcc_seqs[twcc_seqs.len() - 1] - twcc_seqs[0]) + 1, video.len(), "{twcc_seqs:?}");
    // Send times span about the second sent (6.18 fixed point: 2^18 per second).
    let span = f64::from(send_times.iter().max().unwrap() - send_times.iter().min().unwrap()) / f64::from(1 << 18);
    assert!((0.7..1.5).contains(&span), "abs-send-time spans {span} s");

    // The phone turns upside down: the new orientation follows.
    p.peer.orientation = 0b0010;
    let got = received_while_sending(&mut [&mut p.peer], &mut sub, 300).await;
    let last = of_kind(&got, "video").last().copied().cloned().expect("video after the turn");
    assert_eq!(ext(&last, orientation), Some(vec![0b0010]), "{:?}", last.header);
    sub.close().await;
    p.peer.close().await;
}

/// The playout delay (min, max) a video packet carries under `id`.
fn delay_of(p: &rtp::Packet, id: Option<u8>) -> Option<(u16, u16)> {
    let b = ext(p, id)?;
    let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
    Some(((v >> 12) as u16, (v & 0xFFF) as u16))
}

/// The playout delay the last video packets carried, once those in flight are through.
async fn delays_now(p: &mut Publishing, sub: &mut TestSubscriber, id: Option<u8>) -> Vec<Option<(u16, u16)>> {
    received_while_sending(&mut [&mut p.peer], sub, 200).await;
    let got = received_while_sending(&mut [&mut p.peer], sub, 300).await;
    let mut d: Vec<_> = of_kind(&got, "video").iter().map(|v| delay_of(v, id)).collect();
    d.dedup();
    d
}

async fn configured(ws: &mut WsClient, sid: u64, h: u64, body: Value) {
    // Core events (webrtcup, media) may come first.
    let (ack, _) = ws.call(json!({"janus": "message", "session_id": sid, "handle_id": h, "body": body})).await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    let done = ws.expect_skipping_core("configured", |m| m["sender"] == h).await;
    assert_eq!(done["plugindata"]["data"]["configured"], "ok", "{done}");
}

/// Janus's `min_delay`/`max_delay`: a publisher's (for all its subscribers) replaces the delay it
/// sends, a subscriber's its own; a negative value clears one.
#[actix_web::test]
async fn publishers_and_subscribers_set_the_playout_delay_as_janus() {
    let server = TestServer::start();
    let (mut p, _, Subscribed { ws: mut sws, sid, handle, mut sub, offer }) =
        publisher_and_subscriber(&server.ws_url, 1234).await;
    let sws_ids = (sid, handle);
    let id = extmap_id(&offer, PLAYOUT_DELAY_URI);
    // What the publisher sends: min 1, max 0x20 (PLAYOUT_DELAY).
    assert_eq!(delays_now(&mut p, &mut sub, id).await, [Some((1, 0x20))]);

    // A subscriber's own: min 5, max 20 (10 ms units).
    let streams = |min: i64, max: i64| json!({"request": "configure", "streams": [{"mid": "1", "min_delay": min, "max_delay": max}]});
    configured(&mut sws, sws_ids.0, sws_ids.1, streams(5, 20)).await;
    assert_eq!(delays_now(&mut p, &mut sub, id).await, [Some((5, 20))]);

    // The publisher's, for all: a second subscriber gets it, the first keeps its own.
    configured(&mut p.ws, p.sid, p.handle, streams(2, 3)).await;
    let mut ws2 = WsClient::connect(&server.ws_url).await;
    let sid2 = ws2.create_session().await;
    let ((mut sub2, _), attached2) =
        subscribe_in(&mut ws2, sid2, 1234, json!([{"feed": p.feed}]), Default::default()).await;
    let id2 = extmap_id(attached2["jsep"]["sdp"].as_str().expect("offer"), PLAYOUT_DELAY_URI);
    assert_eq!(delays_now(&mut p, &mut sub2, id2).await, [Some((2, 3))]);
    assert_eq!(delays_now(&mut p, &mut sub, id).await, [Some((5, 20))]);

    // The first subscriber clears its own: the publisher's again.
    configured(
        &mut sws,
        sws_ids.0,
        sws_ids.1,
        json!({"request": "configure", "streams": [{"mid": "1", "min_delay": -1}]}),
    )
    .await;
    assert_eq!(delays_now(&mut p, &mut sub, id).await, [Some((2, 3))]);
    sub2.close().await;
    sub.close().await;
    p.peer.close().await;
}

#[actix_web::test]
async fn a_room_with_the_extensions_off_negotiates_only_abs_send_time_and_mid() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    let create = json!({"request": "create", "room": 77, "audiolevel_ext": false, "videoorient_ext": false,
        "playoutdelay_ext": false, "transport_wide_cc_ext": false});
    let created: Value = ws.message(sid, h, create).await;
    assert_eq!(created["plugindata"]["data"]["videoroom"], "created", "{created}");

    let (mut p, answer, Subscribed { ws: _keep_session, mut sub, offer, .. }) =
        publisher_and_subscriber(&server.ws_url, 77).await;
    for uri in [AUDIO_LEVEL_URI, VIDEO_ORIENTATION_URI, PLAYOUT_DELAY_URI, TRANSPORT_CC_URI] {
        assert!(!answer.contains(uri), "publisher answer leaves out {uri}:\n{answer}");
    }
    assert_eq!(extmaps(&offer, "audio"), [MID_URI], "subscriber audio:\n{offer}");
    assert_eq!(extmaps(&offer, "video"), [ABS_SEND_TIME_URI, MID_URI], "subscriber video:\n{offer}");
    let send_time = extmap_id(&offer, ABS_SEND_TIME_URI);

    p.peer.audio_level = 33;
    let got = received_while_sending(&mut [&mut p.peer], &mut sub, 600).await;
    let audio = of_kind(&got, "audio");
    assert!(audio.len() >= 30 && audio.iter().all(|a| !a.header.extension), "no extension on audio");
    let video = of_kind(&got, "video");
    assert!(video.len() >= 30, "video arrives: {}", video.len());
    for v in video {
        let ids: Vec<u8> = v.header.extensions.iter().map(|e| e.id).collect();
        assert_eq!(ids, [send_time.expect("abs-send-time id")], "only abs-send-time on video: {:?}", v.header);
    }
    sub.close().await;
    p.peer.close().await;
}

/// As Janus, each m-section of a subscriber's offer lists the relayed extensions its own
/// publisher's stream carries: one subscription to a publisher sending audio level and
/// orientation and to one sending neither offers them on the first publisher's m-lines only,
/// and both publishers' audio reaches the subscriber, the first one's with its level.
#[actix_web::test]
async fn each_subscriber_m_line_offers_the_extensions_its_publisher_carries() {
    let server = TestServer::start();
    let with = Offering { audio_level: true, orientation: true, ..Offering::default() };
    let (mut p1, _) = publishing_in(&server.ws_url, 1234, "with", with).await;
    let (mut p2, _) = publishing_in(&server.ws_url, 1234, "without", Offering::default()).await;
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let streams = json!([{"feed": p1.feed}, {"feed": p2.feed}]);
    let ((mut sub, _), attached) = subscribe_in(&mut ws, sid, 1234, streams, Default::default()).await;
    let offer = attached["jsep"]["sdp"].as_str().expect("subscriber offer").to_owned();
    assert_eq!(extmaps_at(&offer, 0), [AUDIO_LEVEL_URI, MID_URI], "the first publisher's audio:\n{offer}");
    let video = [ABS_SEND_TIME_URI, TRANSPORT_CC_URI, MID_URI, PLAYOUT_DELAY_URI, VIDEO_ORIENTATION_URI];
    assert_eq!(extmaps_at(&offer, 1), video, "the first publisher's video:\n{offer}");
    assert_eq!(extmaps_at(&offer, 2), [MID_URI], "the second publisher's audio:\n{offer}");
    let video = [ABS_SEND_TIME_URI, TRANSPORT_CC_URI, MID_URI];
    assert_eq!(extmaps_at(&offer, 3), video, "the second publisher's video:\n{offer}");

    p1.peer.audio_level = 33;
    let got = received_while_sending(&mut [&mut p1.peer, &mut p2.peer], &mut sub, 600).await;
    let audio = of_kind(&got, "audio");
    let level = extmap_id(&offer, AUDIO_LEVEL_URI);
    let levels: Vec<Option<Vec<u8>>> = audio.iter().map(|a| ext(a, level)).collect();
    assert!(levels.contains(&Some(vec![0x80 | 33])), "the first publisher's level arrives: {levels:?}");
    assert!(levels.contains(&None), "the second publisher's audio arrives without one: {levels:?}");
    sub.close().await;
    p1.peer.close().await;
    p2.peer.close().await;
}
