//! The `rtc` core's write path (the vendored crate's handler pipeline) when one flush carries
//! media and a data channel's messages together. Each handler takes what it can in place and
//! the rest by value (`media-node/vendor/PATCHES.md`, "Moves on the write path"): the SRTP
//! packets pass the data channel handler in place and the channel's messages do not, so the
//! flush takes both ways at once. Every packet and every message must arrive.

use bytes::Bytes;
use portunus_tests::sansio::{leg, PAYLOAD_TYPE};
use rtc::peer_connection::event::RTCDataChannelEvent;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use std::time::Instant;

#[test]
fn media_and_data_channel_messages_written_in_one_flush_all_arrive() {
    let mut l = leg(0, true).expect("the leg");
    l.connect().expect("the leg connects");
    let (mut channel, mut accepted) = (None, false);
    l.step_until(|step| {
        for (is_sender, e) in &step.events {
            if let RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(id)) = e {
                match is_sender {
                    true => channel = Some(*id),
                    false => accepted = true,
                }
            }
        }
        channel.is_some() && accepted
    })
    .expect("the data channel opens");
    let channel = channel.unwrap();

    // Three packets, then a message, five times over, all written before the flush.
    let payload = Bytes::from(vec![0x5a; 1000]);
    let now = Instant::now();
    for round in 0..5u16 {
        for i in 0..3 {
            let seq = round * 3 + i;
            let header = rtc::rtp::header::Header {
                version: 2,
                payload_type: PAYLOAD_TYPE,
                sequence_number: seq,
                timestamp: u32::from(seq) * 3000,
                ssrc: l.ssrc,
                ..Default::default()
            };
            let packet = rtc::rtp::Packet { header, payload: payload.clone() };
            l.sender.rtp_sender(l.track).expect("the track's sender").write_rtp(now, packet).expect("write_rtp");
        }
        let mut dc = l.sender.data_channel(channel).expect("the channel");
        dc.send_text(now, format!("message {round}")).expect("send");
    }

    let ssrc = l.ssrc;
    let (mut sequence_numbers, mut texts) = (Vec::new(), Vec::new());
    let arrived = l.step_until(|step| {
        for m in &step.received {
            match m {
                RTCMessage::RtpPacket(_, p) if p.header.ssrc == ssrc => sequence_numbers.push(p.header.sequence_number),
                RTCMessage::DataChannelMessage(_, m) => texts.push(String::from_utf8_lossy(&m.data).into_owned()),
                _ => {}
            }
        }
        sequence_numbers.len() >= 15 && texts.len() >= 5
    });
    sequence_numbers.sort_unstable();
    assert!(arrived.is_ok(), "packets {sequence_numbers:?} and messages {texts:?} arrived, not all 15 and 5");
    assert_eq!(sequence_numbers, (0..15).collect::<Vec<u16>>());
    assert_eq!(texts, (0..5).map(|r| format!("message {r}")).collect::<Vec<_>>());
}
