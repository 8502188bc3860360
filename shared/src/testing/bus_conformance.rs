//! What a [`Bus`] must do, as one suite.

use crate::bus::Bus;
use bytes::Bytes;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

pub async fn run<B: Bus>(bus: &B) {
    delivers_in_order_to_every_subscriber(bus).await;
    a_dropped_subscription_stops_receiving(bus).await;
    channels_are_separate(bus).await;
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
