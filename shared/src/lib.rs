//! The vocabulary every Portunus process speaks.
//!
//! `shared` owns the Janus wire protocol (parsing requests at the edge into typed values and
//! building replies with Janus's exact shapes), the envelopes that travel on the bus between
//! gateways and media nodes, the `Bus` and `Store` traits with their in-memory twins, the
//! configuration schema and tracing setup. It deliberately knows nothing of actix, HTTP or WebRTC.
//!
//! # Layout
//! - [`ids`]: session, handle, room and participant ids (random, 53-bit, like Janus).
//! - [`clock`]: injected time, so session rules are testable without sleeping.
//! - [`janus`]: the Janus API: errors, request parsing, replies, the VideoRoom plugin vocabulary.
//! - [`wire`]: bus envelopes between gateways and media nodes.
//! - [`keys`]: every bus channel name, in one place.
//! - [`lost_node`]: hanging up the clients of a media node that is gone without a goodbye.
//! - [`secret`]: constant-time comparison of secrets.
//! - [`redis_conn`]: the Redis connection of the store and the bus (reconnects; resends what never left).
//! - [`redis_link`]: one pipelined Redis connection (its own task, replies read by [`resp`]).
//! - [`redis_subscriber`]: a Redis connection in subscriber mode (the bus's messages).
//! - [`resp`]: Redis's replies read into redis-rs's values.
//! - [`bus`]: publish/subscribe trait and the in-memory implementation.
//! - [`store`]: domain-level state trait (sessions, handles, mailboxes, rooms) and the in-memory implementation.
//! - [`config`]: the configuration schema, loaded with the `config` crate.
//! - [`telemetry`]: tracing subscriber setup (its filter can be changed live: `set_log_level`).
//! - [`shutdown`]: SIGTERM/SIGINT as a stream (drain, then exit).
//! - [`heap`]: the binaries' heap allocator (jemalloc) and its statistics.
//! - [`task`]: work that usually finishes at once, run in place (a task only when it does not).
//! - [`tuning`]: the media knobs the Admin API turns while the cluster runs (no-media timer, ...).
//! - `testing` (feature `testing`): the conformance suites every `Store` and `Bus` must pass.

pub mod bus;
pub mod clock;
pub mod config;
pub mod heap;
pub mod ids;
pub mod janus;
pub mod keys;
pub mod lost_node;
pub mod media;
pub mod redis_conn;
pub mod redis_link;
pub mod redis_subscriber;
pub mod resp;
pub mod secret;
pub mod shutdown;
pub mod store;
pub mod stun_probe;
pub mod task;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tuning;
pub mod wire;

use std::sync::Arc;

/// How often, and how many times, a failed wake-up is published again (10 s in all).
const WAKE_RETRY_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
const WAKE_RETRIES: usize = 40;

/// The two distributed dependencies every process is built on: in standalone mode their
/// in-memory twins, in cluster mode their Redis implementations.
#[derive(Clone)]
pub struct Backends {
    pub store: Arc<dyn store::Store>,
    pub bus: Arc<dyn bus::Bus>,
}

/// A process's Redis connections before they open (see [`Backends::redis_unstarted`]).
pub struct RedisIo {
    store: redis_conn::Conn,
    probe: redis_conn::Probe,
    bus: bus::BusIo,
}

impl RedisIo {
    /// Opens the connections (their I/O tasks and the health probe then run on this thread);
    /// fails when Redis does not answer.
    pub async fn start(self) -> Result<(), String> {
        self.store.ping().await.map_err(|e| e.to_string())?;
        self.bus.start().await.map_err(|e| e.to_string())?;
        tokio::spawn(self.probe.run());
        Ok(())
    }
}

impl Backends {
    /// In-memory backends (standalone mode and tests).
    pub fn memory() -> Self {
        Self { store: Arc::new(store::MemoryStore::default()), bus: Arc::new(bus::MemoryBus::new()) }
    }

    /// Redis backends (cluster mode): state and pub/sub on the server at `url`, their I/O on
    /// this thread.
    pub async fn redis(url: &str) -> Result<Self, String> {
        let (backends, io) = Self::redis_unstarted(url)?;
        io.start().await?;
        Ok(backends)
    }

    /// Redis backends whose connections open when [`RedisIo::start`] runs, on that thread: a
    /// process whose requests are served on another thread than the one that builds its
    /// backends starts them there, so that its Redis I/O does not change threads.
    pub fn redis_unstarted(url: &str) -> Result<(Self, RedisIo), String> {
        let (store, probe) =
            store::RedisStore::unstarted(url, Arc::new(clock::SystemClock)).map_err(|e| e.to_string())?;
        // One view of Redis's health for both: they flip to unreachable and back together.
        let (bus, bus_io) = bus::RedisBus::unstarted(url, store.conn()).map_err(|e| e.to_string())?;
        let io = RedisIo { store: store.conn().clone(), probe, bus: bus_io };
        Ok((Self { store: Arc::new(store), bus: Arc::new(bus) }, io))
    }

    /// Appends an event to a session's mailbox and wakes whoever consumes it. The push comes
    /// first so a consumer woken by the signal always finds the event. An event pushed whose
    /// wake-up could not be published (the bus failed in between) is not left waiting for the
    /// next one: the wake-up is sent again in the background, a few times (waking twice is
    /// harmless: a consumer only drains its mailbox).
    pub async fn deliver(&self, sid: ids::SessionId, event: bytes::Bytes) -> Result<(), store::StoreError> {
        self.deliver_many(&[(sid, event)]).await
    }

    /// [`Backends::deliver`] for a batch, in order: the events in one step, then one wake-up per
    /// session. A store that signals sessions (Redis) publishes the wake-ups from the step that
    /// pushes the events (one round trip for all); otherwise they are published after.
    pub async fn deliver_many(&self, events: &[(ids::SessionId, bytes::Bytes)]) -> Result<(), store::StoreError> {
        self.deliver_after(&[], events).await
    }

    /// [`Backends::deliver_many`] after publishing `first` in order (messages to other processes,
    /// each with its channel: a node's RPC acknowledgements, a gateway's word to a node that a
    /// handle is gone). A store that signals sessions publishes them from the same step as the
    /// events (one round trip, and the receiver of an acknowledgement reads it with the
    /// wake-up); otherwise they are sent on the bus first.
    pub async fn deliver_after(
        &self,
        first: &[(String, std::sync::Arc<dyn bus::Message>)],
        events: &[(ids::SessionId, bytes::Bytes)],
    ) -> Result<(), store::StoreError> {
        if self.store.signals_sessions() {
            let first: Vec<(String, bytes::Bytes)> = first.iter().map(|(c, m)| (c.clone(), m.encode())).collect();
            return self.store.push_events_after(&first, events).await;
        }
        for (channel, message) in first {
            if let Err(e) = self.bus.send(channel, message.clone()).await {
                tracing::warn!(channel = %channel, error = %e, "message ahead of events not published");
            }
        }
        self.store.push_events(events).await?;
        let wake = wire::Signal::Wake.to_bytes();
        let mut woken: Vec<ids::SessionId> = Vec::with_capacity(events.len());
        for (sid, _) in events {
            if !woken.contains(sid) {
                woken.push(*sid);
            }
        }
        let wakes: Vec<(String, bytes::Bytes)> =
            woken.iter().map(|s| (keys::session_channel(*s), wake.clone())).collect();
        if let Err(e) = self.bus.publish_many(&wakes).await {
            tracing::warn!(sessions = wakes.len(), error = %e, "wake-ups not published; retrying");
            let bus = self.bus.clone();
            tokio::spawn(async move {
                for _ in 0..WAKE_RETRIES {
                    tokio::time::sleep(WAKE_RETRY_EVERY).await;
                    if bus.publish_many(&wakes).await.is_ok() {
                        return;
                    }
                }
                tracing::warn!("wake-ups never published; the events wait for the next ones");
            });
        }
        Ok(())
    }

    /// An asynchronous request to a handle: the session touched, the handle read (a `join`'s
    /// room owner looked up and the handle bound there, as `Store::touch_session_handle`) and
    /// the envelope `send` makes (given the room it names) published where
    /// [`store::SentTo::of`] says, in one step where the store can. `None` when there is no
    /// such session, `Some(None)` when there is no such handle; beside the handle, where the
    /// envelope went (nowhere when the bus refused it: the caller then sends it itself).
    pub async fn touch_handle_sending(
        &self,
        sid: ids::SessionId,
        hid: ids::HandleId,
        join: Option<&ids::RoomId>,
        send: impl FnOnce(Option<ids::RoomId>) -> wire::RpcEnvelope,
    ) -> Result<Option<Option<(store::FoundHandle, Option<store::SentTo>)>>, store::StoreError> {
        if self.store.signals_sessions() {
            let send = match join {
                Some(_) => wire::AroundRoom::whole(&send(None)),
                None => wire::AroundRoom::of(|room| send(Some(room))),
            };
            return match self.store.touch_session_handle_sending(sid, hid, join, &send).await? {
                Some(Some((found, true))) => match store::SentTo::of(&found, join) {
                    Some(to) => Ok(Some(Some((found, Some(to))))),
                    // Published where the handle's record does not say: not a record of ours.
                    None => Err(store::StoreError::Unavailable(
                        "a request went where its handle's record does not say".into(),
                    )),
                },
                Some(Some((found, false))) => Ok(Some(Some((found, None)))),
                Some(None) => Ok(Some(None)),
                None => Ok(None),
            };
        }
        let found = match self.store.touch_session_handle(sid, hid, join).await? {
            Some(Some(found)) => found,
            Some(None) => return Ok(Some(None)),
            None => return Ok(None),
        };
        let Some(to) = store::SentTo::of(&found, join) else { return Ok(Some(Some((found, None)))) };
        let bound_room = to.bound_room.clone();
        let sent = match self.bus.send(&keys::node_rpc(&to.node), Arc::new(send(bound_room))).await {
            Ok(()) => Some(to),
            Err(e) => {
                tracing::warn!(session = %sid, handle = %hid, error = %e, "request to a handle's node not sent");
                None
            }
        };
        Ok(Some(Some((found, sent))))
    }

    /// A client's `detach`: the session touched and the handle removed, then (if it was bound)
    /// its node told it is gone and the session's `detached` event delivered, in that order.
    /// `None` when there is no such session, `Some(None)` when there is no such handle. A store
    /// that signals sessions does it all in one step; otherwise the steps go on the bus, and
    /// an event that could not be delivered after the handle went is logged, not returned.
    pub async fn detach_telling(
        &self,
        sid: ids::SessionId,
        hid: ids::HandleId,
    ) -> Result<Option<Option<store::HandleRecord>>, store::StoreError> {
        let event = janus::reply::Event::Detached { session_id: sid, sender: hid }.to_bytes();
        if self.store.signals_sessions() {
            let gone = wire::AroundRoom::handle_gone(sid, hid, wire::GoneReason::Detached);
            return self.store.touch_detach_handle_telling(sid, hid, &gone, event.into()).await;
        }
        let found = self.store.touch_detach_handle(sid, hid).await?;
        if let Some(Some(h)) = &found {
            let gone = h.binding.as_ref().map(|b| {
                let room = b.room.clone();
                let cmd = wire::NodeCommand::HandleGone {
                    session: sid,
                    handle: hid,
                    room,
                    reason: wire::GoneReason::Detached,
                };
                (keys::node_rpc(&b.node), Arc::new(wire::RpcEnvelope::told(cmd)) as Arc<dyn bus::Message>)
            });
            if let Err(e) = self.deliver_after(gone.as_slice(), &[(sid, event.into())]).await {
                tracing::warn!(session = %sid, error = %e, "detached event not delivered");
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_backends_deliver_acknowledgements_with_events() {
        crate::testing::delivery::run(&super::Backends::memory()).await;
    }
}
