//! What the room knows of one handle, as Janus's VideoRoom answers the Admin API's
//! `handle_info` (`plugin_specific`, the plugin's `query_session`).

use super::{RoomState, Slot, Who};
use shared::janus::videoroom::{HandleInfo, PublishedStreamInfo};

impl RoomState {
    /// `plugin_specific` for `who`; `None` when the handle is not in this room.
    pub fn query(&self, who: Who) -> Option<HandleInfo> {
        let room = self.config.room.clone();
        Some(match self.slots.get(&who)? {
            Slot::Publisher(id) => {
                let p = self.participants.get(id)?;
                let streams = p
                    .published
                    .iter()
                    .flat_map(|pb| pb.streams.iter())
                    .map(|s| PublishedStreamInfo {
                        kind: s.kind,
                        mindex: s.mindex,
                        mid: s.mid.clone(),
                        codec: s.codec.clone(),
                        rids: s.rids.clone(),
                        subscribers: self
                            .subscriptions
                            .values()
                            .flat_map(|sub| sub.streams.iter())
                            .filter(|st| st.active && st.feed_who == who && st.feed_mid == s.mid)
                            .count(),
                    })
                    .collect();
                HandleInfo::Publisher {
                    room,
                    id: id.clone(),
                    private_id: p.private_id.clone(),
                    display: p.display.clone(),
                    bitrate: self.config.bitrate,
                    streams,
                }
            }
            Slot::Subscriber => {
                let sub = self.subscriptions.get(&who)?;
                HandleInfo::Subscriber {
                    room,
                    answered: !sub.awaiting_answer,
                    pending_offer: sub.deferred.is_some(),
                    pending_restart: sub.restart_pending,
                    paused: None,
                    streams: self.listings(who),
                }
            }
            Slot::Gone => HandleInfo::None,
        })
    }
}
