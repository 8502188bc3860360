//! An RTP packet as the forwarder handles it: parsed, read for keyframes (VP8, VP9, H.264, AV1),
//! VP8 temporal layers, an audio level and a remote publisher's SSRC; its header extensions
//! reduced to the relayed ones and renamed for a subscriber (then marshalled: the size it states
//! must be the size it writes), given a subscriber's SSRC and payload type, and rewritten for
//! continuity.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media_node::media::codec::VideoCodec;
use media_node::media::{extensions, outgoing, rewrite::Rewriter, talk, vp8};
use media_node::shared::media::ExtensionIds;
use media_node::shared::janus::videoroom::remote;
use rtc::rtp;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    use rtc::shared::marshal::Unmarshal;
    let mut buf = data;
    let Ok(mut packet) = rtp::Packet::unmarshal(&mut buf) else { return };
    let _ = vp8::vp8_is_keyframe(&packet.payload);
    let _ = vp8::vp8_temporal_id(&packet.payload);
    for codec in [VideoCodec::Vp9, VideoCodec::H264, VideoCodec::Av1] {
        let _ = codec.is_keyframe(&packet.payload);
    }
    let _ = talk::audio_level(&packet.header, 1);
    let _ = remote::from_remote_ssrc(packet.header.ssrc);
    let mut rewriter = Rewriter::new(90_000);
    let t0 = Instant::now();
    let mut second = packet.clone();
    let browser = ExtensionIds { audio_level: Some(1), video_orientation: Some(3), playout_delay: Some(12) };
    extensions::relay(&mut packet, &browser);
    let subscriber = ExtensionIds { audio_level: Some(13), video_orientation: Some(1), playout_delay: None };
    let negotiated = outgoing::Negotiated { payload_type: 96, extensions: subscriber };
    outgoing::rewrite_for_subscriber(&mut packet, 0x1234_5678, &negotiated);
    {
        use rtc::shared::marshal::{Marshal, MarshalSize};
        if let Ok(bytes) = packet.marshal() {
            assert_eq!(bytes.len(), packet.marshal_size());
        }
    }
    let _ = rewriter.rewrite(&mut packet, || t0);
    // A gap of ours, then the same packet again far on.
    rewriter.open_gap(std::time::Instant::now);
    second.header.sequence_number = second.header.sequence_number.wrapping_add(30_000);
    second.header.timestamp = second.header.timestamp.wrapping_add(u32::MAX / 2);
    let _ = rewriter.rewrite(&mut second, || t0 + Duration::from_secs(3));
});
