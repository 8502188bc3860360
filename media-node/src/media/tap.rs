//! A pass-through interceptor for the `rtc` core, for the few places that look at (or change,
//! or drop, or answer with packets of their own) packets on their way: a [`PacketTap`] says what to do with each one, [`Tap`] does
//! the queueing every interceptor needs.

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
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl<T: PacketTap> Tap<T> {
    pub fn new(tap: T) -> Self {
        Self { tap, read: VecDeque::new(), write: VecDeque::new() }
    }
}

impl<T: PacketTap> Protocol<TaggedPacket, TaggedPacket, ()> for Tap<T> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if self.tap.read(&mut msg) {
            self.read.push_back(msg);
        }
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if self.tap.write(&mut msg) {
            self.write.push_back(msg);
        }
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front().or_else(|| self.tap.poll_own())
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
