//! How the Redis store writes and reads its records (domain records carry no serde).

use crate::ids::{HandleId, JanusId, NodeId, RoomId, SessionId};
use crate::store::{Binding, FoundHandle, HandleRecord};

/// A handle as stored: JSON written and read here only.
pub(super) fn encode_handle(h: &HandleRecord) -> String {
    let mut v = serde_json::json!({"plugin": h.plugin, "opaque_id": h.opaque_id});
    if let Some(b) = &h.binding {
        v["room"] = serde_json::json!(b.room.0.key());
        v["node"] = serde_json::json!(b.node.0);
    }
    if let Some(c) = &h.capture {
        v["capture"] = serde_json::json!(c);
    }
    v.to_string()
}

/// A touch script's answer: 0 without a session, else `{1}` without the handle, `{1, record}`,
/// or `{1, record, owner, registered}` after a join's owner lookup.
pub(super) fn touched_handle(sid: SessionId, hid: HandleId, r: ::redis::Value) -> Option<Option<FoundHandle>> {
    use ::redis::Value;
    let Value::Array(v) = r else { return None };
    let text = |i: usize| match v.get(i) {
        Some(Value::BulkString(b)) => std::str::from_utf8(b).ok(),
        _ => None,
    };
    let handle = text(1).and_then(|r| decode_handle(sid, hid, r));
    let owner = text(2).map(|n| (NodeId(n.to_owned()), matches!(v.get(3), Some(Value::Int(1)))));
    Some(handle.map(|handle| FoundHandle { handle, owner }))
}

pub(super) fn decode_handle(session: SessionId, id: HandleId, text: &str) -> Option<HandleRecord> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let binding = match (v["room"].as_str().and_then(JanusId::from_key), v["node"].as_str()) {
        (Some(room), Some(node)) => Some(Binding { room: RoomId(room), node: NodeId(node.to_owned()) }),
        _ => None,
    };
    Some(HandleRecord {
        id,
        session,
        plugin: v["plugin"].as_str().unwrap_or_default().to_owned(),
        opaque_id: v["opaque_id"].as_str().map(str::to_owned),
        binding,
        capture: serde_json::from_value(v["capture"].clone()).ok().flatten(),
    })
}

pub(super) fn plugin_list(v: &str) -> Vec<String> {
    v.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}
