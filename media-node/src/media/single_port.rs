//! One UDP port for every PeerConnection of the node (`media_port`): what a firewall, a load
//! balancer or a Kubernetes host port has to open.
//!
//! webrtc-rs 0.21 binds sockets per PeerConnection (its UDP mux is a todo upstream), but it
//! takes its sockets from a [`Runtime`] (`runtime`): ours hands each PeerConnection a
//! [`MuxedSocket`] in place of the one it bound. The ephemeral socket it bound stays open, unused, only to keep
//! its port (the PeerConnection's name for this socket) from being reused while it lives; its
//! packets come and go through the shared port. Received datagrams are demultiplexed as the
//! ICE spec allows: a STUN request by the ufrag in its USERNAME (ours, before the colon), a
//! STUN response by its transaction id (recorded when the request went out), and everything
//! after (DTLS, SRTP, SRTCP, further STUN) by the remote address the last STUN came from. The
//! SDP a PeerConnection hands out names the shared port instead of the ephemeral one
//! ([`SinglePort::announce`]), which is also when its ufrag is routed.
//!
//! The demultiplexer task owns the routes (no lock on the packet path); a datagram reaches
//! its PeerConnection through a bounded lock-free queue (dropped when full, as a socket
//! buffer would).
//!
//! That is only how a peer's first datagrams arrive. Once one has come from a peer's address,
//! the PeerConnection opens a socket of its own on the shared port (`SO_REUSEPORT`) connected
//! to that address; the kernel delivers a datagram to the socket that matches its sender
//! exactly before any unconnected one, so from then on that peer's datagrams reach the
//! PeerConnection's own thread (its room's media worker) without the demultiplexer or a thread
//! hand-off, and replies leave on the connected socket. `/metrics` counts both paths.
//! What this gives up: a client that binds a new PeerConnection to the address and port an old
//! one used while this node still holds the old one (its ICE not yet failed) has its datagrams
//! go to the old PeerConnection's connected socket, not by ufrag to the new one, until the old
//! one closes.

use super::gso;
use super::runtime::{with_sockets, Sockets};
use crate::metrics::{DropReason, METRICS};
use bytes::Bytes;
use concurrent_queue::ConcurrentQueue;
use futures_util::task::AtomicWaker;
use std::collections::HashMap;
use std::fmt::Debug;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use webrtc::runtime::{AsyncUdpSocket, RecvMeta, Runtime, Transmit};

/// Datagrams waiting for one PeerConnection's driver (about 0.7 s of a 1.5 Mbit/s publisher).
const QUEUE: usize = 1024;
/// The shared socket's kernel buffers: every peer's burst lands in the same one (the kernel
/// may grant less: `net.core.rmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;
/// Received datagrams are cut from buffers of this size: one allocation per ~45 full-size
/// datagrams instead of one each.
const SLAB: usize = 64 * 1024;
/// Room kept free in the slab for the next datagram (a WebRTC datagram fits an MTU).
const MAX_DATAGRAM: usize = 2048;
/// Sockets a PeerConnection connects to its peers' addresses (ICE may try a few; later ones
/// keep coming through the demultiplexer).
const MAX_DIRECT: usize = 4;
/// Datagrams a connected socket counts before adding them to `/metrics` (one shared counter
/// written by every worker).
const COUNT_BATCH: u32 = 16;
/// Routes are pruned of closed PeerConnections after this many new ones.
const PRUNE_EVERY: usize = 512;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// The node's shared port, one socket per media address.
#[derive(Debug)]
pub struct SinglePort {
    port: u16,
    muxes: Vec<Arc<Mux>>,
    runtime: Arc<dyn Runtime>,
}

impl SinglePort {
    /// Binds `port` on each of `ips` and starts their demultiplexers (inside a tokio runtime).
    pub fn open(ips: &[IpAddr], port: u16) -> io::Result<Arc<Self>> {
        let mut muxes = Vec::with_capacity(ips.len());
        let mut port = port;
        for ip in ips {
            let std = bind(SocketAddr::new(*ip, port))?;
            // Port 0 (tests): the one the first address got, for all.
            port = std.local_addr()?.port();
            let addr = std.local_addr()?;
            let socket = Arc::new(UdpSocket::from_std(std)?);
            let (ctl, routes) = mpsc::unbounded_channel();
            tokio::spawn(demux(socket.clone(), routes));
            muxes.push(Arc::new(Mux { ip: *ip, addr, socket, ctl, ports: Mutex::new(HashMap::new()) }));
        }
        let runtime = with_sockets(Muxes(muxes.clone()))?;
        Ok(Arc::new(Self { port, muxes, runtime }))
    }

    /// The runtime PeerConnections are built with.
    pub fn runtime(&self) -> Arc<dyn Runtime> {
        self.runtime.clone()
    }

    /// A local SDP as peers must see it: host candidates on the shared port; and its ufrag
    /// routed to the PeerConnection whose candidates these are.
    pub fn announce(&self, sdp: &str) -> String {
        let ufrags: Vec<&str> = sdp.lines().filter_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:")).collect();
        let mut out = String::with_capacity(sdp.len());
        for line in sdp.split_inclusive('\n') {
            match self.on_shared_port(line) {
                Some((mux, slot, line)) => {
                    for u in &ufrags {
                        mux.route(Route::Ufrag((*u).to_owned(), slot.clone()));
                    }
                    out.push_str(&line);
                }
                None => out.push_str(line),
            }
        }
        out
    }

    /// A host candidate of one of our muxed sockets, naming the shared port instead; with the
    /// mux and the slot it belongs to.
    fn on_shared_port(&self, line: &str) -> Option<(&Arc<Mux>, Weak<Slot>, String)> {
        let body = line.strip_prefix("a=candidate:")?;
        let mut fields: Vec<&str> = body.split_whitespace().collect();
        if fields.len() < 8 || !fields[2].eq_ignore_ascii_case("udp") || fields[7] != "host" {
            return None;
        }
        let (ip, port) = (fields[4].parse().ok()?, fields[5].parse().ok()?);
        let (mux, slot) = self.muxes.iter().find_map(|m| Some((m, m.slot_on(ip, port)?)))?;
        let shared = self.port.to_string();
        fields[5] = &shared;
        let ending = &line[line.trim_end().len()..];
        Some((mux, slot, format!("a=candidate:{}{ending}", fields.join(" "))))
    }
}

/// The shared socket, non-blocking, with room for bursts, open to the PeerConnections'
/// connected sockets on the same port. No other process may hold the port: with
/// `SO_REUSEPORT` a second node on it would silently take a share of its datagrams, so the
/// port is first bound without it.
fn bind(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    if addr.port() != 0 {
        drop(std::net::UdpSocket::bind(addr)?);
    }
    let socket = reusable(addr)?;
    // Best effort: a smaller buffer still works.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A non-blocking UDP socket that may share its port with the node's other sockets on it.
fn reusable(addr: SocketAddr) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A socket on the shared address connected to `peer`: the kernel hands it that peer's
/// datagrams. Registered with the calling task's runtime.
fn connected(shared: SocketAddr, peer: SocketAddr) -> io::Result<UdpSocket> {
    let socket = reusable(shared)?;
    socket.bind(&shared.into())?;
    socket.connect(&peer.into())?;
    UdpSocket::from_std(socket.into())
}

/// One shared socket and the PeerConnections' sockets on its address.
#[derive(Debug)]
struct Mux {
    ip: IpAddr,
    /// The shared socket's address (what connected sockets bind too).
    addr: SocketAddr,
    socket: Arc<UdpSocket>,
    ctl: mpsc::UnboundedSender<Route>,
    /// The port each muxed socket reserved, to find its slot from a candidate (setup only).
    ports: Mutex<HashMap<u16, Weak<Slot>>>,
}

impl Mux {
    fn route(&self, r: Route) {
        let _ = self.ctl.send(r);
    }

    fn slot_on(&self, ip: IpAddr, port: u16) -> Option<Weak<Slot>> {
        if !(ip == self.ip || self.ip.is_unspecified()) {
            return None;
        }
        let ports = self.ports.lock().unwrap_or_else(|p| p.into_inner());
        ports.get(&port).filter(|s| s.strong_count() > 0).cloned()
    }
}

/// What the demultiplexer learns besides remote addresses.
enum Route {
    /// STUN requests naming this ufrag (ours) go to this PeerConnection.
    Ufrag(String, Weak<Slot>),
    /// The response to this request goes to the PeerConnection that sent it.
    Transaction([u8; 12], Weak<Slot>),
}

/// A PeerConnection's inbox.
#[derive(Debug)]
struct Slot {
    queue: ConcurrentQueue<(Bytes, SocketAddr)>,
    waker: AtomicWaker,
}

/// Reads the shared socket and hands each datagram to its PeerConnection.
async fn demux(socket: Arc<UdpSocket>, mut routes: mpsc::UnboundedReceiver<Route>) {
    let mut by_ufrag: HashMap<String, Weak<Slot>> = HashMap::new();
    let mut by_transaction: HashMap<[u8; 12], Weak<Slot>> = HashMap::new();
    let mut by_addr: HashMap<SocketAddr, Weak<Slot>> = HashMap::new();
    let mut learned = 0usize;
    let mut slab = bytes::BytesMut::with_capacity(SLAB);
    loop {
        tokio::select! {
            biased;
            r = routes.recv() => {
                match r {
                    None => return,
                    Some(Route::Ufrag(u, s)) => { by_ufrag.insert(u, s); }
                    Some(Route::Transaction(t, s)) => { by_transaction.insert(t, s); }
                }
                learned += 1;
                if learned.is_multiple_of(PRUNE_EVERY) {
                    by_ufrag.retain(|_, s| s.strong_count() > 0);
                    by_transaction.retain(|_, s| s.strong_count() > 0);
                    by_addr.retain(|_, s| s.strong_count() > 0);
                }
            }
            r = socket.recv_buf_from(&mut slab) => {
                let datagram = slab.split().freeze();
                if slab.capacity() < MAX_DATAGRAM {
                    slab.reserve(SLAB);
                }
                let Ok((_, from)) = r else { continue };
                let packet = &datagram[..];
                // STUN names its PeerConnection (and teaches where its peer now is); the rest,
                // and a response nobody waits for, is known by its sender. A request for a
                // ufrag we do not have goes nowhere.
                let (named, by_sender) = match stun(packet) {
                    Some(Stun::Request { ufrag }) => {
                        (std::str::from_utf8(ufrag).ok().and_then(|u| by_ufrag.get(u)).cloned(), false)
                    }
                    Some(Stun::Response { transaction }) => (by_transaction.remove(&transaction), true),
                    None => (None, true),
                };
                if let Some(s) = &named {
                    by_addr.insert(from, s.clone());
                }
                let slot = named.or_else(|| by_addr.get(&from).filter(|_| by_sender).cloned());
                // Unknown senders (scans, a closed PeerConnection's peer) are not counted.
                let Some(slot) = slot.and_then(|s| s.upgrade()) else { continue };
                METRICS.port_datagrams(false, 1);
                if slot.queue.push((datagram, from)).is_ok() {
                    slot.waker.wake();
                } else {
                    METRICS.dropped(DropReason::PortQueue, 1);
                }
            }
        }
    }
}

enum Stun<'a> {
    /// A request, with our ufrag (the first part of its USERNAME), or empty without one.
    Request {
        ufrag: &'a [u8],
    },
    Response {
        transaction: [u8; 12],
    },
}

/// A STUN message's class and what routes it (RFC 5389 header, USERNAME attribute 0x0006).
fn stun(p: &[u8]) -> Option<Stun<'_>> {
    if p.len() < 20 || p[0] & 0xC0 != 0 || p[4..8] != MAGIC_COOKIE {
        return None;
    }
    let class = (u16::from(p[0]) << 8 | u16::from(p[1])) & 0x0110;
    if class == 0x0100 || class == 0x0110 {
        let mut transaction = [0u8; 12];
        transaction.copy_from_slice(&p[8..20]);
        return Some(Stun::Response { transaction });
    }
    let mut at = 20;
    while at + 4 <= p.len() {
        let kind = u16::from(p[at]) << 8 | u16::from(p[at + 1]);
        let len = usize::from(p[at + 2]) << 8 | usize::from(p[at + 3]);
        let value = p.get(at + 4..at + 4 + len)?;
        if kind == 0x0006 {
            let ufrag = value.split(|b| *b == b':').next().unwrap_or_default();
            return Some(Stun::Request { ufrag });
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    Some(Stun::Request { ufrag: &[] })
}

/// A STUN request's transaction id (the response will carry it).
fn request_transaction(p: &[u8]) -> Option<[u8; 12]> {
    match stun(p)? {
        Stun::Request { .. } => {
            let mut t = [0u8; 12];
            t.copy_from_slice(&p[8..20]);
            Some(t)
        }
        Stun::Response { .. } => None,
    }
}

/// What a PeerConnection gets instead of the socket it bound.
#[derive(Debug)]
struct MuxedSocket {
    mux: Arc<Mux>,
    slot: Arc<Slot>,
    local: SocketAddr,
    /// Keeps `local`'s port ours while this socket lives (nothing is sent to it).
    _reserved: std::net::UdpSocket,
    /// Sockets connected to the peers datagrams came from, each set once (read without a lock).
    direct: [OnceLock<Direct>; MAX_DIRECT],
    /// Opening one failed: the demultiplexer carries everything (not retried per datagram).
    direct_failed: AtomicBool,
    /// Datagrams received directly and not yet added to `/metrics`.
    direct_count: AtomicU32,
}

#[derive(Debug)]
struct Direct {
    peer: SocketAddr,
    /// Shared with a pending run of datagrams (`gso`), which keeps it open until sent.
    socket: Arc<UdpSocket>,
}

impl MuxedSocket {
    /// Opens a socket connected to `peer` (a datagram from it came through the demultiplexer),
    /// unless one is open already or there is no room.
    fn connect_to(&self, peer: SocketAddr) {
        if self.direct_failed.load(Relaxed) {
            return;
        }
        let Some(free) = self.direct.iter().find(|d| d.get().is_none_or(|d| d.peer == peer)) else { return };
        if free.get().is_some() {
            return;
        }
        match connected(self.mux.addr, peer) {
            Ok(socket) => {
                let _ = free.set(Direct { peer, socket: Arc::new(socket) });
            }
            Err(e) => {
                tracing::debug!(peer = %peer, error = %e, "no socket of its own for this peer; it stays demultiplexed");
                self.direct_failed.store(true, Relaxed);
            }
        }
    }

    fn direct_to(&self, peer: SocketAddr) -> Option<&Direct> {
        self.direct.iter().map_while(OnceLock::get).find(|d| d.peer == peer)
    }

    fn count_direct(&self) {
        if self.direct_count.fetch_add(1, Relaxed) + 1 >= COUNT_BATCH {
            METRICS.port_datagrams(true, u64::from(self.direct_count.swap(0, Relaxed)));
        }
    }
}

impl Drop for MuxedSocket {
    fn drop(&mut self) {
        METRICS.port_datagrams(true, u64::from(*self.direct_count.get_mut()));
        let mut ports = self.mux.ports.lock().unwrap_or_else(|p| p.into_inner());
        if ports.get(&self.local.port()).is_some_and(|s| s.ptr_eq(&Arc::downgrade(&self.slot))) {
            ports.remove(&self.local.port());
        }
    }
}

impl AsyncUdpSocket for MuxedSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn poll_send(&self, cx: &mut Context<'_>, t: &Transmit<'_>) -> Poll<io::Result<usize>> {
        if let Some(transaction) = request_transaction(t.contents) {
            self.mux.route(Route::Transaction(transaction, Arc::downgrade(&self.slot)));
        }
        match self.direct_to(t.destination) {
            Some(direct) if super::runtime::plain(t) && gso::send(&direct.socket, None, t.contents).is_some() => {
                Poll::Ready(Ok(t.contents.len()))
            }
            Some(direct) => {
                // What a run cannot carry must not overtake one.
                gso::flush_thread();
                match direct.socket.poll_send(cx, t.contents) {
                    // An ICMP error an earlier datagram drew, reported on this send (a connected
                    // socket's way): lost like any datagram, as on the shared socket, not a failure.
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        Poll::Ready(Ok(t.contents.len()))
                    }
                    sent => sent,
                }
            }
            None => self.mux.socket.poll_send_to(cx, t.contents, t.destination),
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(m)) = (bufs.first_mut(), meta.first_mut()) else { return Poll::Ready(Ok(0)) };
        let fill = |m: &mut RecvMeta, from: SocketAddr, len: usize| {
            let mut filled = RecvMeta::default();
            (filled.addr, filled.len, filled.stride) = (from, len, len.max(1));
            *m = filled;
        };
        for d in self.direct.iter().map_while(OnceLock::get) {
            // An error is reported once each; a few in a row end this look.
            for _ in 0..4 {
                let mut read = tokio::io::ReadBuf::new(&mut buf[..]);
                match d.socket.poll_recv(cx, &mut read) {
                    Poll::Ready(Ok(())) => {
                        let len = read.filled().len();
                        fill(m, d.peer, len);
                        self.count_direct();
                        return Poll::Ready(Ok(1));
                    }
                    // An ICMP error on the connected socket (the peer's port closed): the
                    // socket goes on.
                    Poll::Ready(Err(_)) => continue,
                    Poll::Pending => break,
                }
            }
        }
        let take = |buf: &mut IoSliceMut<'_>, m: &mut RecvMeta| {
            let (datagram, from) = self.slot.queue.pop().ok()?;
            let len = datagram.len().min(buf.len());
            buf[..len].copy_from_slice(&datagram[..len]);
            fill(m, from, len);
            self.connect_to(from);
            Some(())
        };
        if take(buf, m).is_some() {
            return Poll::Ready(Ok(1));
        }
        self.slot.waker.register(cx.waker());
        // A datagram that came between the first look and the registration.
        match take(buf, m) {
            Some(()) => Poll::Ready(Ok(1)),
            None => Poll::Pending,
        }
    }
}

/// Sockets bound on a shared address become muxed ones; others stay the default runtime's.
#[derive(Debug)]
struct Muxes(Vec<Arc<Mux>>);

impl Sockets for Muxes {
    fn wrap(&self, default: &dyn Runtime, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let local = socket.local_addr()?;
        let Some(mux) = self.0.iter().find(|m| m.ip == local.ip()) else {
            return default.wrap_udp_socket(socket);
        };
        let slot = Arc::new(Slot { queue: ConcurrentQueue::bounded(QUEUE), waker: AtomicWaker::new() });
        mux.ports.lock().unwrap_or_else(|p| p.into_inner()).insert(local.port(), Arc::downgrade(&slot));
        Ok(Arc::new(MuxedSocket {
            mux: mux.clone(),
            slot,
            local,
            _reserved: socket,
            direct: Default::default(),
            direct_failed: AtomicBool::new(false),
            direct_count: AtomicU32::new(0),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn binding_request(username: &str, transaction: u8) -> Vec<u8> {
        let mut p = vec![0x00, 0x01, 0, 0];
        p.extend_from_slice(&MAGIC_COOKIE);
        p.extend_from_slice(&[transaction; 12]);
        let padded = username.len().div_ceil(4) * 4;
        // PRIORITY first, as browsers send it, then USERNAME.
        p.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        p.extend_from_slice(&[0x00, 0x06, 0x00, username.len() as u8]);
        p.extend_from_slice(username.as_bytes());
        p.resize(p.len() + padded - username.len(), 0);
        let len = (p.len() - 20) as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    /// One datagram `socket` receives within 2 s (into `buf`): where it came from.
    async fn recv_one(socket: &dyn AsyncUdpSocket, buf: &mut [u8], what: &str) -> SocketAddr {
        let mut meta = [RecvMeta::default()];
        let read =
            futures_util::future::poll_fn(|cx| socket.poll_recv(cx, &mut [IoSliceMut::new(&mut *buf)], &mut meta));
        let got =
            tokio::time::timeout(Duration::from_secs(2), read).await.unwrap_or_else(|_| panic!("{what}: nothing"));
        assert_eq!(got.unwrap(), 1, "{what}");
        meta[0].addr
    }

    #[test]
    fn stun_is_routed_by_our_ufrag_and_responses_by_transaction() {
        let req = binding_request("ourfrag:theirs", 7);
        assert!(matches!(stun(&req), Some(Stun::Request { ufrag: b"ourfrag" })));
        assert_eq!(request_transaction(&req), Some([7; 12]));
        let mut resp = req.clone();
        resp[0..2].copy_from_slice(&[0x01, 0x01]);
        assert!(matches!(stun(&resp), Some(Stun::Response { transaction }) if transaction == [7; 12]));
        assert_eq!(request_transaction(&resp), None, "responses are not requests");
        assert!(stun(&[0x80, 0x60, 0, 1]).is_none(), "RTP");
        assert!(stun(&[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_none(), "DTLS");
        let mut truncated = req.clone();
        truncated.truncate(30);
        assert!(matches!(stun(&truncated), None | Some(Stun::Request { .. })), "no panic on a cut message");
    }

    #[tokio::test]
    async fn candidates_name_the_shared_port_and_their_ufrag_is_routed() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let shared = SinglePort::open(&[ip], 0).unwrap();
        let reserved = std::net::UdpSocket::bind((ip, 0)).unwrap();
        let ephemeral = reserved.local_addr().unwrap().port();
        let socket = shared.runtime().wrap_udp_socket(reserved).unwrap();
        let sdp = format!(
            "v=0\r\na=ice-ufrag:abcd\r\na=candidate:1 1 udp 2130706431 127.0.0.1 {ephemeral} typ host\r\na=candidate:2 1 udp 1 10.9.9.9 {ephemeral} typ host\r\n"
        );
        let port = shared.port;
        let announced = shared.announce(&sdp);
        assert!(announced.contains(&format!("127.0.0.1 {port} typ host")), "{announced}");
        assert!(
            announced.contains(&format!("10.9.9.9 {ephemeral} typ host")),
            "another address untouched: {announced}"
        );
        // A peer's check naming the ufrag reaches this PeerConnection's socket.
        let real_port = shared.muxes[0].socket.local_addr().unwrap();
        let peer = std::net::UdpSocket::bind((ip, 0)).unwrap();
        peer.send_to(&binding_request("abcd:peer", 1), real_port).unwrap();
        let mut buf = [0u8; 256];
        let from = recv_one(&*socket, &mut buf, "routed").await;
        assert_eq!(from, peer.local_addr().unwrap());
        // And what follows from that address (DTLS here) too.
        peer.send_to(&[22, 254, 253, 0, 0], real_port).unwrap();
        recv_one(&*socket, &mut buf, "routed by address").await;
        assert_eq!(buf[0], 22);
        // From then on the peer's datagrams come straight to this PeerConnection's own socket
        // connected to it, not through the demultiplexer, and its replies leave from there.
        let demuxed = METRICS.port_demultiplexed.load(Relaxed);
        for i in 0..COUNT_BATCH {
            peer.send_to(&[0x80, 0x60, 0, i as u8], real_port).unwrap();
            let from = recv_one(&*socket, &mut buf, "delivered").await;
            assert_eq!((from, buf[3]), (peer.local_addr().unwrap(), i as u8));
        }
        assert_eq!(METRICS.port_demultiplexed.load(Relaxed), demuxed, "none through the demultiplexer");
        assert!(METRICS.port_direct.load(Relaxed) >= u64::from(COUNT_BATCH));
        let transmit = Transmit {
            destination: peer.local_addr().unwrap(),
            ecn: None,
            contents: b"reply",
            segment_size: None,
            src_ip: None,
        };
        futures_util::future::poll_fn(|cx| socket.poll_send(cx, &transmit)).await.unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"reply"[..], real_port), "replies come from the shared port");
        // The peer goes away: the port unreachable errors its datagrams draw are no send failure.
        drop(peer);
        for _ in 0..3 {
            futures_util::future::poll_fn(|cx| socket.poll_send(cx, &transmit))
                .await
                .expect("sent or lost, not failed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn the_shared_port_is_refused_when_another_node_holds_it() {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let _first = bind(port).unwrap();
        // A second node on the same port would share its datagrams (both reuse the port).
        let e = bind(port).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    }
}
