//! The node channel's commands: each RPC decoded and answered, those that need no room
//! (`create`, `exists`, `list`) here, the rest handed to their room (`rooms.rs`).

use super::rooms::Pending;
use super::{Drain, NodeAgent};
use crate::outbox::Write;
use crate::room::messages::{Async, Gone};
use crate::room::state::Who;
use actix::prelude::*;
use shared::ids::RoomId;
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::videoroom::{
    AsyncName, AsyncRequest, RoomConfig, SyncRequest, VideoRoomEvent as Event, VideoRoomRequest,
};
use shared::store::StoreError;
use shared::wire::{CaptureAnswer, NodeCommand, RpcResult};
use shared::Backends;

/// How long a capture's stop waits for its file to be written, inside the gateways' RPC deadline.
const CAPTURE_CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

impl NodeAgent {
    pub(super) fn on_command(&mut self, reply_to: String, corr_id: u64, cmd: NodeCommand, ctx: &mut Context<Self>) {
        if self.drained.is_none() {
            // The drain is over: whatever comes now could not be answered before the exit.
            self.outbox.reply(reply_to, corr_id, RpcResult::Failed("media node shutting down".into()));
            return;
        }
        match cmd {
            NodeCommand::Plugin { session, handle, transaction, request, jsep, bound_room, capture } => {
                let who = Who { session, handle };
                let _span = tracing::debug_span!("plugin", session = %session, handle = %handle).entered();
                match request {
                    VideoRoomRequest::Sync(req) => match req.room() {
                        Some(room) => self.to_room(room, Pending::Sync { reply_to, corr_id, req }, ctx),
                        None => self.roomless(reply_to, corr_id, req),
                    },
                    VideoRoomRequest::Async { name, parsed } => {
                        let room = bound_room.or_else(|| match &parsed {
                            Ok(AsyncRequest::Join(j)) => Some(j.room.clone()),
                            _ => None,
                        });
                        match room {
                            Some(room) => {
                                let msg = Async { who, transaction, name, parsed, jsep, capture, ack: None };
                                self.to_room(room, Pending::Async { reply_to, corr_id, msg }, ctx)
                            }
                            None => {
                                self.outbox.reply(reply_to, corr_id, RpcResult::Accepted);
                                let e = match (name, parsed) {
                                    (AsyncName::Join | AsyncName::JoinAndConfigure, Err(e)) => e,
                                    (n @ AsyncName::JoinAndConfigure, _) => crate::room::state::media_unavailable(n),
                                    _ => VideoRoomError::new(
                                        VideoRoomCode::JoinFirst,
                                        "Invalid request on unconfigured participant",
                                    ),
                                };
                                self.error_event(who, transaction, &e);
                            }
                        }
                    }
                }
            }
            NodeCommand::Trickle { session, handle, room, candidates } => {
                self.outbox.reply(reply_to, corr_id, RpcResult::Accepted);
                if let Some(r) = self.rooms.get(&room) {
                    r.addr.do_send(crate::room::messages::Trickle { who: Who { session, handle }, candidates });
                }
            }
            NodeCommand::HandleInfo { session, handle, room } => {
                let Some(addr) = self.rooms.get(&room).map(|r| r.addr.clone()) else {
                    self.outbox.reply(reply_to, corr_id, RpcResult::Sync(serde_json::Value::Null));
                    return;
                };
                let outbox = self.outbox.clone();
                let floor = self.media.tuning.min_nack_queue();
                actix::spawn(async move {
                    let answer = match addr.send(crate::room::messages::Query(Who { session, handle })).await {
                        Ok(Some(answer)) => {
                            let mut info = serde_json::json!({"plugin_specific": answer.info.to_json()});
                            if let Some(pc) = answer.pc {
                                let (webrtc, sdps) = crate::media::stats::summary(&pc, floor).await;
                                info["webrtc"] = webrtc;
                                info["sdps"] = sdps;
                            }
                            if let Some((format, file)) = answer.capture {
                                info["capture"] = serde_json::json!({"format": format.name(), "file": file});
                            }
                            info
                        }
                        _ => serde_json::Value::Null,
                    };
                    outbox.reply(reply_to, corr_id, RpcResult::Sync(answer));
                });
            }
            NodeCommand::Capture { session, handle, room, start } => {
                let Some(addr) = self.rooms.get(&room).map(|r| r.addr.clone()) else {
                    self.outbox.reply(reply_to, corr_id, RpcResult::Sync(CaptureAnswer::NoHandle.to_value()));
                    return;
                };
                let outbox = self.outbox.clone();
                actix::spawn(async move {
                    let order = crate::room::messages::CaptureOrder { who: Who { session, handle }, start };
                    let answer = match addr.send(order).await {
                        Ok((answer, None)) => answer,
                        // A stop answers once the file has what was captured (a stuck disk:
                        // it answers anyway, the writer finishing on its own).
                        Ok((answer, Some(written))) => {
                            let _ = tokio::time::timeout(CAPTURE_CLOSE_TIMEOUT, written).await;
                            answer
                        }
                        Err(_) => CaptureAnswer::NoHandle,
                    };
                    outbox.reply(reply_to, corr_id, RpcResult::Sync(answer.to_value()));
                });
            }
            NodeCommand::PrepareCapture(spec) => {
                // Off the agent's thread: a slow filesystem holds up this answer alone.
                let (outbox, protected) = (self.outbox.clone(), self.media.protected_folders.clone());
                actix::spawn(async move {
                    let made =
                        tokio::task::spawn_blocking(move || crate::media::capture::prepare(&spec, &protected)).await;
                    let answer = match made {
                        Ok(Ok(())) => CaptureAnswer::Started,
                        Ok(Err(why)) => CaptureAnswer::CannotStart(why),
                        Err(e) => CaptureAnswer::CannotStart(e.to_string()),
                    };
                    outbox.reply(reply_to, corr_id, RpcResult::Sync(answer.to_value()));
                });
            }
            NodeCommand::Drain { deadline_secs } => {
                self.outbox.reply(reply_to, corr_id, RpcResult::Accepted);
                ctx.notify(Drain { deadline_secs });
            }
            NodeCommand::Loops => {
                let loops: Vec<serde_json::Value> = self
                    .workers
                    .served()
                    .into_iter()
                    .map(|(w, handles)| serde_json::json!({"id": w.0, "handles": handles}))
                    .collect();
                self.outbox.reply(reply_to, corr_id, RpcResult::Sync(loops.into()));
            }
            NodeCommand::Tune(knob) => {
                tracing::info!(node = %self.node, ?knob, "media knob turned");
                self.media.tuning.turn(knob);
                self.tunes += 1;
                self.outbox.reply(reply_to, corr_id, RpcResult::Accepted);
            }
            NodeCommand::HandleGone { session, handle, room, reason } => {
                self.outbox.reply(reply_to, corr_id, RpcResult::Accepted);
                let m = Gone { who: Who { session, handle }, reason };
                if self.rooms.contains_key(&room) || self.loading.contains_key(&room) {
                    self.to_room(room, Pending::Gone(m), ctx);
                }
            }
        }
    }

    /// `create`, `exists`, `list` and requests that failed validation: answered from the store.
    fn roomless(&mut self, reply_to: String, corr_id: u64, req: SyncRequest) {
        let b = self.backends.clone();
        let outbox = self.outbox.clone();
        let max_rooms = self.max_rooms;
        let job = async move {
            let data = match req {
                SyncRequest::Create { room, config, string_ids } => {
                    create_room(&b, room, &config, string_ids, max_rooms).await
                }
                SyncRequest::Exists { room } => match b.store.room(room.clone()).await {
                    Ok(r) => Event::Exists { room, exists: r.is_some() },
                    Err(e) => store_failure(e),
                },
                SyncRequest::List { private } => match b.store.list_rooms().await {
                    Ok(rooms) => Event::List(
                        rooms
                            .into_iter()
                            .filter(|r| private || !r.config.is_private)
                            .map(|r| (r.config, r.participants))
                            .collect(),
                    ),
                    Err(e) => store_failure(e),
                },
                SyncRequest::Invalid(e) => Event::Error(e),
                other => Event::Error(VideoRoomError::new(
                    VideoRoomCode::UnknownError,
                    format!("request {other:?} needs a room"),
                )),
            };
            outbox.reply(reply_to, corr_id, RpcResult::Sync(data.to_json()));
        };
        self.outbox.send(Write::Run(Box::pin(job)));
    }
}

async fn create_room(
    b: &Backends,
    room: Option<RoomId>,
    config: &serde_json::Map<String, serde_json::Value>,
    string_ids: bool,
    max_rooms: usize,
) -> Event {
    if config.get("permanent").and_then(serde_json::Value::as_bool) == Some(true) {
        return Event::Error(VideoRoomError::new(
            VideoRoomCode::UnknownError,
            "No configuration file, can't create permanent room",
        ));
    }
    // A made-up id is retried on the (unlikely) collision, like Janus's loop.
    for _ in 0..8 {
        // A string id under `string_ids`, as the request's parser decided.
        let id = room.clone().unwrap_or_else(|| RoomId::random_of(string_ids));
        let cfg = match RoomConfig::from_create(config, id.clone()) {
            Ok(c) => c,
            Err(e) => return Event::Error(e),
        };
        match b.store.create_room(cfg, max_rooms).await {
            Ok(()) => {
                tracing::info!(room = %id, "room created");
                return Event::Created { room: id, permanent: false };
            }
            Err(StoreError::Conflict) if room.is_none() => continue,
            Err(StoreError::Conflict) => {
                return Event::Error(VideoRoomError::new(
                    VideoRoomCode::RoomExists,
                    format!("Room {id} already exists"),
                ))
            }
            Err(StoreError::Limit) => {
                return Event::Error(VideoRoomError::new(
                    VideoRoomCode::UnknownError,
                    format!("Too many rooms (limit {max_rooms})"),
                ))
            }
            Err(e) => return store_failure(e),
        }
    }
    Event::Error(VideoRoomError::new(VideoRoomCode::UnknownError, "Could not allocate a room id"))
}

fn store_failure(e: StoreError) -> Event {
    Event::Error(VideoRoomError::new(VideoRoomCode::UnknownError, format!("State store unavailable: {e}")))
}
