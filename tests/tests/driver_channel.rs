//! The bounded channel between a peer connection's application side and its driver task in
//! the vendored webrtc-rs (`webrtc::runtime::channel`, `media-node/vendor/PATCHES.md`): every
//! RTP packet written to a subscriber's track goes through one. It is Portunus's own code, so
//! it is tested here: order, capacity and back-pressure, wake-ups across threads, closing from
//! either side, and that a receiver waiting on an empty queue allocates nothing.

use portunus_tests::allocations;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use webrtc::runtime::{channel, TryRecvError, TrySendError};

#[global_allocator]
static ALLOCATOR: allocations::PerThread = allocations::PerThread;

/// How long anything that should happen at once may take.
const PROMPT: Duration = Duration::from_secs(5);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime")
}

#[test]
fn values_arrive_in_order_and_a_full_queue_refuses_more() {
    let (tx, mut rx) = channel::<u32>(4);
    for v in 0..4 {
        tx.try_send(v).expect("room for four");
    }
    assert!(matches!(tx.try_send(4), Err(TrySendError::Full(4))));
    let got: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(got, [0, 1, 2, 3]);
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    // A capacity of 0 holds one, rather than panicking.
    let (tx, _rx) = channel::<u32>(0);
    tx.try_send(1).expect("room for one");
    assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
}

#[test]
fn values_cross_threads_in_order_with_either_side_waiting() {
    // Capacity 8 for 1,000 values: the receiver waits for the sender and the sender for the
    // receiver, each woken from the other thread.
    let (tx, mut rx) = channel::<u32>(8);
    let sender = std::thread::spawn(move || {
        runtime().block_on(async {
            for v in 0..1000 {
                tokio::time::timeout(PROMPT, tx.send(v)).await.expect("woken for room").expect("open");
                if v % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        })
    });
    let got = runtime().block_on(async {
        let mut got = Vec::new();
        while let Some(v) = tokio::time::timeout(PROMPT, rx.recv()).await.expect("woken for the value") {
            got.push(v);
            if got.len() % 300 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        got
    });
    sender.join().expect("sender");
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
}

#[test]
fn a_send_into_a_full_queue_waits_until_a_value_is_taken() {
    let (tx, mut rx) = channel::<u32>(1);
    runtime().block_on(async {
        tx.send(1).await.expect("room");
        let second = tx.send(2);
        let mut second = pin!(second);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), second.as_mut()).await.is_err(),
            "a send into a full queue completed without waiting"
        );
        assert_eq!(rx.try_recv().ok(), Some(1));
        tokio::time::timeout(PROMPT, second).await.expect("released by the value taken").expect("open");
        assert_eq!(rx.try_recv().ok(), Some(2));
    });
}

#[test]
fn the_last_sender_leaving_ends_the_receiver_after_what_is_queued() {
    let (tx, mut rx) = channel::<u32>(8);
    let other = tx.clone();
    tx.try_send(1).expect("room");
    other.try_send(2).expect("room");
    drop(tx);
    assert!(!rx.is_closed(), "one sender is left");
    let leaving = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(other);
    });
    runtime().block_on(async {
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        // Waiting when the last sender leaves: woken, and told it is over.
        let end = tokio::time::timeout(PROMPT, rx.recv()).await.expect("woken by the last sender leaving");
        assert_eq!(end, None);
    });
    leaving.join().expect("thread");
    assert!(rx.is_closed());
}

#[test]
fn a_receiver_gone_fails_every_send_and_releases_a_waiting_one() {
    let (tx, rx) = channel::<u32>(1);
    tx.try_send(1).expect("room");
    let dropping = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(rx);
    });
    runtime().block_on(async {
        let waited = tokio::time::timeout(PROMPT, tx.send(2)).await.expect("released by the receiver leaving");
        assert_eq!(waited.map_err(|e| e.0).err(), Some(2));
    });
    dropping.join().expect("thread");
    assert!(tx.is_closed());
    assert!(matches!(tx.try_send(3), Err(TrySendError::Disconnected(3))));
}

#[test]
fn a_receiver_waiting_on_an_empty_queue_allocates_nothing() {
    let (tx, mut rx) = channel::<[u8; 200]>(64);
    let mut cx = Context::from_waker(Waker::noop());
    let mut cycle = |cx: &mut Context<'_>| {
        // Empty: the receiver parks its waker, as the driver does after each burst.
        assert!(rx.poll_recv(cx).is_pending());
        tx.try_send([7; 200]).expect("room");
        assert!(matches!(rx.poll_recv(cx), Poll::Ready(Some(_))));
        // The same through the future the driver awaits.
        let mut recv = pin!(rx.recv());
        assert!(recv.as_mut().poll(cx).is_pending());
        tx.try_send([8; 200]).expect("room");
        assert!(matches!(recv.poll(cx), Poll::Ready(Some(_))));
    };
    // The first wait may set things up.
    cycle(&mut cx);
    let before = allocations::on_this_thread();
    for _ in 0..1000 {
        cycle(&mut cx);
    }
    let made = allocations::on_this_thread() - before;
    assert_eq!(made, 0, "{made} allocations in 1000 waits on an empty queue");
}
