//! SRTP as the media node's patched webrtc-rs encrypts a subscriber's packets and decrypts a
//! publisher's (`media-node/vendor/PATCHES.md`): in place, in a buffer with room for the tag, and
//! in the datagram's own buffer. Every profile a peer may negotiate must round-trip across the
//! sequence wrap, match libsrtp's known answers where the crate has them, refuse a tampered or
//! replayed packet, and cost no allocation of its own per packet.

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

/// One end of an SRTP session with the test's keys; `replay_window` as the media node's
/// contexts keep one (webrtc-rs's default, 64 packets), or none.
fn end(profile: ProtectionProfile, replay_window: Option<usize>) -> Context {
    let provider = rtc::crypto::default_provider().expect("a crypto provider");
    let key: Vec<u8> = (0..profile.key_len() as u8).collect();
    let salt: Vec<u8> = (0..profile.salt_len() as u8).map(|b| b ^ 0x5a).collect();
    let window = replay_window.map(rtc::srtp::option::srtp_replay_protection);
    Context::new(&key, &salt, profile, window, None, provider.crypto()).expect("an SRTP context")
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

#[test]
fn in_place_decryption_refuses_a_tampered_or_replayed_packet() {
    for profile in [ProtectionProfile::Aes128CmHmacSha1_80, ProtectionProfile::AeadAes128Gcm] {
        let (mut sender, mut receiver) = (end(profile, None), end(profile, Some(64)));
        let first = sender.encrypt_rtp(&plain_packet(7, 300).marshal().expect("marshal")).expect("encrypt");
        let sent = sender.encrypt_rtp(&plain_packet(8, 300).marshal().expect("marshal")).expect("encrypt");
        receiver.decrypt_rtp_in_place(&mut first.clone()).expect("the first packet");
        for at in [2, 20, sent.len() - 1] {
            let mut tampered = sent.clone();
            tampered[at] ^= 0x01;
            assert!(
                receiver.decrypt_rtp_in_place(&mut tampered).is_err(),
                "{profile:?}: byte {at} flipped was accepted"
            );
        }
        receiver.decrypt_rtp_in_place(&mut sent.clone()).expect("the second packet, after its tampered copies");
        for (n, replayed) in [(7, &first), (8, &sent)] {
            let mut again = replayed.clone();
            assert!(receiver.decrypt_rtp_in_place(&mut again).is_err(), "{profile:?}: a replay of {n} was accepted");
        }
        let mut short = BytesMut::from(&sent[..14]);
        assert!(receiver.decrypt_rtp_in_place(&mut short).is_err(), "{profile:?}: a packet shorter than its tag");
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

#[test]
fn in_place_encryption_and_decryption_give_libsrtp_s_known_answers() {
    let provider = rtc::crypto::default_provider().expect("a crypto provider");
    let key16: Vec<u8> = (0..16).collect();
    let key32: Vec<u8> = (0..32).map(|b| b % 16).collect();
    let salt12: Vec<u8> = (0xa0..0xac).collect();
    let salt14: Vec<u8> = (0xa0..0xae).collect();
    let cases: [(ProtectionProfile, &[u8], &[u8], &[u8]); 2] = [
        (ProtectionProfile::AeadAes128Gcm, &key16, &salt12, &ENCRYPTED_AEAD_AES_128_GCM_RTP),
        (ProtectionProfile::Aes256CmHmacSha1_80, &key32, &salt14, &ENCRYPTED_AES_256_CM_RTP),
    ];
    for (profile, key, salt, encrypted) in cases {
        let context = || Context::new(key, salt, profile, None, None, provider.crypto()).expect("an SRTP context");
        let mut buffer = BytesMut::from(&DECRYPTED_RTP[..]);
        let header = rtp::header::Header::unmarshal(&mut &DECRYPTED_RTP[..]).expect("header");
        context().encrypt_rtp_in_place(&mut buffer, &header).expect("encrypt");
        assert_eq!(&buffer[..], encrypted, "{profile:?}: encrypted in place");
        let mut datagram = BytesMut::from(encrypted);
        context().decrypt_rtp_in_place(&mut datagram).expect("decrypt");
        assert_eq!(&datagram[..], &DECRYPTED_RTP[..], "{profile:?}: decrypted in place");
    }
}
