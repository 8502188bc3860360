//! Codecs: which a publisher's answer offers (the room's `audiocodec` / `videocodec` lists, as
//! Janus negotiates them: per m-line, the first of the room's codecs the offer has), and where a
//! video stream may start (a keyframe, detected per codec in the RTP payload).

use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_AV1, MIME_TYPE_G722, MIME_TYPE_H264, MIME_TYPE_HEVC, MIME_TYPE_OPUS, MIME_TYPE_PCMA, MIME_TYPE_PCMU,
    MIME_TYPE_RTX, MIME_TYPE_VP8, MIME_TYPE_VP9,
};
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters};

/// A video codec the forwarder knows the keyframes of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    Vp9,
    H264,
    Av1,
    H265,
}

impl VideoCodec {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "vp8" => Some(Self::Vp8),
            "vp9" => Some(Self::Vp9),
            "h264" => Some(Self::H264),
            "av1" => Some(Self::Av1),
            "h265" => Some(Self::H265),
            _ => None,
        }
    }

    /// Whether this RTP payload starts a keyframe.
    pub fn is_keyframe(self, payload: &[u8]) -> bool {
        match self {
            Self::Vp8 => super::vp8::vp8_is_keyframe(payload),
            Self::Vp9 => vp9_is_keyframe(payload),
            Self::H264 => h264_is_keyframe(payload),
            Self::Av1 => av1_is_keyframe(payload),
            Self::H265 => h265_is_keyframe(payload),
        }
    }
}

/// VP9 (RFC draft payload descriptor): the first packet (B) of a frame that is not
/// inter-picture predicted (P clear), of the lowest spatial layer when layers are signalled.
pub fn vp9_is_keyframe(payload: &[u8]) -> bool {
    let Some(&d) = payload.first() else { return false };
    let (picture_id, layers, flexible, begin, predicted) =
        (d & 0x80 != 0, d & 0x20 != 0, d & 0x10 != 0, d & 0x08 != 0, d & 0x40 != 0);
    if !begin || predicted {
        return false;
    }
    if !layers {
        return true;
    }
    let mut i = 1;
    if picture_id {
        let Some(&pid) = payload.get(i) else { return false };
        i += if pid & 0x80 != 0 { 2 } else { 1 };
    }
    // The layer index byte: TID (3 bits), U, SID (3 bits), D.
    let _ = flexible;
    payload.get(i).is_some_and(|l| (l >> 1) & 0x07 == 0)
}

/// H.264 (RFC 6184): an IDR slice (NAL type 5) or a sequence parameter set (7), alone, first in
/// a STAP-A aggregate, or starting a FU-A fragment.
pub fn h264_is_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else { return false };
    let key = |nal: u8| matches!(nal & 0x1f, 5 | 7);
    match first & 0x1f {
        // STAP-A: 2-byte size, then the first NAL unit.
        24 => payload.get(3).is_some_and(|n| key(*n)),
        // FU-A: the start bit, then the fragmented unit's type.
        28 => payload.get(1).is_some_and(|h| h & 0x80 != 0 && key(*h)),
        _ => key(first),
    }
}

/// H.265 (RFC 7798): an IRAP picture (NAL types 16-21: BLA, IDR, CRA) or a parameter set (VPS,
/// SPS, PPS: 32-34), as Janus finds them, alone, first in an aggregation packet (48) or starting
/// a fragmentation unit (49).
pub fn h265_is_keyframe(payload: &[u8]) -> bool {
    // The payload header is two bytes.
    let [first, _, ..] = *payload else { return false };
    let key = |nal: u8| matches!(nal, 16..=21 | 32..=34);
    match first >> 1 & 0x3f {
        // AP: the 2-byte payload header, a 2-byte size, then the first NAL unit's header.
        48 => payload.get(4).is_some_and(|n| key(n >> 1 & 0x3f)),
        // FU: the payload header, then the FU header (S, E, the fragmented unit's type).
        49 => payload.get(2).is_some_and(|h| h & 0x80 != 0 && key(h & 0x3f)),
        nal => key(nal),
    }
}

/// AV1 (RTP payload format): the aggregation header's N bit, set on the first packet of a coded
/// video sequence, which starts with a keyframe.
pub fn av1_is_keyframe(payload: &[u8]) -> bool {
    payload.first().is_some_and(|h| h & 0x08 != 0)
}

fn video_feedback() -> Vec<RTCPFeedback> {
    [("goog-remb", ""), ("ccm", "fir"), ("nack", ""), ("nack", "pli"), ("transport-cc", "")]
        .into_iter()
        .map(|(typ, parameter)| RTCPFeedback { typ: typ.into(), parameter: parameter.into() })
        .collect()
}

fn codec(
    mime: &str,
    clock_rate: u32,
    channels: u16,
    fmtp: &str,
    pt: u8,
    feedback: Vec<RTCPFeedback>,
) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime.into(),
            clock_rate,
            channels,
            sdp_fmtp_line: fmtp.into(),
            rtcp_feedback: feedback,
        },
        payload_type: pt,
    }
}

/// Retransmissions (RFC 4588) for the video payload types `apt`, as webrtc-rs pairs them.
fn rtx(pairs: &[(u8, u8)]) -> impl Iterator<Item = RTCRtpCodecParameters> + '_ {
    pairs.iter().map(|&(pt, apt)| codec(MIME_TYPE_RTX, 90000, 0, &format!("apt={apt}"), pt, vec![]))
}

/// Whether `name` is an audio codec (else video).
pub fn is_audio(name: &str) -> bool {
    matches!(name, "opus" | "pcmu" | "pcma" | "g722")
}

/// What a publisher's answer may offer for the codec `name` (webrtc-rs's own parameters for it,
/// the codec first, then its retransmission formats; the answer takes the offer's payload types).
pub fn parameters(name: &str) -> Vec<RTCRtpCodecParameters> {
    let mut out = base_parameters(name);
    let pairs: &[(u8, u8)] = match name {
        "vp8" => &[(97, 96)],
        "vp9" => &[(99, 98), (101, 100)],
        "h264" => &[(103, 102), (104, 127), (105, 125), (109, 108), (124, 123)],
        "av1" => &[(106, 41)],
        "h265" => &[(107, 126)],
        _ => &[],
    };
    out.extend(rtx(pairs));
    out
}

fn base_parameters(name: &str) -> Vec<RTCRtpCodecParameters> {
    let h264 = |fmtp: &str, pt| codec(MIME_TYPE_H264, 90000, 0, fmtp, pt, video_feedback());
    match name {
        "opus" => vec![codec(MIME_TYPE_OPUS, 48000, 2, "minptime=10;useinbandfec=1", 111, vec![])],
        "pcmu" => vec![codec(MIME_TYPE_PCMU, 8000, 0, "", 0, vec![])],
        "pcma" => vec![codec(MIME_TYPE_PCMA, 8000, 0, "", 8, vec![])],
        "g722" => vec![codec(MIME_TYPE_G722, 8000, 0, "", 9, vec![])],
        "vp8" => vec![codec(MIME_TYPE_VP8, 90000, 0, "", 96, video_feedback())],
        "vp9" => vec![
            codec(MIME_TYPE_VP9, 90000, 0, "profile-id=0", 98, video_feedback()),
            codec(MIME_TYPE_VP9, 90000, 0, "profile-id=1", 100, video_feedback()),
        ],
        "h264" => vec![
            h264("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", 102),
            h264("level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f", 127),
            h264("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", 125),
            h264("level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f", 108),
            h264("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032", 123),
        ],
        "av1" => vec![codec(MIME_TYPE_AV1, 90000, 0, "profile-id=0", 41, video_feedback())],
        "h265" => vec![codec(MIME_TYPE_HEVC, 90000, 0, "", 126, video_feedback())],
        _ => Vec::new(),
    }
}

/// Janus's choice for one m-line: the first of the room's codecs (`room`, in order) that the
/// offer lists (`offered`); `preferred` (a publisher's `audiocodec`/`videocodec`) first when the
/// room allows it.
pub fn choose<'a>(room: &'a [String], offered: &[String], preferred: Option<&str>) -> Option<&'a str> {
    let allowed = |c: &str| offered.iter().any(|o| o == c);
    if let Some(p) = preferred {
        if let Some(c) = room.iter().find(|c| *c == p && allowed(c)) {
            return Some(c);
        }
    }
    room.iter().map(String::as_str).find(|c| allowed(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframes_are_found_per_codec() {
        // VP9: B set, P clear; an inter frame has P.
        assert!(vp9_is_keyframe(&[0x0c, 0x00]));
        assert!(!vp9_is_keyframe(&[0x4c, 0x00]));
        assert!(!vp9_is_keyframe(&[0x04, 0x00]), "not the first packet of the frame");
        // With layer indices: spatial layer 0 only (I, 15-bit picture id, layers).
        assert!(vp9_is_keyframe(&[0xa8, 0x80, 0x01, 0x00]));
        assert!(!vp9_is_keyframe(&[0xa8, 0x80, 0x01, 0x02]));
        // H.264: IDR alone, SPS first in a STAP-A, the start of a fragmented IDR.
        assert!(h264_is_keyframe(&[0x65, 0x88]));
        assert!(!h264_is_keyframe(&[0x41, 0x9a]));
        assert!(h264_is_keyframe(&[0x78, 0x00, 0x10, 0x67]));
        assert!(h264_is_keyframe(&[0x7c, 0x85]));
        assert!(!h264_is_keyframe(&[0x7c, 0x05]), "a middle fragment");
        assert!(!h264_is_keyframe(&[0x7c, 0x81]), "a fragmented non-IDR slice");
        // H.265: IDR_W_RADL (19) and CRA (21) alone, a VPS first in an AP, the start of a
        // fragmented IDR; a trailing picture (1) and a middle fragment are not.
        assert!(h265_is_keyframe(&[0x26, 0x01]));
        assert!(h265_is_keyframe(&[0x2a, 0x01]));
        assert!(!h265_is_keyframe(&[0x02, 0x01]));
        assert!(h265_is_keyframe(&[0x60, 0x01, 0x00, 0x18, 0x40, 0x01]));
        assert!(!h265_is_keyframe(&[0x60, 0x01, 0x00, 0x18, 0x02, 0x01]));
        assert!(h265_is_keyframe(&[0x62, 0x01, 0x93]));
        assert!(!h265_is_keyframe(&[0x62, 0x01, 0x13]), "a middle fragment");
        assert!(!h265_is_keyframe(&[0x62, 0x01, 0x81]), "a fragmented trailing picture");
        assert!(!h265_is_keyframe(&[0x26]), "too short for the payload header");
        // AV1: N bit.
        assert!(av1_is_keyframe(&[0x18]));
        assert!(!av1_is_keyframe(&[0x10]));
        assert!(VideoCodec::from_name("vp9").unwrap().is_keyframe(&[0x0c]));
    }

    #[test]
    fn the_room_order_decides_unless_the_publisher_asks() {
        let room: Vec<String> = ["vp9", "vp8"].map(String::from).to_vec();
        let offered: Vec<String> = ["vp8", "vp9", "h264"].map(String::from).to_vec();
        assert_eq!(choose(&room, &offered, None), Some("vp9"));
        assert_eq!(choose(&room, &offered, Some("vp8")), Some("vp8"));
        assert_eq!(choose(&room, &offered, Some("h264")), Some("vp9"), "not allowed in the room");
        assert_eq!(choose(&room, &["av1".to_owned()], None), None);
    }
}
