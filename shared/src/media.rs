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

/// The RTP header extensions whose values the VideoRoom carries from a publisher to its
/// subscribers (Janus relays these three), by URI.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
pub const VIDEO_ORIENTATION_URI: &str = "urn:3gpp:video-orientation";
pub const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// The ids one sender gives the relayed header extensions (none: not sent). A publisher's come
/// from its SDP, a remote publisher's from `add_remote_publisher`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionIds {
    pub audio_level: Option<u8>,
    pub video_orientation: Option<u8>,
    pub playout_delay: Option<u8>,
}

impl ExtensionIds {
    /// The ids packets carry inside a node, between a publisher and its subscribers (and to
    /// forwarders): Janus's own (`janus_rtp_extension_id`), so that a Janus receiving a
    /// remotized stream finds them where it looks by default.
    pub const RELAY: Self = Self { audio_level: Some(1), video_orientation: Some(13), playout_delay: Some(12) };

    /// The id of `uri` if it is one of the relayed extensions.
    pub fn set(&mut self, uri: &str, id: u8) {
        match uri {
            AUDIO_LEVEL_URI => self.audio_level = Some(id),
            VIDEO_ORIENTATION_URI => self.video_orientation = Some(id),
            PLAYOUT_DELAY_URI => self.playout_delay = Some(id),
            _ => {}
        }
    }

    /// The id given `uri`, one of the relayed extensions (none: not sent, or not relayed).
    pub fn id(&self, uri: &str) -> Option<u8> {
        match uri {
            AUDIO_LEVEL_URI => self.audio_level,
            VIDEO_ORIENTATION_URI => self.video_orientation,
            PLAYOUT_DELAY_URI => self.playout_delay,
            _ => None,
        }
    }

    /// Which relayed extension `id` is, as the relay id (none: not relayed).
    pub fn to_relay(&self, id: u8) -> Option<u8> {
        let pairs = [
            (self.audio_level, Self::RELAY.audio_level),
            (self.video_orientation, Self::RELAY.video_orientation),
            (self.playout_delay, Self::RELAY.playout_delay),
        ];
        pairs.into_iter().find(|(mine, _)| *mine == Some(id)).and_then(|(_, relay)| relay)
    }

    /// The id this sender uses for the extension the relay calls `relay_id`.
    pub fn from_relay(&self, relay_id: u8) -> Option<u8> {
        let pairs = [
            (Self::RELAY.audio_level, self.audio_level),
            (Self::RELAY.video_orientation, self.video_orientation),
            (Self::RELAY.playout_delay, self.playout_delay),
        ];
        pairs.into_iter().find(|(relay, _)| *relay == Some(relay_id)).and_then(|(_, mine)| mine)
    }
}

/// A playout delay (RFC draft `playout-delay` extension: minimum and maximum, in 10 ms units;
/// -1 while unset), as Janus keeps one per publisher stream and per subscriber stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayoutDelay {
    pub min: i16,
    pub max: i16,
}

impl Default for PlayoutDelay {
    fn default() -> Self {
        Self { min: -1, max: -1 }
    }
}

impl PlayoutDelay {
    /// Applies `min_delay` / `max_delay` as Janus does: a negative value clears both; a minimum
    /// above the maximum raises the maximum, a maximum below the minimum lowers the minimum.
    pub fn apply(&mut self, min: Option<i64>, max: Option<i64>) {
        // The extension carries 12 bits each.
        let clamp = |v: i64| v.min(0xFFF) as i16;
        if let Some(v) = min {
            if v < 0 {
                *self = Self::default();
            } else {
                self.min = clamp(v);
                self.max = self.max.max(self.min);
            }
        }
        if let Some(v) = max {
            if v < 0 {
                *self = Self::default();
            } else {
                self.max = clamp(v);
                self.min = self.min.min(self.max);
            }
        }
    }

    /// The extension's three bytes, when both bounds are set.
    pub fn bytes(&self) -> Option<[u8; 3]> {
        if self.min < 0 || self.max < 0 {
            return None;
        }
        let v = (u32::from(self.min as u16) << 12) | u32::from(self.max as u16);
        Some([(v >> 16) as u8, (v >> 8) as u8, v as u8])
    }
}

#[cfg(test)]
mod playout_delay_tests {
    use super::PlayoutDelay;

    #[test]
    fn bounds_follow_each_other_and_a_negative_value_clears_them() {
        let mut d = PlayoutDelay::default();
        assert_eq!(d.bytes(), None);
        d.apply(Some(5), None);
        assert_eq!((d.min, d.max), (5, 5));
        d.apply(None, Some(20));
        assert_eq!(d.bytes(), Some([0x00, 0x50, 0x14]));
        d.apply(None, Some(2));
        assert_eq!((d.min, d.max), (2, 2));
        d.apply(Some(-1), None);
        assert_eq!(d, PlayoutDelay::default());
    }
}
