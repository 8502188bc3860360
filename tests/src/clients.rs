//! Janus clients for the tests: over one WebSocket ([`WsClient`]), over HTTP ([`HttpClient`]),
//! and single HTTP requests (`get_text`, the Admin API's `admin_post`).

use crate::WAIT;
use actix_codec::Framed;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;

/// A unique transaction id.
pub fn txn() -> String {
    format!("t{:x}", rand::random::<u64>())
}

/// A Janus client over one WebSocket.
pub struct WsClient {
    conn: Framed<BoxedSocket, Codec>,
}

/// Opens a Janus WebSocket (subprotocol `janus-protocol`) to `url`, failing after `wait`.
pub async fn janus_websocket(url: &str, wait: Duration) -> Result<Framed<BoxedSocket, Codec>, String> {
    websocket_speaking(url, "janus-protocol", wait).await
}

/// Opens a WebSocket offering `subprotocol` to `url`, failing after `wait`.
pub async fn websocket_speaking(
    url: &str,
    subprotocol: &str,
    wait: Duration,
) -> Result<Framed<BoxedSocket, Codec>, String> {
    let (_resp, conn) = awc::Client::builder()
        .max_http_version(awc::http::Version::HTTP_11)
        .timeout(wait)
        .finish()
        .ws(url)
        .protocols([subprotocol])
        .max_frame_size(4 << 20)
        .connect()
        .await
        .map_err(|e| format!("WebSocket connect to {url}: {e}"))?;
    Ok(conn)
}

impl WsClient {
    /// A Janus WebSocket opened by `client` (e.g. one that speaks TLS).
    pub async fn connect_by(client: &awc::Client, url: &str) -> Result<Self, String> {
        let (_resp, conn) = client
            .ws(url)
            .protocols(["janus-protocol"])
            .connect()
            .await
            .map_err(|e| format!("WebSocket connect to {url}: {e}"))?;
        Ok(Self { conn })
    }

    /// A client of the Admin API over WebSocket (`janus-admin-protocol`).
    pub async fn connect_admin(url: &str) -> Self {
        Self { conn: websocket_speaking(url, "janus-admin-protocol", WAIT).await.expect("admin WebSocket connect") }
    }

    pub async fn connect(url: &str) -> Self {
        Self { conn: janus_websocket(url, WAIT).await.expect("WebSocket connect") }
    }

    /// [`WsClient::connect`] that returns None instead of failing the test.
    pub async fn try_connect(url: &str) -> Option<Self> {
        janus_websocket(url, WAIT).await.ok().map(|conn| Self { conn })
    }

    /// Sends a request; false when the socket is gone.
    pub async fn try_send(&mut self, v: &Value) -> bool {
        self.conn.send(Message::Text(v.to_string().into())).await.is_ok()
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.conn.send(Message::Text(text.into().into())).await.expect("send");
    }

    pub async fn send(&mut self, v: &Value) {
        self.send_text(v.to_string()).await;
    }

    /// The next JSON message, failing the test after [`WAIT`].
    pub async fn recv(&mut self) -> Value {
        self.try_recv(WAIT).await.expect("no message from server in time")
    }

    /// The next JSON message within `wait`, or `None`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        match self.next_within(wait).await {
            Next::Message(v) => Some(v),
            Next::Quiet | Next::Closed => None,
        }
    }

    /// The next text frame as it was written, failing the test after [`WAIT`].
    pub async fn recv_text(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.conn.next()).await {
                Ok(Some(Ok(Frame::Text(b)))) => return String::from_utf8(b.to_vec()).expect("a UTF-8 text frame"),
                Ok(Some(Ok(Frame::Ping(p)))) => {
                    let _ = self.conn.send(Message::Pong(p)).await;
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("no text frame in time: {other:?}"),
            }
        }
    }

    /// The next JSON message within `wait`, telling a quiet socket from a closed one.
    pub async fn next_within(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.conn.next()).await {
                Err(_) => return Next::Quiet,
                Ok(None) => return Next::Closed,
                Ok(Some(f)) => f,
            };
            match frame {
                Ok(Frame::Text(b) | Frame::Binary(b)) => {
                    return Next::Message(serde_json::from_slice(&b).expect("server sent invalid JSON"))
                }
                Ok(Frame::Ping(p)) => {
                    let _ = self.conn.send(Message::Pong(p)).await;
                }
                Ok(Frame::Close(_)) | Err(_) => return Next::Closed,
                _ => {}
            }
        }
    }

    /// Sends a request (adding a transaction) and returns the reply carrying that transaction;
    /// other messages that arrive meanwhile are returned too, in order.
    pub async fn call(&mut self, mut req: Value) -> (Value, Vec<Value>) {
        let t = txn();
        req["transaction"] = json!(t);
        self.send(&req).await;
        let mut others = Vec::new();
        loop {
            let m = self.recv().await;
            if m["transaction"] == json!(t) && m["janus"] != json!("event") {
                return (m, others);
            }
            others.push(m);
        }
    }

    /// Sends an asynchronous request: its reply (an `ack`) and the first message besides it (one
    /// that came before the reply, else the next).
    pub async fn call_then_next(&mut self, req: Value) -> (Value, Value) {
        let (reply, mut early) = self.call(req).await;
        let next = if early.is_empty() { self.recv().await } else { early.remove(0) };
        (reply, next)
    }

    /// Sends a request and returns its reply, asserting nothing else arrived first.
    pub async fn request(&mut self, req: Value) -> Value {
        let (reply, others) = self.call(req).await;
        assert!(others.is_empty(), "unexpected messages before the reply: {others:?}");
        reply
    }

    pub async fn create_session(&mut self) -> u64 {
        let r = self.request(json!({"janus": "create"})).await;
        r["data"]["id"].as_u64().unwrap_or_else(|| panic!("create failed: {r}"))
    }

    pub async fn attach(&mut self, session: u64) -> u64 {
        let r =
            self.request(json!({"janus": "attach", "session_id": session, "plugin": "janus.plugin.videoroom"})).await;
        r["data"]["id"].as_u64().unwrap_or_else(|| panic!("attach failed: {r}"))
    }

    /// A VideoRoom request on a handle.
    pub async fn message(&mut self, session: u64, handle: u64, body: Value) -> Value {
        self.request(json!({"janus": "message", "session_id": session, "handle_id": handle, "body": body})).await
    }

    /// An asynchronous VideoRoom request: asserts the `ack`, returns the event that follows.
    pub async fn message_event(&mut self, session: u64, handle: u64, body: Value) -> Value {
        let ack = self.message(session, handle, body).await;
        assert_eq!(ack["janus"], "ack", "{ack}");
        self.recv().await
    }

    /// Waits for the next plugin event matching `pred`, skipping core events (webrtcup, media,
    /// hangup) that may interleave; fails on any other plugin event.
    pub async fn expect_skipping_core(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let m = self.recv().await;
            if m["janus"] != "event" {
                continue;
            }
            assert!(pred(&m), "expected {what}, got {m}");
            return m;
        }
    }

    /// Waits for the next message matching `pred`, failing on anything else.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let m = self.recv().await;
        assert!(pred(&m), "expected {what}, got {m}");
        m
    }

    /// Sends a close frame and waits for the server's (not for the TCP connection to end).
    pub async fn close(mut self) {
        let _ = self.conn.send(Message::Close(None)).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(f)) = self.conn.next().await {
                if matches!(f, Frame::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// A Janus client over HTTP.
pub struct HttpClient {
    client: awc::Client,
    pub base: String,
}

impl HttpClient {
    pub fn new(base: &str) -> Self {
        let client = awc::Client::builder().timeout(Duration::from_secs(40)).finish();
        Self { client, base: base.trim_end_matches('/').to_owned() }
    }

    /// POSTs raw text to `path` (relative to the base) and parses the JSON reply.
    pub async fn post_raw(&self, path: &str, body: impl Into<String>) -> Value {
        let mut resp = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header(("Content-Type", "application/json"))
            .send_body(body.into())
            .await
            .expect("POST");
        assert_eq!(resp.status(), 200, "Janus-level replies are HTTP 200");
        let body = resp.body().limit(8 << 20).await.expect("body");
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(&body)))
    }

    pub async fn post(&self, path: &str, mut req: Value) -> Value {
        if req.get("transaction").is_none() {
            req["transaction"] = json!(txn());
        }
        self.post_raw(path, req.to_string()).await
    }

    /// `GET` returning (status, body).
    pub async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut resp = self.client.get(format!("{}{path}", self.base)).send().await.expect("GET");
        let status = resp.status().as_u16();
        let body = resp.body().limit(8 << 20).await.expect("body");
        (status, body.to_vec())
    }

    /// A long-poll, parsed.
    pub async fn poll(&self, session: u64, maxev: usize) -> Value {
        let (status, body) = self.get(&format!("/{session}?maxev={maxev}")).await;
        assert_eq!(status, 200, "long-poll status");
        serde_json::from_slice(&body).expect("long-poll JSON")
    }

    pub async fn create_session(&self) -> u64 {
        let r = self.post("", json!({"janus": "create"})).await;
        r["data"]["id"].as_u64().unwrap_or_else(|| panic!("create failed: {r}"))
    }

    pub async fn attach(&self, session: u64) -> u64 {
        let r = self.post(&format!("/{session}"), json!({"janus": "attach", "plugin": "janus.plugin.videoroom"})).await;
        r["data"]["id"].as_u64().unwrap_or_else(|| panic!("attach failed: {r}"))
    }

    pub async fn message(&self, session: u64, handle: u64, body: Value) -> Value {
        self.post(&format!("/{session}/{handle}"), json!({"janus": "message", "body": body})).await
    }
}

/// What [`WsClient::next_within`] saw.
pub enum Next {
    Message(Value),
    /// Nothing within the wait; the socket is open.
    Quiet,
    Closed,
}

/// `GET url` with a 5 s timeout: (status, body as text).
pub async fn get_text(url: &str) -> (u16, String) {
    let mut resp = awc::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let body = resp.body().limit(8 << 20).await.unwrap_or_else(|e| panic!("GET {url}: body: {e}"));
    (resp.status().as_u16(), String::from_utf8_lossy(&body).into_owned())
}

/// An Admin API request over HTTP to `url` (an `/admin[/S[/H]]` endpoint, Portunus's or
/// Janus's) with `transaction`, and `secret` as its `admin_secret` unless it names one; the JSON
/// answer, within 5 s.
pub async fn admin_post(url: &str, transaction: &str, secret: &str, req: Value) -> Value {
    admin_post_within(url, transaction, secret, req, Duration::from_secs(5)).await
}

/// [`admin_post`], the answer within `within` (a request that waits on the network itself).
pub async fn admin_post_within(url: &str, transaction: &str, secret: &str, mut req: Value, within: Duration) -> Value {
    req["transaction"] = json!(transaction);
    if req.get("admin_secret").is_none() {
        req["admin_secret"] = json!(secret);
    }
    let mut r = awc::Client::new()
        .post(url)
        .timeout(within)
        .send_json(&req)
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    r.json().limit(1 << 20).await.unwrap_or_else(|e| panic!("POST {url}: not a JSON answer: {e}"))
}
