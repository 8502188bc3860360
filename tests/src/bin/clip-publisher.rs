//! A webrtc-rs publisher of real video for the browser tests: joins a room as `display`,
//! publishes an ffmpeg test pattern (VP8, 320x240, and an Opus tone) with the video
//! orientation extension, upright for the first `upright` seconds and then turned 90°
//! (RFC 7742's R1R0 = 01), until the clip ends.
//!
//!   portunus-clip-publisher <ws-url> <room> <display> <seconds> <upright-seconds>
//!
//! Prints `PUBLISHING <feed id>` once connected and `TURNED` when the orientation changes.

use portunus_tests::clip::{Clip, ClipSender, FPS};
use portunus_tests::peer::Offering;
use portunus_tests::videoroom::publishing_in;
use std::time::Duration;

#[actix_web::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ws, room, display, seconds, upright] = args.as_slice() else {
        eprintln!("usage: portunus-clip-publisher <ws-url> <room> <display> <seconds> <upright-seconds>");
        std::process::exit(2);
    };
    let number = |s: &str| s.parse::<u32>().unwrap_or_else(|_| panic!("not a number: {s}"));
    let (room, seconds, upright) = (number(room), number(seconds), number(upright));
    let dir = std::env::temp_dir().join(format!("portunus-clip-{}", std::process::id()));
    let clip = Clip::make(&dir, seconds);
    let offering = Offering { orientation: true, ..Offering::default() };
    let (mut p, _answer) = publishing_in(ws, u64::from(room), display, offering).await;
    assert!(p.peer.orientation_ext().is_some(), "the room did not negotiate the video orientation extension");
    println!("PUBLISHING {}", p.feed);
    let mut sender = ClipSender::new(clip);
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / u64::from(FPS)));
    loop {
        tick.tick().await;
        if sender.frames_sent() as u32 == upright * FPS && p.peer.orientation == 0 {
            p.peer.orientation = 0b01;
            println!("TURNED");
        }
        if !sender.tick(&p.peer).await {
            break;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
