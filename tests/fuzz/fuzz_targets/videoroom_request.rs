//! VideoRoom bodies: the request parser (with and without an admin key) and room creation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media_node::shared::ids::RoomId;
use media_node::shared::janus::request::PluginBody;
use media_node::shared::janus::videoroom::{self as vr, RoomConfig, SyncRequest, VideoRoomRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let body = PluginBody::from_map(map.clone());
    for policy in [vr::Policy::default(), vr::Policy::new(Some("supersecret"), true, false), vr::Policy::new(None, false, true)] {
        match vr::parse_request(&body, policy) {
            Ok(VideoRoomRequest::Sync(SyncRequest::Create { room, config, .. })) => {
                let _ = RoomConfig::from_create(&config, room.unwrap_or(RoomId::num(1)));
            }
            Ok(_) => {}
            Err(e) => {
                let _ = vr::error(&e);
            }
        }
    }
});
