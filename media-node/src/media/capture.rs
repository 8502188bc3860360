//! Packet captures of a handle's media (the Admin API's `start_pcap` and `start_text2pcap`), in
//! Janus's formats (its `text2pcap.c`): a libpcap 2.4 file whose packets sit in made-up
//! Ethernet/IPv4/UDP frames (10.1.1.1:1000 → 10.2.2.2:2000 inbound, the reverse outbound), or
//! one text line per packet for Wireshark's `text2pcap`.
//!
//! A PeerConnection's wire-most tap holds a [`CaptureTap`]: it sees each RTP and RTCP packet
//! decrypted on its way in and before encryption on its way out. While a capture runs it hands
//! a copy to the capture's writer thread through a bounded queue; when that queue is full the
//! packet is left out of the file and counted, so a slow disk never holds media up. The room
//! turns captures on and off through a watch channel the tap looks at per packet: one atomic
//! load while nothing changes.

use rtc::interceptor::{Packet, TaggedPacket};
use rtc::shared::marshal::Marshal;
use shared::janus::admin::{CaptureFormat, CaptureSpec};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, watch};

/// Captures open at once on a node (each is a thread and a file).
pub const MAX_CAPTURES: usize = 32;
static OPEN: AtomicUsize = AtomicUsize::new(0);
/// Packets left out of captures on this node (their writers fell behind).
static SKIPPED: AtomicU64 = AtomicU64::new(0);

/// Captures open on this node now, and packets they left out so far (for `/metrics`).
pub fn tally() -> (usize, u64) {
    (OPEN.load(Ordering::Relaxed), SKIPPED.load(Ordering::Relaxed))
}

/// Packets waiting for the writer (at most ~5 MB of them, 20 s of a publisher sending 130 video
/// and 50 audio packets a second): a disk that stalls for a moment loses nothing.
const QUEUE: usize = 4096;

/// The writer flushes at least this often, so a capture can be followed while it runs.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Made-up link, network and transport headers in front of each pcap packet.
const FRAME_HEADERS: usize = 14 + 20 + 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Rtp,
    Rtcp,
}

/// One packet seen, as the writer gets it.
struct Record {
    incoming: bool,
    kind: Kind,
    at: SystemTime,
    bytes: bytes::BytesMut,
}

enum ToWriter {
    Packet(Record),
    /// Flush, answer (if asked), end.
    Close(Option<oneshot::Sender<()>>),
}

/// Where a tap sends a running capture's packets.
#[derive(Clone)]
pub struct Sink {
    tx: SyncSender<ToWriter>,
    /// The wall clock at an instant, for the packets' times (the tap reads no clock).
    epoch: (Instant, SystemTime),
    dropped: Arc<AtomicU64>,
}

/// Turns a handle's capture on (`Some`) and off, for every PeerConnection the handle has.
pub type Switch = watch::Sender<Option<Sink>>;

/// What a PeerConnection follows of its handle's [`Switch`].
pub type Follow = watch::Receiver<Option<Sink>>;

/// A PeerConnection's part of its handle's capture.
pub struct CaptureTap {
    switch: watch::Receiver<Option<Sink>>,
    sink: Option<Sink>,
}

impl CaptureTap {
    /// Capturing at once if the handle's capture is on already.
    pub fn new(switch: Follow) -> Self {
        let sink = switch.borrow().clone();
        Self { switch, sink }
    }

    /// A packet going by (`msg.now`: when). False: the handle's switch is gone (the handle was
    /// detached, or its room closed here), so there will be nothing more to capture.
    pub fn seen(&mut self, incoming: bool, msg: &TaggedPacket) -> bool {
        match self.switch.has_changed() {
            Ok(false) => {}
            Ok(true) => self.sink = self.switch.borrow_and_update().clone(),
            Err(_) => {
                self.sink = None;
                return false;
            }
        }
        let Some(sink) = &self.sink else { return true };
        let (kind, bytes) = match &msg.message.packet {
            Packet::Rtp(p) => (Kind::Rtp, p.marshal()),
            // (An empty list only carries attributes: it never reaches the wire.)
            Packet::Rtcp(list) if !list.is_empty() => (Kind::Rtcp, rtc::rtcp::packet::marshal(list)),
            _ => return true,
        };
        let Ok(bytes) = bytes else { return true };
        let at = sink.epoch.1 + msg.now.saturating_duration_since(sink.epoch.0);
        match sink.tx.try_send(ToWriter::Packet(Record { incoming, kind, at, bytes })) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                sink.dropped.fetch_add(1, Ordering::Relaxed);
                SKIPPED.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => self.sink = None,
        }
        true
    }
}

/// A running capture: its file, written by a thread of its own. Dropping it ends the capture.
pub struct Capture {
    tx: SyncSender<ToWriter>,
    format: CaptureFormat,
    file: String,
    dropped: Arc<AtomicU64>,
}

impl Capture {
    /// Opens the file `spec` names (appending to it if it exists; not in a `protected` folder)
    /// for the handle `session`/`handle`, and starts its writer; the sink goes to the handle's
    /// switch.
    pub fn start(
        spec: &CaptureSpec,
        protected: &[PathBuf],
        session: u64,
        handle: u64,
    ) -> Result<(Capture, Sink), String> {
        let counted = Counted::take().ok_or_else(|| format!("{MAX_CAPTURES} captures are open already"))?;
        let (file, name) = open(spec, protected)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let label = format!("[session={session}][handle={handle}]");
        let writer = Writer { format: spec.format, truncate: spec.truncate as usize, label };
        std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                writer.run(rx, std::io::BufWriter::new(file));
                drop(counted);
            })
            .map_err(|e| format!("writer thread: {e}"))?;
        let dropped = Arc::new(AtomicU64::new(0));
        let sink = Sink { tx: tx.clone(), epoch: (Instant::now(), SystemTime::now()), dropped: dropped.clone() };
        Ok((Capture { tx, format: spec.format, file: name, dropped }, sink))
    }

    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// The file's name as Janus reports it (`folder/filename`).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Ends the capture; the answer comes once what was queued is in the file.
    pub fn stop(self) -> oneshot::Receiver<()> {
        let (ack, done) = oneshot::channel();
        match self.tx.try_send(ToWriter::Close(Some(ack))) {
            // Behind a full queue the close waits on a thread of its own, not on the room's.
            Err(TrySendError::Full(close)) => {
                let tx = self.tx.clone();
                let _ = std::thread::Builder::new().name("capture-close".into()).spawn(move || tx.send(close));
            }
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
        }
        done
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(file = %self.file, dropped, "capture left packets out (its writer fell behind)");
        }
        // After `stop` the writer ends at the close `stop` sent: this one comes after it, or
        // finds no one.
        let _ = self.tx.try_send(ToWriter::Close(None));
    }
}

/// One of the [`MAX_CAPTURES`] places, given back when dropped (a capture that failed to start,
/// or its writer's end).
struct Counted;

impl Counted {
    fn take() -> Option<Self> {
        let before = OPEN.fetch_add(1, Ordering::AcqRel);
        let taken = Counted;
        (before < MAX_CAPTURES).then_some(taken)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The file for `spec`, opened to append (a new pcap file gets its header), and its name.
fn open(spec: &CaptureSpec, protected: &[PathBuf]) -> Result<(std::fs::File, String), String> {
    let spec = spec.clone().named();
    if let Some(folder) = &spec.folder {
        std::fs::create_dir_all(folder).map_err(|e| format!("creating {folder}: {e}"))?;
    }
    let path = spec.path();
    if in_protected(Path::new(&path), protected) {
        return Err(format!("{path} is in a protected folder"));
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| format!("opening {path}: {e}"))?;
    let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(false);
    // Janus writes a header on every start, which breaks a file appended to; one is enough.
    if spec.format == CaptureFormat::Pcap && empty {
        file.write_all(&pcap_header()).map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok((file, path))
}

/// Makes the capture's file (its folder, a pcap header) and closes it: a capture asked for a
/// handle in no room, which its room writes to later.
pub fn prepare(spec: &CaptureSpec, protected: &[PathBuf]) -> Result<(), String> {
    open(spec, protected).map(drop)
}

/// Whether `path` resolves (its folder's links followed) into one of the `protected` folders.
fn in_protected(path: &Path, protected: &[PathBuf]) -> bool {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(resolved) = std::fs::canonicalize(folder) else { return true };
    protected.iter().any(|p| resolved.starts_with(p))
}

/// A capture's file writer.
struct Writer {
    format: CaptureFormat,
    /// Bytes of each packet kept (0: all).
    truncate: usize,
    /// `[session=S][handle=H]`, ending each text line.
    label: String,
}

impl Writer {
    fn run(&self, rx: mpsc::Receiver<ToWriter>, mut file: std::io::BufWriter<std::fs::File>) {
        let mut out = Vec::with_capacity(4096);
        let mut failed = false;
        loop {
            match rx.recv_timeout(FLUSH_EVERY) {
                Ok(ToWriter::Packet(r)) => {
                    if failed {
                        continue;
                    }
                    out.clear();
                    self.encode(&r, &mut out);
                    if let Err(e) = file.write_all(&out) {
                        tracing::warn!(error = %e, "capture stopped writing");
                        failed = true;
                    }
                }
                Ok(ToWriter::Close(ack)) => {
                    let _ = file.flush();
                    if let Some(ack) = ack {
                        let _ = ack.send(());
                    }
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = file.flush();
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = file.flush();
                    return;
                }
            }
        }
    }

    fn encode(&self, r: &Record, out: &mut Vec<u8>) {
        let kept = if self.truncate > 0 { r.bytes.len().min(self.truncate) } else { r.bytes.len() };
        let since = r.at.duration_since(UNIX_EPOCH).unwrap_or_default();
        match self.format {
            CaptureFormat::Pcap => pcap_packet(out, since, r.incoming, &r.bytes, kept),
            CaptureFormat::Text2pcap => {
                // (Janus names them by its enum's names.)
                let kind = match r.kind {
                    Kind::Rtp => "JANUS_TEXT2PCAP_RTP",
                    Kind::Rtcp => "JANUS_TEXT2PCAP_RTCP",
                };
                let day = local_time_of_day(since.as_secs());
                text_line(out, (day, since.subsec_micros()), r.incoming, &r.bytes[..kept], kind, &self.label);
            }
        }
    }
}

/// libpcap's global header: version 2.4, no time zone, snap length 65535, Ethernet.
fn pcap_header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&65535u32.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h
}

/// A pcap record: the packet's time, then its first `kept` bytes in a made-up frame whose
/// lengths are the whole packet's.
fn pcap_packet(out: &mut Vec<u8>, since_epoch: Duration, incoming: bool, packet: &[u8], kept: usize) {
    let len = packet.len();
    for v in [
        since_epoch.as_secs() as u32,
        since_epoch.subsec_micros(),
        (FRAME_HEADERS + kept) as u32,
        (FRAME_HEADERS + len) as u32,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    // Ethernet: no addresses, IPv4.
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&0x0800u16.to_be_bytes());
    let (from, to) = if incoming { (1u8, 2u8) } else { (2, 1) };
    // IPv4: 20 bytes, don't fragment, TTL 64, UDP, no checksum.
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&((28 + len) as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    out.extend_from_slice(&[10, from, from, from, 10, to, to, to]);
    // UDP: 1000 <-> 2000, no checksum.
    let (sport, dport) = if incoming { (1000u16, 2000u16) } else { (2000, 1000) };
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&((8 + len) as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&packet[..kept]);
}

/// The local time of day (seconds since midnight) at `secs` since the epoch, as Janus's
/// `localtime` gives it (UTC if the time zone cannot be read).
fn local_time_of_day(secs: u64) -> u64 {
    let t = secs as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value; `localtime_r` reads `t` and writes only `tm`,
    // both live locals (and, unlike `localtime`, keeps no shared state).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return secs % 86_400;
    }
    (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec) as u64
}

/// A text2pcap line: `I|O HH:MM:SS.micros 000000  b1 b2 ... KIND [session=S][handle=H]`, at
/// `(day, micros)`: the local time of day in seconds, and the microseconds.
fn text_line(out: &mut Vec<u8>, (day, micros): (u64, u32), incoming: bool, bytes: &[u8], kind: &str, label: &str) {
    let _ = write!(
        out,
        "{} {:02}:{:02}:{:02}.{:06} 000000 ",
        if incoming { "I" } else { "O" },
        day / 3600,
        day / 60 % 60,
        day % 60,
        micros
    );
    for b in bytes {
        let _ = write!(out, " {b:02x}");
    }
    let _ = write!(out, " {kind} {label}\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pcap_packet_is_framed_as_janus_frames_it() {
        let mut out = Vec::new();
        pcap_packet(&mut out, Duration::new(1_700_000_000, 5_000), true, &[0x80, 0x60, 1, 2, 3], 3);
        assert_eq!(out.len(), 16 + FRAME_HEADERS + 3);
        let word = |i: usize| u32::from_le_bytes(out[i..i + 4].try_into().unwrap());
        assert_eq!((word(0), word(4), word(8), word(12)), (1_700_000_000, 5, 45, 47), "time, kept and whole lengths");
        let ip = &out[16 + 14..16 + 34];
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 33, "IP length: the whole packet's");
        assert_eq!(&ip[12..20], &[10, 1, 1, 1, 10, 2, 2, 2], "inbound: 10.1.1.1 to 10.2.2.2");
        let udp = &out[16 + 34..16 + 42];
        assert_eq!(udp, &[0x03, 0xe8, 0x07, 0xd0, 0, 13, 0, 0], "1000 to 2000, UDP length 8 + 5");
        assert_eq!(&out[16 + 42..], &[0x80, 0x60, 1], "the first 3 bytes kept");
        out.clear();
        pcap_packet(&mut out, Duration::ZERO, false, &[9], 1);
        assert_eq!(&out[16 + 26..16 + 34], &[10, 2, 2, 2, 10, 1, 1, 1], "outbound: the reverse");
    }

    #[test]
    fn the_pcap_header_is_libpcap_2_4_on_ethernet() {
        let h = pcap_header();
        assert_eq!(&h[..8], &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
        assert_eq!(&h[16..], &[0xff, 0xff, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn a_text_line_is_janus_s() {
        let mut out = Vec::new();
        text_line(
            &mut out,
            (3600 + 2 * 60 + 3, 42),
            false,
            &[0x80, 0xc8, 0x0a],
            "JANUS_TEXT2PCAP_RTCP",
            "[session=1][handle=2]",
        );
        let line = "O 01:02:03.000042 000000  80 c8 0a JANUS_TEXT2PCAP_RTCP [session=1][handle=2]\r\n";
        assert_eq!(String::from_utf8(out).unwrap(), line);
    }

    fn rtp(seq: u16, now: Instant) -> TaggedPacket {
        use rtc::interceptor::AttributedPacket;
        let header = rtc::rtp::header::Header { version: 2, sequence_number: seq, ssrc: 7, ..Default::default() };
        let p = Packet::Rtp(rtc::rtp::Packet { header, payload: vec![seq as u8; 10].into() });
        TaggedPacket { now, transport: Default::default(), message: AttributedPacket::new(p) }
    }

    #[tokio::test]
    async fn a_tap_captures_only_while_switched_on_and_the_stop_answers_once_it_is_written() {
        let dir = std::env::temp_dir().join(format!("portunus-capture-tap-{}", std::process::id()));
        let spec = CaptureSpec {
            format: CaptureFormat::Text2pcap,
            folder: Some(dir.display().to_string()),
            filename: Some("t.txt".into()),
            truncate: 14,
        };
        let (switch, rx) = watch::channel(None);
        let mut tap = CaptureTap::new(rx);
        let now = Instant::now();
        assert!(tap.seen(true, &rtp(1, now)), "off: nothing written");
        let (capture, sink) = Capture::start(&spec, &[], 11, 22).expect("started");
        assert!(tally().0 >= 1, "counted open");
        switch.send_replace(Some(sink));
        tap.seen(true, &rtp(2, now));
        // A PeerConnection built while the capture runs (a publisher's next) captures at once.
        let mut later = CaptureTap::new(switch.subscribe());
        later.seen(false, &rtp(3, now + Duration::from_millis(5)));
        tokio::time::timeout(Duration::from_secs(5), capture.stop()).await.expect("answered").expect("written");
        tap.seen(true, &rtp(4, now));
        let text = std::fs::read_to_string(dir.join("t.txt")).unwrap();
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 2, "{text}");
        let fields = |l: &str| l.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let (a, b) = (fields(lines[0]), fields(lines[1]));
        assert_eq!((a[0].as_str(), b[0].as_str()), ("I", "O"));
        assert_eq!(a[2..5], ["000000", "", "80"], "{text}");
        // 12 header bytes (sequence 2) and 2 of the payload: truncated to 14.
        assert_eq!(a[4..18].join(" "), "80 00 00 02 00 00 00 00 00 00 00 07 02 02", "{text}");
        assert_eq!(a[18..], ["JANUS_TEXT2PCAP_RTP", "[session=11][handle=22]"]);
        drop(switch);
        assert!(!tap.seen(true, &rtp(5, now)), "the switch gone: the tap is done");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn captures_are_refused_in_protected_folders_and_kept_where_asked() {
        let protected = [PathBuf::from("/etc"), PathBuf::from("/var")];
        assert!(in_protected(Path::new("/etc/x.pcap"), &protected));
        assert!(in_protected(Path::new("/var/tmp/x.pcap"), &protected));
        assert!(!in_protected(Path::new("/tmp/x.pcap"), &[PathBuf::from("/tm")]), "a folder, not a prefix");
        assert!(in_protected(Path::new("/no/such/folder/x.pcap"), &[]), "a folder that cannot be resolved");
        let dir = std::env::temp_dir().join(format!("portunus-capture-{}", std::process::id()));
        let spec = |filename: &str| CaptureSpec {
            format: CaptureFormat::Pcap,
            folder: Some(dir.join("a/b").display().to_string()),
            filename: Some(filename.into()),
            truncate: 0,
        };
        let (_, name) = open(&spec("x.pcap"), &protected).expect("a new folder in /tmp");
        assert_eq!(name, format!("{}/a/b/x.pcap", dir.display()));
        assert_eq!(std::fs::read(&name).unwrap(), pcap_header(), "a new file starts with the header");
        open(&spec("x.pcap"), &protected).expect("appended to");
        let mut refused = spec("y.pcap");
        refused.folder = Some(dir.display().to_string());
        let err = open(&refused, &[std::fs::canonicalize(&dir).unwrap()]).unwrap_err();
        assert!(err.contains("protected"), "{err}");
        assert!(!dir.join("y.pcap").exists());
        assert_eq!(std::fs::read(&name).unwrap().len(), 24, "and keeps one header");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
