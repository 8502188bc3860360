//! The Admin API's `handle_info` compared with a real Janus 1.1.2's: the same WebRTC publisher
//! and subscriber on each server, then the `flags` and `webrtc` object each shows for them.

use portunus_tests::janus_oracle::{
    placeholders, placeholders_text, same_as_janus, Conn, JanusOracle, JANUS_ADMIN_SECRET,
};
use portunus_tests::peer::{TestPublisher, TestSubscriber};
use portunus_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const ROOM: u64 = 77;

/// The Admin API's answer to `req` (given the admin secret and a transaction) at `url`.
async fn admin(url: &str, req: Value) -> Value {
    admin_post(url, "t", JANUS_ADMIN_SECRET, req).await
}

/// Each of `requests` sent to Janus's Admin API at `janus` and to ours at `ours`: the same answers.
async fn answered_alike(janus: &str, ours: &str, requests: impl IntoIterator<Item = (&str, Value)>) {
    for (what, req) in requests {
        same_as_janus(what, &admin(janus, req.clone()).await, &admin(ours, req).await);
    }
}

/// `handle_info` of the handle `h` of session `s` from the Admin API at `url`.
async fn handle_info(url: &str, s: u64, h: u64) -> Value {
    let info = admin(&format!("{url}/{s}/{h}"), json!({"janus": "handle_info"})).await;
    assert_eq!(info["janus"], "success", "{info}");
    info["info"].clone()
}

/// A session on the server at `url`, with `ROOM` created.
async fn with_room(url: &str) -> Conn {
    let mut c = Conn::open(url).await;
    let h = c.attach().await;
    let created = c.request(h, json!({"request": "create", "room": ROOM}), None).await;
    assert_eq!(created["plugindata"]["data"]["videoroom"], "created", "{created}");
    c
}

/// A publisher (audio and video) in `ROOM` on the server at `url`, connected and sending; its
/// session, handle, peer and feed.
async fn publishing(url: &str) -> (Conn, u64, TestPublisher, u64) {
    let mut c = with_room(url).await;
    let h = c.attach().await;
    let (p, feed) = publish(&mut c, h).await;
    (c, h, p, feed)
}

/// The handle `h` joins `ROOM` and publishes audio and video, connected and sending; its peer
/// and feed.
async fn publish(c: &mut Conn, h: u64) -> (TestPublisher, u64) {
    let ack = c.request(h, json!({"request": "join", "room": ROOM, "ptype": "publisher", "display": "p"}), None).await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    let joined = c.wait_for("joined", |m| m["sender"] == h && m["plugindata"]["data"]["videoroom"] == "joined").await;
    let feed = joined["plugindata"]["data"]["id"].as_u64().expect("feed");
    let (mut p, offer) = TestPublisher::offer().await;
    c.request(h, json!({"request": "publish"}), Some(json!({"type": "offer", "sdp": offer}))).await;
    let configured = c.wait_for("configured", |m| m["plugindata"]["data"]["configured"] == "ok").await;
    p.accept(configured["jsep"]["sdp"].as_str().expect("answer")).await;
    assert!(p.connected(Duration::from_secs(10)).await, "publisher connected");
    c.wait_for("webrtcup", |m| m["janus"] == "webrtcup").await;
    for _ in 0..50 {
        p.send().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (p, feed)
}

/// A subscriber to `feed` (with `use_msid` if asked) on the server at `url`, connected and
/// receiving; its session, handle, peer, and the `a=msid` lines of its offer.
async fn subscribing(url: &str, feed: u64, use_msid: bool) -> (Conn, u64, TestSubscriber, Vec<String>) {
    let mut c = Conn::open(url).await;
    let h = c.attach().await;
    let join = json!({"request": "join", "room": ROOM, "ptype": "subscriber", "streams": [{"feed": feed}],
        "use_msid": use_msid});
    c.request(h, join, None).await;
    let attached = c.wait_for("attached", |m| m["plugindata"]["data"]["videoroom"] == "attached").await;
    let offer = attached["jsep"]["sdp"].as_str().expect("offer");
    let msids = offer.lines().filter(|l| l.starts_with("a=msid:")).map(str::to_owned).collect();
    let (sub, answer) = TestSubscriber::answer(offer).await;
    c.request(h, json!({"request": "start"}), Some(json!({"type": "answer", "sdp": answer}))).await;
    c.wait_for("webrtcup", |m| m["janus"] == "webrtcup").await;
    (c, h, sub, msids)
}

/// `n` frames (audio and video) from each of two publishers, 10 ms apart.
async fn send_both(a: &mut TestPublisher, b: &mut TestPublisher, n: usize) {
    for _ in 0..n {
        a.send().await;
        b.send().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Janus's handle flags and ours alike, but for `starting`: Janus sets it when the peer's SDP
/// was taken before any of its candidates were (in its SDP or trickled before), a race Janus
/// loses now and then under load, so ours is checked against its rule on our remote SDP.
fn same_flags(theirs: &Value, ours: &Value, whose: &str) {
    let without_starting = |v: &Value| {
        let mut f = v["flags"].clone();
        f.as_object_mut().expect("flags").remove("starting");
        f
    };
    assert_eq!(without_starting(theirs), without_starting(ours), "{whose} flags");
    let candidates = ours["sdps"]["remote"].as_str().expect("remote SDP").contains("a=candidate:");
    assert_eq!(ours["flags"]["starting"], !candidates, "{whose} flags: {ours}");
}

/// Janus's fields Portunus has no source for (`media/stats.rs`): timestamps, DTLS
/// retransmissions, link-quality scores, `bytes_lastsec`, retransmissions received, and the
/// SSRCs Janus gives its own RTCP on a medium it only receives.
const LEFT_OUT: &[&str] = &[
    "ice.gathered",
    "ice.connected",
    "dtls.retransmissions",
    "dtls.handshake-started",
    "dtls.connected",
    "rtcp.main.in-link-quality",
    "rtcp.main.in-media-link-quality",
    "rtcp.main.out-link-quality",
    "rtcp.main.out-media-link-quality",
    "stats.in.bytes_lastsec",
    "stats.out.bytes_lastsec",
    "stats.in.retransmissions",
    "ssrc.ssrc",
    "ssrc.ssrc-rtx",
];

/// Fails unless `ours` has the fields `janus` has (those [`LEFT_OUT`] optionally) and no others,
/// object by object; `path` is where they are (`media.<mid>.` is left out of it).
fn same_fields(path: &str, janus: &Value, ours: &Value) {
    let (Some(j), Some(o)) = (janus.as_object(), ours.as_object()) else { return };
    let at = |k: &str| if path.is_empty() { k.to_owned() } else { format!("{path}.{k}") };
    for (k, jv) in j {
        let here = at(k);
        // Left out where Portunus has no source, shown where it has (a sent medium's SSRCs).
        if LEFT_OUT.contains(&here.as_str()) && !o.contains_key(k) {
            continue;
        }
        let ov = o.get(k).unwrap_or_else(|| panic!("{here} missing: Janus {janus}\nPortunus {ours}"));
        let next = if path == "media" { String::new() } else { here };
        same_fields(&next, jv, ov);
    }
    for k in o.keys() {
        assert!(j.contains_key(k), "{} is not Janus's: Janus {janus}\nPortunus {ours}", at(k));
    }
}

/// An ICE candidate as Janus lists it: its SDP line without `candidate:`
/// (`<foundation> <component> udp <priority> <address> <port> typ <type> ...`).
fn assert_candidate_line(c: &Value) {
    let parts: Vec<&str> = c.as_str().expect("a string").split_whitespace().collect();
    assert!(parts.len() >= 8, "{c}");
    assert_eq!((parts[1], parts[2], parts[6]), ("1", "udp", "typ"), "{c}");
    assert!(parts[3].parse::<u32>().is_ok() && parts[5].parse::<u16>().is_ok(), "{c}");
}

/// `address:port [type,udp] <-> address:port [type,udp]`.
fn assert_pair(p: &Value) {
    let p = p.as_str().expect("selected-pair");
    let ends: Vec<&str> = p.split(" <-> ").collect();
    assert_eq!(ends.len(), 2, "{p}");
    for e in ends {
        let (addr, kind) = e.split_once(' ').unwrap_or_else(|| panic!("{p}"));
        assert!(addr.parse::<std::net::SocketAddr>().is_ok(), "{p}");
        assert!(kind.starts_with('[') && kind.ends_with(",udp]"), "{p}");
    }
}

/// A Janus and a Portunus, each with its Admin API behind [`JANUS_ADMIN_SECRET`].
fn janus_and_portunus() -> (JanusOracle, TestServer) {
    let janus = JanusOracle::start("");
    let mut cfg = janus.portunus_config();
    cfg.admin_secret = Some(JANUS_ADMIN_SECRET.into());
    let server = TestServer::with(cfg);
    (janus, server)
}

/// The same webrtc-rs publisher and subscriber on Janus and on Portunus: `handle_info` has
/// Janus's flags, and its `webrtc` object Janus's fields (but those Portunus has no source
/// for), Janus's names for states, roles and SRTP profiles, and the same negotiated values.
#[actix_web::test]
async fn a_publisher_and_a_subscriber_are_shown_as_janus_shows_them() {
    let (janus, server) = janus_and_portunus();
    let (jc, jh, mut jp, jfeed) = publishing(&janus.ws_url).await;
    let (oc, oh, mut op, ofeed) = publishing(&server.ws_url).await;
    let their_info = handle_info(&janus.admin_url, jc.sid, jh).await;
    let our_info = handle_info(&format!("{}/admin", server.admin_url), oc.sid, oh).await;
    // The subscribers, media flowing to them.
    let (js, jsh, jsub, their_msids) = subscribing(&janus.ws_url, jfeed, false).await;
    let (os, osh, osub, our_msids) = subscribing(&server.ws_url, ofeed, false).await;
    // Every m-line in Janus's stream `janus`, or (`use_msid`) in its publisher's.
    assert_eq!(their_msids, ["a=msid:janus janus0", "a=msid:janus janus1"]);
    assert_eq!(our_msids, their_msids);
    let (jm, jmh, jmsub, their_msids) = subscribing(&janus.ws_url, jfeed, true).await;
    let (om, omh, omsub, our_msids) = subscribing(&server.ws_url, ofeed, true).await;
    assert_eq!(their_msids, [format!("a=msid:{jfeed} 0"), format!("a=msid:{jfeed} 1")]);
    assert_eq!(our_msids, [format!("a=msid:{ofeed} 0"), format!("a=msid:{ofeed} 1")]);
    send_both(&mut jp, &mut op, 50).await;
    let their_sub = handle_info(&janus.admin_url, js.sid, jsh).await;
    let our_sub = handle_info(&format!("{}/admin", server.admin_url), os.sid, osh).await;
    let their_msid_sub = handle_info(&janus.admin_url, jm.sid, jmh).await;
    let our_msid_sub = handle_info(&format!("{}/admin", server.admin_url), om.sid, omh).await;
    for peer in [&jsub, &osub, &jmsub, &omsub] {
        peer.close().await;
    }
    jp.close().await;
    op.close().await;
    let (theirs, ours) = (their_info["webrtc"].clone(), our_info["webrtc"].clone());

    // A subscriber's: Janus's flags and fields, and what was negotiated.
    same_flags(&their_sub, &our_sub, "a subscriber's");
    let (ts, os) = (&their_sub["webrtc"], &our_sub["webrtc"]);
    same_fields("", ts, os);
    // `extensions`: what each server's offer listed (its ids, and the relayed ones the
    // publisher's stream carries) that the subscriber's answer took.
    for path in ["/dtls/dtls-role", "/dtls/dtls-state", "/dtls/valid", "/bwe/twcc", "/extensions"] {
        assert_eq!(ts.pointer(path), os.pointer(path), "subscriber {path}: Janus {ts}\nPortunus {os}");
    }
    for mid in ["0", "1"] {
        for field in ["type", "mindex", "mid", "do_nacks", "direction"] {
            let (j, o) = (&ts["media"][mid][field], &os["media"][mid][field]);
            assert_eq!(j, o, "subscriber media {mid} {field}: Janus {ts}\nPortunus {os}");
        }
        assert_eq!(ts["media"][mid]["codecs"]["codec"], os["media"][mid]["codecs"]["codec"], "{os}");
        let sent = |v: &Value| v["media"][mid]["stats"]["out"]["packets"].as_u64().unwrap_or(0);
        assert!(sent(os) >= 40 && sent(ts) >= 40, "packets sent on mid {mid}: Janus {ts}\nPortunus {os}");
    }

    // A `use_msid` subscriber's names its own msid, its publisher's id (the feeds' ids differ).
    for mid in ["0", "1"] {
        let local = |v: &Value, feed: u64| {
            let m = &v["webrtc"]["media"][mid]["msid"];
            (m["local-stream"] == feed.to_string(), m["local-track"].clone())
        };
        assert_eq!(local(&their_msid_sub, jfeed), (true, json!(mid)), "Janus {their_msid_sub}");
        assert_eq!(local(&our_msid_sub, ofeed), local(&their_msid_sub, jfeed), "Portunus {our_msid_sub}");
        let (j, o) = (&their_sub["webrtc"]["media"][mid]["msid"], &our_sub["webrtc"]["media"][mid]["msid"]);
        assert_eq!(j, o, "a subscriber's msid without use_msid");
    }

    // A publisher's.
    same_flags(&their_info, &our_info, "a publisher's");
    same_fields("", &theirs, &ours);
    for path in [
        "/ice/state",
        "/ice/stream_id",
        "/ice/component_id",
        "/dtls/dtls-role",
        "/dtls/dtls-state",
        "/dtls/valid",
        "/dtls/ready",
        "/dtls/sctp-association",
        "/dtls/remote-fingerprint-hash",
        "/extensions",
        "/bwe",
    ] {
        assert_eq!(theirs.pointer(path), ours.pointer(path), "{path}: Janus {theirs}\nPortunus {ours}");
    }
    // The same peer's fingerprint as its DTLS handshake showed it, and ours as our SDP has it.
    let fingerprint = |v: &Value, k: &str| v["dtls"][k].as_str().map(|f| (f.len(), f.to_ascii_uppercase() == f));
    assert_eq!(fingerprint(&theirs, "remote-fingerprint"), fingerprint(&ours, "remote-fingerprint"), "{ours}");
    assert_eq!(fingerprint(&theirs, "fingerprint"), fingerprint(&ours, "fingerprint"), "{ours}");
    // Each server picks its own profile from the client's list, named as Janus names them.
    let profiles =
        ["SRTP_AEAD_AES_128_GCM", "SRTP_AEAD_AES_256_GCM", "SRTP_AES128_CM_SHA1_80", "SRTP_AES128_CM_SHA1_32"];
    for v in [&theirs, &ours] {
        assert!(profiles.iter().any(|p| v["dtls"]["srtp-profile"] == *p), "{v}");
        assert_pair(&v["ice"]["selected-pair"]);
        for c in v["ice"]["local-candidates"].as_array().into_iter().chain(v["ice"]["remote-candidates"].as_array()) {
            c.iter().for_each(assert_candidate_line);
        }
    }
    for mid in ["0", "1"] {
        for field in ["type", "mindex", "mid", "msid", "do_nacks", "nack-queue-ms", "direction", "codecs"] {
            let (j, o) = (&theirs["media"][mid][field], &ours["media"][mid][field]);
            assert_eq!(j, o, "media {mid} {field}: Janus {theirs}\nPortunus {ours}");
        }
        let (j, o) = (&theirs["media"][mid]["ssrc"]["ssrc-peer"], &ours["media"][mid]["ssrc"]["ssrc-peer"]);
        assert_eq!(j, o, "the publisher's SSRC on mid {mid}");
        // The same 50 packets, counted as Janus counts them (headers too).
        let counted = |v: &Value| {
            (v["media"][mid]["stats"]["in"]["packets"].clone(), v["media"][mid]["stats"]["in"]["bytes"].clone())
        };
        assert_eq!(counted(&theirs), counted(&ours), "what the publisher sent on mid {mid}: {ours}");
    }
}

/// `resolve_address` and `custom_logline` answer as Janus's: the address and the time taken,
/// Janus's error for a name that does not resolve, and the fields' checks.
#[actix_web::test]
async fn resolve_address_and_custom_logline_answer_as_janus() {
    let (janus, server) = janus_and_portunus();
    let ours = format!("{}/admin", server.admin_url);
    let requests = [
        ("resolve_address", json!({"janus": "resolve_address", "address": "localhost"})),
        ("resolve_address of nothing", json!({"janus": "resolve_address", "address": ""})),
        ("resolve_address without an address", json!({"janus": "resolve_address"})),
        ("custom_logline", json!({"janus": "custom_logline", "line": "portunus test line", "level": 3})),
        ("custom_logline without a line", json!({"janus": "custom_logline", "level": 3})),
        ("custom_logline with a word for a level", json!({"janus": "custom_logline", "line": "x", "level": "high"})),
    ];
    for (what, req) in requests {
        let theirs = admin(&janus.admin_url, req.clone()).await;
        // The time taken is the server's own.
        let theirs = match theirs["elapsed"].as_u64() {
            Some(us) => placeholders(theirs, &[(us, "elapsed")]),
            None => theirs,
        };
        same_as_janus(what, &theirs, &admin(&ours, req).await);
    }
}

/// `query_eventhandler`, `query_logger` and `custom_event` answer as a Janus with neither event
/// handlers nor loggers (`info` lists none on either server): the name not found, the event
/// accepted, and the fields' checks.
#[actix_web::test]
async fn event_handler_and_logger_requests_answer_as_janus_without_any() {
    let (janus, server) = janus_and_portunus();
    let ours = format!("{}/admin", server.admin_url);
    let requests = [
        ("query_eventhandler", json!({"janus": "query_eventhandler", "handler": "janus.eventhandler.sampleevh"})),
        ("query_eventhandler without a handler", json!({"janus": "query_eventhandler"})),
        ("query_eventhandler with a number", json!({"janus": "query_eventhandler", "handler": 5})),
        (
            "query_eventhandler with a word for a request",
            json!({"janus": "query_eventhandler", "handler": "h", "request": "x"}),
        ),
        ("query_logger", json!({"janus": "query_logger", "logger": "janus.logger.jsonlog", "request": {}})),
        ("query_logger without a logger", json!({"janus": "query_logger"})),
        ("custom_event", json!({"janus": "custom_event", "schema": "example.com/test", "data": {"n": 1}})),
        ("custom_event without data", json!({"janus": "custom_event", "schema": "example.com/test"})),
        ("custom_event with a word for data", json!({"janus": "custom_event", "schema": "s", "data": "x"})),
        ("custom_event without a schema", json!({"janus": "custom_event", "data": {}})),
    ];
    answered_alike(&janus.admin_url, &ours, requests).await;
    for server_info in
        [admin(&janus.admin_url, json!({"janus": "info"})).await, admin(&ours, json!({"janus": "info"})).await]
    {
        assert_eq!(server_info["event_handlers"], false, "{server_info}");
        assert_eq!(server_info["events"], json!({}), "{server_info}");
        assert_eq!(server_info["loggers"], json!({}), "{server_info}");
    }
}

/// `set_log_timestamps` and `set_log_colors`: the same answers to the same requests, bad ones
/// included, and `get_status` then showing the same switches (each server's own log).
#[actix_web::test]
async fn the_log_s_time_and_colmineare_switched_as_janus_switches_them() {
    let (janus, server) = janus_and_portunus();
    let ours = format!("{}/admin", server.admin_url);
    let requests = [
        ("set_log_timestamps off", json!({"janus": "set_log_timestamps", "timestamps": false})),
        ("set_log_timestamps without a value", json!({"janus": "set_log_timestamps"})),
        ("set_log_timestamps with a number", json!({"janus": "set_log_timestamps", "timestamps": 1})),
        ("set_log_colors off", json!({"janus": "set_log_colors", "colors": false})),
        ("set_log_colors with a word", json!({"janus": "set_log_colors", "colors": "no"})),
    ];
    let switches =
        |status: &Value| (status["status"]["log_timestamps"].clone(), status["status"]["log_colors"].clone());
    answered_alike(&janus.admin_url, &ours, requests).await;
    for on in [true, false] {
        let switched = [("set_log_timestamps", "timestamps"), ("set_log_colors", "colors")]
            .map(|(verb, field)| (verb, json!({"janus": verb, field: on})));
        answered_alike(&janus.admin_url, &ours, switched).await;
        let status = json!({"janus": "get_status"});
        let (theirs, mine) = (admin(&janus.admin_url, status.clone()).await, admin(&ours, status).await);
        assert_eq!(switches(&theirs), (json!(on), json!(on)), "{theirs}");
        assert_eq!(switches(&mine), switches(&theirs), "{mine}");
    }
    shared::telemetry::set_timestamps(true);
}

/// A STUN server on `ip` that answers every Binding request with the address it came from
/// (webrtc-rs's STUN codec, not the one under test); its address. It ends with the test.
async fn stun_server(ip: std::net::Ipv4Addr) -> std::net::SocketAddr {
    use rtc::stun::message::{Message, Setter, BINDING_REQUEST, BINDING_SUCCESS};
    use rtc::stun::xoraddr::XorMappedAddress;
    let socket = tokio::net::UdpSocket::bind((ip, 0)).await.expect("a STUN port");
    let addr = socket.local_addr().expect("its address");
    actix_web::rt::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let mut request = Message::new();
            request.raw = buf[..n].to_vec();
            if request.decode().is_err() || request.typ != BINDING_REQUEST {
                continue;
            }
            let mut answer = Message::new();
            let mapped = XorMappedAddress { ip: from.ip(), port: from.port() };
            let setters: [Box<dyn Setter>; 3] =
                [Box::new(BINDING_SUCCESS), Box::new(request.transaction_id), Box::new(mapped)];
            if answer.build(&setters).is_ok() {
                let _ = socket.send_to(&answer.raw, from).await;
            }
        }
    });
    addr
}

/// `test_stun` answers as Janus's: the address a STUN server saw (from the local port asked
/// for, if any), Janus's errors for a name that does not resolve and a server that does not
/// answer (after its 5 s), and the fields' checks.
#[actix_web::test]
async fn test_stun_answers_as_janus() {
    let (janus, server) = janus_and_portunus();
    let ours = format!("{}/admin", server.admin_url);
    // On the client host, which Janus's host reaches over their bridge.
    let stun = stun_server(janus.client_addr).await;
    let at = janus.client_addr.to_string();
    let silent = std::net::UdpSocket::bind((janus.client_addr, 0)).expect("a port nobody answers on");
    let silent_port = silent.local_addr().expect("its address").port();
    let requests = [
        ("test_stun", json!({"janus": "test_stun", "address": at, "port": stun.port()})),
        // Each server's own loopback, where no STUN server is.
        ("test_stun by name", json!({"janus": "test_stun", "address": "localhost", "port": stun.port()})),
        (
            "test_stun of a name that does not resolve",
            json!({"janus": "test_stun", "address": "nowhere.invalid", "port": 3478}),
        ),
        ("test_stun without an answer", json!({"janus": "test_stun", "address": at, "port": silent_port})),
        ("test_stun without a port", json!({"janus": "test_stun", "address": "127.0.0.1"})),
        ("test_stun below zero", json!({"janus": "test_stun", "address": "127.0.0.1", "port": -1})),
        (
            "test_stun with a word for the local port",
            json!({"janus": "test_stun", "address": "127.0.0.1", "port": 1, "localport": "x"}),
        ),
    ];
    // One request at a time (Janus answers its Admin API in turn), to both servers at once;
    // a server waits 5 s for an answer that does not come.
    for (what, req) in requests {
        let ask = |url| admin_post_within(url, "t", JANUS_ADMIN_SECRET, req.clone(), Duration::from_secs(8));
        let (theirs, mine) = futures_util::join!(ask(&janus.admin_url), ask(&ours));
        // The time taken, and the address and port the request left from, are each server's own.
        let own = |v: Value, host: std::net::Ipv4Addr| {
            let numbers: Vec<(u64, &str)> = [("elapsed", "elapsed"), ("public_port", "port")]
                .iter()
                .filter_map(|(k, name)| v[*k].as_u64().map(|n| (n, *name)))
                .collect();
            placeholders_text(placeholders(v, &numbers), &[(&host.to_string(), "host")])
        };
        same_as_janus(what, &own(theirs, janus.addr), &own(mine, janus.client_addr));
    }
    // From the local port asked for: each server its own free one.
    for (url, host) in [(&janus.admin_url, janus.addr), (&ours, janus.client_addr)] {
        let port = free_port();
        let req = json!({"janus": "test_stun", "address": at, "port": stun.port(), "localport": port});
        let answer = admin(url, req).await;
        let mapped = (answer["public_ip"].as_str(), answer["public_port"].as_u64());
        assert_eq!(mapped, (Some(host.to_string().as_str()), Some(u64::from(port))), "{answer}");
    }
}

/// The media knobs (`set_no_media_timer`, `set_slowlink_threshold`, `set_min_nack_queue`,
/// `set_nack_optimizations`): the same answers to the same requests, bad ones included, and
/// then the same `get_status` (Portunus's own default NACK queue is 500 ms, Janus's 200: both
/// servers start from Janus's here; the log's level, time and colours are each process's own).
#[actix_web::test]
async fn media_knobs_are_turned_and_reported_as_janus_does() {
    let janus = JanusOracle::start("");
    let mut cfg = janus.portunus_config();
    cfg.admin_secret = Some(JANUS_ADMIN_SECRET.into());
    cfg.min_nack_queue = 200;
    let server = TestServer::with(cfg);
    let ours = format!("{}/admin", server.admin_url);
    let requests = [
        ("get_status at first", json!({"janus": "get_status"})),
        ("set_no_media_timer", json!({"janus": "set_no_media_timer", "no_media_timer": 3})),
        ("set_no_media_timer without a value", json!({"janus": "set_no_media_timer"})),
        ("set_no_media_timer below zero", json!({"janus": "set_no_media_timer", "no_media_timer": -2})),
        ("set_no_media_timer with a word", json!({"janus": "set_no_media_timer", "no_media_timer": "3"})),
        ("set_slowlink_threshold", json!({"janus": "set_slowlink_threshold", "slowlink_threshold": 6})),
        (
            "set_slowlink_threshold with a fraction",
            json!({"janus": "set_slowlink_threshold", "slowlink_threshold": 1.5}),
        ),
        ("set_min_nack_queue", json!({"janus": "set_min_nack_queue", "min_nack_queue": 300})),
        ("set_min_nack_queue past the most", json!({"janus": "set_min_nack_queue", "min_nack_queue": 5000})),
        ("set_nack_optimizations", json!({"janus": "set_nack_optimizations", "nack_optimizations": true})),
        ("set_nack_optimizations with a number", json!({"janus": "set_nack_optimizations", "nack_optimizations": 1})),
        ("set_nack_optimizations without a value", json!({"janus": "set_nack_optimizations"})),
        ("get_status after", json!({"janus": "get_status"})),
    ];
    let logging_aside = |mut v: Value| {
        if let Some(status) = v.get_mut("status").and_then(Value::as_object_mut) {
            status.remove("log_level");
            status.remove("log_timestamps");
            status.remove("log_colors");
        }
        v
    };
    for (what, req) in requests {
        let theirs = logging_aside(admin(&janus.admin_url, req.clone()).await);
        same_as_janus(what, &theirs, &logging_aside(admin(&ours, req).await));
    }
}

/// A pcap file's packets, its header checked: (inbound, the bytes kept, the packet's length).
fn pcap_packets(file: &[u8]) -> Vec<(bool, Vec<u8>, usize)> {
    let header = [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
    assert_eq!(file[..24], header, "libpcap 2.4 on Ethernet");
    let mut packets = Vec::new();
    let mut at = 24;
    while at < file.len() {
        let word = |i: usize| u32::from_le_bytes(file[i..i + 4].try_into().unwrap()) as usize;
        let (kept, whole) = (word(at + 8), word(at + 12));
        let frame = &file[at + 16..at + 16 + kept];
        assert_eq!(frame[12..14], [8, 0], "IPv4 in Ethernet");
        let inbound = frame[26..34] == [10, 1, 1, 1, 10, 2, 2, 2];
        assert!(inbound || frame[26..34] == [10, 2, 2, 2, 10, 1, 1, 1], "made-up addresses");
        let ports: &[u8] = if inbound { &[0x03, 0xe8, 0x07, 0xd0] } else { &[0x07, 0xd0, 0x03, 0xe8] };
        assert_eq!(&frame[34..38], ports, "UDP 1000 <-> 2000");
        packets.push((inbound, frame[42..].to_vec(), whole - 42));
        at += 16 + kept;
    }
    packets
}

/// A server's Admin API path (to a session or a handle) and the session it names in its errors.
type AdminPath = (String, u64);

/// The Admin API's answer at `path`, its session id a placeholder.
async fn answer(path: &AdminPath, req: Value) -> Value {
    placeholders(admin(&path.0, req).await, &[(path.1, "session_id")])
}

/// `req` answered alike at Janus's path and ours.
async fn alike(what: &str, req: Value, (j, o): &(AdminPath, AdminPath)) {
    same_as_janus(what, &answer(j, req.clone()).await, &answer(o, req).await)
}

/// The RTP packets' lengths, sorted, each whole (nothing truncated), inbound or outbound.
fn rtp_lengths(packets: &[(bool, Vec<u8>, usize)], inbound: bool) -> Vec<usize> {
    let mut lengths: Vec<usize> = packets
        .iter()
        .filter(|(i, p, _)| *i == inbound && !is_rtcp(p))
        .map(|(_, p, whole)| {
            assert_eq!(p.len(), *whole, "nothing truncated");
            p.len()
        })
        .collect();
    lengths.sort_unstable();
    lengths
}

/// RTCP, by its second byte (RFC 5761), rather than RTP.
fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() > 1 && (192..=223).contains(&packet[1])
}

/// `start_pcap`, `start_text2pcap` and their stops answer as Janus's do (mistakes included), and
/// the files hold what Janus's hold: the same publisher's packets, framed alike, and a
/// subscriber's as many packets sent.
#[actix_web::test]
async fn packet_captures_answer_and_hold_what_janus_s_hold() {
    let _turn = CAPTURE_TESTS.lock().await;
    let (janus, server) = janus_and_portunus();
    let ours = format!("{}/admin", server.admin_url);
    let (jc, jh, mut jp, jfeed) = publishing(&janus.ws_url).await;
    let (oc, oh, mut op, ofeed) = publishing(&server.ws_url).await;
    let (js, jsh, jsub, _) = subscribing(&janus.ws_url, jfeed, false).await;
    let (os, osh, osub, _) = subscribing(&server.ws_url, ofeed, false).await;
    let dir = std::env::temp_dir().join(format!("portunus-captures-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let folder = dir.display().to_string();
    // Each server's Admin API path to a handle, and the session it names in its errors.
    let publisher =
        ((format!("{}/{}/{jh}", janus.admin_url, jc.sid), jc.sid), (format!("{ours}/{}/{oh}", oc.sid), oc.sid));
    let subscriber =
        ((format!("{}/{}/{jsh}", janus.admin_url, js.sid), js.sid), (format!("{ours}/{}/{osh}", os.sid), os.sid));
    let mistakes = [
        ("a stop with no capture", json!({"janus": "stop_pcap"})),
        ("truncate below zero", json!({"janus": "start_pcap", "truncate": -1})),
        ("a folder that is not a string", json!({"janus": "start_text2pcap", "folder": 7})),
        ("a protected folder", json!({"janus": "start_pcap", "folder": "/etc", "filename": "portunus-never.pcap"})),
        ("a folder that cannot be made", json!({"janus": "start_pcap", "folder": "/proc/portunus/never"})),
    ];
    for (what, req) in mistakes {
        alike(what, req, &publisher).await;
    }
    let at_session = ((format!("{}/{}", janus.admin_url, jc.sid), jc.sid), (format!("{ours}/{}", oc.sid), oc.sid));
    alike("start_pcap at a session", json!({"janus": "start_pcap"}), &at_session).await;
    // The handle is looked up before the request's fields are checked.
    let no_handle = ((format!("{}/{}/1", janus.admin_url, jc.sid), jc.sid), (format!("{ours}/{}/1", oc.sid), oc.sid));
    alike("a bad truncate for no handle", json!({"janus": "start_pcap", "truncate": -1}), &no_handle).await;

    // Both handles captured, each server to its own files.
    let start = |verb: &str, file: &str| json!({"janus": verb, "folder": folder, "filename": file, "truncate": 0});
    for (what, urls) in [("publisher", &publisher), ("subscriber", &subscriber)] {
        let (j, o) = urls;
        let theirs = answer(j, start("start_pcap", &format!("janus-{what}.pcap"))).await;
        let mine = answer(o, start("start_pcap", &format!("portunus-{what}.pcap"))).await;
        same_as_janus(&format!("a {what}'s start_pcap"), &theirs, &mine);
    }
    alike("start_pcap again", start("start_pcap", "x.pcap"), &publisher).await;
    alike("start_text2pcap during a pcap", start("start_text2pcap", "x.txt"), &publisher).await;
    let our_info = handle_info(&ours, oc.sid, oh).await;
    assert_eq!(our_info["dump-to-pcap"], true, "{our_info}");
    assert_eq!(our_info["pcap-file"], format!("{folder}/portunus-publisher.pcap"), "{our_info}");
    let their_info = handle_info(&janus.admin_url, jc.sid, jh).await;
    assert_eq!(their_info["pcap-file"], format!("{folder}/janus-publisher.pcap"), "{their_info}");

    const SENT: usize = 30;
    send_both(&mut jp, &mut op, SENT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(open_captures(), 2, "the publisher's and the subscriber's");
    alike("the publisher's stop_pcap", json!({"janus": "stop_pcap"}), &publisher).await;
    alike("the subscriber's stop_text2pcap, a pcap running", json!({"janus": "stop_text2pcap"}), &subscriber).await;
    alike("stop_pcap again", json!({"janus": "stop_pcap"}), &publisher).await;
    let info = handle_info(&ours, oc.sid, oh).await;
    assert!(info.get("dump-to-pcap").is_none() && info.get("pcap-file").is_none(), "{info}");
    until_captures_open(0, "both stopped").await;

    let read = |name: &str| pcap_packets(&std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")));
    let rtp = rtp_lengths;
    let (theirs, mine) = (read("janus-publisher.pcap"), read("portunus-publisher.pcap"));
    assert!(rtp(&theirs, true).len() >= SENT * 2, "audio and video from the publisher: {}", rtp(&theirs, true).len());
    assert_eq!(rtp(&mine, true), rtp(&theirs, true), "the publisher's RTP, packet by packet (lengths)");
    let kinds = |packets: &[(bool, Vec<u8>, usize)]| {
        packets.iter().filter(|(i, p, _)| !i && is_rtcp(p)).map(|(_, p, _)| p[1]).collect::<Vec<_>>()
    };
    // Receiver reports go to the publisher once a second (the wait above is longer).
    assert!(kinds(&theirs).contains(&201), "Janus's {:?}", kinds(&theirs));
    assert!(kinds(&mine).contains(&201), "receiver reports sent, among {:?}", kinds(&mine));
    for (_, p, _) in mine.iter().filter(|(i, p, _)| *i && !is_rtcp(p)) {
        assert_eq!(p[0] >> 6, 2, "decrypted RTP: version 2");
        let ssrc = u32::from_be_bytes(p[8..12].try_into().unwrap());
        assert!(
            [1111, portunus_tests::peer::VIDEO_SSRC].contains(&ssrc),
            "the publisher's SSRCs, in the clear: {ssrc}"
        );
    }
    let (theirs, mine) = (read("janus-subscriber.pcap"), read("portunus-subscriber.pcap"));
    let sent = |packets: &[(bool, Vec<u8>, usize)]| rtp(packets, false).len();
    assert!(sent(&theirs) >= SENT * 2, "Janus sent its subscriber {}", sent(&theirs));
    // Give or take a retransmission or two: a loaded machine makes a subscriber ask for one.
    let (ours, janus_s) = (sent(&mine), sent(&theirs));
    assert!(ours.abs_diff(janus_s) <= 2, "the subscriber's RTP, {ours} packets, as many as Janus sent ({janus_s})");

    // text2pcap, 16 bytes of each packet.
    let start = json!({"janus": "start_text2pcap", "folder": folder, "truncate": 16});
    let (j, o) = &publisher;
    let mut with_name = start.clone();
    with_name["filename"] = json!("janus.txt");
    let theirs = answer(j, with_name).await;
    let mut with_name = start;
    with_name["filename"] = json!("portunus.txt");
    same_as_janus("start_text2pcap", &theirs, &answer(o, with_name).await);
    send_both(&mut jp, &mut op, 10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    alike("stop_text2pcap", json!({"janus": "stop_text2pcap"}), &publisher).await;
    let lines = |name: &str, sid: u64, h: u64| {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let label = format!("[session={sid}][handle={h}]");
        let mut inbound_rtp = 0;
        for line in text.split_terminator("\r\n") {
            let f: Vec<&str> = line.split(' ').collect();
            assert!(matches!(f[0], "I" | "O") && f[1].len() == 15 && f[1].as_bytes()[8] == b'.', "{line}");
            assert_eq!((f[2], f[3]), ("000000", ""), "{line}");
            let n = f.len() - 6;
            assert!(f[4..4 + n].iter().all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok()), "{line}");
            assert_eq!(f[f.len() - 1], label, "{line}");
            if f[0] == "I" && f[f.len() - 2] == "JANUS_TEXT2PCAP_RTP" {
                assert_eq!(n, 16, "truncated to 16 bytes: {line}");
                inbound_rtp += 1;
            }
        }
        assert!(!text.is_empty() && text.ends_with("\r\n"));
        inbound_rtp
    };
    let theirs = lines("janus.txt", jc.sid, jh);
    assert!(theirs >= 20, "{theirs} lines of the publisher's RTP");
    assert_eq!(lines("portunus.txt", oc.sid, oh), theirs, "as many RTP lines as Janus's");
    // The same clock: each server's first line within seconds of the other's (both local time).
    let first_time = |name: &str| {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        let hms: Vec<i64> =
            text.split(' ').nth(1).unwrap_or_default()[..8].split(':').map(|x| x.parse().unwrap()).collect();
        hms[0] * 3600 + hms[1] * 60 + hms[2]
    };
    let apart = (first_time("janus.txt") - first_time("portunus.txt")).rem_euclid(86_400);
    assert!(apart.min(86_400 - apart) <= 5, "{apart} s between the two captures' first lines");

    // A handle detached with a capture running: the capture ends with it.
    let (_, o) = &subscriber;
    let started = admin(&o.0, json!({"janus": "start_pcap", "folder": folder, "filename": "detached.pcap"})).await;
    assert_eq!(started["janus"], "success", "{started}");
    assert_eq!(open_captures(), 1);
    let detached = admin(&o.0, json!({"janus": "detach_handle"})).await;
    assert_eq!(detached["janus"], "success", "{detached}");
    until_captures_open(0, "the detached handle's").await;
    for peer in [&jsub, &osub] {
        peer.close().await;
    }
    jp.close().await;
    op.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A capture started on a handle in no room yet answers as Janus's does (mistakes included),
/// makes its file at once and shows in `handle_info`; stopped there, it is gone; started again,
/// the handle's media are in it once the handle joins and publishes, as in Janus's.
#[actix_web::test]
async fn a_capture_started_before_the_join_holds_what_the_handle_then_sends() {
    let _turn = CAPTURE_TESTS.lock().await;
    let (janus, server) = janus_and_portunus();
    let ours = format!("{}/admin", server.admin_url);
    let dir = std::env::temp_dir().join(format!("portunus-early-captures-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let folder = dir.display().to_string();
    let (mut jc, mut oc) = (with_room(&janus.ws_url).await, with_room(&server.ws_url).await);
    let (jh, oh) = (jc.attach().await, oc.attach().await);
    let handle =
        ((format!("{}/{}/{jh}", janus.admin_url, jc.sid), jc.sid), (format!("{ours}/{}/{oh}", oc.sid), oc.sid));
    let start = |verb: &str, file: &str| json!({"janus": verb, "folder": folder, "filename": file});
    let mistakes = [
        ("a stop with no capture", json!({"janus": "stop_pcap"})),
        ("a protected folder", json!({"janus": "start_pcap", "folder": "/etc", "filename": "portunus-never.pcap"})),
        ("a folder that cannot be made", json!({"janus": "start_pcap", "folder": "/proc/portunus/never"})),
    ];
    for (what, req) in mistakes {
        alike(what, req, &handle).await;
    }
    let (j, o) = &handle;
    let theirs = answer(j, start("start_pcap", "janus-unused.pcap")).await;
    same_as_janus("start_pcap in no room", &theirs, &answer(o, start("start_pcap", "portunus-unused.pcap")).await);
    alike("start_text2pcap in no room, a pcap kept", start("start_text2pcap", "x.txt"), &handle).await;
    for name in ["janus-unused.pcap", "portunus-unused.pcap"] {
        assert!(dir.join(name).is_file(), "{name}: made at the start");
    }
    let info = handle_info(&ours, oc.sid, oh).await;
    assert_eq!(
        (&info["dump-to-pcap"], &info["pcap-file"]),
        (&json!(true), &json!(format!("{folder}/portunus-unused.pcap")))
    );
    alike("stop_pcap in no room", json!({"janus": "stop_pcap"}), &handle).await;
    alike("stop_pcap in no room, again", json!({"janus": "stop_pcap"}), &handle).await;
    let info = handle_info(&ours, oc.sid, oh).await;
    assert!(info.get("dump-to-pcap").is_none() && info.get("pcap-file").is_none(), "{info}");
    for name in ["janus-unused.pcap", "portunus-unused.pcap"] {
        let len = std::fs::metadata(dir.join(name)).map(|m| m.len()).ok();
        assert_eq!(len, Some(24), "{name}: its header alone");
    }

    let theirs = answer(j, start("start_pcap", "janus-early.pcap")).await;
    same_as_janus("start_pcap before the join", &theirs, &answer(o, start("start_pcap", "portunus-early.pcap")).await);
    let ((mut jp, _), (mut op, _)) = (publish(&mut jc, jh).await, publish(&mut oc, oh).await);
    const SENT: usize = 30;
    send_both(&mut jp, &mut op, SENT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(open_captures(), 1, "the publisher's, from its join");
    let info = handle_info(&ours, oc.sid, oh).await;
    assert_eq!(info["pcap-file"], format!("{folder}/portunus-early.pcap"), "{info}");
    alike("start_pcap in the room, one kept", start("start_pcap", "x.pcap"), &handle).await;
    alike("stop_pcap in the room", json!({"janus": "stop_pcap"}), &handle).await;
    until_captures_open(0, "stopped").await;
    let read = |name: &str| pcap_packets(&std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")));
    let (theirs, mine) = (read("janus-early.pcap"), read("portunus-early.pcap"));
    // From the first packet on: the 50 sent while publishing and the 30 after, audio and video.
    assert!(rtp_lengths(&theirs, true).len() >= (50 + SENT) * 2, "{}", rtp_lengths(&theirs, true).len());
    assert_eq!(rtp_lengths(&mine, true), rtp_lengths(&theirs, true), "the publisher's RTP (lengths)");
    jp.close().await;
    op.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The capture tests take turns: they count the captures open in the whole process.
static CAPTURE_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Packet captures open in this process (its media node's, in either mode: the node runs here).
fn open_captures() -> usize {
    media_node::media::capture::tally().0
}

/// Waits (up to 3 s) until `n` captures are open: a writer thread ends just after its file.
async fn until_captures_open(n: usize, what: &str) {
    for _ in 0..60 {
        if open_captures() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} captures open, not {n}: {what}", open_captures());
}

/// `query_transport`: each transport's answers and refusals as Janus's HTTP and WebSocket
/// transports give them, and `connections` counting what opens and closes on each server.
#[actix_web::test]
async fn transports_answer_queries_as_janus_s_transports_do() {
    let (janus, server) = janus_and_portunus();
    let ours = format!("{}/admin", server.admin_url);
    let (http, ws) = ("janus.transport.http", "janus.transport.websockets");
    let query = |t: &str, r: Value| json!({"janus": "query_transport", "transport": t, "request": r});
    let requests = [
        ("query_transport without a transport", json!({"janus": "query_transport"})),
        ("query_transport with a number", json!({"janus": "query_transport", "transport": 5})),
        ("a transport not loaded", json!({"janus": "query_transport", "transport": "janus.transport.mqtt"})),
        ("a word for the request", json!({"janus": "query_transport", "transport": http, "request": "x"})),
        ("no request for the transport", json!({"janus": "query_transport", "transport": http})),
        ("a number for the transport's request", query(http, json!({"request": 5}))),
        ("a request the transport does not know", query(ws, json!({"request": "reload"}))),
        ("configure, events on", query(http, json!({"request": "configure", "events": true}))),
        ("configure, compact JSON", query(ws, json!({"request": "Configure", "json": "compact"}))),
        ("configure, a layout neither knows", query(ws, json!({"request": "configure", "json": "fancy"}))),
        ("configure, a word for events", query(http, json!({"request": "configure", "events": "yes"}))),
    ];
    answered_alike(&janus.admin_url, &ours, requests).await;

    // Where Portunus differs, and says so: its WebSocket transport has no libwebsockets logging.
    let logging = admin(&ours, query(ws, json!({"request": "configure", "logging": "all"}))).await;
    assert_eq!(logging["response"]["notes"], json!(["Ignored libwebsockets logging (not used by this transport)"]));

    let host_port = |url: &str| -> std::net::SocketAddr {
        let rest = url.split("://").nth(1).expect("a URL");
        rest.split('/').next().expect("host:port").parse().expect("an address")
    };
    let clients = |r: &Value| r["connections"].as_u64().expect("a count of WebSocket clients");
    let admin_http = |r: &Value| r["connections"]["admin_http"].as_u64().expect("admin_http");
    for (admin_url, ws_url) in [(&janus.admin_url, &janus.ws_url), (&ours, &server.ws_url)] {
        // WebSocket clients, counted while connected.
        let before = clients(&connections_until(admin_url, ws, |_| true, "").await);
        let two = [WsClient::connect(ws_url).await, WsClient::connect(ws_url).await];
        connections_until(admin_url, ws, |r| clients(r) == before + 2, "two WebSocket clients more").await;
        drop(two);
        connections_until(admin_url, ws, |r| clients(r) == before, "the closed WebSocket clients gone").await;
        // HTTP connections to the admin listener, idle ones included, and the request being
        // answered among the messages.
        let open: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(host_port(admin_url)).expect("a connection to the admin listener"))
            .collect();
        let during =
            connections_until(admin_url, http, |r| admin_http(r) >= 4, "three idle connections and the query's").await;
        assert!(during["messages"].as_u64() >= Some(1), "{admin_url}: the query itself is a message: {during}");
        drop(open);
        let closed = |r: &Value| admin_http(r) + 3 <= admin_http(&during);
        connections_until(admin_url, http, closed, "the three closed connections gone").await;
    }
    // Janus here serves its Admin API alone over HTTP; Portunus also its Janus API, counted too.
    let ours_now = connections_until(&ours, http, |_| true, "").await;
    let theirs_now = connections_until(&janus.admin_url, http, |_| true, "").await;
    let keys =
        |r: &Value| r["connections"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    assert_eq!(keys(&theirs_now), ["admin_http"], "{theirs_now}");
    assert_eq!(keys(&ours_now), ["http", "admin_http"], "{ours_now}");
    let api_http = |r: &Value| r["connections"]["http"].as_u64().expect("http");
    let before = api_http(&ours_now);
    let open: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(host_port(&server.http_url)).expect("a connection to the API listener"))
        .collect();
    connections_until(&ours, http, |r| api_http(r) == before + 2, "two connections to the Janus API listener").await;
    drop(open);
    connections_until(&ours, http, |r| api_http(r) == before, "the two closed connections gone").await;
    // A parked long-poll is a message being answered, and a parked long-poll on `/metrics`.
    let messages = |r: &Value| r["messages"].as_u64().expect("messages");
    let quiet = connections_until(&ours, http, |_| true, "").await;
    let client = HttpClient::new(&server.base_url);
    let session = client.create_session().await;
    let parked = actix_web::rt::spawn(async move { client.poll(session, 1).await });
    connections_until(&ours, http, |r| messages(r) == messages(&quiet) + 1, "the long-poll among the messages").await;
    let (_, text) = get_text(&format!("{}/metrics", server.admin_url)).await;
    assert_eq!(metric(&text, "portunus_longpolls"), Some(1.0), "{text}");
    parked.abort();
    // Its Admin API's WebSocket clients are the WebSocket transport's too, as in Janus.
    let before = clients(&connections_until(&ours, ws, |_| true, "").await);
    let admin_ws = WsClient::connect_admin(server.admin_ws_url.as_deref().expect("an admin WebSocket")).await;
    connections_until(&ours, ws, |r| clients(r) == before + 1, "an Admin API WebSocket client").await;
    drop(admin_ws);
}

/// The `response` to `query_transport` `connections` for `transport` at `url`, once `ok` holds
/// for it (connections are counted as the server accepts and closes them, not as the client
/// does): the test fails if it does not within 5 s.
async fn connections_until(url: &str, transport: &str, ok: impl Fn(&Value) -> bool, what: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let query = json!({"janus": "query_transport", "transport": transport, "request": {"request": "connections"}});
        let answer = admin(url, query).await;
        assert_eq!(answer["response"]["result"], 200, "{answer}");
        if ok(&answer["response"]) {
            return answer["response"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "{url} {transport}: {what}: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The transports' JSON layout (`json`), switched by `query_transport` on both servers: their
/// WebSocket frames and Admin API answers then read alike, byte for byte, in each layout.
#[actix_web::test]
async fn json_is_laid_out_as_janus_lays_it_out() {
    let (janus, server) = janus_and_portunus();
    let ours = format!("{}/admin", server.admin_url);
    for layout in ["indented", "plain", "compact"] {
        let mut written = Vec::new();
        for (admin_url, ws_url) in [(&janus.admin_url, &janus.ws_url), (&ours, &server.ws_url)] {
            for t in ["janus.transport.websockets", "janus.transport.http"] {
                let configure = json!({"janus": "query_transport", "transport": t, "request": {"request": "configure", "json": layout}});
                let r = admin(admin_url, configure).await;
                assert_eq!(r["response"], json!({"result": 200}), "{admin_url} {t} {layout}: {r}");
            }
            let mut ws = WsClient::connect(ws_url).await;
            ws.send_text(r#"{"janus":"ping","transaction":"p"}"#).await;
            let pong = ws.recv_text().await;
            ws.send_text(r#"{"janus":"bogus","transaction":"b"}"#).await;
            let error = ws.recv_text().await;
            let ping = json!({"janus": "ping", "transaction": "a", "admin_secret": JANUS_ADMIN_SECRET});
            let mut answer = awc::Client::new().post(admin_url.as_str()).send_json(&ping).await.expect("admin POST");
            let admin_text = String::from_utf8(answer.body().await.expect("a body").to_vec()).expect("UTF-8");
            let sessions = json!({"janus": "list_sessions", "transaction": "s", "admin_secret": JANUS_ADMIN_SECRET});
            let mut answer =
                awc::Client::new().post(admin_url.as_str()).send_json(&sessions).await.expect("admin POST");
            let sessions_text = String::from_utf8(answer.body().await.expect("a body").to_vec()).expect("UTF-8");
            written.push([pong, error, admin_text, sessions_text]);
        }
        assert_eq!(written[0], written[1], "{layout}: Janus's, then Portunus's");
        // Portunus's Janus API over HTTP (which this Janus does not serve) in the same layout.
        let mut ping = awc::Client::new().get(format!("{}/ping", server.base_url)).send().await.expect("GET ping");
        let ping = String::from_utf8(ping.body().await.expect("a body").to_vec()).expect("UTF-8");
        let expected = match layout {
            "indented" => "{\n   \"janus\": \"pong\",\n   \"transaction\": \"",
            "plain" => "{\"janus\": \"pong\", \"transaction\": \"",
            _ => "{\"janus\":\"pong\",\"transaction\":\"",
        };
        assert!(ping.starts_with(expected), "{layout}: {ping}");
    }
}
