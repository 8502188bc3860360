//! The Admin API's session- and handle-level requests (`POST /admin/S`, `/admin/S/H`), compared
//! with what Janus 1.1.2 answers (`tests/golden/admin.*`, recorded by
//! `tests/golden/record/auth.py`). Any gateway answers for any session of the cluster.

use portunus_tests::*;
use serde_json::{json, Value};

const ADMIN_SECRET: &str = "janusoverlord";

async fn admin_at(server: &TestServer, path: &str, mut req: Value) -> Value {
    req["transaction"] = json!("rec");
    if req.get("admin_secret").is_none() {
        req["admin_secret"] = json!(ADMIN_SECRET);
    }
    let url = format!("{}/admin{path}", server.admin_url);
    let mut r = awc::Client::new().post(url).send_json(&req).await.expect("POST /admin");
    r.json().await.expect("admin reply is JSON")
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
