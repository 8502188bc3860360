//! Rooms on several worker threads (`media_workers`): rooms spread over the workers, each
//! room's media is forwarded on the worker it was placed on, and `/metrics` shows both. (Every
//! other suite runs with the default, one worker per CPU.)
//!
//! One test in this binary: the media node's per-worker series are the process's first node's.

use portunus_tests::lossy::Network;
use portunus_tests::peer::Offering;
use portunus_tests::videoroom::{join_room_as_publisher, publishing_in, received_while_sending, subscribe_in};
use portunus_tests::*;
use serde_json::json;
use std::time::Duration;

async fn worker_series(server: &TestServer, name: &str) -> [f64; 2] {
    let (status, text) = get_text(&format!("{}/metrics", server.media_admin_url())).await;
    assert_eq!(status, 200);
    [0, 1].map(|w| {
        let series = format!("portunus_node_worker_{name}{{worker=\"{w}\"}}");
        metric(&text, &series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    })
}

#[actix_web::test]
async fn rooms_spread_over_the_workers_and_each_forwards_its_media_there() {
    let mut cfg = test_config();
    cfg.media_workers = 2;
    let server = TestServer::with(cfg);
    let mut admin = WsClient::connect(&server.ws_url).await;
    let sid = admin.create_session().await;
    let h = admin.attach(sid).await;
    let created = admin.message(sid, h, json!({"request": "create", "room": 4321})).await;
    assert_eq!(created["plugindata"]["data"]["videoroom"], "created", "{created}");

    // A publisher and a subscriber in each room.
    let mut rooms = Vec::new();
    for room in [1234, 4321] {
        let (p, _) = publishing_in(&server.ws_url, room, "publisher", Offering::default()).await;
        let mut sws = WsClient::connect(&server.ws_url).await;
        let ssid = sws.create_session().await;
        let ((sub, _), _) = subscribe_in(&mut sws, ssid, room, json!([{"feed": p.feed}]), Network::default()).await;
        rooms.push((p, sws, sub));
    }
    assert_eq!(worker_series(&server, "rooms").await, [1.0, 1.0], "one room on each worker");
    let tasks = worker_series(&server, "tasks").await;
    assert!(tasks.iter().all(|t| *t >= 5.0), "each worker runs its room's peers and forwarding: {tasks:?}");

    // Both rooms carry media; each worker's thread does work meanwhile.
    let busy_before = worker_series(&server, "busy_microseconds_total").await;
    let (a, b) = rooms.split_at_mut(1);
    let (pa, _, sa) = &mut a[0];
    let (pb, _, sb) = &mut b[0];
    let got_a = received_while_sending(&mut [&mut pa.peer, &mut pb.peer], sa, 1000).await;
    let mut got_b = Vec::new();
    while let Ok(kp) = sb.packets.try_recv() {
        got_b.push(kp);
    }
    for (name, got) in [("1234", got_a), ("4321", got_b)] {
        let video = got.iter().filter(|(kind, _)| kind == "video").count();
        assert!(video >= 50, "room {name}'s subscriber got {video} video packets of 100");
    }
    let busy_after = worker_series(&server, "busy_microseconds_total").await;
    for w in 0..2 {
        assert!(
            busy_after[w] - busy_before[w] >= 1000.0,
            "worker {w} was busy {} µs while its room forwarded a second of media",
            busy_after[w] - busy_before[w]
        );
    }

    // A room that ends frees its place: the next one goes there.
    let destroyed = admin.message(sid, h, json!({"request": "destroy", "room": 4321})).await;
    assert_eq!(destroyed["plugindata"]["data"]["videoroom"], "destroyed", "{destroyed}");
    let freed = async {
        loop {
            let rooms = worker_series(&server, "rooms").await;
            if rooms.iter().sum::<f64>() == 1.0 {
                return rooms;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let left = tokio::time::timeout(Duration::from_secs(5), freed).await.expect("the destroyed room stops");
    let created = admin.message(sid, h, json!({"request": "create", "room": 5678})).await;
    assert_eq!(created["plugindata"]["data"]["videoroom"], "created", "{created}");
    // A room starts running at its first participant.
    join_room_as_publisher(&mut admin, sid, 5678, "late").await;
    assert_eq!(worker_series(&server, "rooms").await, [1.0, 1.0], "the new room takes the freed worker (was {left:?})");
    for (p, _, sub) in rooms {
        sub.close().await;
        p.peer.close().await;
    }
}
