//! A Janus API client over one WebSocket that returns errors instead of panicking: the load
//! generator talks to servers it does not control (Portunus or Janus) and must report a broken
//! run, not abort in the middle of one.

use actix_codec::Framed;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;

pub type Error = Box<dyn std::error::Error>;
pub type Result<T> = std::result::Result<T, Error>;

/// The server's `api_secret`, when it has one: every request carries it (set once, from the
/// command line).
static APISECRET: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub fn set_apisecret(secret: String) {
    let _ = APISECRET.set(secret);
}

/// How long any reply or event may take before the run is reported broken.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Janus {
    conn: Framed<BoxedSocket, Codec>,
    /// Plugin events received while waiting for something else, oldest first.
    events: VecDeque<Value>,
    next_txn: u64,
}

impl Janus {
    pub async fn connect(url: &str) -> Result<Self> {
        let conn = portunus_tests::janus_websocket(url, WAIT).await?;
        Ok(Self { conn, events: VecDeque::new(), next_txn: rand::random::<u32>() as u64 })
    }

    async fn recv(&mut self) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.conn.next())
                .await
                .map_err(|_| "no message from the server in time")?
                .ok_or("the server closed the WebSocket")??;
            match frame {
                Frame::Text(b) | Frame::Binary(b) => return Ok(serde_json::from_slice(&b)?),
                Frame::Ping(p) => self.conn.send(Message::Pong(p)).await?,
                Frame::Close(r) => return Err(format!("the server closed the WebSocket: {r:?}").into()),
                _ => {}
            }
        }
    }

    /// Keeps plugin events for [`Janus::event`]; core events (webrtcup, media, slowlink,
    /// detached, ...) are not waited for by any scenario and are dropped.
    fn stash(&mut self, m: Value) {
        if m["janus"] == "event" {
            self.events.push_back(m);
        }
    }

    /// Sends `req` with a fresh transaction and returns the reply to it (an `error` reply is an
    /// `Err`). An `ack` is a reply.
    pub async fn call(&mut self, mut req: Value) -> Result<Value> {
        self.next_txn += 1;
        let txn = format!("lg{}", self.next_txn);
        req["transaction"] = json!(txn);
        if let Some(secret) = APISECRET.get() {
            req["apisecret"] = json!(secret);
        }
        self.conn.send(Message::Text(req.to_string().into())).await?;
        loop {
            let m = self.recv().await?;
            if m["transaction"] == txn.as_str() && m["janus"] != "event" {
                if m["janus"] == "error" {
                    return Err(format!("{} failed: {}", req["janus"], m["error"]).into());
                }
                return Ok(m);
            }
            self.stash(m);
        }
    }

    /// The next plugin event from `handle` (earlier ones that were stashed first).
    pub async fn event(&mut self, handle: u64) -> Result<Value> {
        if let Some(i) = self.events.iter().position(|e| e["sender"] == handle) {
            return Ok(self.events.remove(i).expect("index from position"));
        }
        loop {
            let m = self.recv().await?;
            if m["janus"] == "event" && m["sender"] == handle {
                return Ok(m);
            }
            self.stash(m);
        }
    }

    pub async fn create_session(&mut self) -> Result<u64> {
        let r = self.call(json!({"janus": "create"})).await?;
        r["data"]["id"].as_u64().ok_or_else(|| format!("create: no id in {r}").into())
    }

    pub async fn attach(&mut self, session: u64) -> Result<u64> {
        let r =
            self.call(json!({"janus": "attach", "session_id": session, "plugin": "janus.plugin.videoroom"})).await?;
        r["data"]["id"].as_u64().ok_or_else(|| format!("attach: no id in {r}").into())
    }

    /// A synchronous VideoRoom request: its `plugindata.data`, or the plugin's error.
    pub async fn sync(&mut self, session: u64, handle: u64, body: Value) -> Result<Value> {
        let r =
            self.call(json!({"janus": "message", "session_id": session, "handle_id": handle, "body": body})).await?;
        plugin_data(r)
    }

    /// An asynchronous VideoRoom request (with an optional JSEP): the event that answers it
    /// (its `plugindata.data` and its JSEP's SDP, if any), or the plugin's error.
    pub async fn request(
        &mut self,
        session: u64,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<(Value, Option<String>)> {
        let mut req = json!({"janus": "message", "session_id": session, "handle_id": handle, "body": body});
        if let Some(j) = jsep {
            req["jsep"] = j;
        }
        let ack = self.call(req).await?;
        if ack["janus"] != "ack" {
            return Err(format!("expected an ack, got {ack}").into());
        }
        let ev = self.event(handle).await?;
        let sdp = ev["jsep"]["sdp"].as_str().map(str::to_owned);
        Ok((plugin_data(ev)?, sdp))
    }

    pub async fn keepalive(&mut self, session: u64) -> Result<()> {
        self.call(json!({"janus": "keepalive", "session_id": session})).await.map(drop)
    }

    pub async fn detach(&mut self, session: u64, handle: u64) -> Result<()> {
        self.call(json!({"janus": "detach", "session_id": session, "handle_id": handle})).await.map(drop)
    }

    pub async fn destroy(&mut self, session: u64) -> Result<()> {
        self.call(json!({"janus": "destroy", "session_id": session})).await.map(drop)
    }

    /// Drops stashed events nobody will wait for (a long run must not grow without bound).
    pub fn forget_events(&mut self) {
        self.events.clear();
    }
}

fn plugin_data(mut m: Value) -> Result<Value> {
    let data = m["plugindata"]["data"].take();
    if let Some(code) = data["error_code"].as_u64() {
        return Err(format!("VideoRoom error {code}: {}", data["error"]).into());
    }
    if data.is_null() {
        return Err(format!("no plugindata in {m}").into());
    }
    Ok(data)
}
