//! The HTTP transport: framing, long-poll semantics, paths, CORS, limits.

use portunus_tests::raw_http::read_framed_response;
use portunus_tests::*;
use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn http_addr(server: &TestServer) -> String {
    server.http_url.trim_start_matches("http://").to_owned()
}

#[actix_web::test]
async fn a_parked_long_poll_completed_by_an_event_is_completely_framed() {
    let server = TestServer::start();
    let http = HttpClient::new(&server.base_url);
    let sid = http.create_session().await;
    let h = http.attach(sid).await;
    let addr = http_addr(&server);
    let base = server.base_url.clone();
    let path = format!("{}/{sid}?maxev=1", base.trim_start_matches(&server.http_url));
    // Park a long-poll on a raw socket (in a thread: this test reads bytes, not JSON).
    let reader = std::thread::spawn(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: keep-alive\r\n\r\n").unwrap();
        let first = read_framed_response(&mut s);
        // The same keep-alive connection still works after the poll: nothing was left unread.
        write!(
            s,
            "GET {}/ping HTTP/1.1\r\nHost: {addr}\r\n\r\n",
            path.split('/').take(2).collect::<Vec<_>>().join("/")
        )
        .unwrap();
        let second = read_framed_response(&mut s);
        (first, second)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    http.post(&format!("/{sid}/{h}"), json!({"janus": "detach"})).await;
    let ((status, headers, body), (status2, _, body2)) = reader.join().unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("application/json")));
    let ev: Value = serde_json::from_slice(&body).expect("the body is one complete JSON document");
    assert_golden("http.longpoll_detached.json", &ev);
    assert!(status2.starts_with("HTTP/1.1 200"));
    assert_eq!(serde_json::from_slice::<Value>(&body2).unwrap()["janus"], "pong");
}

#[actix_web::test]
async fn an_idle_long_poll_returns_keepalive_after_its_timeout() {
    let mut cfg = test_config();
    cfg.longpoll_timeout = 1;
    let server = TestServer::with(cfg);
    let http = HttpClient::new(&server.base_url);
    let sid = http.create_session().await;
    let t = Instant::now();
    assert_eq!(http.poll(sid, 1).await, json!({"janus": "keepalive"}));
    assert!(t.elapsed() >= Duration::from_millis(900));
    assert_eq!(http.poll(sid, 5).await, json!([{"janus": "keepalive"}]));
}

#[actix_web::test]
async fn two_parked_polls_one_gets_the_event_the_other_a_keepalive() {
    let server = TestServer::start();
    let http = HttpClient::new(&server.base_url);
    let sid = http.create_session().await;
    let h = http.attach(sid).await;
    let p1 = http.poll(sid, 5);
    let p2 = http.poll(sid, 5);
    let trigger = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        http.post(&format!("/{sid}/{h}"), json!({"janus": "detach"})).await;
    };
    let (a, b, _) = tokio::join!(p1, p2, trigger);
    let (event, keepalive) = if a[0]["janus"] == "detached" { (a, b) } else { (b, a) };
    assert_eq!(event[0]["janus"], "detached", "one poll gets the event: {event}");
    assert_golden("http.longpoll_released_keepalive.json", &keepalive);
}

#[actix_web::test]
async fn events_queue_between_polls_and_are_delivered_once_in_order() {
    let server = TestServer::start();
    let http = HttpClient::new(&server.base_url);
    let sid = http.create_session().await;
    let mut handles = Vec::new();
    for _ in 0..20 {
        handles.push(http.attach(sid).await);
    }
    for h in &handles {
        http.post(&format!("/{sid}/{h}"), json!({"janus": "detach"})).await;
    }
    let mut senders = Vec::new();
    while senders.len() < handles.len() {
        let batch = http.poll(sid, 3).await;
        for e in batch.as_array().unwrap() {
            assert_eq!(e["janus"], "detached");
            senders.push(e["sender"].as_u64().unwrap());
        }
    }
    assert_eq!(senders, handles, "every detached event once, in the order the detaches happened");
}

#[actix_web::test]
async fn paths_statuses_and_cors_follow_janus() {
    let mut cfg = test_config();
    cfg.http_base_path = "/gateway".into();
    let server = TestServer::with(cfg);
    let http = HttpClient::new(&server.base_url);
    assert!(server.base_url.ends_with("/gateway"));
    let sid = http.create_session().await;
    let h = http.attach(sid).await;
    let client = awc::Client::builder().disable_redirects().finish();
    // Unknown session on GET: 404 with an empty body.
    let mut r = client.get(format!("{}/999999", server.base_url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.body().await.unwrap().is_empty());
    // GET on a handle path redirects to the session path.
    let r = client.get(format!("{}/{sid}/{h}", server.base_url)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers().get("location").unwrap().to_str().unwrap(), format!("/gateway/{sid}"));
    // Every Janus reply carries CORS headers.
    let r = client.post(&server.base_url).send_body(r#"{"janus":"ping","transaction":"x"}"#).await.unwrap();
    assert_eq!(r.headers().get("access-control-allow-origin").unwrap(), "*");
    assert_eq!(r.headers().get("access-control-max-age").unwrap(), "86400");
    // Pre-flight: 200, echoing the requested method and headers.
    let r = client
        .request(awc::http::Method::OPTIONS, format!("{}/{sid}", server.base_url))
        .insert_header(("Origin", "http://example.test"))
        .insert_header(("Access-Control-Request-Method", "POST"))
        .insert_header(("Access-Control-Request-Headers", "content-type"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("access-control-allow-methods").unwrap(), "POST");
    assert_eq!(r.headers().get("access-control-allow-headers").unwrap(), "content-type");
    assert_eq!(r.headers().get("access-control-allow-origin").unwrap(), "*");
    // Ids in the path win; a conflicting id in the body is refused.
    let r = http.post(&format!("/{sid}"), json!({"janus": "keepalive", "session_id": sid + 1})).await;
    assert_eq!(r["error"]["code"], 457);
    assert_eq!(r["error"]["reason"], "Conflicting session ID (payload and path)");
    // Errors are HTTP 200 with a Janus error (HttpClient::post asserts the 200).
    let r = http.post_raw("", "{oops").await;
    assert_eq!(r["error"]["code"], 454);
    // An oversized body gets a Janus error too.
    let big = format!("{{\"janus\":\"ping\",\"transaction\":\"x\",\"pad\":\"{}\"}}", "y".repeat((1 << 20) + 1));
    let r = http.post_raw("", big).await;
    assert_eq!(r["error"]["code"], 450);
}

#[actix_web::test]
async fn a_configured_origin_is_sent_with_credentials() {
    let mut cfg = test_config();
    cfg.allow_origin = Some("https://app.example".into());
    let server = TestServer::with(cfg);
    let r = awc::Client::new().get(format!("{}/ping", server.base_url)).send().await.unwrap();
    assert_eq!(r.headers().get("access-control-allow-origin").unwrap(), "https://app.example");
    assert_eq!(r.headers().get("access-control-allow-credentials").unwrap(), "true");
}

#[actix_web::test]
async fn a_long_poll_counts_as_a_keepalive() {
    let mut cfg = test_config();
    cfg.session_timeout = 2;
    cfg.longpoll_timeout = 1;
    let server = TestServer::with(cfg);
    let http = HttpClient::new(&server.base_url);
    let sid = http.create_session().await;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        let r = http.poll(sid, 1).await;
        assert_eq!(r["janus"], "keepalive", "still alive after {:?}: {r}", t.elapsed());
    }
}
