//! Session-level requests (`create`, `claim`, `destroy`) and the one way a session ends, shared
//! by `destroy`, the reaper and closing transports.

use super::auth::Principal;
use super::error::GatewayError;
use super::{ConnCtx, Dispatcher, Outcome, SessionEffect};
use shared::ids::SessionId;
use shared::janus::reply::{Event, Reply};
use shared::janus::request::Envelope;
use shared::keys;
use shared::store::{Claim, NewSession, StoreError};
use shared::wire::{GoneReason, NodeCommand, Signal};

/// Why a session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The client sent `destroy`.
    Destroyed,
    /// The keepalive deadline (or reclaim window) passed: a `timeout` event goes out first.
    Timeout,
    /// Its WebSocket closed and sessions are not reclaimable.
    TransportGone,
}

impl Dispatcher {
    pub(super) async fn create(&self, env: &Envelope, ctx: ConnCtx) -> Result<Outcome, GatewayError> {
        let cfg = self.cfg();
        if !self.accepting() {
            return Err(GatewayError::NotAccepting);
        }
        let principal = self.auth().check(self.backends().store.as_ref(), &env.credentials()).await?;
        if ctx.owner.is_some() && ctx.owned_sessions >= cfg.max_sessions_per_connection {
            return Err(GatewayError::TooManyConnectionSessions(cfg.max_sessions_per_connection));
        }
        let timeout_ms = cfg.session_timeout * 1000;
        let fingerprint = principal.fingerprint();
        let relay = self.backends().bus.relay().filter(|_| ctx.owner.is_some());
        let new =
            NewSession { requested: env.requested_id, timeout_ms, owner: ctx.owner, principal: &fingerprint, relay };
        let created = self.backends().store.create_session(new, cfg.max_sessions).await;
        let sid = match created {
            Ok(s) => s,
            Err(StoreError::Conflict) => {
                return Err(GatewayError::SessionConflict(env.requested_id.unwrap_or(SessionId(0))))
            }
            Err(StoreError::Limit) => return Err(GatewayError::TooManySessions(cfg.max_sessions)),
            Err(e) => return Err(e.into()),
        };
        // A WebSocket session's events reach it through a subscription: without one the
        // session would be created deaf, so no subscription, no session.
        let effect = match ctx.owner {
            None => None,
            Some(_) => match self.event_path(sid).await {
                Ok(sub) => Some(SessionEffect::Created(sid, sub)),
                Err(e) => {
                    let _ = self.backends().store.destroy_session(sid, None, None).await;
                    return Err(e);
                }
            },
        };
        tracing::info!(session = %sid, transport = ?ctx.transport, "session created");
        Ok(Outcome { effect, ..Outcome::reply(Reply::with_id(None, &env.transaction, sid.0)) })
    }

    /// Subscribes to a session's wake-ups for the connection that will consume its events,
    /// through this process's relay (the session records it): no subscription of its own at
    /// the server.
    async fn event_path(&self, sid: SessionId) -> Result<shared::bus::Subscription, GatewayError> {
        self.backends().bus.subscribe_relayed(&keys::session_channel(sid)).await.map_err(|e| {
            tracing::warn!(session = %sid, error = %e, "cannot subscribe to session events");
            GatewayError::Store(format!("cannot subscribe to the session's events: {e}"))
        })
    }

    /// `claim`: only with the credentials the session was created with (beyond Janus, which
    /// lets any valid credentials claim any session: a leaked session id must not be enough).
    pub(super) async fn claim(
        &self,
        sid: SessionId,
        txn: &str,
        ctx: ConnCtx,
        principal: &Principal,
    ) -> Result<Outcome, GatewayError> {
        let reply = Reply::success(Some(sid), txn);
        let Some(owner) = ctx.owner else {
            // HTTP has no connection to move events to; like Janus, claiming is a no-op there.
            return match self.backends().store.session(sid).await? {
                Some(s) if !s.principal.is_empty() && s.principal != principal.fingerprint() => {
                    Err(GatewayError::Unauthorized)
                }
                _ => Ok(Outcome::reply(reply)),
            };
        };
        // The event path first: a claim that could not deliver events must not take the
        // session from its current owner.
        let sub = self.event_path(sid).await?;
        let b = self.backends();
        match b.store.claim_session(sid, owner, &principal.fingerprint(), b.bus.relay()).await? {
            Claim::Claimed => {}
            Claim::NoSuchSession => return Err(GatewayError::NoSuchSession(sid)),
            Claim::WrongPrincipal => return Err(GatewayError::Unauthorized),
        }
        // Tell a previous owner (on any gateway) to stop consuming this session's events (a
        // store that signals sessions did, with the claim).
        if !b.store.signals_sessions() {
            let signal = Signal::Claimed { owner }.to_bytes();
            if let Err(e) = b.bus.publish(&keys::session_channel(sid), signal).await {
                tracing::warn!(session = %sid, error = %e, "claim signal not published");
            }
        }
        tracing::info!(session = %sid, "session claimed");
        Ok(Outcome { effect: Some(SessionEffect::Owned(sid, sub)), ..Outcome::reply(reply) })
    }

    /// `destroy`: ends the session without touching it first (the end is its last activity), so
    /// a session that does not exist is found out here. `by`: the connection asking, which stops
    /// consuming the session itself when it owns it (reading what is left first).
    pub(crate) async fn destroy(&self, sid: SessionId, txn: &str, by: Option<u64>) -> Result<Outcome, GatewayError> {
        let Some(queued) = self.end(sid, EndReason::Destroyed, by).await? else {
            return Err(GatewayError::NoSuchSession(sid));
        };
        let effect = if queued == 0 { SessionEffect::Released(sid) } else { SessionEffect::Ending(sid) };
        Ok(Outcome { effect: Some(effect), ..Outcome::reply(Reply::success(Some(sid), txn)) })
    }

    /// Ends a session exactly once: leaves `timeout` in its mailbox when it timed out, signals
    /// its consumers that it is over, and detaches its handles on their media nodes (the rooms
    /// tell the others). False when there was no session to end (someone else ended it).
    pub async fn end_session(&self, sid: SessionId, reason: EndReason) -> Result<bool, StoreError> {
        Ok(self.end(sid, reason, None).await?.is_some())
    }

    /// [`Dispatcher::end_session`] by connection `by` (see `Store::destroy_session`): the
    /// events left in the mailbox, `None` when there was no session to end.
    async fn end(&self, sid: SessionId, reason: EndReason, by: Option<u64>) -> Result<Option<usize>, StoreError> {
        let b = self.backends();
        // Gone first, then told: a client that polls again after reading `timeout` must find
        // no session (404, as Janus). The mailbox outlives the session for its grace period,
        // so a parked long-poll or the owning WebSocket still receives the event.
        let last = (reason == EndReason::Timeout).then(|| Event::Timeout { session_id: sid }.to_bytes().into());
        let ended = match b.store.destroy_session(sid, last, by).await {
            Ok(Some(e)) => e,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!(session = %sid, error = %e, "session teardown failed");
                return Err(e);
            }
        };
        if !b.store.signals_sessions() {
            let over = Signal::Over.to_bytes();
            if let Err(e) = b.bus.publish(&keys::session_channel(sid), over).await {
                tracing::warn!(session = %sid, error = %e, "session-over signal not published");
            }
        }
        let queued = ended.queued;
        for h in ended.handles {
            if let Some(binding) = h.binding {
                let cmd = NodeCommand::HandleGone {
                    session: sid,
                    handle: h.id,
                    room: binding.room,
                    reason: GoneReason::Detached,
                };
                self.notify_node(binding.node, cmd).await;
            }
        }
        tracing::info!(session = %sid, ?reason, "session ended");
        Ok(Some(queued))
    }
}
