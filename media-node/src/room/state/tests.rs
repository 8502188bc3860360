use super::*;
use crate::media::sdp::StreamInfo;
use crate::media::talk::TalkSettings;
use shared::ids::RoomId;
use shared::janus::videoroom::{
    AllowedAction, PublisherEntry, StreamSource, SubscriberStream, SwitchStream, Update, VideoRoomEvent as Event,
};
use shared::media::{MediaKind, Mid};

/// Room 5 with Janus's defaults, then `edit`.
fn room(edit: impl FnOnce(&mut RoomConfig)) -> RoomState {
    let mut cfg = RoomConfig::from_create(&Default::default(), RoomId::num(5)).unwrap();
    edit(&mut cfg);
    let mut n = 100;
    RoomState::with_ids(
        cfg,
        Box::new(move || {
            n += 1;
            n
        }),
    )
}

/// The test room's id.
fn r5() -> RoomId {
    RoomId::num(5)
}

fn pid(n: u64) -> ParticipantId {
    ParticipantId::num(n)
}

/// The error an event carries (a test failure if it is something else).
#[track_caller]
fn error_of(e: &Event) -> &VideoRoomError {
    match e {
        Event::Error(e) => e,
        other => panic!("not an error: {other:?}"),
    }
}

#[track_caller]
fn code_of(e: &Event) -> u16 {
    error_of(e).code as u16
}

/// The id `joined` gives.
#[track_caller]
fn joined_id(e: &Event) -> ParticipantId {
    match e {
        Event::Joined { id, .. } => id.clone(),
        other => panic!("not joined: {other:?}"),
    }
}

/// The publishers a `joined` or `publishers` event lists.
#[track_caller]
fn publishers_of(e: &Event) -> &[PublisherEntry] {
    match e {
        Event::Joined { publishers, .. } | Event::Publishers { publishers, .. } => publishers,
        other => panic!("no publishers: {other:?}"),
    }
}

/// The subscription streams an `attached`, `updated` or `switched` event lists.
#[track_caller]
fn streams_of(e: &Event) -> &[SubscriberStream] {
    match e {
        Event::Attached { streams, .. }
        | Event::Switched { streams, .. }
        | Event::Updated { streams: Some(streams), .. } => streams,
        other => panic!("no streams: {other:?}"),
    }
}

/// The publisher feeding a subscription stream.
#[track_caller]
fn feed_of(s: &SubscriberStream) -> (&ParticipantId, Option<&str>) {
    match &s.source {
        StreamSource::Feed { id, display, .. } => (id, display.as_deref()),
        other => panic!("no feed: {other:?}"),
    }
}

fn who(h: u64) -> Who {
    Who { session: SessionId(h * 10), handle: HandleId(h) }
}

fn join(display: &str) -> Result<AsyncRequest, VideoRoomError> {
    Ok(AsyncRequest::Join(Join {
        room: RoomId::num(5),
        pin: None,
        token: None,
        ptype: Ok(Ptype::Publisher(Ok(PublisherJoin {
            id: None,
            display: Some(display.into()),
            metadata: None,
            audio_active_packets: 0,
            audio_level_average: 0,
        }))),
    }))
}

#[test]
fn join_then_leave_notifies_the_others() {
    let mut r = room(|_| {});
    let a = r.on_async(who(1), "t1", AsyncName::Join, join("alice"), None);
    assert_eq!(a.notices.len(), 1);
    assert_eq!(joined_id(&a.notices[0].data), pid(101));
    assert_eq!(a.membership, vec![Membership::Joined(who(1))]);
    r.on_async(who(2), "t2", AsyncName::Join, join("bob"), None);
    assert_eq!(r.participant_count(), 2);
    let l = r.on_async(who(1), "t3", AsyncName::Leave, Ok(AsyncRequest::Leave), None);
    assert_eq!(
        l.notices[0],
        Notice {
            to: who(1),
            transaction: Some("t3".into()),
            data: Event::LeavingOk { room: r5(), kicked: false },
            jsep: None,
        }
    );
    assert_eq!(
        l.notices[1].data,
        Event::Departed {
            room: r5(),
            how: Departure::Leaving,
            id: pid(101),
            display: Some("alice".into()),
            metadata: None
        }
    );
    assert_eq!(l.notices[1].to, who(2));
    // Joining again on the same handle is refused like Janus.
    let again = r.on_async(who(1), "t4", AsyncName::Join, join("alice"), None);
    assert_eq!(code_of(&again.notices[0].data), 425);
}

#[test]
fn requests_before_join_and_double_join_fail() {
    let mut r = room(|_| {});
    let o = r.on_async(who(1), "t", AsyncName::Leave, Ok(AsyncRequest::Leave), None);
    assert_eq!(code_of(&o.notices[0].data), 424);
    r.on_async(who(1), "t", AsyncName::Join, join("a"), None);
    let o = r.on_async(who(1), "t", AsyncName::Join, join("a"), None);
    assert_eq!(error_of(&o.notices[0].data).reason, "Already in as a publisher on this handle");
}

#[test]
fn pin_allowed_list_and_id_conflicts_are_enforced() {
    let mut r = room(|c| {
        c.pin = Some("1234".into());
        (c.check_allowed, c.allowed) = (true, vec!["tok".into()]);
    });
    let mut j = |pin: Option<&str>, token: Option<&str>, id: Option<u64>| {
        let req = Ok(AsyncRequest::Join(Join {
            room: RoomId::num(5),
            pin: pin.map(Into::into),
            token: token.map(Into::into),
            ptype: Ok(Ptype::Publisher(Ok(PublisherJoin {
                id: id.map(ParticipantId::num),
                display: None,
                metadata: None,
                audio_active_packets: 0,
                audio_level_average: 0,
            }))),
        }));
        let h = rand_handle();
        r.on_async(who(h), "t", AsyncName::Join, req, None).notices[0].data.clone()
    };
    assert_eq!(error_of(&j(None, Some("tok"), None)).reason, "Missing mandatory element (pin)");
    assert_eq!(error_of(&j(Some("x"), Some("tok"), None)).reason, "Unauthorized (wrong pin)");
    assert_eq!(error_of(&j(Some("1234"), None, None)).reason, "Unauthorized (not in the allowed list)");
    assert_eq!(joined_id(&j(Some("1234"), Some("tok"), Some(7))), pid(7));
    assert_eq!(code_of(&j(Some("1234"), Some("tok"), Some(7))), 436);
}

fn rand_handle() -> u64 {
    shared::ids::random_id() % 1_000_000 + 10
}

#[test]
fn notify_joining_sends_joining_and_attendees() {
    let mut r = room(|c| c.notify_joining = true);
    r.on_async(who(1), "t", AsyncName::Join, join("alice"), None);
    let o = r.on_async(who(2), "t", AsyncName::Join, join("bob"), None);
    let alice = Attendee { id: pid(101), display: Some("alice".into()), metadata: None };
    assert!(matches!(&o.notices[0].data, Event::Joined { attendees: Some(a), .. } if *a == [alice]));
    assert_eq!(o.notices[1].to, who(1));
    let bob = Attendee { id: pid(103), display: Some("bob".into()), metadata: None };
    assert_eq!(o.notices[1].data, Event::Joining { room: r5(), who: bob });
}

#[test]
fn destroy_and_kick_check_the_secret() {
    let mut r = room(|c| c.secret = Some("s".into()));
    r.on_async(who(1), "t", AsyncName::Join, join("alice"), None);
    r.on_async(who(2), "t", AsyncName::Join, join("bob"), None);
    assert_eq!(r.kick(None, ParticipantId::num(101)).unwrap_err().code, VideoRoomCode::MissingElement);
    assert_eq!(r.kick(Some("x"), ParticipantId::num(101)).unwrap_err().code, VideoRoomCode::Unauthorized);
    assert_eq!(r.kick(Some("s"), ParticipantId::num(9)).unwrap_err().reason, "No such user 9 in room 5");
    let (reply, out) = r.kick(Some("s"), ParticipantId::num(101)).unwrap();
    assert_eq!(reply, Event::Success);
    assert_eq!(out.notices[0].data, Event::LeavingOk { room: r5(), kicked: true });
    let kicked = Event::Departed {
        room: r5(),
        how: Departure::Kicked,
        id: pid(101),
        display: Some("alice".into()),
        metadata: None,
    };
    assert_eq!(out.notices[1].data, kicked);
    let (reply, out) = r.destroy(Some("s"), false).unwrap();
    assert_eq!(reply, Event::Destroyed { room: r5(), permanent: Some(false) });
    let destroyed = Event::Destroyed { room: r5(), permanent: None };
    assert_eq!(out.notices, vec![Notice { to: who(2), transaction: None, data: destroyed, jsep: None }]);
}

fn offer() -> Jsep {
    Jsep::offer("v=0\r\n".into())
}

/// A publisher's audio (Opus, mid 0) and video (VP8, mid 1).
fn streams() -> Vec<StreamInfo> {
    let stream = |kind, mindex: usize, codec: &str, pt, clock_rate| StreamInfo {
        kind,
        mindex,
        mid: mindex.to_string().into(),
        codec: Some(codec.into()),
        pt: Some(pt),
        clock_rate: Some(clock_rate),
        rids: vec![],
        track_id: None,
        extensions: Default::default(),
        opus: Default::default(),
        description: None,
        disabled: false,
        svc: false,
        codecs: Vec::new(),
        fmtp: None,
    };
    vec![stream(MediaKind::Audio, 0, "opus", 111, 48_000), stream(MediaKind::Video, 1, "vp8", 96, 90_000)]
}

#[test]
fn publishing_announces_the_publisher_and_unpublishing_withdraws_it() {
    let mut r = room(|c| c.max_publishers = 1);
    r.on_async(who(1), "t", AsyncName::Join, join("alice"), None);
    r.on_async(who(2), "t", AsyncName::Join, join("bob"), None);
    let o = r.on_async(who(1), "p", AsyncName::Publish, Ok(AsyncRequest::Media(AsyncName::Publish)), Some(&offer()));
    assert!(matches!(&o.media[..], [MediaAction::Publish { who: w, .. }] if *w == who(1)));
    assert!(o.notices.is_empty(), "configured waits for the answer");
    // A second publisher exceeds the room's limit of one.
    let o2 = r.on_async(who(2), "q", AsyncName::Publish, Ok(AsyncRequest::Media(AsyncName::Publish)), Some(&offer()));
    assert_eq!(code_of(&o2.notices[0].data), 432);
    let answer = Jsep::answer("v=0\r\n".into());
    let o = r.published(who(1), "p", streams(), answer.clone());
    let Event::Configured { publication: Some(p), .. } = &o.notices[0].data else { panic!("{:?}", o.notices) };
    assert_eq!(p.video_codec.as_deref(), Some("vp8"));
    assert_eq!(o.notices[0].jsep, Some(answer));
    assert_eq!(o.notices[1].to, who(2));
    let announced = &publishers_of(&o.notices[1].data)[0];
    assert_eq!(announced.id, pid(101));
    assert_eq!(announced.publication.streams[1].mid, "1");
    // A late joiner sees the publisher in `joined`.
    let j = r.on_async(who(3), "t", AsyncName::Join, join("carol"), None);
    assert_eq!(publishers_of(&j.notices[0].data)[0].display.as_deref(), Some("alice"));
    let u = r.on_async(who(1), "u", AsyncName::Unpublish, Ok(AsyncRequest::Unpublish), None);
    assert_eq!(u.notices[0].data, Event::UnpublishedOk { room: r5() });
    assert!(matches!(&u.notices[1].data, Event::Departed { how: Departure::Unpublished, id, .. } if *id == pid(101)));
    assert_eq!(u.media, vec![MediaAction::Close { who: who(1) }]);
    let again = r.on_async(who(1), "u", AsyncName::Unpublish, Ok(AsyncRequest::Unpublish), None);
    assert_eq!(code_of(&again.notices[0].data), 435);
}

fn subscribe_to(feed: u64) -> Result<AsyncRequest, VideoRoomError> {
    subscribe_with(feed, false)
}

fn subscribe_with(feed: u64, use_msid: bool) -> Result<AsyncRequest, VideoRoomError> {
    subscribe_as(feed, |j| j.use_msid = use_msid)
}

/// A subscriber's join to all of `feed`, as `how` changes it.
fn subscribe_as(
    feed: u64,
    how: impl FnOnce(&mut shared::janus::videoroom::SubscriberJoin),
) -> Result<AsyncRequest, VideoRoomError> {
    let mut j = shared::janus::videoroom::SubscriberJoin {
        streams: vec![shared::janus::videoroom::SubscribeStream {
            feed: ParticipantId::num(feed),
            mid: None,
            crossrefid: None,
            layers: Default::default(),
            delay: Default::default(),
        }],
        use_msid: false,
        autoupdate: true,
        kinds_left_out: Vec::new(),
        legacy: false,
    };
    how(&mut j);
    Ok(AsyncRequest::Join(Join { room: RoomId::num(5), pin: None, token: None, ptype: Ok(Ptype::Subscriber(Ok(j))) }))
}

/// A room where alice (handle 1, id 101) publishes audio and video.
fn alice_publishing() -> RoomState {
    let mut r = room(|_| {});
    r.on_async(who(1), "t", AsyncName::Join, join("alice"), None);
    r.on_async(who(1), "p", AsyncName::Publish, Ok(AsyncRequest::Media(AsyncName::Publish)), Some(&offer()));
    let answer = Jsep::answer("v=0\r\n".into());
    r.published(who(1), "p", streams(), answer);
    r
}

#[test]
fn a_subscribers_m_lines_name_janus_or_with_use_msid_their_publisher_in_their_msid() {
    let mut r = alice_publishing();
    let o = r.on_async(who(2), "s", AsyncName::Join, subscribe_to(101), None);
    let [MediaAction::Subscribe { streams, .. }] = &o.media[..] else { panic!("{:?}", o.media) };
    let named: Vec<_> = streams.iter().map(|s| r.msid(who(2), s)).collect();
    assert_eq!(named, [("janus".into(), "janus0".into()), ("janus".into(), "janus1".into())]);
    let o = r.on_async(who(4), "s", AsyncName::Join, subscribe_with(101, true), None);
    let [MediaAction::Subscribe { streams, .. }] = &o.media[..] else { panic!("{:?}", o.media) };
    let named: Vec<_> = streams.iter().map(|s| r.msid(who(4), s)).collect();
    assert_eq!(named, [("101".into(), "0".into()), ("101".into(), "1".into())]);
}

/// Bob (handle 3) joins and publishes audio and video; returns his id.
fn bob_publishing(r: &mut RoomState) -> u64 {
    let joined = r.on_async(who(3), "t", AsyncName::Join, join("bob"), None);
    let bob = joined_id(&joined.notices[0].data).0.stable_u64();
    r.on_async(who(3), "p", AsyncName::Publish, Ok(AsyncRequest::Media(AsyncName::Publish)), Some(&offer()));
    let answer = Jsep::answer("v=0\r\n".into());
    r.published(who(3), "p", streams(), answer);
    bob
}

#[test]
fn a_subscriber_adds_and_removes_streams_with_one_new_offer_each_time() {
    use shared::janus::videoroom::{SubscribeStream, UnsubscribeStream};
    let mut r = alice_publishing();
    let bob = bob_publishing(&mut r);
    r.on_async(who(2), "s", AsyncName::Join, subscribe_to(101), None);
    r.started(who(2), "st");
    let update = |subscribe: Vec<SubscribeStream>, unsubscribe: Vec<UnsubscribeStream>| {
        Ok(AsyncRequest::Update(Update { subscribe, unsubscribe }))
    };
    // Subscribing to bob appends his two streams as new m-lines.
    let o = r.on_async(
        who(2),
        "u",
        AsyncName::Subscribe,
        update(
            vec![SubscribeStream {
                feed: ParticipantId::num(bob),
                mid: None,
                crossrefid: Some("bob".into()),
                layers: Default::default(),
                delay: Default::default(),
            }],
            vec![],
        ),
        None,
    );
    let [MediaAction::Renegotiate { who: w, transaction, inactive, added, .. }] = &o.media[..] else {
        panic!("{:?}", o.media)
    };
    assert_eq!((*w, transaction.as_deref(), inactive.len()), (who(2), Some("u"), 0));
    assert_eq!(
        added.iter().map(|s| (s.mindex, s.feed.clone())).collect::<Vec<_>>(),
        vec![(2, ParticipantId::num(bob)), (3, ParticipantId::num(bob))]
    );
    let offer_jsep = Jsep::offer("v=0\r\n".into());
    let up = r.renegotiated(who(2), Some("u"), offer_jsep);
    assert_eq!(up.notices[0].transaction.as_deref(), Some("u"));
    assert_eq!(streams_of(&up.notices[0].data).len(), 4);
    assert_eq!(*feed_of(&streams_of(&up.notices[0].data)[3]).0, pid(bob));
    // Listed with the name the subscriber gave them.
    let names: Vec<_> = streams_of(&up.notices[0].data).iter().map(|s| s.crossrefid.as_deref()).collect();
    assert_eq!(names, [None, None, Some("bob"), Some("bob")]);
    r.started(who(2), "st");
    // Unsubscribing alice's feed makes her m-lines inactive.
    let unsub_alice = UnsubscribeStream { feed: Some(ParticipantId::num(101)), mid: None, sub_mid: None };
    let o = r.on_async(who(2), "v", AsyncName::Unsubscribe, update(vec![], vec![unsub_alice]), None);
    assert!(
        matches!(&o.media[..], [MediaAction::Renegotiate { inactive, added, .. }] if *inactive == vec![0, 1] && added.is_empty()),
        "{:?}",
        o.media
    );
    r.renegotiated(who(2), Some("v"), Jsep::offer("v=0\r\n".into()));
    r.started(who(2), "st");
    // Subscribing to her again takes her old (inactive) m-lines back instead of adding two.
    let o = r.on_async(
        who(2),
        "r",
        AsyncName::Subscribe,
        update(
            vec![SubscribeStream {
                feed: ParticipantId::num(101),
                mid: None,
                crossrefid: None,
                layers: Default::default(),
                delay: Default::default(),
            }],
            vec![],
        ),
        None,
    );
    let [MediaAction::Renegotiate { inactive, added, .. }] = &o.media[..] else { panic!("{:?}", o.media) };
    assert!(inactive.is_empty());
    assert_eq!(
        added.iter().map(|s| (s.mindex, s.mid.as_str(), s.feed.clone())).collect::<Vec<_>>(),
        vec![(0, "0", ParticipantId::num(101)), (1, "1", ParticipantId::num(101))]
    );
    let up = r.renegotiated(who(2), Some("r"), Jsep::offer("v=0\r\n".into()));
    let streams = streams_of(&up.notices[0].data);
    assert_eq!(streams.len(), 4, "no new m-lines: {streams:?}");
    assert!(streams.iter().all(|s| s.active), "{streams:?}");
    // Nothing to change: `updated` without an offer.
    let none = UnsubscribeStream { feed: None, mid: None, sub_mid: Some("9".into()) };
    let o = r.on_async(who(2), "w", AsyncName::Unsubscribe, update(vec![], vec![none]), None);
    assert_eq!(o.notices[0].data, Event::Updated { room: r5(), streams: None });
    assert!(o.media.is_empty());
    // Unknown feeds are refused before anything changes.
    let o = r.on_async(
        who(2),
        "x",
        AsyncName::Update,
        update(
            vec![SubscribeStream {
                feed: ParticipantId::num(999),
                mid: None,
                crossrefid: None,
                layers: Default::default(),
                delay: Default::default(),
            }],
            vec![],
        ),
        None,
    );
    assert_eq!(error_of(&o.notices[0].data).reason, "No such feed (999)");
}

#[test]
fn when_a_publisher_goes_its_subscribers_get_inactive_streams_and_a_new_offer() {
    let mut r = alice_publishing();
    r.on_async(who(2), "s", AsyncName::Join, subscribe_to(101), None);
    let offer_jsep = Jsep::offer("v=0\r\n".into());
    let attached = r.subscribed(who(2), "s", offer_jsep.clone());
    assert!(streams_of(&attached.notices[0].data)[0].active);
    r.started(who(2), "st");
    // Unpublishing (as leaving, or a hangup) asks for the subscriber's renegotiation...
    let u = r.on_async(who(1), "u", AsyncName::Unpublish, Ok(AsyncRequest::Unpublish), None);
    let renegotiate = MediaAction::Renegotiate {
        who: who(2),
        transaction: None,
        inactive: vec![0, 1],
        added: vec![],
        restart: false,
    };
    assert!(u.media.contains(&renegotiate), "{:?}", u.media);
    assert!(u.notices.iter().all(|n| n.to != who(2)), "nothing for the subscriber before its offer");
    // ...and once the offer is ready, `updated` carries it with the streams inactive.
    let up = r.renegotiated(who(2), None, offer_jsep.clone());
    assert_eq!(up.notices[0].to, who(2));
    assert_eq!(up.notices[0].transaction, None);
    assert_eq!(up.notices[0].jsep, Some(offer_jsep));
    let inactive = |kind, mindex: usize| SubscriberStream {
        kind,
        active: false,
        mindex,
        mid: Mid::from(mindex.to_string()),
        crossrefid: None,
        ready: false,
        send: true,
        source: StreamSource::None,
    };
    let streams = vec![inactive(MediaKind::Audio, 0), inactive(MediaKind::Video, 1)];
    assert_eq!(up.notices[0].data, Event::Updated { room: r5(), streams: Some(streams) });
    // Nothing more to renegotiate when the gone publisher leaves too.
    let l = r.on_async(who(1), "l", AsyncName::Leave, Ok(AsyncRequest::Media(AsyncName::Leave)), None);
    assert!(!l.media.iter().any(|m| matches!(m, MediaAction::Renegotiate { .. })), "{:?}", l.media);
}

#[test]
fn without_autoupdate_a_stopped_publisher_waits_for_the_subscribers_next_update() {
    use shared::janus::videoroom::UnsubscribeStream;
    let mut r = alice_publishing();
    r.on_async(who(2), "s", AsyncName::Join, subscribe_as(101, |j| j.autoupdate = false), None);
    r.started(who(2), "st");
    let u = r.on_async(who(1), "u", AsyncName::Unpublish, Ok(AsyncRequest::Unpublish), None);
    assert!(!u.media.iter().any(|m| matches!(m, MediaAction::Renegotiate { .. })), "{:?}", u.media);
    // An update that changes nothing else offers them inactive now.
    let nothing = UnsubscribeStream { feed: Some(ParticipantId::num(999)), mid: None, sub_mid: None };
    let upd = Ok(AsyncRequest::Update(Update { subscribe: vec![], unsubscribe: vec![nothing.clone()] }));
    let o = r.on_async(who(2), "v", AsyncName::Unsubscribe, upd, None);
    let renegotiate = MediaAction::Renegotiate {
        who: who(2),
        transaction: Some("v".into()),
        inactive: vec![0, 1],
        added: vec![],
        restart: false,
    };
    assert_eq!(o.media, [renegotiate]);
    r.renegotiated(who(2), Some("v"), Jsep::offer("v=0\r\n".into()));
    r.started(who(2), "st");
    // Offered once: the next such update changes nothing.
    let upd = Ok(AsyncRequest::Update(Update { subscribe: vec![], unsubscribe: vec![nothing] }));
    let o = r.on_async(who(2), "w", AsyncName::Unsubscribe, upd, None);
    assert!(o.media.is_empty(), "{:?}", o.media);
}

#[test]
fn a_legacy_subscription_leaves_out_the_kinds_it_was_not_offered() {
    use shared::janus::videoroom::SubscriberJoin;
    let legacy = |j: &mut SubscriberJoin| {
        j.legacy = true;
        j.kinds_left_out = vec![MediaKind::Audio];
    };
    let mut r = alice_publishing();
    let o = r.on_async(who(2), "s", AsyncName::Join, subscribe_as(101, legacy), None);
    let [MediaAction::Subscribe { streams, .. }] = &o.media[..] else { panic!("{:?}", o.media) };
    assert_eq!(streams.iter().map(|s| (s.mindex, s.kind)).collect::<Vec<_>>(), [(0, MediaKind::Video)]);
    // Nothing left: Janus's error.
    let none = |j: &mut SubscriberJoin| j.kinds_left_out = vec![MediaKind::Audio, MediaKind::Video];
    let o = r.on_async(who(4), "s", AsyncName::Join, subscribe_as(101, none), None);
    assert_eq!(code_of(&o.notices[0].data), 437, "{:?}", o.notices);
}

#[test]
fn a_subscriber_switches_sources_without_renegotiating() {
    let mut r = alice_publishing();
    let bob = bob_publishing(&mut r);
    r.on_async(who(2), "s", AsyncName::Join, subscribe_to(101), None);
    let switch = |streams: Vec<(u64, &str, &str)>| {
        Ok(AsyncRequest::Switch(shared::janus::videoroom::Switch {
            streams: streams
                .into_iter()
                .map(|(feed, mid, sub_mid)| SwitchStream {
                    feed: ParticipantId::num(feed),
                    mid: mid.into(),
                    sub_mid: sub_mid.into(),
                    layers: Default::default(),
                })
                .collect(),
            legacy_feed: None,
        }))
    };
    // Errors are checked for every entry before anything changes.
    let e = r.on_async(who(2), "x", AsyncName::Switch, switch(vec![(bob, "1", "1"), (999, "0", "0")]), None);
    assert_eq!(error_of(&e.notices[0].data).reason, "No such feed (999)");
    let e = r.on_async(who(2), "x", AsyncName::Switch, switch(vec![(bob, "7", "1")]), None);
    assert_eq!(error_of(&e.notices[0].data).reason, format!("No such mid '7' in feed ({bob})"));
    assert!(e.media.is_empty());
    // Bob's video onto m-line 1; audio onto video's m-line is another kind and not counted.
    let o = r.on_async(who(2), "y", AsyncName::Switch, switch(vec![(bob, "1", "1"), (bob, "0", "1")]), None);
    let d = &o.notices[0].data;
    assert!(matches!(d, Event::Switched { changes: 1, .. }), "{d:?}");
    assert_eq!(*feed_of(&streams_of(d)[0]).0, pid(101), "audio stays alice's");
    assert_eq!(feed_of(&streams_of(d)[1]), (&pid(bob), Some("bob")));
    assert_eq!(
        o.media,
        vec![MediaAction::Switch {
            who: who(2),
            sources: vec![SwitchSource { mindex: 1, feed_who: who(3), feed_mid: "1".into(), simulcast: None }]
        }]
    );
    // The deprecated form: all of a publisher's streams.
    let legacy = Ok(AsyncRequest::Switch(shared::janus::videoroom::Switch {
        streams: vec![],
        legacy_feed: Some(ParticipantId::num(101)),
    }));
    let o = r.on_async(who(2), "z", AsyncName::Switch, legacy, None);
    assert!(matches!(o.notices[0].data, Event::Switched { changes: 2, .. }), "{:?}", o.notices);
    // Bob leaving now renegotiates nothing: no m-line is his any more.
    let l = r.on_async(who(3), "l", AsyncName::Leave, Ok(AsyncRequest::Leave), None);
    assert!(!l.media.iter().any(|m| matches!(m, MediaAction::Renegotiate { .. })), "{:?}", l.media);
}

#[test]
fn a_subscriber_holds_and_resumes_single_streams_with_configure() {
    use shared::janus::videoroom::{Configure, ConfigureStream};
    let mut r = alice_publishing();
    r.on_async(who(2), "s", AsyncName::Join, subscribe_to(101), None);
    let configure = |streams: Vec<(Option<&str>, Option<bool>)>, video: Option<bool>| {
        Ok(AsyncRequest::Configure(Configure {
            streams: streams
                .into_iter()
                .map(|(mid, send)| ConfigureStream { mid: mid.map(Mid::from), send, ..Default::default() })
                .collect(),
            video,
            ..Default::default()
        }))
    };
    let o = r.on_async(who(2), "c", AsyncName::Configure, configure(vec![(Some("1"), Some(false))], None), None);
    assert_eq!(o.notices[0].data, Event::Configured { room: r5(), publication: None });
    assert_eq!(o.media, vec![MediaAction::Send { who: who(2), streams: vec![(1, false)] }]);
    // Unchanged streams ask for nothing; the deprecated `video` flag resumes video.
    let o = r.on_async(who(2), "d", AsyncName::Configure, configure(vec![(None, None)], Some(true)), None);
    assert_eq!(o.media, vec![MediaAction::Send { who: who(2), streams: vec![(1, true)] }]);
    let e = r.on_async(who(2), "e", AsyncName::Configure, configure(vec![(Some("7"), Some(false))], None), None);
    assert_eq!(error_of(&e.notices[0].data).reason, "No such mid '7' in subscription");
    let e = r.on_async(
        who(2),
        "f",
        AsyncName::Configure,
        configure(vec![(None, Some(false)), (Some("1"), None)], None),
        None,
    );
    assert_eq!(code_of(&e.notices[0].data), 430);
}

#[test]
fn a_subscription_lists_its_publishers_streams_as_they_are_described_now() {
    use shared::janus::videoroom::{Configure, Descriptions};
    let mut r = alice_publishing();
    r.on_async(who(2), "s", AsyncName::Join, subscribe_to(101), None);
    let described = |r: &RoomState| -> Vec<Option<String>> {
        r.listings(who(2))
            .into_iter()
            .map(|s| match s.source {
                StreamSource::Feed { description, .. } => description,
                other => panic!("a feed: {other:?}"),
            })
            .collect()
    };
    assert_eq!(described(&r), [None, None]);
    // Described after the subscription was made: its listings say so (Janus reads them live).
    let c =
        Configure { descriptions: Descriptions(Ok(vec![("1".into(), "front camera".into())])), ..Default::default() };
    r.on_async(who(1), "c", AsyncName::Configure, Ok(AsyncRequest::Configure(c)), None);
    assert_eq!(described(&r), [None, Some("front camera".to_owned())]);
}

#[test]
fn a_publisher_with_two_video_streams_holds_and_offers_each_by_mid() {
    use shared::janus::videoroom::{Configure, ConfigureStream};
    let mut r = room(|_| {});
    r.on_async(who(1), "t", AsyncName::Join, join("alice"), None);
    r.on_async(who(1), "p", AsyncName::Publish, Ok(AsyncRequest::Media(AsyncName::Publish)), Some(&offer()));
    let mut three = streams();
    three.push(StreamInfo { mindex: 2, mid: "2".into(), ..three[1].clone() });
    r.published(who(1), "p", three, Jsep::answer("v=0\r\n".into()));
    // A subscriber of the whole feed gets one m-line per published stream, each naming its mid.
    let o = r.on_async(who(2), "s", AsyncName::Join, subscribe_to(101), None);
    let MediaAction::Subscribe { streams: subscribed, .. } = &o.media[0] else { panic!("{:?}", o.media) };
    let feed_mids: Vec<(&str, MediaKind)> = subscribed.iter().map(|s| (s.feed_mid.as_str(), s.kind)).collect();
    assert_eq!(feed_mids, [("0", MediaKind::Audio), ("1", MediaKind::Video), ("2", MediaKind::Video)]);
    // `send: false` on the second video stream holds that one only.
    let c = Configure {
        streams: vec![ConfigureStream { mid: Some("2".into()), send: Some(false), ..Default::default() }],
        ..Default::default()
    };
    let o = r.on_async(who(1), "c", AsyncName::Configure, Ok(AsyncRequest::Configure(c)), None);
    assert_eq!(o.media, vec![MediaAction::Sending { who: who(1), mid: "2".into(), send: false }]);
    // The deprecated `video: false` holds both video streams.
    let c = Configure { video: Some(false), ..Default::default() };
    let o = r.on_async(who(1), "d", AsyncName::Configure, Ok(AsyncRequest::Configure(c)), None);
    let held: Vec<&str> = o
        .media
        .iter()
        .filter_map(|m| match m {
            MediaAction::Sending { mid, send: false, .. } => Some(mid.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(held, ["1", "2"]);
    // A moderator mutes the screen share alone.
    let (_, out) = r.moderate(None, ParticipantId::num(101), "2", true).unwrap();
    assert_eq!(out.media, vec![MediaAction::Mute { who: who(1), mid: "2".into(), muted: true }]);
}

#[test]
fn talking_is_announced_to_everyone_and_listed_as_janus_lists_it() {
    let mut r = room(|c| (c.audiolevel_event, c.audio_active_packets, c.audio_level_average) = (true, 50, 25));
    r.on_async(who(1), "t", AsyncName::Join, join("alice"), None);
    r.on_async(who(2), "t", AsyncName::Join, join("bob"), None);
    let o = r.on_async(who(1), "p", AsyncName::Publish, Ok(AsyncRequest::Media(AsyncName::Publish)), Some(&offer()));
    let MediaAction::Publish { talk, .. } = &o.media[0] else { panic!("{:?}", o.media) };
    assert_eq!(*talk, Some(TalkSettings { packets: 50, threshold: 25 }));
    let mut with_levels = streams();
    with_levels[0].extensions.audio_level = Some(1);
    with_levels[0].opus.fec = true;
    let out = r.published(who(1), "p", with_levels, Jsep::answer("v=0\r\n".into()));
    // `configured` and `publishers` show FEC but not talking.
    let Event::Configured { publication: Some(p), .. } = &out.notices[0].data else { panic!("{:?}", out.notices) };
    let audio = &p.streams[0];
    assert_eq!((audio.codec.as_deref(), audio.fec, audio.talking), (Some("opus"), true, None), "{audio:?}");
    let out = r.talking(who(1), &Mid::new("0"), true, 12.5);
    let expected =
        Event::Talking { room: r5(), id: pid(101), mindex: 0, mid: Mid::new("0"), talking: true, average: 12.5 };
    let told: Vec<Who> = out.notices.iter().map(|n| n.to).collect();
    assert_eq!(told.len(), 2, "the speaker and bob");
    assert!(told.contains(&who(1)) && told.contains(&who(2)));
    assert!(out.notices.iter().all(|n| n.data == expected), "{:?}", out.notices);
    // A newcomer's `joined` lists alice talking (the stream entry as Janus writes it).
    let joined = r.on_async(who(3), "t", AsyncName::Join, join("carol"), None);
    let alice = &publishers_of(&joined.notices[0].data)[0];
    assert_eq!(alice.talking, Some(true), "{alice:?}");
    assert_eq!(alice.publication.streams[0].talking, Some(false), "{alice:?}");
    let Event::Participants { participants, .. } = r.list_participants() else { panic!() };
    let alice = participants.iter().find(|p| p.id == pid(101)).unwrap();
    assert_eq!(alice.talking, Some(true));
    let out = r.talking(who(1), &Mid::new("0"), false, 80.0);
    assert!(matches!(out.notices[0].data, Event::Talking { talking: false, .. }), "{:?}", out.notices);
    // Its own settings win over the room's.
    let mut own = room(|c| (c.audiolevel_event, c.audio_level_average) = (true, 25));
    let j = AsyncRequest::Join(Join {
        room: RoomId::num(5),
        pin: None,
        token: None,
        ptype: Ok(Ptype::Publisher(Ok(PublisherJoin {
            id: None,
            display: None,
            metadata: None,
            audio_active_packets: 10,
            audio_level_average: 0,
        }))),
    });
    own.on_async(who(1), "t", AsyncName::Join, Ok(j), None);
    let o = own.on_async(who(1), "p", AsyncName::Publish, Ok(AsyncRequest::Media(AsyncName::Publish)), Some(&offer()));
    let MediaAction::Publish { talk, .. } = &o.media[0] else { panic!("{:?}", o.media) };
    assert_eq!(*talk, Some(TalkSettings { packets: 10, threshold: 25 }));
}

#[test]
fn a_moderator_mutes_a_publishers_stream_for_everyone() {
    let mut r = room(|c| c.secret = Some("s3".into()));
    r.on_async(who(1), "t", AsyncName::Join, join("alice"), None);
    r.on_async(who(1), "p", AsyncName::Publish, Ok(AsyncRequest::Media(AsyncName::Publish)), Some(&offer()));
    let answer = Jsep::answer("v=0\r\n".into());
    r.published(who(1), "p", streams(), answer);
    r.on_async(who(2), "t", AsyncName::Join, join("bob"), None);
    let e = r.moderate(Some("nope"), ParticipantId::num(101), "1", true).unwrap_err();
    assert_eq!(e.reason, "Unauthorized (wrong secret)");
    let e = r.moderate(Some("s3"), ParticipantId::num(999), "1", true).unwrap_err();
    assert_eq!(e.reason, "No such user 999 in room 5");
    let e = r.moderate(Some("s3"), ParticipantId::num(101), "7", true).unwrap_err();
    assert_eq!(e.reason, "No such stream 7");
    let (reply, out) = r.moderate(Some("s3"), ParticipantId::num(101), "1", true).unwrap();
    assert_eq!(reply, Event::Success);
    assert_eq!(out.media, vec![MediaAction::Mute { who: who(1), mid: "1".into(), muted: true }]);
    let expected = Event::Moderation { room: r5(), id: pid(101), mid: Mid::new("1"), muted: true };
    let to: Vec<Who> = out.notices.iter().map(|n| n.to).collect();
    assert!(to.contains(&who(1)) && to.contains(&who(2)), "everyone, the publisher too: {to:?}");
    assert!(out.notices.iter().all(|n| n.data == expected));
}

#[test]
fn a_subscriber_pauses_and_resumes() {
    let mut r = alice_publishing();
    let o = r.on_async(who(2), "s", AsyncName::Join, subscribe_to(101), None);
    assert!(matches!(&o.media[..], [MediaAction::Subscribe { streams, .. }] if streams.len() == 2));
    let p = r.on_async(who(2), "x", AsyncName::Pause, Ok(AsyncRequest::Media(AsyncName::Pause)), None);
    assert_eq!(p.notices[0].data, Event::Paused { room: r5() });
    assert_eq!(p.media, vec![MediaAction::Pause { who: who(2), paused: true }]);
    let s = r.on_async(who(2), "y", AsyncName::Start, Ok(AsyncRequest::Media(AsyncName::Start)), None);
    assert_eq!(s.notices[0].data, Event::Started { room: r5() });
    assert_eq!(s.media, vec![MediaAction::Pause { who: who(2), paused: false }]);
    let bad = r.on_async(who(3), "z", AsyncName::Join, subscribe_to(999), None);
    assert_eq!(error_of(&bad.notices[0].data).reason, "No such feed (999)");
}

#[test]
fn detach_makes_the_participant_leave() {
    let mut r = room(|_| {});
    r.on_async(who(1), "t", AsyncName::Join, join("alice"), None);
    r.on_async(who(2), "t", AsyncName::Join, join("bob"), None);
    let o = r.on_gone(who(2), GoneReason::Detached);
    assert_eq!(o.notices.len(), 1);
    assert_eq!(o.notices[0].to, who(1));
    assert!(matches!(&o.notices[0].data, Event::Departed { how: Departure::Leaving, id, .. } if *id == pid(103)));
    assert_eq!(r.participant_count(), 1);
    assert!(r.on_gone(who(1), GoneReason::Hangup).notices.is_empty());
}

#[test]
fn allowed_actions_edit_the_list() {
    let mut r = room(|_| {});
    let add = vec!["a".to_string(), "b".to_string()];
    let allowed =
        |list: &[&str]| Event::Allowed { room: r5(), allowed: Some(list.iter().map(|t| t.to_string()).collect()) };
    assert_eq!(r.allowed(None, AllowedAction::Add, Some(&add)).unwrap(), allowed(&["a", "b"]));
    assert_eq!(r.allowed(None, AllowedAction::Disable, None).unwrap(), Event::Allowed { room: r5(), allowed: None });
    let rm = vec!["a".to_string()];
    assert_eq!(r.allowed(None, AllowedAction::Remove, Some(&rm)).unwrap(), allowed(&["b"]));
}

#[test]
fn changes_while_an_offer_is_unanswered_wait_for_the_answer_and_go_out_as_one_offer() {
    use shared::janus::videoroom::SubscribeStream;
    let mut r = alice_publishing();
    let bob = bob_publishing(&mut r);
    r.on_async(who(2), "s", AsyncName::Join, subscribe_to(101), None);
    r.subscribed(who(2), "s", Jsep::offer("v=0\r\n".into()));
    // No answer yet: `subscribe` changes the subscription but its offer waits (`updating`).
    let sub_bob = SubscribeStream {
        feed: ParticipantId::num(bob),
        mid: None,
        crossrefid: None,
        layers: Default::default(),
        delay: Default::default(),
    };
    let o = r.on_async(
        who(2),
        "u",
        AsyncName::Subscribe,
        Ok(AsyncRequest::Update(Update { subscribe: vec![sub_bob], unsubscribe: vec![] })),
        None,
    );
    assert_eq!(o.notices[0].data, Event::Updating { room: r5() });
    assert_eq!(o.notices[0].transaction.as_deref(), Some("u"));
    assert!(o.media.is_empty(), "{:?}", o.media);
    // A publisher leaving meanwhile waits too.
    let u = r.on_async(who(1), "x", AsyncName::Unpublish, Ok(AsyncRequest::Unpublish), None);
    assert!(!u.media.iter().any(|m| matches!(m, MediaAction::Renegotiate { .. })), "{:?}", u.media);
    // The answer comes: `started`, then one offer with both changes, answering nobody.
    let st = r.started(who(2), "st");
    assert_eq!(st.notices[0].data, Event::Started { room: r5() });
    let [MediaAction::Renegotiate { transaction: None, inactive, added, .. }] = &st.media[..] else {
        panic!("{:?}", st.media)
    };
    assert_eq!(inactive, &vec![0, 1]);
    assert_eq!(added.iter().map(|a| a.mindex).collect::<Vec<_>>(), vec![2, 3]);
    let up = r.renegotiated(who(2), None, Jsep::offer("v=0\r\n".into()));
    assert!(matches!(up.notices[0].data, Event::Updated { streams: Some(_), .. }), "{:?}", up.notices);
    assert_eq!(up.notices[0].transaction, None);
    // Still unanswered: the next change waits again.
    let o = r.on_async(
        who(2),
        "w",
        AsyncName::Unsubscribe,
        Ok(AsyncRequest::Update(Update {
            subscribe: vec![],
            unsubscribe: vec![shared::janus::videoroom::UnsubscribeStream {
                feed: Some(ParticipantId::num(bob)),
                mid: None,
                sub_mid: None,
            }],
        })),
        None,
    );
    assert_eq!(o.notices[0].data, Event::Updating { room: r5() });
}
