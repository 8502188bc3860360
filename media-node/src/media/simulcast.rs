//! Simulcast for a subscriber stream: which layer it wants, which one it gets while layers go
//! silent (Janus's `fallback`), and the move from one layer to another.

use super::feed::Silence;
use std::time::{Duration, Instant};

/// Which simulcast layers a subscriber stream wants (`configure` `substream`, `temporal`,
/// `fallback`; Janus's defaults: the highest, all, 250 ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerTarget {
    pub substream: u8,
    pub temporal: u8,
    pub fallback: Duration,
}

impl Default for LayerTarget {
    fn default() -> Self {
        Self { substream: 2, temporal: 2, fallback: Duration::from_millis(250) }
    }
}

/// The substream a stream should relay: the highest at or below the target that is flowing or
/// has been silent for less than `fallback`; with it, when to look again (a silent layer's
/// fallback deadline). `None` when every candidate is past its fallback (keep what there is).
pub(super) fn choose_layer(
    target: &LayerTarget,
    layers: usize,
    silence: &Silence,
    now: Instant,
) -> (Option<u8>, Option<Instant>) {
    let top = usize::from(target.substream).min(layers.saturating_sub(1));
    for layer in (0..=top).rev() {
        match silence[layer] {
            None => return (Some(layer as u8), None),
            Some(since) if now < since + target.fallback => return (Some(layer as u8), Some(since + target.fallback)),
            Some(_) => {}
        }
    }
    (None, None)
}

/// The simulcast state of one subscriber stream: the layer relayed, the one it is moving to
/// (relayed from its first keyframe on, so the switch is seamless, as Janus's), and what was
/// last announced. Which layers are received is its driver's: this says which.
pub(super) struct Layers {
    pub current: u8,
    pub pending: Option<u8>,
    /// When a silent layer's fallback deadline passes.
    pub recheck: Option<Instant>,
    pub announced: Option<u8>,
    pub temporal: Option<u8>,
}

impl Layers {
    /// A stream starting on a source of `count` layers: the layer the target calls for now
    /// (the lowest when none is flowing).
    pub(super) fn start(count: usize, target: &LayerTarget, silence: &Silence, now: Instant) -> Self {
        let first = choose_layer(target, count, silence, now).0;
        Self { current: first.unwrap_or(0), pending: None, recheck: None, announced: None, temporal: None }
    }

    /// Moves towards the layer the target and the source's silent layers call for; returns
    /// the layer now pending when that changed (`Some(None)`: none any more).
    pub(super) fn reconsider(
        &mut self,
        count: usize,
        target: &LayerTarget,
        silence: &Silence,
        now: Instant,
    ) -> Option<Option<u8>> {
        if count <= 1 {
            return None;
        }
        let (want, recheck) = choose_layer(target, count, silence, now);
        self.recheck = recheck;
        let want = want?;
        if want == self.current {
            return self.pending.take().map(|_| None);
        }
        if self.pending == Some(want) {
            return None;
        }
        tracing::debug!(from = self.current, to = want, "simulcast: changing layer");
        self.pending = Some(want);
        Some(Some(want))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_chosen_is_the_target_or_the_highest_below_it_not_silent_past_fallback() {
        let now = Instant::now();
        let target = LayerTarget::default();
        let ago = |ms| Some(now - Duration::from_millis(ms));
        assert_eq!(choose_layer(&target, 3, &[None; 3], now), (Some(2), None));
        // Silent for 100 ms of the 250 allowed: stay, and look again when it runs out.
        assert_eq!(
            choose_layer(&target, 3, &[None, None, ago(100)], now),
            (Some(2), Some(now + Duration::from_millis(150)))
        );
        assert_eq!(choose_layer(&target, 3, &[None, None, ago(300)], now), (Some(1), None));
        assert_eq!(choose_layer(&target, 3, &[None, ago(400), ago(300)], now), (Some(0), None));
        assert_eq!(choose_layer(&target, 3, &[ago(999), ago(400), ago(300)], now), (None, None), "nothing flows");
        let low = LayerTarget { substream: 0, ..target };
        assert_eq!(choose_layer(&low, 3, &[None; 3], now), (Some(0), None));
        assert_eq!(choose_layer(&target, 2, &[None; 3], now), (Some(1), None), "only two layers offered");
    }
}
