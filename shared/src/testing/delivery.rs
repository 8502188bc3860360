//! What [`Backends`] must do when delivering events with acknowledgements ahead of them, as one
//! suite for both pairs of backends.

use crate::bus::Payload;
use crate::ids::SessionId;
use crate::store::NewSession;
use crate::wire::{decode_reply, RpcReply, RpcResult, Signal, WIRE_VERSION};
use crate::{keys, Backends};
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

pub async fn run(b: &Backends) {
    acknowledgements_go_out_with_the_events(b).await;
    acknowledgements_go_out_without_events(b).await;
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
