//! Publish/subscribe between processes. Delivery is at-most-once and ordered per channel, as
//! with Redis pub/sub; anything that must not be lost goes through the [`crate::store::Store`]
//! (mailboxes) and the bus only wakes its consumer.

mod memory;
mod redis;

pub use self::redis::{BusIo, RedisBus};
pub use memory::MemoryBus;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes `payload` to every current subscriber of `channel`.
    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), BusError>;
    /// Publishes each payload to its channel, in order (one round trip to Redis for all).
    async fn publish_many(&self, messages: &[(String, Bytes)]) -> Result<(), BusError> {
        for (channel, payload) in messages {
            self.publish(channel, payload.clone()).await?;
        }
        Ok(())
    }
    /// Subscribes to `channel`; dropping the subscription unsubscribes.
    async fn subscribe(&self, channel: &str) -> Result<Subscription, BusError>;
    /// This process's relay channel: the one channel it listens on for every subscription it
    /// made with [`Bus::subscribe_relayed`]. Whoever publishes on such a channel also sends the message
    /// to the relays recorded with it ([`relayed`]): the store's scripts do so for a session's
    /// signals. `None` where a plain subscription costs nothing (in-process).
    fn relay(&self) -> Option<&str> {
        None
    }
    /// Subscribes to `channel` as delivered through this process's relay: nothing is sent to
    /// the server, so subscribing and dropping cost no round trip (a WebSocket's sessions). A
    /// plain subscription on a bus without a relay.
    async fn subscribe_relayed(&self, channel: &str) -> Result<Subscription, BusError> {
        self.subscribe(channel).await
    }
}

/// A message for `channel` as sent to a relay: the channel's name, a newline, the payload
/// (channel names hold no newline). The store's Lua scripts build the same.
pub fn relayed(channel: &str, payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(channel.len() + 1 + payload.len());
    v.extend_from_slice(channel.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(payload);
    Bytes::from(v)
}

/// The channel and payload of a relayed message.
pub fn unrelay(message: &[u8]) -> Option<(&str, &[u8])> {
    let at = message.iter().position(|b| *b == b'\n')?;
    Some((std::str::from_utf8(&message[..at]).ok()?, &message[at + 1..]))
}

/// A live subscription: a stream of payloads that unsubscribes when dropped.
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Bytes>,
    _guard: Box<dyn Send + Sync>,
}

impl Subscription {
    pub fn new(rx: mpsc::UnboundedReceiver<Bytes>, guard: Box<dyn Send + Sync>) -> Self {
        Self { rx, _guard: guard }
    }
    /// The next payload, or `None` when the bus closed the subscription.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }
}

impl Stream for Subscription {
    type Item = Bytes;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.rx.poll_recv(cx)
    }
}
