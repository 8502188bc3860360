//! The threads a media node runs its rooms on (`media_workers`). A room's actor, its peers and
//! its forwarding tasks are all spawned from the room, so they run on the worker the room was
//! started on, for the room's whole life: a room's forwarding never crosses a thread (on one
//! UDP port, `media_port`, only a peer's first datagrams come from the port's demultiplexer on
//! the node's own thread; the rest reach a socket connected to the peer, on the room's
//! worker), and rooms on different workers run in parallel, one worker per core by default. A room goes to the
//! least loaded worker when it opens, load counted as the node's is for placement in the
//! cluster (rooms plus participants); rooms do not move.
//!
//! With one worker the rooms run on the node's own thread (its agent's), as a single-core node
//! gains nothing from a second thread and would pay a thread hop on every room request. Each
//! worker is an actix arbiter: a thread with a single-threaded runtime of its own.

use actix::{Arbiter, ArbiterHandle};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;

/// A worker's index, as `/metrics` labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerId(pub usize);

impl std::fmt::Display for WorkerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What `/metrics` reads of the workers: each one's runtime (live tasks, busy time) and rooms,
/// and the node's own runtime.
#[derive(Debug)]
pub struct WorkerGauges {
    /// Where the node's agent runs (and its rooms, with one worker).
    pub own: Handle,
    pub runtimes: Vec<Handle>,
    pub rooms: Box<[AtomicI64]>,
}

impl WorkerGauges {
    /// Every runtime the node runs on, each once: its own, then its worker threads' (none
    /// apart when the rooms share its own).
    pub fn all(&self) -> Vec<Handle> {
        let apart = self.runtimes.iter().filter(|w| w.id() != self.own.id());
        std::iter::once(&self.own).chain(apart).cloned().collect()
    }
}

/// What a room holds, as its node and its worker count it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Occupied {
    /// Publisher-type participants, as Janus counts them (`list`), which placement weighs.
    pub participants: u64,
    /// Every handle in the room, its publishers' and its subscribers'.
    pub handles: u64,
}

/// The node's workers and what each runs. Owned by the node's agent.
pub struct Workers {
    arbiters: Vec<Arbiter>,
    handles: Vec<ArbiterHandle>,
    /// Each worker's rooms plus their participants.
    load: Vec<u64>,
    /// The handles each worker's rooms serve.
    served: Vec<u64>,
    gauges: Arc<WorkerGauges>,
}

/// How long a new worker may take to report its runtime.
const STARTUP: Duration = Duration::from_secs(10);

impl Workers {
    /// Starts `count` workers (0: one per CPU this process may run on). Must run inside an
    /// actix system.
    pub fn start(count: usize) -> Result<Self, String> {
        let count = match count {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let own = Handle::try_current().map_err(|e| format!("media workers: {e}"))?;
        let (arbiters, handles, runtimes) = if count == 1 {
            (Vec::new(), vec![Arbiter::current()], vec![own.clone()])
        } else {
            let arbiters: Vec<Arbiter> = (0..count).map(|_| Arbiter::new()).collect();
            let mut runtimes = Vec::with_capacity(count);
            for (i, a) in arbiters.iter().enumerate() {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                a.spawn(async move {
                    let _ = tx.send(Handle::current());
                });
                runtimes.push(rx.recv_timeout(STARTUP).map_err(|e| format!("media worker {i} did not start: {e}"))?);
            }
            let handles = arbiters.iter().map(Arbiter::handle).collect();
            (arbiters, handles, runtimes)
        };
        let rooms = (0..count).map(|_| AtomicI64::new(0)).collect();
        let gauges = Arc::new(WorkerGauges { own, runtimes, rooms });
        Ok(Self { arbiters, handles, load: vec![0; count], served: vec![0; count], gauges })
    }

    /// Where the next room goes: the least loaded worker (the first of them on a tie).
    pub fn place(&mut self) -> (WorkerId, &ArbiterHandle) {
        let w = least(&self.load);
        self.load[w] += 1;
        self.gauges.rooms[w].fetch_add(1, Relaxed);
        (WorkerId(w), &self.handles[w])
    }

    /// A room on `w` went from holding `before` to `after`.
    pub fn occupied(&mut self, w: WorkerId, before: Occupied, after: Occupied) {
        if let (Some(l), Some(s)) = (self.load.get_mut(w.0), self.served.get_mut(w.0)) {
            *l = l.saturating_sub(before.participants) + after.participants;
            *s = s.saturating_sub(before.handles) + after.handles;
        }
    }

    /// A room placed on `w` has stopped, with what it held still counted in it.
    pub fn release(&mut self, w: WorkerId, held: Occupied) {
        if let (Some(l), Some(s)) = (self.load.get_mut(w.0), self.served.get_mut(w.0)) {
            *l = l.saturating_sub(1 + held.participants);
            *s = s.saturating_sub(held.handles);
            self.gauges.rooms[w.0].fetch_sub(1, Relaxed);
        }
    }

    /// The handles each worker's rooms serve, by worker: what the Admin API's `loops_info`
    /// lists, as Janus lists the handles of each static event loop.
    pub fn served(&self) -> Vec<(WorkerId, u64)> {
        self.served.iter().enumerate().map(|(w, n)| (WorkerId(w), *n)).collect()
    }

    /// Every runtime the node runs on, each once (a test counts their live tasks).
    pub fn runtimes(&self) -> Vec<Handle> {
        self.gauges.all()
    }

    pub fn gauges(&self) -> Arc<WorkerGauges> {
        self.gauges.clone()
    }
}

impl Drop for Workers {
    /// The node's rooms end with it: its workers stop (their rooms, peers and tasks dropped).
    fn drop(&mut self) {
        for a in &self.arbiters {
            a.stop();
        }
    }
}

/// The index of the smallest load, the first of equals.
fn least(load: &[u64]) -> usize {
    load.iter().enumerate().min_by_key(|(i, n)| (**n, *i)).map_or(0, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_goes_to_the_least_loaded_worker() {
        assert_eq!(least(&[0, 0, 0]), 0);
        assert_eq!(least(&[1, 0, 0]), 1);
        assert_eq!(least(&[1, 1, 0]), 2);
        assert_eq!(least(&[2, 1, 1]), 1);
        assert_eq!(least(&[]), 0);
    }

    #[actix::test]
    async fn rooms_spread_over_the_workers_by_their_rooms_and_participants() {
        let mut w = Workers::start(3).unwrap();
        let placed: Vec<WorkerId> = (0..4).map(|_| w.place().0).collect();
        assert_eq!(placed, [WorkerId(0), WorkerId(1), WorkerId(2), WorkerId(0)]);
        w.release(WorkerId(1), Occupied::default());
        assert_eq!(w.place().0, WorkerId(1));
        let rooms: Vec<i64> = w.gauges().rooms.iter().map(|r| r.load(Relaxed)).collect();
        assert_eq!(rooms, [2, 1, 1]);
        // A crowded room weighs more than an empty one: the next rooms go elsewhere until the
        // others carry as much.
        let (five, four) = (Occupied { participants: 5, handles: 9 }, Occupied { participants: 4, handles: 7 });
        w.occupied(WorkerId(1), Occupied::default(), five);
        w.occupied(WorkerId(1), five, four);
        assert_eq!(w.load, [2, 5, 1]);
        assert_eq!(w.served(), [(WorkerId(0), 0), (WorkerId(1), 7), (WorkerId(2), 0)]);
        let placed: Vec<WorkerId> = (0..3).map(|_| w.place().0).collect();
        assert_eq!(placed, [WorkerId(2), WorkerId(0), WorkerId(2)]);
        // A room that stops takes its participants with it.
        w.release(WorkerId(1), four);
        assert_eq!(w.load, [3, 0, 3]);
        assert_eq!(w.served, [0, 0, 0]);
        // Each worker is a thread of its own.
        let mut threads = std::collections::HashSet::new();
        for h in w.gauges().runtimes.clone() {
            threads.insert(h.spawn(async { std::thread::current().id() }).await.unwrap());
        }
        assert_eq!(threads.len(), 3);
        assert!(!threads.contains(&std::thread::current().id()));
        // The node's runtimes: its own and the three workers'.
        assert_eq!(w.runtimes().len(), 4);
    }

    #[actix::test]
    async fn with_one_worker_the_node_runs_on_its_own_runtime_alone() {
        let w = Workers::start(1).unwrap();
        let ids: Vec<_> = w.runtimes().iter().map(Handle::id).collect();
        assert_eq!(ids, [Handle::current().id()], "counted once");
    }
}
