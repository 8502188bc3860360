//! Janus API authentication and the Admin API's token management, compared with what Janus
//! 1.1.2 answers for the same requests (`tests/golden/auth.*`, `admin.*`, recorded by
//! `tests/golden/record/auth.py`): `api_secret`, stored tokens (managed over the Admin API and
//! shared by the whole cluster) and signed tokens (`token_auth_secret`).

use portunus_tests::*;
use serde_json::{json, Value};
use shared::janus::signed_token;

const API_SECRET: &str = "janusrocks";
const ADMIN_SECRET: &str = "janusoverlord";
const SIGN_SECRET: &str = "signsecret";

fn server(tweak: impl FnOnce(&mut shared::config::Config)) -> TestServer {
    let mut cfg = test_config();
    cfg.api_secret = Some(API_SECRET.into());
    cfg.admin_secret = Some(ADMIN_SECRET.into());
    cfg.token_auth = true;
    tweak(&mut cfg);
    TestServer::with(cfg)
}

/// An Admin API request over HTTP (`POST /admin` on the admin port), with the admin secret
/// unless the request already names one.
async fn admin(server: &TestServer, mut req: Value) -> Value {
    req["transaction"] = json!("rec");
    if req.get("admin_secret").is_none() {
        req["admin_secret"] = json!(ADMIN_SECRET);
    }
    let mut r =
        awc::Client::new().post(format!("{}/admin", server.admin_url)).send_json(&req).await.expect("POST /admin");
    assert_eq!(r.status(), 200);
    r.json().await.expect("admin reply is JSON")
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[actix_web::test]
async fn the_api_secret_guards_every_request_but_info_and_ping() {
    let server = server(|c| {
        c.token_auth = false;
        c.longpoll_timeout = 1;
    });
    let mut ws = WsClient::connect(&server.ws_url).await;
    assert_golden("auth.info_ping_need_nothing.json", &ws.request(json!({"janus": "ping"})).await);
    let info = ws.request(json!({"janus": "info"})).await;
    assert_eq!((info["api_secret"].clone(), info["auth_token"].clone()), (json!(true), json!(false)), "{info}");
    assert_golden("auth.error_403_create_without_secret.json", &ws.request(json!({"janus": "create"})).await);
    assert_golden(
        "auth.error_403_create_wrong_secret.json",
        &ws.request(json!({"janus": "create", "apisecret": "nope"})).await,
    );
    let created = ws.request(json!({"janus": "create", "apisecret": API_SECRET})).await;
    let sid = created["data"]["id"].as_u64().unwrap_or_else(|| panic!("{created}"));
    assert_golden(
        "auth.error_403_keepalive_without_secret.json",
        &ws.request(json!({"janus": "keepalive", "session_id": sid})).await,
    );
    // Unauthorized comes before "no such session", as in Janus.
    assert_golden(
        "auth.error_403_before_458.json",
        &ws.request(json!({"janus": "keepalive", "session_id": 123456789})).await,
    );
    let r = ws.request(json!({"janus": "keepalive", "session_id": sid, "apisecret": API_SECRET})).await;
    assert_eq!(r["janus"], "ack", "{r}");
    let r = ws
        .request(json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom",
        "apisecret": API_SECRET}))
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    // Over HTTP: the same, and a long-poll carries the secret in its query string (a bare 403
    // without it, as Janus's HTTP transport answers).
    let http = HttpClient::new(&server.base_url);
    assert_golden("auth.error_403_create_without_secret.json", &http.post("", json!({"janus": "create"})).await);
    let (status, body) = http.get(&format!("/{sid}")).await;
    let recorded = golden("http.longpoll_403_without_secret.json");
    assert_eq!(
        (json!(status), json!(String::from_utf8_lossy(&body))),
        (recorded["status"].clone(), recorded["body"].clone())
    );
    let (status, _) = http.get(&format!("/{sid}?apisecret={API_SECRET}&maxev=1")).await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn stored_tokens_are_managed_over_the_admin_api_and_limit_plugins() {
    let server = server(|_| {});
    // The Admin API needs its secret (but for info and ping).
    assert_golden(
        "admin.error_403_without_secret.json",
        &admin(&server, json!({"janus": "list_tokens", "admin_secret": null})).await,
    );
    assert_golden(
        "admin.error_403_wrong_secret.json",
        &admin(&server, json!({"janus": "list_sessions", "admin_secret": "nope"})).await,
    );
    assert_golden("admin.ping.json", &admin(&server, json!({"janus": "ping", "admin_secret": null})).await);
    assert_golden("admin.add_token.json", &admin(&server, json!({"janus": "add_token", "token": "tok-all"})).await);
    assert_golden(
        "admin.add_token_plugins.json",
        &admin(&server, json!({"janus": "add_token", "token": "tok-none", "plugins": ["janus.plugin.echotest"]})).await,
    );
    assert_golden(
        "admin.allow_token.json",
        &admin(&server, json!({"janus": "allow_token", "token": "tok-none", "plugins": ["janus.plugin.videoroom"]}))
            .await,
    );
    assert_golden(
        "admin.disallow_token.json",
        &admin(&server, json!({"janus": "disallow_token", "token": "tok-none", "plugins": ["janus.plugin.videoroom"]}))
            .await,
    );
    assert_golden("admin.list_tokens.json", &admin(&server, json!({"janus": "list_tokens"})).await);
    assert_golden(
        "admin.error_remove_token_unknown.json",
        &admin(&server, json!({"janus": "remove_token", "token": "nope"})).await,
    );
    assert_golden(
        "admin.error_allow_token_missing_plugins.json",
        &admin(&server, json!({"janus": "allow_token", "token": "tok-all"})).await,
    );
    assert_golden("admin.error_add_token_missing_token.json", &admin(&server, json!({"janus": "add_token"})).await);
    // A token authorizes like the secret; attach checks what the token may use.
    let mut ws = WsClient::connect(&server.ws_url).await;
    let created = ws.request(json!({"janus": "create", "token": "tok-all"})).await;
    assert_golden("auth.create_with_token.json", &created);
    let sid = created["data"]["id"].as_u64().unwrap();
    assert_golden("auth.error_403_bad_token.json", &ws.request(json!({"janus": "create", "token": "nope"})).await);
    assert_golden(
        "auth.error_405_token_plugin.json",
        &ws.request(
            json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom", "token": "tok-none"}),
        )
        .await,
    );
    let r = ws
        .request(json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom", "token": "tok-all"}))
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    assert_golden(
        "admin.remove_token.json",
        &admin(&server, json!({"janus": "remove_token", "token": "tok-none"})).await,
    );
    let listed = admin(&server, json!({"janus": "list_sessions"})).await;
    assert!(listed["sessions"].as_array().unwrap().contains(&json!(sid)), "{listed}");
    // Janus's shape, with one session where the recording had two.
    let mut two = listed.clone();
    two["sessions"] = json!([sid, sid]);
    assert_golden("admin.list_sessions.json", &two);
    // A removed token authorizes nothing any more.
    admin(&server, json!({"janus": "remove_token", "token": "tok-all"})).await;
    let r = ws.request(json!({"janus": "keepalive", "session_id": sid, "token": "tok-all"})).await;
    assert_eq!(r["error"]["code"], 403, "{r}");
    let info = ws.request(json!({"janus": "info"})).await;
    assert_eq!((info["api_secret"].clone(), info["auth_token"].clone()), (json!(true), json!(true)), "{info}");
}

#[actix_web::test]
async fn signed_tokens_are_checked_as_janus_checks_them() {
    let server = server(|c| c.token_auth_secret = Some(SIGN_SECRET.into()));
    let secret = SIGN_SECRET.as_bytes();
    let good = signed_token::sign(&format!("{},janus,janus.plugin.videoroom", now() + 3600), secret);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let created = ws.request(json!({"janus": "create", "token": good})).await;
    assert_golden("auth.signed_create.json", &created);
    let sid = created["data"]["id"].as_u64().unwrap();
    let expired = signed_token::sign(&format!("{},janus,janus.plugin.videoroom", now() - 10), secret);
    assert_golden(
        "auth.signed_error_403_expired.json",
        &ws.request(json!({"janus": "create", "token": expired})).await,
    );
    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_golden(
        "auth.signed_error_403_tampered.json",
        &ws.request(json!({"janus": "create", "token": tampered})).await,
    );
    let other = signed_token::sign(&format!("{},janus,janus.plugin.echotest", now() + 3600), secret);
    assert_golden(
        "auth.signed_error_405_plugin.json",
        &ws.request(json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom", "token": other}))
            .await,
    );
    let r = ws
        .request(json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom", "token": good}))
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    // Stored-token management is off in this mode.
    assert_golden(
        "admin.signed_error_add_token.json",
        &admin(&server, json!({"janus": "add_token", "token": "tok"})).await,
    );
}
