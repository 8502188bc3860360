//! One UDP port for the whole media node (`media_port`): every PeerConnection's candidates name
//! that port, and several publishers and subscribers at once get their media through it, each
//! its own (told apart by ICE ufrag, then by address). The media suites run again in this mode
//! (`PORTUNUS_TEST_SINGLE_PORT=1` in `tests/run.sh`), ICE restarts, NACK repair, simulcast and
//! data channels included.

use portunus_tests::peer::{Offering, TestSubscriber};
use portunus_tests::videoroom::{publishing_with, received_while_sending, subscribe_to_streams};
use portunus_tests::{free_udp_port, get_text, metric, test_config, TestServer, WsClient};
use serde_json::json;

/// The ports of an SDP's UDP candidates.
fn candidate_ports(sdp: &str) -> Vec<u16> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .filter_map(|c| c.split_whitespace().nth(5)?.parse().ok())
        .collect()
}

#[actix_web::test]
async fn every_peer_connection_uses_the_one_port_and_gets_its_own_media() {
    let port = free_udp_port();
    let server = TestServer::with(shared::config::Config { media_port: port, ..test_config() });
    // Two publishers, each filling its video with its own byte.
    let mut publishers = Vec::new();
    for (name, fill) in [("first", 0x11u8), ("second", 0x22)] {
        let (mut p, answer) = publishing_with(&server.ws_url, name, Offering::default()).await;
        let ports = candidate_ports(&answer);
        assert!(!ports.is_empty() && ports.iter().all(|p| *p == port), "{name}'s answer: {ports:?} not {port}");
        p.peer.fill = fill;
        publishers.push(p);
    }
    // One subscriber of both, another of the second only.
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let both = json!([{"feed": publishers[0].feed}, {"feed": publishers[1].feed}]);
    let ((mut sub_both, _), attached) = subscribe_to_streams(&mut ws, sid, both).await;
    let offer = attached["jsep"]["sdp"].as_str().expect("offer");
    assert!(candidate_ports(offer).iter().all(|p| *p == port), "subscriber offer: {offer}");
    let mut ws2 = WsClient::connect(&server.ws_url).await;
    let sid2 = ws2.create_session().await;
    let ((mut sub_second, _), _) = subscribe_to_streams(&mut ws2, sid2, json!([{"feed": publishers[1].feed}])).await;
    let [first, second] = &mut publishers[..] else { unreachable!() };
    let fills = |got: &[(String, rtc::rtp::Packet)]| -> Vec<u8> {
        let mut f: Vec<u8> =
            got.iter().filter(|(k, _)| k == "video").filter_map(|(_, p)| p.payload.last().copied()).collect();
        f.sort();
        f.dedup();
        f
    };
    // Warm up (keyframes), then count.
    received_while_sending(&mut [&mut first.peer, &mut second.peer], &mut sub_both, 600).await;
    let got = received_while_sending(&mut [&mut first.peer, &mut second.peer], &mut sub_both, 800).await;
    assert_eq!(fills(&got), [0x11, 0x22], "both publishers' video");
    assert!(got.iter().filter(|(k, _)| k == "video").count() > 100, "{} packets", got.len());
    let got = received_while_sending(&mut [&mut first.peer, &mut second.peer], &mut sub_second, 800).await;
    assert_eq!(fills(&got), [0x22], "only the second's");
    // Past each peer's first datagrams, its media comes straight to its PeerConnection's socket
    // connected to it, not through the demultiplexer. (The process's counters: lower bounds.)
    let (_, text) = get_text(&format!("{}/metrics", server.media_admin_url())).await;
    let path = |p: &str| metric(&text, &format!("portunus_single_port_datagrams_total{{path=\"{p}\"}}")).unwrap();
    let (direct, demultiplexed) = (path("direct"), path("demultiplexed"));
    assert!(direct >= 500.0 && direct > 2.0 * demultiplexed, "direct {direct}, demultiplexed {demultiplexed}");
    close(&mut [sub_both, sub_second]).await;
}

async fn close(subs: &mut [TestSubscriber]) {
    for s in subs {
        s.close().await;
    }
}

/// Behind a 1:1 NAT (`public_ip`) the candidates name the public address and the one port.
#[actix_web::test]
async fn behind_a_one_to_one_nat_candidates_name_the_public_address_and_the_one_port() {
    let port = free_udp_port();
    let cfg = shared::config::Config { media_port: port, public_ip: Some("203.0.113.7".into()), ..test_config() };
    let server = TestServer::with(cfg);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let (h, _) = portunus_tests::videoroom::join_as_publisher(&mut ws, sid, "natted").await;
    let (_publisher, answer) = portunus_tests::videoroom::publish_offer(&mut ws, sid, h).await;
    let host: Vec<&str> = answer.lines().filter(|l| l.starts_with("a=candidate:") && l.contains(" typ host")).collect();
    assert!(!host.is_empty(), "{answer}");
    for c in host {
        assert!(c.contains(&format!(" 203.0.113.7 {port} typ host")), "{c}");
    }
}
