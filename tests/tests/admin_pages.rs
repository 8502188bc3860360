//! The admin pages in headless Chromium: Portunus's live cluster dashboard (`/dashboard` on the
//! admin port) while a room has a publisher and a subscriber, and the official Janus admin demo
//! page (Debian `janus-demos`, `admin.html`, unmodified) served by the gateway itself
//! (`demos_dir`), listing sessions and handles and opening a handle's info.

use portunus_tests::videoroom::publisher_and_subscriber;
use portunus_tests::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ADMIN_SECRET: &str = "janusoverlord";
const DEMOS: &str = "/usr/share/janus/demos";

fn need(path: &Path, install: &str) -> PathBuf {
    assert!(path.exists(), "{} is missing: {install} (tests/run.sh does this)", path.display());
    path.to_owned()
}

/// Runs `tests/js/admin_pages.js` with `args` (without blocking this thread's runtime, where
/// the test's publisher keeps sending) and returns its RESULT.
async fn run_page(args: &[String]) -> Value {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let playwright =
        need(&here.join("js/node_modules/playwright-core"), "npm install --prefix tests/js playwright-core@1");
    let chromium = need(Path::new("/usr/bin/chromium"), "apt-get install chromium");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("node")
            .arg(here.join("js/admin_pages.js"))
            .args(args)
            .arg(&playwright)
            .arg(&chromium)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the page finished within 60 s")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT; stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr)));
    let v: Value = serde_json::from_str(line).expect("RESULT is JSON");
    assert_eq!(v["ok"], true, "{v}");
    v
}

/// Where a test keeps what it made for people to look at (the target folder's `test-artifacts`).
fn artifacts() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts folder");
    dir
}

#[actix_web::test]
async fn the_dashboard_shows_nodes_rooms_and_live_streams() {
    let mut cfg = test_config();
    cfg.admin_secret = Some(ADMIN_SECRET.into());
    let server = TestServer::with(cfg);
    let (mut p, _sws, _ssid, _sub, _sh) = publisher_and_subscriber(&server.ws_url).await;
    // The publisher keeps sending while the page looks.
    let sending = tokio::task::spawn_local(async move {
        for _ in 0..1500 {
            p.peer.send().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let shot = artifacts().join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let v = run_page(&[
        "dashboard".into(),
        format!("{}/dashboard", server.admin_url),
        ADMIN_SECRET.into(),
        shot.display().to_string(),
    ])
    .await;
    sending.abort();
    let shown = &v["shown"];
    let node = if cluster_backend() { "node-1" } else { "local" };
    assert_eq!(shown["nodes"], serde_json::json!([{"node": node, "state": "serving"}]), "{v}");
    let room = shown["rooms"].as_array().unwrap().iter().find(|r| r["room"] == 1234).unwrap_or_else(|| panic!("{v}"));
    assert_eq!(room["node"], node, "{v}");
    let publisher = &room["publishers"][0];
    let streams = publisher["streams"].as_array().unwrap_or_else(|| panic!("{v}"));
    let kinds: Vec<&str> = streams.iter().map(|s| s["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["audio", "video"], "{v}");
    assert!(streams.iter().all(|s| s["kbps"].as_u64() > Some(0)), "a live bitrate per stream: {v}");
    assert_eq!(room["subscribers"].as_array().map(Vec::len), Some(1), "{v}");
    assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000), "a screenshot is kept: {}", shot.display());
    eprintln!("dashboard screenshot: {}", shot.display());
}

#[actix_web::test]
async fn the_janus_admin_demo_page_lists_sessions_and_opens_a_handle() {
    need(&Path::new(DEMOS).join("admin.html"), "apt-get install janus-demos");
    let mut cfg = test_config();
    cfg.admin_secret = Some(ADMIN_SECRET.into());
    cfg.demos_dir = Some(DEMOS.into());
    let server = TestServer::with(cfg);
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let hid = ws.attach(sid).await;
    ws.message_event(
        sid,
        hid,
        serde_json::json!({"request": "join", "room": 1234, "ptype": "publisher", "display": "alice"}),
    )
    .await;
    // The settings the gateway writes for the demos point at itself.
    let (status, settings) = get_text(&format!("{}/demos/adminconfig.js", server.http_url)).await;
    assert_eq!(status, 200);
    assert!(settings.contains("/admin\""), "{settings}");
    let (status, _) = get_text(&format!("{}/demos/../Cargo.toml", server.http_url)).await;
    assert_eq!(status, 404, "nothing outside the folder");
    let v = run_page(&[
        "janus-admin".into(),
        format!("{}/demos/admin.html", server.http_url),
        ADMIN_SECRET.into(),
        sid.to_string(),
        hid.to_string(),
    ])
    .await;
    let shown = &v["shown"];
    assert!(shown["serverName"].as_str().is_some_and(|s| s.contains("Portunus")), "server info shown: {v}");
    assert!(shown["sessions"].as_array().unwrap().iter().any(|s| s == &Value::from(sid.to_string())), "{v}");
    assert_eq!(shown["handles"], serde_json::json!([hid.to_string()]), "{v}");
    assert_eq!(shown["raw"]["handle_id"], hid, "the handle's info, as JSON: {v}");
    let ps: Vec<&str> = shown["pluginSpecific"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(ps.contains(&"type: publisher") && ps.contains(&"room: 1234") && ps.contains(&"display: alice"), "{v}");
    assert!(shown["info"].as_str().is_some_and(|i| i.contains("janus.plugin.videoroom")), "{v}");
    // The page's one script error is its own: with tokens off it disables the tokens tab with a
    // selector jQuery 3 refuses (`a[href=#tokens]`), whatever the server.
    let errors: Vec<&Value> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e.as_str().unwrap_or("").contains("a[href=#tokens]"))
        .collect();
    assert!(errors.is_empty(), "no other script errors on the page: {v}");
}
