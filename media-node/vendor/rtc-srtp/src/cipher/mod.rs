pub mod cipher_aead_aes_gcm;
pub mod cipher_aes_cm_hmac_sha1;

use bytes::BytesMut;
use crypto::{CryptoError, RTCCrypto};

use shared::error::{Error, Result};

type Kdf = fn(&dyn RTCCrypto, u8, &[u8], &[u8], usize, usize) -> Result<Vec<u8>>;

pub(crate) fn crypto_error(error: CryptoError) -> Error {
    Error::Crypto(error.to_string())
}

/// (Portunus) What decryption needs of an RTP header, read off the packet without parsing its
/// extensions (which allocates): where the payload starts, the SSRC and the sequence number.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RtpAt {
    pub header_len: usize,
    pub ssrc: u32,
    pub sequence_number: u16,
}

impl RtpAt {
    /// The same of a parsed header.
    pub fn from_header(header: &rtp::Header) -> Self {
        use shared::marshal::MarshalSize;
        Self { header_len: header.marshal_size(), ssrc: header.ssrc, sequence_number: header.sequence_number }
    }

    /// The fixed fields and the header's length (RFC 3550, 5.1 and 5.3.1): `None` when the
    /// packet is shorter than its header says or is not version 2.
    pub fn of(packet: &[u8]) -> Option<Self> {
        if packet.len() < 12 || packet[0] >> 6 != 2 {
            return None;
        }
        let mut header_len = 12 + 4 * usize::from(packet[0] & 0x0f);
        if packet[0] & 0x10 != 0 {
            let words = packet.get(header_len + 2..header_len + 4)?;
            header_len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
        }
        if packet.len() < header_len {
            return None;
        }
        Some(Self {
            header_len,
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
            sequence_number: u16::from_be_bytes([packet[2], packet[3]]),
        })
    }
}

///NOTE: Auth tag and AEAD auth tag are placed at the different position in SRTCP
///
///In non-AEAD cipher, the authentication tag is placed *after* the ESRTCP word
///(Encrypted-flag and SRTCP index).
///
///> AES_128_CM_HMAC_SHA1_80
///> | RTCP Header | Encrypted payload |E| SRTCP Index | Auth tag |
///>                                   ^               |----------|
///>                                   |                ^
///>                                   |                authTagLen=10
///>                                   aeadAuthTagLen=0
///
///In AEAD cipher, the AEAD authentication tag is embedded in the ciphertext.
///It is *before* the ESRTCP word (Encrypted-flag and SRTCP index).
///
///> AEAD_AES_128_GCM
///> | RTCP Header | Encrypted payload | AEAD auth tag |E| SRTCP Index |
///>                                   |---------------|               ^
///>                                    ^                              authTagLen=0
///>                                    aeadAuthTagLen=16
///
///See https://tools.ietf.org/html/rfc7714 for the full specifications.
///
/// Cipher represents a implementation of one
/// of the SRTP Specific ciphers.
pub(crate) trait Cipher: Send {
    /// Get RTP authenticated tag length.
    fn rtp_auth_tag_len(&self) -> usize;

    /// Get RTCP authenticated tag length.
    fn rtcp_auth_tag_len(&self) -> usize;

    /// Get AEAD auth key length of the cipher.
    fn aead_auth_tag_len(&self) -> usize;

    /// Retrieved RTCP index.
    fn get_rtcp_index(&self, input: &[u8]) -> usize;

    /// Encrypt RTP payload.
    fn encrypt_rtp(&mut self, payload: &[u8], header: &rtp::Header, roc: u32) -> Result<BytesMut> {
        let mut packet = BytesMut::with_capacity(payload.len() + self.rtp_auth_tag_len().max(self.aead_auth_tag_len()));
        packet.extend_from_slice(payload);
        self.encrypt_rtp_in_place(&mut packet, header, roc)?;
        Ok(packet)
    }

    /// (Portunus) Encrypts the RTP packet `packet` holds (header and payload, nothing else) in
    /// place and appends its tag, within `packet`'s capacity when it has room for the tag: the
    /// caller can encrypt into a buffer it keeps rather than a new one per packet.
    fn encrypt_rtp_in_place(&mut self, packet: &mut BytesMut, header: &rtp::Header, roc: u32) -> Result<()>;

    /// Decrypt RTP payload.
    fn decrypt_rtp(&mut self, payload: &[u8], header: &rtp::Header, roc: u32) -> Result<BytesMut> {
        let mut packet = BytesMut::from(payload);
        self.decrypt_rtp_in_place(&mut packet, RtpAt::from_header(header), roc)?;
        Ok(packet)
    }

    /// (Portunus) Checks the tag of the SRTP packet `packet` holds, decrypts its payload in place
    /// and drops the tag: the caller's datagram becomes the RTP packet, with no new buffer. On
    /// an error `packet` is left as it was or partly decrypted; the caller drops it.
    fn decrypt_rtp_in_place(&mut self, packet: &mut BytesMut, at: RtpAt, roc: u32) -> Result<()>;

    /// Encrypt RTCP payload.
    fn encrypt_rtcp(&mut self, payload: &[u8], srtcp_index: usize, ssrc: u32) -> Result<BytesMut>;

    /// Decrypt RTCP payload.
    fn decrypt_rtcp(&mut self, payload: &[u8], srtcp_index: usize, ssrc: u32) -> Result<BytesMut> {
        let mut packet = BytesMut::from(payload);
        self.decrypt_rtcp_in_place(&mut packet, srtcp_index, ssrc)?;
        Ok(packet)
    }

    /// (Portunus) Checks the tag of the SRTCP packet `packet` holds, decrypts it in place and
    /// drops its tag and index: the caller's datagram becomes the RTCP packet, with no new
    /// buffer. On an error `packet` is left as it was or partly decrypted; the caller drops it.
    fn decrypt_rtcp_in_place(&mut self, packet: &mut BytesMut, srtcp_index: usize, ssrc: u32) -> Result<()>;
}
