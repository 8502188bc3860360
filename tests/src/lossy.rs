//! A test peer's network, as an interceptor: every `nth` RTP packet is lost the first time it
//! passes (a retransmission of it goes through), so NACK repair can be checked over real
//! DTLS-SRTP on loopback, where nothing is ever lost by itself; and the RTCP sender reports
//! arriving are counted.

use media_node::media::tap::{PacketTap, Tap};
use rtc::interceptor::{Packet, Registry, Slot, TaggedPacket};
use rtc::rtcp::sender_report::SenderReport;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Which way packets are lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leg {
    /// Inbound, before the NACK generator sees them (a receiver's network dropped them).
    Receive,
    /// Outbound, after the NACK responder stored them (a sender's network dropped them).
    Send,
}

/// What a test peer's network does and saw.
#[derive(Clone, Default)]
pub struct Network {
    /// Lose one RTP packet in this many, on this leg.
    pub loss: Option<(Leg, u64)>,
    /// Lose the retransmissions of a lost packet too (loss NACKs cannot repair).
    pub persistent: bool,
    /// RTP packets lost.
    pub dropped: Arc<AtomicU64>,
    /// RTCP sender reports received.
    pub sender_reports: Arc<AtomicU64>,
}

/// Adds the network to a registry.
pub fn register(registry: Registry, net: &Network) -> Registry {
    let (leg, nth) = net.loss.unwrap_or((Leg::Receive, u64::MAX));
    // Wire-ward of the NACK generator (7_000) on the read leg, of the responder (4_000) on the
    // write leg.
    let slot = match leg {
        Leg::Receive => 6_500,
        Leg::Send => 3_500,
    };
    let lossy = Lossy {
        leg,
        nth,
        persistent: net.persistent,
        dropped: net.dropped.clone(),
        sender_reports: net.sender_reports.clone(),
        count: 0,
        seen: HashSet::new(),
    };
    registry.with(Slot::from(slot), Tap::new(lossy))
}

struct Lossy {
    leg: Leg,
    nth: u64,
    persistent: bool,
    dropped: Arc<AtomicU64>,
    sender_reports: Arc<AtomicU64>,
    count: u64,
    /// Packets already dropped once: (SSRC, sequence number).
    seen: HashSet<(u32, u16)>,
}

impl Lossy {
    /// Whether to drop this one.
    fn lose(&mut self, msg: &TaggedPacket) -> bool {
        let Packet::Rtp(p) = &msg.message.packet else { return false };
        let key = (p.header.ssrc, p.header.sequence_number);
        if self.seen.contains(&key) {
            return self.persistent;
        }
        self.count += 1;
        if !self.count.is_multiple_of(self.nth) {
            return false;
        }
        self.seen.insert(key);
        self.dropped.fetch_add(1, Relaxed);
        true
    }
}

impl PacketTap for Lossy {
    fn read(&mut self, msg: &mut TaggedPacket) -> bool {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let srs = packets.iter().filter(|p| p.as_any().is::<SenderReport>()).count();
            self.sender_reports.fetch_add(srs as u64, Relaxed);
        }
        !(self.leg == Leg::Receive && self.lose(msg))
    }

    fn write(&mut self, msg: &mut TaggedPacket) -> bool {
        !(self.leg == Leg::Send && self.lose(msg))
    }
}
