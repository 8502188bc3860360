//! RTP forwarders: a publisher's streams sent as RTP to UDP sockets of the test's, with the SSRC
//! and payload type asked for, plain or SRTP; a receiver's PLI on the forwarder's RTCP port
//! reaching the publisher; `listforwarders` and `stop_rtp_forward`; forwarders ending with their
//! publisher; destinations outside `rtp_forward_allowed` refused. Remotizations
//! (`publish_remotely`) to this server's own remote publishers: resumed after a republish, and
//! a stream added to the remote publisher by an update. Errors compared with what
//! Janus 1.1.2 answers (`tests/golden/videoroom.*forward*`, recorded by
//! `tests/golden/record/auth.py`).

use portunus_tests::peer::Offering;
use portunus_tests::videoroom::{publishing, publishing_with, Publishing};
use portunus_tests::*;
use rtc::shared::marshal::Unmarshal;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::UdpSocket;

const SECRET: &str = "adminpwd";
const ADMIN_SECRET: &str = "janusoverlord";

/// A room request the Admin API's way (`message_plugin`), as the recorded replies were made.
async fn vr(server: &TestServer, request: Value) -> Value {
    let body = json!({"janus": "message_plugin", "transaction": "t", "admin_secret": ADMIN_SECRET,
        "plugin": "janus.plugin.videoroom", "request": request});
    let mut r = awc::Client::new().post(format!("{}/admin", server.admin_url)).send_json(&body).await.expect("admin");
    r.json().await.expect("admin JSON")
}

fn server() -> TestServer {
    let mut cfg = test_config();
    cfg.admin_secret = Some(ADMIN_SECRET.into());
    TestServer::with(cfg)
}

async fn socket() -> (UdpSocket, u16) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

/// The RTP packets `sock` receives while `p` sends for `ms` milliseconds.
async fn received(p: &mut Publishing, socks: &[&UdpSocket], ms: u64) -> Vec<Vec<rtc::rtp::Packet>> {
    let mut got = vec![Vec::new(); socks.len()];
    let mut buf = [0u8; 2000];
    for _ in 0..ms / 20 {
        p.peer.send().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        for (i, s) in socks.iter().enumerate() {
            while let Ok((n, _)) = s.try_recv_from(&mut buf) {
                let mut b = &buf[..n];
                if let Ok(pkt) = rtc::rtp::Packet::unmarshal(&mut b) {
                    got[i].push(pkt);
                }
            }
        }
    }
    got
}

#[actix_web::test]
async fn forwarders_send_the_publisher_s_rtp_where_asked_and_stop_with_it() {
    let server = server();
    let mut p = publishing(&server.ws_url).await;
    let (audio, audio_port) = socket().await;
    let (video, video_port) = socket().await;
    let (rtcp, rtcp_port) = socket().await;
    let r = vr(
        &server,
        json!({"request": "rtp_forward", "room": 1234, "publisher_id": p.feed, "host": "127.0.0.1",
        "secret": SECRET, "streams": [
            {"mid": "0", "port": audio_port, "ssrc": 1111, "pt": 100},
            {"mid": "1", "port": video_port, "rtcp_port": rtcp_port, "ssrc": 2222, "pt": 101}]}),
    )
    .await;
    let resp = &r["response"];
    assert_eq!((resp["videoroom"].clone(), resp["publisher_id"].clone()), (json!("rtp_forward"), json!(p.feed)), "{r}");
    let fwd = resp["forwarders"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(fwd.len(), 2, "{r}");
    assert_eq!(
        (
            fwd[0]["type"].clone(),
            fwd[0]["host"].clone(),
            fwd[0]["port"].clone(),
            fwd[0]["ssrc"].clone(),
            fwd[0]["pt"].clone()
        ),
        (json!("audio"), json!("127.0.0.1"), json!(audio_port), json!(1111), json!(100)),
        "{r}"
    );
    assert_eq!((fwd[1]["remote_rtcp_port"].clone(), fwd[1]["srtp"].clone()), (json!(rtcp_port), json!(false)), "{r}");
    let local_rtcp = fwd[1]["local_rtcp_port"].as_u64().unwrap_or_else(|| panic!("{r}")) as u16;

    let got = received(&mut p, &[&audio, &video], 1000).await;
    for (packets, (ssrc, pt)) in got.iter().zip([(1111, 100), (2222, 101)]) {
        assert!(packets.len() > 30, "forwarded packets arrive: {}", packets.len());
        assert!(packets.iter().all(|k| k.header.ssrc == ssrc && k.header.payload_type == pt), "SSRC {ssrc}, PT {pt}");
    }
    assert!(got[1].windows(2).all(|w| w[1].header.sequence_number == w[0].header.sequence_number.wrapping_add(1)));

    // The forwarder says hello on the RTCP port; a PLI sent back reaches the publisher.
    let mut buf = [0u8; 64];
    let (n, from) =
        tokio::time::timeout(Duration::from_secs(6), rtcp.recv_from(&mut buf)).await.expect("RTCP hello").unwrap();
    assert_eq!((n, from.port()), (8, local_rtcp), "an empty receiver report from the forwarder's RTCP port");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = p.peer.keyframe_requests();
    let pli = [0x81u8, 206, 0, 2, 0, 0, 0, 9, 0, 0, 0x08, 0xae];
    rtcp.send_to(&pli, ("127.0.0.1", local_rtcp)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while p.peer.keyframe_requests() == before {
        assert!(tokio::time::Instant::now() < deadline, "the receiver's PLI reached the publisher");
        p.peer.send().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let list = vr(&server, json!({"request": "listforwarders", "room": 1234, "secret": SECRET})).await;
    let pubs = list["response"]["publishers"].as_array().unwrap_or_else(|| panic!("{list}"));
    assert_eq!((pubs.len(), pubs[0]["publisher_id"].clone()), (1, json!(p.feed)), "{list}");
    assert_eq!(pubs[0]["forwarders"], json!(fwd), "listed as created: {list}");
    assert_golden(
        "videoroom.error_listforwarders_secret.json",
        &vr(&server, json!({"request": "listforwarders", "room": 1234, "secret": "nope"})).await,
    );

    // Stopping one: its packets stop, the other's go on.
    let audio_id = fwd[0]["stream_id"].clone();
    let stop = vr(&server, json!({"request": "stop_rtp_forward", "room": 1234, "publisher_id": p.feed, "stream_id": audio_id, "secret": SECRET})).await;
    assert_eq!(
        stop["response"],
        json!({"videoroom": "stop_rtp_forward", "room": 1234, "publisher_id": p.feed, "stream_id": audio_id}),
        "{stop}"
    );
    let again = vr(&server, json!({"request": "stop_rtp_forward", "room": 1234, "publisher_id": p.feed, "stream_id": audio_id, "secret": SECRET})).await;
    assert_eq!(again["response"]["error_code"], 428, "{again}");
    received(&mut p, &[&audio, &video], 200).await;
    let got = received(&mut p, &[&audio, &video], 600).await;
    assert_eq!(got[0].len(), 0, "the stopped forwarder sends nothing");
    assert!(got[1].len() > 15, "the other goes on");

    // The publisher leaves: its forwarders end with it.
    while p.ws.try_recv(Duration::from_millis(100)).await.is_some() {}
    p.ws.message_event(p.sid, p.handle, json!({"request": "leave"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = received(&mut p, &[&video], 600).await;
    assert_eq!(got[0].len(), 0, "nothing after the publisher left");
    let list = vr(&server, json!({"request": "listforwarders", "room": 1234, "secret": SECRET})).await;
    assert_eq!(list["response"]["publishers"], json!([]), "{list}");
}

#[actix_web::test]
async fn forwarded_rtp_can_be_srtp_and_data_is_forwarded_too() {
    let server = server();
    let (mut p, answer) = publishing_with(&server.ws_url, "p", Offering { data: true, ..Offering::default() }).await;
    let data_mid = answer
        .split("m=application")
        .nth(1)
        .and_then(|m| m.lines().find_map(|l| l.trim().strip_prefix("a=mid:")))
        .unwrap_or_else(|| panic!("a data m-line: {answer}"))
        .to_owned();
    let (video, video_port) = socket().await;
    let (data, data_port) = socket().await;
    // 16 bytes of key and 14 of salt, base64 (as SDES writes them).
    let key: Vec<u8> = (1..=30).collect();
    let crypto = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&key)
    };
    let r = vr(
        &server,
        json!({"request": "rtp_forward", "room": 1234, "publisher_id": p.feed, "host": "localhost",
        "secret": SECRET, "srtp_suite": 80, "srtp_crypto": crypto,
        "streams": [{"mid": "1", "port": video_port}, {"mid": data_mid, "port": data_port}]}),
    )
    .await;
    let f = &r["response"]["forwarders"][0];
    assert_eq!(
        (f["srtp"].clone(), f["host"].clone()),
        (json!(true), json!("127.0.0.1")),
        "host names are resolved: {r}"
    );
    let crypto_impl = rtc::crypto::providers::RingCrypto;
    let mut ctx = rtc::srtp::context::Context::new(
        &key[..16],
        &key[16..],
        rtc::srtp::protection_profile::ProtectionProfile::Aes128CmHmacSha1_80,
        None,
        None,
        &crypto_impl,
    )
    .unwrap();
    let mut buf = [0u8; 2000];
    let mut decrypted = 0;
    for _ in 0..50 {
        p.peer.send().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Ok((n, _)) = video.try_recv_from(&mut buf) {
            let plain = ctx.decrypt_rtp(&buf[..n]).expect("SRTP the receiver can decrypt with the key given");
            let mut b = &plain[..];
            let pkt = rtc::rtp::Packet::unmarshal(&mut b).unwrap();
            assert_eq!(pkt.header.payload_type, f["pt"].as_u64().unwrap() as u8, "the publisher's payload type");
            decrypted += 1;
        }
    }
    assert!(decrypted > 20, "{decrypted} packets decrypted");
    // Data channel messages: one datagram each, the payload as sent.
    assert_eq!(r["response"]["forwarders"][1]["type"], "data", "{r}");
    let mut got = None;
    for i in 0..50 {
        p.peer.send_data("JanusDataChannel", &format!("hello {i}"), false).await;
        if let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(100), data.recv_from(&mut buf)).await {
            got = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            break;
        }
    }
    assert!(got.as_deref().is_some_and(|g| g.starts_with("hello ")), "a data message forwarded: {got:?}");
}

#[actix_web::test]
async fn forwarding_is_refused_where_janus_refuses_it_and_outside_the_allowed_ranges() {
    let server = server();
    let p = publishing(&server.ws_url).await;
    let fwd = |extra: Value| {
        let mut req = json!({"request": "rtp_forward", "room": 1234, "publisher_id": p.feed, "host": "127.0.0.1", "secret": SECRET,
            "streams": [{"mid": "0", "port": 5000}]});
        req.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        req
    };
    let r = vr(&server, fwd(json!({"host": "192.0.2.10"}))).await;
    assert_eq!(r["response"]["error_code"], 433, "outside rtp_forward_allowed: {r}");
    assert!(r["response"]["error"].as_str().unwrap().contains("rtp_forward_allowed"), "{r}");
    let r = vr(&server, fwd(json!({"host": "no-such-host.invalid"}))).await;
    assert_eq!(r["response"]["error"], "Could not resolve address (no-such-host.invalid)...", "{r}");
    // Janus's own refusals, as recorded (in a room of its own, the feed unknown, so here too).
    let room = vr(&server, json!({"request": "create", "secret": "fwdsecret"})).await["response"]["room"].clone();
    let at = |extra: Value| {
        let mut req = json!({"room": room});
        req.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        req
    };
    let stream = json!([{"mid": "0", "port": 5000}]);
    for (golden, req) in [
        ("videoroom.listforwarders_empty.json", at(json!({"request": "listforwarders", "secret": "fwdsecret"}))),
        ("videoroom.error_rtp_forward_no_host.json", at(json!({"request": "rtp_forward", "publisher_id": 5}))),
        (
            "videoroom.error_rtp_forward_no_publisher_id.json",
            at(json!({"request": "rtp_forward", "host": "127.0.0.1"})),
        ),
        (
            "videoroom.error_rtp_forward_no_such_feed.json",
            at(
                json!({"request": "rtp_forward", "publisher_id": 5, "host": "127.0.0.1", "secret": "fwdsecret", "streams": stream}),
            ),
        ),
        (
            "videoroom.error_rtp_forward_secret.json",
            at(
                json!({"request": "rtp_forward", "publisher_id": 5, "host": "127.0.0.1", "secret": "nope", "streams": stream}),
            ),
        ),
        (
            "videoroom.error_rtp_forward_stream_port.json",
            at(
                json!({"request": "rtp_forward", "publisher_id": 5, "host": "127.0.0.1", "secret": "fwdsecret", "streams": [{"mid": "0"}]}),
            ),
        ),
        (
            "videoroom.error_rtp_forward_family.json",
            at(
                json!({"request": "rtp_forward", "publisher_id": 5, "host": "127.0.0.1", "host_family": "ipx", "secret": "fwdsecret", "streams": stream}),
            ),
        ),
        (
            "videoroom.error_stop_rtp_forward_no_such_feed.json",
            at(json!({"request": "stop_rtp_forward", "publisher_id": 5, "stream_id": 7, "secret": "fwdsecret"})),
        ),
        (
            "videoroom.error_stop_rtp_forward_no_stream_id.json",
            at(json!({"request": "stop_rtp_forward", "publisher_id": 5, "secret": "fwdsecret"})),
        ),
    ] {
        assert_golden(golden, &vr(&server, req).await);
    }
}

/// A simulcast publisher's layers to three ports (each relayed as sent), or, with
/// `simulcast: true`, the best layer as one stream (one SSRC, sequence unbroken).
#[actix_web::test]
async fn simulcast_layers_are_forwarded_apart_or_as_one_stream() {
    use portunus_tests::peer::simulcast_marks;
    let server = server();
    let (mut p, _) = publishing_with(&server.ws_url, "p", Offering { simulcast: true, ..Offering::default() }).await;
    let (l0, p0) = socket().await;
    let (l1, p1) = socket().await;
    let (l2, p2) = socket().await;
    let (best, pb) = socket().await;
    let r = vr(
        &server,
        json!({"request": "rtp_forward", "room": 1234, "publisher_id": p.feed, "host": "127.0.0.1", "secret": SECRET,
        "streams": [{"mid": "1", "port": p0, "port_2": p1, "port_3": p2, "ssrc_3": 3333}]}),
    )
    .await;
    let subs: Vec<Value> = r["response"]["forwarders"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|f| f["substream"].clone())
        .collect();
    assert_eq!(subs, vec![json!(0), json!(1), json!(2)], "one forwarder per layer: {r}");
    let r2 = vr(
        &server,
        json!({"request": "rtp_forward", "room": 1234, "publisher_id": p.feed, "host": "127.0.0.1", "secret": SECRET,
        "streams": [{"mid": "1", "port": pb, "simulcast": true}]}),
    )
    .await;
    assert_eq!(r2["response"]["forwarders"].as_array().map(Vec::len), Some(1), "{r2}");
    let got = received(&mut p, &[&l0, &l1, &l2, &best], 1500).await;
    for (layer, packets) in got[..3].iter().enumerate() {
        assert!(packets.len() > 10, "layer {layer} arrives: {}", packets.len());
        let layers: std::collections::BTreeSet<u8> =
            packets.iter().filter_map(|k| simulcast_marks(&k.payload)).map(|(l, _)| l).collect();
        assert_eq!(layers, [layer as u8].into(), "only layer {layer} on its port");
    }
    assert!(got[2].iter().all(|k| k.header.ssrc == 3333), "ssrc_3 applies to the third layer");
    let one = &got[3];
    assert!(one.len() > 10, "the single stream arrives: {}", one.len());
    let top: Vec<u8> = one.iter().filter_map(|k| simulcast_marks(&k.payload)).map(|(l, _)| l).collect();
    assert!(top.iter().rev().take(5).all(|l| *l == 2), "the best layer flowing is relayed: {top:?}");
    assert!(one.iter().all(|k| k.header.ssrc == one[0].header.ssrc), "one SSRC");
    assert!(one.windows(2).all(|w| w[1].header.sequence_number == w[0].header.sequence_number.wrapping_add(1)));
}

/// ffmpeg (Debian `ffmpeg`) receives a forwarded VP8 and Opus pair described by an SDP file,
/// and what it received decodes (ffprobe counts the decoded frames).
#[actix_web::test]
async fn ffmpeg_receives_and_decodes_forwarded_vp8_and_opus() {
    use portunus_tests::clip::{Clip, ClipSender, FPS};
    let dir = std::env::temp_dir().join(format!("portunus-fwd-{}-{}", std::process::id(), rand::random::<u32>()));
    let clip = Clip::make(&dir.join("clip"), 4);
    let server = server();
    let p = publishing(&server.ws_url).await;
    // Even ports with a free odd one above (ffmpeg takes port + 1 for RTCP).
    let pair = || loop {
        let port = free_port() & !1;
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok()
        {
            break port;
        }
    };
    let (ap, vp) = (pair(), pair());
    let sdp = format!(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=portunus\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {ap} RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\nm=video {vp} RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
    );
    std::fs::write(dir.join("forward.sdp"), sdp).unwrap();
    let out = dir.join("received.mkv");
    let mut ffmpeg = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-protocol_whitelist", "file,udp,rtp", "-i"])
        .arg(dir.join("forward.sdp"))
        .args(["-t", "3", "-c", "copy"])
        .arg(&out)
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg runs (apt-get install ffmpeg)");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = vr(
        &server,
        json!({"request": "rtp_forward", "room": 1234, "publisher_id": p.feed, "host": "127.0.0.1", "secret": SECRET,
        "streams": [{"mid": "0", "port": ap}, {"mid": "1", "port": vp}]}),
    )
    .await;
    assert_eq!(r["response"]["forwarders"].as_array().map(Vec::len), Some(2), "{r}");
    let mut sender = ClipSender::new(clip);
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / u64::from(FPS)));
    while sender.tick(&p.peer).await {
        tick.tick().await;
    }
    let status =
        tokio::time::timeout(Duration::from_secs(10), ffmpeg.wait()).await.expect("ffmpeg stops after 3 s").unwrap();
    assert!(status.success(), "ffmpeg: {status}");
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "json"])
        .arg(&out)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&probe.stdout).unwrap();
    let frames = |codec: &str| {
        v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["codec_name"] == codec)
            .and_then(|s| s["nb_read_frames"].as_str()?.parse::<u64>().ok())
    };
    // 3 s at 25 frames/s, less what arrived before the first keyframe.
    assert!(frames("vp8").is_some_and(|f| f >= 40), "VP8 frames decoded: {v}");
    assert!(frames("opus").is_some_and(|f| f >= 100), "Opus frames decoded: {v}");
    eprintln!("ffmpeg decoded {:?} VP8 and {:?} Opus frames", frames("vp8"), frames("opus"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A remotization (`publish_remotely`) outlives an unpublish: it stops with the publisher's
/// media and resumes, to the same place, when the publisher publishes again.
#[actix_web::test]
async fn a_remotization_resumes_when_its_publisher_publishes_again() {
    let server = server();
    let mut p = publishing(&server.ws_url).await;
    let (far, far_port) = socket().await;
    let remotize = json!({"request": "publish_remotely", "room": 1234, "publisher_id": p.feed, "secret": SECRET,
        "remote_id": "far", "host": "127.0.0.1", "port": far_port});
    let r = vr(&server, remotize).await;
    assert_eq!(r["response"]["remote_id"], "far", "{r}");
    // Janus's remote SSRCs: 1000 + 10 x m-line index.
    let ssrcs = |got: &[rtc::rtp::Packet]| {
        let mut s: Vec<u32> = got.iter().map(|k| k.header.ssrc).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let got = received(&mut p, &[&far], 800).await;
    assert_eq!(ssrcs(&got[0]), [1000, 1010], "audio and video remotized: {} packets", got[0].len());

    let (ack, _) = p
        .ws
        .call(json!({"janus": "message", "session_id": p.sid, "handle_id": p.handle, "body": {"request": "unpublish"}}))
        .await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    p.ws.expect_skipping_core("unpublished", |m| m["plugindata"]["data"]["unpublished"] == "ok").await;
    received(&mut p, &[&far], 300).await; // in flight
    let got = received(&mut p, &[&far], 600).await;
    assert!(got[0].is_empty(), "nothing while unpublished: {} packets", got[0].len());

    // Published again (a new PeerConnection on the same handle): the remotization resumes.
    let (mut again, answer) = portunus_tests::videoroom::publish_offer(&mut p.ws, p.sid, p.handle).await;
    again.accept(&answer).await;
    assert!(again.connected(Duration::from_secs(10)).await, "published again");
    p.peer = again;
    let got = received(&mut p, &[&far], 1000).await;
    assert_eq!(ssrcs(&got[0]), [1000, 1010], "resumed: {} packets", got[0].len());
    let listed =
        vr(&server, json!({"request": "listremotes", "room": 1234, "publisher_id": p.feed, "secret": SECRET})).await;
    assert_eq!(listed["response"]["list"].as_array().map(Vec::len), Some(1), "{listed}");
    p.peer.close().await;
}

/// A remote publisher given a stream it did not have (`update_remote_publisher`) receives it
/// from then on: here this server's own publisher is remotized to a remote publisher of the same
/// room created with audio only; once video is added (as Janus names it, by m-line index) the
/// room hears of it and a new subscriber gets the video.
#[actix_web::test]
async fn a_remote_publisher_receives_a_stream_added_by_an_update() {
    let server = server();
    let mut p = publishing(&server.ws_url).await;
    let audio = json!([{"mid": "0", "mindex": 0, "type": "audio", "codec": "opus"}]);
    let added = vr(
        &server,
        json!({"request": "add_remote_publisher", "room": 1234, "secret": SECRET,
        "display": "cascaded", "streams": audio}),
    )
    .await;
    let remote = added["response"]["id"].as_u64().unwrap_or_else(|| panic!("{added}"));
    let port = added["response"]["port"].as_u64().unwrap_or_else(|| panic!("{added}"));
    let remotize = json!({"request": "publish_remotely", "room": 1234, "publisher_id": p.feed, "secret": SECRET,
        "remote_id": "self", "host": "127.0.0.1", "port": port});
    assert_eq!(vr(&server, remotize).await["response"]["remote_id"], "self");

    let mut watcher = WsClient::connect(&server.ws_url).await;
    let wsid = watcher.create_session().await;
    portunus_tests::videoroom::join_as_publisher(&mut watcher, wsid, "watcher").await;
    let both = json!([{"mid": "0", "mindex": 0, "type": "audio", "codec": "opus"},
                      {"mid": "video", "mindex": 1, "type": "video", "codec": "vp8", "description": "camera"}]);
    let update =
        json!({"request": "update_remote_publisher", "room": 1234, "id": remote, "secret": SECRET, "streams": both});
    let updated = vr(&server, update).await;
    assert_eq!(updated["response"]["videoroom"], "success", "{updated}");
    let announced =
        watcher.expect_skipping_core("publishers", |m| m["plugindata"]["data"]["publishers"][0]["id"] == remote).await;
    let streams = &announced["plugindata"]["data"]["publishers"][0]["streams"];
    assert_eq!(
        streams[1],
        json!({"type": "video", "mindex": 1, "mid": "1", "codec": "vp8", "description": "camera"}),
        "{announced}"
    );

    let mut sws = WsClient::connect(&server.ws_url).await;
    let ssid = sws.create_session().await;
    let ((mut sub, _), attached) =
        portunus_tests::videoroom::subscribe_to_streams(&mut sws, ssid, json!([{"feed": remote}])).await;
    assert_eq!(attached["plugindata"]["data"]["streams"].as_array().map(Vec::len), Some(2), "{attached}");
    let got = portunus_tests::videoroom::received_while_sending(&mut [&mut p.peer], &mut sub, 1500).await;
    let video: Vec<u8> =
        got.iter().filter(|(k, _)| k == "video").filter_map(|(_, k)| k.payload.get(4).copied()).collect();
    assert!(video.len() >= 20 && video.iter().all(|b| *b == p.peer.fill), "the added video arrives: {video:?}");
    sub.close().await;
    p.peer.close().await;
}
