//! What a [`Store`] must do, as one suite. Time moves only through the given [`ManualClock`],
//! which the store under test must read.

use crate::clock::ManualClock;
use crate::ids::{HandleId, JanusId, NodeId, RoomId, SessionId};
use crate::janus::videoroom::RoomConfig;
use crate::store::{Binding, Claim, NewSession, NodeStatus, Store, StoreError, MAILBOX_CAP, MAILBOX_GRACE_MS};
use bytes::Bytes;

/// Runs every check; each starts from an empty store (`reset` clears it).
pub async fn run<S: Store, F, Fut>(store: &S, clock: &ManualClock, reset: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    reset().await;
    sessions_expire_after_their_timeout_unless_touched(store, clock).await;
    reset().await;
    zero_timeout_never_expires_but_a_released_session_does(store, clock).await;
    reset().await;
    ids_conflict_and_limits_hold(store).await;
    reset().await;
    mailbox_is_ordered_bounded_and_outlives_the_session_briefly(store, clock).await;
    reset().await;
    handles_bind_and_are_returned_when_the_session_ends(store).await;
    reset().await;
    a_handle_s_capture_is_kept_through_its_bindings(store).await;
    reset().await;
    a_touch_reads_the_handle_in_the_same_step(store, clock).await;
    reset().await;
    attach_and_detach_touch_the_session_in_the_same_step(store, clock).await;
    reset().await;
    rooms_and_placement(store).await;
    reset().await;
    expired_sessions_are_handed_out_once_under_contention(store, clock).await;
    reset().await;
    nodes_register_and_lapse(store, clock).await;
    reset().await;
    room_leases_lapse_unless_renewed(store, clock).await;
    reset().await;
    a_room_owner_is_read_with_its_registration(store).await;
    reset().await;
    handles_are_indexed_by_node_and_lost_nodes_are_handed_out_once(store, clock).await;
    reset().await;
    the_seed_mark_is_kept_until_the_data_goes(store).await;
    reset().await;
    tokens_carry_their_plugins(store).await;
    reset().await;
    sessions_are_listed(store).await;
    reset().await;
    events_are_pushed_in_batches_in_order(store).await;
    reset().await;
    only_the_creating_principal_claims(store).await;
    reset().await;
    session_timeouts_set_one_by_one_and_by_default(store, clock).await;
    reset().await;
    knobs_turned_are_kept_last_value_each(store).await;
}

async fn knobs_turned_are_kept_last_value_each<S: Store>(s: &S) {
    use crate::tuning::{Knob, Tuning};
    assert_eq!(s.knobs().await.unwrap(), vec![], "a new store has none turned");
    for k in [Knob::NoMediaTimer(3), Knob::NackOptimizations(true), Knob::NoMediaTimer(0), Knob::MinNackQueue(200)] {
        s.set_knob(k).await.unwrap();
    }
    let knobs = s.knobs().await.unwrap();
    assert_eq!(knobs.len(), 3, "one value per knob: {knobs:?}");
    let t = Tuning::default().overlaid(&knobs);
    assert_eq!(t, Tuning { no_media_timer: 0, slowlink_threshold: 0, min_nack_queue: 200, nack_optimizations: true });
}

async fn events_are_pushed_in_batches_in_order<S: Store>(s: &S) {
    let a = s.create_session(NewSession::anyone(10_000), 10).await.unwrap();
    let b = s.create_session(NewSession::anyone(10_000), 10).await.unwrap();
    let ev = |t: &'static str| Bytes::from_static(t.as_bytes());
    let batch = [(a, ev("a1")), (b, ev("b1")), (SessionId(99), ev("nobody")), (a, ev("a2"))];
    s.push_events(&batch).await.unwrap();
    assert_eq!(s.pop_events(a, 10).await.unwrap(), vec![ev("a1"), ev("a2")], "in order, per session");
    assert_eq!(s.pop_events(b, 10).await.unwrap(), vec![ev("b1")]);
    assert!(s.pop_events(SessionId(99), 10).await.unwrap().is_empty(), "no mailbox for a session that never was");
    let many: Vec<(SessionId, Bytes)> = (0..MAILBOX_CAP + 5).map(|i| (a, Bytes::from(i.to_string()))).collect();
    s.push_events(&many).await.unwrap();
    let kept = s.pop_events(a, MAILBOX_CAP * 2).await.unwrap();
    assert_eq!((kept.len(), kept[0].clone()), (MAILBOX_CAP, Bytes::from("5")), "the cap holds in a batch too");
}

async fn only_the_creating_principal_claims<S: Store>(s: &S) {
    let bound = s.create_session(NewSession { principal: "token:ab", ..NewSession::anyone(10_000) }, 10).await.unwrap();
    assert_eq!(s.session(bound).await.unwrap().unwrap().principal, "token:ab");
    assert_eq!(s.claim_session(bound, 1, "token:cd", None).await.unwrap(), Claim::WrongPrincipal);
    assert_eq!(s.claim_session(bound, 1, "", None).await.unwrap(), Claim::WrongPrincipal);
    assert_eq!(s.session(bound).await.unwrap().unwrap().owner, None, "a refused claim changes nothing");
    assert_eq!(s.claim_session(bound, 1, "token:ab", None).await.unwrap(), Claim::Claimed);
    let open = s.create_session(NewSession::anyone(10_000), 10).await.unwrap();
    assert_eq!(s.claim_session(open, 2, "secret", None).await.unwrap(), Claim::Claimed, "made without credentials");
}

async fn session_timeouts_set_one_by_one_and_by_default<S: Store>(s: &S, clock: &ManualClock) {
    let a = s.create_session(NewSession::anyone(10_000), 10).await.unwrap();
    let b = s.create_session(NewSession::anyone(10_000), 10).await.unwrap();
    assert!(s.set_session_timeout(a, 2_000, true).await.unwrap());
    assert!(!s.set_session_timeout(SessionId(5), 2_000, true).await.unwrap());
    clock.advance_ms(2_000);
    assert_eq!(s.take_expired(10).await.unwrap(), vec![a], "its own timeout, from now");
    assert_eq!(s.default_session_timeout().await.unwrap(), None);
    s.set_default_session_timeout(0).await.unwrap();
    assert_eq!(s.default_session_timeout().await.unwrap(), Some(0));
    assert!(s.touch_session(b).await.unwrap());
    clock.advance_ms(60_000);
    assert!(s.take_expired(10).await.unwrap().is_empty(), "the default (no timeout) from its next activity");
    let c = s.create_session(NewSession::anyone(10_000), 10).await.unwrap();
    assert_eq!(s.session(c).await.unwrap().unwrap().timeout_ms, 0, "new sessions take the default");
    assert!(s.set_session_timeout(c, 3_000, true).await.unwrap());
    assert!(s.touch_session(c).await.unwrap());
    assert!(s.set_session_timeout(b, 10_000, false).await.unwrap());
    assert_eq!(s.session(b).await.unwrap().unwrap().timeout_ms, 0, "back to the default, which was set");
    clock.advance_ms(3_000);
    assert_eq!(s.take_expired(10).await.unwrap(), vec![c], "its own timeout outlives the default");
}

async fn sessions_are_listed<S: Store>(s: &S) {
    assert!(s.list_sessions().await.unwrap().is_empty());
    let a = s.create_session(NewSession::anyone(10_000), 100).await.unwrap();
    let b = s.create_session(NewSession::anyone(10_000), 100).await.unwrap();
    let mut listed = s.list_sessions().await.unwrap();
    listed.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(listed, want);
    let h = s.attach_handle(b, "p", None, 10).await.unwrap();
    assert_eq!(s.session_handles(b).await.unwrap(), vec![h]);
    assert!(s.session_handles(a).await.unwrap().is_empty());
    s.destroy_session(a, None, None).await.unwrap();
    assert_eq!(s.list_sessions().await.unwrap(), vec![b]);
}

async fn tokens_carry_their_plugins<S: Store>(s: &S) {
    let p = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(s.token("t1").await.unwrap(), None);
    assert_eq!(s.add_token("t1", &p(&["a", "b"])).await.unwrap(), p(&["a", "b"]));
    assert_eq!(s.add_token("t1", &p(&["b", "c"])).await.unwrap(), p(&["a", "b", "c"]), "adding again keeps it");
    assert_eq!(s.add_token("t2", &[]).await.unwrap(), Vec::<String>::new());
    assert_eq!(s.token("t2").await.unwrap(), Some(vec![]), "a token with no plugins exists");
    assert_eq!(s.allow_token("t1", &p(&["b"]), false).await.unwrap(), Some(p(&["a", "c"])));
    assert_eq!(s.allow_token("t2", &p(&["x"]), true).await.unwrap(), Some(p(&["x"])));
    assert_eq!(s.allow_token("nope", &p(&["x"]), true).await.unwrap(), None, "only existing tokens");
    assert_eq!(s.token("nope").await.unwrap(), None);
    assert_eq!(s.list_tokens().await.unwrap(), vec![("t1".to_owned(), p(&["a", "c"])), ("t2".to_owned(), p(&["x"]))]);
    assert!(s.remove_token("t1").await.unwrap());
    assert!(!s.remove_token("t1").await.unwrap());
    assert_eq!(s.token("t1").await.unwrap(), None);
}

async fn the_seed_mark_is_kept_until_the_data_goes<S: Store>(s: &S) {
    assert!(!s.seeded().await.unwrap(), "a new store has no mark");
    s.mark_seeded().await.unwrap();
    assert!(s.seeded().await.unwrap());
    s.mark_seeded().await.unwrap();
    assert!(s.seeded().await.unwrap(), "marking twice is harmless");
}

async fn sessions_expire_after_their_timeout_unless_touched<S: Store>(s: &S, clock: &ManualClock) {
    let a = s.create_session(NewSession::anyone(10_000), 100).await.unwrap();
    let b = s.create_session(NewSession::anyone(10_000), 100).await.unwrap();
    clock.advance_ms(9_000);
    assert!(s.touch_session(a).await.unwrap());
    assert!(!s.touch_session(SessionId(1)).await.unwrap(), "touching an unknown session says so");
    clock.advance_ms(1_000);
    assert_eq!(s.take_expired(10).await.unwrap(), vec![b]);
    assert!(s.take_expired(10).await.unwrap().is_empty(), "handed out once only");
    clock.advance_ms(9_000);
    assert_eq!(s.take_expired(10).await.unwrap(), vec![a]);
    let rec = s.session(a).await.unwrap().expect("still there until destroyed");
    assert_eq!(rec.timeout_ms, 10_000);
}

async fn zero_timeout_never_expires_but_a_released_session_does<S: Store>(s: &S, clock: &ManualClock) {
    let a = s.create_session(NewSession { owner: Some(7), ..NewSession::anyone(0) }, 100).await.unwrap();
    clock.advance_ms(10_000_000);
    assert!(s.take_expired(10).await.unwrap().is_empty());
    s.release_session(a, 7, 5_000).await.unwrap();
    assert!(s.session(a).await.unwrap().unwrap().transport_gone);
    clock.advance_ms(4_000);
    assert!(s.take_expired(10).await.unwrap().is_empty());
    assert_eq!(s.claim_session(a, 8, "", None).await.unwrap(), Claim::Claimed);
    assert_eq!(s.session(a).await.unwrap().unwrap().owner, Some(8));
    clock.advance_ms(10_000);
    assert!(s.take_expired(10).await.unwrap().is_empty(), "claimed again: no reclaim deadline");
    s.release_session(a, 7, 0).await.unwrap();
    assert!(!s.session(a).await.unwrap().unwrap().transport_gone, "a former owner cannot release it");
    s.release_session(a, 8, 1_000).await.unwrap();
    clock.advance_ms(1_000);
    assert_eq!(s.take_expired(10).await.unwrap(), vec![a]);
    assert_eq!(s.claim_session(SessionId(3), 1, "", None).await.unwrap(), Claim::NoSuchSession);
}

async fn ids_conflict_and_limits_hold<S: Store>(s: &S) {
    let a =
        s.create_session(NewSession { requested: Some(SessionId(42)), ..NewSession::anyone(1000) }, 2).await.unwrap();
    assert_eq!(a, SessionId(42));
    assert_eq!(
        s.create_session(NewSession { requested: Some(a), ..NewSession::anyone(1000) }, 2).await,
        Err(StoreError::Conflict)
    );
    s.create_session(NewSession::anyone(1000), 2).await.unwrap();
    assert_eq!(s.create_session(NewSession::anyone(1000), 2).await, Err(StoreError::Limit));
    s.attach_handle(a, "p", None, 1).await.unwrap();
    assert_eq!(s.attach_handle(a, "p", None, 1).await, Err(StoreError::Limit));
    assert_eq!(s.attach_handle(SessionId(5), "p", None, 1).await, Err(StoreError::NoSuchSession));
    assert_eq!(s.counts().await.unwrap(), (2, 1));
}

async fn mailbox_is_ordered_bounded_and_outlives_the_session_briefly<S: Store>(s: &S, clock: &ManualClock) {
    let a = s.create_session(NewSession::anyone(1000), 10).await.unwrap();
    for i in 0..(MAILBOX_CAP + 5) {
        s.push_event(a, Bytes::from(i.to_string())).await.unwrap();
    }
    let first = s.pop_events(a, 2).await.unwrap();
    assert_eq!(first, vec![Bytes::from("5"), Bytes::from("6")], "oldest dropped beyond the cap");
    assert_eq!(s.pop_events(a, 10_000).await.unwrap().len(), MAILBOX_CAP - 2);
    assert!(s.pop_events(a, 10).await.unwrap().is_empty());
    s.push_event(a, Bytes::from("before")).await.unwrap();
    let ended = s.destroy_session(a, Some(Bytes::from("final")), None).await.unwrap().expect("ended");
    assert_eq!(ended.queued, 2, "the events left in the mailbox, its final one among them");
    s.push_event(a, Bytes::from("last")).await.unwrap();
    let after = s.pop_events(a, 10).await.unwrap();
    assert_eq!(after, vec![Bytes::from("before"), Bytes::from("final"), Bytes::from("last")]);
    // Unknown sessions have no mailbox.
    s.push_event(SessionId(9), Bytes::from("x")).await.unwrap();
    assert!(s.destroy_session(SessionId(9), Some(Bytes::from("x")), None).await.unwrap().is_none());
    assert!(s.pop_events(SessionId(9), 10).await.unwrap().is_empty());
    // A session created again with the same id starts with an empty mailbox.
    s.push_event(a, Bytes::from("stale")).await.unwrap();
    let again = s.create_session(NewSession { requested: Some(a), ..NewSession::anyone(1000) }, 10).await.unwrap();
    assert!(s.pop_events(again, 10).await.unwrap().is_empty());
    let _ = clock; // The grace period itself is real time in Redis (PEXPIRE); see MAILBOX_GRACE_MS.
    const { assert!(MAILBOX_GRACE_MS >= 5_000) };
}

async fn handles_bind_and_are_returned_when_the_session_ends<S: Store>(s: &S) {
    let sid = s.create_session(NewSession::anyone(1000), 10).await.unwrap();
    let h1 = s.attach_handle(sid, "janus.plugin.videoroom", Some("opaque".into()), 10).await.unwrap();
    let h2 = s.attach_handle(sid, "janus.plugin.videoroom", None, 10).await.unwrap();
    let big_room = RoomId::num((1 << 53) - 1);
    let b = Binding { room: big_room, node: NodeId("node-a".into()) };
    s.bind_handle(sid, h1, Some(b.clone())).await.unwrap();
    let r = s.handle(sid, h1).await.unwrap().unwrap();
    assert_eq!(
        (r.id, r.session, r.opaque_id.as_deref(), r.binding.clone()),
        (h1, sid, Some("opaque"), Some(b.clone()))
    );
    s.bind_handle(sid, h2, Some(b.clone())).await.unwrap();
    s.bind_handle(sid, h2, None).await.unwrap();
    assert_eq!(s.handle(sid, h2).await.unwrap().unwrap().binding, None);
    let d = s.detach_handle(sid, h2).await.unwrap().unwrap();
    assert_eq!(d.id, h2);
    assert!(s.detach_handle(sid, h2).await.unwrap().is_none());
    assert_eq!(s.counts().await.unwrap(), (1, 1));
    let gone = s.destroy_session(sid, None, None).await.unwrap().expect("first destroy returns the handles").handles;
    assert_eq!(gone.len(), 1);
    assert_eq!((gone[0].id, gone[0].binding.clone()), (h1, Some(b)));
    assert!(s.destroy_session(sid, None, None).await.unwrap().is_none(), "only one caller tears a session down");
    assert_eq!(s.counts().await.unwrap(), (0, 0));
    assert!(!s.touch_session(sid).await.unwrap());
    assert_eq!(s.touch_session_handle(sid, h1, None).await.unwrap(), None, "no session");
    assert_eq!(s.touch_session_handle(sid, h1, Some(&RoomId::num(1))).await.unwrap(), None, "no session");
}

async fn a_handle_s_capture_is_kept_through_its_bindings<S: Store>(s: &S) {
    use crate::janus::admin::{CaptureFormat, CaptureSpec};
    let sid = s.create_session(NewSession::anyone(1000), 10).await.unwrap();
    let h = s.attach_handle(sid, "janus.plugin.videoroom", None, 10).await.unwrap();
    let spec = CaptureSpec {
        format: CaptureFormat::Text2pcap,
        folder: Some("/tmp/a \"b\"/c".into()),
        filename: Some("d.txt".into()),
        truncate: 16,
    };
    assert_eq!(s.set_handle_capture(sid, h, None).await.unwrap(), Some(false), "none to drop");
    assert_eq!(s.set_handle_capture(sid, h, Some(spec.clone())).await.unwrap(), Some(true));
    let mut other = spec.clone();
    other.filename = Some("e.txt".into());
    assert_eq!(s.set_handle_capture(sid, h, Some(other)).await.unwrap(), Some(false), "one kept already");
    assert_eq!(s.set_handle_capture(sid, HandleId(h.0 + 1), Some(spec.clone())).await.unwrap(), None, "no handle");
    let room = RoomId::num(5);
    let node = NodeId("node-a".into());
    s.bind_handle(sid, h, Some(Binding { room: room.clone(), node: node.clone() })).await.unwrap();
    let joined = s.touch_session_handle(sid, h, Some(&room)).await.unwrap().flatten().expect("the handle");
    assert_eq!(joined.handle.capture.as_deref(), Some(&spec), "kept through a binding, read by a touch");
    assert!(s.unbind_handle_from(sid, h, &node).await.unwrap());
    s.bind_handle(sid, h, None).await.unwrap();
    assert_eq!(s.handle(sid, h).await.unwrap().unwrap().capture.as_deref(), Some(&spec), "and through unbindings");
    assert_eq!(s.set_handle_capture(sid, h, None).await.unwrap(), Some(true));
    assert_eq!(s.handle(sid, h).await.unwrap().unwrap().capture, None);
    let untouched = s.attach_handle(sid, "janus.plugin.videoroom", None, 10).await.unwrap();
    assert_eq!(s.handle(sid, untouched).await.unwrap().unwrap().capture, None);
}

async fn a_touch_reads_the_handle_in_the_same_step<S: Store>(s: &S, clock: &ManualClock) {
    let sid = s.create_session(NewSession::anyone(10_000), 10).await.unwrap();
    let h = s.attach_handle(sid, "janus.plugin.videoroom", Some("o".into()), 10).await.unwrap();
    clock.advance_ms(9_000);
    let found = s.touch_session_handle(sid, h, None).await.unwrap().expect("the session");
    assert_eq!(
        found.map(|f| (f.handle.id, f.handle.session, f.handle.opaque_id, f.owner)),
        Some((h, sid, Some("o".into()), None))
    );
    assert_eq!(s.touch_session_handle(sid, HandleId(h.0 + 1), None).await.unwrap(), Some(None), "no such handle");
    clock.advance_ms(9_000);
    assert!(s.take_expired(10).await.unwrap().is_empty(), "the touch moved the deadline");
    clock.advance_ms(1_000);
    assert_eq!(s.take_expired(10).await.unwrap(), vec![sid]);
}

async fn attach_and_detach_touch_the_session_in_the_same_step<S: Store>(s: &S, clock: &ManualClock) {
    let none = SessionId(777);
    assert_eq!(s.touch_attach_handle(none, "p", None, 10).await, Err(StoreError::NoSuchSession));
    assert_eq!(s.touch_detach_handle(none, HandleId(1)).await.unwrap(), None, "no such session");
    let sid = s.create_session(NewSession::anyone(10_000), 10).await.unwrap();
    clock.advance_ms(9_000);
    let h = s.touch_attach_handle(sid, "janus.plugin.videoroom", Some("o".into()), 10).await.unwrap();
    assert_eq!(s.touch_attach_handle(sid, "p", None, 1).await, Err(StoreError::Limit), "the limit holds");
    clock.advance_ms(9_000);
    assert!(s.take_expired(10).await.unwrap().is_empty(), "attach moved the deadline");
    let gone = s.touch_detach_handle(sid, h).await.unwrap().expect("the session").expect("the handle");
    assert_eq!((gone.id, gone.session, gone.opaque_id), (h, sid, Some("o".into())));
    assert_eq!(s.touch_detach_handle(sid, h).await.unwrap(), Some(None), "detached already");
    assert_eq!(s.counts().await.unwrap().1, 0, "the handle count follows");
    clock.advance_ms(9_000);
    assert!(s.take_expired(10).await.unwrap().is_empty(), "detach moved the deadline");
    clock.advance_ms(1_000);
    assert_eq!(s.take_expired(10).await.unwrap(), vec![sid]);
}

async fn rooms_and_placement<S: Store>(s: &S) {
    let room = RoomConfig::demo_room();
    s.create_room(room.clone(), 10).await.unwrap();
    assert_eq!(s.create_room(room.clone(), 10).await, Err(StoreError::Conflict));
    let mut other = room.clone();
    other.room = RoomId::num(7);
    assert_eq!(s.create_room(other.clone(), 1).await, Err(StoreError::Limit));
    s.create_room(other.clone(), 10).await.unwrap();
    s.set_room_participants(RoomId::num(7), 3).await.unwrap();
    let mut edited = other.clone();
    edited.description = "edited".into();
    s.update_room(edited).await.unwrap();
    let r = s.room(RoomId::num(7)).await.unwrap().unwrap();
    assert_eq!((r.config.description.as_str(), r.participants), ("edited", 3));
    // String ids (`string_ids`) are filed apart from numbers, even "7" from 7.
    let mut named = room.clone();
    named.room = RoomId(JanusId::Text("7".into()));
    s.create_room(named.clone(), 10).await.unwrap();
    let ids: Vec<RoomId> = s.list_rooms().await.unwrap().iter().map(|r| r.config.room.clone()).collect();
    assert_eq!(ids, vec![RoomId::num(7), RoomId::num(1234), named.room.clone()]);
    let binding = Binding { room: named.room.clone(), node: NodeId("n".into()) };
    let sid = s.create_session(NewSession::anyone(1000), 10).await.unwrap();
    let h = s.attach_handle(sid, "janus.plugin.videoroom", None, 10).await.unwrap();
    s.bind_handle(sid, h, Some(binding.clone())).await.unwrap();
    assert_eq!(s.handle(sid, h).await.unwrap().unwrap().binding, Some(binding));
    assert!(s.delete_room(named.room.clone()).await.unwrap());
    assert!(s.room(RoomId::num(7)).await.unwrap().is_some(), "the number room is another room");
    s.destroy_session(sid, None, None).await.unwrap();
    let a = NodeId("a".into());
    let b = NodeId("b".into());
    const LEASE: u64 = 60_000;
    assert_eq!(s.place_room(RoomId::num(7), &a, LEASE).await.unwrap(), a);
    assert_eq!(s.place_room(RoomId::num(7), &b, LEASE).await.unwrap(), a, "the first placement wins");
    assert!(s.delete_room(RoomId::num(7)).await.unwrap());
    assert!(!s.delete_room(RoomId::num(7)).await.unwrap());
    assert!(s.room(RoomId::num(7)).await.unwrap().is_none());
    assert_eq!(s.place_room(RoomId::num(7), &b, LEASE).await.unwrap(), b, "a deleted room is placed afresh");
    assert_eq!(s.room_owner(RoomId::num(7)).await.unwrap(), Some(b.clone()));
    assert_eq!(
        s.replace_room_owner(RoomId::num(7), &a, &a, LEASE).await.unwrap(),
        b,
        "only the dead owner is replaced"
    );
    assert_eq!(s.replace_room_owner(RoomId::num(7), &b, &a, LEASE).await.unwrap(), a);
    assert!(!s.renew_room(RoomId::num(7), &b, LEASE).await.unwrap(), "b lost the room and must stand down");
    assert!(s.renew_room(RoomId::num(7), &a, LEASE).await.unwrap());
    assert_eq!(s.room_owner(RoomId::num(8)).await.unwrap(), None);
    assert!(s.renew_room(RoomId::num(8), &a, LEASE).await.unwrap(), "a vanished lease is re-asserted by its owner");
    assert_eq!(s.room_owner(RoomId::num(8)).await.unwrap(), Some(a.clone()));
}

async fn a_room_owner_is_read_with_its_registration<S: Store>(s: &S) {
    let a = NodeId("a".into());
    let b = NodeId("b".into());
    const LEASE: u64 = 60_000;
    s.register_node(NodeStatus { node: a.clone(), load: 0, draining: false }, LEASE).await.unwrap();
    assert_eq!(s.room_owner_status(RoomId::num(11)).await.unwrap(), None, "no owner");
    s.place_room(RoomId::num(11), &a, LEASE).await.unwrap();
    s.place_room(RoomId::num(12), &b, LEASE).await.unwrap();
    assert_eq!(s.room_owner_status(RoomId::num(11)).await.unwrap(), Some((a.clone(), true)));
    assert_eq!(s.room_owner_status(RoomId::num(12)).await.unwrap(), Some((b.clone(), false)), "b never registered");
    // A join's read binds the handle while the owner is registered, and only then.
    let sid = s.create_session(NewSession::anyone(10_000), 10).await.unwrap();
    let h = s.attach_handle(sid, "janus.plugin.videoroom", None, 10).await.unwrap();
    assert_eq!(s.bind_to_live_owner(sid, h, RoomId::num(13)).await.unwrap(), None, "no owner");
    assert_eq!(s.bind_to_live_owner(sid, h, RoomId::num(12)).await.unwrap(), Some((b.clone(), false)));
    assert_eq!(s.handle(sid, h).await.unwrap().unwrap().binding, None, "not bound to an unregistered node");
    // And so does the touch of a join's request, in the same step: the handle as it was, the
    // owner beside it.
    let joining = |room| async move { s.touch_session_handle(sid, h, Some(&RoomId::num(room))).await.unwrap() };
    let found = joining(12).await.expect("the session").expect("the handle");
    assert_eq!((found.handle.binding, found.owner), (None, Some((b.clone(), false))));
    assert_eq!(s.handle(sid, h).await.unwrap().unwrap().binding, None, "not bound to an unregistered node");
    let found = joining(11).await.expect("the session").expect("the handle");
    assert_eq!((found.handle.binding, found.owner), (None, Some((a.clone(), true))));
    let bound = Binding { room: RoomId::num(11), node: a.clone() };
    assert_eq!(s.handle(sid, h).await.unwrap().unwrap().binding, Some(bound.clone()));
    assert_eq!(s.node_handles(&a).await.unwrap(), vec![(sid, h)], "indexed by node");
    let found = joining(12).await.expect("the session").expect("the handle");
    assert_eq!((found.handle.binding, found.owner), (Some(bound), None), "a bound handle stays where it is");
    assert!(s.touch_session_handle(sid, HandleId(h.0 + 1), Some(&RoomId::num(11))).await.unwrap().unwrap().is_none());
    s.deregister_node(&a).await.unwrap();
    assert_eq!(s.room_owner_status(RoomId::num(11)).await.unwrap(), Some((a, false)), "a left the registry");
}

/// Leases lapse by wall-clock in Redis, so this waits for real (briefly).
async fn room_leases_lapse_unless_renewed<S: Store>(s: &S, clock: &ManualClock) {
    let a = NodeId("a".into());
    let b = NodeId("b".into());
    assert_eq!(s.place_room(RoomId::num(9), &a, 300).await.unwrap(), a);
    assert_eq!(s.place_room(RoomId::num(10), &a, 300).await.unwrap(), a);
    clock.advance_ms(200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(s.renew_room(RoomId::num(9), &a, 300).await.unwrap());
    clock.advance_ms(200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(s.room_owner(RoomId::num(9)).await.unwrap(), Some(a.clone()), "renewed");
    assert_eq!(s.room_owner(RoomId::num(10)).await.unwrap(), None, "lapsed");
    assert_eq!(s.place_room(RoomId::num(10), &b, 300).await.unwrap(), b);
}

async fn handles_are_indexed_by_node_and_lost_nodes_are_handed_out_once<S: Store>(s: &S, clock: &ManualClock) {
    let n1 = NodeId("n1".into());
    let n2 = NodeId("n2".into());
    let sid = s.create_session(NewSession::anyone(60_000), 10).await.unwrap();
    let (h1, h2, h3) = (
        s.attach_handle(sid, "p", None, 10).await.unwrap(),
        s.attach_handle(sid, "p", None, 10).await.unwrap(),
        s.attach_handle(sid, "p", None, 10).await.unwrap(),
    );
    let bind = |n: &NodeId| Some(Binding { room: RoomId::num(1), node: n.clone() });
    s.bind_handle(sid, h1, bind(&n1)).await.unwrap();
    s.bind_handle(sid, h2, bind(&n1)).await.unwrap();
    s.bind_handle(sid, h3, bind(&n1)).await.unwrap();
    s.bind_handle(sid, h2, bind(&n2)).await.unwrap();
    s.detach_handle(sid, h3).await.unwrap();
    assert!(!s.unbind_handle_from(sid, h2, &n1).await.unwrap(), "h2 moved to n2: n1 cannot unbind it");
    let mut expect = vec![(sid, h1)];
    expect.sort();
    assert_eq!(s.node_handles(&n1).await.unwrap(), expect);
    assert_eq!(s.node_handles(&n2).await.unwrap(), vec![(sid, h2)]);
    assert!(s.unbind_handle_from(sid, h2, &n2).await.unwrap());
    assert!(!s.unbind_handle_from(sid, h2, &n2).await.unwrap(), "exactly once");
    assert!(s.node_handles(&n2).await.unwrap().is_empty());
    assert_eq!(s.handle(sid, h2).await.unwrap().unwrap().binding, None);
    s.destroy_session(sid, None, None).await.unwrap();
    assert!(s.node_handles(&n1).await.unwrap().is_empty());
    assert!(s.node_handles(&n2).await.unwrap().is_empty());
    s.register_node(NodeStatus { node: n1.clone(), load: 0, draining: false }, 300).await.unwrap();
    s.register_node(NodeStatus { node: n2.clone(), load: 0, draining: false }, 60_000).await.unwrap();
    assert!(s.take_lost_nodes().await.unwrap().is_empty());
    clock.advance_ms(400);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let takers = (0..3).map(|_| s.take_lost_nodes());
    let lost: Vec<NodeId> = futures_util::future::join_all(takers).await.into_iter().flat_map(Result::unwrap).collect();
    assert_eq!(lost, vec![n1], "a lost node is handed to exactly one caller");
    // A node that drained and left is gone from the registry, and never reported lost.
    let n3 = NodeId("n3".into());
    s.register_node(NodeStatus { node: n3.clone(), load: 0, draining: true }, 300).await.unwrap();
    s.deregister_node(&n3).await.unwrap();
    assert!(!s.live_nodes().await.unwrap().iter().any(|n| n.node == n3));
    clock.advance_ms(400);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(s.take_lost_nodes().await.unwrap().is_empty(), "a graceful exit is not a lost node");
}

/// Registrations lapse by wall-clock TTL in Redis, so this waits for real (briefly).
async fn nodes_register_and_lapse<S: Store>(s: &S, clock: &ManualClock) {
    let st = |n: &str, load, draining| NodeStatus { node: NodeId(n.into()), load, draining };
    s.register_node(st("n1", 3, false), 60_000).await.unwrap();
    s.register_node(st("n2", 1, true), 300).await.unwrap();
    s.register_node(st("n1", 5, false), 60_000).await.unwrap();
    assert_eq!(s.live_nodes().await.unwrap(), vec![st("n1", 5, false), st("n2", 1, true)]);
    clock.advance_ms(400);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(s.live_nodes().await.unwrap(), vec![st("n1", 5, false)]);
}

async fn expired_sessions_are_handed_out_once_under_contention<S: Store>(s: &S, clock: &ManualClock) {
    let mut all = Vec::new();
    for _ in 0..200 {
        all.push(s.create_session(NewSession::anyone(1000), 1000).await.unwrap());
    }
    clock.advance_ms(1000);
    let takers = (0..4).map(|_| async {
        let mut got = Vec::new();
        loop {
            let batch = s.take_expired(7).await.unwrap();
            if batch.is_empty() {
                return got;
            }
            got.extend(batch);
        }
    });
    let results = futures_util::future::join_all(takers).await;
    let mut taken: Vec<SessionId> = results.into_iter().flatten().collect();
    taken.sort();
    all.sort();
    assert_eq!(taken, all, "every expired session exactly once");
}
