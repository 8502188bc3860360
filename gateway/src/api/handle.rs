//! Handle-level requests and their routing to media nodes: a handle bound to a room goes to
//! that room's node; an unbound one to the node the request's room is placed on.

use super::error::GatewayError;
use super::{Dispatcher, Outcome};
use crate::nodes::Pick;
use shared::ids::{HandleId, NodeId, RoomId, SessionId};
use shared::janus::reply::{Event, PluginData, Reply};
use shared::janus::request::Envelope;
use shared::janus::videoroom::{self as vr, VideoRoomRequest};
use shared::janus::VIDEOROOM_PLUGIN;
use shared::keys;
use shared::store::{Binding, FoundHandle, HandleRecord, StoreError, ROOM_LEASE_MS};
use shared::wire::{GoneReason, NodeCommand, RpcResult};
use std::sync::Arc;
use std::time::Duration;

/// How long a host name (a forwarder's, the Admin API's `resolve_address`) may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// An address for `host` (an address already, or a name resolved now).
pub(crate) async fn resolve(host: &str) -> Option<std::net::IpAddr> {
    if let Ok(ip) = host.parse() {
        return Some(ip);
    }
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, 0))).await.ok()?.ok()?;
    found.map(|a| a.ip()).next()
}

impl Dispatcher {
    pub(super) async fn attach(&self, env: &Envelope, sid: SessionId) -> Result<Outcome, GatewayError> {
        let a = env.attach()?;
        if a.plugin != VIDEOROOM_PLUGIN {
            return Err(GatewayError::NoSuchPlugin(a.plugin));
        }
        let token = env.credentials().token;
        self.auth().check_plugin(self.backends().store.as_ref(), token.as_deref(), &a.plugin).await?;
        let max = self.cfg().max_handles_per_session;
        let hid = match self.backends().store.touch_attach_handle(sid, &a.plugin, a.opaque_id, max).await {
            Ok(h) => h,
            Err(StoreError::Limit) => return Err(GatewayError::TooManyHandles(max)),
            Err(StoreError::NoSuchSession) => return Err(GatewayError::NoSuchSession(sid)),
            Err(e) => return Err(e.into()),
        };
        tracing::debug!(session = %sid, handle = %hid, "handle attached");
        Ok(Outcome::reply(Reply::with_id(Some(sid), &env.transaction, hid.0)))
    }

    /// A client's `detach`: the session touched, the handle removed, its node told and its
    /// `detached` event queued, in one step where the store can. The `success` announces the
    /// event: a transport writes it first.
    pub(super) async fn detach_requested(
        &self,
        sid: SessionId,
        hid: HandleId,
        txn: &str,
    ) -> Result<Outcome, GatewayError> {
        self.backends()
            .detach_telling(sid, hid)
            .await?
            .ok_or(GatewayError::NoSuchSession(sid))?
            .ok_or(GatewayError::NoSuchHandle(sid, hid))?;
        Ok(Outcome { announces: Some(sid), ..Outcome::reply(Reply::success(Some(sid), txn)) })
    }

    /// `detach` of a handle already read (the Admin API's `detach_handle`: not session activity).
    pub(crate) async fn detach(&self, h: HandleRecord, txn: &str) -> Result<Outcome, GatewayError> {
        if self.backends().store.detach_handle(h.session, h.id).await?.is_none() {
            return Err(GatewayError::NoSuchHandle(h.session, h.id));
        }
        Ok(self.detached(h, txn))
    }

    /// A removed handle's `success` first, then its `detached` event (Janus's order); its node
    /// is told first, in the same step as the event is queued (one round trip to Redis for both).
    fn detached(&self, h: HandleRecord, txn: &str) -> Outcome {
        let sid = h.session;
        let this = self.clone();
        let followup = Box::pin(async move {
            let gone = h.binding.map(|b| {
                let cmd =
                    NodeCommand::HandleGone { session: sid, handle: h.id, room: b.room, reason: GoneReason::Detached };
                (keys::node_rpc(&b.node), crate::rpc::told(cmd) as Arc<dyn shared::bus::Message>)
            });
            let ev = Event::Detached { session_id: sid, sender: h.id }.to_bytes();
            let told = gone.as_slice();
            if let Err(e) = this.backends().deliver_after(told, &[(sid, ev.into())]).await {
                tracing::warn!(session = %sid, error = %e, told = told.len(), "detached event not delivered");
            }
        });
        Outcome::announcing(Reply::success(Some(sid), txn), sid, followup)
    }

    /// `hangup`: closes the handle's PeerConnection, keeps the handle.
    pub(crate) async fn hangup(&self, h: HandleRecord, txn: &str) -> Result<Outcome, GatewayError> {
        if let Some(b) = &h.binding {
            let cmd = NodeCommand::HandleGone {
                session: h.session,
                handle: h.id,
                room: b.room.clone(),
                reason: GoneReason::Hangup,
            };
            self.notify_node(b.node.clone(), cmd).await;
        }
        Ok(Outcome::reply(Reply::success(Some(h.session), txn)))
    }

    /// `trickle`: always acknowledged, as Janus does even before there is a PeerConnection;
    /// the candidates go to the handle's room, which holds them until its PeerConnection exists.
    pub(super) fn trickle(&self, env: &Envelope, h: HandleRecord) -> Result<Outcome, GatewayError> {
        let candidates = env.trickle()?;
        let reply = Reply::ack(h.session, &env.transaction);
        let Some(b) = h.binding else {
            // Not in a room: there is no PeerConnection it could be for (Janus drops them too).
            return Ok(Outcome::reply(reply));
        };
        let this = self.clone();
        let cmd = NodeCommand::Trickle { session: h.session, handle: h.id, room: b.room, candidates };
        let followup = Box::pin(async move { this.notify_node(b.node, cmd).await });
        Ok(Outcome { followup: Some(followup), ..Outcome::reply(reply) })
    }

    /// The session touched and the handle read in one step; 458 / 459 when either is missing.
    pub(super) async fn touch_handle(&self, sid: SessionId, hid: HandleId) -> Result<FoundHandle, GatewayError> {
        let found = self.backends().store.touch_session_handle(sid, hid, None).await?;
        found.ok_or(GatewayError::NoSuchSession(sid))?.ok_or(GatewayError::NoSuchHandle(sid, hid))
    }

    /// A client's `message` to a handle. Its body is read before the handle is found, so that a
    /// join finds its room's owner with the touch; its errors are answered after (Janus checks
    /// the session and handle first).
    pub(super) async fn message_requested(
        &self,
        env: &Envelope,
        sid: SessionId,
        hid: HandleId,
    ) -> Result<Outcome, GatewayError> {
        let msg = match env.message().map(|m| (vr::parse_request(&m.body, self.videoroom_policy()), m.jsep)) {
            Ok((Ok(request @ VideoRoomRequest::Async { .. }), jsep)) => {
                let join = vr::join_room(&request);
                return self.message_sent_with_touch(env, sid, hid, join, request, jsep).await;
            }
            other => other,
        };
        let found = self.touch_handle(sid, hid).await?;
        let (request, jsep) = msg?;
        self.message(env, found, request, jsep).await
    }

    /// An asynchronous request, sent from the touch's own step where the store can (one round
    /// trip to Redis for both; the call registered before): to the node a handle is bound to,
    /// or a join to its room's live owner. Otherwise it takes the way of [`Dispatcher::message`].
    async fn message_sent_with_touch(
        &self,
        env: &Envelope,
        sid: SessionId,
        hid: HandleId,
        join: Option<RoomId>,
        request: VideoRoomRequest,
        jsep: Option<shared::janus::request::Jsep>,
    ) -> Result<Outcome, GatewayError> {
        let rpc = &self.inner.rpc;
        let call = rpc.expect();
        let txn = env.transaction.clone();
        let cmd = |bound_room: Option<RoomId>| NodeCommand::Plugin {
            session: sid,
            handle: hid,
            transaction: txn.clone(),
            request: request.clone(),
            jsep: jsep.clone(),
            bound_room,
            capture: None,
        };
        let sent =
            self.backends().touch_handle_sending(sid, hid, join.as_ref(), |room| rpc.envelope(&call, cmd(room))).await;
        let found = match sent {
            Ok(Some(Some((_, Some(to))))) => {
                let resend = cmd(to.bound_room.clone());
                return Ok(self.answered_later(call, to, resend, sid, hid, txn));
            }
            Ok(Some(Some((found, None)))) => Ok(found),
            Ok(Some(None)) => Err(GatewayError::NoSuchHandle(sid, hid)),
            Ok(None) => Err(GatewayError::NoSuchSession(sid)),
            Err(e) => Err(e.into()),
        };
        // Not sent from the touch's step: the call is not awaited there.
        rpc.forget(call);
        self.message(env, found?, Ok(request), jsep).await
    }

    /// The `ack` of an asynchronous request sent as `call` where `to` says; its followup waits
    /// for the node's answer (sending `resend` to the room's owner if the room moved).
    fn answered_later(
        &self,
        call: crate::rpc::Expected,
        to: shared::store::SentTo,
        resend: NodeCommand,
        sid: SessionId,
        hid: HandleId,
        txn: String,
    ) -> Outcome {
        let ack = Reply::ack(sid, &txn);
        let this = self.clone();
        let followup = Box::pin(async move {
            let timeout = Duration::from_millis(this.cfg().rpc_timeout_ms);
            let shared::store::SentTo { node, room, .. } = to;
            let first = this.inner.rpc.answer(call, &node, timeout).await.map_err(GatewayError::NodeUnavailable);
            let rebind = Some((sid, hid, room.clone()));
            let answer = match first {
                Ok(first) => this.again_if_moved(first, node, Some(room), resend, rebind).await,
                Err(e) => Err(e),
            };
            this.async_answered(answer, sid, hid, txn).await;
        });
        Outcome::announcing(ack, sid, followup)
    }

    async fn message(
        &self,
        env: &Envelope,
        found: FoundHandle,
        request: Result<VideoRoomRequest, shared::janus::errors::VideoRoomError>,
        jsep: Option<shared::janus::request::Jsep>,
    ) -> Result<Outcome, GatewayError> {
        let h = found.handle;
        let (sid, hid, txn) = (h.session, h.id, env.transaction.clone());
        let pd = |data| PluginData { plugin: VIDEOROOM_PLUGIN.into(), data };
        let request = match request {
            Ok(r) => r,
            // Missing or unknown `request`: Janus answers synchronously whatever was asked.
            Err(e) => return Ok(Outcome::reply(Reply::plugin_success(sid, hid, &txn, pd(vr::error(&e))))),
        };
        let request = match request {
            VideoRoomRequest::Sync(req) => {
                let data = self.videoroom_sync(sid, hid, &txn, req).await?;
                return Ok(Outcome::reply(Reply::plugin_success(sid, hid, &txn, pd(data))));
            }
            r => r,
        };
        let route_room = h.binding.as_ref().map(|b| b.room.clone()).or_else(|| vr::join_room(&request));
        let (node, bound_room) = match (&h.binding, vr::join_room(&request)) {
            (Some(b), _) => (b.node.clone(), Some(b.room.clone())),
            // A join binds the handle to its room's node before it is sent, so the handle's
            // next requests follow it there and are handled after it, in order (the node
            // unbinds the handle again if the join fails). While the room's owner is
            // registered, the touch that found the handle bound it there.
            (None, Some(room)) => {
                let node = match found.owner {
                    Some((owner, true)) => owner,
                    status => {
                        let node = self.place(room.clone(), status.map(|(dead, _)| dead)).await?;
                        let binding = Some(Binding { room, node: node.clone() });
                        self.backends().store.bind_handle(sid, hid, binding).await?;
                        node
                    }
                };
                (node, None)
            }
            (None, None) => (self.node_for(None).await?, None),
        };
        // A join takes the handle's packet capture along: its room captures it from then on.
        let capture = vr::join_room(&request).and(h.capture);
        let cmd = NodeCommand::Plugin {
            session: sid,
            handle: hid,
            transaction: txn.clone(),
            request,
            jsep,
            bound_room,
            capture,
        };
        // Asynchronous: ack now; the node's answer arrives as an event with this transaction.
        let this = self.clone();
        let rebind = route_room.clone().map(|room| (sid, hid, room));
        let followup = Box::pin(async move {
            let answer = this.send_to_owner(node, route_room, cmd, rebind).await;
            this.async_answered(answer, sid, hid, txn).await;
        });
        Ok(Outcome::announcing(Reply::ack(sid, &env.transaction), sid, followup))
    }

    /// An asynchronous request's answer from its node: taken, or an error event for the handle
    /// (its `ack` is out already).
    async fn async_answered(
        &self,
        answer: Result<RpcResult, GatewayError>,
        sid: SessionId,
        hid: HandleId,
        txn: String,
    ) {
        let pd = |data| PluginData { plugin: VIDEOROOM_PLUGIN.into(), data };
        let failure = match answer {
            Ok(RpcResult::Accepted) | Ok(RpcResult::Sync(_)) => return,
            Ok(RpcResult::WrongNode) => "the room moved while the request was in flight".to_owned(),
            Ok(RpcResult::Failed(why)) => why,
            Err(e) => e.to_string(),
        };
        tracing::warn!(session = %sid, handle = %hid, error = %failure, "asynchronous request failed");
        let e = shared::janus::errors::VideoRoomError::new(
            shared::janus::errors::VideoRoomCode::UnknownError,
            format!("Media node unavailable ({failure})"),
        );
        let ev = Event::Event {
            session_id: sid,
            transaction: Some(txn),
            sender: hid,
            plugindata: pd(vr::error(&e)),
            jsep: None,
        };
        let _ = self.backends().deliver(sid, ev.to_bytes().into()).await;
    }

    /// The deployment's VideoRoom settings requests are parsed under.
    pub(crate) fn videoroom_policy(&self) -> vr::Policy<'_> {
        vr::Policy::new(self.cfg().admin_key.as_deref(), self.cfg().lock_rtp_forward, self.cfg().string_ids)
    }

    /// A synchronous VideoRoom request, answered by the node that owns its room (any node for
    /// room-less ones): `plugindata.data`. `sid`/`hid` name the asking handle (zero for the
    /// Admin API's `message_plugin`).
    pub(crate) async fn videoroom_sync(
        &self,
        sid: SessionId,
        hid: shared::ids::HandleId,
        txn: &str,
        req: vr::SyncRequest,
    ) -> Result<serde_json::Value, GatewayError> {
        let req = match req {
            // Forwarders' host names are resolved here: the node gets addresses.
            vr::SyncRequest::RtpForward(mut f) => {
                for s in &mut f.streams {
                    match resolve(&s.host).await {
                        Some(ip) => s.host = ip.to_string(),
                        None => {
                            let e = shared::janus::errors::VideoRoomError::new(
                                shared::janus::errors::VideoRoomCode::InvalidElement,
                                format!("Could not resolve address ({})...", s.host),
                            );
                            return Ok(vr::error(&e));
                        }
                    }
                }
                vr::SyncRequest::RtpForward(f)
            }
            vr::SyncRequest::PublishRemotely(mut p) => match resolve(&p.host).await {
                Some(ip) => {
                    p.host = ip.to_string();
                    vr::SyncRequest::PublishRemotely(p)
                }
                None => {
                    let e = shared::janus::errors::VideoRoomError::new(
                        shared::janus::errors::VideoRoomCode::InvalidElement,
                        format!("Could not resolve address ({})...", p.host),
                    );
                    return Ok(vr::error(&e));
                }
            },
            r => r,
        };
        let room = req.room();
        let node = self.node_for(room.clone()).await?;
        let cmd = NodeCommand::Plugin {
            session: sid,
            handle: hid,
            transaction: txn.to_owned(),
            request: VideoRoomRequest::Sync(req),
            jsep: None,
            bound_room: None,
            capture: None,
        };
        match self.send_to_owner(node, room, cmd, None).await? {
            RpcResult::Sync(data) => Ok(data),
            RpcResult::Accepted | RpcResult::WrongNode => {
                Err(GatewayError::NodeUnavailable("the room's owner did not answer as expected".into()))
            }
            RpcResult::Failed(why) => Err(GatewayError::NodeUnavailable(why)),
        }
    }

    /// The Admin API's `handle_info` part that lives where the handle's room is:
    /// `{"plugin_specific", "webrtc", "sdps"}`, or `Null` when the room has no such handle.
    pub(crate) async fn handle_query(&self, h: &HandleRecord) -> Result<serde_json::Value, GatewayError> {
        let cmd = |room| NodeCommand::HandleInfo { session: h.session, handle: h.id, room };
        Ok(self.ask_handle_node(h, cmd).await?.unwrap_or_default())
    }

    /// The synchronous answer to `cmd` (given the handle's room) from the node holding the
    /// handle's room; `None` when the handle is in no room.
    pub(super) async fn ask_handle_node(
        &self,
        h: &HandleRecord,
        cmd: impl FnOnce(RoomId) -> NodeCommand,
    ) -> Result<Option<serde_json::Value>, GatewayError> {
        let Some(b) = &h.binding else { return Ok(None) };
        match self.call_node(b.node.clone(), cmd(b.room.clone())).await? {
            RpcResult::Sync(v) => Ok(Some(v)),
            other => Err(GatewayError::NodeUnavailable(format!("unexpected answer {other:?}"))),
        }
    }

    /// Sends `cmd` to `node`; if that node no longer owns `room`, looks the owner up once more
    /// (re-binding the handle there when `rebind` says so) and sends it again.
    async fn send_to_owner(
        &self,
        node: NodeId,
        room: Option<RoomId>,
        cmd: NodeCommand,
        rebind: Option<(SessionId, shared::ids::HandleId, RoomId)>,
    ) -> Result<RpcResult, GatewayError> {
        let first = self.call_node(node.clone(), cmd.clone()).await?;
        self.again_if_moved(first, node, room, cmd, rebind).await
    }

    /// `first`, the answer of `node` to `cmd`; when that node no longer owns `room`, the answer
    /// of the owner looked up once more (the handle re-bound there when `rebind` says so).
    async fn again_if_moved(
        &self,
        first: RpcResult,
        node: NodeId,
        room: Option<RoomId>,
        cmd: NodeCommand,
        rebind: Option<(SessionId, HandleId, RoomId)>,
    ) -> Result<RpcResult, GatewayError> {
        if first != RpcResult::WrongNode {
            return Ok(first);
        }
        let owner = self.node_for(room.clone()).await?;
        tracing::info!(?room, from = %node, to = %owner, "room owner changed; retrying there");
        if let Some((sid, hid, room)) = rebind {
            self.backends().store.bind_handle(sid, hid, Some(Binding { room, node: owner.clone() })).await?;
        }
        self.call_node(owner, cmd).await
    }

    /// The node that owns `room`: its current owner while that one is alive, else a node
    /// chosen now (which then owns it). Room-less requests go to any live node.
    pub(super) async fn node_for(&self, room: Option<RoomId>) -> Result<NodeId, GatewayError> {
        let Some(room) = room else { return self.pick_node().await };
        match self.backends().store.room_owner_status(room.clone()).await? {
            Some((owner, true)) => Ok(owner),
            status => self.place(room, status.map(|(dead, _)| dead)).await,
        }
    }

    /// A node for `room`, whose owner is `dead` (no longer registered) or none: one chosen
    /// now, which then owns it (or whoever another gateway placed it on meanwhile).
    async fn place(&self, room: RoomId, dead: Option<NodeId>) -> Result<NodeId, GatewayError> {
        let store = &self.backends().store;
        let candidate = self.pick_node().await?;
        match dead {
            Some(dead) => {
                tracing::info!(room = %room, dead = %dead, to = %candidate, "re-placing room of a lost node");
                Ok(store.replace_room_owner(room, &dead, &candidate, ROOM_LEASE_MS).await?)
            }
            None => Ok(store.place_room(room, &candidate, ROOM_LEASE_MS).await?),
        }
    }

    async fn pick_node(&self) -> Result<NodeId, GatewayError> {
        self.inner
            .nodes
            .send(Pick)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| GatewayError::NodeUnavailable("no media node is registered".into()))
    }

    pub(super) async fn call_node(&self, node: NodeId, cmd: NodeCommand) -> Result<RpcResult, GatewayError> {
        let timeout = Duration::from_millis(self.cfg().rpc_timeout_ms);
        self.inner.rpc.call(node, cmd, timeout).await.map_err(GatewayError::NodeUnavailable)
    }

    /// Asks a media node to drain (admin API).
    pub async fn drain_node(&self, node: NodeId) -> Result<(), GatewayError> {
        let deadline_secs = self.cfg().drain_timeout;
        match self.call_node(node, NodeCommand::Drain { deadline_secs }).await? {
            RpcResult::Accepted => Ok(()),
            other => Err(GatewayError::NodeUnavailable(format!("unexpected answer {other:?}"))),
        }
    }

    /// Tells every live media node that `knob` turned, each at once; a node that does not
    /// answer reads it from the store with its next heartbeat.
    pub(crate) async fn tune_nodes(&self, knob: shared::tuning::Knob) -> Result<(), GatewayError> {
        let nodes = self.backends().store.live_nodes().await?;
        let told = nodes.into_iter().map(|n| async move {
            if let Err(e) = self.call_node(n.node.clone(), NodeCommand::Tune(knob)).await {
                tracing::warn!(node = %n.node, error = %e, ?knob, "media node not told of a knob turned");
            }
        });
        futures_util::future::join_all(told).await;
        Ok(())
    }

    /// Every live node's media workers (`loops_info`): each `{"id", "handles"}` with its node's
    /// name; a node that does not answer is left out (and logged).
    pub(crate) async fn loops(&self) -> Result<Vec<serde_json::Value>, GatewayError> {
        let nodes = self.backends().store.live_nodes().await?;
        let asked = nodes.into_iter().map(|n| async move {
            match self.call_node(n.node.clone(), NodeCommand::Loops).await {
                Ok(RpcResult::Sync(serde_json::Value::Array(loops))) => loops
                    .into_iter()
                    .map(|mut l| {
                        l["node"] = serde_json::json!(n.node.to_string());
                        l
                    })
                    .collect(),
                other => {
                    tracing::warn!(node = %n.node, answer = ?other, "media node did not list its workers");
                    Vec::new()
                }
            }
        });
        Ok(futures_util::future::join_all(asked).await.into_iter().flatten().collect())
    }

    /// A command whose answer would change nothing (a trickle, a handle gone): sent asking for
    /// no reply; a failure to send it is logged. A node that is gone is cleaned up after by the
    /// lost-node path, which tells the handle's client.
    pub(super) async fn notify_node(&self, node: NodeId, cmd: NodeCommand) {
        let timeout = Duration::from_millis(self.cfg().rpc_timeout_ms);
        let told = self.inner.rpc.tell(&node, cmd, timeout).await;
        if let Err(e) = told {
            tracing::warn!(error = %e, "media node not told of a trickle or a handle going away");
        }
    }
}
