//! Failures of real processes: gateways and media nodes run as their own binaries over a
//! `redis-server` the test starts, and are killed with `kill -9` or frozen with SIGSTOP.

use portunus_tests::procs::{spawn_gateway, spawn_node};
use portunus_tests::videoroom::{publish_via, subscribe_via};
use portunus_tests::*;
use serde_json::json;
use shared::ids::{NodeId, RoomId};
use shared::store::{RedisStore, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn inspect(redis: &RedisServer) -> RedisStore {
    RedisStore::connect(&redis.url(), Arc::new(shared::clock::SystemClock)).await.unwrap()
}

async fn wait_for_node(store: &RedisStore, node: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !store.live_nodes().await.unwrap().iter().any(|n| n.node.0 == node) {
        assert!(Instant::now() < deadline, "{node} never registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A redis-server, the media node `node-1` (registered) and a gateway, each a process of its
/// own, and a WebSocket client with a session and one handle on that gateway.
struct OneNode {
    redis: RedisServer,
    store: RedisStore,
    node: portunus_tests::procs::NodeProc,
    gateway: portunus_tests::procs::GatewayProc,
    ws: WsClient,
    sid: u64,
    h: u64,
}

async fn one_node() -> OneNode {
    one_node_with(&[]).await
}

/// [`one_node`] with `gateway_args` for its gateway.
async fn one_node_with(gateway_args: &[&str]) -> OneNode {
    let redis = RedisServer::start();
    let store = inspect(&redis).await;
    let node = spawn_node(&redis.url(), "node-1");
    wait_for_node(&store, "node-1").await;
    let gateway = spawn_gateway(&redis.url(), gateway_args);
    let mut ws = WsClient::connect(&gateway.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    OneNode { redis, store, node, gateway, ws, sid, h }
}

/// A redis-server, `node-1`, gateways A and B (sessions reclaimable for 30 s), and a WebSocket
/// client on A with a session whose handle has joined room 1234 as a publisher.
struct TwoGateways {
    _redis: RedisServer,
    node: portunus_tests::procs::NodeProc,
    a: portunus_tests::procs::GatewayProc,
    b: portunus_tests::procs::GatewayProc,
    ws: WsClient,
    sid: u64,
    h: u64,
}

async fn two_gateways() -> TwoGateways {
    const RECLAIMABLE: [&str; 2] = ["--reclaim-timeout", "30"];
    let OneNode { redis, store: _, node, gateway: a, mut ws, sid, h } = one_node_with(&RECLAIMABLE).await;
    let b = spawn_gateway(&redis.url(), &RECLAIMABLE);
    let joined = ws.message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    assert_eq!(joined["plugindata"]["data"]["videoroom"], "joined", "{joined}");
    TwoGateways { _redis: redis, node, a, b, ws, sid, h }
}

#[actix_web::test]
async fn kill_9_a_gateway_and_the_client_claims_its_session_on_another_losing_no_event() {
    let TwoGateways { _redis, node: _node, mut a, b, ws, sid, h } = two_gateways().await;
    a.proc.kill9();
    drop(ws);
    // Events produced while the client has no gateway wait in the session's mailbox.
    let http = HttpClient::new(&b.base_url);
    assert_eq!(http.message(sid, h, json!({"request": "leave"})).await["janus"], "ack");
    let h2 = http.attach(sid).await;
    assert_eq!(
        http.message(sid, h2, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await["janus"],
        "ack"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = WsClient::connect(&b.ws_url).await;
    let (claimed, _) = again.call(json!({"janus": "claim", "session_id": sid})).await;
    assert_eq!(claimed["janus"], "success", "{claimed}");
    let first = again.recv().await;
    let second = again.recv().await;
    assert_eq!(
        (first["sender"].as_u64(), first["plugindata"]["data"]["leaving"].as_str()),
        (Some(h), Some("ok")),
        "{first}"
    );
    assert_eq!(
        (second["sender"].as_u64(), second["plugindata"]["data"]["videoroom"].as_str()),
        (Some(h2), Some("joined")),
        "{second}"
    );
    assert!(again.try_recv(Duration::from_millis(500)).await.is_none(), "each event exactly once");
}

#[actix_web::test]
async fn kill_9_a_media_node_hangs_up_its_handles_and_rejoins_land_on_the_survivor() {
    let redis = RedisServer::start();
    let store = inspect(&redis).await;
    let mut n1 = spawn_node(&redis.url(), "node-1");
    let mut n2 = spawn_node(&redis.url(), "node-2");
    wait_for_node(&store, "node-1").await;
    wait_for_node(&store, "node-2").await;
    let g = spawn_gateway(&redis.url(), &[]);
    let mut ws = WsClient::connect(&g.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    ws.message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    let owner = store.room_owner(RoomId::num(1234)).await.unwrap().unwrap();
    let (victim, survivor) = if owner.0 == "node-1" { (&mut n1, "node-2") } else { (&mut n2, "node-1") };
    victim.kill9();
    let killed_at = Instant::now();
    let hangup = ws.try_recv(Duration::from_secs(8)).await.expect("a hangup after the node died");
    let noticed = killed_at.elapsed();
    assert_eq!(hangup, json!({"janus": "hangup", "session_id": sid, "sender": h, "reason": "Media node lost"}));
    assert!(noticed <= Duration::from_secs(6), "noticed after {noticed:?}");
    let ev = ws.message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    assert_eq!(ev["plugindata"]["data"]["videoroom"], "joined", "{ev}");
    assert_eq!(store.room_owner(RoomId::num(1234)).await.unwrap().unwrap().0, survivor);
    eprintln!("kill -9 media node: hangup after {noticed:?}");
}

#[actix_web::test]
async fn a_frozen_media_node_loses_its_room_and_never_serves_it_after_thawing() {
    let redis = RedisServer::start();
    let store = inspect(&redis).await;
    let n1 = spawn_node(&redis.url(), "node-1");
    wait_for_node(&store, "node-1").await;
    let g = spawn_gateway(&redis.url(), &[]);
    let mut ws = WsClient::connect(&g.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    ws.message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "before"})).await;
    assert_eq!(store.room_owner(RoomId::num(1234)).await.unwrap().unwrap().0, "node-1");
    let _n2 = spawn_node(&redis.url(), "node-2");
    wait_for_node(&store, "node-2").await;
    n1.freeze();
    let hangup = ws.try_recv(Duration::from_secs(8)).await.expect("the frozen node's handle is hung up");
    assert_eq!(hangup["reason"], "Media node lost");
    let ev = ws
        .message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "after"}))
        .await;
    assert_eq!(ev["plugindata"]["data"]["videoroom"], "joined", "{ev}");
    assert_eq!(store.room_owner(RoomId::num(1234)).await.unwrap().unwrap(), NodeId("node-2".into()));
    // node-1 wakes up believing it owns the room: its next renewal fails and it stands down
    // without telling anyone twice; the room stays on node-2.
    n1.thaw();
    tokio::time::sleep(Duration::from_millis(shared::store::ROOM_LEASE_RENEW_MS + 1500)).await;
    assert!(ws.try_recv(Duration::from_millis(200)).await.is_none(), "no second hangup");
    let p = ws.message(sid, h, json!({"request": "listparticipants", "room": 1234})).await;
    let parts = p["plugindata"]["data"]["participants"].as_array().unwrap().clone();
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(parts[0]["display"], "after");
    assert_eq!(store.room_owner(RoomId::num(1234)).await.unwrap().unwrap(), NodeId("node-2".into()));
}

/// A reply that announces an event is held back for that event at most 2 ms: with the room's
/// media node frozen, a `configure`'s `ack` still comes at once, and the next event (the
/// node's error after the RPC deadline, or the hangup when its lease runs out) seconds later.
#[actix_web::test]
async fn an_ack_is_not_held_back_by_an_event_that_is_slow_to_come() {
    let OneNode { redis: _redis, store: _store, node: n1, gateway: _g, mut ws, sid, h } = one_node().await;
    let joined = ws.message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    assert_eq!(joined["plugindata"]["data"]["videoroom"], "joined", "{joined}");
    n1.freeze();
    let asked = Instant::now();
    ws.send(&json!({"janus": "message", "session_id": sid, "handle_id": h, "transaction": txn(),
        "body": {"request": "configure", "bitrate": 128000}}))
        .await;
    let ack = ws.try_recv(Duration::from_secs(3)).await.expect("an ack");
    let acked = asked.elapsed();
    assert_eq!(ack["janus"], "ack", "{ack}");
    let event = ws.try_recv(Duration::from_secs(10)).await.expect("the configure's event");
    let answered = asked.elapsed();
    n1.thaw();
    eprintln!("frozen node: ack after {acked:?}, event after {answered:?}: {event}");
    // The configure's error after the RPC deadline, or the hangup when the node's lease ran out.
    assert!(event["janus"] == "event" || event["janus"] == "hangup", "{event}");
    assert!(acked < Duration::from_millis(500), "the ack waited {acked:?}");
    assert!(answered > Duration::from_secs(1), "the event came after {answered:?}: the node was not frozen");
}

#[actix_web::test]
async fn sigterm_drains_a_media_node_process() {
    let redis = RedisServer::start();
    let store = inspect(&redis).await;
    let mut n1 = spawn_node(&redis.url(), "node-1");
    wait_for_node(&store, "node-1").await;
    // Nothing to serve: it exits at once.
    assert!(n1.terminate(Duration::from_secs(5)), "an idle node exits on SIGTERM");
}

#[actix_web::test]
async fn a_media_node_serves_probes_and_metrics_and_is_not_ready_while_draining() {
    let OneNode { redis: _redis, store, node: mut n1, gateway: g, mut ws, sid, h } = one_node().await;
    assert_eq!(get_text(&format!("{}/healthz", n1.admin_url)).await.0, 200);
    assert_eq!(get_text(&format!("{}/readyz", n1.admin_url)).await, (200, "ready\n".into()));
    // A participant keeps the node's room, and so the node, alive through the drain.
    ws.message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    let (_, text) = get_text(&format!("{}/metrics", n1.admin_url)).await;
    assert_eq!(metric(&text, "portunus_node_rooms"), Some(1.0), "{text}");
    assert_eq!(metric(&text, "portunus_node_participants"), Some(1.0), "{text}");
    assert_eq!(metric(&text, "portunus_node_draining"), Some(0.0), "{text}");
    assert_heap_is_jemalloc(&text);
    let (_, text) = get_text(&format!("{}/metrics", g.admin_url)).await;
    assert_eq!(metric(&text, r#"portunus_cluster_nodes{state="serving"}"#), Some(1.0), "{text}");
    assert_eq!(metric(&text, "portunus_cluster_rooms"), Some(1.0), "{text}");
    assert_heap_is_jemalloc(&text);
    // The load the registry holds is the one of the node's last heartbeat (every 2 s).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, text) = get_text(&format!("{}/metrics", g.admin_url)).await;
        if metric(&text, r#"portunus_cluster_node_load{node="node-1"}"#).is_some_and(|l| l >= 2.0) {
            break;
        }
        assert!(Instant::now() < deadline, "node-1's load never reached the gateway's metrics:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // SIGTERM: still serving its room, but not ready, and the gateways see it draining.
    assert!(!n1.terminate(Duration::from_millis(500)), "a node with a participant drains instead of exiting");
    assert_eq!(get_text(&format!("{}/readyz", n1.admin_url)).await, (503, "draining\n".into()));
    let (_, text) = get_text(&format!("{}/metrics", n1.admin_url)).await;
    assert_eq!(metric(&text, "portunus_node_draining"), Some(1.0), "{text}");
    assert!(metric(&text, r#"portunus_node_heartbeats_total{result="ok"}"#).is_some(), "{text}");
    let (_, text) = get_text(&format!("{}/metrics", g.admin_url)).await;
    assert_eq!(metric(&text, r#"portunus_cluster_nodes{state="draining"}"#), Some(1.0), "{text}");
    // The last participant's leave is answered before the node exits, and its graceful exit is
    // not a lost node: no hangup follows, even past the time a lost node takes to be noticed.
    let left = ws.message_event(sid, h, json!({"request": "leave"})).await;
    assert_eq!(left["plugindata"]["data"]["leaving"], "ok", "{left}");
    assert!(n1.wait_exit(Duration::from_secs(5)), "the drained node exits once its room is empty");
    if let Some(m) = ws.try_recv(Duration::from_millis(6_500)).await {
        panic!("nothing more was due after a graceful drain, got {m}");
    }
    assert!(!store.live_nodes().await.unwrap().iter().any(|n| n.node.0 == "node-1"), "it left the registry");
}

#[actix_web::test]
async fn a_media_node_back_under_its_old_name_hangs_up_its_earlier_incarnations_handles_at_once() {
    let OneNode { redis, store: _store, node: mut n1, gateway: _g, mut ws, sid, h } = one_node().await;
    ws.message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "before"})).await;
    // A crash and a restart under the same name (a StatefulSet pod), well within the 5 s its
    // registration would take to lapse.
    n1.kill9();
    let crashed = Instant::now();
    let _n1 = spawn_node(&redis.url(), "node-1");
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        let m = ws.try_recv(deadline.saturating_duration_since(Instant::now())).await;
        let m = m.expect("the handle of the earlier incarnation was never hung up");
        if m["janus"] == "hangup" && m["reason"] == "Media node lost" && m["sender"] == h {
            break;
        }
    }
    let took = crashed.elapsed();
    eprintln!("crash -> hangup under a restarted node of the same name: {} ms", took.as_millis());
    assert!(took < Duration::from_secs(4), "{took:?}");
    // The client joins again, and the room lists it once.
    let joined = ws
        .message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "after"}))
        .await;
    assert_eq!(joined["plugindata"]["data"]["videoroom"], "joined", "{joined}");
    let p = ws.message(sid, h, json!({"request": "listparticipants", "room": 1234})).await;
    let parts = p["plugindata"]["data"]["participants"].as_array().unwrap().clone();
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(parts[0]["display"], "after");
}

#[actix_web::test]
async fn sigterm_drains_a_gateway_process_until_its_sockets_close() {
    let redis = RedisServer::start();
    let store = inspect(&redis).await;
    let _node = spawn_node(&redis.url(), "node-1");
    wait_for_node(&store, "node-1").await;
    let mut g = spawn_gateway(&redis.url(), &[]);
    let mut ws = WsClient::connect(&g.ws_url).await;
    let sid = ws.create_session().await;
    // SIGTERM: the process keeps serving its socket but takes no new sessions.
    let exited = g.proc.terminate(Duration::from_millis(700));
    assert!(!exited, "a gateway with an open socket drains instead of exiting");
    let r = ws.request(json!({"janus": "create"})).await;
    assert_eq!(r["error"]["code"], 472, "{r}");
    assert_eq!(ws.request(json!({"janus": "keepalive", "session_id": sid})).await["janus"], "ack");
    let ready = awc::Client::new().get(format!("{}/readyz", g.admin_url)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    ws.close().await;
    assert!(g.proc.wait_exit(Duration::from_secs(5)), "the gateway did not exit after its last socket closed");
}

/// A gateway that stops with an HTTP request still waiting on its media node neither answers
/// it with an error while the node goes on to answer it too: the request's one event is the
/// node's, heard on another gateway after a claim. (The core actors live on the WebSocket
/// server's first worker, so that server stops last.)
#[actix_web::test]
async fn a_gateway_stopping_with_a_request_in_flight_leaves_it_one_answer() {
    let TwoGateways { _redis, node, mut a, b, ws, sid, h } = two_gateways().await;
    // The node frozen, an HTTP `configure` waits on it inside gateway A when A is told to stop.
    node.freeze();
    let url = format!("{}/{sid}/{h}", a.base_url);
    let in_flight = actix_web::rt::spawn(async move {
        let req = json!({"janus": "message", "transaction": "in-flight", "body": {"request": "configure", "bitrate": 128000}});
        let _ = awc::Client::builder().timeout(Duration::from_secs(10)).finish().post(url).send_json(&req).await;
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.close().await;
    assert!(a.proc.terminate(Duration::from_secs(5)), "gateway A did not stop");
    node.thaw();
    let _ = in_flight.await;
    let mut again = WsClient::connect(&b.ws_url).await;
    let (claimed, early) = again.call(json!({"janus": "claim", "session_id": sid})).await;
    assert_eq!(claimed["janus"], "success", "{claimed}");
    let mut answers: Vec<serde_json::Value> = early;
    while let Some(m) = again.try_recv(Duration::from_secs(2)).await {
        answers.push(m);
    }
    let answers: Vec<_> = answers.into_iter().filter(|m| m["transaction"] == "in-flight").collect();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["plugindata"]["data"]["configured"], "ok", "{}", answers[0]);
}

#[actix_web::test]
async fn after_kill_9_of_a_media_node_the_rejoined_publisher_s_media_flows_on_the_survivor() {
    use portunus_tests::peer::TestPublisher;
    let redis = RedisServer::start();
    let store = inspect(&redis).await;
    let mut n1 = spawn_node(&redis.url(), "node-1");
    wait_for_node(&store, "node-1").await;
    let g = spawn_gateway(&redis.url(), &[]);
    let mut ws = WsClient::connect(&g.ws_url).await;
    let sid = ws.create_session().await;
    let hp = ws.attach(sid).await;
    // Publishing on node-1.
    ws.message_event(sid, hp, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    let (mut old, offer) = TestPublisher::offer().await;
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hp, "body": {"request": "publish"},
        "jsep": {"type": "offer", "sdp": offer}}))
        .await;
    let configured = ws.expect_skipping_core("configured", |m| m["sender"] == hp).await;
    old.accept(configured["jsep"]["sdp"].as_str().unwrap()).await;
    let _n2 = spawn_node(&redis.url(), "node-2");
    wait_for_node(&store, "node-2").await;
    n1.kill9();
    // The hangup arrives; the same handle joins again and publishes anew on node-2.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let m = ws.try_recv(deadline.saturating_duration_since(Instant::now())).await.expect("hangup after the kill");
        if m["janus"] == "hangup" && m["reason"] == "Media node lost" {
            break;
        }
    }
    old.close().await;
    ws.call(json!({"janus": "message", "session_id": sid, "handle_id": hp,
        "body": {"request": "join", "room": 1234, "ptype": "publisher"}}))
        .await;
    let joined = ws.expect_skipping_core("joined", |m| m["sender"] == hp).await;
    let feed = joined["plugindata"]["data"]["id"].as_u64().unwrap();
    assert_eq!(store.room_owner(RoomId::num(1234)).await.unwrap().unwrap().0, "node-2");
    let mut publisher = publish_via(&mut ws, sid, hp).await;
    let (mut subscriber, _hs) = subscribe_via(&mut ws, sid, feed).await;
    let sender = async {
        for _ in 0..100 {
            publisher.send().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let receiver = async {
        let mut n = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while n < 20 {
            match tokio::time::timeout_at(deadline, subscriber.packets.recv()).await {
                Ok(Some(_)) => n += 1,
                _ => break,
            }
        }
        n
    };
    let (_, got) = tokio::join!(sender, receiver);
    assert!(got >= 20, "media flows on the surviving node: {got} packets");
    subscriber.close().await;
    publisher.close().await;
}

#[actix_web::test]
async fn after_a_redis_restart_without_persistence_sessions_hear_their_events_and_rooms_and_requests_work_at_once() {
    let OneNode { mut redis, store: _store, node: _node, gateway: _g, mut ws, sid, h } = one_node().await;
    let port = redis.port;
    let r = ws.message(sid, h, json!({"request": "exists", "room": 1234})).await;
    assert_eq!(r["plugindata"]["data"]["exists"], true, "{r}");
    redis.kill();
    let _redis = RedisServer::start_on(port);
    // While every process is still reconnecting: a session either is refused with a Janus error
    // or hears its events (here `detached`, which travels through the mailbox and the bus).
    let deadline = Instant::now() + Duration::from_secs(15);
    let sid = loop {
        let r = ws.request(json!({"janus": "create"})).await;
        if let Some(id) = r["data"]["id"].as_u64() {
            break id;
        }
        assert_eq!(r["janus"], "error", "{r}");
        assert!(Instant::now() < deadline, "no session could be created: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let h = loop {
        let r = ws.request(json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom"})).await;
        if let Some(id) = r["data"]["id"].as_u64() {
            break id;
        }
        assert!(Instant::now() < deadline, "no handle could be attached: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let r = ws.request(json!({"janus": "detach", "session_id": sid, "handle_id": h})).await;
    assert_eq!(r["janus"], "success", "{r}");
    let ev = ws.try_recv(Duration::from_secs(3)).await.expect("the new session never heard its detached event");
    assert_eq!(ev["janus"], "detached", "{ev}");
    // Once every process has had time to notice on its own (no request meanwhile), the first
    // request through the gateway, the bus and the node succeeds, in the declared demo room that
    // the empty Redis had lost.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let h = ws.attach(sid).await;
    let t = Instant::now();
    let joined = ws.message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    assert_eq!(joined["plugindata"]["data"]["videoroom"], "joined", "{joined}");
    assert!(t.elapsed() < Duration::from_secs(2), "join took {:?}", t.elapsed());
}

/// A process started on a port another server already holds is not taken for ready when that
/// server answers its readiness probe: ours exits on the bind, and the start reports it (the
/// harness then picks other ports), so a test never talks to another test's server.
#[test]
fn a_process_whose_port_another_server_holds_is_not_taken_for_ready() {
    use std::io::{Read, Write};
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    // The holder answers every probe 200, as a ready gateway would. It ends with the test binary.
    std::thread::spawn(move || {
        for mut s in held.incoming().flatten() {
            let _ = s.read(&mut [0; 1024]);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let gateway = portunus_tests::procs::binaries().0.to_str().unwrap().to_owned();
    let start = |ports: &[u16]| {
        let (ws, http, admin) = (free_port().to_string(), free_port().to_string(), ports[0].to_string());
        let args = ["--bind", "127.0.0.1", "--ws-port", &ws, "--http-port", &http, "--admin-port", &admin];
        portunus_tests::procs::spawn_program(&gateway, &args)
    };
    let ready = |p: &[u16]| portunus_tests::hosts::http_ok(([127, 0, 0, 1], p[0]).into(), "/readyz");
    assert!(ready(&[port]), "the holder answers the probe");
    match portunus_tests::procs::Proc::start_on(&[port], start, ready) {
        Ok(p) => panic!("pid {} was taken for ready on a port it never bound", p.pid()),
        Err(log) => assert!(log.contains("in use"), "it exits on the bind: {log}"),
    }
}
