//! Changes to a running subscription: `switch` (other sources for some m-lines, no
//! renegotiation), `update` (streams subscribed and unsubscribed, one renegotiation), and a
//! subscriber's `configure` (pause, layers, playout delay, a restart or a renegotiation).

use super::subscription::{delay_of, too_many_streams, Simulcast, SubStream, SwitchSource, MAX_SUBSCRIPTION_MLINES};
use super::{check_mids, err, MediaAction, Outcome, Participant, Published, RoomState, Who};
use shared::ids::ParticipantId;
use shared::janus::errors::{VideoRoomCode, VideoRoomError};
use shared::janus::videoroom::{Configure, Switch, SwitchStream, Update, VideoRoomEvent as Event};
use shared::media::{MediaKind, Mid};

impl RoomState {
    /// `switch`: new sources for some of the subscriber's m-lines, same kind and codec, no
    /// renegotiation. Every entry is checked before any is applied (Janus's order); entries
    /// naming an unknown `sub_mid`, another kind or codec, or an inactive m-line (which would need
    /// a renegotiation) are skipped and not counted in `changes`.
    pub(super) fn switch(&mut self, who: Who, txn: &str, sw: Switch) -> Result<Outcome, VideoRoomError> {
        let no_feed = |feed: ParticipantId| err(VideoRoomCode::NoSuchFeed, format!("No such feed ({feed})"));
        let published = |feed: ParticipantId| -> Result<(&Participant, &Published), VideoRoomError> {
            let p = self.participants.get(&feed).ok_or_else(|| no_feed(feed.clone()))?;
            Ok((p, p.published.as_ref().ok_or_else(|| no_feed(feed))?))
        };
        let wanted = match sw.legacy_feed {
            None => sw.streams,
            Some(feed) => {
                // The deprecated form: each of the publisher's streams onto the first unused
                // subscription stream of the same kind and codec.
                let (_, pubd) = published(feed.clone())?;
                let mut used = Vec::new();
                let mut list = Vec::new();
                for ps in pubd.streams.iter().filter(|s| s.kind != MediaKind::Data) {
                    let codec = ps.codec.clone().unwrap_or_default();
                    let target = self.subscriptions.get(&who).and_then(|sub| {
                        sub.streams.iter().find(|s| s.kind == ps.kind && s.codec == codec && !used.contains(&s.mindex))
                    });
                    if let Some(t) = target {
                        used.push(t.mindex);
                        list.push(SwitchStream {
                            feed: feed.clone(),
                            mid: ps.mid.clone(),
                            sub_mid: t.mid.clone(),
                            layers: Default::default(),
                        });
                    }
                }
                if list.is_empty() {
                    return Err(err(VideoRoomCode::InvalidElement, "Empty switch list"));
                }
                list
            }
        };
        for w in &wanted {
            let (_, pubd) = published(w.feed.clone())?;
            if !pubd.streams.iter().any(|s| s.mid == w.mid) {
                return Err(err(VideoRoomCode::NoSuchFeed, format!("No such mid '{}' in feed ({})", w.mid, w.feed)));
            }
        }
        let mut sources = Vec::new();
        let sub = self.subscriptions.get_mut(&who).ok_or_else(|| err(VideoRoomCode::JoinFirst, "Not a subscriber"))?;
        for w in &wanted {
            let Some(s) = sub.streams.iter_mut().find(|s| s.mid == w.sub_mid && s.active && s.kind != MediaKind::Data)
            else {
                continue;
            };
            let Some(p) = self.participants.get(&w.feed) else { continue };
            let Some(ps) = p.published.as_ref().and_then(|pb| pb.streams.iter().find(|x| x.mid == w.mid)) else {
                continue;
            };
            if ps.kind != s.kind || ps.codec.as_deref().unwrap_or_default() != s.codec {
                continue;
            }
            s.feed = w.feed.clone();
            s.feed_who = p.who;
            s.feed_mid = ps.mid.clone();
            // Layers start over with the new source (Janus resets its simulcast context).
            s.simulcast = Simulcast::of(ps, &w.layers);
            let simulcast = s.simulcast;
            sources.push(SwitchSource { mindex: s.mindex, feed_who: p.who, feed_mid: ps.mid.clone(), simulcast });
        }
        let streams = self.listings(who);
        let ev = Event::Switched { room: self.config.room.clone(), changes: sources.len(), streams };
        let mut out = Outcome::default().notice(who, Some(txn), ev);
        if !sources.is_empty() {
            out.media.push(MediaAction::Switch { who, sources });
        }
        Ok(out)
    }

    /// `subscribe`, `unsubscribe`, `update`: streams made inactive and streams added (on an
    /// inactive m-line of the same kind and codec when there is one, as Janus; else a new one),
    /// then one new offer.
    /// Subscriptions are checked before anything changes; with no change, `updated` without an
    /// offer.
    pub(super) fn update_subscription(&mut self, who: Who, txn: &str, upd: Update) -> Result<Outcome, VideoRoomError> {
        let mut wanted = Vec::new();
        for w in &upd.subscribe {
            let no_feed = || err(VideoRoomCode::NoSuchFeed, format!("No such feed ({})", w.feed));
            let p = self.participants.get(&w.feed).ok_or_else(no_feed)?;
            let published = p.published.as_ref().ok_or_else(no_feed)?;
            if let Some(mid) = &w.mid {
                if !published.streams.iter().any(|s| &s.mid == mid) {
                    return Err(err(VideoRoomCode::NoSuchFeed, format!("No such mid '{mid}' in feed ({})", w.feed)));
                }
            }
            for s in published.streams.iter() {
                if w.mid.as_ref().is_none_or(|m| *m == s.mid) {
                    let name = w.crossrefid.clone();
                    wanted.push((w.feed.clone(), p.who, s.clone(), w.layers, w.delay, name));
                }
            }
        }
        let sub = self.subscriptions.get_mut(&who).ok_or_else(|| err(VideoRoomCode::JoinFirst, "Not a subscriber"))?;
        // Counted as if each stream asked for took a new m-line (some may take over inactive
        // ones), before anything changes.
        let asked = wanted.iter().filter(|w| w.2.kind != MediaKind::Data).count();
        if sub.streams.len() + asked > MAX_SUBSCRIPTION_MLINES {
            return Err(too_many_streams(sub.streams.len() + asked));
        }
        let mut inactive = Vec::new();
        let mut data_removed = Vec::new();
        for u in &upd.unsubscribe {
            // A publisher's data leaves the shared data m-line, which stays.
            for s in sub.streams.iter_mut().filter(|s| s.kind == MediaKind::Data) {
                let before = s.sources.len();
                match (&u.sub_mid, u.feed.clone()) {
                    (Some(sub_mid), _) if *sub_mid == s.mid => s.sources.clear(),
                    (None, Some(feed)) => s.sources.retain(|(id, _)| *id != feed),
                    _ => {}
                }
                if s.sources.len() != before {
                    data_removed.push(u.feed.clone());
                }
            }
            for s in sub.streams.iter_mut().filter(|s| s.active && s.kind != MediaKind::Data) {
                let hit = match (&u.sub_mid, u.feed.clone()) {
                    (Some(sub_mid), _) => *sub_mid == s.mid,
                    (None, Some(feed)) => feed == s.feed && u.mid.as_ref().is_none_or(|m| *m == s.feed_mid),
                    (None, None) => false,
                };
                if hit {
                    s.active = false;
                    inactive.push(s.mindex);
                }
            }
        }
        let mut added = Vec::new();
        let mut data_added = Vec::new();
        for (feed, feed_who, s, layers, delay, crossrefid) in wanted {
            if s.kind == MediaKind::Data {
                if !data_added.iter().any(|(id, _)| *id == feed) {
                    data_added.push((feed, feed_who));
                }
                continue;
            }
            let codec = s.codec.clone().unwrap_or_default();
            // An inactive m-line of the same kind and codec is taken over (Janus reuses them, so
            // a subscription's SDP does not grow with every change); else a new one.
            let reuse = sub.streams.iter().position(|x| !x.active && x.kind == s.kind && x.codec == codec);
            let mindex = reuse.unwrap_or(sub.streams.len());
            let stream = SubStream {
                mindex,
                mid: reuse.map_or_else(|| Mid::from(mindex.to_string()), |i| sub.streams[i].mid.clone()),
                kind: s.kind,
                codec,
                feed,
                feed_who,
                feed_mid: s.mid.clone(),
                crossrefid,
                active: true,
                ready: false,
                send: true,
                simulcast: Simulcast::of(&s, &layers),
                delay: delay_of(s.kind, &delay),
                sources: Vec::new(),
            };
            match reuse {
                Some(i) => {
                    sub.streams[i] = stream.clone();
                    // Made inactive by this same request, and taken again: it just changes source.
                    inactive.retain(|m| *m != i);
                }
                None => sub.streams.push(stream.clone()),
            }
            added.push(stream);
        }
        let mut out = Outcome::default();
        // More data sources: onto the data m-line if there is one (no renegotiation, as Janus),
        // else a new one after the new media.
        data_added.retain(|(id, _)| {
            !sub.streams.iter().any(|s| s.kind == MediaKind::Data && s.sources.iter().any(|(x, _)| x == id))
        });
        if !data_added.is_empty() {
            match sub.streams.iter_mut().find(|s| s.kind == MediaKind::Data) {
                Some(d) => {
                    d.sources.extend(data_added.iter().cloned());
                    out.media.push(MediaAction::AddData { who, sources: data_added.clone() });
                }
                None => {
                    let d = SubStream::data(sub.streams.len(), data_added.clone());
                    sub.streams.push(d.clone());
                    added.push(d);
                }
            }
        }
        if !data_removed.is_empty() {
            let ids = data_removed.into_iter().flatten().collect::<Vec<_>>();
            out.media.push(MediaAction::RemoveData { who, feeds: ids });
        }
        // A stopped publisher's m-lines not yet offered (`autoupdate` off) are a change too.
        if inactive.is_empty() && added.is_empty() && sub.skipped.is_empty() {
            return Ok(out.notice(who, Some(txn), Event::Updated { room: self.config.room.clone(), streams: None }));
        }
        sub.renegotiate(who, self.config.room.clone(), Some(txn), (inactive, added), false, &mut out);
        Ok(out)
    }

    /// A subscriber's `configure`: which streams are sent. Every named mid is checked before
    /// anything changes; a stream sent again restarts on a keyframe with its sequence unbroken.
    pub(super) fn configure_subscription(
        &mut self,
        who: Who,
        txn: &str,
        c: Configure,
    ) -> Result<Outcome, VideoRoomError> {
        let sub = self.subscriptions.get_mut(&who).ok_or_else(|| err(VideoRoomCode::JoinFirst, "Not a subscriber"))?;
        check_mids(&c, |m| sub.streams.iter().any(|s| s.mid == m), |m| format!("No such mid '{m}' in subscription"))?;
        // The deprecated audio/video flags count only when no entry names a mid (as in Janus).
        let legacy = !c.streams.iter().any(|e| e.mid.is_some());
        let mut sends = Vec::new();
        let mut layers = Vec::new();
        let mut delays = Vec::new();
        let mut confirmed = Vec::new();
        let room = self.config.room.clone();
        for s in sub.streams.iter_mut() {
            let before = s.send;
            let by_kind = match s.kind {
                MediaKind::Audio => c.audio,
                MediaKind::Video => c.video,
                MediaKind::Data => None,
            };
            if let (true, Some(v)) = (legacy, by_kind) {
                s.send = v;
            }
            for e in c.streams.iter().filter(|e| e.mid.as_ref().is_none_or(|m| *m == s.mid)) {
                if let Some(v) = e.send {
                    s.send = v;
                }
                if s.kind == MediaKind::Video && !e.delay.is_empty() {
                    s.delay.apply(e.delay.min, e.delay.max);
                    delays.push((s.mindex, s.delay.bytes()));
                }
                if let Some(sc) = s.simulcast.as_mut().filter(|_| !e.layers.is_empty()) {
                    if sc.svc {
                        // A layer already relayed is confirmed at once (Janus); the forwarder
                        // announces the others when it reaches them.
                        let met = |asked: Option<u8>, now: i8| asked.is_some_and(|l| l as i8 == now).then_some(now);
                        let layer = |spatial, temporal| Event::Layer {
                            room: room.clone(),
                            mid: s.mid.clone(),
                            svc: true,
                            spatial,
                            temporal,
                        };
                        if let Some(now) = met(e.layers.spatial_layer, sc.substream) {
                            confirmed.push(layer(Some(now), None));
                        }
                        if let Some(now) = met(e.layers.temporal_layer, sc.temporal) {
                            confirmed.push(layer(None, Some(now)));
                        }
                    }
                    sc.apply(&e.layers);
                    // Announced again even when unchanged, as Janus confirms a target already met.
                    layers.push((s.mindex, *sc));
                }
            }
            if s.send != before {
                sends.push((s.mindex, s.send));
            }
        }
        let mut out = Outcome::default();
        for ev in confirmed {
            out = out.notice(who, None, ev);
        }
        if c.restart {
            // `configured` comes with the ICE-restart offer (see `renegotiated`); with an offer
            // unanswered, the restart waits for the answer and Janus says nothing now.
            sub.renegotiate(who, room, Some(txn), Default::default(), true, &mut out);
            out.notices.retain(|n| !matches!(n.data, Event::Updating { .. }));
        } else {
            out = out.notice(who, Some(txn), Event::Configured { room, publication: None });
        }
        if !sends.is_empty() {
            out.media.push(MediaAction::Send { who, streams: sends });
        }
        if !layers.is_empty() {
            out.media.push(MediaAction::Layers { who, streams: layers });
        }
        if !delays.is_empty() {
            out.media.push(MediaAction::Delays { who, streams: delays });
        }
        Ok(out)
    }
}
