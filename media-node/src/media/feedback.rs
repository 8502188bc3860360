//! An interceptor that lets the RTCP feedback an application acts on reach it: keyframe
//! requests (PLI, FIR) and bitrate estimates (REMB), and for a sender that watches its links,
//! receiver reports. webrtc-rs 0.21 ends every interceptor chain
//! with one that drops inbound RTCP unless an interceptor marked it for the application; an SFU
//! must relay a subscriber's keyframe request to the publisher, a sender must answer one and may
//! follow a bitrate cap, so these kinds are marked and everything else (receiver reports, NACKs,
//! transport feedback: for the interceptors) still stops there.

use super::tap::{PacketTap, Tap};
use crate::metrics::METRICS;
use rtc::interceptor::{Attribute, Packet, Registry, Slot, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

/// Last in the chain (application-most), so the other interceptors have seen all the RTCP.
const SLOT: usize = 14_000;

/// Adds the interceptor to a registry.
pub fn register(registry: Registry) -> Registry {
    registry.with(Slot::from(SLOT), Tap::new(AppFeedback::default()))
}

/// Adds the interceptor, receiver reports included, to a subscriber's registry (whoever gets
/// them must poll every local track's events); the subscriber's NACKs and keyframe requests
/// count in the node's metrics.
pub fn register_with_reports(registry: Registry) -> Registry {
    registry.with(Slot::from(SLOT), Tap::new(AppFeedback { reports: true, counted: true }))
}

/// The cumulative packets lost that a receiver report gives for `ssrc`, if it is one.
pub fn total_lost(packet: &dyn rtc::rtcp::Packet, ssrc: u32) -> Option<u32> {
    let rr = packet.as_any().downcast_ref::<ReceiverReport>()?;
    rr.reports.iter().find(|r| r.ssrc == ssrc).map(|r| r.total_lost)
}

/// A subscriber's receiver reports about one stream, judged as Janus judges a slow link: the
/// cumulative loss grew by the threshold or more since the previous report (browsers report
/// about every second).
#[derive(Default)]
pub struct ReportedLoss {
    last: Option<u32>,
}

impl ReportedLoss {
    /// A report's cumulative loss; the packets lost since the previous report if they make a
    /// slow link (at least `threshold`; 0: never).
    pub fn report(&mut self, total: u32, threshold: u32) -> Option<u32> {
        let recently = self.last.map_or(0, |before| total.saturating_sub(before));
        self.last = Some(total);
        (threshold > 0 && recently >= threshold).then_some(recently)
    }
}

/// Whether an RTCP packet asks for a keyframe.
pub fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// The bitrate (bit/s) a REMB packet allows, if it is one.
pub fn bitrate_estimate(packet: &dyn rtc::rtcp::Packet) -> Option<f32> {
    packet.as_any().downcast_ref::<ReceiverEstimatedMaximumBitrate>().map(|r| r.bitrate)
}

#[derive(Default)]
pub struct AppFeedback {
    /// Let receiver reports through too.
    reports: bool,
    /// Count NACKs and keyframe requests in the node's metrics (a node's subscriber leg; not a
    /// test peer's, which uses this interceptor too).
    counted: bool,
}

impl PacketTap for AppFeedback {
    fn read(&mut self, msg: &mut TaggedPacket) -> bool {
        let Packet::Rtcp(packets) = &mut msg.message.packet else { return true };
        for p in packets.iter().filter(|_| self.counted) {
            if let Some(nack) = p.as_any().downcast_ref::<TransportLayerNack>() {
                let asked: u32 = nack.nacks.iter().map(|n| 1 + u32::from(n.lost_packets).count_ones()).sum();
                METRICS.nack_received(u64::from(asked));
            } else if is_keyframe_request(p.as_ref()) {
                METRICS.keyframe_request_received();
            }
        }
        let reports = self.reports;
        packets.retain(|p| {
            is_keyframe_request(p.as_ref())
                || bitrate_estimate(p.as_ref()).is_some()
                || (reports && p.as_any().is::<ReceiverReport>())
        });
        if packets.is_empty() {
            return false;
        }
        msg.message.add(Attribute::DeliverToApplication);
        true
    }
}

/// Wire-most on a publisher's PeerConnection: counts the NACKs the NACK generator sends, and
/// holds the PeerConnection's capture.
const TAP_SLOT: usize = 500;

/// Adds the NACK counter, with the handle's capture, to a publisher's registry.
pub fn count_sent_nacks(registry: Registry, capture: super::capture::CaptureTap) -> Registry {
    registry.with(Slot::from(TAP_SLOT), Tap::new(SentNacks).capturing(capture))
}

#[derive(Default)]
pub struct SentNacks;

impl PacketTap for SentNacks {
    fn write(&mut self, msg: &mut TaggedPacket) -> bool {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for _ in packets.iter().filter(|p| p.as_any().is::<TransportLayerNack>()) {
                METRICS.nack_sent();
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::ReportedLoss;

    #[test]
    fn a_slow_link_is_a_reported_loss_grown_by_the_threshold_since_the_previous_report() {
        let mut r = ReportedLoss::default();
        assert_eq!(r.report(10, 4), None, "the first report is only where counting starts");
        assert_eq!(r.report(13, 4), None, "3 more: below 4");
        assert_eq!(r.report(17, 4), Some(4));
        assert_eq!(r.report(17, 4), None, "nothing more lost");
        assert_eq!(r.report(2, 4), None, "a counter that went back is no loss");
        assert_eq!(r.report(1000, 0), None, "threshold 0: never");
        assert_eq!(r.report(1003, 3), Some(3), "the threshold as it is at each report");
    }
}
