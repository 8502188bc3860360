//! A subscriber's PeerConnection: sendonly m-lines fed from publishers' broadcasts, one
//! forwarding task each (`forward`), added, switched and made inactive as the subscription
//! changes.

use super::codec::VideoCodec;
use super::data::{DataControl, DEFAULT_LABEL};
use super::extensions::ExtensionSettings;
use super::feed::Origin;
use super::forward::{forward, relay_feedback, Control, Gate, LossWatch, Stream};
use super::outgoing::Negotiated;
use super::peer::{
    add_candidates, build_pc, local_sdp_when_gathered, Direction, MediaSettings, PeerEvent, PeerHandler,
};
use super::simulcast::LayerTarget;
use super::MediaError;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection};
use shared::ids::ParticipantId;
use shared::janus::request::Candidate;
use shared::media::{ExtensionIds, MediaKind};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::PeerConnection;

/// One stream a subscriber receives, at m-line `mindex`.
pub struct Source {
    pub mindex: usize,
    pub kind: MediaKind,
    pub codec: String,
    /// The publisher's `fmtp` for it (an H.264 profile, a VP9 profile), offered alike.
    pub fmtp: Option<String>,
    pub origin: Origin,
    /// Simulcast: the layers wanted.
    pub target: LayerTarget,
    /// The playout delay this subscriber asked for (the extension's bytes), if any.
    pub delay: Option<[u8; 3]>,
    /// Its m-line's `msid`: stream id and track id.
    pub msid: (String, String),
}

/// The codec a subscriber m-line offers: the publisher's (with its `fmtp` when known, so an
/// H.264 or VP9 profile is offered as the publisher sends it).
fn rtp_codec(codec: &str, fmtp: Option<&str>) -> Option<RTCRtpCodec> {
    let c = super::codec::parameters(codec).into_iter().next()?.rtp_codec;
    Some(RTCRtpCodec {
        sdp_fmtp_line: fmtp.map_or(c.sdp_fmtp_line.clone(), str::to_owned),
        rtcp_feedback: Vec::new(),
        ..c
    })
}

/// What a subscriber's PeerConnection may negotiate: the room's header extensions, and the
/// room's codecs (a WebRTC publisher's streams carry no other; a remote publisher's may, and
/// the streams offered add theirs).
pub struct Negotiable {
    pub extensions: ExtensionSettings,
    pub codecs: Vec<String>,
}

/// A publisher whose data channel messages a subscriber receives.
pub type DataSource = (ParticipantId, tokio::sync::broadcast::WeakSender<super::feed::DataMessage>);

/// A subscriber's PeerConnection: sendonly tracks fed from publishers' feeds.
pub struct SubscriberPeer {
    pc: Arc<dyn PeerConnection>,
    /// `pause`d: its streams stop (and restart on a keyframe).
    paused: watch::Sender<bool>,
    paused_rx: watch::Receiver<bool>,
    /// Whether DTLS is up (streams added later wait for it too).
    connected: watch::Receiver<bool>,
    /// Per media m-line, in order; grows when streams are added (control plane only, never
    /// locked per packet).
    streams: std::sync::Mutex<Vec<StreamControl>>,
    /// Its data channel relay, once it has a data m-line.
    data: std::sync::Mutex<Option<mpsc::UnboundedSender<DataControl>>>,
    /// Announced instead of the bound addresses in offers (1:1 NAT).
    public_ip: Option<String>,
    /// Signals ICE gathering complete, for an ICE restart's offer.
    gathered: tokio::sync::Mutex<mpsc::Receiver<()>>,
    settings: MediaSettings,
    /// Where its streams report layer changes and slow links.
    events: mpsc::UnboundedSender<PeerEvent>,
    /// The codecs its PeerConnection registered (empty: webrtc-rs's defaults, every one).
    codecs: Vec<String>,
}

/// What the room can change about one subscriber stream.
struct StreamControl {
    mindex: usize,
    /// Its m-line's sender (transceivers come back from webrtc-rs in no particular order).
    sender: RTCRtpSenderId,
    /// The payload type the subscriber's answer chose (None until `start`).
    negotiated: watch::Sender<Option<Negotiated>>,
    /// A new source (`switch`), or the end of the stream.
    control: mpsc::UnboundedSender<Control>,
    /// Whether the subscriber wants it (`configure` `send`).
    send: watch::Sender<bool>,
    /// The relayed header extensions its source carries, which its m-section offers (none:
    /// inactive, no source).
    carried: Option<ExtensionIds>,
    /// Its `msid` as its track was made (webrtc-rs writes that one into every offer), and as
    /// its source now names it (`use_msid`: the publisher it was taken over for).
    msid: ((String, String), (String, String)),
}

impl SubscriberPeer {
    /// Its PeerConnection (for statistics).
    pub fn pc(&self) -> &Arc<dyn PeerConnection> {
        &self.pc
    }

    /// Whether the subscriber paused its streams.
    pub fn paused(&self) -> bool {
        *self.paused_rx.borrow()
    }

    /// Builds the offer for `sources` (one m-line each, in order) and, with `data` sources, a
    /// data channel m-line after them, with what the room lets it negotiate.
    pub async fn offer(
        settings: &MediaSettings,
        sources: Vec<Source>,
        data: Vec<DataSource>,
        Negotiable { extensions, mut codecs }: Negotiable,
        events: mpsc::UnboundedSender<PeerEvent>,
        capture: &super::capture::Follow,
    ) -> Result<(Self, String), MediaError> {
        let (gathered, mut gather_done) = mpsc::channel(1);
        let (connected_tx, connected) = watch::channel(false);
        let handler = Arc::new(PeerHandler::new(gathered, events.clone(), connected_tx, None));
        // (Empty: webrtc-rs's defaults, which carry them all already.)
        if !codecs.is_empty() {
            for s in &sources {
                if !codecs.contains(&s.codec) {
                    codecs.push(s.codec.clone());
                }
            }
        }
        let direction = Direction::Send { extensions, codecs: codecs.clone() };
        let pc = build_pc(settings, direction, handler, capture).await?;
        let (paused, paused_rx) = watch::channel(false);
        let mut peer = Self {
            pc,
            paused,
            paused_rx,
            connected,
            streams: std::sync::Mutex::new(Vec::new()),
            data: std::sync::Mutex::new(None),
            public_ip: settings.public_ip.clone(),
            gathered: tokio::sync::Mutex::new(mpsc::channel(1).1),
            settings: settings.clone(),
            events,
            codecs,
        };
        peer.add_streams(sources).await?;
        peer.add_data(data).await?;
        let offer = peer.pc.create_offer(None).await.map_err(|e| MediaError::stack("offer", e))?;
        peer.pc.set_local_description(offer).await.map_err(|e| MediaError::stack("local description", e))?;
        let sdp = local_sdp_when_gathered(settings, &peer.pc, &mut gather_done).await?;
        peer.gathered = tokio::sync::Mutex::new(gather_done);
        let sdp = peer.offered(&sdp);
        Ok((peer, sdp))
    }

    /// Relays these publishers' data channel messages; the first ones open the data channel
    /// m-line (before an offer: it is negotiated with it).
    pub async fn add_data(&self, sources: Vec<DataSource>) -> Result<(), MediaError> {
        if sources.is_empty() {
            return Ok(());
        }
        let existing = self.data.lock().map_err(|_| MediaError::Bug("data poisoned"))?.clone();
        let relay = match existing {
            Some(relay) => relay,
            None => {
                let dc = self
                    .pc
                    .create_data_channel(DEFAULT_LABEL, None)
                    .await
                    .map_err(|e| MediaError::stack("data channel", e))?;
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(super::data::relay(self.pc.clone(), dc, rx));
                *self.data.lock().map_err(|_| MediaError::Bug("data poisoned"))? = Some(tx.clone());
                tx
            }
        };
        for (id, feed) in sources {
            let _ = relay.send(DataControl::Add(id, feed));
        }
        Ok(())
    }

    /// Stops relaying these publishers' data channel messages.
    pub fn remove_data(&self, ids: &[ParticipantId]) {
        if let Some(relay) = self.data.lock().ok().and_then(|d| d.clone()) {
            for id in ids {
                let _ = relay.send(DataControl::Remove(id.clone()));
            }
        }
    }

    /// Appends one sendonly m-line per source, each with its forwarding task; a source for an
    /// existing (inactive) m-line takes it over instead, its track and sequence continuing.
    async fn add_streams(&self, sources: Vec<Source>) -> Result<(), MediaError> {
        let mut added = Vec::new();
        let mut reused = Vec::new();
        for src in sources {
            let existing = self.with_stream(src.mindex, |c| (c.sender, c.control.clone(), c.send.clone()));
            if let Some((sender, control, send)) = existing {
                self.set_source(src.mindex, Some(src.origin.extensions), Some(src.msid));
                let _ = control.send(Control::Target(src.target));
                let _ = control.send(Control::Switch(Box::new(src.origin)));
                send.send_replace(true);
                reused.push(sender);
                continue;
            }
            // A remote publisher's codec the room does not list, added after the offer.
            if !self.codecs.is_empty() && !self.codecs.contains(&src.codec) {
                let why = format!("{} is not negotiable on this subscription", src.codec);
                return Err(MediaError::stack("codec", why));
            }
            let codec = rtp_codec(&src.codec, src.fmtp.as_deref())
                .ok_or_else(|| MediaError::stack("codec", format!("{} cannot be forwarded", src.codec)))?;
            let clock_rate = codec.clock_rate;
            let kind = if src.kind == MediaKind::Audio { RtpCodecKind::Audio } else { RtpCodecKind::Video };
            let ssrc = rand::random::<u32>();
            let msid = (src.msid.clone(), src.msid);
            let (stream_id, track_id) = msid.0.clone();
            let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                stream_id,
                track_id.clone(),
                track_id,
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                    codec,
                    ..Default::default()
                }],
            )));
            let sender = self
                .pc
                .add_track(track.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(|e| MediaError::stack("track", e))?;
            let (negotiated, negotiated_rx) = watch::channel(None);
            let (send, send_rx) = watch::channel(true);
            let gate = Gate {
                negotiated: negotiated_rx,
                connected: self.connected.clone(),
                paused: self.paused_rx.clone(),
                send: send_rx,
                muted: src.origin.muted.clone(),
            };
            let (keyframes, keyframes_rx) = watch::channel(src.origin.keyframes.clone());
            let loss = LossWatch {
                tuning: self.settings.tuning.clone(),
                mindex: src.mindex,
                kind: src.kind,
                ssrc,
                events: self.events.clone(),
            };
            tokio::spawn(relay_feedback(track.clone(), keyframes_rx, loss));
            let (control, control_rx) = mpsc::unbounded_channel();
            let codec = if src.kind == MediaKind::Video { VideoCodec::from_name(&src.codec) } else { None };
            let carried = Some(src.origin.extensions);
            let stream = Stream {
                track,
                ssrc,
                clock_rate,
                codec,
                keyframes,
                mindex: src.mindex,
                events: self.events.clone(),
                target: src.target,
                delay: src.delay,
            };
            // Its packets are sent from its own task (webrtc-rs's `try_write_rtp`, patched):
            // in a scope, so a frame's datagrams to the subscriber leave in one run.
            tokio::spawn(super::gso::Scope(Box::pin(forward(src.origin, control_rx, stream, gate))));
            let sender = sender.id();
            added.push(StreamControl { mindex: src.mindex, sender, negotiated, control, send, carried, msid });
        }
        // A subscriber only receives (`addTrack` would offer sendrecv); Janus offers sendonly.
        let new: Vec<RTCRtpSenderId> = added.iter().map(|s| s.sender).chain(reused).collect();
        set_directions(&self.pc, &new, RTCRtpTransceiverDirection::Sendonly).await?;
        self.streams.lock().map_err(|_| MediaError::Bug("streams poisoned"))?.extend(added);
        Ok(())
    }

    /// Sends the stream at m-line `mindex`, or holds it (`configure` `send`).
    pub fn set_send(&self, mindex: usize, send: bool) {
        if let Some(s) = self.with_stream(mindex, |c| c.send.clone()) {
            s.send_replace(send);
        }
    }

    fn with_stream<T>(&self, mindex: usize, f: impl FnOnce(&StreamControl) -> T) -> Option<T> {
        self.streams.lock().ok().and_then(|s| s.iter().find(|c| c.mindex == mindex).map(f))
    }

    /// Feeds the stream at m-line `mindex` from `origin` from now on (`switch`; its msid stays).
    pub fn switch(&self, mindex: usize, origin: Origin) {
        self.set_source(mindex, Some(origin.extensions), None);
        self.control(mindex, Control::Switch(Box::new(origin)));
    }

    /// What the stream at m-line `mindex` offers from now on: the extensions its source carries
    /// (none: inactive) and, if given, its `msid`.
    fn set_source(&self, mindex: usize, carried: Option<ExtensionIds>, msid: Option<(String, String)>) {
        if let Ok(mut streams) = self.streams.lock() {
            for c in streams.iter_mut().filter(|c| c.mindex == mindex) {
                c.carried = carried;
                if let Some(m) = msid.clone() {
                    c.msid.1 = m;
                }
            }
        }
    }

    /// `sdp`, an offer of this PeerConnection's, with each m-section's relayed extensions those
    /// its source carries, and its `msid` its source's.
    fn offered(&self, sdp: &str) -> String {
        let sdp = super::extensions::offered(sdp, |mindex| self.with_stream(mindex, |c| c.carried).flatten());
        let renamed = |mindex| self.with_stream(mindex, |c| (c.msid.0 != c.msid.1).then(|| c.msid.1.clone())).flatten();
        super::sdp::rename_msids(&sdp, renamed)
    }

    /// Other simulcast layers for the stream at m-line `mindex` (`configure`).
    pub fn set_target(&self, mindex: usize, target: LayerTarget) {
        self.control(mindex, Control::Target(target));
    }

    /// The playout delay stream `mindex` carries to this subscriber (none: the publisher's).
    pub fn set_delay(&self, mindex: usize, delay: Option<[u8; 3]>) {
        self.control(mindex, Control::Delay(delay));
    }

    fn control(&self, mindex: usize, c: Control) {
        if let Some(s) = self.with_stream(mindex, |c| c.control.clone()) {
            let _ = s.send(c);
        }
    }

    /// Makes the streams at `inactive` (m-line indexes) inactive (their publisher went, or the
    /// subscriber unsubscribed) and appends `added` (and a data m-line for `data`, if it has
    /// none), then returns the new offer (m-lines stay, as in Janus; candidates are already
    /// gathered).
    pub async fn renegotiate(
        &self,
        inactive: &[usize],
        added: Vec<Source>,
        data: Vec<DataSource>,
        restart: bool,
    ) -> Result<String, MediaError> {
        // Added first: a stream added and made inactive while an offer was unanswered (the
        // room batches such changes) ends up inactive.
        self.add_streams(added).await?;
        self.add_data(data).await?;
        let senders: Vec<RTCRtpSenderId> = {
            let mut streams = self.streams.lock().map_err(|_| MediaError::Bug("streams poisoned"))?;
            let mut senders = Vec::new();
            for s in streams.iter_mut().filter(|s| inactive.contains(&s.mindex)) {
                // Its source may well go on (an `unsubscribe`): nothing more to send here.
                let _ = s.control.send(Control::Detach);
                s.carried = None;
                senders.push(s.sender);
            }
            senders
        };
        set_directions(&self.pc, &senders, RTCRtpTransceiverDirection::Inactive).await?;
        if restart {
            // New ICE credentials: gathering starts over, and the offer waits for it
            // (half-trickle, as every offer here).
            let mut gathered = self.gathered.lock().await;
            while gathered.try_recv().is_ok() {}
            let options = RTCOfferOptions { ice_restart: true };
            let offer = self.pc.create_offer(Some(options)).await.map_err(|e| MediaError::stack("offer", e))?;
            self.pc.set_local_description(offer).await.map_err(|e| MediaError::stack("local description", e))?;
            let sdp = local_sdp_when_gathered(&self.settings, &self.pc, &mut gathered).await?;
            return Ok(self.offered(&sdp));
        }
        let offer = self.pc.create_offer(None).await.map_err(|e| MediaError::stack("offer", e))?;
        self.pc.set_local_description(offer).await.map_err(|e| MediaError::stack("local description", e))?;
        let sdp = self.pc.local_description().await.ok_or(MediaError::stack("local description", "missing"))?.sdp;
        let sdp = match &self.public_ip {
            Some(ip) => super::sdp::announce_address(&sdp, ip),
            None => sdp,
        };
        Ok(self.offered(&sdp))
    }

    pub async fn add_candidates(&self, candidates: Vec<Candidate>) {
        add_candidates(&self.pc, candidates).await
    }

    /// Applies the subscriber's answer; forwarding starts with the payload types and header
    /// extension ids it chose.
    pub async fn start(&self, answer_sdp: String) -> Result<(), MediaError> {
        let pts = first_payload_types(&answer_sdp);
        let extensions = super::sdp::streams(&answer_sdp);
        let answer = RTCSessionDescription::answer(answer_sdp).map_err(|e| MediaError::sdp("answer", e))?;
        self.pc.set_remote_description(answer).await.map_err(|e| MediaError::sdp("remote description", e))?;
        let streams = self.streams.lock().map_err(|_| MediaError::Bug("streams poisoned"))?;
        for (mindex, pt) in pts.into_iter().enumerate() {
            if let Some(stream) = streams.iter().find(|s| s.mindex == mindex) {
                let extensions =
                    extensions.iter().find(|s| s.mindex == mindex).map(|s| s.extensions).unwrap_or_default();
                let _ = stream.negotiated.send(pt.map(|payload_type| Negotiated { payload_type, extensions }));
            }
        }
        Ok(())
    }

    pub fn set_paused(&self, paused: bool) {
        let _ = self.paused.send(paused);
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// Sets the direction of the transceivers sending with `senders`.
async fn set_directions(
    pc: &Arc<dyn PeerConnection>,
    senders: &[RTCRtpSenderId],
    direction: RTCRtpTransceiverDirection,
) -> Result<(), MediaError> {
    for t in pc.get_transceivers().await {
        let sender = t.sender().await.ok().flatten();
        if sender.is_some_and(|s| senders.contains(&s.id())) {
            t.set_direction(direction).await.map_err(|e| MediaError::stack("transceiver direction", e))?;
        }
    }
    Ok(())
}

/// The first payload type of each m-line.
fn first_payload_types(sdp: &str) -> Vec<Option<u8>> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("m="))
        .map(|m| m.split_whitespace().nth(3).and_then(|pt| pt.parse().ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_types_come_from_each_m_line() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n";
        assert_eq!(first_payload_types(sdp), vec![Some(111), Some(96)]);
    }
}
