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
