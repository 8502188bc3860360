use crate::peer_connection::handler::WriteInPlace;
use crate::peer_connection::event::{RTCEventInternal, TaggedRTCEventInternal};
use crate::peer_connection::message::internal::{
    RTCMessageInternal, RTPMessage, TaggedRTCMessageInternal,
};

use interceptor::InPlace;
use bytes::BytesMut;
use interceptor::Packet;
use log::{debug, warn};
use shared::TransportContext;
use shared::error::{Error, Result};
use shared::marshal::{Marshal, MarshalSize, Unmarshal};
use shared::util::is_rtcp;
use srtp::context::Context;
use std::collections::VecDeque;
use std::time::Instant;

#[derive(Default)]
pub(crate) struct SrtpHandlerContext {
    pub(crate) local_srtp_context: Option<Context>,
    pub(crate) remote_srtp_context: Option<Context>,

    pub(crate) read_outs: VecDeque<TaggedRTCMessageInternal>,
    pub(crate) write_outs: VecDeque<TaggedRTCMessageInternal>,
    pub(crate) event_outs: VecDeque<TaggedRTCEventInternal>,

    /// (Portunus) Extension lists of RTP packets written, emptied once marshalled (at most
    /// `SPARE_EXTENSION_LISTS`): `RTCRtpSender::write_rtp` moves a full one's entries into one.
    /// Several, because a burst is written before any of it is marshalled.
    pub(crate) spare_extensions: Vec<Vec<rtp::header::Extension>>,

    /// (Portunus) RTCP holding only transport-wide congestion control feedback is dropped
    /// unparsed (`SettingEngineBuilder::with_transport_feedback_dropped`).
    pub(crate) drop_transport_feedback: bool,
}

/// (Portunus) Whether the RTCP `compound` holds nothing but transport-wide congestion control
/// feedback (payload type 205, format 15), walked by its packets' length fields.
fn only_transport_feedback(compound: &[u8]) -> bool {
    let mut rest = compound;
    while rest.len() >= 4 {
        let (format, payload_type) = (rest[0] & 0x1f, rest[1]);
        if payload_type != 205 || format != 15 {
            return false;
        }
        let len = 4 * (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1);
        if len > rest.len() {
            return false;
        }
        rest = &rest[len..];
    }
    rest.is_empty() && !compound.is_empty()
}

thread_local! {
    /// (Portunus) Where this thread's outbound RTP packets are marshalled and encrypted in place,
    /// each then split off as its datagram. Once every datagram split off it has been sent and
    /// dropped (a PeerConnection's driver sends what it wrote before another runs), `try_reclaim`
    /// takes it back to its start: the packets of every PeerConnection on the thread reuse the
    /// same memory, warm in the cache, and a packet costs no allocation of its own.
    static DATAGRAMS: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

/// (Portunus) Marshals `packet` at the end of `datagrams`, encrypts it there and splits it off.
fn seal(datagrams: &mut BytesMut, context: &mut Context, packet: &rtp::packet::Packet) -> Result<BytesMut> {
    if datagrams.capacity() == 0 {
        *datagrams = BytesMut::with_capacity(DATAGRAMS_CAPACITY);
    }
    // Back to the buffer's start once every datagram before has gone, so that a burst wraps
    // only when it is larger than the buffer.
    let _ = datagrams.try_reclaim(DATAGRAMS_CAPACITY);
    let size = packet.marshal_size();
    datagrams.reserve(size + SRTP_MAX_TAG_LEN);
    datagrams.resize(size, 0);
    let sealed = packet.marshal_to(datagrams).and_then(|n| {
        if n != size {
            return Err(Error::Other(format!(
                "marshal_to output size {n}, but expect {size}"
            )));
        }
        context.encrypt_rtp_in_place(datagrams, &packet.header)
    });
    if let Err(e) = sealed {
        datagrams.clear();
        return Err(e);
    }
    Ok(datagrams.split())
}

/// (Portunus) The thread's datagram buffer's size: what one driver writes before it sends (a
/// video frame's packets to a subscriber) fits many times over; a burst that finds it full with
/// datagrams not yet sent takes a new one.
const DATAGRAMS_CAPACITY: usize = 64 * 1024;

/// (Portunus) How many emptied extension lists are kept: a burst's worth.
const SPARE_EXTENSION_LISTS: usize = 16;

/// (Portunus) The longest SRTP auth tag (AEAD AES-GCM's; HMAC-SHA1-80's is 10 bytes).
const SRTP_MAX_TAG_LEN: usize = 16;

/// SrtpHandler implements SRTP/RTP/RTCP Protocols handling
pub(crate) struct SrtpHandler<'a> {
    ctx: &'a mut SrtpHandlerContext,
}

impl WriteInPlace for SrtpHandler<'_> {
    /// An RTP packet is sealed where it lies; what is not RTP goes by; the rest (RTCP, raw
    /// RTP, errors) goes in by value.
    fn write_in_place(&mut self, msg: &mut TaggedRTCMessageInternal) -> InPlace {
        if !self.ctx.write_outs.is_empty() {
            return InPlace::Declined;
        }
        let rtp_message = match &mut msg.message {
            RTCMessageInternal::Rtp(RTPMessage::Packet(Packet::Rtp(rtp_message))) => rtp_message,
            RTCMessageInternal::Rtp(_) => return InPlace::Declined,
            _ => return InPlace::Passed,
        };
        match self.seal_rtp(rtp_message, &msg.transport) {
            Ok(datagram) => {
                msg.message = RTCMessageInternal::Rtp(RTPMessage::Raw(datagram));
                InPlace::Passed
            }
            Err(err) => {
                warn!("{}.handle_write got error: {}", self.name(), err);
                InPlace::Dropped
            }
        }
    }
}

impl<'a> SrtpHandler<'a> {
    pub(crate) fn new(ctx: &'a mut SrtpHandlerContext) -> Self {
        SrtpHandler { ctx }
    }

    /// (Portunus) Marshalled into the thread's datagram buffer and encrypted there, with the
    /// header in hand rather than one parsed back out of those bytes; the datagram is split off
    /// it. The packet's extension list is kept for a later packet's written header
    /// (`RTCRtpSender::write_rtp`).
    fn seal_rtp(&mut self, rtp_message: &mut rtp::Packet, transport: &TransportContext) -> Result<BytesMut> {
        let Some(context) = self.ctx.local_srtp_context.as_mut() else {
            return Err(Error::Other(format!(
                "local_srtp_context is not set yet for rtp_packet {:?}",
                transport.peer_addr
            )));
        };
        let datagram = DATAGRAMS.with_borrow_mut(|datagrams| seal(datagrams, context, rtp_message))?;
        let mut extensions = std::mem::take(&mut rtp_message.header.extensions);
        let spares = &mut self.ctx.spare_extensions;
        if extensions.capacity() > 0 && spares.len() < SPARE_EXTENSION_LISTS {
            extensions.clear();
            spares.push(extensions);
        }
        Ok(datagram)
    }

    pub(crate) fn name(&self) -> &'static str {
        "SrtpHandler"
    }
}

impl<'a>
    sansio::Protocol<TaggedRTCMessageInternal, TaggedRTCMessageInternal, TaggedRTCEventInternal>
    for SrtpHandler<'a>
{
    type Rout = TaggedRTCMessageInternal;
    type Wout = TaggedRTCMessageInternal;
    type Eout = TaggedRTCEventInternal;
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedRTCMessageInternal) -> Result<()> {
        if let RTCMessageInternal::Rtp(RTPMessage::Raw(message)) = msg.message {
            debug!("srtp read {:?}", msg.transport.peer_addr);

            #[allow(clippy::collapsible_else_if)]
            if is_rtcp(&message) {
                if let Some(context) = self.ctx.remote_srtp_context.as_mut() {
                    // (Portunus) Decrypted in the datagram's own buffer, as RTP is.
                    let mut decrypted = message;
                    context.decrypt_rtcp_in_place(&mut decrypted)?;
                    if self.ctx.drop_transport_feedback && only_transport_feedback(&decrypted) {
                        return Ok(());
                    }
                    let rtcp_packets = rtcp::packet::unmarshal(&mut decrypted)?;
                    if rtcp_packets.is_empty() {
                        return Err(Error::Other("empty rtcp_packets".to_string()));
                    }

                    self.ctx.read_outs.push_back(TaggedRTCMessageInternal {
                        now: msg.now,
                        transport: msg.transport,
                        message: RTCMessageInternal::Rtp(RTPMessage::Packet(Packet::Rtcp(
                            rtcp_packets,
                        ))),
                    });
                } else {
                    return Err(Error::Other(format!(
                        "remote_srtp_context is not set yet for rtcp_packet {:?}",
                        msg.transport.peer_addr
                    )));
                }
            } else {
                if let Some(context) = self.ctx.remote_srtp_context.as_mut() {
                    // (Portunus) Decrypted in the datagram's own buffer, which becomes the
                    // packet's: `decrypt_rtp` copied it into a new one.
                    let mut decrypted = message;
                    context.decrypt_rtp_in_place(&mut decrypted)?;
                    let rtp_packet = rtp::Packet::unmarshal(&mut decrypted)?;

                    self.ctx.read_outs.push_back(TaggedRTCMessageInternal {
                        now: msg.now,
                        transport: msg.transport,
                        message: RTCMessageInternal::Rtp(RTPMessage::Packet(Packet::Rtp(
                            rtp_packet,
                        ))),
                    });
                } else {
                    return Err(Error::Other(format!(
                        "remote_srtp_context is not set yet for rtp_packet {:?}",
                        msg.transport.peer_addr
                    )));
                }
            }
        } else {
            debug!("bypass srtp read {:?}", msg.transport.peer_addr);
            self.ctx.read_outs.push_back(msg);
        }
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.ctx.read_outs.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedRTCMessageInternal) -> Result<()> {
        if let RTCMessageInternal::Rtp(message) = msg.message {
            debug!("srtp write {:?}", msg.transport.peer_addr);

            let encrypted = match message {
                RTPMessage::Packet(Packet::Rtcp(rtcp_packets)) => {
                    if rtcp_packets.is_empty() {
                        return Err(Error::Other("empty rtcp_packets".to_string()));
                    };

                    if let Some(context) = self.ctx.local_srtp_context.as_mut() {
                        let packet = rtcp::packet::marshal(&rtcp_packets)?;
                        context.encrypt_rtcp(&packet)?
                    } else {
                        return Err(Error::Other(format!(
                            "local_srp_context is not set yet for rtcp_packet {:?}",
                            msg.transport.peer_addr
                        )));
                    }
                }
                RTPMessage::Packet(Packet::Rtp(mut rtp_message)) => {
                    self.seal_rtp(&mut rtp_message, &msg.transport)?
                }
                RTPMessage::Raw(raw_packet) => {
                    // Bypass
                    debug!("Bypass srtp write {:?}", msg.transport.peer_addr);
                    raw_packet
                }
                RTPMessage::TrackPacket(_) => {
                    return Err(Error::Other(
                        "application level track message should never reach here".to_string(),
                    ));
                }
                RTPMessage::Packet(_) => {
                    return Err(Error::Other(
                        "unsupported packet kind for srtp write".to_string(),
                    ));
                }
            };

            self.ctx.write_outs.push_back(TaggedRTCMessageInternal {
                now: msg.now,
                transport: msg.transport,
                message: RTCMessageInternal::Rtp(RTPMessage::Raw(encrypted)),
            });
        } else {
            // Bypass
            debug!("Bypass srtp write {:?}", msg.transport.peer_addr);
            self.ctx.write_outs.push_back(msg);
        }
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.ctx.write_outs.pop_front()
    }

    fn handle_event(&mut self, mut evt: TaggedRTCEventInternal) -> Result<()> {
        if let RTCEventInternal::DTLSHandshakeComplete(local_srtp_context, remote_srtp_context) =
            &mut evt.event
        {
            debug!("srtp recv dtls handshake complete");

            self.ctx.local_srtp_context = local_srtp_context.take();
            self.ctx.remote_srtp_context = remote_srtp_context.take()
        }

        self.ctx.event_outs.push_back(evt);

        Ok(())
    }

    fn poll_event(&mut self) -> Option<Self::Eout> {
        self.ctx.event_outs.pop_front()
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<()> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}
