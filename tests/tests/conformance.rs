//! Janus API conformance, data-driven: every case in `fixtures/core_errors.json` is sent over a
//! real WebSocket and over HTTP, and the reply must match the recorded Janus 1.1.2 reply
//! (`golden/`) or the fixture's own expectation. Success paths are compared with the golden
//! files one by one below.

use portunus_tests::*;
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Via {
    Ws,
    Http,
}

fn substitute(v: &Value, sid: u64, hid: u64) -> Value {
    let text = v
        .to_string()
        .replace("\"$SID\"", &sid.to_string())
        .replace("\"$HID\"", &hid.to_string())
        .replace("$SID", &sid.to_string())
        .replace("$HID", &hid.to_string());
    serde_json::from_str(&text).expect("fixture substitution")
}

async fn run_case(case: &Value, via: Via, server: &TestServer) -> Result<(), String> {
    let name = case["name"].as_str().unwrap_or("?");
    let setup = case["setup"].as_str().unwrap_or("none");
    let http = HttpClient::new(&server.base_url);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let (mut sid, mut hid) = (0, 0);
    if setup != "none" {
        sid = match via {
            Via::Ws => ws.create_session().await,
            Via::Http => http.create_session().await,
        };
    }
    if setup == "handle" {
        hid = match via {
            Via::Ws => ws.attach(sid).await,
            Via::Http => http.attach(sid).await,
        };
    }
    let body = match (case.get("raw"), case.get("send")) {
        (Some(raw), _) => raw.as_str().unwrap_or_default().to_owned(),
        (None, Some(send)) => {
            let mut s = substitute(send, sid, hid);
            if s.get("transaction").is_none() && s.is_object() {
                s["transaction"] = json!(txn());
            }
            s.to_string()
        }
        _ => return Err(format!("{name}: fixture has neither raw nor send")),
    };
    let mut reply = match via {
        Via::Ws => {
            ws.send_text(body).await;
            ws.recv().await
        }
        // HTTP clients may carry the ids in the body too; Janus accepts both.
        Via::Http => http.post_raw("", body).await,
    };
    let golden_name = match via {
        Via::Http => case.get("http_golden").or(case.get("golden")),
        Via::Ws => case.get("golden"),
    };
    let expected = match (golden_name, case.get("expect")) {
        (Some(g), _) => golden(g.as_str().unwrap_or_default()),
        (None, Some(e)) => substitute(e, sid, hid),
        _ => return Err(format!("{name}: fixture has no expectation")),
    };
    if let Some(prefix) = case["reason_prefix"].get(if via == Via::Ws { "ws" } else { "http" }).and_then(Value::as_str)
    {
        let reason = reply["error"]["reason"].as_str().unwrap_or_default().to_owned();
        if !reason.starts_with(prefix) {
            return Err(format!("{name} ({via:?}): reason {reason:?} should start with {prefix:?}"));
        }
        // The rest is the JSON library's own wording, which differs from jansson's.
        reply["error"]["reason"] = expected["error"]["reason"].clone();
    }
    matches_golden(&expected, &reply).map_err(|d| format!("{name} ({via:?}): {d}\n  reply: {reply}"))?;
    ws.close().await;
    Ok(())
}

#[actix_web::test]
async fn every_error_case_matches_janus_over_websocket_and_http() {
    let server = TestServer::start();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/core_errors.json");
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for case in &cases {
        let transports = case["transports"].as_array().cloned().unwrap_or_else(|| vec![json!("ws"), json!("http")]);
        for t in transports {
            let via = if t == "ws" { Via::Ws } else { Via::Http };
            if let Err(e) = run_case(case, via, &server).await {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
}

#[actix_web::test]
async fn core_success_replies_match_janus_over_websocket() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let created = ws.request(json!({"janus": "create"})).await;
    assert_golden("create.success.json", &created);
    let sid = created["data"]["id"].as_u64().unwrap();
    assert!(sid > 0 && sid < (1 << 53));
    assert_golden("ping.pong.json", &ws.request(json!({"janus": "ping"})).await);
    assert_golden("keepalive.ack.json", &ws.request(json!({"janus": "keepalive", "session_id": sid})).await);
    let attached = ws.request(json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom"})).await;
    assert_golden("attach.success.json", &attached);
    let hid = attached["data"]["id"].as_u64().unwrap();
    let trickle = json!({"janus": "trickle", "session_id": sid, "handle_id": hid,
        "candidate": {"sdpMid": "0", "sdpMLineIndex": 0, "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host"}});
    assert_golden("trickle.ack.json", &ws.request(trickle).await);
    let done = json!({"janus": "trickle", "session_id": sid, "handle_id": hid, "candidates": [{"completed": true}]});
    assert_golden("trickle.ack.json", &ws.request(done).await);
    assert_golden(
        "hangup.success.json",
        &ws.request(json!({"janus": "hangup", "session_id": sid, "handle_id": hid})).await,
    );
    // detach: the success reply first, then the detached event.
    let detached = ws.request(json!({"janus": "detach", "session_id": sid, "handle_id": hid})).await;
    assert_golden("detach.success.json", &detached);
    let ev = ws.recv().await;
    assert_golden("event.detached.json", &ev);
    assert_eq!(ev["sender"], json!(hid));
    assert_golden("destroy.success.json", &ws.request(json!({"janus": "destroy", "session_id": sid})).await);
    // The session is gone, for a keepalive and for a second destroy.
    let r = ws.request(json!({"janus": "keepalive", "session_id": sid})).await;
    assert_eq!(r["error"]["code"], 458);
    assert_golden(
        "error.458_session_not_found.json",
        &ws.request(json!({"janus": "destroy", "session_id": sid})).await,
    );
    // Verbs are case-insensitive, as in Janus.
    assert_eq!(ws.request(json!({"janus": "PING"})).await["janus"], "pong");
    // A client-chosen session id is honoured.
    let mine = ws.request(json!({"janus": "create", "id": 4242})).await;
    assert_eq!(mine["data"]["id"], 4242);
}

#[actix_web::test]
async fn server_info_lists_what_portunus_serves() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let info = ws.request(json!({"janus": "info"})).await;
    assert_eq!(info["janus"], "server_info");
    for key in [
        "name",
        "version",
        "version_string",
        "data_channels",
        "session-timeout",
        "reclaim-session-timeout",
        "transports",
        "plugins",
    ] {
        assert!(info.get(key).is_some(), "server_info lacks {key}: {info}");
    }
    assert_eq!(info["session-timeout"], 60);
    let plugins: Vec<&String> = info["plugins"].as_object().unwrap().keys().collect();
    assert_eq!(plugins, vec!["janus.plugin.videoroom"]);
    let transports: Vec<&String> = info["transports"].as_object().unwrap().keys().collect();
    assert_eq!(transports, vec!["janus.transport.http", "janus.transport.websockets"]);
    let http = HttpClient::new(&server.base_url);
    let (status, body) = http.get("/info").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["janus"], "server_info");
    let (_, body) = http.get("/ping").await;
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["janus"], "pong");
}

#[actix_web::test]
async fn videoroom_replies_match_janus() {
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    assert_golden("videoroom.list.json", &ws.message(sid, h, json!({"request": "list"})).await);
    let created = ws.message(sid, h, json!({"request": "create", "room": 934778002})).await;
    assert_golden("videoroom.create.json", &created);
    assert_golden(
        "videoroom.error_427_room_exists.json",
        &ws.message(sid, h, json!({"request": "create", "room": 934778002})).await,
    );
    assert_golden(
        "videoroom.destroy.json",
        &ws.message(sid, h, json!({"request": "destroy", "room": 934778002})).await,
    );
    assert_golden(
        "videoroom.error_426_no_such_room.json",
        &ws.message(sid, h, json!({"request": "listparticipants", "room": 934778002})).await,
    );
    // A join that fails is acked, then answered by an error event.
    let ack = ws.message(sid, h, json!({"request": "join", "room": 999999999, "ptype": "publisher"})).await;
    assert_golden("message.ack.json", &ack);
    assert_golden("videoroom.join_error_426_event.json", &ws.recv().await);

    // joined / listparticipants / leaving, in a room whose default description is "Room <id>".
    ws.message(sid, h, json!({"request": "create", "room": 958459003})).await;
    ws.message(sid, h, json!({"request": "join", "room": 958459003, "ptype": "publisher", "display": "alice"})).await;
    let joined = ws.recv().await;
    assert_golden("videoroom.joined_event.json", &joined);
    let parts = ws.message(sid, h, json!({"request": "listparticipants", "room": 958459003})).await;
    assert_golden("videoroom.listparticipants.json", &parts);
    assert_eq!(parts["plugindata"]["data"]["participants"][0]["id"], joined["plugindata"]["data"]["id"]);
    ws.message(sid, h, json!({"request": "leave"})).await;
    assert_golden("videoroom.leave_event.json", &ws.recv().await);
}

#[actix_web::test]
async fn others_hear_joining_and_leaving_like_janus() {
    let server = TestServer::start();
    let mut a = WsClient::connect(&server.ws_url).await;
    let mut b = WsClient::connect(&server.ws_url).await;
    let (sa, sb) = (a.create_session().await, b.create_session().await);
    let (ha, hb) = (a.attach(sa).await, b.attach(sb).await);
    a.message(sa, ha, json!({"request": "create", "room": 777, "notify_joining": true})).await;
    a.message(sa, ha, json!({"request": "join", "room": 777, "ptype": "publisher", "display": "first"})).await;
    a.expect("joined", |m| m["plugindata"]["data"]["videoroom"] == "joined").await;
    b.message(sb, hb, json!({"request": "join", "room": 777, "ptype": "publisher", "display": "second"})).await;
    let joined_b = b.expect("joined", |m| m["plugindata"]["data"]["videoroom"] == "joined").await;
    assert_eq!(joined_b["plugindata"]["data"]["attendees"][0]["display"], "first");
    let joining = a.recv().await;
    assert_golden("videoroom.joining_event.json", &joining);
    // The demo room: a participant without a display leaves; the other hears its id.
    let (ha2, hb2) = (a.attach(sa).await, b.attach(sb).await);
    a.message(sa, ha2, json!({"request": "join", "room": 1234, "ptype": "publisher"})).await;
    let pub_id = a.expect("joined", |m| m["plugindata"]["data"]["videoroom"] == "joined").await["plugindata"]["data"]
        ["id"]
        .clone();
    b.message(sb, hb2, json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "watcher"})).await;
    b.expect("joined", |m| m["plugindata"]["data"]["videoroom"] == "joined").await;
    a.message(sa, ha2, json!({"request": "leave"})).await;
    a.expect("leaving ok", |m| m["plugindata"]["data"]["leaving"] == "ok").await;
    let other = b.recv().await;
    assert_golden("videoroom.leaving_other_event.json", &other);
    assert_eq!(other["plugindata"]["data"]["leaving"], pub_id);
}

#[actix_web::test]
async fn http_replies_match_janus() {
    let server = TestServer::start();
    let http = HttpClient::new(&server.base_url);
    let created = http.post("", json!({"janus": "create"})).await;
    assert_golden("http.create.json", &created);
    let sid = created["data"]["id"].as_u64().unwrap();
    let h = http.attach(sid).await;
    assert_golden("http.error_458_unknown_session.json", &http.post("/1234567", json!({"janus": "keepalive"})).await);
    http.post(&format!("/{sid}/{h}"), json!({"janus": "detach"})).await;
    assert_golden("http.longpoll_detached.json", &http.poll(sid, 1).await);
    // Several events come as an array with maxev > 1.
    let h = http.attach(sid).await;
    http.message(sid, h, json!({"request": "create", "room": 953883005})).await;
    http.message(sid, h, json!({"request": "join", "room": 953883005, "ptype": "publisher"})).await;
    http.message(sid, h, json!({"request": "leave"})).await;
    // Both events are queued before the poll; give the node a moment to emit the second.
    let mut got = Vec::new();
    while got.len() < 2 {
        let batch = http.poll(sid, 10).await;
        got.extend(batch.as_array().unwrap().iter().filter(|e| e["janus"] != "keepalive").cloned());
    }
    assert_golden("http.longpoll_maxev_array.json", &Value::Array(got));
}
