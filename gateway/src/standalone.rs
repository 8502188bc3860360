//! Standalone mode: one process, in-memory backends, the media node running in-process and
//! reached through the same bus as in a cluster.

use shared::config::Config;
use shared::ids::RoomId;
use shared::janus::videoroom::RoomConfig;
use shared::store::StoreError;
use shared::Backends;

/// Creates the rooms the configuration declares (and Janus's demo room 1234 unless disabled).
/// A room that already exists is left as it is.
pub async fn seed_rooms(cfg: &Config, b: &Backends) -> Result<(), String> {
    let mut rooms = Vec::new();
    if cfg.demo_room {
        rooms.push(RoomConfig::demo_room());
    }
    for spec in &cfg.rooms {
        let id = spec
            .get("room")
            .and_then(serde_json::Value::as_u64)
            .filter(|r| *r > 0)
            .ok_or_else(|| "every [[rooms]] entry needs a positive integer `room`".to_owned())?;
        let room = RoomConfig::from_create(spec, RoomId(id)).map_err(|e| format!("room {id}: {}", e.reason))?;
        rooms.push(room);
    }
    for room in rooms {
        let id = room.room;
        match b.store.create_room(room, usize::MAX).await {
            Ok(()) => tracing::info!(room = %id, "room declared by configuration"),
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(format!("room {id}: {e}")),
        }
    }
    Ok(())
}
