//! Talk detection from the audio level header extension (RFC 6464, `ssrc-audio-level`), as
//! Janus's VideoRoom does it: the levels of `packets` consecutive packets are averaged; an
//! average below `threshold` (levels are -dBov: 0 is loudest, 127 silence) means talking.
//! Only changes are reported (Janus's `talking` / `stopped-talking`). Pure: packets in, changes
//! out; no clock.

/// The room's (or the publisher's) talk detection settings: Janus's `audio_active_packets` and
/// `audio_level_average`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TalkSettings {
    pub packets: u32,
    pub threshold: u32,
}

/// A change in whether a publisher's audio stream is talking, with the average that decided it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TalkChange {
    pub talking: bool,
    pub average: f32,
}

#[derive(Debug)]
pub struct TalkDetector {
    settings: TalkSettings,
    sum: u64,
    count: u32,
    talking: bool,
    /// The last level seen (Janus's `audio-level-dBov`).
    last: u8,
}

impl TalkDetector {
    pub fn new(settings: TalkSettings) -> Self {
        Self {
            settings: TalkSettings { packets: settings.packets.max(1), ..settings },
            sum: 0,
            count: 0,
            talking: false,
            last: 127,
        }
    }

    /// One packet's level (the extension's byte: the voice-activity bit is ignored, as Janus
    /// does); a change when a window of packets completes and its verdict differs.
    pub fn level(&mut self, byte: u8) -> Option<TalkChange> {
        let level = byte & 0x7f;
        self.last = level;
        self.sum += u64::from(level);
        self.count += 1;
        if self.count < self.settings.packets {
            return None;
        }
        let average = self.sum as f32 / self.count as f32;
        self.sum = 0;
        self.count = 0;
        let talking = average < self.settings.threshold as f32;
        if talking == self.talking {
            return None;
        }
        self.talking = talking;
        Some(TalkChange { talking, average })
    }

    pub fn last_level(&self) -> u8 {
        self.last
    }
}

/// The audio level in a packet's header extension `id`, if it carries one.
pub fn audio_level(header: &rtc::rtp::header::Header, id: u8) -> Option<u8> {
    header.get_extension(id).and_then(|b| b.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector() -> TalkDetector {
        TalkDetector::new(TalkSettings { packets: 4, threshold: 25 })
    }

    #[test]
    fn a_loud_window_starts_talking_and_a_quiet_one_stops_it_once_each() {
        let mut d = detector();
        // The voice-activity bit (0x80) does not count.
        assert_eq!(d.level(0x80 | 10), None);
        assert_eq!(d.level(10), None);
        assert_eq!(d.level(20), None);
        assert_eq!(d.level(20), Some(TalkChange { talking: true, average: 15.0 }));
        // Still loud: no new event.
        for _ in 0..4 {
            assert_eq!(d.level(5), None);
        }
        for _ in 0..3 {
            assert_eq!(d.level(127), None);
        }
        assert_eq!(d.level(127), Some(TalkChange { talking: false, average: 127.0 }));
        assert_eq!(d.last_level(), 127);
    }

    #[test]
    fn an_average_at_the_threshold_is_not_talking() {
        let mut d = detector();
        let changes: Vec<_> = (0..8).filter_map(|_| d.level(25)).collect();
        assert!(changes.is_empty(), "{changes:?}");
    }
}
