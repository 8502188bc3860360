//! Identifiers. Session, handle, room and participant ids are random positive integers below
//! 2^53, exactly as Janus makes them (`janus_random_uint64() & 0x1FFFFFFFFFFFFF`), so that
//! JavaScript clients can hold them in a double.

use serde::{Deserialize, Serialize};
use std::fmt;

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
id_type!(
    /// A VideoRoom room.
    RoomId
);
id_type!(
    /// A VideoRoom participant (publisher id / feed id), and its `private_id`.
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
