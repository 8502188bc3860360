//! (Portunus) RTP written and sent from the writer's own task, without waking the driver.
//!
//! A track's packet used to go through the driver's queue: the writer queued it, the driver's
//! task woke, ran its loop (core writes, events, reads, timeout, `select!`) and sent. For an SFU
//! that is a task wake-up and a loop pass per packet per subscriber on top of the writer's own.
//! Here the writer takes the core's lock itself when it is free, writes the packet through the
//! core's pipeline and sends the datagrams the core queued on the connection's UDP socket, as the
//! driver's `poll_writes` would. What only the driver can send (TCP, mDNS, TURN, a socket that
//! would block) is handed over to it, with everything after it, and the driver woken; so is a
//! protocol deadline the write brought forward (a sender report's first tick), looked for at the
//! connection's first write and then at most every [`TIMEOUT_CHECK_EVERY`]: asking the core for
//! its next deadline walks every protocol's timers (ICE, DTLS, SCTP, the interceptors), 2.4 % of
//! the media node's samples at 100 subscribers when it was asked at every packet. While the
//! driver's queue holds RTP not yet written, writes queue behind it, so no packet overtakes
//! another.

use super::PeerConnectionRef;
use super::driver::PeerConnectionDriverEvent;
use crate::runtime::{AsyncUdpSocket, Transmit, poll_once};
use log::error;
use rtc::mdns::MDNS_PORT;
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportProtocol};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often a direct write asks the core whether it brought a deadline forward. A deadline a
/// write schedules (a sender report's interval, 1 s) is noticed this much late at most.
pub(crate) const TIMEOUT_CHECK_EVERY: Duration = Duration::from_millis(50);

/// What a direct write reads and the driver changes, behind one lock (one per write).
#[derive(Default)]
struct Shared {
    /// The UDP sockets the driver bound, by local address (replaced when it rebinds).
    sockets: Vec<(SocketAddr, Arc<dyn AsyncUdpSocket>)>,
    /// Datagrams written here that the driver sends, in order, before the core's next ones.
    handed_over: Vec<TaggedBytesMut>,
}

/// What a writer outside the driver shares with it.
pub(crate) struct Direct {
    shared: std::sync::Mutex<Shared>,
    /// RTP packets in the driver's queue, not yet written to the core.
    queued_rtp: AtomicUsize,
    /// The driver's timer deadline, in nanoseconds after `epoch` (`u64::MAX`: none armed).
    timer_at: AtomicU64,
    /// When a direct write last asked the core for its deadline, in nanoseconds after `epoch`
    /// (`u64::MAX`: never).
    checked_at: AtomicU64,
    epoch: Instant,
}

impl Direct {
    pub(crate) fn new(epoch: Instant) -> Self {
        Self {
            shared: std::sync::Mutex::new(Shared::default()),
            queued_rtp: AtomicUsize::new(0),
            timer_at: AtomicU64::new(u64::MAX),
            checked_at: AtomicU64::new(u64::MAX),
            epoch,
        }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The driver bound (or rebound) these sockets.
    pub(crate) fn set_sockets(&self, sockets: Vec<(SocketAddr, Arc<dyn AsyncUdpSocket>)>) {
        self.shared().sockets = sockets;
    }

    /// The driver armed its timer for `at`.
    pub(crate) fn set_timer(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        self.timer_at.store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Release);
    }

    fn before_timer(&self, at: Instant) -> bool {
        self.nanos(at) < self.timer_at.load(Ordering::Acquire)
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Whether a write at `now` should ask the core for its deadline: the first, and then one
    /// every [`TIMEOUT_CHECK_EVERY`].
    fn timeout_check_due(&self, now: Instant) -> bool {
        let now = self.nanos(now);
        let last = self.checked_at.load(Ordering::Acquire);
        let every = TIMEOUT_CHECK_EVERY.as_nanos() as u64;
        if last != u64::MAX && now.saturating_sub(last) < every {
            return false;
        }
        self.checked_at.store(now, Ordering::Release);
        true
    }

    /// An RTP packet is about to go into the driver's queue: direct writes wait behind it.
    pub(crate) fn rtp_queuing(&self) {
        self.queued_rtp.fetch_add(1, Ordering::AcqRel);
    }

    /// An RTP packet is out of the driver's queue and in the core (or was not queued after all).
    pub(crate) fn rtp_dequeued(&self) {
        self.queued_rtp.fetch_sub(1, Ordering::AcqRel);
    }

    /// Appends what was handed over to `writes`, ahead of the core's.
    pub(crate) fn take_handed_over(&self, writes: &mut Vec<TaggedBytesMut>) {
        writes.append(&mut self.shared().handed_over);
    }
}

impl PeerConnectionRef {
    /// Writes `packet` through sender `id` and sends what the core queued, saying whether the
    /// driver had to be woken all the same; unless the core is busy or RTP waits in the driver's
    /// queue: then the packet comes back, for the queue.
    pub(crate) fn write_rtp_direct(&self, id: RTCRtpSenderId, packet: rtp::Packet) -> Result<bool, rtp::Packet> {
        let direct = &self.direct;
        if direct.queued_rtp.load(Ordering::Acquire) != 0 {
            return Err(packet);
        }
        let Some(mut core) = self.core.try_lock() else {
            return Err(packet);
        };
        let now = self.runtime.now();
        match core.rtp_sender(id) {
            Some(mut sender) => {
                if let Err(err) = sender.write_rtp(now, packet) {
                    error!("Failed to send RTP: {err}");
                }
            }
            None => error!("Failed to send RTP due to unknown sender id {id:?}"),
        }
        let mut wake = false;
        {
            let mut shared = direct.shared();
            while let Some(msg) = core.poll_write() {
                // Behind anything handed over, so as not to overtake it.
                if shared.handed_over.is_empty() && send(&shared.sockets, &msg) {
                    continue;
                }
                shared.handed_over.push(msg);
                wake = true;
            }
        }
        if direct.timeout_check_due(now) {
            wake |= core.poll_timeout().is_some_and(|at| direct.before_timer(at));
        }
        drop(core);
        if wake && !self.write_pending.swap(true, Ordering::AcqRel) {
            let _ = self.driver_event_tx.try_send(PeerConnectionDriverEvent::WriteNotify);
        }
        Ok(wake)
    }
}

/// Sends `msg` now if it is a plain UDP datagram on one of `sockets` that the socket takes at
/// once; false if it must go through the driver.
fn send(sockets: &[(SocketAddr, Arc<dyn AsyncUdpSocket>)], msg: &TaggedBytesMut) -> bool {
    let tp = msg.transport;
    if tp.transport_protocol != TransportProtocol::UDP || tp.peer_addr.port() == MDNS_PORT {
        return false;
    }
    let Some((_, socket)) = sockets.iter().find(|(addr, _)| *addr == tp.local_addr) else {
        return false;
    };
    let transmit =
        Transmit { destination: tp.peer_addr, ecn: None, contents: &msg.message, segment_size: None, src_ip: None };
    match poll_once(|cx| socket.poll_send(cx, &transmit)) {
        Some(Ok(_)) => true,
        Some(Err(err)) => {
            // As the driver does: the datagram is lost, not retried.
            error!("Failed to write packet to {:?} from {:?}: {err}", tp.peer_addr, tp.local_addr);
            true
        }
        None => false,
    }
}
