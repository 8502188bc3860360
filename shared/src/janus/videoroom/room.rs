//! A VideoRoom room's configuration: every `create` option Janus accepts, stored as given and
//! echoed by `list` (`create_parameters` and the `list` handler in `janus_videoroom.c`).

use crate::ids::RoomId;
use crate::janus::errors::{VideoRoomCode, VideoRoomError};
use crate::janus::json::{self, JType, Param};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Janus's own default for `publishers` ("FIXME How should we choose a default?").
pub const DEFAULT_MAX_PUBLISHERS: u64 = 3;
/// Janus raises any non-zero bitrate below this to it ("Don't go below 64k").
pub const MIN_BITRATE: u64 = 64_000;

const AUDIO_CODECS: [&str; 6] = ["opus", "isac32", "isac16", "pcmu", "pcma", "g722"];
/// The video codecs Janus knows by name (rooms, remote publishers).
pub(super) const VIDEO_CODECS: [&str; 5] = ["vp8", "vp9", "av1", "h264", "h265"];

/// A room's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomConfig {
    pub room: RoomId,
    pub description: String,
    pub is_private: bool,
    pub secret: Option<String>,
    pub pin: Option<String>,
    pub require_pvtid: bool,
    pub signed_tokens: bool,
    pub max_publishers: u64,
    pub bitrate: u64,
    pub bitrate_cap: bool,
    pub fir_freq: u64,
    pub audiocodec: Vec<String>,
    pub videocodec: Vec<String>,
    pub vp9_profile: Option<String>,
    pub h264_profile: Option<String>,
    pub opus_fec: bool,
    pub opus_dtx: bool,
    /// VP9 SVC: subscribers choose spatial and temporal layers (only in VP9-only rooms).
    #[serde(default)]
    pub video_svc: bool,
    pub audiolevel_ext: bool,
    pub audiolevel_event: bool,
    pub audio_active_packets: u64,
    pub audio_level_average: u64,
    pub videoorient_ext: bool,
    pub playoutdelay_ext: bool,
    pub transport_wide_cc_ext: bool,
    pub record: bool,
    pub rec_dir: Option<String>,
    pub lock_record: bool,
    pub notify_joining: bool,
    pub require_e2ee: bool,
    pub dummy_publisher: bool,
    pub permanent: bool,
    /// Whether joins must present a token from `allowed` (`check_allowed` in Janus).
    pub check_allowed: bool,
    pub allowed: Vec<String>,
}

pub(crate) const CREATE_PARAMS: [Param; 36] = [
    Param::opt("description", JType::Str),
    Param::opt("is_private", JType::Bool),
    Param::opt("allowed", JType::Array),
    Param::opt("secret", JType::Str),
    Param::opt("pin", JType::Str),
    Param::opt("require_pvtid", JType::Bool),
    Param::opt("signed_tokens", JType::Bool),
    Param::opt("bitrate", JType::Int).positive(),
    Param::opt("bitrate_cap", JType::Bool),
    Param::opt("fir_freq", JType::Int).positive(),
    Param::opt("publishers", JType::Int).positive(),
    Param::opt("audiocodec", JType::Str),
    Param::opt("videocodec", JType::Str),
    Param::opt("vp9_profile", JType::Str),
    Param::opt("h264_profile", JType::Str),
    Param::opt("opus_fec", JType::Bool),
    Param::opt("opus_dtx", JType::Bool),
    Param::opt("video_svc", JType::Bool),
    Param::opt("audiolevel_ext", JType::Bool),
    Param::opt("audiolevel_event", JType::Bool),
    Param::opt("audio_active_packets", JType::Int).positive(),
    Param::opt("audio_level_average", JType::Int).positive(),
    Param::opt("videoorient_ext", JType::Bool),
    Param::opt("playoutdelay_ext", JType::Bool),
    Param::opt("transport_wide_cc_ext", JType::Bool),
    Param::opt("record", JType::Bool),
    Param::opt("rec_dir", JType::Str),
    Param::opt("lock_record", JType::Bool),
    Param::opt("permanent", JType::Bool),
    Param::opt("notify_joining", JType::Bool),
    Param::opt("require_e2ee", JType::Bool),
    Param::opt("dummy_publisher", JType::Bool),
    Param::opt("dummy_streams", JType::Array),
    Param::opt("dummy_e2ee", JType::Bool),
    Param::opt("threads", JType::Int).positive(),
    Param::opt("room", JType::Id),
];

fn codec_list(
    obj: &Map<String, Value>,
    key: &str,
    known: &[&str],
    default: &str,
    err: &str,
) -> Result<Vec<String>, VideoRoomError> {
    let Some(text) = json::string(obj, key) else {
        return Ok(vec![default.to_owned()]);
    };
    // Janus reads at most five entries of the comma list.
    let mut out = Vec::new();
    for c in text.split(',').take(5) {
        let c = c.trim().to_ascii_lowercase();
        if c.is_empty() || !known.contains(&c.as_str()) {
            return Err(VideoRoomError::new(VideoRoomCode::InvalidElement, err));
        }
        out.push(c);
    }
    Ok(out)
}

fn strings(v: Option<&Value>) -> Result<Option<Vec<String>>, VideoRoomError> {
    match v {
        None => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_owned).ok_or_else(|| {
                    VideoRoomError::new(
                        VideoRoomCode::InvalidElement,
                        "Invalid element in the allowed array (not a string)",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Ok(None),
    }
}

impl RoomConfig {
    /// Builds a room from `create` parameters that passed [`CREATE_PARAMS`] validation.
    /// `room` is the id to use (already chosen when absent from the request).
    pub fn from_create(obj: &Map<String, Value>, room: RoomId) -> Result<Self, VideoRoomError> {
        let audiocodec = codec_list(
            obj,
            "audiocodec",
            &AUDIO_CODECS,
            "opus",
            "Invalid element (audiocodec can only be or contain opus, isac32, isac16, pcmu, pcma or g722)",
        )?;
        let videocodec = codec_list(
            obj,
            "videocodec",
            &VIDEO_CODECS,
            "vp8",
            "Invalid element (videocodec can only be or contain vp8, vp9, av1, h264 or h265)",
        )?;
        // As Janus: only a room whose one video codec is VP9 does SVC.
        let video_svc = json::boolean(obj, "video_svc").unwrap_or(false) && videocodec == ["vp9"];
        let allowed = strings(obj.get("allowed"))?;
        let check_allowed = allowed.is_some();
        let allowed = allowed.unwrap_or_default();
        let flag = |k: &str, d: bool| json::boolean(obj, k).unwrap_or(d);
        let has_opus = audiocodec.iter().any(|c| c == "opus");
        let mut bitrate = json::uint(obj, "bitrate");
        if bitrate > 0 && bitrate < MIN_BITRATE {
            bitrate = MIN_BITRATE;
        }
        let audiolevel_event = flag("audiolevel_event", false);
        let positive_or = |k: &str, d: u64| match json::uint(obj, k) {
            0 => d,
            v => v,
        };
        let description =
            json::string(obj, "description").filter(|d| !d.is_empty()).unwrap_or_else(|| format!("Room {room}"));
        Ok(RoomConfig {
            room,
            description,
            is_private: flag("is_private", false),
            secret: json::string(obj, "secret"),
            pin: json::string(obj, "pin"),
            require_pvtid: flag("require_pvtid", false),
            signed_tokens: false,
            max_publishers: if obj.contains_key("publishers") {
                json::uint(obj, "publishers")
            } else {
                DEFAULT_MAX_PUBLISHERS
            },
            bitrate,
            bitrate_cap: flag("bitrate_cap", false),
            fir_freq: json::uint(obj, "fir_freq"),
            vp9_profile: json::string(obj, "vp9_profile").filter(|_| videocodec.iter().any(|c| c == "vp9")),
            h264_profile: json::string(obj, "h264_profile").filter(|_| videocodec.iter().any(|c| c == "h264")),
            audiocodec,
            videocodec,
            opus_fec: has_opus && flag("opus_fec", true),
            opus_dtx: has_opus && flag("opus_dtx", false),
            video_svc,
            audiolevel_ext: flag("audiolevel_ext", true),
            audiolevel_event,
            audio_active_packets: if audiolevel_event { positive_or("audio_active_packets", 100) } else { 0 },
            audio_level_average: if audiolevel_event { positive_or("audio_level_average", 25) } else { 0 },
            videoorient_ext: flag("videoorient_ext", true),
            playoutdelay_ext: flag("playoutdelay_ext", true),
            transport_wide_cc_ext: flag("transport_wide_cc_ext", true),
            record: flag("record", false),
            rec_dir: json::string(obj, "rec_dir"),
            lock_record: flag("lock_record", false),
            notify_joining: flag("notify_joining", false),
            require_e2ee: flag("require_e2ee", false),
            dummy_publisher: flag("dummy_publisher", false),
            permanent: flag("permanent", false),
            check_allowed,
            allowed,
        })
    }

    /// The room Janus's sample configuration ships, so the official demos work out of the box.
    pub fn demo_room() -> Self {
        let obj = json!({
            "description": "Demo Room",
            "secret": "adminpwd",
            "publishers": 6,
            "bitrate": 128000,
            "fir_freq": 10,
            "audiocodec": "opus",
            "videocodec": "vp8",
        });
        let map = obj.as_object().cloned().unwrap_or_default();
        // The literal above is valid by construction, so this cannot fail.
        Self::from_create(&map, RoomId::num(1234)).unwrap_or_else(|_| unreachable_demo())
    }

    /// Applies `edit`'s `new_*` fields (already validated).
    pub fn apply_edit(&mut self, e: &super::EditRoom) {
        if let Some(d) = e.new_description.as_ref().filter(|d| !d.is_empty()) {
            self.description = d.clone();
        }
        if let Some(v) = e.new_is_private {
            self.is_private = v;
        }
        if let Some(v) = e.new_require_pvtid {
            self.require_pvtid = v;
        }
        if let Some(v) = e.new_publishers {
            self.max_publishers = v;
        }
        if let Some(mut v) = e.new_bitrate {
            if v > 0 && v < MIN_BITRATE {
                v = MIN_BITRATE;
            }
            self.bitrate = v;
        }
        if let Some(v) = e.new_fir_freq {
            self.fir_freq = v;
        }
        if let Some(s) = e.new_secret.as_ref().filter(|s| !s.is_empty()) {
            self.secret = Some(s.clone());
        }
        if let Some(p) = e.new_pin.as_ref().filter(|p| !p.is_empty()) {
            self.pin = Some(p.clone());
        }
        if let Some(v) = e.new_lock_record {
            self.lock_record = v;
        }
        if let Some(d) = &e.new_rec_dir {
            self.rec_dir = Some(d.clone());
        }
    }

    /// One entry of `list`, with Janus's fields.
    pub fn list_entry(&self, num_participants: u64) -> Value {
        let mut m = Map::new();
        m.insert("room".into(), json!(self.room.0));
        m.insert("description".into(), json!(self.description));
        m.insert("pin_required".into(), json!(self.pin.is_some()));
        m.insert("is_private".into(), json!(self.is_private));
        m.insert("max_publishers".into(), json!(self.max_publishers));
        m.insert("bitrate".into(), json!(self.bitrate));
        if self.bitrate_cap {
            m.insert("bitrate_cap".into(), json!(true));
        }
        m.insert("fir_freq".into(), json!(self.fir_freq));
        m.insert("require_pvtid".into(), json!(self.require_pvtid));
        m.insert("require_e2ee".into(), json!(self.require_e2ee));
        m.insert("dummy_publisher".into(), json!(self.dummy_publisher));
        m.insert("notify_joining".into(), json!(self.notify_joining));
        m.insert("audiocodec".into(), json!(self.audiocodec.join(",")));
        m.insert("videocodec".into(), json!(self.videocodec.join(",")));
        if self.opus_fec {
            m.insert("opus_fec".into(), json!(true));
        }
        if self.opus_dtx {
            m.insert("opus_dtx".into(), json!(true));
        }
        if self.video_svc {
            m.insert("video_svc".into(), json!(true));
        }
        m.insert("record".into(), json!(self.record));
        if let Some(d) = &self.rec_dir {
            m.insert("rec_dir".into(), json!(d));
        }
        m.insert("lock_record".into(), json!(self.lock_record));
        m.insert("num_participants".into(), json!(num_participants));
        m.insert("audiolevel_ext".into(), json!(self.audiolevel_ext));
        m.insert("audiolevel_event".into(), json!(self.audiolevel_event));
        if self.audiolevel_event {
            m.insert("audio_active_packets".into(), json!(self.audio_active_packets));
            m.insert("audio_level_average".into(), json!(self.audio_level_average));
        }
        m.insert("videoorient_ext".into(), json!(self.videoorient_ext));
        m.insert("playoutdelay_ext".into(), json!(self.playoutdelay_ext));
        m.insert("transport_wide_cc_ext".into(), json!(self.transport_wide_cc_ext));
        Value::Object(m)
    }
}

#[cold]
fn unreachable_demo() -> RoomConfig {
    // Only reached if the codec tables above lose "opus" or "vp8"; a test guards against that.
    RoomConfig {
        room: RoomId::num(1234),
        description: "Demo Room".into(),
        is_private: false,
        secret: Some("adminpwd".into()),
        pin: None,
        require_pvtid: false,
        signed_tokens: false,
        max_publishers: 6,
        bitrate: 128_000,
        bitrate_cap: false,
        fir_freq: 10,
        audiocodec: vec!["opus".into()],
        videocodec: vec!["vp8".into()],
        vp9_profile: None,
        h264_profile: None,
        opus_fec: true,
        opus_dtx: false,
        video_svc: false,
        audiolevel_ext: true,
        audiolevel_event: false,
        audio_active_packets: 0,
        audio_level_average: 0,
        videoorient_ext: true,
        playoutdelay_ext: true,
        transport_wide_cc_ext: true,
        record: false,
        rec_dir: None,
        lock_record: false,
        notify_joining: false,
        require_e2ee: false,
        dummy_publisher: false,
        permanent: false,
        check_allowed: false,
        allowed: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_room_lists_like_janus_sample_config() {
        let r = RoomConfig::demo_room();
        assert_eq!(r, unreachable_demo());
        let golden = json!({
            "room": 1234, "description": "Demo Room", "pin_required": false, "is_private": false,
            "max_publishers": 6, "bitrate": 128000, "fir_freq": 10, "require_pvtid": false,
            "require_e2ee": false, "dummy_publisher": false, "notify_joining": false,
            "audiocodec": "opus", "videocodec": "vp8", "opus_fec": true, "record": false,
            "lock_record": false, "num_participants": 0, "audiolevel_ext": true,
            "audiolevel_event": false, "videoorient_ext": true, "playoutdelay_ext": true,
            "transport_wide_cc_ext": true
        });
        assert_eq!(r.list_entry(0), golden);
    }

    #[test]
    fn bad_codecs_are_rejected_with_janus_text() {
        let m = json!({"videocodec": "vp8,theora"}).as_object().cloned().unwrap();
        let e = RoomConfig::from_create(&m, RoomId::num(1)).unwrap_err();
        assert_eq!(e.code, VideoRoomCode::InvalidElement);
        assert!(e.reason.contains("videocodec can only be"));
    }
}
