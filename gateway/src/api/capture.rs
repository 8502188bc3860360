//! The Admin API's packet captures (`start_pcap`/`stop_pcap` and their text2pcap twins). A
//! capture belongs to its handle, as in Janus, and lasts until it is stopped or the handle is
//! detached: the store keeps it in the handle's record, the media node holding the handle's room
//! writes it, and a handle that joins a room later takes it along (its room starts writing it).

use super::error::GatewayError;
use super::Dispatcher;
use shared::janus::admin::CaptureSpec;
use shared::store::HandleRecord;
use shared::wire::{CaptureAnswer, NodeCommand, RpcResult};

impl Dispatcher {
    /// Starts `h`'s capture: in its room at once; for a handle in no room, the file is made now
    /// (as Janus makes it) by a node, and written once the handle joins.
    pub(crate) async fn start_capture(
        &self,
        h: &HandleRecord,
        spec: CaptureSpec,
    ) -> Result<CaptureAnswer, GatewayError> {
        if h.capture.is_some() {
            return Ok(CaptureAnswer::AlreadyStarted);
        }
        // Named here, so that every node that writes it writes the same file.
        let spec = spec.named();
        let answer = match self.capture_in_room(h, Some(spec.clone())).await? {
            // In no room, or bound to one that does not have it yet (its join on the way): the
            // file is made now, on the room's node if there is one.
            None | Some(CaptureAnswer::NoHandle) => {
                let node = match &h.binding {
                    Some(b) => b.node.clone(),
                    None => self.node_for(None).await?,
                };
                capture_answer(self.call_node(node, NodeCommand::PrepareCapture(spec.clone())).await?)?
            }
            Some(answer) => answer,
        };
        if answer != CaptureAnswer::Started {
            return Ok(answer);
        }
        Ok(match self.backends().store.set_handle_capture(h.session, h.id, Some(spec)).await? {
            Some(true) => CaptureAnswer::Started,
            // Another start came first.
            Some(false) => CaptureAnswer::AlreadyStarted,
            None => CaptureAnswer::NoHandle,
        })
    }

    /// Stops `h`'s capture: the handle's record lets go of it, then its room stops writing it.
    pub(crate) async fn stop_capture(&self, h: &HandleRecord) -> Result<CaptureAnswer, GatewayError> {
        let kept = self.backends().store.set_handle_capture(h.session, h.id, None).await?;
        // The record lets go either way (what handle_info shows, what a join takes along); a node
        // that answers too late still stops writing when it takes the stop.
        let in_room = self.capture_in_room(h, None).await.unwrap_or_else(|e| {
            tracing::warn!(session = %h.session, handle = %h.id, error = %e, "capture stop not confirmed by the node");
            None
        });
        Ok(match (kept, in_room) {
            (None, _) => CaptureAnswer::NoHandle,
            (Some(true), _) | (_, Some(CaptureAnswer::Stopped)) => CaptureAnswer::Stopped,
            (Some(false), _) => CaptureAnswer::NotStarted,
        })
    }

    /// `start` (or a stop) run by the room `h` is bound to; `None` when it is bound to none.
    async fn capture_in_room(
        &self,
        h: &HandleRecord,
        start: Option<CaptureSpec>,
    ) -> Result<Option<CaptureAnswer>, GatewayError> {
        let cmd = |room| NodeCommand::Capture { session: h.session, handle: h.id, room, start };
        let Some(v) = self.ask_handle_node(h, cmd).await? else { return Ok(None) };
        capture_answer(RpcResult::Sync(v)).map(Some)
    }
}

fn capture_answer(r: RpcResult) -> Result<CaptureAnswer, GatewayError> {
    let RpcResult::Sync(v) = r else {
        return Err(GatewayError::NodeUnavailable(format!("unexpected answer {r:?}")));
    };
    CaptureAnswer::from_value(v)
        .ok_or_else(|| GatewayError::NodeUnavailable("the node's capture answer did not parse".into()))
}
