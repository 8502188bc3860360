//! The media knobs in effect on this node ([`shared::tuning`]) where the media reads them:
//! atomics, read when a knob applies (a publisher track's tick, a receiver report, a packet
//! sent), so that a knob turned takes effect on the streams already flowing, as in Janus. The
//! node agent is the one writer: a `Tune` command, and the stored knobs at each heartbeat.

use shared::tuning::{Knob, Tuning};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub struct LiveTuning {
    /// What the node's configuration says, under the knobs turned.
    configured: Tuning,
    no_media_timer: AtomicU32,
    slowlink_threshold: AtomicU32,
    min_nack_queue: AtomicU32,
    nack_optimizations: AtomicBool,
}

impl LiveTuning {
    pub fn new(configured: Tuning) -> Arc<Self> {
        Arc::new(Self::with(configured))
    }

    fn with(configured: Tuning) -> Self {
        let t = Self {
            configured,
            no_media_timer: AtomicU32::new(0),
            slowlink_threshold: AtomicU32::new(0),
            min_nack_queue: AtomicU32::new(0),
            nack_optimizations: AtomicBool::new(false),
        };
        t.set(configured);
        t
    }

    pub fn get(&self) -> Tuning {
        Tuning {
            no_media_timer: self.no_media_timer.load(Relaxed),
            slowlink_threshold: self.slowlink_threshold.load(Relaxed),
            min_nack_queue: self.min_nack_queue.load(Relaxed),
            nack_optimizations: self.nack_optimizations.load(Relaxed),
        }
    }

    fn set(&self, t: Tuning) {
        self.no_media_timer.store(t.no_media_timer, Relaxed);
        self.slowlink_threshold.store(t.slowlink_threshold, Relaxed);
        self.min_nack_queue.store(t.min_nack_queue, Relaxed);
        self.nack_optimizations.store(t.nack_optimizations, Relaxed);
    }

    /// One knob turned.
    pub fn turn(&self, knob: Knob) {
        self.set(self.get().with(knob));
    }

    /// The configuration under every knob turned so far (the store's list).
    pub fn reset_to(&self, knobs: &[Knob]) {
        self.set(self.configured.overlaid(knobs));
    }

    /// How long a track may be silent before it stops receiving (`None`: never).
    pub fn no_media_timer(&self) -> Option<Duration> {
        match self.no_media_timer.load(Relaxed) {
            0 => None,
            s => Some(Duration::from_secs(u64::from(s))),
        }
    }

    /// Packets lost in a second that make a slow link (0: never).
    pub fn slowlink_threshold(&self) -> u32 {
        self.slowlink_threshold.load(Relaxed)
    }

    /// The shortest a sent packet is kept for retransmission.
    pub fn min_nack_queue(&self) -> Duration {
        Duration::from_millis(u64::from(self.min_nack_queue.load(Relaxed)))
    }

    /// Whether a keyframe sent empties its stream's retransmission history.
    pub fn nack_optimizations(&self) -> bool {
        self.nack_optimizations.load(Relaxed)
    }
}

impl Default for LiveTuning {
    /// The defaults (test peers, tools).
    fn default() -> Self {
        Self::with(Tuning::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_knob_turned_is_read_at_once_and_the_stored_list_resets_the_rest() {
        let configured = Tuning { slowlink_threshold: 4, ..Tuning::default() };
        let t = LiveTuning::new(configured);
        assert_eq!(t.no_media_timer(), Some(Duration::from_secs(1)));
        t.turn(Knob::NoMediaTimer(0));
        assert_eq!(t.no_media_timer(), None, "0: never");
        t.turn(Knob::MinNackQueue(250));
        assert_eq!((t.min_nack_queue(), t.slowlink_threshold()), (Duration::from_millis(250), 4));
        t.reset_to(&[Knob::NackOptimizations(true)]);
        assert_eq!(t.get(), Tuning { nack_optimizations: true, ..configured });
    }
}
