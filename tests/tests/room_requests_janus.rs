//! The VideoRoom's room requests compared live with a real Janus 1.1.2: a room created with
//! most of its settings, then `list`, `exists`, `edit` (every `new_*` field), `allowed` (each
//! action), `listparticipants`, `moderate`, `enable_recording`, `kick` and `destroy`, with
//! their errors, answered as Janus answers them.

use portunus_tests::janus_oracle::{beside_janus, data, placeholders, Conn};
use serde_json::{json, Value};

const ROOM: u64 = 4242;

/// The same requests on one server; each answer's plugin data.
async fn run(url: &str) -> Vec<(String, Value)> {
    let mut c = Conn::open(url).await;
    let h = c.attach().await;
    let mut out = Vec::new();
    let create = json!({"request": "create", "room": ROOM, "description": "All settings", "secret": "s",
        "pin": "p", "is_private": false, "allowed": ["tok1"], "require_pvtid": true, "signed_tokens": false,
        "publishers": 7, "bitrate": 256000, "bitrate_cap": true, "fir_freq": 10, "audiocodec": "opus,pcmu",
        "videocodec": "vp8,h264", "opus_fec": true, "opus_dtx": true, "audiolevel_ext": true,
        "audiolevel_event": true, "audio_active_packets": 50, "audio_level_average": 40, "videoorient_ext": false,
        "playoutdelay_ext": false, "transport_wide_cc_ext": true, "record": false, "rec_dir": "/tmp",
        "lock_record": true, "notify_joining": true, "require_e2ee": false, "dummy_publisher": false});
    let requests: Vec<(&str, Value)> = vec![
        ("create", create),
        ("list", json!({"request": "list"})),
        ("exists", json!({"request": "exists", "room": ROOM})),
        ("exists (no such room)", json!({"request": "exists", "room": 999_999})),
        ("edit without the secret", json!({"request": "edit", "room": ROOM, "new_description": "x"})),
        (
            "edit",
            json!({"request": "edit", "room": ROOM, "secret": "s", "new_description": "Edited", "new_is_private": false,
            "new_secret": "s2", "new_pin": "p2", "new_require_pvtid": false, "new_bitrate": 128000,
            "new_fir_freq": 5, "new_publishers": 3, "new_lock_record": false, "new_rec_dir": "/var/tmp",
            "permanent": false}),
        ),
        ("list after edit", json!({"request": "list"})),
        ("allowed list", json!({"request": "allowed", "room": ROOM, "secret": "s2", "action": "list"})),
        (
            "allowed add",
            json!({"request": "allowed", "room": ROOM, "secret": "s2", "action": "add", "allowed": ["tok2"]}),
        ),
        (
            "allowed remove",
            json!({"request": "allowed", "room": ROOM, "secret": "s2", "action": "remove", "allowed": ["tok1"]}),
        ),
        ("allowed disable", json!({"request": "allowed", "room": ROOM, "secret": "s2", "action": "disable"})),
        ("allowed enable", json!({"request": "allowed", "room": ROOM, "secret": "s2", "action": "enable"})),
        ("allowed bad action", json!({"request": "allowed", "room": ROOM, "secret": "s2", "action": "juggle"})),
        ("allowed add without a list", json!({"request": "allowed", "room": ROOM, "secret": "s2", "action": "add"})),
        ("listparticipants", json!({"request": "listparticipants", "room": ROOM})),
        (
            "moderate no such participant",
            json!({"request": "moderate", "room": ROOM, "secret": "s2", "id": 5, "mid": "0", "mute": true}),
        ),
        ("enable_recording", json!({"request": "enable_recording", "room": ROOM, "secret": "s2", "record": true})),
        ("enable_recording without record", json!({"request": "enable_recording", "room": ROOM, "secret": "s2"})),
        ("kick no such participant", json!({"request": "kick", "room": ROOM, "secret": "s2", "id": 5})),
        ("destroy with the old secret", json!({"request": "destroy", "room": ROOM, "secret": "s"})),
        ("destroy", json!({"request": "destroy", "room": ROOM, "secret": "s2"})),
        ("exists after destroy", json!({"request": "exists", "room": ROOM})),
    ];
    for (what, body) in requests {
        let mut answer = data(&c.request(h, body, None).await);
        let Some(o) = answer.as_object_mut() else { panic!("{what}: {answer}") };
        // Only this test's room: the servers' default rooms differ.
        if let Some(Value::Array(list)) = o.get_mut("list") {
            list.retain(|r| r["room"] == ROOM);
        }
        // Janus keeps the tokens in a hash table: their order is its table's.
        if let Some(Value::Array(tokens)) = o.get_mut("allowed") {
            tokens.sort_by_key(|t| t.as_str().unwrap_or_default().to_owned());
        }
        out.push((what.to_owned(), placeholders(answer, &[])));
    }
    out
}

#[actix_web::test]
async fn room_requests_answer_as_janus() {
    beside_janus("", |_| {}, |url| async move { run(&url).await }).await;
}
