//! SRTP as the media node's patched webrtc-rs encrypts a subscriber's packets and decrypts a
//! publisher's packets and every peer's RTCP (`media-node/vendor/PATCHES.md`): in place, in a
//! buffer with room for the tag, and in the datagram's own buffer. Every profile a peer may
//! negotiate must round-trip across the sequence wrap, match libsrtp's known answers where the
//! crate has them, refuse a tampered or replayed packet, and cost no allocation of its own per
//! packet. A receiving context keeps state only for SSRCs whose packets authenticate, and for
//! a bounded number of them.

use bytes::{Bytes, BytesMut};
use portunus_tests::allocations;
use rtc::rtp;
use rtc::shared::marshal::{Marshal, MarshalSize, Unmarshal};
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;

#[global_allocator]
static ALLOCATOR: allocations::PerThread = allocations::PerThread;

/// Every profile a peer may negotiate.
const PROFILES: [ProtectionProfile; 4] = [
    ProtectionProfile::Aes128CmHmacSha1_80,
    ProtectionProfile::Aes128CmHmacSha1_32,
    ProtectionProfile::AeadAes128Gcm,
    ProtectionProfile::AeadAes256Gcm,
];

/// Sequence numbers past the 16-bit wrap, which moves the rollover counter both ends keep.
fn across_the_wrap() -> impl Iterator<Item = u16> {
    (65_500u16..=65_535).chain(0..40)
}

/// One end of an SRTP session with the test's keys; `replay_window` (for RTP and RTCP) as the
/// media node's contexts keep one (webrtc-rs's default, 64 packets), or none.
fn end(profile: ProtectionProfile, replay_window: Option<usize>) -> Context {
    let provider = rtc::crypto::default_provider().expect("a crypto provider");
    let key: Vec<u8> = (0..profile.key_len() as u8).collect();
    let salt: Vec<u8> = (0..profile.salt_len() as u8).map(|b| b ^ 0x5a).collect();
    let rtp_window = replay_window.map(rtc::srtp::option::srtp_replay_protection);
    let rtcp_window = replay_window.map(rtc::srtp::option::srtcp_replay_protection);
    Context::new(&key, &salt, profile, rtp_window, rtcp_window, provider.crypto()).expect("an SRTP context")
}

/// Two ends of one SRTP session: the sender's context and the receiver's (same keys).
fn ends(profile: ProtectionProfile) -> (Context, Context) {
    (end(profile, None), end(profile, None))
}

/// A forwarded video packet: a TWCC stamp in its header, `len` payload bytes.
fn packet(seq: u16, len: usize) -> rtp::Packet {
    let mut header = rtp::header::Header {
        version: 2,
        payload_type: 96,
        sequence_number: seq,
        timestamp: 90 * u32::from(seq),
        ssrc: 0x1234_5678,
        ..Default::default()
    };
    header.set_extension(3, Bytes::copy_from_slice(&seq.to_be_bytes())).expect("a one-byte extension");
    rtp::Packet { header, payload: Bytes::from((0..len).map(|i| (i as u8).wrapping_mul(7)).collect::<Vec<u8>>()) }
}

#[test]
fn every_profile_encrypts_in_place_what_the_peer_decrypts_without_allocating() {
    for profile in PROFILES {
        let (mut sender, mut receiver) = ends(profile);
        let mut buffer = BytesMut::with_capacity(4096);
        for (i, seq) in across_the_wrap().enumerate() {
            let p = packet(seq, 200 + 30 * (i % 40));
            let plain = p.marshal().expect("marshal");
            buffer.clear();
            buffer.extend_from_slice(&plain);
            let before = allocations::on_this_thread();
            sender.encrypt_rtp_in_place(&mut buffer, &p.header).expect("encrypt");
            let allocated = allocations::on_this_thread() - before;
            // The first packet files its SSRC's state.
            assert!(i == 0 || allocated == 0, "{profile:?}: encrypting seq {seq} allocated {allocated} times");
            assert!(buffer.len() > p.marshal_size(), "{profile:?}: a tag is appended");
            assert_ne!(
                &buffer[p.header.marshal_size()..plain.len()],
                &plain[p.header.marshal_size()..],
                "{profile:?}: encrypted"
            );
            let decrypted = receiver.decrypt_rtp(&buffer).unwrap_or_else(|e| panic!("{profile:?} seq {seq}: {e}"));
            assert_eq!(&decrypted[..], &plain[..], "{profile:?} seq {seq}: the peer reads what was sent");
        }
    }
}

/// A packet with no header extension, `len` payload bytes.
fn plain_packet(seq: u16, len: usize) -> rtp::Packet {
    let mut p = packet(seq, len);
    p.header.extension = false;
    p.header.extensions.clear();
    p
}

#[test]
fn every_profile_decrypts_in_place_what_was_encrypted_without_allocating() {
    for profile in PROFILES {
        let (mut sender, mut receiver) = ends(profile);
        for (i, seq) in across_the_wrap().enumerate() {
            let with_extension = i % 2 == 0;
            let p = if with_extension { packet(seq, 200 + 30 * (i % 40)) } else { plain_packet(seq, 1100) };
            let plain = p.marshal().expect("marshal");
            let mut datagram = sender.encrypt_rtp(&plain).expect("encrypt");
            let before = allocations::on_this_thread();
            receiver.decrypt_rtp_in_place(&mut datagram).unwrap_or_else(|e| panic!("{profile:?} seq {seq}: {e}"));
            let allocated = allocations::on_this_thread() - before;
            // The first packet files its SSRC's state.
            assert!(i == 0 || allocated == 0, "{profile:?}: decrypting seq {seq} allocated {allocated} times");
            assert_eq!(&datagram[..], &plain[..], "{profile:?} seq {seq}: the packet as sent, its tag dropped");
        }
    }
}

/// Each of `packets` (what it is, the packet) refused by `taken` (a receiver's in-place
/// decryption: whether it took the packet).
fn refused(profile: ProtectionProfile, mut taken: impl FnMut(&mut BytesMut) -> bool, packets: Vec<(String, BytesMut)>) {
    for (what, mut packet) in packets {
        assert!(!taken(&mut packet), "{profile:?}: {what} was accepted");
    }
}

/// `sent` with its byte `at` flipped, for each of `at`.
fn tampered(sent: &BytesMut, at: &[usize]) -> Vec<(String, BytesMut)> {
    let flipped = |at: usize| {
        let mut copy = sent.clone();
        copy[at] ^= 0x01;
        (format!("byte {at} flipped"), copy)
    };
    at.iter().map(|a| flipped(*a)).collect()
}

/// Replays of `packets` (their numbers, the packets), and a packet cut to `short` bytes.
fn replayed_and_short(packets: [(u16, &BytesMut); 2], short: usize) -> Vec<(String, BytesMut)> {
    let mut all: Vec<_> = packets.iter().map(|(n, p)| (format!("a replay of {n}"), (*p).clone())).collect();
    all.push(("a packet shorter than its tag".into(), BytesMut::from(&packets[1].1[..short])));
    all
}

#[test]
fn in_place_decryption_refuses_a_tampered_or_replayed_packet() {
    for profile in [ProtectionProfile::Aes128CmHmacSha1_80, ProtectionProfile::AeadAes128Gcm] {
        let (mut sender, mut receiver) = (end(profile, None), end(profile, Some(64)));
        let first = sender.encrypt_rtp(&plain_packet(7, 300).marshal().expect("marshal")).expect("encrypt");
        let sent = sender.encrypt_rtp(&plain_packet(8, 300).marshal().expect("marshal")).expect("encrypt");
        receiver.decrypt_rtp_in_place(&mut first.clone()).expect("the first packet");
        refused(profile, |p| receiver.decrypt_rtp_in_place(p).is_ok(), tampered(&sent, &[2, 20, sent.len() - 1]));
        receiver.decrypt_rtp_in_place(&mut sent.clone()).expect("the second packet, after its tampered copies");
        let again = replayed_and_short([(7, &first), (8, &sent)], 14);
        refused(profile, |p| receiver.decrypt_rtp_in_place(p).is_ok(), again);
    }
}

/// libsrtp's known answer, as webrtc-rs's SRTP crate tests it: master key 00..0f (twice for
/// AES-256), salt a0..ab / a0..ad, this packet.
const DECRYPTED_RTP: [u8; 28] = [
    0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
    0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
];
const ENCRYPTED_AEAD_AES_128_GCM_RTP: [u8; 44] = [
    0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0xc5, 0x00, 0x2e, 0xde, 0x04, 0xcf, 0xdd,
    0x2e, 0xb9, 0x11, 0x59, 0xe0, 0x88, 0x0a, 0xa0, 0x6e, 0xd2, 0x97, 0x68, 0x26, 0xf7, 0x96, 0xb2, 0x01, 0xdf, 0x31,
    0x31, 0xa1, 0x27, 0xe8, 0xa3, 0x92,
];
const ENCRYPTED_AES_256_CM_RTP: [u8; 38] = [
    0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0xac, 0x3b, 0xca, 0x88, 0x14, 0x37, 0x57,
    0x83, 0x35, 0xc6, 0xd4, 0x57, 0xf1, 0xc3, 0x6b, 0xa7, 0x3d, 0x71, 0x48, 0x63, 0x90, 0x9b, 0xbf, 0x15, 0xac, 0xec,
];

/// The same keys' SRTCP answers, for this sender report (index 1).
const DECRYPTED_RTCP: [u8; 24] = [
    0x81, 0xc8, 0x00, 0x0b, 0xca, 0xfe, 0xba, 0xbe, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
    0xab, 0xab, 0xab, 0xab, 0xab,
];
const ENCRYPTED_AEAD_AES_128_GCM_RTCP: [u8; 44] = [
    0x81, 0xc8, 0x00, 0x0b, 0xca, 0xfe, 0xba, 0xbe, 0xc9, 0x8b, 0x8b, 0x5d, 0xf0, 0x39, 0x2a, 0x55, 0x85, 0x2b, 0x6c,
    0x21, 0xac, 0x8e, 0x70, 0x25, 0xc5, 0x2c, 0x6f, 0xbe, 0xa2, 0xb3, 0xb4, 0x46, 0xea, 0x31, 0x12, 0x3b, 0xa8, 0x8c,
    0xe6, 0x1e, 0x80, 0x00, 0x00, 0x01,
];
const ENCRYPTED_AES_256_CM_RTCP: [u8; 38] = [
    0x81, 0xc8, 0x00, 0x0b, 0xca, 0xfe, 0xba, 0xbe, 0x97, 0x04, 0x31, 0xdc, 0x4a, 0xe6, 0xd2, 0xaf, 0xd6, 0x54, 0xbf,
    0x90, 0xf4, 0x35, 0x44, 0x9e, 0x80, 0x00, 0x00, 0x01, 0xbf, 0x18, 0x18, 0x2d, 0xd1, 0x18, 0x81, 0x28, 0x78, 0xb1,
];

/// The two profiles of libsrtp's known answers, each with a maker of its context and its
/// encrypted RTP and RTCP.
fn known_answers() -> [(ProtectionProfile, impl Fn() -> Context, &'static [u8], &'static [u8]); 2] {
    let context = |profile: ProtectionProfile, key: Vec<u8>, salt: Vec<u8>| {
        move || {
            let provider = rtc::crypto::default_provider().expect("a crypto provider");
            Context::new(&key, &salt, profile, None, None, provider.crypto()).expect("an SRTP context")
        }
    };
    let key16: Vec<u8> = (0..16).collect();
    let key32: Vec<u8> = (0..32).map(|b| b % 16).collect();
    [
        (
            ProtectionProfile::AeadAes128Gcm,
            context(ProtectionProfile::AeadAes128Gcm, key16, (0xa0..0xac).collect()),
            &ENCRYPTED_AEAD_AES_128_GCM_RTP,
            &ENCRYPTED_AEAD_AES_128_GCM_RTCP,
        ),
        (
            ProtectionProfile::Aes256CmHmacSha1_80,
            context(ProtectionProfile::Aes256CmHmacSha1_80, key32, (0xa0..0xae).collect()),
            &ENCRYPTED_AES_256_CM_RTP,
            &ENCRYPTED_AES_256_CM_RTCP,
        ),
    ]
}

#[test]
fn in_place_encryption_and_decryption_give_libsrtp_s_known_answers() {
    for (profile, context, encrypted_rtp, encrypted_rtcp) in known_answers() {
        let mut buffer = BytesMut::from(&DECRYPTED_RTP[..]);
        let header = rtp::header::Header::unmarshal(&mut &DECRYPTED_RTP[..]).expect("header");
        context().encrypt_rtp_in_place(&mut buffer, &header).expect("encrypt");
        assert_eq!(&buffer[..], encrypted_rtp, "{profile:?}: encrypted in place");
        let mut datagram = BytesMut::from(encrypted_rtp);
        context().decrypt_rtp_in_place(&mut datagram).expect("decrypt");
        assert_eq!(&datagram[..], &DECRYPTED_RTP[..], "{profile:?}: decrypted in place");

        let mut datagram = BytesMut::from(encrypted_rtcp);
        context().decrypt_rtcp_in_place(&mut datagram).expect("decrypt RTCP");
        assert_eq!(&datagram[..], &DECRYPTED_RTCP[..], "{profile:?}: RTCP decrypted in place");
    }
}

/// A receiver report with `blocks` report blocks: RTCP of a length that varies with them.
fn receiver_report(blocks: usize, seq: u32) -> Vec<u8> {
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::rtcp::reception_report::ReceptionReport;
    let block = |i: usize| ReceptionReport {
        ssrc: 0x1000 + i as u32,
        last_sequence_number: seq,
        jitter: 7 * i as u32,
        ..Default::default()
    };
    let report = ReceiverReport { ssrc: 0xcafe_babe, reports: (0..blocks).map(block).collect(), ..Default::default() };
    report.marshal().expect("marshal").to_vec()
}

#[test]
fn every_profile_decrypts_rtcp_in_place_without_allocating() {
    for profile in PROFILES {
        let (mut sender, mut receiver) = ends(profile);
        for i in 0..100 {
            let plain = receiver_report(1 + i % 4, i as u32);
            let mut datagram = sender.encrypt_rtcp(&plain).expect("encrypt");
            assert_ne!(&datagram[8..plain.len()], &plain[8..], "{profile:?}: encrypted");
            let before = allocations::on_this_thread();
            receiver.decrypt_rtcp_in_place(&mut datagram).unwrap_or_else(|e| panic!("{profile:?} report {i}: {e}"));
            let allocated = allocations::on_this_thread() - before;
            // The first packet files its SSRC's state.
            assert!(i == 0 || allocated == 0, "{profile:?}: decrypting report {i} allocated {allocated} times");
            assert_eq!(&datagram[..], &plain[..], "{profile:?} report {i}: as sent, its index and tag dropped");
        }
    }
}

/// An AES-CM profile's SRTCP tag length (none for the AEAD profiles, whose tag is not last).
fn aes_cm_tag_len(profile: ProtectionProfile) -> Option<usize> {
    match profile {
        ProtectionProfile::AeadAes128Gcm | ProtectionProfile::AeadAes256Gcm => None,
        p => Some(p.rtcp_auth_tag_len()),
    }
}

#[test]
fn in_place_rtcp_decryption_refuses_a_tampered_replayed_or_unflagged_packet() {
    for profile in PROFILES {
        let (mut sender, mut receiver) = (end(profile, None), end(profile, Some(64)));
        let first = sender.encrypt_rtcp(&receiver_report(1, 1)).expect("encrypt");
        let sent = sender.encrypt_rtcp(&receiver_report(2, 2)).expect("encrypt");
        receiver.decrypt_rtcp_in_place(&mut first.clone()).expect("the first packet");
        refused(profile, |p| receiver.decrypt_rtcp_in_place(p).is_ok(), tampered(&sent, &[9, 20, sent.len() - 1]));
        // The E flag (the index's top bit) cleared: with AES-CM the packet would be taken as
        // unencrypted, its ciphertext read as RTCP, were its tag not checked all the same.
        // (AES-GCM authenticates and decrypts it as flagged, whatever the flag says.)
        if let Some(tag_len) = aes_cm_tag_len(profile) {
            let mut unflagged = sent.clone();
            let flag = unflagged.len() - tag_len - 4;
            unflagged[flag] &= 0x7f;
            let unflagged = vec![("the E flag cleared".to_owned(), unflagged)];
            refused(profile, |p| receiver.decrypt_rtcp_in_place(p).is_ok(), unflagged);
        }
        receiver.decrypt_rtcp_in_place(&mut sent.clone()).expect("the second packet, after its altered copies");
        let again = replayed_and_short([(1, &first), (2, &sent)], 12);
        refused(profile, |p| receiver.decrypt_rtcp_in_place(p).is_ok(), again);
    }
}

/// What a receiving context may keep state for: as many SSRCs as the node's contexts allow.
const MAX_SSRCS: usize = rtc::srtp::context::MAX_DECRYPT_SSRCS;

/// `sent` with its last byte (the tag's) flipped: a forgery.
fn forged(sent: &BytesMut) -> BytesMut {
    let mut copy = sent.clone();
    *copy.last_mut().expect("a datagram") ^= 0x01;
    copy
}

/// A forged packet leaves nothing behind in the context that refused it, whatever SSRC it
/// names (libsrtp's rule: a stream is added once its first packet authenticates), so forgeries
/// under new SSRCs cannot grow a context or use up its SSRCs; a peer's own packets past
/// [`MAX_SSRCS`] SSRCs are refused while those already known still decrypt. RTP and RTCP.
#[test]
fn a_receiving_context_keeps_no_state_for_forgeries_and_a_bounded_number_of_ssrcs() {
    for profile in PROFILES {
        let mut sender = end(profile, None);
        let mut receiver = end(profile, Some(64));
        let rtp_from = |sender: &mut Context, ssrc: u32, seq: u16| {
            let mut p = plain_packet(seq, 100);
            p.header.ssrc = ssrc;
            sender.encrypt_rtp(&p.marshal().expect("marshal")).expect("encrypt")
        };
        let rtcp_from = |sender: &mut Context, ssrc: u32| {
            let mut plain = receiver_report(1, 7);
            plain[4..8].copy_from_slice(&ssrc.to_be_bytes());
            sender.encrypt_rtcp(&plain).expect("encrypt")
        };
        let forgeries = 3 * MAX_SSRCS as u32;
        let rtp: Vec<_> = (0..forgeries).map(|i| forged(&rtp_from(&mut sender, 0x9000_0000 + i, 1))).collect();
        let rtcp: Vec<_> = (0..forgeries).map(|i| forged(&rtcp_from(&mut sender, 0x9000_0000 + i))).collect();
        let before = allocations::on_this_thread();
        for mut p in rtp {
            assert!(receiver.decrypt_rtp_in_place(&mut p).is_err(), "{profile:?}: a forged RTP packet was taken");
        }
        for mut p in rtcp {
            assert!(receiver.decrypt_rtcp_in_place(&mut p).is_err(), "{profile:?}: a forged RTCP packet was taken");
        }
        let allocated = allocations::on_this_thread() - before;
        assert_eq!(allocated, 0, "{profile:?}: {forgeries} forged RTP and RTCP packets under new SSRCs left state");

        // The same SSRCs, authentic: each taken up to the limit, then refused.
        for i in 0..=MAX_SSRCS as u32 {
            let (mut p, mut r) = (rtp_from(&mut sender, 0x9000_0000 + i, 1), rtcp_from(&mut sender, 0x9000_0000 + i));
            let (rtp_taken, rtcp_taken) =
                (receiver.decrypt_rtp_in_place(&mut p).is_ok(), receiver.decrypt_rtcp_in_place(&mut r).is_ok());
            let room = (i as usize) < MAX_SSRCS;
            assert_eq!(rtp_taken, room, "{profile:?}: RTP from SSRC {} of {MAX_SSRCS}", i + 1);
            assert_eq!(rtcp_taken, room, "{profile:?}: RTCP from SSRC {} of {MAX_SSRCS}", i + 1);
        }
        let (mut p, mut r) = (rtp_from(&mut sender, 0x9000_0000, 2), rtcp_from(&mut sender, 0x9000_0000));
        receiver.decrypt_rtp_in_place(&mut p).unwrap_or_else(|e| panic!("{profile:?}: a known SSRC's RTP: {e}"));
        receiver.decrypt_rtcp_in_place(&mut r).unwrap_or_else(|e| panic!("{profile:?}: a known SSRC's RTCP: {e}"));
    }
}
