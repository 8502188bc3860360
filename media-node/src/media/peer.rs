//! WebRTC PeerConnections on webrtc-rs 0.21 — the only module that imports it.
//!
//! A publisher's PeerConnection answers the client's offer with its ICE candidates included
//! (half-trickle, as Janus: the answer waits for gathering to complete, so clients need not
//! receive trickled server candidates), reports its state as [`PeerEvent`]s, and reads the
//! incoming RTP. Forwarding to subscribers comes with the subscriber side.

use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
};

/// ICE gathering on the configured addresses is local and quick; a stuck one must not hold a
/// request forever.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);

/// Where peers listen.
#[derive(Clone, Debug)]
pub struct MediaSettings {
    /// Addresses to gather host candidates on. A wildcard (`0.0.0.0`) binds every interface but
    /// loopback (webrtc-rs skips it); list `127.0.0.1` explicitly for tests on one machine.
    pub udp_ips: Vec<IpAddr>,
}

/// What a peer reports to its room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    /// DTLS/SRTP is up (Janus's `webrtcup`).
    Connected,
    /// The first RTP packet of a track of this kind arrived (Janus's `media`, receiving).
    Receiving(String),
    /// The PeerConnection is gone; the reason goes into Janus's `hangup`.
    Down(String),
}

struct PublisherHandler {
    gathered: mpsc::Sender<()>,
    events: mpsc::UnboundedSender<PeerEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PublisherHandler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let ev = match state {
            RTCPeerConnectionState::Connected => PeerEvent::Connected,
            RTCPeerConnectionState::Failed => PeerEvent::Down("ICE failed".into()),
            RTCPeerConnectionState::Closed => PeerEvent::Down("Close PC".into()),
            _ => return,
        };
        let _ = self.events.send(ev);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let events = self.events.clone();
        tokio::spawn(async move {
            let kind = track.kind().await.to_string().to_ascii_lowercase();
            let mut first = true;
            while let Some(ev) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(_packet) = ev {
                    if first {
                        first = false;
                        let _ = events.send(PeerEvent::Receiving(kind.clone()));
                    }
                }
            }
        });
    }
}

/// A publisher's PeerConnection.
pub struct PublisherPeer {
    pc: Arc<dyn PeerConnection>,
}

fn media_error(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

impl PublisherPeer {
    /// Answers `offer_sdp`; returns the peer and the answer SDP (with candidates).
    pub async fn answer(
        settings: &MediaSettings,
        offer_sdp: String,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> Result<(Self, String), String> {
        let mut media = MediaEngine::default();
        media.register_default_codecs().map_err(|e| media_error("codecs", e))?;
        let registry =
            register_default_interceptors(Registry::new(), &mut media).map_err(|e| media_error("interceptors", e))?;
        let (gathered, mut gather_done) = mpsc::channel(1);
        let handler = Arc::new(PublisherHandler { gathered, events });
        let addrs: Vec<String> = settings.udp_ips.iter().map(|ip| format!("{ip}:0")).collect();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_handler(handler as Arc<dyn PeerConnectionEventHandler>)
            .with_udp_addrs(addrs)
            .build()
            .await
            .map_err(|e| media_error("PeerConnection", e))?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let offer = RTCSessionDescription::offer(offer_sdp).map_err(|e| media_error("offer", e))?;
        pc.set_remote_description(offer).await.map_err(|e| media_error("remote description", e))?;
        let answer = pc.create_answer(None).await.map_err(|e| media_error("answer", e))?;
        pc.set_local_description(answer).await.map_err(|e| media_error("local description", e))?;
        if tokio::time::timeout(GATHER_TIMEOUT, gather_done.recv()).await.is_err() {
            let _ = pc.close().await;
            return Err("ICE gathering did not complete".into());
        }
        let sdp = pc.local_description().await.map(|d| d.sdp).ok_or("no local description")?;
        Ok((Self { pc }, sdp))
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}
