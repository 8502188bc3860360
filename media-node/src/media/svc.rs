//! VP9 SVC: which spatial and temporal layers of one stream a subscriber gets, as Janus's
//! VideoRoom selects them (after Medooze's VP9 layer selector). Every layer travels in one RTP
//! stream; each packet's payload descriptor names its layers. A subscriber stream moves up a
//! spatial layer at a keyframe (to the highest at most its target that sent within the last
//! 250 ms), down at a keyframe (non-flexible mode) or at the end of a layer frame (flexible),
//! up a temporal layer at a switching point (U and B set), down at the end of a frame of the
//! target layer; packets above the current layers are left out, and the last packet kept of a
//! frame whose upper layers are left out carries the marker. Pure: packets and time in,
//! decisions out.

use std::time::{Duration, Instant};

/// A spatial layer not heard from for this long is not moved up to.
const LAYER_SILENCE: Duration = Duration::from_millis(250);

/// What a VP9 payload descriptor says about layers (draft-ietf-payload-vp9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SvcInfo {
    pub spatial: u8,
    pub temporal: u8,
    /// Flexible mode (F).
    pub flexible: bool,
    /// A switching point up to this temporal layer (U).
    pub switching_up: bool,
    /// The first packet of a layer frame (B) and the last (E).
    pub begin: bool,
    pub end: bool,
}

/// The layer indices of a VP9 payload, if it carries them (L set).
pub fn parse(payload: &[u8]) -> Option<SvcInfo> {
    let &d = payload.first()?;
    if d & 0x20 == 0 {
        return None;
    }
    let mut i = 1;
    if d & 0x80 != 0 {
        // Picture id: 7 or 15 bits (M).
        i += if payload.get(i)? & 0x80 != 0 { 2 } else { 1 };
    }
    let l = *payload.get(i)?;
    Some(SvcInfo {
        temporal: l >> 5,
        switching_up: l & 0x10 != 0,
        spatial: (l >> 1) & 0x07,
        flexible: d & 0x10 != 0,
        begin: d & 0x08 != 0,
        end: d & 0x04 != 0,
    })
}

/// What becomes of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Above the subscriber's layers: not sent (its sequence number is not missed).
    Drop,
    /// Sent; with `marker`, it ends the frame as far as this subscriber goes.
    Send { marker: bool },
}

/// Layers a subscriber stream moved to with this packet, as Janus announces them: a spatial
/// move (with the temporal layer the stream starts on, the first time) and, apart, a temporal
/// move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    pub spatial: Option<(u8, Option<u8>)>,
    pub temporal: Option<u8>,
}

/// One subscriber stream's layers.
#[derive(Clone, Debug)]
pub struct SvcSelector {
    /// Current layers (-1: none yet).
    spatial: i8,
    temporal: i8,
    pub target_spatial: u8,
    pub target_temporal: u8,
    /// When each spatial layer last sent a packet.
    seen: [Option<Instant>; 3],
}

impl SvcSelector {
    pub fn new(target_spatial: u8, target_temporal: u8) -> Self {
        Self { spatial: -1, temporal: -1, target_spatial, target_temporal, seen: [None; 3] }
    }

    pub fn packet(&mut self, info: SvcInfo, keyframe: bool, now: Instant) -> (Step, Moved) {
        let mut moved = Moved::default();
        if let Some(seen) = self.seen.get_mut(usize::from(info.spatial)) {
            *seen = Some(now);
        }
        let target = self.target_spatial as i8;
        if target > self.spatial {
            if keyframe {
                let mut to = target;
                while to > self.spatial && to > 0 {
                    let recent =
                        self.seen[to as usize].is_some_and(|t| now.saturating_duration_since(t) < LAYER_SILENCE);
                    if recent {
                        break;
                    }
                    to -= 1;
                }
                if to > self.spatial {
                    self.spatial = to;
                    let starting = self.temporal == -1;
                    if starting {
                        self.temporal = 0;
                    }
                    moved.spatial = Some((to as u8, starting.then_some(0)));
                }
            }
        } else if target < self.spatial && ((!info.flexible && keyframe) || (info.flexible && info.end)) {
            self.spatial = target;
            moved.spatial = Some((target as u8, None));
        }
        let spatial = self.spatial;
        if spatial < info.spatial as i8 {
            return (Step::Drop, moved);
        }
        let marker = info.end && spatial == info.spatial as i8;
        let mut temporal = self.temporal;
        let target = self.target_temporal as i8;
        let t = info.temporal as i8;
        if target > self.temporal {
            if info.switching_up && info.begin && t > self.temporal && t <= target {
                self.temporal = t;
                temporal = t;
                moved.temporal = Some(info.temporal);
            }
        } else if target < self.temporal && info.end && t == target {
            self.temporal = target;
            moved.temporal = Some(info.temporal);
        }
        if temporal < t {
            return (Step::Drop, moved);
        }
        (Step::Send { marker }, moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A non-flexible VP9 payload with a 7-bit picture id: layer indices, TL0PICIDX, a byte.
    fn payload(spatial: u8, temporal: u8, key: bool, begin: bool, end: bool, up: bool) -> Vec<u8> {
        let mut d = 0x80 | 0x20; // I, L
        if !key {
            d |= 0x40; // P
        }
        if begin {
            d |= 0x08;
        }
        if end {
            d |= 0x04;
        }
        let l = temporal << 5 | u8::from(up) << 4 | spatial << 1;
        vec![d, 0x01, l, 0x00, 0xAA]
    }

    fn info(p: &[u8]) -> SvcInfo {
        parse(p).expect("layer indices")
    }

    #[test]
    fn layer_indices_are_read_after_the_picture_id() {
        let i = info(&payload(2, 1, false, true, false, true));
        assert_eq!(
            (i.spatial, i.temporal, i.switching_up, i.begin, i.end, i.flexible),
            (2, 1, true, true, false, false)
        );
        // A 15-bit picture id.
        let i = info(&[0xA8, 0x81, 0x02, 0x43, 0x00]);
        assert_eq!((i.spatial, i.temporal), (1, 2));
        // No L bit, or cut short: nothing.
        assert_eq!(parse(&[0x88, 0x01]), None);
        assert_eq!(parse(&[0xA8]), None);
    }

    /// One picture of three spatial layers, temporal layer `t`, one packet per layer.
    fn picture(s: &mut SvcSelector, t: u8, key: bool, now: Instant) -> Vec<(u8, Step, Moved)> {
        (0..3)
            .map(|sl| {
                let p = payload(sl, t, key && sl == 0, true, true, t > 0);
                let (step, moved) = s.packet(info(&p), key && sl == 0, now);
                (sl, step, moved)
            })
            .collect()
    }

    #[test]
    fn a_subscriber_starts_at_a_keyframe_and_climbs_to_its_target_layers() {
        let t0 = Instant::now();
        let mut s = SvcSelector::new(1, 2);
        // Before any keyframe: nothing.
        assert!(picture(&mut s, 0, false, t0).iter().all(|(_, step, _)| *step == Step::Drop));
        // The first keyframe: layer 1 sent within the last 250 ms, so the stream starts there.
        let got = picture(&mut s, 0, true, t0 + Duration::from_millis(40));
        assert_eq!(got[0].2, Moved { spatial: Some((1, Some(0))), temporal: None });
        assert_eq!(got[0].1, Step::Send { marker: false });
        assert_eq!(got[1].1, Step::Send { marker: true }, "layer 1 ends the frame for this subscriber");
        assert_eq!(got[2].1, Step::Drop, "layer 2 is above the target");
        // Temporal layers climb at switching points: 2 first (the highest at most the target).
        let got = picture(&mut s, 2, false, t0 + Duration::from_millis(80));
        assert_eq!(got[0].2, Moved { spatial: None, temporal: Some(2) });
        assert!(matches!(got[1].1, Step::Send { .. }));
    }

    #[test]
    fn a_lower_target_is_taken_at_the_next_keyframe_and_temporal_layers_above_it_are_dropped() {
        let t0 = Instant::now();
        let mut s = SvcSelector::new(2, 2);
        picture(&mut s, 0, true, t0);
        let got = picture(&mut s, 0, true, t0 + Duration::from_millis(40));
        assert_eq!(got[0].2.spatial, Some((2, None)));
        picture(&mut s, 2, false, t0 + Duration::from_millis(60));
        s.target_spatial = 0;
        s.target_temporal = 0;
        // Not a keyframe: still layer 2 (non-flexible mode waits for one).
        let got = picture(&mut s, 0, false, t0 + Duration::from_millis(80));
        assert!(got.iter().all(|(_, step, _)| matches!(step, Step::Send { .. })));
        // The temporal target 0 is taken at the end of the first frame of temporal layer 0.
        assert_eq!(got[0].2.temporal, Some(0));
        let got = picture(&mut s, 0, true, t0 + Duration::from_millis(100));
        assert_eq!(got[0].2, Moved { spatial: Some((0, None)), temporal: None });
        assert_eq!(got[0].1, Step::Send { marker: true });
        assert_eq!((got[1].1, got[2].1), (Step::Drop, Step::Drop));
        let got = picture(&mut s, 1, false, t0 + Duration::from_millis(120));
        assert!(got.iter().all(|(_, step, _)| *step == Step::Drop), "temporal layer 1 is above the target");
    }

    #[test]
    fn a_silent_layer_is_not_climbed_to() {
        let t0 = Instant::now();
        let mut s = SvcSelector::new(2, 0);
        // Only layers 0 and 1 send.
        for (i, key) in [(0u64, true), (1, true)] {
            for sl in 0..2 {
                let p = payload(sl, 0, key && sl == 0, true, true, false);
                s.packet(info(&p), key && sl == 0, t0 + Duration::from_millis(40 * i));
            }
        }
        assert_eq!(s.spatial, 1);
    }
}
