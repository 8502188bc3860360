//! A pass-through interceptor for the `rtc` core, for the few places that look at (or change,
//! or drop, or answer with packets of their own) packets on their way: a [`PacketTap`] says what to do with each one, [`Tap`] does
//! the queueing every interceptor needs.

use super::capture::CaptureTap;
use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use std::collections::VecDeque;
use std::time::Instant;

/// What a tap does with the packets going by (each hook: false drops the packet).
pub trait PacketTap: Send + Sync {
    /// An inbound packet (from the network, toward the application).
    fn read(&mut self, _msg: &mut TaggedPacket) -> bool {
        true
    }
    /// An outbound packet (toward the network); `msg.now` is its departure time.
    fn write(&mut self, _msg: &mut TaggedPacket) -> bool {
        true
    }
    /// A packet of the tap's own to send (a retransmission), after those going by.
    fn poll_own(&mut self) -> Option<TaggedPacket> {
        None
    }
    /// A stream this PeerConnection sends, with what was negotiated for it.
    fn bind_local(&mut self, _info: &StreamInfo) {}
    fn unbind_local(&mut self, _info: &StreamInfo) {}
}

/// An interceptor running a [`PacketTap`].
pub struct Tap<T> {
    pub tap: T,
    read: Passing,
    write: Passing,
    /// The PeerConnection's capture, on its wire-most tap: it sees packets as they come in,
    /// before the tap, and as they go out, after it.
    /// (Boxed: the other taps carry only the pointer's room.)
    capture: Option<Box<CaptureTap>>,
}

impl<T: PacketTap> Tap<T> {
    pub fn new(tap: T) -> Self {
        Self { tap, read: Passing::default(), write: Passing::default(), capture: None }
    }

    /// This tap, capturing its PeerConnection's packets when the handle's capture is on.
    pub fn capturing(self, capture: CaptureTap) -> Self {
        Self { capture: Some(Box::new(capture)), ..self }
    }

    fn captured(&mut self, incoming: bool, msg: &TaggedPacket) {
        if let Some(c) = &mut self.capture {
            if !c.seen(incoming, msg) {
                self.capture = None;
            }
        }
    }
}

/// Packets handed on, in order. On the way in the chain takes each packet out right after
/// handing it in, so one waits in a slot of its own and the queue (room for 4 from its first
/// packet, each a few hundred bytes, in every PeerConnection's taps) is never made; on the way
/// out a video frame's packets are handed in before any is taken, and the rest queue.
#[derive(Default)]
struct Passing {
    first: Option<TaggedPacket>,
    more: VecDeque<TaggedPacket>,
}

impl Passing {
    fn push(&mut self, msg: TaggedPacket) {
        if self.first.is_none() && self.more.is_empty() {
            self.first = Some(msg);
        } else {
            self.more.push_back(msg);
        }
    }

    fn pop(&mut self) -> Option<TaggedPacket> {
        self.first.take().or_else(|| self.more.pop_front())
    }
}

impl<T: PacketTap> Protocol<TaggedPacket, TaggedPacket, ()> for Tap<T> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        self.captured(true, &msg);
        if self.tap.read(&mut msg) {
            self.read.push(msg);
        }
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop()
    }

    fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if self.tap.write(&mut msg) {
            self.write.push(msg);
        }
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        let msg = self.write.pop().or_else(|| self.tap.poll_own())?;
        self.captured(false, &msg);
        Some(msg)
    }
}

impl<T: PacketTap> Interceptor for Tap<T> {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.tap.bind_local(info);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.tap.unbind_local(info);
    }
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::{AttributedPacket, Packet};
    use rtc::rtp;

    fn packet(seq: u16) -> TaggedPacket {
        let header = rtp::header::Header { sequence_number: seq, ..Default::default() };
        let p = Packet::Rtp(rtp::Packet { header, payload: Default::default() });
        TaggedPacket { now: Instant::now(), transport: Default::default(), message: AttributedPacket::new(p) }
    }

    fn seq(p: Option<TaggedPacket>) -> Option<u16> {
        match p?.message.packet {
            Packet::Rtp(p) => Some(p.header.sequence_number),
            _ => None,
        }
    }

    #[test]
    fn packets_pass_in_order_and_one_at_a_time_takes_no_queue() {
        let mut q = Passing::default();
        for i in 0..100 {
            q.push(packet(i));
            assert_eq!(seq(q.pop()), Some(i));
        }
        assert_eq!(q.more.capacity(), 0, "a packet taken out at once never reaches the queue");
        for i in 0..3 {
            q.push(packet(i));
        }
        assert_eq!(seq(q.pop()), Some(0));
        q.push(packet(3));
        assert_eq!((0..4).map(|_| seq(q.pop())).collect::<Vec<_>>(), [Some(1), Some(2), Some(3), None]);
    }
}
