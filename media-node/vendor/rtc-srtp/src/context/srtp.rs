use super::*;
use shared::{
    error::{Error, Result},
    marshal::Unmarshal,
};

use bytes::BytesMut;
use crate::cipher::RtpAt;

impl Context {
    /// Decrypts an SRTP packet whose header has already been parsed.
    ///
    /// Saves re-parsing when the caller needed the header to route the packet. The header must
    /// be the one belonging to `encrypted`.
    ///
    /// # Errors
    ///
    /// Fails if authentication fails, if the packet is a replay, or if it is too short to hold
    /// the profile's auth tag.
    pub fn decrypt_rtp_with_header(
        &mut self,
        encrypted: &[u8],
        header: &rtp::Header,
    ) -> Result<BytesMut> {
        let at = RtpAt::from_header(header);
        let (roc, diff) = self.admit_rtp(encrypted.len(), at)?;
        let mut dst = BytesMut::from(encrypted);
        self.cipher.decrypt_rtp_in_place(&mut dst, at, roc)?;
        self.accept_rtp(at, diff);
        Ok(dst)
    }

    /// (Portunus) Decrypts the SRTP packet `packet` holds in place: checked as
    /// [`Context::decrypt_rtp`] checks it, the payload decrypted and the auth tag dropped, so
    /// that the datagram becomes the RTP packet without a new buffer. Only the header's fixed
    /// fields and length are read, so this allocates nothing.
    ///
    /// # Errors
    ///
    /// As [`Context::decrypt_rtp`]; `packet` may then be partly decrypted.
    pub fn decrypt_rtp_in_place(&mut self, packet: &mut BytesMut) -> Result<()> {
        let at = RtpAt::of(packet).ok_or(Error::ErrTooShortRtp)?;
        let (roc, diff) = self.admit_rtp(packet.len(), at)?;
        self.cipher.decrypt_rtp_in_place(packet, at, roc)?;
        self.accept_rtp(at, diff);
        Ok(())
    }

    /// Whether an SRTP packet of `len` bytes (its header `at`) may be decrypted (long enough
    /// for its tag, not a replay): its rollover counter and sequence distance if so.
    fn admit_rtp(&mut self, len: usize, at: RtpAt) -> Result<(u32, i32)> {
        let auth_tag_len = self.cipher.rtp_auth_tag_len();
        if len < at.header_len + auth_tag_len {
            return Err(Error::ErrTooShortRtp);
        }

        // (Portunus) Read, not created: an SSRC gets its state once a packet authenticates
        // (`accept_rtp`). Until then it is what a new state would say.
        let Some(state) = self.srtp_ssrc_states.get_mut(&at.ssrc) else {
            if self.srtp_ssrc_states.len() >= MAX_DECRYPT_SSRCS {
                return Err(Error::TooManySources);
            }
            let (roc, diff, _) = SrtpSsrcState::default().next_rollover_count(at.sequence_number);
            return Ok((roc, diff));
        };
        let (roc, diff, _) = state.next_rollover_count(at.sequence_number);
        if let Some(replay_detector) = &mut state.replay_detector
            && !replay_detector.check(at.sequence_number as u64)
        {
            return Err(Error::SrtpSsrcDuplicated(at.ssrc, at.sequence_number));
        }
        Ok((roc, diff))
    }

    /// A packet [`Context::admit_rtp`] admitted was authentic: the replay window and the
    /// rollover counter move on (for a new SSRC, from a state made now).
    fn accept_rtp(&mut self, at: RtpAt, diff: i32) {
        let state = match self.srtp_ssrc_states.get_mut(&at.ssrc) {
            Some(state) => state,
            None => {
                // Admitted, so below the limit: its first authentic packet.
                let state = self.get_srtp_ssrc_state(at.ssrc);
                if let Some(replay_detector) = &mut state.replay_detector {
                    replay_detector.check(at.sequence_number as u64);
                }
                state
            }
        };
        if let Some(replay_detector) = &mut state.replay_detector {
            replay_detector.accept();
        }
        state.update_rollover_count(at.sequence_number, diff);
    }

    /// DecryptRTP decrypts a RTP packet with an encrypted payload
    pub fn decrypt_rtp(&mut self, encrypted: &[u8]) -> Result<BytesMut> {
        let mut buf = encrypted;
        let header = rtp::Header::unmarshal(&mut buf)?;
        self.decrypt_rtp_with_header(encrypted, &header)
    }

    /// Encrypts an RTP payload, using an already-parsed header.
    ///
    /// Saves re-parsing when the caller has just built the header. Returns the full protected
    /// packet, header included.
    ///
    /// # Errors
    ///
    /// Fails if the SRTP context has no key for this SSRC or the cipher rejects the input.
    pub fn encrypt_rtp_with_header(
        &mut self,
        plaintext: &[u8],
        header: &rtp::Header,
    ) -> Result<BytesMut> {
        let (roc, diff, ovf) = self
            .get_srtp_ssrc_state(header.ssrc)
            .next_rollover_count(header.sequence_number);
        if ovf {
            // ... when 2^48 SRTP packets or 2^31 SRTCP packets have been secured with the same key
            // (whichever occurs before), the key management MUST be called to provide new master key(s)
            // (previously stored and used keys MUST NOT be used again), or the session MUST be terminated.
            // https://www.rfc-editor.org/rfc/rfc3711#section-9.2
            return Err(Error::ErrExceededMaxPackets);
        }

        let dst = self.cipher.encrypt_rtp(plaintext, header, roc)?;

        self.get_srtp_ssrc_state(header.ssrc)
            .update_rollover_count(header.sequence_number, diff);

        Ok(dst)
    }

    /// (Portunus) Encrypts the RTP packet `packet` holds (`header` its parsed header) in place,
    /// appending the auth tag: no new buffer when `packet` has room for the tag.
    ///
    /// # Errors
    ///
    /// As [`Context::encrypt_rtp_with_header`]; `packet` is then left partly encrypted.
    pub fn encrypt_rtp_in_place(&mut self, packet: &mut BytesMut, header: &rtp::Header) -> Result<()> {
        let (roc, diff, ovf) = self
            .get_srtp_ssrc_state(header.ssrc)
            .next_rollover_count(header.sequence_number);
        if ovf {
            return Err(Error::ErrExceededMaxPackets);
        }

        self.cipher.encrypt_rtp_in_place(packet, header, roc)?;

        self.get_srtp_ssrc_state(header.ssrc)
            .update_rollover_count(header.sequence_number, diff);

        Ok(())
    }

    /// EncryptRTP marshals and encrypts an RTP packet, writing to the dst buffer provided.
    /// If the dst buffer does not have the capacity to hold `len(plaintext) + 10` bytes, a new one will be allocated and returned.
    pub fn encrypt_rtp(&mut self, plaintext: &[u8]) -> Result<BytesMut> {
        let mut buf = plaintext;
        let header = rtp::Header::unmarshal(&mut buf)?;
        self.encrypt_rtp_with_header(plaintext, &header)
    }
}
