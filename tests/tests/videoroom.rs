//! VideoRoom synchronous requests and participants without media: room lifecycle, access
//! control, membership events, and rooms declared in the configuration.

use portunus_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

fn data(r: &Value) -> &Value {
    &r["plugindata"]["data"]
}

#[actix_web::test]
async fn rooms_are_created_listed_edited_and_destroyed() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    // A room id is made up when absent.
    let created = ws
        .message(
            sid,
            h,
            json!({"request": "create", "description": "team", "secret": "s3", "pin": "p",
        "publishers": 2, "bitrate": 1000, "videocodec": "vp8,h264", "notify_joining": true, "audiolevel_event": true}),
        )
        .await;
    let room = data(&created)["room"].as_u64().expect("room id");
    assert!(room > 0 && room < (1 << 53));
    let exists = ws.message(sid, h, json!({"request": "exists", "room": room})).await;
    assert_eq!(data(&exists)["exists"], true);
    // Every option is stored and echoed by list (bitrate raised to Janus's 64k floor).
    let list = ws.message(sid, h, json!({"request": "list"})).await;
    let entry = data(&list)["list"].as_array().unwrap().iter().find(|r| r["room"] == room).unwrap().clone();
    assert_eq!(entry["description"], "team");
    assert_eq!(entry["pin_required"], true);
    assert_eq!(entry["max_publishers"], 2);
    assert_eq!(entry["bitrate"], 64000);
    assert_eq!(entry["videocodec"], "vp8,h264");
    assert_eq!(entry["notify_joining"], true);
    assert_eq!(entry["audio_active_packets"], 100);
    // Private rooms are hidden from list.
    let private = ws.message(sid, h, json!({"request": "create", "is_private": true})).await;
    let private_room = data(&private)["room"].clone();
    let list = ws.message(sid, h, json!({"request": "list"})).await;
    assert!(!data(&list)["list"].as_array().unwrap().iter().any(|r| r["room"] == private_room));
    // edit needs the secret and changes what list shows.
    let edited = ws
        .message(
            sid,
            h,
            json!({"request": "edit", "room": room, "secret": "s3", "new_description": "renamed", "new_publishers": 9}),
        )
        .await;
    assert_eq!(data(&edited), &json!({"videoroom": "edited", "room": room, "permanent": false}));
    let list = ws.message(sid, h, json!({"request": "list"})).await;
    let entry = data(&list)["list"].as_array().unwrap().iter().find(|r| r["room"] == room).unwrap().clone();
    assert_eq!((entry["description"].clone(), entry["max_publishers"].clone()), (json!("renamed"), json!(9)));
    // Permanent rooms need a configuration file, which Portunus does not write (Janus's error).
    let perm = ws.message(sid, h, json!({"request": "create", "permanent": true})).await;
    assert_eq!(data(&perm)["error_code"], 499);
    let gone = ws.message(sid, h, json!({"request": "destroy", "room": room, "secret": "s3"})).await;
    assert_eq!(data(&gone)["videoroom"], "destroyed");
    let exists = ws.message(sid, h, json!({"request": "exists", "room": room})).await;
    assert_eq!(data(&exists)["exists"], false);
}

#[actix_web::test]
async fn pins_allowed_tokens_and_publisher_ids_are_enforced() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let admin = ws.attach(sid).await;
    ws.message(sid, admin, json!({"request": "create", "room": 42, "secret": "s", "pin": "1234", "allowed": ["good"]}))
        .await;
    async fn join(ws: &mut WsClient, sid: u64, body: Value) -> Value {
        let h = ws.attach(sid).await;
        ws.message_event(sid, h, body).await
    }
    let e = join(&mut ws, sid, json!({"request": "join", "room": 42, "ptype": "publisher", "token": "good"})).await;
    assert_eq!(data(&e)["error"], "Missing mandatory element (pin)");
    let e =
        join(&mut ws, sid, json!({"request": "join", "room": 42, "ptype": "publisher", "pin": "0", "token": "good"}))
            .await;
    assert_eq!(
        (data(&e)["error_code"].clone(), data(&e)["error"].clone()),
        (json!(433), json!("Unauthorized (wrong pin)"))
    );
    let e =
        join(&mut ws, sid, json!({"request": "join", "room": 42, "ptype": "publisher", "pin": "1234", "token": "bad"}))
            .await;
    assert_eq!(data(&e)["error"], "Unauthorized (not in the allowed list)");
    let e = join(
        &mut ws,
        sid,
        json!({"request": "join", "room": 42, "ptype": "publisher", "pin": "1234", "token": "good", "id": 77}),
    )
    .await;
    assert_eq!(data(&e)["id"], 77);
    let e = join(
        &mut ws,
        sid,
        json!({"request": "join", "room": 42, "ptype": "publisher", "pin": "1234", "token": "good", "id": 77}),
    )
    .await;
    assert_eq!(
        (data(&e)["error_code"].clone(), data(&e)["error"].clone()),
        (json!(436), json!("User ID 77 already exists"))
    );
    let e = join(&mut ws, sid, json!({"request": "join", "room": 42, "ptype": "sideways", "pin": "1234"})).await;
    assert_eq!(data(&e)["error"], "Invalid element (ptype)");
    let e = join(&mut ws, sid, json!({"request": "join", "ptype": "publisher"})).await;
    assert_eq!(data(&e)["error"], "Missing mandatory element (room)");
    // allowed: add a token, then it admits.
    let r = ws
        .message(
            sid,
            admin,
            json!({"request": "allowed", "room": 42, "secret": "s", "action": "add", "allowed": ["late"]}),
        )
        .await;
    assert_eq!(data(&r)["allowed"], json!(["good", "late"]));
    let e = join(
        &mut ws,
        sid,
        json!({"request": "join", "room": 42, "ptype": "publisher", "pin": "1234", "token": "late"}),
    )
    .await;
    assert_eq!(data(&e)["videoroom"], "joined");
    let r = ws.message(sid, admin, json!({"request": "allowed", "room": 42, "secret": "s", "action": "disable"})).await;
    assert_eq!(data(&r), &json!({"videoroom": "success", "room": 42}));
}

#[actix_web::test]
async fn handle_state_follows_janus() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    let e = ws.message_event(sid, h, json!({"request": "leave"})).await;
    assert_eq!(
        (data(&e)["error_code"].clone(), data(&e)["error"].clone()),
        (json!(424), json!("Invalid request on unconfigured participant"))
    );
    let e = ws.message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    assert_eq!(data(&e)["videoroom"], "joined");
    let e = ws.message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    assert_eq!(data(&e)["error"], "Already in as a publisher on this handle");
    let e = ws.message_event(sid, h, json!({"request": "unpublish"})).await;
    assert_eq!(
        (data(&e)["error_code"].clone(), data(&e)["error"].clone()),
        (json!(435), json!("Can't unpublish, not published"))
    );
    let e = ws.message_event(sid, h, json!({"request": "leave"})).await;
    assert_eq!(data(&e)["leaving"], "ok");
    let e = ws.message_event(sid, h, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    assert_eq!(
        (data(&e)["error_code"].clone(), data(&e)["error"].clone()),
        (json!(425), json!("Not in a room (create a new handle)"))
    );
}

#[actix_web::test]
async fn kick_and_destroy_reach_the_participants() {
    let server = TestServer::start();
    let mut admin = WsClient::connect(&server.ws_url).await;
    let mut a = WsClient::connect(&server.ws_url).await;
    let mut b = WsClient::connect(&server.ws_url).await;
    let s0 = admin.create_session().await;
    let h0 = admin.attach(s0).await;
    admin.message(s0, h0, json!({"request": "create", "room": 555, "secret": "adm"})).await;
    let (sa, sb) = (a.create_session().await, b.create_session().await);
    let (ha, hb) = (a.attach(sa).await, b.attach(sb).await);
    a.message(sa, ha, json!({"request": "join", "room": 555, "ptype": "publisher", "display": "a"})).await;
    let id_a = data(&a.recv().await)["id"].clone();
    b.message(sb, hb, json!({"request": "join", "room": 555, "ptype": "publisher", "display": "b"})).await;
    b.recv().await;
    let parts = admin.message(s0, h0, json!({"request": "listparticipants", "room": 555})).await;
    assert_eq!(data(&parts)["participants"].as_array().unwrap().len(), 2);
    let list = admin.message(s0, h0, json!({"request": "list"})).await;
    let entry = data(&list)["list"].as_array().unwrap().iter().find(|r| r["room"] == 555).unwrap().clone();
    assert_eq!(entry["num_participants"], 2);
    let k = admin.message(s0, h0, json!({"request": "kick", "room": 555, "secret": "adm", "id": id_a})).await;
    assert_eq!(data(&k), &json!({"videoroom": "success"}));
    let kicked = a.recv().await;
    assert_eq!(data(&kicked), &json!({"videoroom": "event", "room": 555, "leaving": "ok", "reason": "kicked"}));
    let heard = b.recv().await;
    assert_eq!(data(&heard), &json!({"videoroom": "event", "room": 555, "display": "a", "kicked": id_a}));
    let d = admin.message(s0, h0, json!({"request": "destroy", "room": 555, "secret": "adm"})).await;
    assert_eq!(data(&d)["videoroom"], "destroyed");
    let ev = b.recv().await;
    assert_eq!(ev["janus"], "event");
    assert!(ev.get("transaction").is_none());
    assert_eq!(data(&ev), &json!({"videoroom": "destroyed", "room": 555}));
    assert!(
        a.try_recv(Duration::from_millis(300)).await.is_none(),
        "the kicked participant is not in the room any more"
    );
}

#[actix_web::test]
async fn rooms_declared_in_the_configuration_exist_at_start() {
    let mut cfg = test_config();
    cfg.demo_room = false;
    let spec = json!({"room": 2001, "description": "from config", "publishers": 12, "secret": "x"});
    cfg.rooms = vec![spec.as_object().unwrap().clone()];
    let server = TestServer::with(cfg);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    let list = ws.message(sid, h, json!({"request": "list"})).await;
    let rooms = data(&list)["list"].as_array().unwrap().clone();
    assert_eq!(rooms.len(), 1, "the demo room is off: {rooms:?}");
    assert_eq!(
        (rooms[0]["room"].clone(), rooms[0]["description"].clone(), rooms[0]["max_publishers"].clone()),
        (json!(2001), json!("from config"), json!(12))
    );
}

#[actix_web::test]
async fn concurrent_requests_on_many_handles_produce_every_event_once_in_order() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let n = 30;
    let mut handles = Vec::new();
    for _ in 0..n {
        handles.push(ws.attach(sid).await);
    }
    // Fire join then leave on every handle without waiting for anything.
    for (i, h) in handles.iter().enumerate() {
        ws.send(&json!({"janus": "message", "session_id": sid, "handle_id": h, "transaction": format!("j{i}"),
            "body": {"request": "join", "room": 1234, "ptype": "publisher", "display": format!("p{i}")}}))
            .await;
        ws.send(&json!({"janus": "message", "session_id": sid, "handle_id": h, "transaction": format!("l{i}"),
            "body": {"request": "leave"}}))
            .await;
    }
    let mut acks = std::collections::HashSet::new();
    let mut per_handle: std::collections::HashMap<u64, Vec<String>> = Default::default();
    let mut transactions = std::collections::HashSet::new();
    // 2n acks, n joined, n leaving ok, plus `leaving` notices to whoever was in the room.
    while acks.len() < 2 * n || per_handle.values().map(Vec::len).sum::<usize>() < 2 * n {
        let m = ws.recv().await;
        match m["janus"].as_str().unwrap() {
            "ack" => assert!(acks.insert(m["transaction"].as_str().unwrap().to_owned()), "ack twice: {m}"),
            "event" => {
                let d = data(&m);
                if let Some(t) = m["transaction"].as_str() {
                    assert!(transactions.insert(t.to_owned()), "event twice for {t}");
                    assert!(acks.contains(t), "event before its ack: {m}");
                    let kind = if d["videoroom"] == "joined" {
                        "joined"
                    } else if d["leaving"] == "ok" {
                        "left"
                    } else {
                        "other"
                    };
                    per_handle.entry(m["sender"].as_u64().unwrap()).or_default().push(kind.to_owned());
                }
            }
            other => panic!("unexpected {other}: {m}"),
        }
    }
    for h in &handles {
        assert_eq!(per_handle[h], vec!["joined", "left"], "handle {h}");
    }
}
