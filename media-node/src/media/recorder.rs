//! Recordings in Janus's `.mjr` format, so that `janus-pp-rec` turns them into `.webm`,
//! `.opus` or `.mp4` exactly as it does Janus's own: `MJR00002`, then (with the first packet)
//! a big-endian u16 length and a JSON header (`t` type, `c` codec, `s` created and `u` first
//! written, in µs of wall time), then per packet `MEET`, a u32 of milliseconds since the first
//! packet, a u16 length and the RTP packet (data: 8 bytes of wall time in µs, then the message).
//! One file per stream, written through a buffer by the recorder's own task.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What a recording holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    Audio,
    Video,
    Data,
}

impl Track {
    fn letter(self) -> &'static str {
        match self {
            Track::Audio => "a",
            Track::Video => "v",
            Track::Data => "d",
        }
    }
}

/// Bytes gathered before a recording's file is written to.
const WRITE_BUFFER: usize = 128 * 1024;

fn wall_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// One `.mjr` file being written.
pub struct Mjr {
    out: BufWriter<File>,
    track: Track,
    codec: String,
    created_us: u64,
    /// When the first packet was written (the header goes out with it).
    started: Option<Instant>,
}

impl Mjr {
    /// Creates `path` (and its folder) and writes the file's magic.
    pub fn create(path: &Path, track: Track, codec: &str) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // A large buffer: a write system call per ~90 video packets rather than per ~5 (the
        // default 8 KiB), which is most of what a recording costs.
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, File::create(path)?);
        out.write_all(b"MJR00002")?;
        Ok(Self { out, track, codec: codec.to_owned(), created_us: wall_us(), started: None })
    }

    /// Writes one RTP packet (or, for data, one message) received `now`.
    pub fn write(&mut self, packet: &[u8], now: Instant) -> std::io::Result<()> {
        let started = match self.started {
            Some(s) => s,
            None => {
                let info = serde_json::json!({"t": self.track.letter(), "c": self.codec, "s": self.created_us, "u": wall_us()});
                let text = info.to_string();
                let len = u16::try_from(text.len()).map_err(|_| std::io::Error::other("header too long"))?;
                self.out.write_all(&len.to_be_bytes())?;
                self.out.write_all(text.as_bytes())?;
                self.started = Some(now);
                now
            }
        };
        let ms = u32::try_from(now.saturating_duration_since(started).as_millis()).unwrap_or(u32::MAX);
        let data = self.track == Track::Data;
        let len = packet.len() + if data { 8 } else { 0 };
        let len = u16::try_from(len).map_err(|_| std::io::Error::other("packet too long"))?;
        self.out.write_all(b"MEET")?;
        self.out.write_all(&ms.to_be_bytes())?;
        self.out.write_all(&len.to_be_bytes())?;
        if data {
            self.out.write_all(&wall_us().to_be_bytes())?;
        }
        self.out.write_all(packet)
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_janus_s() {
        let dir = std::env::temp_dir().join(format!("portunus-mjr-{}", std::process::id()));
        let path = dir.join("t-video-1.mjr");
        let mut m = Mjr::create(&path, Track::Video, "vp8").unwrap();
        let t0 = Instant::now();
        m.write(&[0x80, 96, 0, 1], t0).unwrap();
        m.write(&[0x80, 96, 0, 2, 9], t0 + std::time::Duration::from_millis(40)).unwrap();
        m.flush().unwrap();
        let b = std::fs::read(&path).unwrap();
        assert_eq!(&b[..8], b"MJR00002");
        let hl = usize::from(u16::from_be_bytes([b[8], b[9]]));
        let header: serde_json::Value = serde_json::from_slice(&b[10..10 + hl]).unwrap();
        assert_eq!((header["t"].as_str(), header["c"].as_str()), (Some("v"), Some("vp8")));
        let rest = &b[10 + hl..];
        assert_eq!(&rest[..4], b"MEET");
        assert_eq!(u32::from_be_bytes(rest[4..8].try_into().unwrap()), 0);
        assert_eq!(u16::from_be_bytes([rest[8], rest[9]]), 4);
        let second = &rest[14..];
        assert_eq!((&second[..4], u32::from_be_bytes(second[4..8].try_into().unwrap())), (&b"MEET"[..], 40));
        assert_eq!(&second[10..], &[0x80, 96, 0, 2, 9]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
