//! What identifies a media stream: its kind and its mid. Janus 1.x names every stream of a
//! PeerConnection by mid (a publisher may send two video tracks: camera and screen), so the
//! media code keys streams by [`Mid`] and only asks the [`MediaKind`] what to do with one.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// An m-line's media type, as Janus names it in `streams` (`audio`, `video`, `data` for an
/// `application` m-line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Audio,
    Video,
    Data,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Data => "data",
        }
    }

    /// Janus's name, or an SDP media type (`application` is data).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "audio" => Some(Self::Audio),
            "video" => Some(Self::Video),
            "data" | "application" => Some(Self::Data),
            _ => None,
        }
    }

    /// The RTP clock rate to assume when the SDP did not say (Opus and video codecs).
    pub fn default_clock_rate(self) -> u32 {
        match self {
            Self::Audio => 48_000,
            _ => 90_000,
        }
    }

    pub fn is_rtp(self) -> bool {
        self != Self::Data
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An m-line's `a=mid` (the m-line index as text when the SDP has none, as Janus does).
/// Cheap to clone: it is copied into events and per-stream state, never per packet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mid(Arc<str>);

impl std::ops::Deref for Mid {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Mid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Mid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

impl Mid {
    pub fn new(s: &str) -> Self {
        Self(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Mid {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Mid {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

impl PartialEq<str> for Mid {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Mid {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Mid {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Mid> for String {
    fn eq(&self, other: &Mid) -> bool {
        **self == *other.0
    }
}

impl std::borrow::Borrow<str> for Mid {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Mid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Mid> for serde_json::Value {
    fn from(m: Mid) -> Self {
        serde_json::Value::String(m.0.to_string())
    }
}

impl From<MediaKind> for serde_json::Value {
    fn from(k: MediaKind) -> Self {
        serde_json::Value::String(k.as_str().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_mids_serialize_as_janus_strings() {
        assert_eq!(serde_json::to_value(MediaKind::Video).unwrap(), "video");
        assert_eq!(MediaKind::parse("application"), Some(MediaKind::Data));
        assert_eq!(MediaKind::parse("text"), None);
        assert_eq!(serde_json::to_value(Mid::new("2")).unwrap(), "2");
        let m: Mid = serde_json::from_str("\"v1\"").unwrap();
        assert_eq!(m, "v1");
    }
}
