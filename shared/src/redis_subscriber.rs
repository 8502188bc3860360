//! A Redis connection in subscriber mode: SUBSCRIBE and UNSUBSCRIBE go out on it, and the
//! messages published to its channels come back, read with [`crate::resp`] like the replies of
//! a [`crate::redis_link::Link`] (redis-rs's pub/sub connection reads them with its `combine`
//! parser through a task and two channels of its own).
//!
//! One owner drives it (the bus's subscriber task), so it is a plain value, not a task: a
//! subscription returns once Redis confirmed it, keeping the messages that arrived before the
//! confirmation for [`Subscriber::next`], in order.

use crate::redis_link::{Stream, Target};
use ::redis::{RedisError, Value};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::io;
use std::time::Duration;

/// A message published to a channel the connection subscribes to.
#[derive(Debug)]
pub struct Published {
    pub channel: Bytes,
    pub payload: Bytes,
}

/// What the server pushes to a subscriber connection.
enum Push {
    Message(Published),
    Subscribed(Bytes),
    /// An unsubscription's confirmation, or anything else a subscriber is not waiting for.
    Other,
    Refused(String),
}

pub struct Subscriber {
    stream: Stream,
    input: BytesMut,
    /// Messages that arrived while a subscription waited for its confirmation.
    early: VecDeque<Published>,
}

impl Subscriber {
    /// A connection to the server `client` names, greeted, within `connect_timeout`.
    pub async fn open(client: &::redis::Client, connect_timeout: Duration) -> Result<Self, RedisError> {
        let target = Target::of(client, connect_timeout)?;
        let stream = target.connect().await?;
        Ok(Self { stream, input: BytesMut::with_capacity(16 * 1024), early: VecDeque::new() })
    }

    /// Subscribes to `channel`, returning once Redis confirmed it.
    pub async fn subscribe(&mut self, channel: &str) -> io::Result<()> {
        self.stream.write_all(&::redis::cmd("SUBSCRIBE").arg(channel).get_packed_command()).await?;
        loop {
            match self.push().await? {
                Push::Message(m) => self.early.push_back(m),
                Push::Subscribed(c) if c == channel.as_bytes() => return Ok(()),
                Push::Refused(e) => return Err(io::Error::other(format!("SUBSCRIBE refused: {e}"))),
                Push::Subscribed(_) | Push::Other => {}
            }
        }
    }

    /// Unsubscribes from `channel` (its confirmation is passed over by [`Self::next`]).
    pub async fn unsubscribe(&mut self, channel: &str) -> io::Result<()> {
        self.stream.write_all(&::redis::cmd("UNSUBSCRIBE").arg(channel).get_packed_command()).await
    }

    /// The next message. Cancel-safe, as [`Stream::reply`] is.
    pub async fn next(&mut self) -> io::Result<Published> {
        if let Some(m) = self.early.pop_front() {
            return Ok(m);
        }
        loop {
            match self.push().await? {
                Push::Message(m) => return Ok(m),
                Push::Refused(e) => return Err(io::Error::other(format!("Redis refused a subscriber command: {e}"))),
                Push::Subscribed(_) | Push::Other => {}
            }
        }
    }

    async fn push(&mut self) -> io::Result<Push> {
        Ok(classify(self.stream.reply(&mut self.input).await?))
    }
}

fn classify(v: Value) -> Push {
    match v {
        Value::Array(items) => {
            let mut it = items.into_iter();
            let kind = it.next();
            let mut bulk = || match it.next() {
                Some(Value::BulkString(b)) => Some(Bytes::from(b)),
                _ => None,
            };
            match kind {
                Some(Value::BulkString(k)) if k == b"message" => match (bulk(), bulk()) {
                    (Some(channel), Some(payload)) => Push::Message(Published { channel, payload }),
                    _ => Push::Other,
                },
                Some(Value::BulkString(k)) if k == b"subscribe" => bulk().map_or(Push::Other, Push::Subscribed),
                _ => Push::Other,
            }
        }
        Value::ServerError(e) => Push::Refused(format!("{e:?}")),
        _ => Push::Other,
    }
}
