//! What a [`Bus`] must do, as one suite.

use crate::bus::Bus;
use bytes::Bytes;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

pub async fn run<B: Bus>(bus: &B) {
    delivers_in_order_to_every_subscriber(bus).await;
    a_dropped_subscription_stops_receiving(bus).await;
    channels_are_separate(bus).await;
    a_typed_message_arrives_whole(bus).await;
}

/// Sent typed, a message reaches a subscriber as itself (in process) or as its encoding, and
/// either way decodes to what was sent; in order with bytes published on the same channel.
async fn a_typed_message_arrives_whole<B: Bus>(bus: &B) {
    use crate::bus::Payload;
    use crate::wire::{decode_reply, RpcReply, RpcResult, WIRE_VERSION};
    use futures_util::StreamExt;
    let mut sub = bus.subscribe("conf:typed").await.unwrap();
    let mut raw = bus.subscribe("conf:typed").await.unwrap();
    let reply = RpcReply { v: WIRE_VERSION, corr_id: 7, result: RpcResult::Failed("x".into()) };
    bus.publish("conf:typed", Bytes::from_static(b"first")).await.unwrap();
    bus.send("conf:typed", std::sync::Arc::new(reply.clone())).await.unwrap();
    let first = tokio::time::timeout(WAIT, sub.next()).await.unwrap().unwrap();
    assert_eq!(first.into_bytes(), Bytes::from_static(b"first"));
    let got: Payload = tokio::time::timeout(WAIT, sub.next()).await.unwrap().unwrap();
    assert_eq!(got.decode(decode_reply).unwrap(), reply);
    assert_eq!(tokio::time::timeout(WAIT, raw.recv()).await.unwrap().unwrap(), Bytes::from_static(b"first"));
    let bytes = tokio::time::timeout(WAIT, raw.recv()).await.unwrap().unwrap();
    assert_eq!(decode_reply(&bytes).unwrap(), reply);
}

async fn delivers_in_order_to_every_subscriber<B: Bus>(bus: &B) {
    let mut a = bus.subscribe("conf:order").await.unwrap();
    let mut b = bus.subscribe("conf:order").await.unwrap();
    for i in 0..100u8 {
        bus.publish("conf:order", Bytes::from(vec![i])).await.unwrap();
    }
    for sub in [&mut a, &mut b] {
        for i in 0..100u8 {
            let got = tokio::time::timeout(WAIT, sub.recv()).await.expect("delivered in time").expect("open");
            assert_eq!(got[0], i);
        }
    }
}

async fn a_dropped_subscription_stops_receiving<B: Bus>(bus: &B) {
    let a = bus.subscribe("conf:drop").await.unwrap();
    let mut b = bus.subscribe("conf:drop").await.unwrap();
    drop(a);
    bus.publish("conf:drop", Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(tokio::time::timeout(WAIT, b.recv()).await.unwrap().unwrap(), Bytes::from_static(b"x"));
    drop(b);
    // Publishing to a channel nobody listens on is fine.
    bus.publish("conf:drop", Bytes::from_static(b"y")).await.unwrap();
}

async fn channels_are_separate<B: Bus>(bus: &B) {
    let mut one = bus.subscribe("conf:one").await.unwrap();
    let mut two = bus.subscribe("conf:two").await.unwrap();
    bus.publish("conf:two", Bytes::from_static(b"2")).await.unwrap();
    bus.publish("conf:one", Bytes::from_static(b"1")).await.unwrap();
    assert_eq!(tokio::time::timeout(WAIT, one.recv()).await.unwrap().unwrap(), Bytes::from_static(b"1"));
    assert_eq!(tokio::time::timeout(WAIT, two.recv()).await.unwrap().unwrap(), Bytes::from_static(b"2"));
}
