//! `RoomActor`: one per active room, the only owner of that room's state. It is a thin shell
//! over [`state::RoomState`]: it feeds messages in and sends what comes out through the
//! node's [`Outbox`](crate::outbox::Outbox).
//!
//! Messages ([`messages`]): `Sync` (create/edit/destroy/... answers), `Async` (join, leave, ...:
//! results as events), `Gone` (hangup, detach, session end).

pub mod messages;
pub mod state;

use crate::outbox::{Outbox, Write};
use actix::{Actor, Context, Handler, MessageResult};
use messages::{Async, Gone, Sync, SyncAnswer};
use shared::ids::NodeId;
use shared::janus::videoroom::{self as vr, SyncRequest};
use shared::store::Binding;
use state::{Membership, Outcome, RoomState};

pub struct RoomActor {
    state: RoomState,
    node: NodeId,
    outbox: Outbox,
    span: tracing::Span,
}

impl RoomActor {
    pub fn new(state: RoomState, node: NodeId, outbox: Outbox) -> Self {
        let span = tracing::info_span!("room", room = %state.config().room, node = %node);
        Self { state, node, outbox, span }
    }

    /// Sends a transition's events and membership changes, in that transition's order:
    /// bindings first, so a client that reacts to `joined` finds its handle routed here.
    /// A handle that left stays bound so its later requests reach this room's answers ("Not in
    /// a room"); only a destroyed room unbinds (`unbind_left`).
    fn publish(&self, before: u64, out: Outcome, unbind_left: bool) {
        let room = self.state.config().room;
        for m in out.membership {
            match m {
                Membership::Joined(w) => {
                    let b = Some(Binding { room, node: self.node.clone() });
                    self.outbox.send(Write::Bind(w.session, w.handle, b));
                }
                Membership::Left(w) if unbind_left => self.outbox.send(Write::Bind(w.session, w.handle, None)),
                Membership::Rejected(w) => self.outbox.send(Write::Bind(w.session, w.handle, None)),
                Membership::Left(_) => {}
            }
        }
        for n in out.notices {
            self.outbox.plugin_event(n.to.session, n.to.handle, n.transaction, n.data);
        }
        let after = self.state.participant_count();
        if after != before {
            self.outbox.send(Write::Participants(room, after));
        }
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        let _g = self.span.enter();
        tracing::debug!("room active");
    }
}

impl Handler<Sync> for RoomActor {
    type Result = MessageResult<Sync>;

    fn handle(&mut self, Sync(req): Sync, ctx: &mut Context<Self>) -> Self::Result {
        let _g = self.span.enter();
        let before = self.state.participant_count();
        let answer = |r: Result<serde_json::Value, shared::janus::errors::VideoRoomError>| SyncAnswer {
            data: r.unwrap_or_else(|e| vr::error(&e)),
            room_closed: false,
        };
        let result = match req {
            SyncRequest::Edit(e) => {
                let r = self.state.edit(&e);
                if r.is_ok() {
                    self.outbox.send(Write::UpdateRoom(self.state.config().clone()));
                }
                answer(r)
            }
            SyncRequest::ListParticipants { .. } => answer(Ok(self.state.list_participants())),
            SyncRequest::Allowed { secret, action, allowed, .. } => {
                let r = self.state.allowed(secret.as_deref(), action, allowed.as_deref());
                if r.is_ok() {
                    self.outbox.send(Write::UpdateRoom(self.state.config().clone()));
                }
                answer(r)
            }
            SyncRequest::Kick { secret, id, .. } => match self.state.kick(secret.as_deref(), id) {
                Ok((data, out)) => {
                    self.publish(before, out, false);
                    answer(Ok(data))
                }
                Err(e) => answer(Err(e)),
            },
            SyncRequest::Destroy { secret, permanent, .. } => {
                match self.state.destroy(secret.as_deref(), permanent) {
                    Ok((data, out)) => {
                        self.publish(before, out, true);
                        self.outbox.send(Write::DeleteRoom(self.state.config().room));
                        tracing::info!("room destroyed");
                        actix::ActorContext::stop(ctx);
                        SyncAnswer { data, room_closed: true }
                    }
                    Err(e) => answer(Err(e)),
                }
            }
            // The agent answers room-less requests itself; reaching here is a routing bug.
            other => answer(Err(shared::janus::errors::VideoRoomError::new(
                shared::janus::errors::VideoRoomCode::UnknownError,
                format!("request {other:?} misrouted to a room"),
            ))),
        };
        MessageResult(result)
    }
}

impl Handler<Async> for RoomActor {
    type Result = ();

    fn handle(&mut self, m: Async, _: &mut Context<Self>) {
        let _g = self.span.enter();
        let before = self.state.participant_count();
        let out = self.state.on_async(m.who, &m.transaction, m.name, m.parsed);
        self.publish(before, out, false);
    }
}

impl Handler<Gone> for RoomActor {
    type Result = ();

    fn handle(&mut self, m: Gone, _: &mut Context<Self>) {
        let _g = self.span.enter();
        let before = self.state.participant_count();
        let out = self.state.on_gone(m.who, m.reason);
        self.publish(before, out, false);
    }
}
