//! The Redis `Store` and `Bus` pass the same conformance suites as their in-memory twins,
//! against a real `redis-server` started by the test, and survive a Redis restart.

use portunus_tests::RedisServer;
use shared::bus::{Bus, RedisBus};
use shared::clock::ManualClock;
use shared::store::{RedisStore, Store};
use shared::testing::{bus_conformance, store_conformance};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn redis_store_passes_the_store_conformance_suite() {
    let redis = RedisServer::start();
    let clock = ManualClock::new(1_000_000);
    let store = RedisStore::connect(&redis.url(), Arc::new(clock.clone())).await.unwrap();
    let reset = || async { store.flush().await.unwrap() };
    store_conformance::run(&store, &clock, reset).await;
}

#[tokio::test]
async fn redis_bus_passes_the_bus_conformance_suite() {
    let redis = RedisServer::start();
    let bus = RedisBus::connect(&redis.url()).await.unwrap();
    bus_conformance::run(&bus).await;
}

#[tokio::test]
async fn bus_and_store_recover_after_redis_restarts_and_fail_fast_meanwhile() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let bus = RedisBus::connect(&redis.url()).await.unwrap();
    let store = RedisStore::connect(&redis.url(), Arc::new(shared::clock::SystemClock)).await.unwrap();
    let mut sub = bus.subscribe("restart:chan").await.unwrap();
    redis.kill();
    // During the outage, calls fail with an error in bounded time; they never hang.
    let t = Instant::now();
    assert!(store.counts().await.is_err());
    assert!(bus.publish("restart:chan", "lost".into()).await.is_err());
    assert!(t.elapsed() < Duration::from_secs(8), "outage errors took {:?}", t.elapsed());
    let _redis = RedisServer::start_on(port);
    // Both reconnect by themselves and the old subscription is restored.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(Instant::now() < deadline, "no recovery");
        if store.counts().await.is_ok() && bus.publish("restart:chan", "back".into()).await.is_ok() {
            if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), sub.recv()).await {
                assert_eq!(&m[..], b"back");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sid = store.create_session(shared::store::NewSession::anyone(1000), 10).await.unwrap();
    assert!(store.touch_session(sid).await.unwrap());
}

/// With Redis the store publishes the wake-ups from the script that pushes the events (one round
/// trip): each session that got one is woken once; a session without a mailbox is not woken.
#[tokio::test]
async fn the_redis_store_wakes_the_sessions_it_pushed_to() {
    let redis = RedisServer::start();
    let backends = shared::Backends::redis(&redis.url()).await.unwrap();
    let (store, bus) = (&backends.store, &backends.bus);
    let a = store.create_session(shared::store::NewSession::anyone(10_000), 10).await.unwrap();
    let gone = shared::ids::SessionId(424242);
    let mut woken_a = bus.subscribe(&shared::keys::session_channel(a)).await.unwrap();
    let mut woken_gone = bus.subscribe(&shared::keys::session_channel(gone)).await.unwrap();
    let ev = |t: &'static str| bytes::Bytes::from_static(t.as_bytes());
    let batch = [(a, ev("a1")), (gone, ev("nobody")), (a, ev("a2"))];
    let wake = shared::wire::Signal::Wake.to_bytes();
    assert!(store.push_events_waking(&batch, &wake).await.unwrap(), "woken by the store itself");
    let wake = tokio::time::timeout(Duration::from_secs(2), woken_a.recv()).await.expect("a woken").unwrap();
    assert_eq!(shared::wire::Signal::from_bytes(&wake), Some(shared::wire::Signal::Wake));
    assert_eq!(store.pop_events(a, 10).await.unwrap(), vec![ev("a1"), ev("a2")], "the events were in first");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), woken_a.recv()).await.is_err(),
        "one wake-up per session and batch"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(100), woken_gone.recv()).await.is_err(),
        "no mailbox, no wake-up"
    );
}
