//! The WebSocket transport: one [`WsConnection`] actor per socket (actix-web-actors is confined
//! to this file). The `janus-protocol` subprotocol is required: a handshake without it gets a
//! 400 whose body says what is missing (Janus just drops the TCP connection).
//!
//! The connection receives the events of the sessions it created or claimed: it subscribes to
//! each session's signal channel, then drains the session's mailbox (subscribe first, then
//! drain, so no wake-up is missed). One drain per session runs at a time, so events go out in
//! mailbox order, each exactly once; those of the session a request is for, read while it is
//! handled, go out after its reply (`answering`).
//!
//! Messages: WebSocket frames; `(SessionId, Bytes)` signals from session channels; `PingDue`
//! and `GoingAway` from its watchman task; results of its own futures.

use crate::api::error::GatewayError;
use crate::api::session::EndReason;
use crate::api::{ConnCtx, Dispatcher, SessionEffect};
use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use shared::ids::SessionId;
use shared::janus::layout::Layout;
use shared::janus::reply::Reply;
use shared::janus::request::Transport;
use shared::wire::Signal;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The only subprotocol Janus clients speak on this port.
pub const SUBPROTOCOL: &str = "janus-protocol";
/// Events sent per mailbox read.
const DRAIN_BATCH: usize = 64;
/// Requests a connection may have waiting behind the one in flight; more are refused with an
/// error rather than buffered without bound.
const MAX_QUEUED: usize = 1024;

/// The close code for a protocol error (RFC 6455 §7.4.1): 1009 for a frame over the limit, 1007
/// for a text frame that is not UTF-8 (actix-web-actors reports it as an I/O error carrying the
/// UTF-8 decoder's message), 1002 for the rest.
pub fn close_code(e: &ws::ProtocolError) -> ws::CloseCode {
    match e {
        ws::ProtocolError::Overflow => ws::CloseCode::Size,
        ws::ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::Other && io.to_string().contains("utf-8") => {
            ws::CloseCode::Invalid
        }
        _ => ws::CloseCode::Protocol,
    }
}

/// A handshake must carry a proper key (RFC 6455 §4.2.1: 16 bytes in base64; actix-web-actors
/// only checks that there is one) and offer `subprotocol`; otherwise a 400 that says why.
pub fn check_handshake(req: &HttpRequest, subprotocol: &str) -> Result<(), HttpResponse> {
    use base64::Engine as _;
    let key = req.headers().get("sec-websocket-key").map(|k| k.as_bytes()).unwrap_or_default();
    let mut decoded = [0u8; 16];
    let engine = base64::engine::general_purpose::STANDARD;
    if key.len() != 24 || engine.decode_slice(key, &mut decoded) != Ok(16) {
        tracing::info!("WebSocket handshake refused: bad Sec-WebSocket-Key");
        return Err(HttpResponse::BadRequest()
            .content_type("text/plain; charset=utf-8")
            .body("Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455 section 4.2.1)\n"));
    }
    require_subprotocol(req, subprotocol)
}

/// A handshake must offer `subprotocol`; without it, a 400 that says what is missing.
fn require_subprotocol(req: &HttpRequest, subprotocol: &str) -> Result<(), HttpResponse> {
    let offered: Vec<String> = req
        .headers()
        .get_all("sec-websocket-protocol")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()))
        .filter(|p| !p.is_empty())
        .collect();
    if offered.iter().any(|p| p == subprotocol) {
        return Ok(());
    }
    let what = if offered.is_empty() { "none".to_owned() } else { offered.join(", ") };
    tracing::info!(offered = %what, wanted = subprotocol, "WebSocket handshake refused: subprotocol missing");
    Err(HttpResponse::BadRequest().content_type("text/plain; charset=utf-8").body(format!(
        "Portunus speaks this API over WebSocket only with the subprotocol '{subprotocol}' \
         (Sec-WebSocket-Protocol: {subprotocol}); offered: {what}\n"
    )))
}

/// `GET /` (any path, like Janus) on the WebSocket port.
pub async fn handshake(
    req: HttpRequest,
    stream: web::Payload,
    d: web::Data<Dispatcher>,
) -> actix_web::Result<HttpResponse> {
    if let Err(refused) = check_handshake(&req, SUBPROTOCOL) {
        return Ok(refused);
    }
    let d = d.get_ref().clone();
    // Frames up to twice the message limit reach the handler, which answers oversized ones with
    // a Janus error; only larger frames are refused by the codec (close code 1009).
    let frame_limit = d.cfg().max_message_size.saturating_mul(2);
    let conn = WsConnection::new(d, req.peer_addr().map(|a| a.ip()));
    ws::WsResponseBuilder::new(conn, &req, stream).protocols(&[SUBPROTOCOL]).frame_size(frame_limit).start()
}

/// Per-session delivery state.
struct Feed {
    stream: SpawnHandle,
    draining: bool,
    again: bool,
    /// The session is over: remove the feed once the mailbox is drained.
    closing: bool,
}

pub struct WsConnection {
    id: u64,
    d: Dispatcher,
    last_seen: Instant,
    feeds: HashMap<SessionId, Feed>,
    /// Sessions this connection created or claimed, from the moment of the reply (their feed
    /// may still be subscribing): what closing the socket ends or releases.
    owned: std::collections::HashSet<SessionId>,
    fragments: Option<BytesMut>,
    /// Requests wait here while an earlier one is in flight: a connection's requests are
    /// handled in the order they were sent (a `leave` sent right after a `join` follows it).
    queue: VecDeque<Bytes>,
    busy: bool,
    /// The events of the session the request in flight is for, read meanwhile: they follow
    /// its reply.
    answering: super::answering::Answering,
    /// A reply held back until the connection's next frame: written before anything else this
    /// connection writes, so frames keep their order.
    held: Option<String>,
    /// Releases the held reply when it fires. Armed by a hold and left to run out rather than
    /// cancelled and armed anew for each reply: arming a timer earlier than the runtime's next
    /// one wakes the runtime's poller, a system call of its own. A reply held late in the
    /// timer's run is released early, never late.
    hold_timer: bool,
    /// The gateway is going away: take nothing more from mailboxes, close once the events
    /// already taken are written.
    leaving: bool,
    /// The client's address, and this connection's request budget.
    peer: Option<std::net::IpAddr>,
    rate: crate::limits::Bucket,
    /// The task that sends this connection its pings and the gateway's going away.
    watchman: Option<JoinHandle<()>>,
}

impl WsConnection {
    fn new(d: Dispatcher, peer: Option<std::net::IpAddr>) -> Self {
        let rate = crate::limits::Bucket::new(d.cfg().rate_limit_per_connection, Instant::now());
        Self {
            id: shared::ids::random_id(),
            d,
            last_seen: Instant::now(),
            feeds: HashMap::new(),
            owned: Default::default(),
            fragments: None,
            queue: VecDeque::new(),
            busy: false,
            answering: Default::default(),
            held: None,
            hold_timer: false,
            leaving: false,
            peer,
            rate,
            watchman: None,
        }
    }

    /// A request arrived: refused at once over the rate limit, else handled in turn.
    fn admit(&mut self, bytes: Bytes, ctx: &mut ws::WebsocketContext<Self>) {
        let limit = self.d.cfg().rate_limit_per_connection;
        if !self.rate.allow(limit, Instant::now()) {
            let e = GatewayError::RateLimited { limit, scope: "connection" };
            self.write(self.d.reject(&bytes, &e).reply.to_text(), ctx);
            return;
        }
        self.request(bytes, ctx);
    }

    fn request(&mut self, bytes: Bytes, ctx: &mut ws::WebsocketContext<Self>) {
        if self.busy {
            if self.queue.len() >= MAX_QUEUED {
                let e = GatewayError::Busy(MAX_QUEUED).to_core();
                self.write(Reply::error(None, None, &e).to_text(), ctx);
                return;
            }
            self.queue.push_back(bytes);
            return;
        }
        self.busy = true;
        let d = self.d.clone();
        let cc = ConnCtx {
            transport: Transport::Ws,
            owner: Some(self.id),
            owned_sessions: self.owned.len(),
            peer: self.peer,
        };
        match d.admit(&bytes, cc, None) {
            Ok(admitted) => {
                self.answering.start(admitted.session());
                let fut = async move { d.run(admitted).await };
                ctx.spawn(fut.into_actor(self).map(|out, act, ctx| act.replied(out, ctx)));
            }
            // Answered at once; written in turn, as any reply.
            Err(refused) => {
                self.answering.start(None);
                ctx.spawn(actix::fut::ready(*refused).map(|out, act: &mut Self, ctx| act.replied(out, ctx)));
            }
        }
    }

    /// A request's outcome: its reply written (or held), what the connection now serves
    /// changed, its followup run, then the next request.
    fn replied(&mut self, out: crate::api::Outcome, ctx: &mut ws::WebsocketContext<Self>) {
        let reply = out.reply.to_text();
        // A reply that announces an event waits for the connection's next frame, to leave in
        // the same write (`ws_reply_hold_ms`): each write is a `send` whose loopback delivery
        // was half of the standalone gateway's CPU time, and the event usually follows
        // within a fraction of a millisecond.
        let hold = Duration::from_millis(self.d.cfg().ws_reply_hold_ms);
        match out.announces {
            Some(sid) if !hold.is_zero() && self.feeds.contains_key(&sid) => self.hold(reply, hold, ctx),
            _ => self.write(reply, ctx),
        }
        self.answered(ctx);
        match out.effect {
            Some(SessionEffect::Created(sid, sub)) => self.own(sid, sub, false, ctx),
            Some(SessionEffect::Owned(sid, sub)) => self.own(sid, sub, true, ctx),
            Some(SessionEffect::Released(sid)) => self.drop_feed(sid, ctx),
            Some(SessionEffect::Ending(sid)) => self.close_feed(sid, ctx),
            None => {}
        }
        // The followup (the command to the media node) runs before the next request of this
        // connection, so the node sees a client's requests in the order they were sent.
        match out.followup {
            Some(f) => {
                ctx.spawn(f.into_actor(self).map(|_, act, ctx| act.next_request(ctx)));
            }
            None => self.next_request(ctx),
        }
    }

    /// The request in flight is answered: the events of its session read meanwhile follow
    /// its reply.
    fn answered(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        for ev in self.answering.answered() {
            self.write(text(ev), ctx);
        }
    }

    /// Writes a frame, after the held reply if there is one.
    fn write(&mut self, text: impl Into<bytestring::ByteString>, ctx: &mut ws::WebsocketContext<Self>) {
        self.release(ctx);
        ctx.text(self.laid_out(text.into()));
    }

    /// A frame's JSON as this transport writes it now (as made when compact).
    fn laid_out(&self, text: bytestring::ByteString) -> bytestring::ByteString {
        match self.d.layout(Transport::Ws) {
            Layout::Compact => text,
            layout => layout.lay_out(text.to_string()).into(),
        }
    }

    /// Holds `reply` until the next frame, for `hold` at most.
    fn hold(&mut self, reply: String, hold: Duration, ctx: &mut ws::WebsocketContext<Self>) {
        self.release(ctx);
        self.held = Some(reply);
        if !self.hold_timer {
            self.hold_timer = true;
            ctx.run_later(hold, |act, ctx| {
                act.hold_timer = false;
                act.release(ctx);
            });
        }
    }

    fn release(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if let Some(reply) = self.held.take() {
            ctx.text(self.laid_out(reply.into()));
        }
    }

    fn next_request(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.busy = false;
        if let Some(next) = self.queue.pop_front() {
            self.request(next, ctx);
        }
    }

    /// Starts receiving a session's events through `sub` (its wake-ups, subscribed before the
    /// reply), then drains what is already queued when there may be some (`backlog`).
    fn own(
        &mut self,
        sid: SessionId,
        sub: shared::bus::Subscription,
        backlog: bool,
        ctx: &mut ws::WebsocketContext<Self>,
    ) {
        self.owned.insert(sid);
        self.feeds.entry(sid).or_insert_with(|| {
            let stream = ctx.add_stream(sub.map(move |p| SessionSignal(sid, p.into_bytes())));
            Feed { stream, draining: false, again: false, closing: false }
        });
        if backlog {
            self.drain(sid, ctx);
        }
    }

    fn drop_feed(&mut self, sid: SessionId, ctx: &mut ws::WebsocketContext<Self>) {
        self.owned.remove(&sid);
        if let Some(f) = self.feeds.remove(&sid) {
            ctx.cancel_future(f.stream);
        }
    }

    /// The session is over: what is left in its mailbox is read, then its feed dropped.
    fn close_feed(&mut self, sid: SessionId, ctx: &mut ws::WebsocketContext<Self>) {
        if let Some(f) = self.feeds.get_mut(&sid) {
            f.closing = true;
        }
        self.drain(sid, ctx);
    }

    fn drain(&mut self, sid: SessionId, ctx: &mut ws::WebsocketContext<Self>) {
        if self.leaving {
            return; // What is left stays in the mailbox for the client's claim elsewhere.
        }
        let Some(feed) = self.feeds.get_mut(&sid) else { return };
        if feed.draining {
            feed.again = true;
            return;
        }
        feed.draining = true;
        feed.again = false;
        let store = self.d.backends().store.clone();
        let fut = async move { store.pop_events(sid, DRAIN_BATCH).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            let n = match res {
                Ok(events) => {
                    let n = events.len();
                    for ev in act.answering.read(sid, events) {
                        act.write(text(ev), ctx);
                    }
                    act.d.metrics().events_delivered("ws", n);
                    n
                }
                Err(e) => {
                    tracing::warn!(session = %sid, error = %e, "mailbox read failed");
                    0
                }
            };
            let Some(feed) = act.feeds.get_mut(&sid) else { return };
            feed.draining = false;
            if act.leaving {
                act.close_if_idle(ctx);
            } else if feed.again || n == DRAIN_BATCH {
                act.drain(sid, ctx);
            } else if feed.closing {
                act.drop_feed(sid, ctx);
            }
        }));
    }

    /// The gateway stops: once no mailbox read is in flight (its events are written first), the
    /// socket closes with 1001 and the client reconnects elsewhere and claims its sessions.
    fn close_if_idle(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.feeds.values().any(|f| f.draining) {
            return;
        }
        // Events held for a reply that will not be written now: they leave anyway.
        self.answered(ctx);
        self.release(ctx);
        ctx.close(Some(ws::CloseReason { code: ws::CloseCode::Away, description: Some("Gateway going away".into()) }));
        ctx.stop();
    }

    fn text_frame(&mut self, bytes: Bytes, ctx: &mut ws::WebsocketContext<Self>) {
        self.admit(bytes, ctx);
    }
}

/// An event from a mailbox as a text frame, without copying it. Events are serialized JSON,
/// hence UTF-8; one that is not (a mailbox written by something else) goes out empty.
fn text(event: Bytes) -> bytestring::ByteString {
    bytestring::ByteString::try_from(event).unwrap_or_default()
}

/// A payload from one session's signal channel.
#[derive(Message)]
#[rtype(result = "()")]
struct SessionSignal(SessionId, Bytes);

impl Actor for WsConnection {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.d.metrics().ws_connections().inc();
        let cfg = self.d.cfg();
        let ping = Duration::from_secs(cfg.ws_ping_interval.max(1));
        self.watchman = Some(watchman(ctx.address(), self.d.going_away_signal(), ping));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.d.metrics().ws_connections().dec();
        if let Some(w) = self.watchman.take() {
            w.abort();
        }
        let sessions: Vec<SessionId> = self.owned.iter().copied().collect();
        if sessions.is_empty() {
            return;
        }
        let d = self.d.clone();
        let owner = self.id;
        let reclaim_ms = d.cfg().reclaim_timeout * 1000;
        // Janus: with no reclaim window the socket's sessions end at once; otherwise they wait
        // to be claimed, the window counted from now.
        actix::spawn(async move {
            for sid in sessions {
                if reclaim_ms == 0 {
                    let owned = matches!(d.backends().store.session(sid).await, Ok(Some(s)) if s.owner == Some(owner));
                    if owned {
                        let _ = d.end_session(sid, EndReason::TransportGone).await;
                    }
                } else if let Err(e) = d.backends().store.release_session(sid, owner, reclaim_ms).await {
                    tracing::warn!(session = %sid, error = %e, "session not released for reclaim");
                }
            }
        });
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsConnection {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_seen = Instant::now();
        let limit = self.d.cfg().max_message_size.saturating_mul(2);
        match msg {
            Ok(ws::Message::Text(t)) => self.text_frame(t.into_bytes(), ctx),
            Ok(ws::Message::Binary(b)) => self.text_frame(b, ctx),
            Ok(ws::Message::Continuation(item)) => match item {
                actix_http::ws::Item::FirstText(b) | actix_http::ws::Item::FirstBinary(b) => {
                    self.fragments = Some(BytesMut::from(&b[..]))
                }
                actix_http::ws::Item::Continue(b) => {
                    if let Some(buf) = self.fragments.as_mut() {
                        if buf.len() + b.len() <= limit {
                            buf.extend_from_slice(&b);
                        }
                    }
                }
                actix_http::ws::Item::Last(b) => {
                    if let Some(mut buf) = self.fragments.take() {
                        if buf.len() + b.len() <= limit {
                            buf.extend_from_slice(&b);
                        }
                        self.text_frame(buf.freeze(), ctx);
                    }
                }
            },
            Ok(ws::Message::Ping(p)) => ctx.pong(&p),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(e) => {
                tracing::info!(conn = self.id, error = %e, "WebSocket protocol error; closing");
                ctx.close(Some(ws::CloseReason { code: close_code(&e), description: Some(e.to_string()) }));
                ctx.stop();
            }
        }
    }
}

/// The connection's ping is due.
#[derive(Message)]
#[rtype(result = "()")]
struct PingDue;

/// The gateway is going away.
#[derive(Message)]
#[rtype(result = "()")]
struct GoingAway;

/// Sends the connection [`PingDue`] every `ping` and [`GoingAway`] once the gateway goes away,
/// until the connection, stopping, aborts it. A task of its own rather than a timer and a future in the
/// actor's context: actix polls every item of a context each time the context wakes, and a
/// connection wakes several times per request.
fn watchman(conn: Addr<WsConnection>, mut going: watch::Receiver<bool>, ping: Duration) -> JoinHandle<()> {
    actix::spawn(async move {
        let mut due = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
        due.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = due.tick() => conn.do_send(PingDue),
                _ = going.wait_for(|g| *g) => {
                    conn.do_send(GoingAway);
                    return;
                }
            }
        }
    })
}

impl Handler<PingDue> for WsConnection {
    type Result = ();

    /// Pings keep proxies from idling the socket out; a peer silent for `ws_client_timeout` is
    /// gone.
    fn handle(&mut self, _: PingDue, ctx: &mut Self::Context) {
        let dead_after = Duration::from_secs(self.d.cfg().ws_client_timeout.max(1));
        if self.last_seen.elapsed() > dead_after {
            tracing::info!(conn = self.id, "WebSocket peer unresponsive; closing");
            ctx.close(Some(ws::CloseReason { code: ws::CloseCode::Away, description: Some("ping timeout".into()) }));
            ctx.stop();
        } else {
            ctx.ping(b"");
        }
    }
}

impl Handler<GoingAway> for WsConnection {
    type Result = ();

    fn handle(&mut self, _: GoingAway, ctx: &mut Self::Context) {
        self.leaving = true;
        self.close_if_idle(ctx);
    }
}

impl StreamHandler<SessionSignal> for WsConnection {
    fn handle(&mut self, SessionSignal(sid, payload): SessionSignal, ctx: &mut Self::Context) {
        match Signal::from_bytes(&payload) {
            Some(Signal::Wake) => self.drain(sid, ctx),
            Some(Signal::Claimed { owner }) if owner != self.id => {
                tracing::info!(session = %sid, conn = self.id, "session claimed by another connection");
                self.drop_feed(sid, ctx);
            }
            Some(Signal::Claimed { .. }) => {}
            Some(Signal::Over) => self.close_feed(sid, ctx),
            None => tracing::warn!(session = %sid, "undecodable session signal"),
        }
    }

    // A session's channel ending is not the socket ending.
    fn finished(&mut self, _: &mut Self::Context) {}
}
