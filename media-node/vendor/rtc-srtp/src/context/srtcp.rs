use super::*;
use crate::key_derivation::SRTCP_INDEX_SIZE;
use shared::{
    error::{Error, Result},
    marshal::Unmarshal,
};

use bytes::BytesMut;

impl Context {
    /// DecryptRTCP decrypts a RTCP packet with an encrypted payload
    pub fn decrypt_rtcp(&mut self, encrypted: &[u8]) -> Result<BytesMut> {
        let mut packet = BytesMut::from(encrypted);
        self.decrypt_rtcp_in_place(&mut packet)?;
        Ok(packet)
    }

    /// (Portunus) Decrypts the SRTCP packet `packet` holds in place (see
    /// [`Cipher::decrypt_rtcp_in_place`]): the datagram becomes the RTCP packet.
    pub fn decrypt_rtcp_in_place(&mut self, packet: &mut BytesMut) -> Result<()> {
        // A received SRTCP packet must be at least the minimum valid size for the
        // negotiated profile: the RTCP header through the SSRC (read at bytes
        // 4..8), the trailing SRTCP index, and the auth tag that `get_rtcp_index`
        // and the cipher read from the end (the HMAC tag for AES-CM, the AEAD tag
        // for GCM). A shorter packet from the network would otherwise index out
        // of bounds and panic (a remotely triggerable DoS). This is self-
        // contained: it does not rely on the individual ciphers' own guards.
        let min_len = 8
            + SRTCP_INDEX_SIZE
            + self.cipher.rtcp_auth_tag_len()
            + self.cipher.aead_auth_tag_len();
        if packet.len() < min_len {
            return Err(Error::ErrTooShortRtcp);
        }

        let mut buf = &packet[..];
        rtcp::Header::unmarshal(&mut buf)?;

        let index = self.cipher.get_rtcp_index(packet);
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);

        // (Portunus) An SSRC gets its state once a packet authenticates, not before: a forged
        // packet leaves nothing behind, as libsrtp adds a stream only then.
        let full = self.srtcp_ssrc_states.len() >= MAX_DECRYPT_SSRCS;
        let new = match self.srtcp_ssrc_states.get_mut(&ssrc) {
            Some(state) => {
                if let Some(replay_detector) = &mut state.replay_detector
                    && !replay_detector.check(index as u64)
                {
                    return Err(Error::SrtcpSsrcDuplicated(ssrc, index));
                }
                false
            }
            None if full => return Err(Error::TooManySources),
            None => true,
        };

        self.cipher.decrypt_rtcp_in_place(packet, index, ssrc)?;

        let state = self.get_srtcp_ssrc_state(ssrc);
        if let Some(replay_detector) = &mut state.replay_detector {
            if new {
                replay_detector.check(index as u64);
            }
            replay_detector.accept();
        }

        Ok(())
    }

    /// EncryptRTCP marshals and encrypts an RTCP packet, writing to the dst buffer provided.
    /// If the dst buffer does not have the capacity to hold `len(plaintext) + 14` bytes, a new one will be allocated and returned.
    pub fn encrypt_rtcp(&mut self, decrypted: &[u8]) -> Result<BytesMut> {
        if decrypted.len() < 8 {
            return Err(Error::ErrTooShortRtcp);
        }

        let mut buf = decrypted;
        rtcp::Header::unmarshal(&mut buf)?;

        let ssrc = u32::from_be_bytes([decrypted[4], decrypted[5], decrypted[6], decrypted[7]]);

        let index = {
            let state = self.get_srtcp_ssrc_state(ssrc);
            state.srtcp_index += 1;
            if state.srtcp_index > MAX_SRTCP_INDEX {
                state.srtcp_index = 0;
            }
            state.srtcp_index
        };

        self.cipher.encrypt_rtcp(decrypted, index, ssrc)
    }
}
