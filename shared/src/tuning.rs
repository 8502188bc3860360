//! The media knobs Janus lets an operator turn while it runs (Admin API `set_no_media_timer`,
//! `set_slowlink_threshold`, `set_min_nack_queue`, `set_nack_optimizations`), cluster-wide.
//!
//! Each process starts from its configuration ([`crate::config::Config::tuning`]); a knob an
//! operator turned is kept in the store, where it overrides the configuration on every process:
//! the gateway that takes the request stores it and tells each live media node at once, and a
//! node reads the stored knobs when it starts and once a minute (so one that missed the word
//! catches up).

use serde::{Deserialize, Serialize};

/// Janus's longest NACK queue: `min_nack_queue` is capped to it.
pub const MAX_NACK_QUEUE_MS: u32 = 1000;

/// The knobs' values on one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tuning {
    /// Seconds a publisher stream may be silent before it is reported as not receiving (0: never).
    pub no_media_timer: u32,
    /// Packets lost in a second on one stream that make a slow link (0: never).
    pub slowlink_threshold: u32,
    /// The shortest a sent packet is kept for retransmission, in ms (at most [`MAX_NACK_QUEUE_MS`]).
    pub min_nack_queue: u32,
    /// Whether a keyframe sent empties its stream's retransmission history (nothing before a
    /// keyframe is worth repairing once it is out).
    pub nack_optimizations: bool,
}

impl Default for Tuning {
    /// Janus's defaults but for the NACK queue: a retransmission lost too is asked for again a
    /// NACK interval or two later, which 200 ms (Janus's) did not always leave time for.
    fn default() -> Self {
        Self { no_media_timer: 1, slowlink_threshold: 0, min_nack_queue: 500, nack_optimizations: false }
    }
}

/// One knob turned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Knob {
    NoMediaTimer(u32),
    SlowlinkThreshold(u32),
    MinNackQueue(u32),
    NackOptimizations(bool),
}

impl Knob {
    /// Its name in the store.
    pub fn field(self) -> &'static str {
        match self {
            Knob::NoMediaTimer(_) => "no_media_timer",
            Knob::SlowlinkThreshold(_) => "slowlink_threshold",
            Knob::MinNackQueue(_) => "min_nack_queue",
            Knob::NackOptimizations(_) => "nack_optimizations",
        }
    }

    /// Its name in Janus's replies (`set_*` and `get_status`).
    pub fn janus_name(self) -> &'static str {
        match self {
            Knob::NackOptimizations(_) => "nack-optimizations",
            other => other.field(),
        }
    }

    /// Its value in Janus's replies.
    pub fn janus_value(self) -> serde_json::Value {
        match self {
            Knob::NackOptimizations(on) => on.into(),
            other => other.value().into(),
        }
    }

    /// The value a server runs with: the NACK queue capped as Janus caps it.
    pub fn in_effect(self) -> Self {
        match self {
            Knob::MinNackQueue(ms) => Knob::MinNackQueue(ms.min(MAX_NACK_QUEUE_MS)),
            other => other,
        }
    }

    /// Its value in the store.
    pub fn value(self) -> u32 {
        match self {
            Knob::NoMediaTimer(v) | Knob::SlowlinkThreshold(v) | Knob::MinNackQueue(v) => v,
            Knob::NackOptimizations(on) => u32::from(on),
        }
    }

    /// A stored knob (`None`: not one, or not a number).
    pub fn parse(field: &str, value: &str) -> Option<Self> {
        let v: u32 = value.parse().ok()?;
        Some(match field {
            "no_media_timer" => Knob::NoMediaTimer(v),
            "slowlink_threshold" => Knob::SlowlinkThreshold(v),
            "min_nack_queue" => Knob::MinNackQueue(v),
            "nack_optimizations" => Knob::NackOptimizations(v != 0),
            _ => return None,
        })
    }
}

impl Tuning {
    /// These values with `knob` turned ([`Knob::in_effect`]).
    pub fn with(mut self, knob: Knob) -> Self {
        match knob.in_effect() {
            Knob::NoMediaTimer(s) => self.no_media_timer = s,
            Knob::SlowlinkThreshold(p) => self.slowlink_threshold = p,
            Knob::MinNackQueue(ms) => self.min_nack_queue = ms,
            Knob::NackOptimizations(on) => self.nack_optimizations = on,
        }
        self
    }

    /// These values with every knob in `knobs` turned, in order.
    pub fn overlaid(self, knobs: &[Knob]) -> Self {
        knobs.iter().fold(self, |t, k| t.with(*k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_knob_reads_back_as_it_was_stored() {
        for k in
            [Knob::NoMediaTimer(3), Knob::SlowlinkThreshold(0), Knob::MinNackQueue(200), Knob::NackOptimizations(true)]
        {
            assert_eq!(Knob::parse(k.field(), &k.value().to_string()), Some(k));
        }
        assert_eq!(Knob::parse("no_media_timer", "soon"), None);
        assert_eq!(Knob::parse("twcc_period", "100"), None);
    }

    #[test]
    fn the_nack_queue_is_capped_as_janus_caps_it() {
        assert_eq!(Tuning::default().with(Knob::MinNackQueue(5000)).min_nack_queue, MAX_NACK_QUEUE_MS);
        assert_eq!(Knob::MinNackQueue(5000).in_effect(), Knob::MinNackQueue(MAX_NACK_QUEUE_MS));
        assert_eq!(Knob::NoMediaTimer(5000).in_effect(), Knob::NoMediaTimer(5000));
        let t = Tuning::default().overlaid(&[Knob::NoMediaTimer(0), Knob::NackOptimizations(true)]);
        assert_eq!((t.no_media_timer, t.nack_optimizations, t.min_nack_queue), (0, true, 500));
    }
}
