//! A leg of webrtc-rs's sans-IO `rtc` core: a sending PeerConnection (one VP8 track, the
//! default interceptors, a data channel if asked for) connected in memory to a receiving one.
//! ICE, DTLS, SRTP and SCTP run for real; datagrams are handed from one to the other by
//! function call, and time is the clock's.

use bytes::BytesMut;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MediaEngine, MIME_TYPE_VP8};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const PAYLOAD_TYPE: u8 = 96;
/// How long a leg may take to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Leg {
    pub sender: RTCPeerConnection,
    pub receiver: RTCPeerConnection,
    pub track: RTCRtpSenderId,
    pub ssrc: u32,
    pub sender_addr: SocketAddr,
    pub receiver_addr: SocketAddr,
}

/// What one [`Leg::step`] saw: the receiver's reads, and the connection states and data
/// channel events of either side (`true`: the sender's).
#[derive(Default)]
pub struct Step {
    pub received: Vec<RTCMessage>,
    pub events: Vec<(bool, RTCPeerConnectionEvent)>,
}

fn peer(role: RTCDtlsRole, addr: SocketAddr) -> Result<RTCPeerConnection, String> {
    let mut media = MediaEngine::default();
    let vp8 = RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec { mime_type: MIME_TYPE_VP8.to_owned(), clock_rate: 90000, ..Default::default() },
        payload_type: PAYLOAD_TYPE,
    };
    media.register_codec(vp8, RtpCodecKind::Video).map_err(|e| e.to_string())?;
    let registry = register_default_interceptors(Registry::new(), &mut media).map_err(|e| e.to_string())?;
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(SettingEngineBuilder::new().with_answering_dtls_role(role).build())
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .build(Instant::now())
        .map_err(|e| e.to_string())?;
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .map_err(|e| e.to_string())?;
    let init = RTCIceCandidate::from(&host).to_json().map_err(|e| e.to_string())?;
    pc.add_local_candidate(init).map_err(|e| e.to_string())?;
    Ok(pc)
}

/// Leg `i` (its own addresses and SSRC), negotiated, not yet connected; with a data channel
/// labelled `data` when `data_channel`.
pub fn leg(i: u16, data_channel: bool) -> Result<Leg, String> {
    let sender_addr: SocketAddr = format!("10.0.0.1:{}", 20000 + i).parse().unwrap();
    let receiver_addr: SocketAddr = format!("10.0.1.1:{}", 20000 + i).parse().unwrap();
    let mut sender = peer(RTCDtlsRole::Server, sender_addr)?;
    let mut receiver = peer(RTCDtlsRole::Client, receiver_addr)?;
    let ssrc = 0x1000_0000 + u32::from(i);
    let coding = RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
        codec: RTCRtpCodec { mime_type: MIME_TYPE_VP8.to_owned(), clock_rate: 90000, ..Default::default() },
        ..Default::default()
    };
    let track =
        MediaStreamTrack::new(format!("s{i}"), format!("v{i}"), format!("v{i}"), RtpCodecKind::Video, vec![coding]);
    let track = sender.add_track(track).map_err(|e| e.to_string())?;
    if data_channel {
        sender.create_data_channel("data", None).map_err(|e| e.to_string())?;
    }
    let offer = sender.create_offer(None).map_err(|e| e.to_string())?;
    sender.set_local_description(Instant::now(), offer.clone()).map_err(|e| e.to_string())?;
    receiver.set_remote_description(Instant::now(), offer).map_err(|e| e.to_string())?;
    let answer = receiver.create_answer(None).map_err(|e| e.to_string())?;
    receiver.set_local_description(Instant::now(), answer.clone()).map_err(|e| e.to_string())?;
    sender.set_remote_description(Instant::now(), answer).map_err(|e| e.to_string())?;
    Ok(Leg { sender, receiver, track, ssrc, sender_addr, receiver_addr })
}

/// Hands `message` to `to` as a datagram from `peer` to `local`.
pub fn deliver(
    to: &mut RTCPeerConnection,
    local: SocketAddr,
    peer: SocketAddr,
    message: BytesMut,
) -> Result<(), String> {
    let transport =
        TransportContext { local_addr: local, peer_addr: peer, ecn: None, transport_protocol: TransportProtocol::UDP };
    to.handle_read(TaggedBytesMut { now: Instant::now(), transport, message }).map_err(|e| e.to_string())
}

impl Leg {
    /// Moves what each side has written to the other, then collects reads and events and fires
    /// due timers.
    pub fn step(&mut self) -> Result<Step, String> {
        let now = Instant::now();
        while let Some(m) = self.sender.poll_write() {
            deliver(&mut self.receiver, self.receiver_addr, self.sender_addr, m.message)?;
        }
        while let Some(m) = self.receiver.poll_write() {
            deliver(&mut self.sender, self.sender_addr, self.receiver_addr, m.message)?;
        }
        let mut step = Step::default();
        for (is_sender, pc) in [(true, &mut self.sender), (false, &mut self.receiver)] {
            while let Some(e) = pc.poll_event() {
                step.events.push((is_sender, e));
            }
            while let Some(m) = pc.poll_read() {
                if !is_sender {
                    step.received.push(m.message);
                }
            }
            if pc.poll_timeout().is_some_and(|t| t <= now) {
                pc.handle_timeout(now).map_err(|e| e.to_string())?;
            }
        }
        Ok(step)
    }

    /// Steps (1 ms apart) until `done` has seen what it waits for in the steps, failing on a
    /// failed connection or after [`CONNECT_TIMEOUT`].
    pub fn step_until(&mut self, mut done: impl FnMut(&Step) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            if Instant::now() > deadline {
                return Err("the leg did not get there in time".to_owned());
            }
            let step = self.step()?;
            let failed = |e: &RTCPeerConnectionEvent| {
                matches!(e, RTCPeerConnectionEvent::OnConnectionStateChangeEvent(RTCPeerConnectionState::Failed))
            };
            if step.events.iter().any(|(_, e)| failed(e)) {
                return Err("the leg failed to connect".to_owned());
            }
            if done(&step) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Steps until both ends are connected.
    pub fn connect(&mut self) -> Result<(), String> {
        let (mut sender_up, mut receiver_up) = (false, false);
        self.step_until(|step| {
            for (is_sender, e) in &step.events {
                if matches!(e, RTCPeerConnectionEvent::OnConnectionStateChangeEvent(RTCPeerConnectionState::Connected))
                {
                    *if *is_sender { &mut sender_up } else { &mut receiver_up } = true;
                }
            }
            sender_up && receiver_up
        })
    }
}
