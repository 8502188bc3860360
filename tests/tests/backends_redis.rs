//! The Redis `Store` and `Bus` pass the same conformance suites as their in-memory twins,
//! against a real `redis-server` started by the test, and survive a Redis restart.

use portunus_tests::RedisServer;
use shared::bus::{Bus, RedisBus};
use shared::clock::ManualClock;
use shared::store::{Claim, NewSession, RedisStore, Store};
use shared::testing::{bus_conformance, store_conformance};
use shared::Backends;
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
async fn redis_backends_deliver_acknowledgements_with_events() {
    let redis = RedisServer::start();
    let b = Backends::redis(&redis.url()).await.unwrap();
    shared::testing::delivery::run(&b).await;
}

#[tokio::test]
async fn bus_and_store_recover_after_redis_restarts_and_fail_fast_meanwhile() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let bus = RedisBus::connect(&redis.url()).await.unwrap();
    let store = RedisStore::connect(&redis.url(), Arc::new(shared::clock::SystemClock)).await.unwrap();
    let mut sub = bus.subscribe("restart:chan").await.unwrap();
    let mut relayed = bus.subscribe_relayed("restart:relayed").await.unwrap();
    let relay = bus.relay().unwrap().to_owned();
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
    // The relay is listened on again too.
    bus.publish(&relay, shared::bus::relayed("restart:relayed", b"relayed")).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(2), relayed.recv()).await.expect("relayed after the restart");
    assert_eq!(&m.unwrap()[..], b"relayed");
    let sid = store.create_session(shared::store::NewSession::anyone(1000), 10).await.unwrap();
    assert!(store.touch_session(sid).await.unwrap());
}

/// With Redis, a session's signals come from the scripts that cause them and reach its owner's
/// process through that process's relay, with no subscription per session at the server: the
/// wake-ups of a push (one per session and batch, none for a session without a mailbox), a
/// claim's `Claimed` (to the previous owner), and the destroy's `Over` (to the current owner,
/// unless that connection is the one ending it) after the session's last event is in its
/// mailbox. A plain
/// subscription (an HTTP long-poll) still hears the session's channel.
#[tokio::test]
async fn session_signals_reach_the_owners_relay_without_a_subscription_per_session() {
    use shared::wire::Signal;
    let redis = RedisServer::start();
    let (gw1, gw2) = (Backends::redis(&redis.url()).await.unwrap(), Backends::redis(&redis.url()).await.unwrap());
    let (relay1, relay2) = (gw1.bus.relay().unwrap().to_owned(), gw2.bus.relay().unwrap().to_owned());
    assert_ne!(relay1, relay2, "a relay per process");
    let new = NewSession { owner: Some(1), relay: Some(&relay1), ..NewSession::anyone(10_000) };
    let sid = gw1.store.create_session(new, 10).await.unwrap();
    let channel = shared::keys::session_channel(sid);
    let mut on1 = gw1.bus.subscribe_relayed(&channel).await.unwrap();
    let mut plain = gw2.bus.subscribe(&channel).await.unwrap();
    assert_eq!(subscribers_at_the_server(redis.port, &channel), 1, "only the plain subscription is one at the server");

    let ev = |t: &'static str| bytes::Bytes::from_static(t.as_bytes());
    let nobody = shared::ids::SessionId(424242);
    gw2.deliver_many(&[(sid, ev("a1")), (nobody, ev("x")), (sid, ev("a2"))]).await.unwrap();
    assert_eq!(signal(&mut on1).await, Some(Signal::Wake), "woken through its relay");
    assert_eq!(signal(&mut plain).await, Some(Signal::Wake), "and on the channel");
    assert_eq!(gw1.store.pop_events(sid, 10).await.unwrap(), vec![ev("a1"), ev("a2")]);
    assert_eq!(signal(&mut on1).await, None, "one wake-up per session and batch");

    let mut on2 = gw2.bus.subscribe_relayed(&channel).await.unwrap();
    assert_eq!(gw2.store.claim_session(sid, 2, "", Some(&relay2)).await.unwrap(), Claim::Claimed);
    assert_eq!(signal(&mut on1).await, Some(Signal::Claimed { owner: 2 }), "the previous owner is told");
    assert_eq!(signal(&mut plain).await, Some(Signal::Claimed { owner: 2 }));
    gw1.deliver(sid, ev("b")).await.unwrap();
    assert_eq!(signal(&mut on2).await, Some(Signal::Wake), "wake-ups follow the claim");
    assert_eq!(signal(&mut on1).await, None, "and no longer reach the previous owner");
    assert_eq!(signal(&mut plain).await, Some(Signal::Wake));

    gw1.store.pop_events(sid, 10).await.unwrap();
    // Ended by another connection than its owner (the reaper's is none).
    gw1.store.destroy_session(sid, Some(ev("final")), Some(1)).await.unwrap().expect("ended");
    assert_eq!(signal(&mut on2).await, Some(Signal::Over), "the end reaches the owner's relay");
    assert_eq!(signal(&mut plain).await, Some(Signal::Over), "and the channel");
    assert_eq!(signal(&mut on1).await, None, "but not the previous owner");
    assert_eq!(gw2.store.pop_events(sid, 10).await.unwrap(), vec![ev("final")], "after the last event is in");

    // Ended by its owner (a client's `destroy`): that connection stops consuming it itself, so
    // its relay is not told; a long-poll on the channel still is.
    let new = NewSession { owner: Some(7), relay: Some(&relay2), ..NewSession::anyone(10_000) };
    let sid = gw2.store.create_session(new, 10).await.unwrap();
    let channel = shared::keys::session_channel(sid);
    let mut on2 = gw2.bus.subscribe_relayed(&channel).await.unwrap();
    let mut plain = gw1.bus.subscribe(&channel).await.unwrap();
    gw2.store.push_event(sid, ev("left")).await.unwrap();
    assert_eq!(signal(&mut on2).await, Some(Signal::Wake));
    assert_eq!(signal(&mut plain).await, Some(Signal::Wake));
    let ended = gw2.store.destroy_session(sid, None, Some(7)).await.unwrap().expect("ended");
    assert_eq!(ended.queued, 1, "what its owner still reads");
    assert_eq!(signal(&mut plain).await, Some(Signal::Over), "the channel hears the end");
    assert_eq!(signal(&mut on2).await, None, "the owner's relay does not");
}

/// `PUBSUB NUMSUB channel`, asked over a socket of its own.
fn subscribers_at_the_server(port: u16, channel: &str) -> i64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    write!(s, "PUBSUB NUMSUB {channel}\r\n").unwrap();
    let mut reply = String::new();
    let mut buf = [0u8; 512];
    // [channel, count]: the count is the last line, ":N".
    while !reply.contains("\r\n:") || !reply.ends_with("\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "Redis closed the connection: {reply:?}");
        reply.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let count = reply.rsplit("\r\n:").next().unwrap().trim_end();
    count.parse().unwrap_or_else(|_| panic!("PUBSUB NUMSUB: {reply:?}"))
}

/// The next signal on `sub` within a short wait, or `None`.
async fn signal(sub: &mut shared::bus::Subscription) -> Option<shared::wire::Signal> {
    let got = tokio::time::timeout(Duration::from_millis(400), sub.recv()).await.ok()??;
    shared::wire::Signal::from_bytes(&got)
}

/// Tests run in parallel and find ports free before their servers bind them, so two may pick
/// the same one: a server started where another already answers must be refused (`start`
/// then takes another port), not mistaken for the new one, which would have two tests share
/// one Redis.
#[test]
fn a_redis_port_held_by_another_server_is_not_taken_for_ours() {
    let first = RedisServer::start();
    let port = first.port;
    let second = std::panic::catch_unwind(move || RedisServer::start_on(port));
    assert!(second.is_err(), "a second redis-server on port {port} was taken for a new one");
}

/// The pipelined link answers each of many concurrent commands with its own reply, a server
/// error with that command's error only, and a transaction with its `EXEC` reply.
#[tokio::test]
async fn a_link_answers_each_concurrent_command_with_its_own_reply() {
    use redis::AsyncCommands;
    let redis = RedisServer::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let link = shared::redis_link::Link::new(&client, Duration::from_secs(1), Duration::from_secs(2)).unwrap();
    let (conn, _probe) = shared::redis_conn::Conn::new(link);
    let calls = (0..200u64).map(|i| {
        let mut c = conn.clone();
        async move {
            if i % 10 == 0 {
                // WRONGTYPE on a list: an error for this command alone.
                let _: () = c.rpush(format!("l{i}"), "x").await.unwrap();
                let r: redis::RedisResult<i64> = c.incr(format!("l{i}"), 1).await;
                assert_eq!(r.unwrap_err().code(), Some("WRONGTYPE"));
                return;
            }
            let _: () = c.set(format!("k{i}"), i * 3).await.unwrap();
            let v: u64 = c.get(format!("k{i}")).await.unwrap();
            assert_eq!(v, i * 3);
        }
    });
    futures_util::future::join_all(calls).await;
    let mut c = conn.clone();
    let (a, b): (i64, i64) = redis::pipe().atomic().incr("t", 2).incr("t", 3).query_async(&mut c).await.unwrap();
    assert_eq!((a, b), (2, 5));
    let (x, y): (i64, Option<String>) = redis::pipe().incr("p", 1).get("nothing").query_async(&mut c).await.unwrap();
    assert_eq!((x, y), (1, None));
}

/// What a lost connection does to a command tells whether it may have run: one written and
/// left unanswered fails as possibly run (it is not resent), one sent with no server to take
/// it fails as never sent; the first command once the server is back opens a new connection.
#[tokio::test]
async fn a_link_tells_a_command_that_may_have_run_from_one_never_sent() {
    use redis::AsyncCommands;
    let mut redis = RedisServer::start();
    let port = redis.port;
    let client = redis::Client::open(redis.url()).unwrap();
    let link = shared::redis_link::Link::new(&client, Duration::from_secs(1), Duration::from_secs(10)).unwrap();
    let (conn, _probe) = shared::redis_conn::Conn::new(link.clone());
    let mut c = conn.clone();
    let _: () = c.set("k", 1).await.unwrap();
    let waiting = tokio::spawn(async move {
        let mut c = conn.clone();
        c.blpop::<_, Option<(String, String)>>("never", 8.0).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    redis.kill();
    let e = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap().unwrap_err();
    assert!(!shared::redis_conn::never_sent(&e), "an unanswered command counted as never sent: {e}");
    let e = link.send(redis::cmd("PING").get_packed_command(), 0, 1).await.unwrap_err();
    assert!(shared::redis_conn::never_sent(&e), "a command with no server counted as sent: {e}");
    let _redis = RedisServer::start_on(port);
    let v: Option<i64> = c.get("k").await.unwrap(); // A new server: the value is gone, the link is back.
    assert_eq!(v, None);
}

/// A link greets the server as its URL says: the password (AUTH) and the database (SELECT)
/// before any command of its own; a wrong password is a connection refused.
#[tokio::test]
async fn a_link_greets_with_the_urls_password_and_database() {
    use redis::AsyncCommands;
    let redis = RedisServer::start();
    let conn = |url: String| {
        let client = redis::Client::open(url).unwrap();
        let link = shared::redis_link::Link::new(&client, Duration::from_secs(1), Duration::from_secs(2)).unwrap();
        shared::redis_conn::Conn::new(link).0
    };
    let mut plain = conn(redis.url());
    let _: () = plain.set("k", "zero").await.unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("requirepass").arg("sesame").query_async(&mut plain).await.unwrap();
    let at = |rest: &str| format!("redis://:sesame@127.0.0.1:{}/{rest}", redis.port);
    let mut third = conn(at("3"));
    assert_eq!(third.get::<_, Option<String>>("k").await.unwrap(), None, "SELECT 3 not sent");
    let _: () = third.set("k", "three").await.unwrap();
    let mut first = conn(at("0"));
    assert_eq!(first.get::<_, Option<String>>("k").await.unwrap().as_deref(), Some("zero"));
    let e = conn(redis.url()).get::<_, Option<String>>("k").await.unwrap_err();
    assert_eq!(e.code(), Some("NOAUTH"), "{e}");
    let wrong = format!("redis://:open@127.0.0.1:{}/", redis.port);
    let e = conn(wrong).get::<_, Option<String>>("k").await.unwrap_err();
    assert!(e.to_string().contains("refused the greeting"), "{e}");
}

/// A touch keeps a session's keys at least 60 s past its deadline, renewing their expiry (2x
/// the timeout + 60 s) only once the deadline would come nearer than that: the touches of a
/// burst of requests leave the expiry alone.
#[tokio::test]
async fn a_touch_renews_the_session_keys_expiry_only_when_the_deadline_comes_near_it() {
    use redis::AsyncCommands;
    let redis = RedisServer::start();
    let clock = ManualClock::new(1_000_000);
    let store = RedisStore::connect(&redis.url(), Arc::new(clock.clone())).await.unwrap();
    let mut c = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let sid = store.create_session(NewSession::anyone(10_000), 10).await.unwrap();
    store.touch_attach_handle(sid, "janus.plugin.videoroom", None, 10).await.unwrap();
    let (meta, handles) = (format!("pt:{{s:{sid}}}:meta"), format!("pt:{{s:{sid}}}:handles"));
    let kept = |c: &mut redis::aio::MultiplexedConnection| {
        let (mut c, meta) = (c.clone(), meta.clone());
        async move { c.hget::<_, _, u64>(&meta, "kept").await.unwrap() }
    };
    assert_eq!(kept(&mut c).await, 1_080_000, "set with the session");
    let ttl: i64 = c.pttl(&handles).await.unwrap();
    assert!((79_000..=80_000).contains(&ttl), "the handles expire with the session: {ttl} ms");
    // Shortened by hand: a touch that renews sets them back to 80 s.
    for key in [&meta, &handles] {
        let _: () = c.pexpire(key, 5_000).await.unwrap();
    }
    clock.advance_ms(9_000);
    assert!(store.touch_session(sid).await.unwrap());
    assert_eq!(kept(&mut c).await, 1_080_000, "70 s past this deadline: not renewed");
    assert!(c.pttl::<_, i64>(&meta).await.unwrap() <= 5_000);
    clock.advance_ms(1_001);
    assert!(store.touch_session(sid).await.unwrap());
    assert_eq!(kept(&mut c).await, 1_090_001, "the deadline within 60 s of the expiry: renewed");
    for key in [&meta, &handles] {
        let ttl: i64 = c.pttl(key).await.unwrap();
        assert!((79_000..=80_000).contains(&ttl), "{key}: {ttl} ms");
    }
    // A claim changes the expiry otherwise: the next touch renews it whatever `kept` said.
    assert_eq!(store.claim_session(sid, 9, "", None).await.unwrap(), Claim::Claimed);
    assert_eq!(kept(&mut c).await, 0);
    let _: () = c.pexpire(&handles, 5_000).await.unwrap();
    assert!(store.touch_session(sid).await.unwrap());
    assert_eq!(kept(&mut c).await, 1_090_001, "renewed at the same time as before");
    assert!(c.pttl::<_, i64>(&handles).await.unwrap() > 79_000);
}
