//! What [`Backends`] must do when delivering events with messages to other processes ahead of
//! them (a node's acknowledgements, a detach's word to its node), as one suite for both pairs
//! of backends.

use crate::bus::Payload;
use crate::ids::{HandleId, JanusId, NodeId, RoomId, SessionId};
use crate::store::{Binding, NewSession, SentTo};
use crate::wire::WIRE_VERSION;
use crate::wire::{decode_reply, decode_rpc, GoneReason, NodeCommand, RpcEnvelope, RpcReply, RpcResult, Signal};
use crate::{keys, Backends};
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

pub async fn run(b: &Backends) {
    acknowledgements_go_out_with_the_events(b).await;
    acknowledgements_go_out_without_events(b).await;
    a_detach_tells_the_node_and_queues_detached(b).await;
    a_request_to_a_bound_handle_goes_to_its_node(b).await;
}

fn reply(corr_id: u64) -> Arc<RpcReply> {
    Arc::new(RpcReply { v: WIRE_VERSION, corr_id, result: RpcResult::Accepted })
}

fn message(reply: Arc<RpcReply>) -> Arc<dyn crate::bus::Message> {
    reply
}

async fn next(sub: &mut crate::bus::Subscription) -> Payload {
    tokio::time::timeout(WAIT, sub.next()).await.expect("delivered in time").expect("open")
}

/// Each acknowledgement reaches its channel, whole; the events reach the mailbox and the
/// session is woken.
async fn acknowledgements_go_out_with_the_events(b: &Backends) {
    let sid: SessionId = b.store.create_session(NewSession::anyone(10_000), 10).await.unwrap();
    let mut gateway = b.bus.subscribe("delivery:gw").await.unwrap();
    let mut session = b.bus.subscribe(&keys::session_channel(sid)).await.unwrap();
    let acks = [("delivery:gw".to_owned(), message(reply(1))), ("delivery:gw".to_owned(), message(reply(2)))];
    let events = [(sid, Bytes::from_static(b"e1")), (sid, Bytes::from_static(b"e2"))];
    b.deliver_after(&acks, &events).await.unwrap();
    for want in [1, 2] {
        let got = next(&mut gateway).await.decode(decode_reply).unwrap();
        assert_eq!(got, *reply(want), "acknowledgements in order");
    }
    assert_eq!(Signal::from_bytes(&next(&mut session).await.into_bytes()), Some(Signal::Wake));
    assert_eq!(b.store.pop_events(sid, 10).await.unwrap(), vec![Bytes::from_static(b"e1"), Bytes::from_static(b"e2")]);
}

/// With no events after them, acknowledgements still go out.
async fn acknowledgements_go_out_without_events(b: &Backends) {
    let mut gateway = b.bus.subscribe("delivery:alone").await.unwrap();
    b.deliver_after(&[("delivery:alone".to_owned(), message(reply(3)))], &[]).await.unwrap();
    assert_eq!(next(&mut gateway).await.decode(decode_reply).unwrap(), *reply(3));
}

/// A client's detach removes the handle, tells its node (naming the handle's room, numeric or
/// string) and queues `detached` with a wake-up; without the session or the handle it does
/// nothing.
async fn a_detach_tells_the_node_and_queues_detached(b: &Backends) {
    let sid: SessionId = b.store.create_session(NewSession::anyone(10_000), 10).await.unwrap();
    let node = NodeId("delivery-node".into());
    let mut told = b.bus.subscribe(&keys::node_rpc(&node)).await.unwrap();
    let mut session = b.bus.subscribe(&keys::session_channel(sid)).await.unwrap();
    let rooms = [RoomId(JanusId::Num(u64::MAX - 1)), RoomId(JanusId::Text("a \"b\" /c\\ é".into()))];
    for room in rooms {
        let hid = b.store.attach_handle(sid, crate::janus::VIDEOROOM_PLUGIN, None, 10).await.unwrap();
        let binding = Binding { room: room.clone(), node: node.clone() };
        b.store.bind_handle(sid, hid, Some(binding.clone())).await.unwrap();
        let found = b.detach_telling(sid, hid).await.unwrap().expect("the session").expect("the handle");
        assert_eq!(found.binding, Some(binding));
        let want = NodeCommand::HandleGone { session: sid, handle: hid, room, reason: GoneReason::Detached };
        assert_eq!(next(&mut told).await.decode(decode_rpc).unwrap(), RpcEnvelope::told(want));
        assert_eq!(Signal::from_bytes(&next(&mut session).await.into_bytes()), Some(Signal::Wake));
        let detached = crate::janus::reply::Event::Detached { session_id: sid, sender: hid }.to_bytes();
        assert_eq!(b.store.pop_events(sid, 10).await.unwrap(), vec![Bytes::from(detached)]);
        assert_eq!(b.store.handle(sid, hid).await.unwrap(), None, "the handle is gone");
    }
    assert_eq!(b.detach_telling(sid, HandleId(1)).await.unwrap(), Some(None));
    assert_eq!(b.detach_telling(SessionId(1), HandleId(1)).await.unwrap(), None);
    assert_eq!(b.store.pop_events(sid, 10).await.unwrap(), Vec::<Bytes>::new(), "nothing queued for those");
}

/// A request to a bound handle reaches the handle's node naming the handle's room (numeric or
/// string); a join by a handle bound nowhere reaches the room's live owner, naming none, unless
/// the handle keeps a packet capture; nothing is sent for a handle bound nowhere, or without the
/// session or the handle.
async fn a_request_to_a_bound_handle_goes_to_its_node(b: &Backends) {
    let sid: SessionId = b.store.create_session(NewSession::anyone(10_000), 10).await.unwrap();
    let node = NodeId("sending-node".into());
    let mut commands = b.bus.subscribe(&keys::node_rpc(&node)).await.unwrap();
    let leave = |hid, room| RpcEnvelope {
        v: WIRE_VERSION,
        corr_id: 9,
        reply_to: "sending:gw".into(),
        cmd: NodeCommand::Plugin {
            session: sid,
            handle: hid,
            transaction: "t".into(),
            request: leave_request(),
            jsep: None,
            bound_room: room,
            capture: None,
        },
    };
    let hid = b.store.attach_handle(sid, crate::janus::VIDEOROOM_PLUGIN, None, 10).await.unwrap();
    let (found, sent) =
        b.touch_handle_sending(sid, hid, None, |room| leave(hid, room)).await.unwrap().unwrap().unwrap();
    assert_eq!(sent, None, "a handle bound nowhere: nothing sent");
    assert_eq!(found.handle.binding, None);
    for room in [RoomId(JanusId::Num(u64::MAX - 1)), RoomId(JanusId::Text("a \"b\" /c\\ é".into()))] {
        let binding = Binding { room: room.clone(), node: node.clone() };
        b.store.bind_handle(sid, hid, Some(binding.clone())).await.unwrap();
        let (found, sent) =
            b.touch_handle_sending(sid, hid, None, |room| leave(hid, room)).await.unwrap().unwrap().unwrap();
        assert_eq!(sent, Some(SentTo { node: node.clone(), room: room.clone(), bound_room: Some(room.clone()) }));
        assert_eq!(found.handle.binding, Some(binding));
        assert_eq!(next(&mut commands).await.decode(decode_rpc).unwrap(), leave(hid, Some(room)));
    }
    assert!(b
        .touch_handle_sending(sid, HandleId(1), None, |room| leave(HandleId(1), room))
        .await
        .unwrap()
        .unwrap()
        .is_none());
    assert!(b.touch_handle_sending(SessionId(1), hid, None, |room| leave(hid, room)).await.unwrap().is_none());

    // Joins: to the room's live owner, the handle bound there.
    let status = crate::store::NodeStatus { node: node.clone(), load: 0, draining: false };
    b.store.register_node(status, 60_000).await.unwrap();
    let room = RoomId(JanusId::Text("joined".into()));
    b.store.place_room(room.clone(), &node, 60_000).await.unwrap();
    let joining = b.store.attach_handle(sid, crate::janus::VIDEOROOM_PLUGIN, None, 10).await.unwrap();
    let (found, sent) =
        b.touch_handle_sending(sid, joining, Some(&room), |r| leave(joining, r)).await.unwrap().unwrap().unwrap();
    assert_eq!(sent, Some(SentTo { node: node.clone(), room: room.clone(), bound_room: None }));
    assert_eq!(found.owner, Some((node.clone(), true)));
    assert_eq!(next(&mut commands).await.decode(decode_rpc).unwrap(), leave(joining, None));
    let bound = b.store.handle(sid, joining).await.unwrap().unwrap().binding;
    assert_eq!(bound, Some(Binding { room: room.clone(), node: node.clone() }));
    // A handle whose packets are captured joins the slow way: the capture goes with the join.
    let captured = b.store.attach_handle(sid, crate::janus::VIDEOROOM_PLUGIN, None, 10).await.unwrap();
    let spec = crate::janus::admin::CaptureSpec {
        format: crate::janus::admin::CaptureFormat::Text2pcap,
        folder: None,
        filename: Some("c.txt".into()),
        truncate: 0,
    };
    b.store.set_handle_capture(sid, captured, Some(spec)).await.unwrap();
    let (found, sent) =
        b.touch_handle_sending(sid, captured, Some(&room), |r| leave(captured, r)).await.unwrap().unwrap().unwrap();
    assert_eq!(sent, None, "a captured handle's join is not sent");
    assert_eq!(found.owner, Some((node.clone(), true)));
    // The next command the node gets is the one after, not the captured handle's join.
    b.store.bind_handle(sid, hid, Some(Binding { room: room.clone(), node: node.clone() })).await.unwrap();
    b.touch_handle_sending(sid, hid, None, |room| leave(hid, room)).await.unwrap().unwrap().unwrap();
    assert_eq!(next(&mut commands).await.decode(decode_rpc).unwrap(), leave(hid, Some(room)));
}

/// A VideoRoom `leave`, as parsed.
fn leave_request() -> crate::janus::videoroom::VideoRoomRequest {
    let body = serde_json::json!({"request": "leave"}).as_object().cloned().unwrap_or_default();
    let body = crate::janus::request::PluginBody::from_map(body);
    crate::janus::videoroom::parse_request(&body, crate::janus::videoroom::Policy::default()).unwrap()
}
