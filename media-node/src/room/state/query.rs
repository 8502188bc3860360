//! What the room knows of one handle, as Janus's VideoRoom answers the Admin API's
//! `handle_info` (`plugin_specific`, the plugin's `query_session`).

use super::{RoomState, Slot, Who};
use serde_json::{json, Map, Value};

impl RoomState {
    /// `plugin_specific` for `who`; `None` when the handle is not in this room.
    pub fn query(&self, who: Who) -> Option<Value> {
        let mut info = Map::new();
        let room = self.config.room.clone();
        match self.slots.get(&who)? {
            Slot::Publisher(id) => {
                let p = self.participants.get(id)?;
                info.insert("type".into(), "publisher".into());
                info.insert("room".into(), room.into());
                info.insert("id".into(), id.0.clone().into());
                info.insert("private_id".into(), p.private_id.0.clone().into());
                if let Some(d) = &p.display {
                    info.insert("display".into(), d.clone().into());
                }
                info.insert("bitrate".into(), self.config.bitrate.into());
                let streams: Vec<Value> = p
                    .published
                    .iter()
                    .flat_map(|pb| pb.streams.iter())
                    .map(|s| {
                        let subscribers = self
                            .subscriptions
                            .values()
                            .flat_map(|sub| sub.streams.iter())
                            .filter(|st| st.active && st.feed_who == who && st.feed_mid == s.mid)
                            .count();
                        let mut m = json!({"type": s.kind, "mindex": s.mindex, "mid": s.mid});
                        if let Some(c) = &s.codec {
                            m["codec"] = c.clone().into();
                        }
                        if !s.rids.is_empty() {
                            m["simulcast"] = true.into();
                            m["rids"] = s.rids.clone().into();
                        }
                        m["subscribers"] = subscribers.into();
                        m
                    })
                    .collect();
                info.insert("streams".into(), streams.into());
            }
            Slot::Subscriber => {
                let sub = self.subscriptions.get(&who)?;
                info.insert("type".into(), "subscriber".into());
                info.insert("room".into(), room.into());
                info.insert("answered".into(), (!sub.awaiting_answer).into());
                info.insert("pending_offer".into(), sub.deferred.is_some().into());
                info.insert("pending_restart".into(), sub.restart_pending.into());
                let streams: Vec<Value> = sub.streams.iter().map(|s| s.entry()).collect();
                info.insert("streams".into(), streams.into());
            }
            Slot::Gone => {
                info.insert("type".into(), "none".into());
            }
        }
        info.insert("hangingup".into(), 0.into());
        info.insert("destroyed".into(), 0.into());
        Some(Value::Object(info))
    }
}
