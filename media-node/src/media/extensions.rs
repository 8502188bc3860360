//! RTP header extensions as Janus's VideoRoom negotiates them, on both legs.
//!
//! A publisher's answer accepts audio level, video orientation, playout delay and transport-wide
//! CC as the room allows (`audiolevel_ext`, `videoorient_ext`, `playoutdelay_ext`,
//! `transport_wide_cc_ext`), besides mid/rid/repaired-rid. Once per packet, at the publisher,
//! [`relay`] keeps the values subscribers get (audio level, video orientation, playout delay)
//! under fixed relay ids ([`ExtensionIds::RELAY`]) and drops the rest. A subscriber's offer lists,
//! under Janus's ids, those of them its publisher's stream carries, mid on every m-line,
//! abs-send-time on video (as Janus always offers it) and transport-wide CC on video when the
//! room has it. (Mid is not written into the packets: the offer names every m-line's SSRCs,
//! which is how a receiver tells them apart.) Each subscriber stream renames the relay ids to the ids its
//! answer negotiated ([`rename`], in place: webrtc-rs refuses a packet carrying an id the
//! stream did not negotiate); [`SendTime`], an interceptor on the subscriber's PeerConnection,
//! stamps abs-send-time with the departure time the chain gives it, and webrtc-rs's own TWCC
//! sender numbers the packets.

use super::tap::{PacketTap, Tap};
use super::MediaError;
use rtc::interceptor::{Packet, Registry, Slot, StreamInfo, TaggedPacket, TwccReceiverBuilder, TwccSenderBuilder};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_nack, configure_rtcp_reports, configure_simulcast_extension_headers,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpHeaderExtensionCapability, RtpCodecKind};
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use shared::media::{ExtensionIds, AUDIO_LEVEL_URI, PLAYOUT_DELAY_URI, VIDEO_ORIENTATION_URI};
use std::time::Instant;
use tokio::sync::watch;

pub const ABS_SEND_TIME_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
pub const TRANSPORT_CC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// Which header extensions a room negotiates (its `*_ext` settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtensionSettings {
    pub audio_level: bool,
    pub video_orientation: bool,
    pub playout_delay: bool,
    pub transport_cc: bool,
}

impl Default for ExtensionSettings {
    /// Janus's defaults: all on.
    fn default() -> Self {
        Self { audio_level: true, video_orientation: true, playout_delay: true, transport_cc: true }
    }
}

impl ExtensionSettings {
    /// The relayed extensions this room negotiates, with the kind each goes on.
    fn relayed(&self) -> impl Iterator<Item = (&'static str, RtpCodecKind)> {
        [
            (self.audio_level, AUDIO_LEVEL_URI, RtpCodecKind::Audio),
            (self.video_orientation, VIDEO_ORIENTATION_URI, RtpCodecKind::Video),
            (self.playout_delay, PLAYOUT_DELAY_URI, RtpCodecKind::Video),
        ]
        .into_iter()
        .filter_map(|(on, uri, kind)| on.then_some((uri, kind)))
    }

    /// What of a publisher's offered `ids` the room takes (the rest its answer leaves out).
    pub fn accepted(&self, ids: ExtensionIds) -> ExtensionIds {
        ExtensionIds {
            audio_level: ids.audio_level.filter(|_| self.audio_level),
            video_orientation: ids.video_orientation.filter(|_| self.video_orientation),
            playout_delay: ids.playout_delay.filter(|_| self.playout_delay),
        }
    }
}

fn register(
    media: &mut MediaEngine,
    uri: &str,
    kind: RtpCodecKind,
    direction: RTCRtpTransceiverDirection,
) -> Result<(), MediaError> {
    let ext = RTCRtpHeaderExtensionCapability { uri: uri.to_owned() };
    media.register_header_extension(ext, kind, Some(direction)).map_err(|e| MediaError::stack("header extension", e))
}

fn transport_cc_feedback(media: &mut MediaEngine) {
    let fb = RTCPFeedback { typ: "transport-cc".to_owned(), parameter: String::new() };
    media.register_feedback(fb, RtpCodecKind::Video);
}

/// A publisher's PeerConnection: NACKs, reports, mid/rid/repaired-rid (simulcast), the room's
/// extensions, and TWCC feedback for video when the room has `transport_wide_cc_ext`.
pub(super) fn register_receive(settings: ExtensionSettings, media: &mut MediaEngine) -> Result<Registry, MediaError> {
    let registry = configure_rtcp_reports(configure_nack(Registry::new(), media));
    configure_simulcast_extension_headers(media).map_err(|e| MediaError::stack("header extension", e))?;
    for (uri, kind) in settings.relayed() {
        register(media, uri, kind, RTCRtpTransceiverDirection::Recvonly)?;
    }
    if !settings.transport_cc {
        return Ok(registry);
    }
    transport_cc_feedback(media);
    register(media, TRANSPORT_CC_URI, RtpCodecKind::Video, RTCRtpTransceiverDirection::Recvonly)?;
    Ok(registry.with(Slot::TwccReceiver, TwccReceiverBuilder::new().build()))
}

/// Between the NACK responder and the TWCC sender: retransmissions pass here too.
const SLOT: usize = 2_500;

/// A subscriber's PeerConnection: under Janus's ids (`janus_rtp_extension_id`), the room's
/// relayed extensions, abs-send-time on video, mid on every m-line, TWCC (numbered by
/// webrtc-rs's sender) on video when the room has `transport_wide_cc_ext`. Each m-section of
/// an offer then keeps the relayed ones its publisher's stream carries ([`offered`]).
///
/// webrtc-rs gives the n-th registered extension the id n, so each id below the highest one
/// used that this room leaves unused holds a placeholder registered for no media kind, which
/// no offer lists. Janus's ids make a subscriber's `extensions` in `handle_info` Janus's.
pub(super) fn register_send(
    settings: ExtensionSettings,
    media: &mut MediaEngine,
    registry: Registry,
    capture: super::capture::CaptureTap,
) -> Result<Registry, MediaError> {
    let (audio, video) = (&[RtpCodecKind::Audio][..], &[RtpCodecKind::Video][..]);
    let offered: [(u8, &str, &[RtpCodecKind], bool); 6] = [
        (1, AUDIO_LEVEL_URI, audio, settings.audio_level),
        (2, ABS_SEND_TIME_URI, video, true),
        (3, TRANSPORT_CC_URI, video, settings.transport_cc),
        (4, MID_URI, &[RtpCodecKind::Audio, RtpCodecKind::Video], true),
        (12, PLAYOUT_DELAY_URI, video, settings.playout_delay),
        (13, VIDEO_ORIENTATION_URI, video, settings.video_orientation),
    ];
    for id in 1..=13u8 {
        match offered.iter().find(|(at, _, _, on)| *at == id && *on) {
            Some((_, uri, kinds, _)) => {
                for kind in *kinds {
                    register(media, uri, *kind, RTCRtpTransceiverDirection::Sendonly)?;
                }
            }
            None => {
                let ext = RTCRtpHeaderExtensionCapability { uri: format!("urn:portunus:unused:{id}") };
                media
                    .register_header_extension(ext, RtpCodecKind::Unspecified, None)
                    .map_err(|e| MediaError::stack("header extension", e))?;
            }
        }
    }
    // The wire-most tap, so the capture's packets have all but the transport-wide sequence
    // number the TWCC sender below stamps.
    let send_time = Tap::new(SendTime::new(Instant::now())).capturing(capture);
    let mut registry = registry.with(Slot::from(SLOT), send_time);
    if settings.transport_cc {
        transport_cc_feedback(media);
        registry = registry.with(Slot::TwccSender, TwccSenderBuilder::new().build());
    }
    Ok(registry)
}

/// A subscriber's offer with each m-section listing only the relayed extensions its
/// publisher's stream carries (`carried(mindex)`; none: the section has no publisher, as an
/// inactive one), as Janus offers them, in the order of their ids (webrtc-rs lists them in no
/// particular order). Whatever a section leaves out its answer cannot take, so its packets go
/// without it ([`rename`] drops what a stream did not negotiate).
pub fn offered(sdp: &str, carried: impl Fn(usize) -> Option<ExtensionIds>) -> String {
    let mut out = String::with_capacity(sdp.len());
    // A section's extmap lines, written where its first one was.
    let mut extmaps: Vec<(u8, &str)> = Vec::new();
    let mut at = None;
    let flush = |out: &mut String, extmaps: &mut Vec<(u8, &str)>, at: &mut Option<usize>| {
        extmaps.sort_by_key(|(id, _)| *id);
        if let Some(at) = at.take() {
            out.insert_str(at, &extmaps.iter().map(|(_, l)| *l).collect::<String>());
        }
        extmaps.clear();
    };
    for (mindex, line) in super::sdp::by_section(sdp) {
        let l = line.trim_end();
        if l.starts_with("m=") {
            flush(&mut out, &mut extmaps, &mut at);
        }
        if let (Some(i), Some((id, uri))) = (mindex, super::sdp::extmap(l)) {
            let relayed = ExtensionIds::RELAY.id(uri).is_some();
            if !relayed || carried(i).and_then(|ids| ids.id(uri)).is_some() {
                at.get_or_insert(out.len());
                extmaps.push((id, line));
            }
            continue;
        }
        out.push_str(line);
    }
    flush(&mut out, &mut extmaps, &mut at);
    out
}

/// Once per packet at the publisher: the relayed extensions under their relay ids (`ids` are
/// the sender's), everything else gone. Nothing is allocated: entries are renamed or removed in
/// place; a packet left without extensions clones per subscriber without allocating.
pub fn relay(packet: &mut rtp::Packet, ids: &ExtensionIds) {
    remap(&mut packet.header, |id| ids.to_relay(id));
}

/// Per packet per subscriber stream: the relay ids renamed to the ids the stream negotiated
/// (`ids`), those it did not negotiate dropped. In place, nothing allocated.
pub fn rename(packet: &mut rtp::Packet, ids: &ExtensionIds) {
    if packet.header.extension {
        remap(&mut packet.header, |id| ids.from_relay(id));
    }
}

/// Renames each extension by `to` (none: removed), keeping the flag and the padding webrtc-rs
/// marshals by consistent.
fn remap(h: &mut rtp::header::Header, to: impl Fn(u8) -> Option<u8>) {
    let before = h.extensions.len();
    h.extensions.retain_mut(|e| match to(e.id) {
        Some(id) => {
            e.id = id;
            true
        }
        None => false,
    });
    h.extension = !h.extensions.is_empty();
    if h.extensions.len() != before {
        let len = if h.extension { h.get_extension_payload_len() } else { 0 };
        h.extensions_padding = (4 - len % 4) % 4;
    }
}

/// A publisher video stream's playout delay override (its `configure` `min_delay`/`max_delay`),
/// stamped on each of its packets under the relay id, in place of what the publisher sent. The
/// watch is read only when it changed; the bytes are shared, not copied, per packet.
pub struct DelayStamp {
    set: watch::Receiver<Option<[u8; 3]>>,
    bytes: Option<bytes::Bytes>,
}

impl DelayStamp {
    pub fn new(set: watch::Receiver<Option<[u8; 3]>>) -> Self {
        Self { set, bytes: None }
    }

    pub fn packet(&mut self, packet: &mut rtp::Packet) {
        if self.set.has_changed().unwrap_or(false) {
            self.bytes = self.set.borrow_and_update().map(|d| bytes::Bytes::copy_from_slice(&d));
        }
        if let (Some(b), Some(id)) = (&self.bytes, ExtensionIds::RELAY.playout_delay) {
            let _ = packet.header.set_extension(id, b.clone());
        }
    }
}

/// abs-send-time: seconds since `epoch` in 6.18 fixed point, the low 24 bits.
pub fn abs_send_time(epoch: Instant, now: Instant) -> [u8; 3] {
    let d = now.saturating_duration_since(epoch);
    let v = ((d.as_nanos() << 18) / 1_000_000_000) as u32 & 0x00FF_FFFF;
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// Stamps of this many packets share one allocation (3 bytes each).
const STAMP_SLAB: usize = 3 * 4096;

/// See the module documentation.
pub struct SendTime {
    epoch: Instant,
    /// The abs-send-time id of each local stream that negotiated it (by SSRC, RTX included):
    /// few per PeerConnection, so a list.
    streams: Vec<(u32, u8)>,
    /// Where stamps are written: each packet's is split off as shared `Bytes`, so thousands of
    /// packets share one allocation instead of making one each.
    slab: bytes::BytesMut,
}

impl SendTime {
    pub fn new(epoch: Instant) -> Self {
        Self { epoch, streams: Vec::new(), slab: bytes::BytesMut::new() }
    }

    /// Stamps `packet` with the departure time `now` if its stream negotiated abs-send-time.
    pub fn outgoing(&mut self, packet: &mut rtp::Packet, now: Instant) {
        let ssrc = packet.header.ssrc;
        if let Some((_, id)) = self.streams.iter().find(|(s, _)| *s == ssrc) {
            if self.slab.capacity() < 3 {
                self.slab.reserve(STAMP_SLAB);
            }
            self.slab.extend_from_slice(&abs_send_time(self.epoch, now));
            let _ = packet.header.set_extension(*id, self.slab.split().freeze());
        }
    }

    /// Sends abs-send-time for `ssrc` under `id` (what binding a stream that negotiated it does).
    pub fn bind(&mut self, ssrc: u32, id: u8) {
        self.streams.retain(|(s, _)| *s != ssrc);
        self.streams.push((ssrc, id));
    }
}

impl PacketTap for SendTime {
    fn write(&mut self, msg: &mut TaggedPacket) -> bool {
        let now = msg.now;
        if let Packet::Rtp(p) = &mut msg.message.packet {
            self.outgoing(p, now);
        }
        true
    }

    fn bind_local(&mut self, info: &StreamInfo) {
        let id = info.rtp_header_extensions.iter().find(|e| e.uri == ABS_SEND_TIME_URI);
        let Some(id) = id.and_then(|e| u8::try_from(e.id).ok()) else { return };
        for ssrc in std::iter::once(info.ssrc).chain(info.ssrc_rtx) {
            self.bind(ssrc, id);
        }
    }

    fn unbind_local(&mut self, info: &StreamInfo) {
        self.streams.retain(|(s, _)| *s != info.ssrc && Some(*s) != info.ssrc_rtx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn packet(exts: &[(u8, &'static [u8])]) -> rtp::Packet {
        let mut p = rtp::Packet::default();
        p.header.ssrc = 7;
        for (id, v) in exts {
            p.header.set_extension(*id, Bytes::from_static(v)).expect("extension");
        }
        p
    }

    fn ids(p: &rtp::Packet) -> Vec<(u8, Vec<u8>)> {
        p.header.extensions.iter().map(|e| (e.id, e.payload.to_vec())).collect()
    }

    #[test]
    fn a_publisher_packet_keeps_the_relayed_values_under_the_relay_ids() {
        // A browser's audio: audio level at 1, mid at 4, TWCC at 3 (its own ids).
        let sender = ExtensionIds { audio_level: Some(1), ..Default::default() };
        let mut p = packet(&[(1, &[0x85]), (4, b"0"), (3, &[0, 9])]);
        relay(&mut p, &sender);
        assert_eq!(ids(&p), vec![(1, vec![0x85])]);
        assert!(p.header.extension);
        // Video orientation at 7 and playout delay at 9 become 13 and 12.
        let sender = ExtensionIds { video_orientation: Some(7), playout_delay: Some(9), ..Default::default() };
        let mut p = packet(&[(7, &[1]), (9, &[0, 0x10, 0x20]), (2, &[1, 2, 3])]);
        relay(&mut p, &sender);
        assert_eq!(ids(&p), vec![(13, vec![1]), (12, vec![0, 0x10, 0x20])]);
        // Nothing relayed: no extension header at all.
        let mut p = packet(&[(2, &[1, 2, 3])]);
        relay(&mut p, &sender);
        assert!(p.header.extensions.is_empty() && !p.header.extension);
    }

    #[test]
    fn a_subscriber_gets_the_relay_ids_renamed_to_its_own() {
        let mine = ExtensionIds { video_orientation: Some(3), playout_delay: None, audio_level: None };
        let mut p = packet(&[(13, &[1]), (12, &[0, 0x10, 0x20])]);
        rename(&mut p, &mine);
        // Orientation renamed; playout delay not negotiated here, so gone.
        assert_eq!(ids(&p), vec![(3, vec![1])]);
        // What webrtc-rs marshals agrees with the header's own size.
        use rtc::shared::marshal::{Marshal, MarshalSize};
        let bytes = p.marshal().expect("marshal");
        assert_eq!(bytes.len(), p.marshal_size());
        let mut none = packet(&[(13, &[1])]);
        rename(&mut none, &ExtensionIds::default());
        assert!(!none.header.extension && none.header.extensions.is_empty());
    }

    #[test]
    fn send_time_stamps_the_streams_that_negotiated_it() {
        let mut x = SendTime::new(Instant::now());
        x.bind(7, 5);
        let mut p = packet(&[(3, &[1])]);
        x.outgoing(&mut p, x.epoch + std::time::Duration::from_millis(1500));
        // 1.5 s = 0x060000 in 6.18 fixed point.
        assert_eq!(ids(&p), vec![(3, vec![1]), (5, vec![0x06, 0x00, 0x00])]);
        let mut other = packet(&[]);
        other.header.ssrc = 8;
        x.outgoing(&mut other, x.epoch);
        assert!(!other.header.extension);
    }

    #[test]
    fn abs_send_time_wraps_every_64_seconds() {
        let epoch = Instant::now();
        assert_eq!(abs_send_time(epoch, epoch + std::time::Duration::from_millis(250)), [0x01, 0x00, 0x00]);
        assert_eq!(abs_send_time(epoch, epoch + std::time::Duration::from_secs(64)), [0, 0, 0]);
    }

    #[test]
    fn each_offered_section_keeps_the_relayed_extensions_its_source_carries_in_id_order() {
        let sdp = "v=0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
            a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
            a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=sendonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
            a=extmap:13 urn:3gpp:video-orientation\r\n\
            a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
            a=extmap:12 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\na=sendonly\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:2\r\n\
            a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
            a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=inactive\r\n";
        let orientation_only = ExtensionIds { video_orientation: Some(3), ..Default::default() };
        let carried = |mindex| match mindex {
            0 => Some(ExtensionIds::RELAY),
            1 => Some(orientation_only),
            _ => None,
        };
        let expected = "v=0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
            a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
            a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=sendonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n\
            a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
            a=extmap:13 urn:3gpp:video-orientation\r\na=sendonly\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:2\r\n\
            a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=inactive\r\n";
        assert_eq!(offered(sdp, carried), expected);
    }
}
