//! Bodies of VideoRoom replies and events (`plugindata.data`), with Janus's field names.

use crate::ids::{ParticipantId, RoomId};
use crate::janus::errors::VideoRoomError;
use serde_json::{json, Map, Value};

pub fn error(e: &VideoRoomError) -> Value {
    json!({"videoroom": "event", "error_code": e.code as u16, "error": e.reason})
}

pub fn created(room: RoomId, permanent: bool) -> Value {
    json!({"videoroom": "created", "room": room.0, "permanent": permanent})
}

pub fn edited(room: RoomId, permanent: bool) -> Value {
    json!({"videoroom": "edited", "room": room.0, "permanent": permanent})
}

/// The reply to `destroy` (with `permanent`) and the event participants get (without).
pub fn destroyed(room: RoomId, permanent: Option<bool>) -> Value {
    match permanent {
        Some(p) => json!({"videoroom": "destroyed", "room": room.0, "permanent": p}),
        None => json!({"videoroom": "destroyed", "room": room.0}),
    }
}

pub fn exists(room: RoomId, exists: bool) -> Value {
    json!({"videoroom": "success", "room": room.0, "exists": exists})
}

pub fn list(entries: Vec<Value>) -> Value {
    json!({"videoroom": "success", "list": entries})
}

pub fn success() -> Value {
    json!({"videoroom": "success"})
}

pub fn allowed(room: RoomId, list: Option<Vec<String>>) -> Value {
    let mut m = Map::new();
    m.insert("videoroom".into(), json!("success"));
    m.insert("room".into(), json!(room.0));
    if let Some(l) = list {
        m.insert("allowed".into(), json!(l));
    }
    Value::Object(m)
}

/// A participant as `listparticipants` shows it.
pub struct ParticipantView<'a> {
    pub id: ParticipantId,
    pub display: Option<&'a str>,
    pub metadata: Option<&'a Value>,
    pub publisher: bool,
    /// A remote publisher (`add_remote_publisher`).
    pub remote: bool,
    /// Whether it is talking, for a publisher sending audio levels (absent otherwise).
    pub talking: Option<bool>,
}

pub fn participants(room: RoomId, list: &[ParticipantView<'_>]) -> Value {
    let entries: Vec<Value> = list
        .iter()
        .map(|p| {
            let mut m = Map::new();
            m.insert("id".into(), json!(p.id.0));
            if let Some(d) = p.display {
                m.insert("display".into(), json!(d));
            }
            if let Some(md) = p.metadata {
                m.insert("metadata".into(), md.clone());
            }
            if p.remote {
                m.insert("remote".into(), json!(true));
            }
            m.insert("publisher".into(), json!(p.publisher));
            if let Some(t) = p.talking {
                m.insert("talking".into(), json!(t));
            }
            Value::Object(m)
        })
        .collect();
    json!({"videoroom": "participants", "room": room.0, "participants": entries})
}

/// `{id, display?, metadata?}`: a participant in `attendees` and `joining`.
pub fn attendee(id: ParticipantId, display: Option<&str>, metadata: Option<&Value>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(id.0));
    if let Some(d) = display {
        m.insert("display".into(), json!(d));
    }
    if let Some(md) = metadata {
        m.insert("metadata".into(), md.clone());
    }
    Value::Object(m)
}

pub struct Joined<'a> {
    pub room: RoomId,
    pub description: &'a str,
    pub id: ParticipantId,
    pub private_id: ParticipantId,
    pub publishers: Vec<Value>,
    pub attendees: Option<Vec<Value>>,
}

pub fn joined(j: Joined<'_>) -> Value {
    let mut m = Map::new();
    m.insert("videoroom".into(), json!("joined"));
    m.insert("room".into(), json!(j.room.0));
    m.insert("description".into(), json!(j.description));
    m.insert("id".into(), json!(j.id.0));
    m.insert("private_id".into(), json!(j.private_id.0));
    m.insert("publishers".into(), Value::Array(j.publishers));
    if let Some(a) = j.attendees {
        m.insert("attendees".into(), Value::Array(a));
    }
    Value::Object(m)
}

pub fn joining(room: RoomId, who: Value) -> Value {
    json!({"videoroom": "event", "room": room.0, "joining": who})
}

/// `{"leaving":"ok"}` (optionally `reason:"kicked"`) to the participant itself.
pub fn leaving_ok(room: RoomId, kicked: bool) -> Value {
    if kicked {
        json!({"videoroom": "event", "room": room.0, "leaving": "ok", "reason": "kicked"})
    } else {
        json!({"videoroom": "event", "room": room.0, "leaving": "ok"})
    }
}

/// What the others hear when a participant leaves, is kicked, or unpublishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    Leaving,
    Kicked,
    Unpublished,
}

pub fn departed(
    room: RoomId,
    how: Departure,
    id: ParticipantId,
    display: Option<&str>,
    metadata: Option<&Value>,
) -> Value {
    let mut m = Map::new();
    m.insert("videoroom".into(), json!("event"));
    m.insert("room".into(), json!(room.0));
    if let Some(d) = display {
        m.insert("display".into(), json!(d));
    }
    if let Some(md) = metadata {
        m.insert("metadata".into(), md.clone());
    }
    let key = match how {
        Departure::Leaving => "leaving",
        Departure::Kicked => "kicked",
        Departure::Unpublished => "unpublished",
    };
    m.insert(key.into(), json!(id.0));
    Value::Object(m)
}

pub fn unpublished_ok(room: RoomId) -> Value {
    json!({"videoroom": "event", "room": room.0, "unpublished": "ok"})
}
