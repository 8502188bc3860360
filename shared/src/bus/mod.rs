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
use std::any::Any;
use std::pin::Pin;
use std::sync::Arc;
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
    /// Publishes a typed message to every current subscriber of `channel`: encoded by a bus
    /// between processes, handed over as it is by the in-process one (which saves encoding and
    /// decoding it: in standalone mode that was 8 % of a signaling request's CPU time).
    async fn send(&self, channel: &str, message: Arc<dyn Message>) -> Result<(), BusError> {
        self.publish(channel, message.encode()).await
    }
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

/// A message [`Bus::send`] can carry typed: what it is on the wire, and itself for a receiver
/// in the same process to take back. Every envelope of [`crate::wire`] is one.
pub trait Message: Any + Send + Sync {
    fn encode(&self) -> Bytes;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T: serde::Serialize + Send + Sync + 'static> Message for T {
    fn encode(&self) -> Bytes {
        crate::wire::encode(self)
    }
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// What a subscription delivers: bytes, or a typed message sent within the process.
#[derive(Clone)]
pub enum Payload {
    Bytes(Bytes),
    Message(Arc<dyn Message>),
}

impl Payload {
    /// The payload as it is on the wire.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Payload::Bytes(b) => b,
            Payload::Message(m) => m.encode(),
        }
    }

    /// The message of type `T`: taken back when it was sent typed (without a copy when this
    /// was its only receiver), else decoded from its bytes by `decode`.
    pub fn decode<T: Message + Clone>(self, decode: impl FnOnce(&[u8]) -> Result<T, String>) -> Result<T, String> {
        match self {
            Payload::Bytes(b) => decode(&b),
            Payload::Message(m) => match m.into_any().downcast::<T>() {
                Ok(t) => Ok(Arc::try_unwrap(t).unwrap_or_else(|t| (*t).clone())),
                Err(_) => Err(format!("not a {}", std::any::type_name::<T>())),
            },
        }
    }
}

/// A live subscription: a stream of payloads that unsubscribes when dropped.
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Payload>,
    _guard: Box<dyn Send + Sync>,
}

impl Subscription {
    pub fn new(rx: mpsc::UnboundedReceiver<Payload>, guard: Box<dyn Send + Sync>) -> Self {
        Self { rx, _guard: guard }
    }
    /// The next payload's bytes, or `None` when the bus closed the subscription.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await.map(Payload::into_bytes)
    }
}

impl Stream for Subscription {
    type Item = Payload;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Payload>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_reply, decode_rpc, RpcReply, RpcResult, WIRE_VERSION};

    /// A typed message is taken back only as its own type; bytes are decoded.
    #[test]
    fn a_payload_decodes_to_its_own_type_only() {
        let reply = RpcReply { v: WIRE_VERSION, corr_id: 3, result: RpcResult::Accepted };
        let typed = Payload::Message(Arc::new(reply.clone()));
        assert!(typed.clone().decode(decode_rpc).is_err(), "a reply is no command");
        assert_eq!(typed.clone().decode(decode_reply).unwrap(), reply);
        assert_eq!(Payload::Bytes(typed.into_bytes()).decode(decode_reply).unwrap(), reply);
    }
}
