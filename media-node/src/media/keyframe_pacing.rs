//! When a publisher stream's keyframe requests go out: as they come, at most one round per
//! [`KEYFRAME_REQUEST_INTERVAL`], a request during the pause answered by one round at its end
//! (coalesced, not dropped), and with `fir_freq` (the room's setting, as Janus) a round for
//! every layer that long after the last one, so late decoders recover.
//!
//! Sans-IO: [`KeyframePacer`] takes the time and says which layers a round asks for and when
//! to look again; [`pace`] is the task that waits for requests and that time and sends the
//! rounds.

use super::feed::KEYFRAME_REQUEST_INTERVAL;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Layers a round asks a keyframe of, one bit each (bit 0 the lowest).
pub type Layers = u8;

/// One publisher stream's keyframe requests, paced by the rules above.
pub struct KeyframePacer {
    /// Every layer's bit: a request for a higher layer asks for the highest.
    all: Layers,
    /// `fir_freq`: a round for every layer this long after the last round.
    periodic: Option<Duration>,
    /// Layers asked for since the last round.
    pending: Layers,
    /// The end of the pause after the last round (none before the first).
    quiet_until: Option<Instant>,
    /// When the next periodic round is due.
    periodic_at: Option<Instant>,
}

impl KeyframePacer {
    /// A pacer for a stream of `layers` layers (1 to 8), with its first periodic round (if
    /// any) `periodic` after `now`.
    pub fn new(layers: usize, periodic: Option<Duration>, now: Instant) -> Self {
        let layers = layers.clamp(1, Layers::BITS as usize);
        Self {
            all: Layers::MAX >> (Layers::BITS as usize - layers),
            periodic,
            pending: 0,
            quiet_until: None,
            periodic_at: periodic.map(|f| now + f),
        }
    }

    /// A keyframe of `layer` asked for.
    pub fn request(&mut self, layer: u8) {
        let highest = Layers::BITS - 1 - self.all.leading_zeros();
        self.pending |= 1 << u32::from(layer).min(highest);
    }

    /// The round to send at `now`, if one is due: what was asked for (every layer when the
    /// periodic round is due), once the pause after the last round is over. A round starts the
    /// pause and the periodic wait again.
    pub fn poll(&mut self, now: Instant) -> Option<Layers> {
        if self.quiet_until.is_some_and(|q| now < q) {
            return None;
        }
        if self.periodic_at.is_some_and(|p| now >= p) {
            self.pending = self.all;
        }
        if self.pending == 0 {
            return None;
        }
        let round = std::mem::take(&mut self.pending);
        self.quiet_until = Some(now + KEYFRAME_REQUEST_INTERVAL);
        self.periodic_at = self.periodic.map(|f| now + f);
        Some(round)
    }

    /// When [`Self::poll`] may next have a round without a new request: the end of the pause
    /// while requests wait, else the periodic round (never inside the pause); `None`: only a
    /// request can make one.
    pub fn next_at(&self) -> Option<Instant> {
        let due = if self.pending != 0 { self.quiet_until } else { self.periodic_at };
        match (due, self.quiet_until) {
            (Some(d), Some(q)) => Some(d.max(q)),
            (due, _) => due,
        }
    }
}

/// Runs `pacer` on the layer numbers arriving on `requests`, handing each round to `send`,
/// until `requests` closes or `send` says the stream is gone (false).
pub(super) async fn pace<F: Future<Output = bool>>(
    mut requests: mpsc::UnboundedReceiver<u8>,
    mut pacer: KeyframePacer,
    mut send: impl FnMut(Layers) -> F,
) {
    loop {
        let wait = async {
            match pacer.next_at() {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = requests.recv() => match r {
                Some(layer) => pacer.request(layer),
                None => return,
            },
            () = wait => {}
        }
        while let Ok(layer) = requests.try_recv() {
            pacer.request(layer);
        }
        if let Some(round) = pacer.poll(Instant::now()) {
            if !send(round).await {
                return;
            }
        }
    }
}

/// Each layer a round asks for, lowest first.
pub fn layers_of(round: Layers) -> impl Iterator<Item = u8> {
    (0..Layers::BITS as u8).filter(move |l| round & (1 << l) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAUSE: Duration = KEYFRAME_REQUEST_INTERVAL;

    #[test]
    fn a_request_goes_out_at_once_and_those_in_the_pause_in_one_round_at_its_end() {
        let t = Instant::now();
        let mut p = KeyframePacer::new(3, None, t);
        assert_eq!(p.poll(t), None, "nothing asked");
        assert_eq!(p.next_at(), None, "nothing to wait for");
        p.request(0);
        assert_eq!(p.poll(t), Some(0b001));
        p.request(2);
        p.request(0);
        let mid = t + PAUSE / 2;
        assert_eq!(p.poll(mid), None, "inside the pause");
        assert_eq!(p.next_at(), Some(t + PAUSE), "the end of the pause");
        assert_eq!(p.poll(t + PAUSE), Some(0b101), "both layers, in one round");
        assert_eq!(p.poll(t + PAUSE), None, "answered once");
        // A request after a pause that went by quietly goes out at once.
        let later = t + 5 * PAUSE;
        p.request(1);
        assert_eq!(p.poll(later), Some(0b010));
    }

    #[test]
    fn a_layer_above_the_streams_asks_for_its_highest() {
        let t = Instant::now();
        let mut one = KeyframePacer::new(1, None, t);
        one.request(2);
        assert_eq!(one.poll(t), Some(0b1));
        let mut eight = KeyframePacer::new(8, None, t);
        eight.request(200);
        assert_eq!(eight.poll(t), Some(0b1000_0000));
        assert_eq!(layers_of(0b1010_0001).collect::<Vec<_>>(), [0, 5, 7]);
    }

    #[test]
    fn with_fir_freq_every_layer_is_asked_that_long_after_the_last_round() {
        let t = Instant::now();
        let f = Duration::from_secs(10);
        let mut p = KeyframePacer::new(3, Some(f), t);
        assert_eq!(p.next_at(), Some(t + f));
        assert_eq!(p.poll(t + f - Duration::from_millis(1)), None);
        assert_eq!(p.poll(t + f), Some(0b111), "every layer");
        assert_eq!(p.next_at(), Some(t + 2 * f));
        // A round for a request moves the periodic one.
        let asked = t + f + Duration::from_secs(4);
        p.request(1);
        assert_eq!(p.poll(asked), Some(0b010));
        assert_eq!(p.next_at(), Some(asked + f));
        assert_eq!(p.poll(t + 2 * f), None, "no longer due then");
    }

    #[test]
    fn a_periodic_round_never_falls_inside_the_pause() {
        let t = Instant::now();
        let f = Duration::from_millis(100);
        let mut p = KeyframePacer::new(1, Some(f), t);
        p.request(0);
        assert_eq!(p.poll(t), Some(1));
        assert_eq!(p.next_at(), Some(t + PAUSE), "fir_freq shorter than the pause waits for it");
        assert_eq!(p.poll(t + f), None);
        assert_eq!(p.poll(t + PAUSE), Some(1));
    }
}
