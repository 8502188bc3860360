//! The media plane's Prometheus series (`portunus_*`), one set per process: a media node is one
//! process, and a standalone Portunus runs one node in-process, whose series its gateway's
//! `/metrics` includes.
//!
//! Every series is a plain atomic in a `static`, so the forwarding path counts without a lock,
//! an allocation or a message; the forwarder batches its increments (see
//! [`ForwardCount`]). No series has a room or participant label: rooms come and go without bound,
//! and a per-room label would grow the scrape without limit. Per-room detail is what the Admin
//! API's handle info is for.

use crate::workers::WorkerGauges;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Why a packet a subscriber stream received was not sent on.
#[derive(Clone, Copy, Debug)]
pub enum DropReason {
    /// The subscriber's queue overflowed: it fell behind its publisher.
    SlowSubscriber,
    /// Waiting for a keyframe (a new subscriber, a switch, after a gap).
    KeyframeWait,
    /// A datagram on the single UDP port whose PeerConnection had a full queue.
    PortQueue,
}

/// Which way a PeerConnection carries media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Publisher,
    Subscriber,
}

/// A PeerConnection's state, as reported by the WebRTC stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcState {
    New,
    Connecting,
    Connected,
    Disconnected,
    Failed,
    Closed,
}

impl PcState {
    /// The state stored by [`PcState`] `as u8`; None for anything else (a gone PeerConnection).
    pub fn from_u8(v: u8) -> Option<Self> {
        PC_STATES.get(usize::from(v)).map(|(s, _)| *s)
    }
}

const PC_STATES: [(PcState, &str); 6] = [
    (PcState::New, "new"),
    (PcState::Connecting, "connecting"),
    (PcState::Connected, "connected"),
    (PcState::Disconnected, "disconnected"),
    (PcState::Failed, "failed"),
    (PcState::Closed, "closed"),
];
const ROLES: [(Role, &str); 2] = [(Role::Publisher, "publisher"), (Role::Subscriber, "subscriber")];

pub struct NodeMetrics {
    rooms: AtomicI64,
    participants: AtomicI64,
    draining: AtomicI64,
    /// PeerConnections alive, by role then state.
    peer_connections: [[AtomicI64; 6]; 2],
    pc_failures: AtomicU64,
    forwarded_packets: AtomicU64,
    forwarded_bytes: AtomicU64,
    /// Forwarded packets sent from their forwarding task, of those the ones that woke the
    /// PeerConnection's driver all the same, and those written through the driver.
    written_direct: AtomicU64,
    written_direct_waking: AtomicU64,
    written_through_driver: AtomicU64,
    dropped_slow: AtomicU64,
    dropped_keyframe: AtomicU64,
    dropped_port: AtomicU64,
    /// Datagrams the single UDP port delivered through its demultiplexer, and straight to a
    /// PeerConnection's socket connected to its peer.
    pub(crate) port_demultiplexed: AtomicU64,
    pub(crate) port_direct: AtomicU64,
    nacks_received: AtomicU64,
    nack_requested_packets: AtomicU64,
    nacks_sent: AtomicU64,
    keyframe_requests_received: AtomicU64,
    plis_sent: AtomicU64,
    incoming_lost: AtomicU64,
    rembs_sent: AtomicU64,
    leases_renewed: AtomicU64,
    lease_failures: AtomicU64,
    leases_lost: AtomicU64,
    heartbeats: AtomicU64,
    heartbeat_failures: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const Z: AtomicI64 = AtomicI64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

/// The runtimes the media node runs on (`watch_runtimes`): its own, and its workers'.
static RUNTIMES: std::sync::OnceLock<std::sync::Arc<WorkerGauges>> = std::sync::OnceLock::new();

/// The process's media metrics.
pub static METRICS: NodeMetrics = NodeMetrics {
    rooms: Z,
    participants: Z,
    draining: Z,
    peer_connections: [[Z, Z, Z, Z, Z, Z], [Z, Z, Z, Z, Z, Z]],
    pc_failures: ZERO,
    forwarded_packets: ZERO,
    forwarded_bytes: ZERO,
    written_direct: ZERO,
    written_direct_waking: ZERO,
    written_through_driver: ZERO,
    dropped_slow: ZERO,
    dropped_keyframe: ZERO,
    dropped_port: ZERO,
    port_demultiplexed: ZERO,
    port_direct: ZERO,
    nacks_received: ZERO,
    nack_requested_packets: ZERO,
    nacks_sent: ZERO,
    keyframe_requests_received: ZERO,
    plis_sent: ZERO,
    incoming_lost: ZERO,
    rembs_sent: ZERO,
    leases_renewed: ZERO,
    lease_failures: ZERO,
    leases_lost: ZERO,
    heartbeats: ZERO,
    heartbeat_failures: ZERO,
};

fn role_index(r: Role) -> usize {
    r as usize
}

fn state_index(s: PcState) -> usize {
    s as usize
}

impl NodeMetrics {
    pub fn set_rooms(&self, rooms: usize, participants: u64) {
        self.rooms.store(rooms as i64, Relaxed);
        self.participants.store(participants as i64, Relaxed);
    }

    pub fn set_draining(&self, draining: bool) {
        self.draining.store(i64::from(draining), Relaxed);
    }

    /// A PeerConnection moved from `from` (None: it is new) to `to` (None: it is gone).
    pub fn peer_connection(&self, role: Role, from: Option<PcState>, to: Option<PcState>) {
        let row = &self.peer_connections[role_index(role)];
        if let Some(f) = from {
            row[state_index(f)].fetch_sub(1, Relaxed);
        }
        if let Some(t) = to {
            row[state_index(t)].fetch_add(1, Relaxed);
            if t == PcState::Failed {
                self.pc_failures.fetch_add(1, Relaxed);
            }
        }
    }

    /// Datagrams received on the single UDP port, `direct`ly or through the demultiplexer.
    pub fn port_datagrams(&self, direct: bool, n: u64) {
        if direct { &self.port_direct } else { &self.port_demultiplexed }.fetch_add(n, Relaxed);
    }

    pub fn dropped(&self, why: DropReason, n: u64) {
        match why {
            DropReason::SlowSubscriber => &self.dropped_slow,
            DropReason::KeyframeWait => &self.dropped_keyframe,
            DropReason::PortQueue => &self.dropped_port,
        }
        .fetch_add(n, Relaxed);
    }

    /// A subscriber's NACK asking for `packets` retransmissions.
    pub fn nack_received(&self, packets: u64) {
        self.nacks_received.fetch_add(1, Relaxed);
        self.nack_requested_packets.fetch_add(packets, Relaxed);
    }

    pub fn nack_sent(&self) {
        self.nacks_sent.fetch_add(1, Relaxed);
    }

    pub fn keyframe_request_received(&self) {
        self.keyframe_requests_received.fetch_add(1, Relaxed);
    }

    pub fn plis_sent(&self, n: u64) {
        self.plis_sent.fetch_add(n, Relaxed);
    }

    pub fn incoming_lost(&self, n: u64) {
        self.incoming_lost.fetch_add(n, Relaxed);
    }

    pub fn remb_sent(&self) {
        self.rembs_sent.fetch_add(1, Relaxed);
    }

    /// A room lease renewal: renewed, failed (the store did not answer), or lost (another node
    /// holds it now).
    pub fn lease(&self, renewed: Option<bool>) {
        match renewed {
            Some(true) => &self.leases_renewed,
            Some(false) => &self.leases_lost,
            None => &self.lease_failures,
        }
        .fetch_add(1, Relaxed);
    }

    pub fn heartbeat(&self, ok: bool) {
        if ok { &self.heartbeats } else { &self.heartbeat_failures }.fetch_add(1, Relaxed);
    }

    /// Remembers the runtimes the node runs on, whose live tasks, busy time and rooms
    /// `/metrics` reports (the first node of a process: one in production).
    pub fn watch_runtimes(&self, workers: std::sync::Arc<WorkerGauges>) {
        let _ = RUNTIMES.set(workers);
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut one = |name: &str, kind: &str, help: &str, samples: &[(&str, i128)]| {
            let _ = writeln!(out, "# HELP portunus_{name} {help}\n# TYPE portunus_{name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "portunus_{name}{labels} {v}");
            }
        };
        let g = |a: &AtomicI64| i128::from(a.load(Relaxed));
        let c = |a: &AtomicU64| i128::from(a.load(Relaxed));
        one("node_rooms", "gauge", "Rooms served by this media node", &[("", g(&self.rooms))]);
        one(
            "node_participants",
            "gauge",
            "Participants in the rooms of this media node",
            &[("", g(&self.participants))],
        );
        one("node_draining", "gauge", "1 while this media node drains", &[("", g(&self.draining))]);
        let tasks = RUNTIMES.get().map_or(0, |w| w.all().iter().map(|h| h.metrics().num_alive_tasks() as i128).sum());
        one("node_tasks", "gauge", "Tasks alive on the media node's runtimes (a leak shows here)", &[("", tasks)]);
        if let Some(workers) = RUNTIMES.get() {
            let labels: Vec<String> = (0..workers.runtimes.len()).map(|i| format!("{{worker=\"{i}\"}}")).collect();
            let each = |f: &dyn Fn(usize) -> i128| -> Vec<(&str, i128)> {
                labels.iter().enumerate().map(|(i, l)| (l.as_str(), f(i))).collect()
            };
            let rooms = each(&|i| g(&workers.rooms[i]));
            one("node_worker_rooms", "gauge", "Rooms running on each of the media node's workers", &rooms);
            let tasks = each(&|i| workers.runtimes[i].metrics().num_alive_tasks() as i128);
            one("node_worker_tasks", "gauge", "Tasks alive on each worker's runtime", &tasks);
            // Microseconds: the exposition here is integers.
            let busy = each(&|i| workers.runtimes[i].metrics().worker_total_busy_duration(0).as_micros() as i128);
            one(
                "node_worker_busy_microseconds_total",
                "counter",
                "Time each worker's thread spent running tasks (its share of a core: the rate)",
                &busy,
            );
        }
        let by_role = |r: Role| self.peer_connections[role_index(r)].iter().map(g).sum::<i128>();
        one("publishers", "gauge", "Publisher PeerConnections on this media node", &[("", by_role(Role::Publisher))]);
        one(
            "subscribers",
            "gauge",
            "Subscriber PeerConnections on this media node",
            &[("", by_role(Role::Subscriber))],
        );
        let mut pcs = Vec::new();
        let labels: Vec<String> = ROLES
            .iter()
            .flat_map(|(_, r)| PC_STATES.iter().map(move |(_, s)| format!("{{role=\"{r}\",state=\"{s}\"}}")))
            .collect();
        for (i, (role, _)) in ROLES.iter().enumerate() {
            for (j, (state, _)) in PC_STATES.iter().enumerate() {
                pcs.push((
                    labels[i * PC_STATES.len() + j].as_str(),
                    g(&self.peer_connections[role_index(*role)][state_index(*state)]),
                ));
            }
        }
        one("peer_connections", "gauge", "PeerConnections by role and state", &pcs);
        one(
            "peer_connection_failures_total",
            "counter",
            "PeerConnections whose ICE or DTLS failed",
            &[("", c(&self.pc_failures))],
        );
        one(
            "forwarded_packets_total",
            "counter",
            "RTP packets sent to subscribers",
            &[("", c(&self.forwarded_packets))],
        );
        one(
            "forwarded_bytes_total",
            "counter",
            "RTP payload bytes sent to subscribers",
            &[("", c(&self.forwarded_bytes))],
        );
        one(
            "dropped_packets_total",
            "counter",
            "Packets dropped, by reason: a subscriber stream did not send them on, or the single UDP port had no room for them",
            &[
                ("{reason=\"slow_subscriber\"}", c(&self.dropped_slow)),
                ("{reason=\"keyframe_wait\"}", c(&self.dropped_keyframe)),
                ("{reason=\"port_queue\"}", c(&self.dropped_port)),
            ],
        );
        let (captures, skipped) = crate::media::capture::tally();
        one(
            "captures",
            "gauge",
            "Packet captures (Admin API start_pcap) open on this media node",
            &[("", captures as i128)],
        );
        one(
            "capture_skipped_packets_total",
            "counter",
            "Packets left out of packet captures because their writer fell behind",
            &[("", i128::from(skipped))],
        );
        one(
            "single_port_datagrams_total",
            "counter",
            "Datagrams received on the single UDP port: through its demultiplexer, or straight to a socket connected to the peer",
            &[
                ("{path=\"demultiplexed\"}", c(&self.port_demultiplexed)),
                ("{path=\"direct\"}", c(&self.port_direct)),
            ],
        );
        use crate::media::gso;
        one(
            "gso_datagrams_total",
            "counter",
            "Datagrams subscribers' PeerConnections sent in runs to one peer (UDP GSO)",
            &[("", c(&gso::DATAGRAMS))],
        );
        one("gso_send_calls_total", "counter", "System calls those runs took", &[("", c(&gso::SENDS))]);
        one(
            "gso_refused_datagrams_total",
            "counter",
            "Datagrams of runs the kernel refused (a full socket buffer)",
            &[("", c(&gso::REFUSED))],
        );
        one(
            "rtp_writes_total",
            "counter",
            "Forwarded RTP packets written to subscribers' PeerConnections: sent from the forwarding task, or through the PeerConnection's driver",
            &[("{path=\"direct\"}", c(&self.written_direct)), ("{path=\"driver\"}", c(&self.written_through_driver))],
        );
        one(
            "rtp_direct_writes_waking_driver_total",
            "counter",
            "Of the packets sent from the forwarding task, those that woke the driver all the same (a datagram only it sends, or an earlier protocol deadline)",
            &[("", c(&self.written_direct_waking))],
        );
        one("nacks_received_total", "counter", "NACKs received from subscribers", &[("", c(&self.nacks_received))]);
        one(
            "nack_requested_packets_total",
            "counter",
            "Retransmissions subscribers asked for in NACKs",
            &[("", c(&self.nack_requested_packets))],
        );
        one("nacks_sent_total", "counter", "NACKs sent to publishers", &[("", c(&self.nacks_sent))]);
        one(
            "keyframe_requests_received_total",
            "counter",
            "PLI and FIR received from subscribers",
            &[("", c(&self.keyframe_requests_received))],
        );
        one("plis_sent_total", "counter", "PLIs sent to publishers", &[("", c(&self.plis_sent))]);
        one(
            "incoming_lost_packets_total",
            "counter",
            "Packets publishers sent that never arrived (sequence gaps less late arrivals)",
            &[("", c(&self.incoming_lost))],
        );
        one("rembs_sent_total", "counter", "REMB bitrate caps sent to publishers", &[("", c(&self.rembs_sent))]);
        one(
            "room_lease_renewals_total",
            "counter",
            "Room lease renewals by result (ok, failed: store unreachable, lost: owned elsewhere)",
            &[
                ("{result=\"ok\"}", c(&self.leases_renewed)),
                ("{result=\"failed\"}", c(&self.lease_failures)),
                ("{result=\"lost\"}", c(&self.leases_lost)),
            ],
        );
        one(
            "node_heartbeats_total",
            "counter",
            "Registrations of this node in the cluster registry by result",
            &[("{result=\"ok\"}", c(&self.heartbeats)), ("{result=\"failed\"}", c(&self.heartbeat_failures))],
        );
        out
    }
}

/// How a forwarded packet was written to its subscriber's PeerConnection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritePath {
    /// Sent from the forwarding task; `woke_driver`: the driver was woken all the same.
    Direct { woke_driver: bool },
    /// Through the PeerConnection's driver.
    Driver,
}

/// A forwarder's counts, added to the shared series every [`ForwardCount::BATCH`] packets and
/// when dropped, so that a packet costs a local add rather than contended atomics.
#[derive(Default)]
pub struct ForwardCount {
    packets: u64,
    bytes: u64,
    direct: u64,
    direct_waking: u64,
    driver: u64,
}

impl ForwardCount {
    const BATCH: u64 = 16;

    pub fn packet(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
        if self.packets >= Self::BATCH {
            self.flush();
        }
    }

    /// A packet written to a subscriber's PeerConnection (counted with [`ForwardCount::packet`]).
    pub fn written(&mut self, path: WritePath) {
        match path {
            WritePath::Direct { woke_driver } => {
                self.direct += 1;
                self.direct_waking += u64::from(woke_driver);
            }
            WritePath::Driver => self.driver += 1,
        }
    }

    fn flush(&mut self) {
        let m = &METRICS;
        for (series, n) in [
            (&m.forwarded_packets, &mut self.packets),
            (&m.forwarded_bytes, &mut self.bytes),
            (&m.written_direct, &mut self.direct),
            (&m.written_direct_waking, &mut self.direct_waking),
            (&m.written_through_driver, &mut self.driver),
        ] {
            if *n > 0 {
                series.fetch_add(std::mem::take(n), Relaxed);
            }
        }
    }
}

impl Drop for ForwardCount {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_rendered_with_help_and_type() {
        let text = METRICS.render();
        for name in
            ["node_rooms", "peer_connections", "forwarded_packets_total", "room_lease_renewals_total", "captures"]
        {
            assert!(text.contains(&format!("# TYPE portunus_{name} ")), "{name} missing:\n{text}");
        }
        assert!(text.contains("portunus_peer_connections{role=\"subscriber\",state=\"connected\"} "));
    }

    #[test]
    fn peer_connection_states_move_between_rows() {
        let before = METRICS.render();
        let count = |t: &str| {
            t.lines()
                .find(|l| l.starts_with("portunus_peer_connections{role=\"publisher\",state=\"connecting\"}"))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap()
        };
        METRICS.peer_connection(Role::Publisher, None, Some(PcState::Connecting));
        assert_eq!(count(&METRICS.render()), count(&before) + 1);
        METRICS.peer_connection(Role::Publisher, Some(PcState::Connecting), None);
        assert_eq!(count(&METRICS.render()), count(&before));
    }
}
