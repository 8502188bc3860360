//! The Admin API's session- and handle-level requests (`POST /admin/S`, `/admin/S/H`), compared
//! with what Janus 1.1.2 answers (`tests/golden/admin.*`, recorded by
//! `tests/golden/record/auth.py`). Any gateway answers for any session of the cluster.

use portunus_tests::*;
use serde_json::{json, Value};

const ADMIN_SECRET: &str = "janusoverlord";

async fn admin_at(server: &TestServer, path: &str, req: Value) -> Value {
    admin_post(&format!("{}/admin{path}", server.admin_url), "rec", ADMIN_SECRET, req).await
}

/// A server with an admin secret, and a client's session with one handle.
async fn server_with_a_handle() -> (TestServer, WsClient, u64, u64) {
    let mut cfg = test_config();
    cfg.admin_secret = Some(ADMIN_SECRET.into());
    let server = TestServer::with(cfg);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let hid = ws.attach(sid).await;
    (server, ws, sid, hid)
}

#[actix_web::test]
async fn sessions_and_handles_are_listed_hung_up_detached_and_destroyed_as_janus_does() {
    let (server, mut ws, sid, hid) = server_with_a_handle().await;
    let s = format!("/{sid}");
    let h = format!("/{sid}/{hid}");
    assert_golden("admin.list_handles.json", &admin_at(&server, &s, json!({"janus": "list_handles"})).await);
    let listed = admin_at(&server, &s, json!({"janus": "list_handles"})).await;
    assert_eq!(listed["handles"], json!([hid]), "{listed}");
    assert_golden(
        "admin.error_403_session_path.json",
        &admin_at(&server, &s, json!({"janus": "list_handles", "admin_secret": "nope"})).await,
    );
    assert_golden(
        "admin.error_458_no_session.json",
        &admin_at(&server, "/123456789", json!({"janus": "list_handles"})).await,
    );
    assert_golden(
        "admin.error_459_no_handle.json",
        &admin_at(&server, &format!("/{sid}/987654321"), json!({"janus": "hangup_webrtc"})).await,
    );
    assert_golden("admin.error_457_session_path.json", &admin_at(&server, &s, json!({"janus": "detach_handle"})).await);
    assert_golden("admin.error_457_handle_path.json", &admin_at(&server, &h, json!({"janus": "list_handles"})).await);
    assert_golden("admin.hangup_webrtc.json", &admin_at(&server, &h, json!({"janus": "hangup_webrtc"})).await);
    // Detaching over the Admin API tells the client, as its own detach would.
    assert_golden("admin.detach_handle.json", &admin_at(&server, &h, json!({"janus": "detach_handle"})).await);
    let ev = ws.recv().await;
    assert_eq!((ev["janus"].clone(), ev["sender"].clone()), (json!("detached"), json!(hid)), "{ev}");
    assert_golden("admin.list_handles_empty.json", &admin_at(&server, &s, json!({"janus": "list_handles"})).await);
    assert_golden("admin.destroy_session.json", &admin_at(&server, &s, json!({"janus": "destroy_session"})).await);
    assert_golden("admin.error_458_destroyed.json", &admin_at(&server, &s, json!({"janus": "list_handles"})).await);
    let r = ws.request(json!({"janus": "keepalive", "session_id": sid})).await;
    assert_eq!(r["error"]["code"], 458, "the session is gone for its client too: {r}");
    // A request Janus has no branch for where it arrives.
    let r = admin_at(&server, "", json!({"janus": "list_handles"})).await;
    assert_eq!(r["error"]["code"], 457, "{r}");
}

#[actix_web::test]
async fn the_admin_api_is_served_over_websocket_too() {
    // The client's socket stays open: its session lives as long.
    let (server, _ws, sid, hid) = server_with_a_handle().await;
    let mut admin = WsClient::connect_admin(server.admin_ws_url.as_deref().expect("admin WebSocket on")).await;
    let ask = |req: Value| {
        let mut req = req;
        req["transaction"] = json!("rec");
        req
    };
    admin.send(&ask(json!({"janus": "ping"}))).await;
    assert_golden("admin.ping.json", &admin.recv().await);
    admin.send(&ask(json!({"janus": "list_handles", "session_id": sid, "admin_secret": ADMIN_SECRET}))).await;
    let listed = admin.recv().await;
    assert_golden("admin.list_handles.json", &listed);
    assert_eq!(listed["handles"], json!([hid]));
    admin.send(&ask(json!({"janus": "list_handles", "session_id": sid}))).await;
    assert_golden("admin.error_403_session_path.json", &admin.recv().await);
    // The client WebSocket port does not speak the admin protocol, nor the admin port the client one.
    assert!(websocket_speaking(&server.ws_url, "janus-admin-protocol", std::time::Duration::from_secs(2))
        .await
        .is_err());
    assert!(janus_websocket(server.admin_ws_url.as_deref().unwrap(), std::time::Duration::from_secs(2)).await.is_err());
}

#[actix_web::test]
async fn log_level_and_new_sessions_are_set_as_janus_sets_them() {
    let (server, mut ws, _sid, _hid) = server_with_a_handle().await;
    assert_golden(
        "admin.set_log_level.json",
        &admin_at(&server, "", json!({"janus": "set_log_level", "level": 4})).await,
    );
    assert_golden(
        "admin.error_set_log_level_range.json",
        &admin_at(&server, "", json!({"janus": "set_log_level", "level": 9})).await,
    );
    assert_golden(
        "admin.error_set_log_level_missing.json",
        &admin_at(&server, "", json!({"janus": "set_log_level"})).await,
    );
    let status = admin_at(&server, "", json!({"janus": "get_status"})).await;
    assert_eq!(status["status"]["log_level"], 4, "get_status reports the level set: {status}");
    // Back to the tests' usual level.
    admin_at(&server, "", json!({"janus": "set_log_level", "level": 3})).await;
    let status = admin_at(&server, "", json!({"janus": "get_status"})).await;
    assert_eq!(status["status"]["log_level"], 3, "{status}");
    assert_golden(
        "admin.accept_new_sessions_false.json",
        &admin_at(&server, "", json!({"janus": "accept_new_sessions", "accept": false})).await,
    );
    assert_golden("auth.error_472_not_accepting.json", &ws.request(json!({"janus": "create"})).await);
    assert_golden(
        "admin.error_accept_new_sessions_type.json",
        &admin_at(&server, "", json!({"janus": "accept_new_sessions", "accept": "yes"})).await,
    );
    assert_golden(
        "admin.accept_new_sessions_true.json",
        &admin_at(&server, "", json!({"janus": "accept_new_sessions", "accept": true})).await,
    );
    assert_eq!(ws.request(json!({"janus": "create"})).await["janus"], "success");
}

#[actix_web::test]
async fn handle_info_and_session_timeouts_are_answered_as_janus_does() {
    let (server, mut ws, sid, hid) = server_with_a_handle().await;
    let s = format!("/{sid}");
    let h = format!("/{sid}/{hid}");
    let info = admin_at(&server, &h, json!({"janus": "handle_info"})).await;
    assert_golden("admin.handle_info.json", &info);
    assert_eq!((info["handle_id"].clone(), info["info"]["session_id"].clone()), (json!(hid), json!(sid)), "{info}");
    assert_golden(
        "admin.handle_info_plugin_only.json",
        &admin_at(&server, &h, json!({"janus": "handle_info", "plugin_only": true})).await,
    );
    assert_golden(
        "admin.error_handle_info_type.json",
        &admin_at(&server, &h, json!({"janus": "handle_info", "plugin_only": "yes"})).await,
    );
    assert_golden(
        "admin.set_session_timeout_session_default.json",
        &admin_at(&server, &s, json!({"janus": "set_session_timeout", "timeout": -1})).await,
    );
    assert_golden(
        "admin.error_set_session_timeout_session.json",
        &admin_at(&server, &s, json!({"janus": "set_session_timeout", "timeout": -2})).await,
    );
    assert_golden(
        "admin.error_set_session_timeout_missing.json",
        &admin_at(&server, &s, json!({"janus": "set_session_timeout"})).await,
    );
    assert_golden(
        "admin.error_set_session_timeout_negative.json",
        &admin_at(&server, "", json!({"janus": "set_session_timeout", "timeout": -1})).await,
    );
    assert_golden(
        "admin.set_session_timeout_session.json",
        &admin_at(&server, &s, json!({"janus": "set_session_timeout", "timeout": 5})).await,
    );
    // The session's own timeout applies from now: silent, it times out after 1 s.
    let started = std::time::Instant::now();
    let set = admin_at(&server, &s, json!({"janus": "set_session_timeout", "timeout": 1})).await;
    assert_eq!(set["timeout"], 1, "{set}");
    let info = admin_at(&server, &h, json!({"janus": "handle_info"})).await;
    assert_eq!(info["info"]["session_timeout"], 1, "{info}");
    let ev = ws.try_recv(std::time::Duration::from_secs(5)).await.expect("the session times out");
    assert_eq!(ev["janus"], "timeout", "{ev}");
    let waited = started.elapsed();
    assert!(waited >= std::time::Duration::from_millis(900), "not before its timeout: {waited:?}");
    // The default for every session without its own, cluster-wide: new sessions take it.
    assert_golden(
        "admin.set_session_timeout.json",
        &admin_at(&server, "", json!({"janus": "set_session_timeout", "timeout": 60})).await,
    );
    let status = admin_at(&server, "", json!({"janus": "get_status"})).await;
    assert_eq!(status["status"]["session_timeout"], 60, "get_status reports the new default: {status}");
    let sid2 = ws.create_session().await;
    let hid2 = ws.attach(sid2).await;
    let info = admin_at(&server, &format!("/{sid2}/{hid2}"), json!({"janus": "handle_info"})).await;
    assert_eq!(info["info"]["session_timeout"], 60, "{info}");
}

#[actix_web::test]
async fn message_plugin_runs_the_videoroom_s_admin_requests_with_its_admin_key() {
    let mut cfg = test_config();
    cfg.admin_secret = Some(ADMIN_SECRET.into());
    cfg.admin_key = Some("supersecret".into());
    cfg.demo_room = false;
    let server = TestServer::with(cfg);
    let vr =
        |request: Value| json!({"janus": "message_plugin", "plugin": "janus.plugin.videoroom", "request": request});
    assert_golden(
        "admin.error_message_plugin_missing.json",
        &admin_at(&server, "", json!({"janus": "message_plugin"})).await,
    );
    assert_golden(
        "admin.error_message_plugin_invalid.json",
        &admin_at(&server, "", json!({"janus": "message_plugin", "plugin": "janus.plugin.nope", "request": {}})).await,
    );
    assert_golden("admin.message_plugin_list.json", &admin_at(&server, "", vr(json!({"request": "list"}))).await);
    assert_golden("admin.message_plugin_no_request.json", &admin_at(&server, "", vr(json!({}))).await);
    assert_golden(
        "admin.message_plugin_join.json",
        &admin_at(&server, "", vr(json!({"request": "join", "room": 1234, "ptype": "publisher"}))).await,
    );
    assert_golden(
        "admin.message_plugin_create_no_admin_key.json",
        &admin_at(&server, "", vr(json!({"request": "create"}))).await,
    );
    assert_golden(
        "admin.message_plugin_create_wrong_admin_key.json",
        &admin_at(&server, "", vr(json!({"request": "create", "admin_key": "nope"}))).await,
    );
    let created =
        admin_at(&server, "", vr(json!({"request": "create", "admin_key": "supersecret", "is_private": true}))).await;
    assert_golden("admin.message_plugin_create.json", &created);
    let room = created["response"]["room"].clone();
    // A private room is listed only to whoever has the admin key.
    assert_golden("admin.message_plugin_list.json", &admin_at(&server, "", vr(json!({"request": "list"}))).await);
    let private = admin_at(&server, "", vr(json!({"request": "list", "admin_key": "supersecret"}))).await;
    assert_golden("admin.message_plugin_list_private.json", &private);
    assert_eq!(private["response"]["list"][0]["room"], room, "{private}");
    assert_golden(
        "admin.message_plugin_exists.json",
        &admin_at(&server, "", vr(json!({"request": "exists", "room": room}))).await,
    );
    // Clients' own `create` needs the key too.
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let hid = ws.attach(sid).await;
    let msg = |body: Value| json!({"janus": "message", "session_id": sid, "handle_id": hid, "body": body});
    assert_golden(
        "videoroom.error_create_without_admin_key.json",
        &ws.request(msg(json!({"request": "create"}))).await,
    );
    assert_golden(
        "videoroom.error_create_wrong_admin_key.json",
        &ws.request(msg(json!({"request": "create", "admin_key": 5}))).await,
    );
    let ok = ws.request(msg(json!({"request": "create", "admin_key": "supersecret"}))).await;
    assert_eq!(ok["plugindata"]["data"]["videoroom"], "created", "{ok}");
    assert_golden(
        "admin.message_plugin_destroy.json",
        &admin_at(&server, "", vr(json!({"request": "destroy", "room": room}))).await,
    );
    let gone = admin_at(&server, "", vr(json!({"request": "exists", "room": room}))).await;
    assert_eq!(gone["response"]["exists"], false, "{gone}");
}

/// `handle_info` of handles in a room: the media node holding the room answers with what the
/// room knows (`plugin_specific`) and its PeerConnection's statistics (`webrtc`, `sdps`).
#[actix_web::test]
async fn handle_info_shows_the_room_and_the_media_from_the_node() {
    use portunus_tests::videoroom::{publisher_and_subscriber, received_while_sending};
    let mut cfg = test_config();
    cfg.admin_secret = Some(ADMIN_SECRET.into());
    let server = TestServer::with(cfg);
    let (mut p, _sws, ssid, mut sub, sh) = publisher_and_subscriber(&server.ws_url).await;
    let got = received_while_sending(&mut [&mut p.peer], &mut sub, 1000).await;
    assert!(got.len() > 100, "media flows: {}", got.len());

    let info = admin_at(&server, &format!("/{}/{}", p.sid, p.handle), json!({"janus": "handle_info"})).await;
    let i = &info["info"];
    let ps = &i["plugin_specific"];
    assert_eq!(
        (ps["type"].clone(), ps["room"].clone(), ps["id"].clone()),
        (json!("publisher"), json!(1234), json!(p.feed)),
        "{info}"
    );
    let node = if cluster_backend() { "node-1" } else { "local" };
    assert_eq!(ps["node"], node, "which node holds the room: {info}");
    let streams = ps["streams"].as_array().unwrap_or_else(|| panic!("{info}"));
    let kinds: Vec<_> =
        streams.iter().map(|s| (s["type"].as_str().unwrap(), s["subscribers"].as_u64().unwrap())).collect();
    assert_eq!(kinds, vec![("audio", 1), ("video", 1)], "each stream and its subscribers: {info}");
    assert_eq!(i["flags"]["ready"], true, "{info}");
    assert_eq!(i["webrtc"]["dtls"]["dtls-state"], "connected", "{info}");
    assert!(i["webrtc"]["ice"]["selected-pair"].as_str().is_some_and(|s| s.contains("<->")), "{info}");
    assert!(i["sdps"]["remote"].as_str().is_some_and(|s| s.starts_with("v=0")), "the publisher's offer: {info}");
    for s in streams {
        let mid = s["mid"].as_str().unwrap();
        let inbound = &i["webrtc"]["media"][mid]["stats"]["in"];
        assert!(inbound["packets"].as_u64() > Some(40), "packets in on mid {mid}: {info}");
        assert!(inbound["bytes"].as_u64() > Some(1000), "{info}");
    }

    let info = admin_at(&server, &format!("/{ssid}/{sh}"), json!({"janus": "handle_info"})).await;
    let i = &info["info"];
    assert_eq!(i["plugin_specific"]["type"], "subscriber", "{info}");
    assert_eq!(i["plugin_specific"]["paused"], false, "{info}");
    let streams = i["plugin_specific"]["streams"].as_array().unwrap_or_else(|| panic!("{info}"));
    assert!(streams.iter().all(|s| s["feed_id"] == json!(p.feed)), "{info}");
    let sent: u64 = i["webrtc"]["media"]
        .as_object()
        .unwrap_or_else(|| panic!("{info}"))
        .values()
        .filter_map(|m| m["stats"]["out"]["packets"].as_u64())
        .sum();
    assert!(
        sent as usize >= got.len() / 2,
        "packets out to the subscriber ({sent}), it received {}: {info}",
        got.len()
    );
    // Not in a room: the plugin has nothing to say but Janus's two counters.
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let hid = ws.attach(sid).await;
    let info = admin_at(&server, &format!("/{sid}/{hid}"), json!({"janus": "handle_info"})).await;
    assert_eq!(info["info"]["plugin_specific"], json!({"hangingup": 0, "destroyed": 0}), "{info}");
}

/// `loops_info` lists every media worker of every live node (Janus: its static event loops)
/// with the participants its rooms serve as the loop's `handles`, and the node it is on.
#[actix_web::test]
async fn loops_info_lists_each_media_worker_and_what_it_serves() {
    use portunus_tests::videoroom::publisher_and_subscriber;
    let mut cfg = test_config();
    cfg.admin_secret = Some(ADMIN_SECRET.into());
    cfg.media_workers = 2;
    let server = TestServer::with(cfg);
    let node = if cluster_backend() { "node-1" } else { "local" };
    let loops = |v: &Value| -> Vec<(u64, u64, String)> {
        let list = v["loops"].as_array().unwrap_or_else(|| panic!("{v}"));
        list.iter()
            .map(|l| {
                (l["id"].as_u64().unwrap(), l["handles"].as_u64().unwrap(), l["node"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    let idle = admin_at(&server, "", json!({"janus": "loops_info"})).await;
    assert_eq!(idle["janus"], "success", "{idle}");
    assert_eq!(loops(&idle), [(0, 0, node.to_owned()), (1, 0, node.to_owned())], "{idle}");

    let (_p, _sws, _ssid, _sub, _sh) = publisher_and_subscriber(&server.ws_url).await;
    let busy = admin_at(&server, "", json!({"janus": "loops_info"})).await;
    let served: Vec<u64> = loops(&busy).iter().map(|(_, handles, _)| *handles).collect();
    // The room, its publisher and its subscriber on one worker.
    assert!(served == [2, 0] || served == [0, 2], "{busy}");
    // Only at the server's level, as Janus.
    let at_session = admin_at(&server, &format!("/{}", _ssid), json!({"janus": "loops_info"})).await;
    assert_eq!(at_session["error"]["code"], 457, "{at_session}");
}
