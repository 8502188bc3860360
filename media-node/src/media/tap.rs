//! A pass-through interceptor for the `rtc` core, for the few places that look at (or change,
//! or drop, or answer with packets of their own) packets on their way: a [`PacketTap`] says what to do with each one, [`Tap`] does
//! the queueing every interceptor needs.

use super::capture::CaptureTap;
use rtc::interceptor::{InPlace, Interceptor, StreamInfo, TaggedPacket};
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
        if self.is_empty() {
            self.first = Some(msg);
        } else {
            self.more.push_back(msg);
        }
    }

    fn pop(&mut self) -> Option<TaggedPacket> {
        self.first.take().or_else(|| self.more.pop_front())
    }

    fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.is_empty()
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
    /// A packet going by passes where it lies unless packets wait ahead of it: as
    /// `handle_write` then `poll_write` would hand it on, without moving it twice.
    fn write_in_place(&mut self, msg: &mut TaggedPacket) -> InPlace {
        if !self.write.is_empty() {
            return InPlace::Declined;
        }
        if !self.tap.write(msg) {
            return InPlace::Dropped;
        }
        self.captured(false, msg);
        InPlace::Passed
    }
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

    /// Drops every fifth packet going out, and sends one of its own after every fourth.
    #[derive(Default)]
    struct Busy {
        seen: u16,
        own: Option<u16>,
    }

    impl PacketTap for Busy {
        fn write(&mut self, msg: &mut TaggedPacket) -> bool {
            self.seen += 1;
            if let (0, Packet::Rtp(p)) = (self.seen % 4, &msg.message.packet) {
                self.own = Some(p.header.sequence_number + 1000);
            }
            self.seen % 5 != 0
        }
        fn poll_own(&mut self) -> Option<TaggedPacket> {
            self.own.take().map(packet)
        }
    }

    /// An interceptor taking every packet by value (`write_in_place` left at its default).
    struct ByValue<I>(I);

    impl<I: Interceptor> Protocol<TaggedPacket, TaggedPacket, ()> for ByValue<I> {
        type Rout = TaggedPacket;
        type Wout = TaggedPacket;
        type Eout = ();
        type Error = rtc::shared::error::Error;
        type Time = Instant;
        fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
            self.0.handle_read(msg)
        }
        fn poll_read(&mut self) -> Option<TaggedPacket> {
            self.0.poll_read()
        }
        fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
            self.0.handle_write(msg)
        }
        fn poll_write(&mut self) -> Option<TaggedPacket> {
            self.0.poll_write()
        }
    }

    impl<I: Interceptor> Interceptor for ByValue<I> {
        fn bind_local_stream(&mut self, _: &StreamInfo) {}
        fn unbind_local_stream(&mut self, _: &StreamInfo) {}
        fn bind_remote_stream(&mut self, _: &StreamInfo) {}
        fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
    }

    /// What comes out of a chain of three busy taps, taking packets in place or by value, when
    /// packets are written a burst at a time.
    fn written(in_place: bool, bursts: &[u16]) -> Vec<u16> {
        use rtc::interceptor::{Registry, Slot};
        let tap = || -> Box<dyn Interceptor> {
            match in_place {
                true => Box::new(Tap::new(Busy::default())),
                false => Box::new(ByValue(Tap::new(Busy::default()))),
            }
        };
        let registry = Registry::new().with(Slot::from(100), tap()).with(Slot::from(200), tap());
        let mut chain = registry.with(Slot::from(300), tap()).build();
        let mut out = Vec::new();
        let mut next = 0;
        for burst in bursts {
            for _ in 0..*burst {
                chain.handle_write(packet(next)).unwrap();
                next += 1;
            }
            while let Some(s) = seq(chain.poll_write()) {
                out.push(s);
            }
        }
        out
    }

    #[test]
    fn packets_taken_in_place_come_out_as_those_taken_by_value() {
        let bursts = [1, 1, 3, 1, 7, 2, 1, 1, 12, 1];
        let by_value = written(false, &bursts);
        assert_eq!(written(true, &bursts), by_value);
        // The taps did drop and add packets.
        let dropped = (0..30).filter(|s| !by_value.contains(s)).count();
        assert!(dropped > 0 && by_value.iter().any(|s| *s >= 1000), "{by_value:?}");
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
