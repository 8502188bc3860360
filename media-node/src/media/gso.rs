//! Datagrams a PeerConnection sends to one peer in one go leave in one system call (UDP GSO,
//! `UDP_SEGMENT`).
//!
//! webrtc-rs sends what its core queued one `sendmsg` at a time, and asks for GSO only for runs
//! of 16 or more (a data channel's bulk); a video frame is 3-6 packets to each subscriber, so
//! every packet cost a system call and the kernel's whole send path. Here a send made while a
//! task is being polled inside a [`Scope`] (which the node's runtime wraps around every task
//! webrtc-rs spawns, and the node around each subscriber stream's forwarding task, which sends
//! its packets itself) joins the run to the same socket and destination when it can: each
//! segment as long as the first, only the last one shorter (the kernel's rule). A run goes out
//! when a send cannot join it, when it is full, and when the task's poll ends, so a datagram is
//! never held past the turn of the task that sent it; a send outside a scope goes out at once.
//! The kernel cuts the run back into the same datagrams, in order.
//!
//! The run lives in a thread-local (a task's poll never leaves its thread): no lock, no
//! allocation per datagram (the run's buffer is reused). A send reports success once the
//! datagram is in the run; what the kernel then refuses (a full socket buffer) is lost like a
//! datagram dropped on the way, and counted. If the kernel refuses GSO itself, the run goes out
//! one datagram at a time and GSO stays off for the process.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};

/// The most datagrams in one run (the kernel takes up to 64).
pub const MAX_SEGMENTS: usize = 32;
/// The most bytes in one run (a UDP payload's limit, less headers).
const MAX_BYTES: usize = 60_000;

/// Whether the kernel took a GSO send; off for good after it refused one.
static GSO: AtomicBool = AtomicBool::new(true);

/// System calls sent, datagrams they carried, and datagrams the kernel refused.
pub static SENDS: AtomicU64 = AtomicU64::new(0);
pub static DATAGRAMS: AtomicU64 = AtomicU64::new(0);
pub static REFUSED: AtomicU64 = AtomicU64::new(0);

/// A socket a run can go out on; the run holds it, so its descriptor cannot close under it.
pub trait Fd: Send + Sync + std::fmt::Debug {
    fn fd(&self) -> RawFd;
}

impl<T: AsRawFd + Send + Sync + std::fmt::Debug> Fd for T {
    fn fd(&self) -> RawFd {
        self.as_raw_fd()
    }
}

/// Datagrams waiting to go to one destination on one socket.
struct Run {
    socket: Arc<dyn Fd>,
    /// `None`: the socket is connected to its peer.
    destination: Option<SocketAddr>,
    segment: usize,
    count: usize,
    buf: Vec<u8>,
}

#[derive(Default)]
struct Thread {
    /// Tasks being polled inside a [`Scope`] on this thread (polls do not nest in practice, but
    /// a count cannot be fooled if they do).
    scopes: usize,
    run: Option<Run>,
    /// The buffer of the last run, kept for the next.
    spare: Vec<u8>,
    /// System calls this thread made for runs (what the tests count; `/metrics` has the process's).
    #[cfg(test)]
    calls: u64,
}

impl Thread {
    /// Sends the current run, if any, keeping its buffer for the next.
    fn flush_run(&mut self) {
        if let Some(r) = self.run.take() {
            let (buf, _calls) = flush(r);
            self.spare = buf;
            #[cfg(test)]
            {
                self.calls += _calls;
            }
        }
    }
}

thread_local! {
    static THREAD: RefCell<Thread> = RefCell::new(Thread::default());
}

/// Sends `datagram` to `destination` (`None`: the socket's connected peer) on `socket`, in
/// the current run when there is one it can join. `None` when there is no scope here or the
/// datagram cannot be in a run (the caller sends it itself, after any run: none is left
/// pending); otherwise the datagram's length.
pub fn send<S: Fd + 'static>(socket: &Arc<S>, destination: Option<SocketAddr>, datagram: &[u8]) -> Option<usize> {
    // (`try_with`: a thread being torn down has no runs; its sends leave at once.)
    THREAD
        .try_with(|t| {
            let mut t = t.borrow_mut();
            if t.scopes == 0 {
                return None;
            }
            if datagram.is_empty() || datagram.len() > MAX_BYTES {
                t.flush_run();
                return None;
            }
            let joins = t.run.as_ref().is_some_and(|r| {
                std::ptr::addr_eq(Arc::as_ptr(&r.socket), Arc::as_ptr(socket))
                && r.destination == destination
                && datagram.len() <= r.segment
                // The last segment may be shorter; after one, the run is closed.
                && r.buf.len() == r.count * r.segment
                && r.count < MAX_SEGMENTS
                && r.buf.len() + datagram.len() <= MAX_BYTES
            });
            if joins {
                let r = t.run.as_mut().expect("a run it joins");
                r.buf.extend_from_slice(datagram);
                r.count += 1;
            } else {
                t.flush_run();
                let mut buf = std::mem::take(&mut t.spare);
                buf.clear();
                buf.extend_from_slice(datagram);
                let socket: Arc<dyn Fd> = socket.clone();
                t.run = Some(Run { socket, destination, segment: datagram.len(), count: 1, buf });
            }
            Some(datagram.len())
        })
        .ok()
        .flatten()
}

/// Sends the current run, if any: called before a datagram that leaves another way (a transmit
/// a run cannot carry), so that it does not overtake the run.
pub fn flush_thread() {
    let _ = THREAD.try_with(|t| t.borrow_mut().flush_run());
}

/// Sends `run`; hands its buffer back for the next, with the system calls it took.
fn flush(run: Run) -> (Vec<u8>, u64) {
    let Run { socket, destination, segment, count, buf } = run;
    let fd = socket.fd();
    let (calls, lost) = if count > 1 && GSO.load(Relaxed) {
        match sendmsg(fd, destination, &buf, Some(segment)) {
            Err(e) if gso_refused(&e) => {
                tracing::warn!(error = %e, "the kernel refused a UDP GSO send; sending one datagram per system call");
                GSO.store(false, Relaxed);
                let (calls, lost) = one_by_one(fd, destination, &buf, segment);
                (calls + 1, lost)
            }
            Err(_) => (1, count as u64),
            Ok(_) => (1, 0),
        }
    } else {
        one_by_one(fd, destination, &buf, segment)
    };
    SENDS.fetch_add(calls, Relaxed);
    DATAGRAMS.fetch_add(count as u64 - lost, Relaxed);
    if lost > 0 {
        REFUSED.fetch_add(lost, Relaxed);
    }
    (buf, calls)
}

/// Sends each datagram of a run on its own: the system calls made and the datagrams lost.
fn one_by_one(fd: RawFd, destination: Option<SocketAddr>, buf: &[u8], segment: usize) -> (u64, u64) {
    let (mut calls, mut lost) = (0, 0);
    for datagram in buf.chunks(segment) {
        calls += 1;
        if sendmsg(fd, destination, datagram, None).is_err() {
            lost += 1;
        }
    }
    (calls, lost)
}

/// Errors that say the kernel or the route does not do GSO (not a full buffer or a lost peer).
fn gso_refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP))
}

/// One `sendmsg`, with `UDP_SEGMENT` when `segment` is given.
fn sendmsg(fd: RawFd, destination: Option<SocketAddr>, buf: &[u8], segment: Option<usize>) -> io::Result<usize> {
    let mut iov = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: zeroed is a valid sockaddr_storage / msghdr; every pointer set below outlives the call.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    if let Some(d) = destination {
        msg.msg_name = (&raw mut name).cast();
        msg.msg_namelen = sockaddr(d, &mut name);
    }
    // Room for one cmsg carrying a u16 (aligned as the kernel wants it).
    let mut control = [0u64; 4];
    if let Some(segment) = segment {
        // SAFETY: CMSG_SPACE of a u16 fits `control` (32 bytes); the header is written inside it.
        unsafe {
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = libc::UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment as u16);
        }
    }
    // SAFETY: `msg` points at live buffers of the lengths given.
    let n = unsafe { libc::sendmsg(fd, &raw const msg, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn sockaddr(a: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match a {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let s = unsafe { &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_port = v4.port().to_be();
            s.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) };
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above.
            let s = unsafe { &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = v6.port().to_be();
            s.sin6_flowinfo = v6.flowinfo();
            s.sin6_addr = libc::in6_addr { s6_addr: v6.ip().octets() };
            s.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// A task whose sends during a poll may join runs, sent when the poll ends.
pub struct Scope<F: ?Sized>(pub Pin<Box<F>>);

impl<F: Future + ?Sized> Future for Scope<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _ = THREAD.try_with(|t| t.borrow_mut().scopes += 1);
        // Sent even if the poll panics: the guard's drop ends the scope.
        struct End;
        impl Drop for End {
            fn drop(&mut self) {
                let _ = THREAD.try_with(|t| {
                    let mut t = t.borrow_mut();
                    t.scopes = t.scopes.saturating_sub(1);
                    if t.scopes == 0 {
                        t.flush_run();
                    }
                });
            }
        }
        let _end = End;
        self.0.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn pair() -> (Arc<UdpSocket>, UdpSocket) {
        let from = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = UdpSocket::bind("127.0.0.1:0").unwrap();
        to.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        (Arc::new(from), to)
    }

    fn received(to: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 2048];
        (0..n).map(|_| to.recv(&mut buf).map(|len| buf[..len].to_vec()).expect("a datagram")).collect()
    }

    /// Polls `f` once inside a scope.
    fn in_scope(f: impl FnOnce()) {
        let mut once = Some(f);
        let task = Scope(Box::pin(std::future::poll_fn(move |_| {
            (once.take().unwrap())();
            Poll::Ready(())
        })));
        futures_util::FutureExt::now_or_never(task).unwrap();
    }

    /// System calls this thread made for runs.
    fn calls() -> u64 {
        THREAD.with(|t| t.borrow().calls)
    }

    #[test]
    fn a_burst_to_one_peer_leaves_in_one_call_and_arrives_as_it_was_sent() {
        let (from, to) = pair();
        let socket = from.clone();
        let dest = Some(to.local_addr().unwrap());
        let before = calls();
        in_scope(|| {
            for i in 0..4u8 {
                assert_eq!(send(&socket, dest, &[i; 1200]), Some(1200));
            }
            send(&socket, dest, &[9; 300]);
            // Nothing left yet: the scope is still open.
            to.set_nonblocking(true).unwrap();
            assert!(to.recv(&mut [0u8; 16]).is_err(), "a run waits for the poll's end");
            to.set_nonblocking(false).unwrap();
        });
        let got = received(&to, 5);
        for (i, d) in got.iter().take(4).enumerate() {
            assert_eq!(d, &vec![i as u8; 1200]);
        }
        assert_eq!(got[4], vec![9; 300]);
        assert_eq!(calls() - before, 1, "five datagrams, one system call");
    }

    #[test]
    fn a_longer_datagram_another_peer_or_a_short_one_starts_a_new_run_in_order() {
        let (from, a) = pair();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let socket = from.clone();
        let (da, db) = (Some(a.local_addr().unwrap()), Some(b.local_addr().unwrap()));
        in_scope(|| {
            send(&socket, da, &[1; 500]);
            send(&socket, da, &[2; 800]); // longer: a new run
            send(&socket, da, &[3; 100]); // shorter: ends that run
            send(&socket, da, &[4; 100]); // after a short one: a new run
            send(&socket, db, &[5; 100]); // another peer
            send(&socket, da, &[6; 100]);
        });
        // [1], [2, 3], [4], [5], [6]
        assert_eq!(calls(), 5);
        let got: Vec<u8> = received(&a, 5).iter().map(|d| d[0]).collect();
        assert_eq!(got, [1, 2, 3, 4, 6]);
        assert_eq!(received(&b, 1)[0], vec![5; 100]);
    }

    #[test]
    fn a_datagram_sent_another_way_goes_after_the_run_before_it() {
        let (from, to) = pair();
        let socket = from.clone();
        let dest = to.local_addr().unwrap();
        in_scope(|| {
            send(&socket, Some(dest), &[1; 100]);
            send(&socket, Some(dest), &[2; 100]);
            // As the sockets do before a transmit a run cannot carry.
            flush_thread();
            from.send_to(&[3; 100], dest).unwrap();
            send(&socket, Some(dest), &[4; 100]);
        });
        let got: Vec<u8> = received(&to, 4).iter().map(|d| d[0]).collect();
        assert_eq!(got, [1, 2, 3, 4]);
    }

    #[test]
    fn a_datagram_too_long_for_a_run_leaves_after_the_run_before_it() {
        let (from, to) = pair();
        let socket = from.clone();
        let dest = to.local_addr().unwrap();
        let long = vec![2u8; MAX_BYTES + 1];
        in_scope(|| {
            send(&socket, Some(dest), &[1; 100]);
            assert_eq!(send(&socket, Some(dest), &long), None, "the caller sends it");
            from.send_to(&long, dest).unwrap();
        });
        let mut buf = vec![0u8; 70_000];
        let firsts: Vec<(u8, usize)> =
            (0..2).map(|_| to.recv(&mut buf).map(|len| (buf[0], len)).expect("a datagram")).collect();
        assert_eq!(firsts, [(1, 100), (2, MAX_BYTES + 1)]);
    }

    #[test]
    fn outside_a_scope_the_caller_sends() {
        let (from, to) = pair();
        let socket = from;
        assert_eq!(send(&socket, Some(to.local_addr().unwrap()), &[1; 10]), None);
    }

    #[test]
    fn a_connected_socket_sends_without_a_destination() {
        let (from, to) = pair();
        from.connect(to.local_addr().unwrap()).unwrap();
        let socket = from;
        in_scope(|| {
            for _ in 0..3 {
                send(&socket, None, &[7; 1000]);
            }
        });
        assert_eq!(received(&to, 3), vec![vec![7; 1000]; 3]);
    }
}
