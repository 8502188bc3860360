//! What the cluster does for the clients of a media node that is gone without a goodbye: it
//! stopped beating (a gateway won it from the registry), or it came back as a new incarnation
//! under the same name (a crashed pod of a StatefulSet restarts in seconds, before its
//! registration lapses, and holds none of its old rooms' peers).

use crate::ids::{HandleId, NodeId, SessionId};
use crate::janus::reply::Event;
use crate::Backends;

/// What a client is told when the media node holding its handle's room is lost.
pub const NODE_LOST_REASON: &str = "Media node lost";

/// Each handle bound to a room on `node` is unbound and gets a `hangup`, so its client can join
/// again; the node's rooms are placed afresh on their next use. Safe to run twice or from two
/// processes at once: a handle is unbound, and so told, once.
pub async fn hang_up(b: &Backends, node: &NodeId) {
    match b.store.node_handles(node).await {
        Ok(handles) => hang_up_handles(b, node, handles).await,
        Err(e) => tracing::warn!(node = %node, error = %e, "cannot list the lost node's handles"),
    }
}

/// [`hang_up`] for these handles of `node` only (a draining node's, still in its rooms).
pub async fn hang_up_handles(b: &Backends, node: &NodeId, handles: Vec<(SessionId, HandleId)>) {
    if !handles.is_empty() {
        tracing::warn!(node = %node, handles = handles.len(), "media node gone: hanging up its handles");
    }
    for (sid, hid) in handles {
        match b.store.unbind_handle_from(sid, hid, node).await {
            Ok(true) => {}
            Ok(false) => continue, // Already moved or told.
            Err(e) => {
                tracing::warn!(session = %sid, handle = %hid, error = %e, "cannot unbind a handle of a lost node");
                continue;
            }
        }
        let ev = Event::Hangup { session_id: sid, sender: hid, reason: NODE_LOST_REASON.into() };
        if let Err(e) = b.deliver(sid, ev.to_bytes().into()).await {
            tracing::warn!(session = %sid, error = %e, "hangup not delivered");
        }
    }
}
