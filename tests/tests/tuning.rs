//! The media knobs the Admin API turns while the cluster runs (`set_no_media_timer`,
//! `set_slowlink_threshold`, `set_min_nack_queue`, `set_nack_optimizations`): in effect at once
//! on media already flowing, reported by `get_status` on every gateway, and taken from the store
//! by a media node that starts later. (Their answers beside Janus's: `admin_janus.rs`; what each
//! knob does to a stream: the media node's unit tests.)

use portunus_tests::videoroom::{publishing, Publishing};
use portunus_tests::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ADMIN_SECRET: &str = "janusoverlord";

fn with_admin_secret() -> shared::config::Config {
    let mut cfg = test_config();
    cfg.admin_secret = Some(ADMIN_SECRET.into());
    cfg
}

async fn admin(server: &TestServer, req: Value) -> Value {
    admin_post(&format!("{}/admin", server.admin_url), "t", ADMIN_SECRET, req).await
}

async fn status(server: &TestServer) -> Value {
    admin(server, json!({"janus": "get_status"})).await["status"].clone()
}

/// Sends for half a second, then goes silent: how long until both m-lines are reported as not
/// receiving (`None`: not within `within`).
async fn silence_noticed(p: &mut Publishing, within: Duration) -> Option<Duration> {
    for _ in 0..25 {
        p.peer.send().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let silent_since = Instant::now();
    let mut stopped = 0;
    while stopped < 2 {
        let left = within.checked_sub(silent_since.elapsed())?;
        let m = p.ws.try_recv(left).await?;
        if m["janus"] == "media" && m["receiving"] == false {
            stopped += 1;
        }
    }
    Some(silent_since.elapsed())
}

/// In both modes (`PORTUNUS_TEST_BACKEND=redis`: the knob crosses Redis to the media node).
#[actix_web::test]
async fn a_knob_turned_applies_to_media_already_flowing_and_get_status_reports_it() {
    let server = TestServer::with(with_admin_secret());
    let defaults =
        json!({"min_nack_queue": 500, "nack-optimizations": false, "no_media_timer": 1, "slowlink_threshold": 0});
    let knobs = |s: &Value| {
        json!({"min_nack_queue": s["min_nack_queue"], "nack-optimizations": s["nack-optimizations"],
        "no_media_timer": s["no_media_timer"], "slowlink_threshold": s["slowlink_threshold"]})
    };
    assert_eq!(knobs(&status(&server).await), defaults, "the configuration's");
    let mut p = publishing(&server.ws_url).await;
    let noticed = silence_noticed(&mut p, Duration::from_secs(5)).await.expect("the default timer");
    assert!(noticed < Duration::from_millis(1800), "Janus's 1 s: {noticed:?}");

    let r = admin(&server, json!({"janus": "set_no_media_timer", "no_media_timer": 3})).await;
    assert_eq!(r, json!({"janus": "success", "transaction": "t", "no_media_timer": 3}));
    let noticed = silence_noticed(&mut p, Duration::from_secs(8)).await.expect("the new timer");
    assert!(noticed > Duration::from_millis(2800) && noticed < Duration::from_millis(4500), "3 s: {noticed:?}");

    admin(&server, json!({"janus": "set_no_media_timer", "no_media_timer": 0})).await;
    assert_eq!(silence_noticed(&mut p, Duration::from_millis(2500)).await, None, "0: never");

    for (verb, field, value) in [
        ("set_slowlink_threshold", "slowlink_threshold", json!(8)),
        ("set_min_nack_queue", "min_nack_queue", json!(250)),
        ("set_nack_optimizations", "nack_optimizations", json!(true)),
    ] {
        let r = admin(&server, json!({"janus": verb, field: value})).await;
        assert_eq!(r["janus"], "success", "{verb}: {r}");
    }
    let expected =
        json!({"min_nack_queue": 250, "nack-optimizations": true, "no_media_timer": 0, "slowlink_threshold": 8});
    assert_eq!(knobs(&status(&server).await), expected);
}

/// Cluster: a knob turned on one gateway before any media node runs is reported by another
/// gateway, and a node that starts afterwards reads it from the store.
#[actix_web::test]
async fn a_node_started_after_a_knob_was_turned_takes_it_from_the_store() {
    let redis = RedisServer::start();
    let g1 = TestServer::cluster(with_admin_secret(), &redis.url());
    let g2 = TestServer::cluster(with_admin_secret(), &redis.url());
    let r = admin(&g1, json!({"janus": "set_no_media_timer", "no_media_timer": 3})).await;
    assert_eq!(r["no_media_timer"], 3, "{r}");
    assert_eq!(status(&g2).await["no_media_timer"], 3, "the other gateway reads the store");
    let _node = TestNode::start_with(with_admin_secret(), &redis.url(), "node-1");
    let mut p = publishing(&g2.ws_url).await;
    let noticed = silence_noticed(&mut p, Duration::from_secs(8)).await.expect("the stored timer");
    assert!(noticed > Duration::from_millis(2800) && noticed < Duration::from_millis(4500), "3 s: {noticed:?}");
}
