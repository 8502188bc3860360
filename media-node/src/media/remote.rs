//! A remote publisher's ingress: plain RTP from another server's `publish_remotely`, on one UDP
//! port for all its streams, told apart by SSRC (`1000 + 10 × mindex + layer`); data channel
//! messages come in RTP envelopes (payload type 1: binary). A second port takes RTCP only to
//! learn where the sender listens (latching), so that keyframe requests can go back there.
//! Packets go into the same feeds a WebRTC publisher's do, so subscribers, forwarders and
//! recorders take them alike.

use super::extensions::{relay, DelayStamp};
use super::feed::{DataFeed, DataMessage, Feed, MAX_LAYERS};
use super::keyframe_pacing::{layers_of, pace, KeyframePacer};
use super::MediaError;
use crate::metrics::METRICS;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::shared::marshal::{Marshal, Unmarshal};
use shared::janus::videoroom::remote::{from_remote_ssrc, remote_ssrc};
use shared::media::ExtensionIds;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The largest datagram taken (a remotized packet fits one on any path).
const MTU: usize = 1500;
/// The label a remote publisher's data channel messages carry (the envelope has none).
const DATA_LABEL: &str = "JanusDataChannel";

/// Where one remote stream's packets go: its feeds (one per simulcast layer), with the ids its
/// sender gives the relayed header extensions; or the data feed.
pub(super) enum Inlet {
    Media(Vec<Feed>, ExtensionIds, DelayStamp),
    Data,
    /// An index no stream has (an update may skip one, as Janus allows).
    Unused,
}

/// The running ingress: its ports, and its tasks, stopped when it is dropped.
pub struct RemoteIngress {
    pub port: u16,
    pub rtcp_port: u16,
    tasks: Vec<JoinHandle<()>>,
    /// Streams added later (`update_remote_publisher`), by m-line index.
    added: mpsc::UnboundedSender<(usize, Inlet)>,
    /// For an added video stream's keyframe requests.
    rtcp: Arc<UdpSocket>,
    latched: watch::Receiver<Option<SocketAddr>>,
}

impl RemoteIngress {
    /// Receives stream `mindex` from now on; a video stream's keyframe requests go back as for
    /// the first ones (that task ends with the publisher, whose sender it waits on).
    pub(super) fn add(&self, mindex: usize, inlet: Inlet, keyframes: Option<mpsc::UnboundedReceiver<u8>>) {
        let _ = self.added.send((mindex, inlet));
        if let Some(requests) = keyframes {
            tokio::spawn(request_keyframes(self.rtcp.clone(), self.latched.clone(), mindex, requests));
        }
    }

    /// Stops receiving (the feeds close when the publisher is dropped).
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for RemoteIngress {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind(ip: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(SocketAddr::new(ip, port))?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

/// Opens the RTP port (`port`, or any) and an RTCP port on `ip` and starts receiving into
/// `inlets` (by m-line index) and `data`; `keyframes` are each video stream's keyframe requests
/// (m-line index, requests of a layer each).
pub(super) fn start(
    ip: IpAddr,
    port: Option<u16>,
    inlets: Vec<Inlet>,
    data: DataFeed,
    keyframes: Vec<(usize, mpsc::UnboundedReceiver<u8>)>,
) -> Result<RemoteIngress, MediaError> {
    let io = |e| MediaError::io("Could not open UDP socket for RTP stream", e);
    let rtp = bind(ip, port.unwrap_or(0)).map_err(io)?;
    let rtcp = bind(ip, 0).map_err(io)?;
    let local = |s: &UdpSocket| s.local_addr().map(|a| a.port()).unwrap_or(0);
    let (port, rtcp_port) = (local(&rtp), local(&rtcp));
    let rtcp = Arc::new(rtcp);
    let (latched_tx, latched) = watch::channel(None);
    let (added, added_rx) = mpsc::unbounded_channel();
    let mut tasks =
        vec![tokio::spawn(receive(rtp, inlets, added_rx, data)), tokio::spawn(latch(rtcp.clone(), latched_tx))];
    for (mindex, requests) in keyframes {
        tasks.push(tokio::spawn(request_keyframes(rtcp.clone(), latched.clone(), mindex, requests)));
    }
    Ok(RemoteIngress { port, rtcp_port, tasks, added, rtcp, latched })
}

/// Reads the RTP port: each packet to its stream's layer feed, each envelope to the data feed.
async fn receive(
    socket: UdpSocket,
    mut inlets: Vec<Inlet>,
    mut added: mpsc::UnboundedReceiver<(usize, Inlet)>,
    data: DataFeed,
) {
    let mut buf = vec![0u8; MTU];
    loop {
        let n = tokio::select! {
            r = socket.recv(&mut buf) => match r {
                Ok(n) => n,
                Err(_) => return,
            },
            Some((mindex, inlet)) = added.recv() => {
                // Bounded by the room's checks: an added stream is at most one past the last.
                if inlets.len() <= mindex {
                    inlets.resize_with(mindex + 1, || Inlet::Unused);
                }
                inlets[mindex] = inlet;
                continue;
            }
        };
        let Ok(mut packet) = rtp::Packet::unmarshal(&mut &buf[..n]) else { continue };
        let Some((mindex, layer)) = from_remote_ssrc(packet.header.ssrc) else { continue };
        match inlets.get_mut(mindex) {
            Some(Inlet::Media(feeds, extensions, delay)) => {
                relay(&mut packet, extensions);
                delay.packet(&mut packet);
                // No subscriber yet is fine: the packet is dropped.
                if let Some(feed) = feeds.get(usize::from(layer)) {
                    let _ = feed.send(packet);
                }
            }
            Some(Inlet::Unused) | None => {}
            Some(Inlet::Data) => {
                let text = packet.header.payload_type == 0;
                let msg = DataMessage { label: DATA_LABEL.into(), text, data: packet.payload };
                let _ = data.send(msg);
            }
        }
    }
}

/// Remembers where the sender's RTCP comes from: keyframe requests go there.
async fn latch(socket: Arc<UdpSocket>, latched: watch::Sender<Option<SocketAddr>>) {
    let mut buf = vec![0u8; MTU];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { return };
        // RTP or RTCP (version 2) latches, as Janus checks.
        if n >= 2 && buf[0] >> 6 == 2 && latched.borrow().as_ref() != Some(&from) {
            latched.send_replace(Some(from));
        }
    }
}

/// Sends one remote video stream's keyframe requests (a PLI for each layer's SSRC) to the latched
/// RTCP address, as [`KeyframePacer`] paces them (without a periodic round).
async fn request_keyframes(
    socket: Arc<UdpSocket>,
    latched: watch::Receiver<Option<SocketAddr>>,
    mindex: usize,
    requests: mpsc::UnboundedReceiver<u8>,
) {
    let pacer = KeyframePacer::new(MAX_LAYERS, None, std::time::Instant::now());
    pace(requests, pacer, |round| {
        let to = *latched.borrow();
        let socket = socket.clone();
        async move {
            if let Some(to) = to {
                for layer in layers_of(round) {
                    let pli = PictureLossIndication { sender_ssrc: 0, media_ssrc: remote_ssrc(mindex, layer) };
                    if let Ok(bytes) = pli.marshal() {
                        let _ = socket.send_to(&bytes, to).await;
                        METRICS.plis_sent(1);
                    }
                }
            }
            true
        }
    })
    .await
}
