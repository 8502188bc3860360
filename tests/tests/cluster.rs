//! Cluster mode in one process: gateways and media nodes in separate actix systems that share
//! nothing but a real `redis-server` started by each test. Any gateway serves any request.

use portunus_tests::*;
use serde_json::{json, Value};
use shared::ids::{HandleId, SessionId};
use shared::store::{RedisStore, Store};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn gateway(redis: &RedisServer, tweak: impl FnOnce(&mut shared::config::Config)) -> TestServer {
    let mut cfg = test_config();
    tweak(&mut cfg);
    TestServer::cluster(cfg, &redis.url())
}

async fn inspect(redis: &RedisServer) -> RedisStore {
    RedisStore::connect(&redis.url(), Arc::new(shared::clock::SystemClock)).await.unwrap()
}

/// A WebSocket client whose session has one handle joined to the demo room.
async fn joined_demo_room(g: &TestServer, display: &str) -> (WsClient, u64, u64) {
    let mut ws = WsClient::connect(&g.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    let ev = ws
        .message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher", "display": display}))
        .await;
    assert_eq!(ev["plugindata"]["data"]["videoroom"], "joined", "{ev}");
    (ws, sid, h)
}

#[actix_web::test]
async fn a_session_is_served_by_whichever_gateway_a_request_lands_on() {
    let redis = RedisServer::start();
    let _n1 = TestNode::start(&redis.url(), "node-1");
    let _n2 = TestNode::start(&redis.url(), "node-2");
    let a = gateway(&redis, |_| {});
    let b = gateway(&redis, |_| {});
    let (ha, hb) = (HttpClient::new(&a.base_url), HttpClient::new(&b.base_url));
    let sid = ha.create_session().await;
    let h = hb.attach(sid).await;
    // A synchronous request through A, an asynchronous one through B, a trickle through A.
    let list = ha.message(sid, h, json!({"request": "list"})).await;
    assert_eq!(list["plugindata"]["data"]["list"][0]["room"], 1234);
    let ack = hb.message(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "x"})).await;
    assert_eq!(ack["janus"], "ack");
    let t = ha.post(&format!("/{sid}/{h}"), json!({"janus": "trickle", "candidate": {"completed": true}})).await;
    assert_eq!(t["janus"], "ack");
    hb.message(sid, h, json!({"request": "leave"})).await;
    ha.post(&format!("/{sid}/{h}"), json!({"janus": "detach"})).await;
    // Long-polls alternate between the gateways; every event arrives once, in order.
    let mut events: Vec<Value> = Vec::new();
    let mut turn = 0;
    while events.len() < 3 {
        let client = if turn % 2 == 0 { &ha } else { &hb };
        turn += 1;
        let batch = client.poll(sid, 1).await;
        if batch["janus"] != "keepalive" {
            events.push(batch);
        }
        assert!(turn < 20, "events missing: {events:?}");
    }
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e["janus"].as_str().unwrap() {
            "event" => e["plugindata"]["data"]["videoroom"].as_str().unwrap_or("event").to_owned(),
            other => other.to_owned(),
        })
        .collect();
    assert_eq!(kinds, vec!["joined", "event", "detached"], "{events:?}");
    assert_eq!(events[1]["plugindata"]["data"]["leaving"], "ok");
    // Destroyed through B, gone for A.
    hb.post(&format!("/{sid}"), json!({"janus": "destroy"})).await;
    let r = ha.post(&format!("/{sid}"), json!({"janus": "keepalive"})).await;
    assert_eq!(r["error"]["code"], 458);
}

#[actix_web::test]
async fn a_websocket_client_whose_gateway_died_claims_its_session_elsewhere() {
    let redis = RedisServer::start();
    let _node = TestNode::start(&redis.url(), "node-1");
    let mut a = gateway(&redis, |c| c.reclaim_timeout = 20);
    let b = gateway(&redis, |c| c.reclaim_timeout = 20);
    let mut ws = WsClient::connect(&a.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    // Gateway A goes away with the socket.
    drop(std::mem::replace(&mut a, gateway(&redis, |_| {})));
    drop(ws);
    // Meanwhile something happens on the session (through B): the event waits in the mailbox.
    let hb = HttpClient::new(&b.base_url);
    let ack = hb.message(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    assert_eq!(ack["janus"], "ack");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = WsClient::connect(&b.ws_url).await;
    let (claimed, _) = again.call(json!({"janus": "claim", "session_id": sid})).await;
    assert_eq!(claimed["janus"], "success", "{claimed}");
    let ev = again
        .expect("the event queued while no gateway held the session", |m| {
            m["plugindata"]["data"]["videoroom"] == "joined"
        })
        .await;
    assert_eq!(ev["sender"], h);
    // And new events follow the session to its new gateway.
    let ack = again.message(sid, h, json!({"request": "leave"})).await;
    assert_eq!(ack["janus"], "ack");
    again.expect("leaving", |m| m["plugindata"]["data"]["leaving"] == "ok").await;
}

#[actix_web::test]
async fn rooms_spread_over_media_nodes_and_participants_land_on_their_owner() {
    let redis = RedisServer::start();
    let _n1 = TestNode::start(&redis.url(), "node-1");
    let _n2 = TestNode::start(&redis.url(), "node-2");
    let g = gateway(&redis, |_| {});
    let mut ws = WsClient::connect(&g.ws_url).await;
    let sid = ws.create_session().await;
    let admin = ws.attach(sid).await;
    let rooms: Vec<u64> = (1..=16).map(|i| 5000 + i).collect();
    for r in &rooms {
        let c = ws.message(sid, admin, json!({"request": "create", "room": r})).await;
        assert_eq!(c["plugindata"]["data"]["videoroom"], "created", "{c}");
    }
    let mut by_room: HashMap<u64, HashSet<String>> = HashMap::new();
    let store = inspect(&redis).await;
    for r in &rooms {
        for _ in 0..2 {
            let h = ws.attach(sid).await;
            let ev = ws.message_event(sid, h, json!({"request": "join", "room": r, "ptype": "publisher"})).await;
            assert_eq!(ev["plugindata"]["data"]["videoroom"], "joined", "{ev}");
            let rec = store.handle(SessionId(sid), HandleId(h)).await.unwrap().unwrap();
            by_room.entry(*r).or_default().insert(rec.binding.unwrap().node.0);
        }
    }
    for (room, nodes) in &by_room {
        assert_eq!(nodes.len(), 1, "room {room} has participants on several nodes: {nodes:?}");
        let owner = store.room_owner(shared::ids::RoomId::num(*room)).await.unwrap().unwrap();
        assert!(nodes.contains(&owner.0));
    }
    let used: HashSet<&String> = by_room.values().flatten().collect();
    assert_eq!(used.len(), 2, "both media nodes host rooms: {used:?}");
    // Room state lives on the owner: listparticipants through any gateway sees both participants.
    let g2 = gateway(&redis, |_| {});
    let http = HttpClient::new(&g2.base_url);
    let s2 = http.create_session().await;
    let h2 = http.attach(s2).await;
    for r in &rooms {
        let p = http.message(s2, h2, json!({"request": "listparticipants", "room": r})).await;
        assert_eq!(p["plugindata"]["data"]["participants"].as_array().unwrap().len(), 2, "{p}");
    }
}

#[actix_web::test]
async fn idle_sessions_are_reaped_exactly_once_by_two_gateways() {
    let redis = RedisServer::start();
    let _node = TestNode::start(&redis.url(), "node-1");
    let a = gateway(&redis, |c| c.session_timeout = 2);
    let b = gateway(&redis, |c| c.session_timeout = 2);
    let mut wa = WsClient::connect(&a.ws_url).await;
    let mut wb = WsClient::connect(&b.ws_url).await;
    let mut expected = HashSet::new();
    for _ in 0..100 {
        expected.insert(wa.create_session().await);
        expected.insert(wb.create_session().await);
    }
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.len() < expected.len() {
        assert!(Instant::now() < deadline, "only {} of {} sessions reaped", seen.len(), expected.len());
        for ws in [&mut wa, &mut wb] {
            while let Some(m) = ws.try_recv(Duration::from_millis(50)).await {
                assert_eq!(m["janus"], "timeout", "{m}");
                assert!(seen.insert(m["session_id"].as_u64().unwrap()), "a session timed out twice: {m}");
            }
        }
    }
    assert_eq!(seen, expected);
    let store = inspect(&redis).await;
    assert_eq!(store.counts().await.unwrap(), (0, 0));
}

#[actix_web::test]
async fn a_lost_media_node_is_noticed_its_handles_hung_up_and_its_rooms_placed_again() {
    let redis = RedisServer::start();
    let mut n1 = TestNode::start(&redis.url(), "node-1");
    let g = gateway(&redis, |_| {});
    let (mut ws, sid, h) = joined_demo_room(&g, "p").await;
    let store = inspect(&redis).await;
    assert_eq!(store.room_owner(shared::ids::RoomId::num(1234)).await.unwrap().unwrap().0, "node-1");
    let _n2 = TestNode::start(&redis.url(), "node-2");
    n1.stop();
    let lost_at = Instant::now();
    // The handle on the lost node is hung up, once, within 6 s.
    let hangup = ws.try_recv(Duration::from_secs(8)).await.expect("hangup after node loss");
    let detected = lost_at.elapsed();
    assert_eq!(hangup, json!({"janus": "hangup", "session_id": sid, "sender": h, "reason": "Media node lost"}));
    assert!(detected <= Duration::from_secs(6), "node loss noticed after {detected:?}");
    assert!(ws.try_recv(Duration::from_millis(500)).await.is_none(), "told once");
    // The client re-joins on the same handle; the room is placed again on the surviving node.
    let ev = ws.message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    assert_eq!(ev["plugindata"]["data"]["videoroom"], "joined", "{ev}");
    assert_eq!(store.room_owner(shared::ids::RoomId::num(1234)).await.unwrap().unwrap().0, "node-2");
    eprintln!("media node loss: hangup {detected:?} after the node stopped");
}

#[actix_web::test]
async fn a_node_that_lost_its_room_lease_stands_down_and_never_serves_it_again() {
    let redis = RedisServer::start();
    let _n1 = TestNode::start(&redis.url(), "node-1");
    let g = gateway(&redis, |_| {});
    let (mut ws, sid, _h) = joined_demo_room(&g, "p").await;
    let store = inspect(&redis).await;
    let (n1, n2) = (shared::ids::NodeId("node-1".into()), shared::ids::NodeId("node-2".into()));
    // As if node-1 had been cut off long enough for the room to be given to node-2.
    let _node2 = TestNode::start(&redis.url(), "node-2");
    let owner =
        store.replace_room_owner(shared::ids::RoomId::num(1234), &n1, &n2, shared::store::ROOM_LEASE_MS).await.unwrap();
    assert_eq!(owner, n2);
    let hangup = ws.try_recv(Duration::from_secs(6)).await.expect("node-1 stands down within a renewal period");
    assert_eq!(hangup["janus"], "hangup", "{hangup}");
    assert_eq!(hangup["reason"], "Room moved to another media node");
    // Requests for the room reach its new owner; node-1 answers none of them.
    let h2 = ws.attach(sid).await;
    let ev = ws
        .message_event(sid, h2, json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "after"}))
        .await;
    assert_eq!(ev["plugindata"]["data"]["videoroom"], "joined", "{ev}");
    let p = ws.message(sid, h2, json!({"request": "listparticipants", "room": 1234})).await;
    let parts = p["plugindata"]["data"]["participants"].as_array().unwrap().clone();
    assert_eq!(parts.len(), 1, "only the new owner's state: {parts:?}");
    assert_eq!(parts[0]["display"], "after");
    assert_eq!(store.handle(SessionId(sid), HandleId(h2)).await.unwrap().unwrap().binding.unwrap().node, n2);
}

#[actix_web::test]
async fn requests_during_a_redis_outage_fail_clearly_and_the_cluster_recovers() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let _node = TestNode::start(&redis.url(), "node-1");
    let g = gateway(&redis, |_| {});
    let mut ws = WsClient::connect(&g.ws_url).await;
    let sid = ws.create_session().await;
    redis.kill();
    let t = Instant::now();
    let r = ws.request(json!({"janus": "keepalive", "session_id": sid})).await;
    assert_eq!(r["janus"], "error", "{r}");
    assert_eq!(r["error"]["code"], 490);
    assert!(r["error"]["reason"].as_str().unwrap().contains("unavailable"), "{r}");
    let r = ws.request(json!({"janus": "create"})).await;
    assert_eq!(r["janus"], "error");
    assert!(t.elapsed() < Duration::from_secs(10), "errors took {:?}", t.elapsed());
    // Redis comes back empty (no persistence here): old sessions are gone, new ones work,
    // with no Portunus process restarted.
    let _redis = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_sid = loop {
        let r = ws.request(json!({"janus": "create"})).await;
        if let Some(id) = r["data"]["id"].as_u64() {
            break id;
        }
        assert!(Instant::now() < deadline, "no recovery: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let h = ws.attach(new_sid).await;
    // The node re-registers on its next heartbeat; then VideoRoom works again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // A command published while a node's subscription is being restored is lost (pub/sub is
        // at-most-once) and times out as 462 after rpc_timeout_ms: wait for that answer too.
        ws.send(&json!({"janus": "message", "session_id": new_sid, "handle_id": h, "transaction": "x",
            "body": {"request": "exists", "room": 1234}}))
            .await;
        let r = ws.try_recv(Duration::from_secs(8)).await.expect("an answer, success or error");
        if r["janus"] == "success" && r["plugindata"]["data"]["videoroom"] == "success" {
            break;
        }
        assert!(Instant::now() < deadline, "videoroom did not recover: {r}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = sid;
}

#[actix_web::test]
async fn a_draining_media_node_takes_no_new_rooms_and_leaves_once_empty() {
    let redis = RedisServer::start();
    let n1 = TestNode::start(&redis.url(), "node-1");
    let g = gateway(&redis, |c| c.admin_secret = Some("janusoverlord".into()));
    let (mut ws, sid, h) = joined_demo_room(&g, "p").await;
    let _n2 = TestNode::start(&redis.url(), "node-2");
    let drain = format!("{}/nodes/node-1/drain", g.admin_url);
    let r = awc::Client::new().post(&drain).send().await.unwrap();
    assert_eq!(r.status(), 403, "a drain needs the admin secret");
    let r = awc::Client::new().post(&drain).insert_header(("X-Admin-Secret", "janusoverlord")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let store = inspect(&redis).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !store.live_nodes().await.unwrap().iter().any(|n| n.node.0 == "node-1" && n.draining) {
        assert!(Instant::now() < deadline, "node-1 never reported draining");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(gateway::nodes::SWEEP + Duration::from_millis(200)).await;
    // The Admin API's cluster view (the dashboard's source) shows it.
    let mut r = awc::Client::new()
        .post(format!("{}/admin", g.admin_url))
        .send_json(&json!({"janus": "list_nodes", "transaction": "t", "admin_secret": "janusoverlord"}))
        .await
        .unwrap();
    let nodes: serde_json::Value = r.json().await.unwrap();
    let state =
        |n: &str| nodes["nodes"].as_array().unwrap().iter().find(|x| x["node"] == n).map(|x| x["state"].clone());
    assert_eq!((state("node-1"), state("node-2")), (Some(json!("draining")), Some(json!("serving"))), "{nodes}");
    let demo = nodes["rooms"].as_array().unwrap().iter().find(|r| r["room"] == 1234).cloned();
    assert_eq!(demo.map(|r| r["node"].clone()), Some(json!("node-1")), "{nodes}");
    // New rooms go elsewhere; the draining node keeps serving its room.
    for r in 1..=4u64 {
        ws.message(sid, h, json!({"request": "create", "room": 9000 + r})).await;
        let hh = ws.attach(sid).await;
        ws.message_event(sid, hh, json!({"request": "join", "room": 9000 + r, "ptype": "publisher"})).await;
        let owner = store.room_owner(shared::ids::RoomId::num(9000 + r)).await.unwrap().unwrap();
        assert_eq!(owner.0, "node-2");
    }
    let p = ws.message(sid, h, json!({"request": "listparticipants", "room": 1234})).await;
    assert_eq!(p["plugindata"]["data"]["participants"].as_array().unwrap().len(), 1);
    assert!(!n1.is_finished(), "still serving its room");
    // Its last participant leaves: the node finishes draining and exits.
    ws.message_event(sid, h, json!({"request": "leave"})).await;
    let deadline = Instant::now() + Duration::from_secs(6);
    while !n1.is_finished() {
        assert!(Instant::now() < deadline, "node-1 did not exit after its rooms emptied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn a_draining_gateway_refuses_new_sessions_and_serves_existing_ones() {
    let redis = RedisServer::start();
    let _node = TestNode::start(&redis.url(), "node-1");
    let g = gateway(&redis, |_| {});
    let other = gateway(&redis, |_| {});
    let mut ws = WsClient::connect(&g.ws_url).await;
    let sid = ws.create_session().await;
    let client = awc::Client::new();
    let r = client.post(format!("{}/drain", g.admin_url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = ws.request(json!({"janus": "create"})).await;
    assert_eq!(r["error"]["code"], 472, "{r}");
    assert_eq!(r["error"]["reason"], "Currently not accepting new sessions");
    assert_eq!(ws.request(json!({"janus": "keepalive", "session_id": sid})).await["janus"], "ack");
    let r = client.get(format!("{}/readyz", g.admin_url)).send().await.unwrap();
    assert_eq!(r.status(), 503, "the load balancer stops sending new clients here");
    // Another gateway takes new sessions, and serves the old one too.
    let mut ws2 = WsClient::connect(&other.ws_url).await;
    ws2.create_session().await;
    assert_eq!(ws2.request(json!({"janus": "keepalive", "session_id": sid})).await["janus"], "ack");
}

/// HTTP clients whose every request (and long-poll) alternates between gateways.
struct RoundRobin {
    clients: Vec<HttpClient>,
    next: std::cell::Cell<usize>,
}

impl RoundRobin {
    fn next(&self) -> &HttpClient {
        let i = self.next.get();
        self.next.set(i + 1);
        &self.clients[i % self.clients.len()]
    }

    /// Long-polls (alternating) until an event from `sender` satisfying `pred` arrives.
    async fn wait_event(&self, sid: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            assert!(Instant::now() < deadline, "event never arrived");
            let batch = self.next().poll(sid, 10).await;
            for e in batch.as_array().cloned().unwrap_or_default() {
                if pred(&e) {
                    return e;
                }
            }
        }
    }
}

#[actix_web::test]
async fn media_flows_when_every_http_request_lands_on_a_different_gateway() {
    use portunus_tests::peer::{TestPublisher, TestSubscriber};
    let redis = RedisServer::start();
    let _n1 = TestNode::start(&redis.url(), "node-1");
    let _n2 = TestNode::start(&redis.url(), "node-2");
    let gateways: Vec<TestServer> = (0..2).map(|_| gateway(&redis, |_| {})).collect();
    let rr = RoundRobin { clients: gateways.iter().map(|g| HttpClient::new(&g.base_url)).collect(), next: 0.into() };
    // Publisher.
    let sp = rr.next().create_session().await;
    let hp = rr.next().attach(sp).await;
    rr.next().message(sp, hp, json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "pub"})).await;
    let joined = rr.wait_event(sp, |e| e["plugindata"]["data"]["videoroom"] == "joined").await;
    let feed = joined["plugindata"]["data"]["id"].as_u64().unwrap();
    let (mut publisher, offer) = TestPublisher::offer().await;
    let ack = rr
        .next()
        .post(
            &format!("/{sp}/{hp}"),
            json!({"janus": "message", "body": {"request": "publish"},
        "jsep": {"type": "offer", "sdp": offer}}),
        )
        .await;
    assert_eq!(ack["janus"], "ack");
    let configured = rr.wait_event(sp, |e| e["plugindata"]["data"]["configured"] == "ok").await;
    publisher.accept(configured["jsep"]["sdp"].as_str().unwrap()).await;
    assert!(publisher.connected(Duration::from_secs(10)).await);
    // Subscriber, its requests also alternating.
    let ss = rr.next().create_session().await;
    let hs = rr.next().attach(ss).await;
    rr.next()
        .message(ss, hs, json!({"request": "join", "room": 1234, "ptype": "subscriber", "streams": [{"feed": feed}]}))
        .await;
    let attached = rr.wait_event(ss, |e| e["plugindata"]["data"]["videoroom"] == "attached").await;
    let (mut subscriber, answer) = TestSubscriber::answer(attached["jsep"]["sdp"].as_str().unwrap()).await;
    rr.next()
        .post(
            &format!("/{ss}/{hs}"),
            json!({"janus": "message", "body": {"request": "start"},
        "jsep": {"type": "answer", "sdp": answer}}),
        )
        .await;
    rr.wait_event(ss, |e| e["plugindata"]["data"]["started"] == "ok").await;
    let sender = async {
        for _ in 0..100 {
            publisher.send().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let receiver = async {
        let mut video = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while video < 20 {
            match tokio::time::timeout_at(deadline, subscriber.packets.recv()).await {
                Ok(Some((kind, _))) if kind == "video" => video += 1,
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        video
    };
    let (_, video) = tokio::join!(sender, receiver);
    assert!(video >= 20, "RTP flows from publisher to subscriber: {video} video packets");
    subscriber.close().await;
    publisher.close().await;
}

#[actix_web::test]
async fn a_token_added_on_one_gateway_authorizes_on_every_gateway_at_once() {
    let redis = RedisServer::start();
    let _node = TestNode::start(&redis.url(), "node-1");
    let with_tokens = |c: &mut shared::config::Config| {
        c.api_secret = Some("s3cret".into());
        c.token_auth = true;
    };
    let (g1, g2) = (gateway(&redis, with_tokens), gateway(&redis, with_tokens));
    let add = json!({"janus": "add_token", "token": "shared-token", "transaction": "t"});
    let mut r = awc::Client::new().post(format!("{}/admin", g1.admin_url)).send_json(&add).await.unwrap();
    let added: Value = r.json().await.unwrap();
    assert_eq!(added["data"]["plugins"], json!(["janus.plugin.videoroom"]), "{added}");
    let mut ws = WsClient::connect(&g2.ws_url).await;
    let created = ws.request(json!({"janus": "create", "token": "shared-token"})).await;
    assert_eq!(created["janus"], "success", "the other gateway knows the token at once: {created}");
    let remove = json!({"janus": "remove_token", "token": "shared-token", "transaction": "t"});
    awc::Client::new().post(format!("{}/admin", g2.admin_url)).send_json(&remove).await.unwrap();
    let r = ws.request(json!({"janus": "create", "token": "shared-token"})).await;
    assert_eq!(r["error"]["code"], 403, "removed on one gateway, refused on the other: {r}");
}

/// The Redis commands one signaling request costs its session (round trips, counting each
/// command of a pipeline): what the gateway and the media node send that names the session,
/// not what the scripts run inside. A destroy's end signal rides its teardown script and a join
/// is bound once, by the gateway, before it is sent. Also the media node's RPC replies (they
/// name no session): a join and a leave are answered, a detach's word to the node wants none
/// (it goes out from the script that queues the `detached` event).
#[actix_web::test]
async fn each_signaling_request_costs_a_bounded_number_of_redis_commands() {
    let redis = RedisServer::start();
    let _node = TestNode::start(&redis.url(), "node-1");
    let g = gateway(&redis, |_| {});
    let mut ws = WsClient::connect(&g.ws_url).await;
    let monitor = redis.monitor();
    // The first cycle places and loads the room and loads each script into Redis, so the
    // second one is the steady state.
    signaling_cycle(&mut ws, &monitor).await;
    let counts = signaling_cycle(&mut ws, &monitor).await;
    eprintln!("Redis commands per request: {counts:?}");
    let budget = [("create", 1), ("attach", 1), ("join", 3), ("leave", 3), ("detach", 2), ("destroy", 1)];
    for ((verb, (n, _)), (_, max)) in counts.iter().zip(budget) {
        assert!(*n <= max, "{verb} costs {n} Redis commands naming its session, at most {max} expected: {counts:?}");
    }
    let replies: Vec<(&str, usize)> = counts.iter().map(|(verb, (_, r))| (*verb, *r)).collect();
    let expected = [("create", 0), ("attach", 0), ("join", 1), ("leave", 1), ("detach", 0), ("destroy", 0)];
    assert_eq!(replies, expected, "the media node's RPC replies per request");
}

/// The load generator's signaling cycle on one session, with the commands each request cost
/// naming the session, and the RPC replies published meanwhile.
async fn signaling_cycle(ws: &mut WsClient, monitor: &Monitor) -> Vec<(&'static str, (usize, usize))> {
    let join = json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "x"});
    let mut counts = Vec::new();
    let (mut sid, mut h) = (0, 0);
    for verb in ["create", "attach", "join", "leave", "detach", "destroy"] {
        monitor.take();
        let event = |m: Value| m["plugindata"]["data"].clone();
        match verb {
            "create" => sid = ws.create_session().await,
            "attach" => h = ws.attach(sid).await,
            "join" => assert_eq!(event(ws.message_event(sid, h, join.clone()).await)["videoroom"], "joined"),
            "leave" => assert_eq!(event(ws.message_event(sid, h, json!({"request": "leave"})).await)["leaving"], "ok"),
            "detach" => {
                let (r, before) = ws.call(json!({"janus": "detach", "session_id": sid, "handle_id": h})).await;
                assert_eq!(r["janus"], "success", "{r}");
                // Its `detached` event (and the mailbox read that brings it) belongs to it too.
                if !before.iter().any(|m| m["janus"] == "detached") {
                    ws.expect("detached", |m| m["janus"] == "detached").await;
                }
            }
            _ => assert_eq!(ws.call(json!({"janus": "destroy", "session_id": sid})).await.0["janus"], "success"),
        }
        // What follows the reply (the node's writes after its event) belongs to the request too.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let id = sid.to_string();
        let lines = monitor.take();
        let own: Vec<&String> = lines.iter().filter(|l| l.contains(&id) && !l.contains("[0 lua]")).collect();
        eprintln!("{verb}: {} commands\n{}", own.len(), own.iter().map(|l| l.as_str()).collect::<String>());
        let replies = lines.iter().filter(|l| l.contains("\"PUBLISH\" \"pt:gw:")).count();
        counts.push((verb, (own.len(), replies)));
    }
    counts
}

/// A client's `destroy` of a session its connection owns leaves that connection's relay out of
/// the end signal (the connection stops consuming the session itself), so what the mailbox
/// still holds must reach it all the same, after the `success`.
#[actix_web::test]
async fn a_destroy_delivers_what_the_mailbox_still_holds() {
    let redis = RedisServer::start();
    let g = gateway(&redis, |_| {});
    let mut ws = WsClient::connect(&g.ws_url).await;
    let sid = ws.create_session().await;
    // Queued with no wake-up, as if its wake-up were still on its way.
    let event = json!({"janus": "event", "session_id": sid, "sender": 1, "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "event", "queued": true}}});
    let mut c = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let n: i64 = redis::cmd("RPUSH").arg(format!("pt:{{s:{sid}}}:mbox")).arg(event.to_string()).query(&mut c).unwrap();
    assert_eq!(n, 1);
    let (r, before) = ws.call(json!({"janus": "destroy", "session_id": sid})).await;
    assert_eq!(r["janus"], "success", "{r}");
    assert!(before.is_empty(), "nothing woke the connection before the destroy: {before:?}");
    let got = ws.expect("the queued event", |m| m["janus"] == "event").await;
    assert_eq!(got["plugindata"]["data"]["queued"], true);
}
