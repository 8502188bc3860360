//! The test subscriber: answers a server's offer and records every packet it receives.

use super::{loopback_pc, DataReceived, LoopbackPc};
use crate::lossy::Network;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{PeerConnection, RTCPeerConnectionState};

/// A subscriber that has answered, its ICE not started.
pub struct LateSubscriber {
    pc: LoopbackPc,
    answer: RTCSessionDescription,
    net: Network,
}

impl LateSubscriber {
    /// Starts its ICE (and so DTLS): a [`TestSubscriber`] from here on.
    pub async fn connect(self) -> TestSubscriber {
        let LoopbackPc { pc, mut gather_done, states, packets, video_tracks, data } = self.pc;
        pc.set_local_description(self.answer).await.expect("local answer");
        tokio::time::timeout(Duration::from_secs(5), gather_done.recv()).await.expect("gathering");
        let answer = pc.local_description().await.expect("local description").sdp;
        TestSubscriber { pc, states, packets, video_tracks, data, net: self.net, answer }
    }
}

/// A subscriber: answers the server's offer and records every packet it receives.
pub struct TestSubscriber {
    pc: Arc<dyn PeerConnection>,
    pub states: mpsc::UnboundedReceiver<RTCPeerConnectionState>,
    pub packets: mpsc::UnboundedReceiver<(String, rtp::Packet)>,
    /// Data channel messages received, with their channel's label.
    pub data: mpsc::UnboundedReceiver<DataReceived>,
    /// Its (simulated) network: RTP packets lost, sender reports received.
    pub net: Network,
    /// Its first answer, candidates included.
    pub answer: String,
    video_tracks: Arc<std::sync::Mutex<Vec<Arc<dyn TrackRemote>>>>,
}

impl TestSubscriber {
    pub async fn answer(offer_sdp: &str) -> (Self, String) {
        Self::answer_on(offer_sdp, Network::default()).await
    }

    /// [`TestSubscriber::answer`] on a simulated network.
    pub async fn answer_on(offer_sdp: &str, net: Network) -> (Self, String) {
        let (late, _) = Self::answer_later_on(offer_sdp, net).await;
        let sub = late.connect().await;
        let sdp = sub.answer.clone();
        (sub, sdp)
    }

    /// Answers `offer_sdp` at once but holds its ICE back (no candidates in the answer: the
    /// server learns the subscriber's address from its checks, as with a browser trickling):
    /// nothing is checked, so no DTLS either, until [`LateSubscriber::connect`].
    pub async fn answer_later(offer_sdp: &str) -> (LateSubscriber, String) {
        Self::answer_later_on(offer_sdp, Network::default()).await
    }

    async fn answer_later_on(offer_sdp: &str, net: Network) -> (LateSubscriber, String) {
        let pc = loopback_pc(true, &net).await;
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned()).expect("offer SDP");
        pc.pc.set_remote_description(offer).await.expect("remote offer");
        let answer = pc.pc.create_answer(None).await.expect("answer");
        let sdp = answer.sdp.clone();
        (LateSubscriber { pc, answer, net }, sdp)
    }

    /// Answers a new offer from the server (a renegotiation, as after `updated`).
    pub async fn reanswer(&self, offer_sdp: &str) -> String {
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned()).expect("offer SDP");
        self.pc.set_remote_description(offer).await.expect("remote offer");
        let answer = self.pc.create_answer(None).await.expect("answer");
        self.pc.set_local_description(answer).await.expect("local answer");
        self.pc.local_description().await.expect("local description").sdp
    }

    /// Sends a PLI on every video track received so far (as a decoder that lost its
    /// reference does); returns how many tracks it went out on.
    pub async fn request_keyframe(&self) -> usize {
        let tracks = self.video_tracks.lock().expect("tracks").clone();
        for t in &tracks {
            let ssrc = t.ssrcs().await.first().copied().unwrap_or(0);
            let pli = rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: ssrc,
            };
            t.write_rtcp(vec![Box::new(pli)]).await.expect("PLI");
        }
        tracks.len()
    }

    /// Sends, on every video track received so far, one RTCP packet holding transport-wide
    /// feedback first and then a PLI (a compound packet, as a browser may send them); returns
    /// how many tracks it went out on.
    pub async fn request_keyframe_after_transport_feedback(&self) -> usize {
        use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
        use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
            PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, SymbolTypeTcc, TransportLayerCc,
        };
        let tracks = self.video_tracks.lock().expect("tracks").clone();
        for t in &tracks {
            let ssrc = t.ssrcs().await.first().copied().unwrap_or(0);
            let received = SymbolTypeTcc::PacketReceivedSmallDelta;
            let feedback = TransportLayerCc {
                sender_ssrc: 0,
                media_ssrc: ssrc,
                base_sequence_number: 1,
                packet_status_count: 1,
                reference_time: 0,
                fb_pkt_count: 0,
                packet_chunks: vec![PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                    type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                    packet_status_symbol: received,
                    run_length: 1,
                })],
                recv_deltas: vec![RecvDelta { type_tcc_packet: received, delta: 250 }],
            };
            let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc };
            t.write_rtcp(vec![Box::new(feedback), Box::new(pli)]).await.expect("feedback and PLI");
        }
        tracks.len()
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}
