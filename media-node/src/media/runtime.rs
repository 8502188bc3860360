//! The sockets the node's PeerConnections get. webrtc-rs takes every socket through a
//! [`Runtime`]; ours is its default runtime with the sockets chosen by a [`Sockets`]: the
//! shared port's (`single_port`), or, for a subscriber's PeerConnection on a port of its own,
//! the default socket without UDP GRO.
//!
//! Why a subscriber's socket takes no GRO: webrtc-rs sizes each socket's receive buffer for
//! what the kernel may coalesce into one read (64 × 1,500 bytes with GRO on, 2,000 without)
//! and keeps it for the PeerConnection's life. A subscriber's socket only receives RTCP and
//! STUN, which coalescing does not speed up, so the 94 KiB were memory per subscriber for
//! nothing. A publisher's socket, which receives the media, keeps GRO.
//!
//! Every task spawned through the runtime (a PeerConnection's driver, which does its sending)
//! is polled in a [`gso::Scope`], and a subscriber's socket sends through [`gso::send`]: what the
//! driver sends one peer in one turn leaves in one system call.

use super::gso;
use std::fmt::Debug;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime, Transmit,
};

/// How a runtime turns the sockets PeerConnections bind into the ones they use.
pub(super) trait Sockets: Debug + Send + Sync + 'static {
    fn wrap(&self, default: &dyn Runtime, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>>;
}

/// webrtc-rs's default runtime, but for the sockets.
#[derive(Debug)]
struct WithSockets<S> {
    inner: Arc<dyn Runtime>,
    sockets: S,
}

/// The default runtime with `sockets` (inside a tokio runtime: the default runtime is tokio's).
pub(super) fn with_sockets(sockets: impl Sockets) -> io::Result<Arc<dyn Runtime>> {
    let inner = webrtc::runtime::default_runtime().ok_or_else(|| io::Error::other("no async runtime"))?;
    Ok(Arc::new(WithSockets { inner, sockets }))
}

/// A subscriber's runtime: default sockets without UDP GRO.
pub(super) fn subscriber() -> io::Result<Arc<dyn Runtime>> {
    with_sockets(WithoutGro)
}

/// The default socket with UDP GRO turned off (and reported off, so the receive buffer is one
/// datagram's), sending in runs. If the kernel refuses to turn GRO off, it stays on and is
/// reported: a buffer smaller than what the kernel coalesces would cut datagrams.
#[derive(Debug)]
pub(super) struct WithoutGro;

impl Sockets for WithoutGro {
    fn wrap(&self, default: &dyn Runtime, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        // The same socket (a second descriptor of it), for after the default runtime set it up.
        let same = socket.try_clone()?;
        let wrapped = default.wrap_udp_socket(socket)?;
        let gro = wrapped.max_gro_segments() > 1 && !gro_off(&same);
        Ok(Arc::new(SubscriberSocket { inner: wrapped, same: Arc::new(same), gro }))
    }
}

/// Turns UDP GRO off on `socket`; whether it is off.
fn gro_off(socket: &std::net::UdpSocket) -> bool {
    let off: libc::c_int = 0;
    // SAFETY: a valid descriptor, and a pointer to an int of the length passed.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&raw const off).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

/// A subscriber's socket: GRO off where the kernel allowed it, sends in runs.
#[derive(Debug)]
struct SubscriberSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    /// The same socket, for the runs.
    same: Arc<std::net::UdpSocket>,
    gro: bool,
}

impl AsyncUdpSocket for SubscriberSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, t: &Transmit<'_>) -> Poll<io::Result<usize>> {
        if !plain(t) {
            // What a run cannot carry (webrtc-rs's own bursts) must not overtake one.
            gso::flush_thread();
        } else if let Some(sent) = gso::send(&self.same, Some(t.destination), t.contents) {
            return Poll::Ready(Ok(sent));
        }
        self.inner.poll_send(cx, t)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        if self.gro {
            self.inner.max_gro_segments()
        } else {
            1
        }
    }
}

/// Whether a run can carry `t`: one datagram, no ECN marking, no chosen source.
pub(super) fn plain(t: &Transmit<'_>) -> bool {
    t.segment_size.is_none() && t.ecn.is_none() && t.src_ip.is_none()
}

impl<S: Sockets> Runtime for WithSockets<S> {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(Box::pin(gso::Scope(future)))
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, Box::pin(gso::Scope(future)))
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        self.sockets.wrap(&*self.inner, socket)
    }

    fn wrap_tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> std::time::Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "portunus"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether UDP GRO is on for `socket`.
    fn gro_on(socket: &std::net::UdpSocket) -> bool {
        let mut on: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a valid descriptor, and an int of the length passed.
        let r = unsafe {
            libc::getsockopt(socket.as_raw_fd(), libc::SOL_UDP, libc::UDP_GRO, (&raw mut on).cast(), &raw mut len)
        };
        assert_eq!(r, 0);
        on != 0
    }

    #[tokio::test]
    async fn a_burst_webrtc_rs_segments_itself_does_not_overtake_a_run() {
        let socket = subscriber().unwrap().wrap_udp_socket(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        assert!(socket.max_gso_segments() > 1, "the driver may hand this socket a burst of its own");
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = peer.local_addr().unwrap();
        let transmit = |contents: &'static [u8], segment_size| Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        static BURST: [u8; 200] = [3; 200];
        let mut buf = [0u8; 2000];
        // Outside a scope a datagram leaves at once (and the socket is known to be writable).
        socket.send_to(&[0; 10], to).await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), peer.recv_from(&mut buf)).await.expect("a datagram").unwrap();
        gso::Scope(Box::pin(std::future::poll_fn(|cx| {
            for t in [transmit(&[1; 100], None), transmit(&[2; 100], None), transmit(&BURST, Some(100))] {
                assert!(matches!(socket.poll_send(cx, &t), Poll::Ready(Ok(_))));
            }
            Poll::Ready(())
        })))
        .await;
        let mut got = Vec::new();
        for _ in 0..4 {
            let (len, _) = tokio::time::timeout(Duration::from_secs(2), peer.recv_from(&mut buf))
                .await
                .expect("a datagram")
                .unwrap();
            got.push((buf[0], len));
        }
        assert_eq!(got, [(1, 100), (2, 100), (3, 100), (3, 100)]);
    }

    #[tokio::test]
    async fn a_subscribers_socket_takes_one_datagram_per_read_and_still_sends_in_bursts() {
        let default = webrtc::runtime::default_runtime().unwrap();
        let bind = || std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let socket = bind();
        let same_default = socket.try_clone().unwrap();
        let with_gro = default.wrap_udp_socket(socket).unwrap();
        assert!(gro_on(&same_default), "the default socket coalesces");
        let socket = bind();
        let same = socket.try_clone().unwrap();
        let without = subscriber().unwrap().wrap_udp_socket(socket).unwrap();
        assert!(with_gro.max_gro_segments() > 1, "this kernel coalesces: the default socket takes GRO");
        assert_eq!(without.max_gro_segments(), 1);
        assert!(!gro_on(&same), "and the kernel does not coalesce for it");
        assert_eq!(without.max_gso_segments(), with_gro.max_gso_segments());
        // Datagrams still arrive one by one.
        let peer = bind();
        for n in 0..3u8 {
            peer.send_to(&[n; 100], without.local_addr().unwrap()).unwrap();
        }
        let mut buf = [0u8; 2000];
        for n in 0..3u8 {
            let (len, _) = tokio::time::timeout(Duration::from_secs(2), without.recv_from(&mut buf))
                .await
                .expect("a datagram")
                .unwrap();
            assert_eq!(&buf[..len], &[n; 100][..]);
        }
    }
}
