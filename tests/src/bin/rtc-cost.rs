//! `portunus-rtc-cost`: what the sans-IO `rtc` core costs per forwarded packet without any
//! async layer (one thread, no runtime, time passed in), beside the same legs through
//! webrtc-rs's async layer over that core, the media node's path today.
//!
//! `--stack rtc` (default): K sending peer connections (the SFU's subscriber legs: one VP8 track
//! each, the default interceptors: NACK responder, RTCP reports, TWCC) are connected in memory to
//! K receiving ones (ICE, DTLS and SRTP for real; datagrams handed over by function call). Then P
//! packets go to every leg: `write_rtp` and `poll_write` (interceptors, SRTP) are timed with the
//! thread's CPU clock and the thread's allocations counted. With `--send`, each datagram also
//! leaves through a real UDP socket to a reader on loopback, one `sendto` per datagram or one
//! `sendmmsg` per burst (`--send mmsg`), so the kernel's share is measured the same way. After
//! the timed part every leg writes 20 more packets, untimed, which its receiver must decrypt.
//!
//! `--stack async`: K webrtc-rs PeerConnections (the test suite's publisher, its video track
//! written as the media node writes a subscriber's) to K receiving ones over real sockets; the
//! thread running the senders' runtime is timed, from the first write until the receivers have
//! counted every packet. A run whose packets do not arrive fails rather than reports.
//!
//!   taskset -c 0,1 portunus-rtc-cost [--stack rtc|async] [--subscribers K] [--packets P]
//!       [--send none|sendto|mmsg] [--json FILE]
//!
//! The measuring thread runs on the first CPU allowed, the readers on the second.

use bytes::{Bytes, BytesMut};
use portunus_tests::peer::{TestPublisher, TestSubscriber, VIDEO_SSRC};
use portunus_tests::sansio::{deliver, leg, Leg, CONNECT_TIMEOUT, PAYLOAD_TYPE};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::sansio::Protocol;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use webrtc::media_stream::track_local::TrackLocal;

/// Counts allocations per thread: the measuring thread's are the ones reported.
#[global_allocator]
static ALLOCATOR: portunus_tests::allocations::PerThread = portunus_tests::allocations::PerThread;

fn allocations() -> u64 {
    portunus_tests::allocations::on_this_thread()
}

/// A video packet's payload (browsers' packets are ~1,100–1,200 bytes).
const PAYLOAD_LEN: usize = 1100;
/// Packets per leg handed to the receivers after the timed part, to check they arrive.
const CHECKED: usize = 20;
/// Packets per leg the async layer's receivers may fall behind by.
const FLOW_WINDOW: usize = 8;

#[derive(Clone, Copy, PartialEq)]
/// How the sans-IO legs' datagrams leave.
enum Sending {
    None,
    To,
    Mmsg,
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid pointer to a timespec the call fills.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The CPUs this process may run on (`taskset`).
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; the call fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// Pins the calling thread to one CPU.
fn pin(cpu: usize) {
    // SAFETY: as above; 0 names the calling thread.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn packet(pt: u8, seq: u16, ssrc: u32, payload: &Bytes) -> rtc::rtp::Packet {
    rtc::rtp::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            payload_type: pt,
            sequence_number: seq,
            timestamp: u32::from(seq) * 3000,
            ssrc,
            ..Default::default()
        },
        payload: payload.clone(),
    }
}

/// Where the sans-IO legs' datagrams go, and the `sendmmsg` headers, kept from one burst to the
/// next so that sending allocates nothing.
struct Outlet {
    socket: UdpSocket,
    sink: SocketAddr,
    sink_addr: socket2::SockAddr,
    how: Sending,
    iov: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

/// Datagrams per `sendmmsg` call.
const MMSG_BATCH: usize = 64;

impl Outlet {
    fn new(sink: SocketAddr, how: Sending) -> Self {
        Self {
            socket: UdpSocket::bind("127.0.0.1:0").expect("bind a sending socket"),
            sink,
            sink_addr: socket2::SockAddr::from(sink),
            how,
            iov: Vec::with_capacity(MMSG_BATCH),
            headers: Vec::with_capacity(MMSG_BATCH),
        }
    }

    /// Sends what a burst produced: one `sendto` each, or one `sendmmsg` per 64.
    fn flush(&mut self, out: &mut Vec<BytesMut>) -> Result<(), String> {
        match self.how {
            Sending::None => {}
            Sending::To => {
                for d in out.iter() {
                    self.socket.send_to(d, self.sink).map_err(|e| e.to_string())?;
                }
            }
            Sending::Mmsg => {
                for chunk in out.chunks(MMSG_BATCH) {
                    self.iov.clear();
                    self.iov.extend(
                        chunk
                            .iter()
                            .map(|d| libc::iovec { iov_base: d.as_ptr() as *mut libc::c_void, iov_len: d.len() }),
                    );
                    self.headers.clear();
                    for v in self.iov.iter_mut() {
                        // SAFETY: zeroed is a valid mmsghdr; the pointers set here outlive the call.
                        let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                        h.msg_hdr.msg_name = self.sink_addr.as_ptr() as *mut libc::c_void;
                        h.msg_hdr.msg_namelen = self.sink_addr.len();
                        h.msg_hdr.msg_iov = v;
                        h.msg_hdr.msg_iovlen = 1;
                        self.headers.push(h);
                    }
                    let mut sent = 0;
                    while sent < self.headers.len() {
                        use std::os::fd::AsRawFd;
                        let rest = &mut self.headers[sent..];
                        // SAFETY: `rest` holds initialised headers pointing at live buffers.
                        let n =
                            unsafe { libc::sendmmsg(self.socket.as_raw_fd(), rest.as_mut_ptr(), rest.len() as u32, 0) };
                        if n < 0 {
                            return Err(std::io::Error::last_os_error().to_string());
                        }
                        sent += n as usize;
                    }
                }
            }
        }
        out.clear();
        Ok(())
    }
}

/// What a run measured on the measuring thread.
struct Measured {
    cpu: Duration,
    allocations: u64,
    checked: usize,
    received: usize,
}

/// Writes packet `seq` to every leg and hands each datagram it puts out to `emit` with the leg's
/// index.
fn write_all(legs: &mut [Leg], seq: u16, payload: &Bytes, mut emit: impl FnMut(usize, BytesMut)) {
    let now = Instant::now();
    for (i, l) in legs.iter_mut().enumerate() {
        let mut sender = l.sender.rtp_sender(l.track).expect("the track's sender");
        sender.write_rtp(now, packet(PAYLOAD_TYPE, seq, l.ssrc, payload)).expect("write_rtp");
        while let Some(m) = l.sender.poll_write() {
            emit(i, m.message);
        }
    }
}

/// The legs driven through `rtc` directly, one thread, datagrams sent (or not) as `how` says.
fn sans_io(k: usize, p: usize, how: Sending) -> Measured {
    let mut legs: Vec<Leg> = (0..k as u16).map(|i| leg(i, false).unwrap_or_else(|e| panic!("leg {i}: {e}"))).collect();
    for (i, l) in legs.iter_mut().enumerate() {
        l.connect().unwrap_or_else(|e| panic!("leg {i}: {e}"));
    }
    let sink_socket = UdpSocket::bind("127.0.0.1:0").expect("bind the sink");
    let sink = sink_socket.local_addr().unwrap();
    // A thread of its own reads the sink, as a subscriber's process would (loopback delivery
    // itself runs in the sender's system call, so it counts as the sender's CPU, as in the
    // fanout benchmark).
    let reader_cpu = allowed_cpus().get(1).copied();
    std::thread::spawn(move || {
        if let Some(c) = reader_cpu {
            pin(c);
        }
        let mut buf = [0u8; 2048];
        while sink_socket.recv(&mut buf).is_ok() {}
    });
    let mut outlet = Outlet::new(sink, how);
    let payload = Bytes::from(vec![0x5a; PAYLOAD_LEN]);
    let mut out: Vec<BytesMut> = Vec::with_capacity(k * 2);

    let (cpu0, allocs0) = (thread_cpu(), allocations());
    for seq in 0..p {
        write_all(&mut legs, seq as u16, &payload, |_, d| out.push(d));
        outlet.flush(&mut out).expect("send");
    }
    let (cpu, allocations) = (thread_cpu() - cpu0, allocations() - allocs0);

    // Untimed: CHECKED more packets per leg, which its receiver must decrypt.
    let mut kept: Vec<Vec<BytesMut>> = vec![Vec::new(); k];
    for seq in p..p + CHECKED {
        write_all(&mut legs, seq as u16, &payload, |i, d| kept[i].push(d));
    }
    let mut received = 0usize;
    for (l, kept) in legs.iter_mut().zip(kept) {
        for m in kept {
            deliver(&mut l.receiver, l.receiver_addr, l.sender_addr, m).expect("the receiver reads");
        }
        while let Some(TaggedRTCMessage { message, .. }) = l.receiver.poll_read() {
            if let RTCMessage::RtpPacket(_, pkt) = message {
                if pkt.header.ssrc == l.ssrc && pkt.payload.len() == PAYLOAD_LEN {
                    received += 1;
                }
            }
        }
    }
    Measured { cpu, allocations, checked: k * CHECKED, received }
}

/// The same legs through webrtc-rs's async layer, the path the media node takes today: a
/// `TrackLocalStaticRTP` per leg, each PeerConnection on a socket of its own, its driver tasks
/// on the measuring thread's runtime; the receiving peers on a runtime of their own on the
/// second CPU, counting every packet.
fn async_layer(k: usize, p: usize) -> Measured {
    let received = Arc::new(AtomicUsize::new(0));
    let (offers_tx, mut offers_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let (answers_tx, mut answers_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let counted = received.clone();
    let reader_cpu = allowed_cpus().get(1).copied();
    let receivers = std::thread::spawn(move || {
        if let Some(c) = reader_cpu {
            pin(c);
        }
        actix_web::rt::System::new().block_on(async move {
            let mut subscribers = Vec::new();
            while let Some(offer) = offers_rx.recv().await {
                let (mut sub, answer) = TestSubscriber::answer(&offer).await;
                let _ = answers_tx.send(answer);
                let mut packets = std::mem::replace(&mut sub.packets, tokio::sync::mpsc::unbounded_channel().1);
                let counted = counted.clone();
                actix_web::rt::spawn(async move {
                    while let Some((_, pkt)) = packets.recv().await {
                        if pkt.payload.len() == PAYLOAD_LEN {
                            counted.fetch_add(1, Relaxed);
                        }
                    }
                });
                subscribers.push(sub);
            }
            let _ = done_rx.await;
            drop(subscribers);
        });
    });
    let measured = actix_web::rt::System::new().block_on(async move {
        let mut legs = Vec::new();
        for _ in 0..k {
            let (mut publisher, offer) = TestPublisher::offer().await;
            offers_tx.send(offer).expect("the receivers' thread runs");
            let answer = answers_rx.recv().await.expect("an answer");
            let pt = answer
                .lines()
                .find_map(|l| l.trim().strip_prefix("m=video")?.split_whitespace().nth(2)?.parse().ok())
                .unwrap_or(PAYLOAD_TYPE);
            publisher.accept(&answer).await;
            legs.push((publisher, pt));
        }
        drop(offers_tx);
        for (i, (publisher, _)) in legs.iter_mut().enumerate() {
            assert!(publisher.connected(CONNECT_TIMEOUT).await, "leg {i} did not connect");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let payload = Bytes::from(vec![0x5a; PAYLOAD_LEN]);
        let (cpu0, allocs0) = (thread_cpu(), allocations());
        for seq in 0..p as u16 {
            for (publisher, pt) in &legs {
                let _ = publisher.tracks().1.write_rtp(packet(*pt, seq, VIDEO_SSRC, &payload)).await;
            }
            // The receivers, on the other CPU, may fall behind by a window at most (waiting
            // costs this thread no CPU); a lost packet does not hold the run up for long.
            let sent = (usize::from(seq) + 1) * k;
            let wait_until = Instant::now() + Duration::from_millis(50);
            while received.load(Relaxed) + FLOW_WINDOW * k < sent && Instant::now() < wait_until {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while received.load(Relaxed) < k * p && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let measured = Measured {
            cpu: thread_cpu() - cpu0,
            allocations: allocations() - allocs0,
            checked: k * p,
            received: received.load(Relaxed),
        };
        for (publisher, _) in &legs {
            publisher.close().await;
        }
        measured
    });
    let _ = done_tx.send(());
    let _ = receivers.join();
    measured
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut k, mut p, mut how, mut json, mut stack) = (25usize, 2000usize, Sending::None, None, "rtc".to_owned());
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--subscribers" => k = val().parse().expect("--subscribers K"),
            "--packets" => p = val().parse().expect("--packets P"),
            "--send" => {
                how = match val().as_str() {
                    "none" => Sending::None,
                    "sendto" => Sending::To,
                    "mmsg" => Sending::Mmsg,
                    other => panic!("--send none|sendto|mmsg, not {other}"),
                }
            }
            "--stack" => stack = val(),
            "--json" => json = Some(val()),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!((1..=1000).contains(&k) && p >= CHECKED, "1..=1000 subscribers and at least {CHECKED} packets");
    if let Some(&first) = allowed_cpus().first() {
        pin(first);
    }
    let m = match stack.as_str() {
        "rtc" => sans_io(k, p, how),
        "async" => async_layer(k, p),
        other => panic!("--stack rtc|async, not {other}"),
    };
    let forwarded = (k * p) as f64;
    let us = m.cpu.as_secs_f64() * 1e6 / forwarded;
    let per_packet_allocs = m.allocations as f64 / forwarded;
    let mode = match (stack.as_str(), how) {
        ("async", _) => "sendto",
        (_, Sending::None) => "none",
        (_, Sending::To) => "sendto",
        (_, Sending::Mmsg) => "mmsg",
    };
    let report = serde_json::json!({
        "stack": stack,
        "subscribers": k,
        "packets": p,
        "send": mode,
        "cpu_us_per_forwarded_packet": (us * 1000.0).round() / 1000.0,
        "allocations_per_forwarded_packet": (per_packet_allocs * 100.0).round() / 100.0,
        "forwarded_packets_per_cpu_second": (forwarded / m.cpu.as_secs_f64()).round(),
        "checked": m.checked,
        "received": m.received,
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    if let Some(f) = json {
        std::fs::write(&f, report.to_string()).unwrap_or_else(|e| panic!("write {f}: {e}"));
    }
    // Through `rtc` every checked packet is decrypted; through the async layer the datagrams
    // cross real sockets, where loopback may drop a few under a burst.
    let needed = if stack == "rtc" { m.checked } else { m.checked * 99 / 100 };
    assert!(m.received >= needed, "{} of {} checked packets reached their receivers", m.received, m.checked);
}
