//! What guards a deployment beyond Janus's own checks: a session is claimed only with the
//! credentials it was created with, request rates are limited per connection and per address
//! (429, connection kept), and every listener speaks TLS when given a certificate.

use portunus_tests::tls::SelfSigned;
use portunus_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const ADMIN_SECRET: &str = "janusoverlord";

async fn admin(server: &TestServer, req: Value) -> Value {
    admin_post(&format!("{}/admin", server.admin_url), "t", ADMIN_SECRET, req).await
}

#[actix_web::test]
async fn a_session_is_claimed_only_with_the_credentials_that_created_it() {
    let mut cfg = test_config();
    cfg.api_secret = Some("janusrocks".into());
    cfg.admin_secret = Some(ADMIN_SECRET.into());
    cfg.token_auth = true;
    cfg.reclaim_timeout = 30;
    let server = TestServer::with(cfg);
    for t in ["tok-alice", "tok-mallory"] {
        assert_eq!(admin(&server, json!({"janus": "add_token", "token": t})).await["janus"], "success");
    }
    let sid = {
        let mut alice = WsClient::connect(&server.ws_url).await;
        let created = alice.request(json!({"janus": "create", "token": "tok-alice"})).await;
        created["data"]["id"].as_u64().unwrap_or_else(|| panic!("{created}"))
        // Alice's socket closes: the session waits to be claimed.
    };
    let mut mallory = WsClient::connect(&server.ws_url).await;
    for creds in [json!({"token": "tok-mallory"}), json!({"apisecret": "janusrocks"})] {
        let mut claim = json!({"janus": "claim", "session_id": sid});
        claim.as_object_mut().unwrap().extend(creds.as_object().unwrap().clone());
        let r = mallory.request(claim).await;
        assert_eq!(r["error"]["code"], 403, "other valid credentials do not claim it: {r}");
        assert_eq!(r["error"]["reason"], "Unauthorized request (wrong or missing secret/token)");
    }
    let r = raw_post_json(
        &format!("{}/{sid}", server.base_url),
        &json!({"janus": "claim", "transaction": "t", "token": "tok-mallory"}),
    )
    .await;
    assert_eq!(r["error"]["code"], 403, "nor over HTTP: {r}");
    // Alice, back on a new socket, claims it and gets its events there.
    let mut alice = WsClient::connect(&server.ws_url).await;
    let r = alice.request(json!({"janus": "claim", "session_id": sid, "token": "tok-alice"})).await;
    assert_eq!(r["janus"], "success", "{r}");
    let h = alice
        .request(
            json!({"janus": "attach", "session_id": sid, "plugin": "janus.plugin.videoroom", "token": "tok-alice"}),
        )
        .await;
    assert_eq!(h["janus"], "success", "{h}");
}

async fn raw_post_json(url: &str, body: &Value) -> Value {
    let mut r = awc::Client::new().post(url).send_json(body).await.expect("POST");
    r.json().await.expect("JSON")
}

/// Sends `n` pings at once on `ws` and sorts the replies: (answered, refused with 429).
async fn burst(ws: &mut WsClient, n: usize) -> (usize, usize) {
    for i in 0..n {
        ws.send(&json!({"janus": "ping", "transaction": format!("p{i}")})).await;
    }
    let (mut ok, mut limited) = (0, 0);
    for i in 0..n {
        let r = ws
            .try_recv(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("reply {i} of {n} missing ({ok} answered, {limited} refused)"));
        match r["janus"].as_str() {
            Some("pong") => ok += 1,
            Some("error") if r["error"]["code"] == 429 => {
                assert!(
                    r["transaction"].as_str().is_some_and(|t| t.starts_with('p')),
                    "the transaction is echoed: {r}"
                );
                limited += 1
            }
            _ => panic!("unexpected {r}"),
        }
    }
    (ok, limited)
}

#[actix_web::test]
async fn requests_beyond_the_rate_limits_get_429_and_the_connection_stays() {
    let mut cfg = test_config();
    cfg.rate_limit_per_connection = 5;
    cfg.rate_limit_per_address = 0;
    let server = TestServer::with(cfg);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let (ok, limited) = burst(&mut ws, 30).await;
    // A burst of twice the rate, plus what refills while the 30 are read.
    assert!((10..=12).contains(&ok) && ok + limited == 30, "{ok} answered, {limited} refused");
    let r = {
        ws.send(&json!({"janus": "ping", "transaction": "p-late"})).await;
        ws.recv().await
    };
    assert_eq!(r["error"]["reason"], "Too many requests (more than 5 per second per connection); slow down", "{r}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ws.request(json!({"janus": "ping"})).await["janus"], "pong", "the same connection, a second later");
    let mut other = WsClient::connect(&server.ws_url).await;
    assert_eq!(burst(&mut other, 10).await, (10, 0), "each connection has its own budget");

    // Per source address: every connection and HTTP request of 127.0.0.1 together.
    let mut cfg = test_config();
    cfg.rate_limit_per_connection = 0;
    cfg.rate_limit_per_address = 5;
    let server = TestServer::with(cfg);
    let (mut a, mut b) = (WsClient::connect(&server.ws_url).await, WsClient::connect(&server.ws_url).await);
    let (ok_a, _) = burst(&mut a, 6).await;
    let (ok_b, limited_b) = burst(&mut b, 6).await;
    assert!(ok_a == 6 && (4..=5).contains(&ok_b) && limited_b >= 1, "a {ok_a}, b {ok_b}/{limited_b}");
    let r = raw_post_json(&server.base_url, &json!({"janus": "create", "transaction": "h"})).await;
    assert_eq!(
        (r["error"]["code"].clone(), r["transaction"].clone()),
        (json!(429), json!("h")),
        "HTTP counts too: {r}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = raw_post_json(&server.base_url, &json!({"janus": "create", "transaction": "h"})).await;
    assert_eq!(r["janus"], "success", "{r}");
}

#[actix_web::test]
async fn every_listener_speaks_tls_with_a_certificate() {
    let dir = std::env::temp_dir().join(format!("portunus-tls-{}-{}", std::process::id(), rand::random::<u32>()));
    let cert = SelfSigned::new(&dir);
    let mut cfg = test_config();
    cfg.tls_cert = Some(cert.cert.display().to_string());
    cfg.tls_key = Some(cert.key.display().to_string());
    cfg.admin_ws_port = Some(0);
    let server = TestServer::with(cfg);
    let client = cert.client();
    let wss = server.ws_url.replacen("ws://", "wss://", 1);
    let mut ws = WsClient::connect_by(&client, &wss).await.expect("wss:// connects");
    let sid = ws.create_session().await;
    assert!(sid > 0);
    let https = server.base_url.replacen("http://", "https://", 1);
    let mut r = client.post(&https).send_json(&json!({"janus": "create", "transaction": "t"})).await.expect("https://");
    let created: Value = r.json().await.expect("JSON");
    assert_eq!(created["janus"], "success", "{created}");
    let admin_https = format!("{}/admin", server.admin_url.replacen("http://", "https://", 1));
    let mut r =
        client.post(&admin_https).send_json(&json!({"janus": "ping", "transaction": "t"})).await.expect("admin");
    assert_eq!(r.json::<Value>().await.expect("JSON")["janus"], "pong");
    // The HTTP transport names its TLS listeners as Janus's does.
    let query = json!({"janus": "query_transport", "transport": "janus.transport.http", "admin_secret": ADMIN_SECRET,
        "transaction": "q", "request": {"request": "connections"}});
    let mut r = client.post(&admin_https).send_json(&query).await.expect("admin");
    let answer: Value = r.json().await.expect("JSON");
    let listeners = answer["response"]["connections"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
    assert_eq!(listeners, Some(vec!["https".to_owned(), "admin_https".to_owned()]), "{answer}");
    let admin_wss = server.admin_ws_url.as_deref().expect("admin WebSocket").replacen("ws://", "wss://", 1);
    let (_resp, _conn) =
        client.ws(&admin_wss).protocols(["janus-admin-protocol"]).connect().await.expect("admin over wss://");
    // Plain text is not served beside it.
    assert!(WsClient::try_connect(&server.ws_url).await.is_none(), "no ws:// on the TLS port");
    assert!(awc::Client::new()
        .post(&server.base_url)
        .timeout(Duration::from_secs(2))
        .send_json(&json!({}))
        .await
        .is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
