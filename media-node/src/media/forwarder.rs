//! RTP forwarders and recorders: a publisher stream sent as plain or SRTP RTP (and data channel
//! messages as UDP datagrams) to a host and port outside the room, or written to a `.mjr` file
//! (`recorder`), taking packets from the same feed its subscribers take them from. Either ends
//! when it is stopped (its handle dropped) or when its publisher's feed closes. A receiver's PLI
//! or FIR on a forwarder's RTCP port reaches the publisher as a keyframe request.

use super::codec::VideoCodec;
use super::feed::DataMessage;
use super::feed::Origin;
use super::recorder::{Mjr, Track};
use super::rewrite::Rewriter;
use super::MediaError;
use rtc::rtp;
use rtc::shared::marshal::Marshal;
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// How often the receiver is sent an empty receiver report on its RTCP port, so that it (and
/// any NAT on the way) knows where the forwarder's RTCP comes from.
const RTCP_HELLO: Duration = Duration::from_secs(5);
/// The largest RTP packet forwarded (a publisher's packets fit a UDP datagram on any path).
const MTU: usize = 1500;

/// Where and how one forwarder sends (or a recorder records).
#[derive(Clone, Debug)]
pub struct Target {
    /// Where a forwarder sends (a recorder writes to its file).
    pub dest: SocketAddr,
    /// Rewrite the SSRC / payload type to these (Janus: the publisher's otherwise).
    pub ssrc: Option<u32>,
    pub pt: Option<u8>,
    /// The simulcast layer relayed; `None`: the best layer flowing, switched at keyframes (one
    /// stream, as a subscriber would get it).
    pub layer: Option<u8>,
    pub clock_rate: u32,
    /// Video: layer changes wait for a keyframe of this codec (asked for).
    pub codec: Option<VideoCodec>,
}

/// SRTP keys from an SDES-style `srtp_crypto` (base64 of the 16-byte key and 14-byte salt).
#[derive(Clone)]
pub struct SrtpParams {
    key: Vec<u8>,
    salt: Vec<u8>,
    profile: ProtectionProfile,
}

impl SrtpParams {
    pub fn new(suite: u8, crypto: &str) -> Result<Self, MediaError> {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(crypto.trim())
            .map_err(|e| MediaError::Invalid(format!("Invalid SRTP crypto ({e})")))?;
        if raw.len() != 30 {
            return Err(MediaError::Invalid(format!(
                "Invalid SRTP crypto (30 bytes of key and salt expected, got {})",
                raw.len()
            )));
        }
        let profile =
            if suite == 32 { ProtectionProfile::Aes128CmHmacSha1_32 } else { ProtectionProfile::Aes128CmHmacSha1_80 };
        Ok(Self { key: raw[..16].to_vec(), salt: raw[16..].to_vec(), profile })
    }

    fn context(&self) -> Result<Context, MediaError> {
        let crypto = rtc::crypto::providers::RingCrypto;
        Context::new(&self.key, &self.salt, self.profile, None, None, &crypto).map_err(|e| MediaError::stack("SRTP", e))
    }
}

/// A running forwarder; dropping it stops it.
pub struct Running {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn unspecified(for_dest: &SocketAddr) -> SocketAddr {
    let ip = match for_dest.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// A socket for the receiver's RTCP, bound now so its port can be announced.
pub fn bind_rtcp(remote: &SocketAddr) -> std::io::Result<(std::net::UdpSocket, u16)> {
    let s = std::net::UdpSocket::bind(unspecified(remote))?;
    s.set_nonblocking(true)?;
    let port = s.local_addr()?.port();
    Ok((s, port))
}

/// Starts forwarding `origin` to `target` (SRTP-protected with `srtp`), with the receiver's
/// RTCP on `rtcp` (its socket and the receiver's RTCP address), if any.
pub fn start_rtp(
    origin: Origin,
    target: Target,
    srtp: Option<SrtpParams>,
    rtcp: Option<(std::net::UdpSocket, SocketAddr)>,
) -> Result<Running, MediaError> {
    let socket = udp_for(&target.dest)?;
    let context = srtp.map(|s| s.context()).transpose()?;
    let mut tasks = Vec::new();
    if let Some((sock, remote)) = rtcp {
        let sock = UdpSocket::from_std(sock).map_err(|e| MediaError::io("UDP socket", e))?;
        tasks.push(tokio::spawn(relay_rtcp(sock, remote, origin.clone(), target.layer.unwrap_or(0))));
    }
    let sink = Sink::Udp { socket, dest: target.dest, srtp: context };
    tasks.push(pump(origin, target, sink));
    Ok(Running { tasks })
}

/// Starts recording `origin` (the best layer flowing, rewritten for continuity, as Janus
/// records) into a new `.mjr` file at `path`.
pub fn start_recording(
    origin: Origin,
    path: &std::path::Path,
    track: Track,
    codec: &str,
    clock_rate: u32,
) -> Result<Running, MediaError> {
    let file = Mjr::create(path, track, codec).map_err(|e| MediaError::io(path.display(), e))?;
    let target = Target {
        dest: SocketAddr::from(([0, 0, 0, 0], 0)),
        ssrc: None,
        pt: None,
        layer: None,
        clock_rate,
        codec: VideoCodec::from_name(codec),
    };
    Ok(Running { tasks: vec![pump(origin, target, Sink::File(file))] })
}

/// Starts recording a publisher's data channel messages into a new `.mjr` file at `path`.
pub fn start_data_recording(
    feed: broadcast::WeakSender<DataMessage>,
    path: &std::path::Path,
) -> Result<Running, MediaError> {
    let file = Mjr::create(path, Track::Data, "text").map_err(|e| MediaError::io(path.display(), e))?;
    data_pump(feed, Sink::File(file), None)
}

/// Relays a publisher's data channel messages into `sink` until the publisher is gone; with
/// `envelope`, each in an RTP envelope of that SSRC (payload type 1 for binary, 0 for text), as
/// Janus sends data to a remote publisher.
fn data_pump(
    feed: broadcast::WeakSender<DataMessage>,
    mut sink: Sink,
    envelope: Option<u32>,
) -> Result<Running, MediaError> {
    let Some(mut rx) = feed.upgrade().map(|f| f.subscribe()) else {
        return Err(MediaError::Gone("the publisher is gone"));
    };
    drop(feed);
    let task = tokio::spawn(async move {
        let mut enveloped = Vec::new();
        loop {
            match rx.recv().await {
                Ok(m) => {
                    let bytes: &[u8] = match envelope {
                        Some(ssrc) => {
                            enveloped.clear();
                            enveloped.extend_from_slice(&[0x80, u8::from(!m.text), 0, 0, 0, 0, 0, 0]);
                            enveloped.extend_from_slice(&ssrc.to_be_bytes());
                            enveloped.extend_from_slice(&m.data[..m.data.len().min(MTU - 12)]);
                            &enveloped
                        }
                        None => &m.data,
                    };
                    if !sink.put(bytes).await {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Ok(Running { tasks: vec![task] })
}

/// A non-blocking UDP socket of `dest`'s family on any port.
fn udp_for(dest: &SocketAddr) -> Result<UdpSocket, MediaError> {
    let io = |e| MediaError::io("UDP socket", e);
    let socket = std::net::UdpSocket::bind(unspecified(dest)).map_err(io)?;
    socket.set_nonblocking(true).map_err(io)?;
    UdpSocket::from_std(socket).map_err(io)
}

/// Where a forwarded packet goes.
enum Sink {
    Udp {
        socket: UdpSocket,
        dest: SocketAddr,
        srtp: Option<Context>,
    },
    /// A recording: written through a buffer (a write to the page cache per few packets).
    File(Mjr),
}

impl Sink {
    /// Sends or writes one packet; `false` when the sink is broken for good.
    async fn put(&mut self, packet: &[u8]) -> bool {
        match self {
            Sink::Udp { socket, dest, srtp } => {
                let sent = match srtp.as_mut() {
                    Some(ctx) => match ctx.encrypt_rtp(packet) {
                        Ok(enc) => socket.send_to(&enc, *dest).await,
                        Err(_) => return true,
                    },
                    None => socket.send_to(packet, *dest).await,
                };
                if let Err(e) = sent {
                    tracing::debug!(error = %e, dest = %dest, "forwarder send failed");
                }
                true
            }
            Sink::File(f) => match f.write(packet, Instant::now()) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "recording stopped: cannot write");
                    false
                }
            },
        }
    }

    fn finish(&mut self) {
        if let Sink::File(f) = self {
            if let Err(e) = f.flush() {
                tracing::warn!(error = %e, "recording not flushed");
            }
        }
    }
}

/// A file recording is flushed however its task ends (stopped, or its publisher gone).
impl Drop for Sink {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Starts sending a publisher's data channel messages to `dest`, one datagram each.
pub fn start_data(feed: broadcast::WeakSender<DataMessage>, dest: SocketAddr) -> Result<Running, MediaError> {
    let sink = Sink::Udp { socket: udp_for(&dest)?, dest, srtp: None };
    data_pump(feed, sink, None)
}

/// Starts sending a publisher's data channel messages to a remote publisher at `dest`, in RTP
/// envelopes of SSRC `ssrc`.
pub fn start_data_enveloped(
    feed: broadcast::WeakSender<DataMessage>,
    dest: SocketAddr,
    ssrc: u32,
) -> Result<Running, MediaError> {
    let sink = Sink::Udp { socket: udp_for(&dest)?, dest, srtp: None };
    data_pump(feed, sink, Some(ssrc))
}

/// The layer a "best available" forwarder should relay: the highest one flowing.
fn best_layer(origin: &Origin) -> u8 {
    let layers = origin.layers.len() as u8;
    let silence = origin.silence.as_ref().map(|s| *s.borrow()).unwrap_or_default();
    (0..layers).rev().find(|l| silence.get(usize::from(*l)).is_some_and(Option::is_none)).unwrap_or(0)
}

/// Starts relaying `origin` into `sink`. The feed is subscribed to before this returns, so
/// nothing the publisher sends after the forwarder or recording is announced is missed.
fn pump(origin: Origin, target: Target, sink: Sink) -> JoinHandle<()> {
    let follow = target.layer.is_none() && origin.simulcast();
    let layer = target.layer.unwrap_or_else(|| if follow { best_layer(&origin) } else { 0 });
    let packets = origin.subscribe(layer);
    tokio::spawn(async move {
        if let Some(packets) = packets {
            relay(origin, target, sink, follow, layer, packets).await;
        }
    })
}

async fn relay(
    origin: Origin,
    target: Target,
    mut sink: Sink,
    follow: bool,
    mut layer: u8,
    mut packets: broadcast::Receiver<rtp::Packet>,
) {
    // The layer being moved to, taken over at its first keyframe.
    let mut pending: Option<(u8, broadcast::Receiver<rtp::Packet>)> = None;
    let mut silence = origin.silence.clone().filter(|_| follow);
    let mut sequence = Rewriter::new(target.clock_rate);
    // One SSRC for a stream that moves between layers.
    let ssrc = target.ssrc.or_else(|| follow.then(rand::random::<u32>));
    if target.codec.is_some() {
        origin.keyframes.for_layer(layer).request();
    }
    let mut buf = vec![0u8; MTU];
    loop {
        let pending_rx = pending.as_mut().map(|(_, rx)| rx);
        let next = tokio::select! {
            changed = super::feed::silence_changed(&mut silence) => {
                if !changed {
                    silence = None;
                }
                let best = best_layer(&origin);
                if best != layer && pending.as_ref().is_none_or(|(l, _)| *l != best) {
                    pending = origin.subscribe(best).map(|rx| (best, rx));
                    if target.codec.is_some() {
                        origin.keyframes.for_layer(best).request();
                    }
                }
                continue;
            }
            r = async {
                match pending_rx {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => match r {
                Ok(p) if target.codec.is_none_or(|c| c.is_keyframe(&p.payload)) => {
                    if let Some((l, rx)) = pending.take() {
                        layer = l;
                        packets = rx;
                        sequence.open_gap(Instant::now);
                    }
                    p
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    pending = None;
                    continue;
                }
            },
            r = packets.recv() => match r {
                Ok(p) => p,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    sequence.open_gap(Instant::now);
                    continue;
                }
                // The publisher stopped: so does its forwarder.
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        let mut p = next;
        // Numbered before it takes the receiver's SSRC: the rewriter follows the source's.
        if follow && !sequence.rewrite(&mut p, Instant::now) {
            continue;
        }
        if let Some(s) = ssrc {
            p.header.ssrc = s;
        }
        if let Some(pt) = target.pt {
            p.header.payload_type = pt;
        }
        let Ok(n) = p.marshal_to(&mut buf) else { continue };
        if !sink.put(&buf[..n]).await {
            return;
        }
    }
}

/// The receiver's RTCP: PLI and FIR become keyframe requests to the publisher; an empty
/// receiver report goes out now and then so the receiver learns where to send.
async fn relay_rtcp(socket: UdpSocket, remote: SocketAddr, origin: Origin, layer: u8) {
    // RTCP RR, no report blocks, SSRC 1.
    const HELLO: [u8; 8] = [0x80, 201, 0, 1, 0, 0, 0, 1];
    let mut buf = [0u8; MTU];
    let mut hello = tokio::time::interval(RTCP_HELLO);
    loop {
        tokio::select! {
            _ = hello.tick() => {
                let _ = socket.send_to(&HELLO, remote).await;
            }
            r = socket.recv_from(&mut buf) => {
                let Ok((n, _)) = r else { continue };
                let mut data = &buf[..n];
                let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut data) else { continue };
                if packets.iter().any(|p| super::feedback::is_keyframe_request(p.as_ref())) {
                    origin.keyframes.for_layer(layer).request();
                }
            }
        }
    }
}

/// An address range forwarders may send to (`10.0.0.0/8`, `::1/128`, or one address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressRange {
    base: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for AddressRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let base: IpAddr = ip.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{s:?}: bad prefix"))?,
        };
        Ok(Self { base, prefix })
    }
}

impl AddressRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 address written as IPv6 (::ffff:a.b.c.d) is that IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.base, ip) {
            (IpAddr::V4(b), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(b) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(b), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(b) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_contain_what_they_say() {
        let r: AddressRange = "10.0.0.0/8".parse().unwrap();
        assert!(r.contains("10.1.2.3".parse().unwrap()));
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        assert!(r.contains("::ffff:10.0.0.9".parse().unwrap()), "IPv4-mapped");
        let one: AddressRange = "203.0.113.7".parse().unwrap();
        assert!(one.contains("203.0.113.7".parse().unwrap()) && !one.contains("203.0.113.8".parse().unwrap()));
        let all: AddressRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: AddressRange = "fc00::/7".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()) && !v6.contains("2001:db8::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<AddressRange>().is_err());
        assert!("nonsense".parse::<AddressRange>().is_err());
    }

    #[test]
    fn srtp_keys_are_30_bytes_of_base64() {
        assert!(SrtpParams::new(80, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_ok());
        assert!(SrtpParams::new(32, "AAAA").is_err());
        assert!(SrtpParams::new(80, "not base64!").is_err());
    }
}
