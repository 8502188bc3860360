//! Identifiers. Session, handle, room and participant ids are random positive integers below
//! 2^53, exactly as Janus makes them (`janus_random_uint64() & 0x1FFFFFFFFFFFFF`), so that
//! JavaScript clients can hold them in a double.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Janus masks its random ids to 53 bits so that JavaScript doubles hold them exactly.
pub const ID_MASK: u64 = 0x1F_FFFF_FFFF_FFFF;

/// A random id in `1..2^53`.
pub fn random_id() -> u64 {
    loop {
        let v = rand::random::<u64>() & ID_MASK;
        if v != 0 {
            return v;
        }
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// A fresh random id below 2^53.
            pub fn random() -> Self {
                Self(random_id())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A Janus session (`session_id`).
    SessionId
);
id_type!(
    /// A plugin handle inside a session (`handle_id`, `sender` in events).
    HandleId
);
/// A VideoRoom id as Janus gives it: a number, or (with the VideoRoom's `string_ids`) a string.
/// Serialized as it came; the text form is how stores key it (`s:` marks a string).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JanusId {
    Num(u64),
    Text(Arc<str>),
}

impl JanusId {
    /// A random id: a number below 2^53, or (`text`) a UUID, as Janus makes string ids.
    pub fn random(text: bool) -> Self {
        if text {
            let b: [u8; 16] = rand::random();
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Self::Text(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]).into())
        } else {
            Self::Num(random_id())
        }
    }

    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    /// 0 / empty: no id given (Janus's own test for "choose one").
    pub fn is_unset(&self) -> bool {
        match self {
            Self::Num(n) => *n == 0,
            Self::Text(t) => t.is_empty(),
        }
    }

    /// A number standing for it where one is needed (a remote publisher's stand-in handle):
    /// the number itself, or a 53-bit FNV-1a hash of the string.
    pub fn stable_u64(&self) -> u64 {
        match self {
            Self::Num(n) => *n,
            Self::Text(t) => {
                let h =
                    t.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
                (h & ID_MASK).max(1)
            }
        }
    }

    /// The key a store files it under.
    pub fn key(&self) -> String {
        match self {
            Self::Num(n) => n.to_string(),
            Self::Text(t) => format!("s:{t}"),
        }
    }

    /// The id a store key names ([`JanusId::key`]).
    pub fn from_key(key: &str) -> Option<Self> {
        match key.strip_prefix("s:") {
            Some(t) => Some(Self::Text(t.into())),
            None => key.parse().ok().map(Self::Num),
        }
    }
}

impl From<JanusId> for serde_json::Value {
    fn from(id: JanusId) -> Self {
        match id {
            JanusId::Num(n) => n.into(),
            JanusId::Text(t) => t.as_ref().into(),
        }
    }
}

impl fmt::Display for JanusId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Num(n) => write!(f, "{n}"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

impl Serialize for JanusId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Num(n) => s.serialize_u64(*n),
            Self::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for JanusId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Num(u64),
            Text(String),
        }
        Ok(match Either::deserialize(d)? {
            Either::Num(n) => Self::Num(n),
            Either::Text(t) => Self::Text(t.into()),
        })
    }
}

macro_rules! janus_id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub JanusId);

        impl $name {
            /// A number id.
            pub fn num(n: u64) -> Self {
                Self(JanusId::Num(n))
            }

            /// A fresh random id: a string one if `text`.
            pub fn random_of(text: bool) -> Self {
                Self(JanusId::random(text))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for serde_json::Value {
            fn from(id: $name) -> Self {
                id.0.into()
            }
        }
    };
}

janus_id_type!(
    /// A VideoRoom room.
    RoomId
);
janus_id_type!(
    /// A VideoRoom participant (publisher id / feed id).
    ParticipantId
);

/// The name of a media node (`local` in standalone mode).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A gateway process (used to address RPC replies).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GatewayId(pub String);

impl fmt::Display for GatewayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_positive_and_fit_in_53_bits() {
        for _ in 0..10_000 {
            let id = random_id();
            assert!(id > 0 && id < (1u64 << 53));
        }
    }
}
