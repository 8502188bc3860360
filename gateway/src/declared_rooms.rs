//! The rooms the configuration declares (and Janus's demo room 1234 unless disabled): created
//! at start, and created again whenever the store has lost them (a Redis restarted without
//! persistence), which a mark in the store tells: it is set once the rooms are there and goes
//! with everything else. A declared room destroyed through the API stays destroyed, as in Janus.

use shared::config::Config;
use shared::ids::{JanusId, RoomId};
use shared::janus::videoroom::RoomConfig;
use shared::store::{Store, StoreError};
use shared::Backends;

/// How often each gateway looks for the mark.
pub const CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Creates the declared rooms and sets the mark. A room that already exists is left as it is.
pub async fn seed_rooms(cfg: &Config, store: &dyn Store) -> Result<(), String> {
    let mut rooms = Vec::new();
    if cfg.demo_room {
        let mut demo = RoomConfig::demo_room();
        // Janus's sample configuration names it "1234" under `string_ids`.
        if cfg.string_ids {
            demo.room = RoomId(JanusId::Text(demo.room.to_string().into()));
        }
        rooms.push(demo);
    }
    for spec in &cfg.rooms {
        let id = match spec.get("room") {
            Some(serde_json::Value::String(s)) if cfg.string_ids && !s.is_empty() => JanusId::Text(s.as_str().into()),
            Some(v) if !cfg.string_ids && v.as_u64().is_some_and(|r| r > 0) => JanusId::Num(v.as_u64().unwrap_or(0)),
            _ if cfg.string_ids => return Err("every [[rooms]] entry needs a string `room` (string_ids)".into()),
            _ => return Err("every [[rooms]] entry needs a positive integer `room`".into()),
        };
        let room = RoomConfig::from_create(spec, RoomId(id.clone())).map_err(|e| format!("room {id}: {}", e.reason))?;
        rooms.push(room);
    }
    for room in rooms {
        let id = room.room.clone();
        match store.create_room(room, usize::MAX).await {
            Ok(()) => tracing::info!(room = %id, "room declared by configuration"),
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(format!("room {id}: {e}")),
        }
    }
    store.mark_seeded().await.map_err(|e| format!("seed mark: {e}"))
}

/// Creates the declared rooms again when the store has lost its mark; runs for the process's life.
pub async fn keep_rooms(cfg: Config, b: Backends) {
    let mut tick = tokio::time::interval(CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Ok(false) = b.store.seeded().await {
            tracing::warn!("the state store lost the declared rooms; creating them again");
            if let Err(e) = seed_rooms(&cfg, &*b.store).await {
                tracing::warn!(error = %e, "declared rooms not created yet");
            }
        }
    }
}
