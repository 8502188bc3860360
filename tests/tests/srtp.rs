//! SRTP as the media node's patched webrtc-rs encrypts a subscriber's packets
//! (`media-node/vendor/PATCHES.md`): in place, in a buffer with room for the tag. Every profile a
//! peer may negotiate must give what the peer's unpatched decryption accepts, and encrypting
//! must cost no allocation.

use bytes::{Bytes, BytesMut};
use portunus_tests::allocations;
use rtc::rtp;
use rtc::shared::marshal::{Marshal, MarshalSize};
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;

#[global_allocator]
static ALLOCATOR: allocations::PerThread = allocations::PerThread;

/// Two ends of one SRTP session: the sender's context and the receiver's (same keys).
fn ends(profile: ProtectionProfile) -> (Context, Context) {
    let provider = rtc::crypto::default_provider().expect("a crypto provider");
    let key: Vec<u8> = (0..profile.key_len() as u8).collect();
    let salt: Vec<u8> = (0..profile.salt_len() as u8).map(|b| b ^ 0x5a).collect();
    let end = || Context::new(&key, &salt, profile, None, None, provider.crypto()).expect("an SRTP context");
    (end(), end())
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
    let profiles = [
        ProtectionProfile::Aes128CmHmacSha1_80,
        ProtectionProfile::Aes128CmHmacSha1_32,
        ProtectionProfile::AeadAes128Gcm,
        ProtectionProfile::AeadAes256Gcm,
    ];
    for profile in profiles {
        let (mut sender, mut receiver) = ends(profile);
        let mut buffer = BytesMut::with_capacity(4096);
        // Past the 16-bit sequence's wrap, which moves the rollover counter both ends keep.
        for (i, seq) in (65_500u16..=65_535).chain(0..40).enumerate() {
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
