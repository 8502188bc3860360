//! What arrives on a publisher track, sans-IO: each packet's layer and sequence number in, and
//! on every tick (with the time) which layers stopped or went silent and what was lost. The
//! publisher's pump turns that into events (Janus's `receiving` and `slow_link`) and into the
//! silence subscribers fall back on; the tests drive the timers without sleeping.

use super::feed::{Silence, MAX_LAYERS};
use std::time::{Duration, Instant};

/// How often a publisher track's packet counts are looked at (silence, simulcast layers).
pub const TICK: Duration = Duration::from_millis(50);
/// Empty ticks before a simulcast layer counts as silent: a low layer's frames can be more than
/// one tick apart.
const LAYER_QUIET_TICKS: u32 = 2;
/// Losses are summed over this long, as Janus judges a slow link.
const LOSS_PERIOD: Duration = Duration::from_secs(1);

/// Packets one incoming stream lost: sequence numbers skipped, less those that came late
/// (repaired by a retransmission), as Janus counts expected minus received.
#[derive(Clone, Copy, Default)]
struct LossCount {
    highest: Option<u16>,
    lost: i64,
}

impl LossCount {
    fn packet(&mut self, seq: u16) {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            return;
        };
        match seq.wrapping_sub(highest) as i16 {
            d if d > 0 => {
                self.lost += i64::from(d) - 1;
                self.highest = Some(seq);
            }
            d if d < 0 => self.lost -= 1,
            _ => {}
        }
    }

    /// The count since the last call.
    fn take(&mut self) -> u32 {
        u32::try_from(std::mem::take(&mut self.lost).max(0)).unwrap_or(u32::MAX)
    }
}

/// What one tick found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Layers that stopped receiving: silent for the no-media timer.
    pub stopped: [bool; MAX_LAYERS],
    /// Whether a layer went silent or flows again ([`Arrivals::silence`]).
    pub silence_changed: bool,
    /// At the end of each second: the packets lost in it (all layers).
    pub lost: Option<u32>,
    /// Those losses make a slow link (at least the threshold).
    pub slow_link: bool,
}

/// The knobs a tick applies (`tuning`): read at each tick, so a change applies at once.
#[derive(Clone, Copy, Debug)]
pub struct Knobs {
    /// A layer silent this long stops receiving (Janus's `no_media_timer`; `None`: never).
    pub no_media_timer: Option<Duration>,
    /// Packets lost in a second that make a slow link (0: never).
    pub slow_link_threshold: u32,
}

/// One publisher track's arrivals, per simulcast layer.
pub struct Arrivals {
    layers: usize,
    /// Since the last tick.
    counts: [u32; MAX_LAYERS],
    /// Empty ticks in a row.
    quiet: [u32; MAX_LAYERS],
    receiving: [bool; MAX_LAYERS],
    silence: Silence,
    losses: [LossCount; MAX_LAYERS],
    ticks: u32,
}

impl Arrivals {
    pub fn new(layers: usize) -> Self {
        Self {
            layers: layers.clamp(1, MAX_LAYERS),
            counts: [0; MAX_LAYERS],
            quiet: [0; MAX_LAYERS],
            receiving: [false; MAX_LAYERS],
            silence: [None; MAX_LAYERS],
            losses: [LossCount::default(); MAX_LAYERS],
            ticks: 0,
        }
    }

    /// A packet of `layer`; true if that layer starts receiving with it (its first packet, or
    /// the first after the no-media timer ran out).
    pub fn packet(&mut self, layer: usize, seq: u16) -> bool {
        let layer = layer.min(self.layers - 1);
        self.counts[layer] += 1;
        self.losses[layer].packet(seq);
        !std::mem::replace(&mut self.receiving[layer], true)
    }

    /// Since when each layer has sent nothing (`None`: flowing).
    pub fn silence(&self) -> Silence {
        self.silence
    }

    /// Every [`TICK`], at `now`.
    pub fn tick(&mut self, now: Instant, knobs: Knobs) -> Tick {
        let mut out = Tick::default();
        for layer in 0..self.layers {
            self.quiet[layer] = if self.counts[layer] > 0 { 0 } else { self.quiet[layer] + 1 };
            let timed_out = knobs.no_media_timer.is_some_and(|timer| TICK * self.quiet[layer] >= timer);
            if self.receiving[layer] && timed_out {
                self.receiving[layer] = false;
                out.stopped[layer] = true;
            }
            let quiet = self.quiet[layer];
            if (quiet >= LAYER_QUIET_TICKS) != self.silence[layer].is_some() {
                self.silence[layer] = (quiet >= LAYER_QUIET_TICKS).then(|| now - TICK * quiet);
                out.silence_changed = true;
            }
        }
        self.counts = [0; MAX_LAYERS];
        self.ticks += 1;
        if TICK * self.ticks >= LOSS_PERIOD {
            self.ticks = 0;
            let lost: u32 = self.losses.iter_mut().map(LossCount::take).sum();
            out.lost = Some(lost);
            out.slow_link = knobs.slow_link_threshold > 0 && lost >= knobs.slow_link_threshold;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Janus's defaults: a second's silence stops a track; no slow links.
    const DEFAULTS: Knobs = Knobs { no_media_timer: Some(Duration::from_secs(1)), slow_link_threshold: 0 };

    /// `n` ticks from `t` with `knobs`, the last one's findings, and the time after them.
    fn ticks_with(a: &mut Arrivals, t: Instant, n: u32, knobs: Knobs) -> (Tick, Instant) {
        let mut last = Tick::default();
        for i in 1..=n {
            last = a.tick(t + TICK * i, knobs);
        }
        (last, t + TICK * n)
    }

    fn ticks(a: &mut Arrivals, t: Instant, n: u32) -> (Tick, Instant) {
        ticks_with(a, t, n, DEFAULTS)
    }

    #[test]
    fn a_track_silent_for_the_no_media_timer_stops_receiving_and_starts_again_with_a_packet() {
        let t0 = Instant::now();
        let mut a = Arrivals::new(1);
        assert!(a.packet(0, 1), "the first packet starts it");
        assert!(!a.packet(0, 2));
        // The tick the packets came in, then 19 empty ones: 0.95 s of silence.
        let (tick, t) = ticks(&mut a, t0, 20);
        assert_eq!(tick.stopped, [false; 3], "0.95 s of silence is not yet 1 s");
        assert_eq!(a.tick(t + TICK, DEFAULTS).stopped, [true, false, false]);
        assert_eq!(a.tick(t + TICK * 2, DEFAULTS).stopped, [false; 3], "reported once");
        assert!(a.packet(0, 3), "receiving again");
    }

    #[test]
    fn the_no_media_timer_is_read_at_each_tick_and_zero_never_stops_a_track() {
        let t0 = Instant::now();
        let three = Knobs { no_media_timer: Some(Duration::from_secs(3)), ..DEFAULTS };
        let mut a = Arrivals::new(1);
        a.packet(0, 1);
        let (tick, t) = ticks_with(&mut a, t0, 60, three);
        assert_eq!(tick.stopped, [false; 3], "2.95 s of silence is not yet 3 s");
        assert_eq!(a.tick(t + TICK, three).stopped, [true, false, false]);
        a.packet(0, 2);
        let never = Knobs { no_media_timer: None, ..DEFAULTS };
        let t = t + TICK;
        let stopped = (1..=200).filter(|i| a.tick(t + TICK * *i, never).stopped != [false; 3]).count();
        assert_eq!(stopped, 0, "10 s of silence with the timer off");
        // Turned back on: the silence so far counts.
        assert_eq!(a.tick(t + TICK * 201, DEFAULTS).stopped, [true, false, false]);
    }

    #[test]
    fn a_simulcast_layer_is_silent_after_two_empty_ticks_since_its_last_packet() {
        let t0 = Instant::now();
        let mut a = Arrivals::new(3);
        for seq in 0..3 {
            a.packet(0, seq);
            a.packet(1, seq);
            a.packet(2, seq);
        }
        let tick = a.tick(t0, DEFAULTS);
        assert!(!tick.silence_changed);
        a.packet(0, 3);
        a.packet(1, 3);
        assert!(!a.tick(t0 + TICK, DEFAULTS).silence_changed, "one empty tick");
        a.packet(0, 4);
        a.packet(1, 4);
        let tick = a.tick(t0 + TICK * 2, DEFAULTS);
        assert!(tick.silence_changed);
        assert_eq!(a.silence(), [None, None, Some(t0)], "silent since the tick it last sent in");
        a.packet(0, 5);
        a.packet(1, 5);
        assert!(!a.tick(t0 + TICK * 3, DEFAULTS).silence_changed, "still silent, since the same time");
        a.packet(2, 3);
        assert!(a.tick(t0 + TICK * 4, DEFAULTS).silence_changed);
        assert_eq!(a.silence(), [None; 3], "flowing again");
    }

    #[test]
    fn losses_are_summed_per_second_over_the_layers_less_what_came_late() {
        let t0 = Instant::now();
        let five = Knobs { slow_link_threshold: 5, ..DEFAULTS };
        let mut a = Arrivals::new(2);
        for seq in [1, 2, 5, 6, 4] {
            a.packet(0, seq);
        }
        for seq in [10, 14] {
            a.packet(1, seq);
        }
        let (tick, t) = ticks_with(&mut a, t0, 19, five);
        assert_eq!(tick.lost, None, "not before a second");
        let tick = a.tick(t + TICK, five);
        // Layer 0: 3 and 4 skipped, 4 came late: 1. Layer 1: 11, 12 and 13: 3.
        assert_eq!((tick.lost, tick.slow_link), (Some(4), false), "below the threshold of 5");
        for seq in [15, 21] {
            a.packet(1, seq);
        }
        let (tick, _) = ticks_with(&mut a, t + TICK, 20, five);
        assert_eq!((tick.lost, tick.slow_link), (Some(5), true));
    }
}
