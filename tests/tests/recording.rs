//! Recordings in Janus's `.mjr` format: a publisher sending real VP8 and Opus (encoded by
//! ffmpeg, `tests/src/clip.rs`) is recorded, `janus-pp-rec` (Debian `janus-tools`) turns the
//! files into `.webm` and `.opus` as it does Janus's own, and ffprobe decodes them: the frames
//! sent, and the audio as long as the publishing. Recording switched on by the publisher
//! (`configure` `record`/`filename`) and by the room (`enable_recording`), and `lock_record`.

use portunus_tests::clip::{Clip, ClipSender, FPS};
use portunus_tests::videoroom::{publishing, Publishing};
use portunus_tests::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SECONDS: u32 = 4;

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("portunus-{name}-{}-{}", std::process::id(), rand::random::<u32>()))
}

fn need(path: &str, install: &str) {
    assert!(Path::new(path).exists(), "{path} is missing: {install} (tests/run.sh does this)");
}

/// Sends the clip in real time (a frame every 40 ms).
async fn send_clip(p: &Publishing, sender: &mut ClipSender) {
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / u64::from(FPS)));
    while sender.tick(&p.peer).await {
        tick.tick().await;
    }
}

/// `janus-pp-rec source target`, then ffprobe's decoded frame count and duration of `target`.
fn post_process(mjr: &Path, target: &Path) -> (u64, f64) {
    let out = Command::new("janus-pp-rec").arg(mjr).arg(target).output().expect("janus-pp-rec runs");
    assert!(
        out.status.success() && target.exists(),
        "janus-pp-rec {}: {}",
        mjr.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames:format=duration", "-of", "json"])
        .arg(target)
        .output()
        .expect("ffprobe runs");
    let v: Value = serde_json::from_slice(&probe.stdout)
        .unwrap_or_else(|_| panic!("ffprobe: {}", String::from_utf8_lossy(&probe.stderr)));
    let frames = v["streams"][0]["nb_read_frames"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0);
    let duration = v["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0);
    (frames, duration)
}

fn server(rec_dir: &Path, tweak: impl FnOnce(&mut shared::config::Config)) -> TestServer {
    let mut cfg = test_config();
    cfg.rec_dir = rec_dir.display().to_string();
    cfg.admin_secret = Some("janusoverlord".into());
    tweak(&mut cfg);
    TestServer::with(cfg)
}

#[actix_web::test]
async fn a_recording_janus_pp_rec_converts_and_ffprobe_decodes() {
    need("/usr/bin/janus-pp-rec", "apt-get install janus-tools");
    let dir = temp("rec");
    let clip = Clip::make(&dir.join("clip"), SECONDS);
    let server = server(&dir, |_| {});
    let mut p = publishing(&server.ws_url).await;
    while p.ws.try_recv(Duration::from_millis(100)).await.is_some() {}
    // Recording starts with the `configured` answer (and a keyframe asked for).
    let r =
        p.ws.message_event(p.sid, p.handle, json!({"request": "configure", "record": true, "filename": "meeting"}))
            .await;
    assert_eq!(r["plugindata"]["data"]["configured"], "ok", "{r}");
    let mut sender = ClipSender::new(clip);
    send_clip(&p, &mut sender).await;
    let sent = sender.frames_sent() as u64;
    // Unpublishing closes the files.
    while p.ws.try_recv(Duration::from_millis(100)).await.is_some() {}
    p.ws.message_event(p.sid, p.handle, json!({"request": "unpublish"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (video, audio) = (dir.join("meeting-video-1.mjr"), dir.join("meeting-audio-0.mjr"));
    assert!(
        video.exists() && audio.exists(),
        "one .mjr per stream in {}: {:?}",
        dir.display(),
        std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
    let (frames, _) = post_process(&video, &dir.join("meeting.webm"));
    assert!(frames * 10 >= sent * 9 && frames <= sent, "{frames} of {sent} video frames decoded");
    let (_, duration) = post_process(&audio, &dir.join("meeting.opus"));
    assert!((duration - f64::from(SECONDS)).abs() < 0.5, "audio lasts {duration} s, published {SECONDS} s");
    eprintln!("recorded: {frames}/{sent} video frames decoded, {duration:.2} s of audio");
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_web::test]
async fn enable_recording_records_everyone_and_lock_record_needs_the_secret() {
    let dir = temp("rec-room");
    let server = server(&dir, |c| {
        let mut room = serde_json::Map::new();
        room.insert("room".into(), json!(4321));
        room.insert("secret".into(), json!("roomsecret"));
        room.insert("lock_record".into(), json!(true));
        c.rooms.push(room);
    });
    // The demo room: `enable_recording` with its secret.
    let mut p = publishing(&server.ws_url).await;
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    let on = ws
        .message(sid, h, json!({"request": "enable_recording", "room": 1234, "secret": "adminpwd", "record": true}))
        .await;
    assert_eq!(on["plugindata"]["data"], json!({"videoroom": "success", "record": true}), "{on}");
    for _ in 0..25 {
        p.peer.send().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let files = || -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().map_or(0, |m| m.len())))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let recorded = files();
    let prefix = format!("videoroom-1234-user-{}-", p.feed);
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert!(recorded.iter().all(|(n, _)| n.starts_with(&prefix) && n.ends_with(".mjr")), "Janus's names: {recorded:?}");
    let off = ws
        .message(sid, h, json!({"request": "enable_recording", "room": 1234, "secret": "adminpwd", "record": false}))
        .await;
    assert_eq!(off["plugindata"]["data"]["record"], false, "{off}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let closed = files();
    for _ in 0..25 {
        p.peer.send().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(files(), closed, "nothing written after recording stopped");
    let wrong = ws
        .message(sid, h, json!({"request": "enable_recording", "room": 1234, "secret": "nope", "record": true}))
        .await;
    assert_eq!(wrong["plugindata"]["data"]["error_code"], 433, "{wrong}");

    // A room with lock_record: a publisher's own `record` needs the room secret.
    let h2 = ws.attach(sid).await;
    ws.message_event(sid, h2, json!({"request": "join", "room": 4321, "ptype": "publisher"})).await;
    let locked = ws.message_event(sid, h2, json!({"request": "configure", "record": true})).await;
    assert_eq!(locked["plugindata"]["data"]["error_code"], 429, "the secret is missing: {locked}");
    let wrong = ws.message_event(sid, h2, json!({"request": "configure", "record": true, "secret": "nope"})).await;
    assert_eq!(wrong["plugindata"]["data"]["error"], "Unauthorized (wrong secret)", "{wrong}");
    let ok = ws.message_event(sid, h2, json!({"request": "configure", "record": true, "secret": "roomsecret"})).await;
    assert_eq!(ok["plugindata"]["data"]["configured"], "ok", "{ok}");
    let _ = std::fs::remove_dir_all(&dir);
}
