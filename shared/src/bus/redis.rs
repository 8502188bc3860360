//! The Redis [`Bus`] for cluster mode: one publisher connection (reconnecting on its own) and one
//! subscriber connection owned by a task that keeps the wanted subscriptions. When Redis goes
//! away the task reconnects with backoff and subscribes again to every channel someone still
//! listens on; messages published meanwhile are lost, as Redis pub/sub is at-most-once, which
//! is why events travel through store mailboxes and the bus only wakes their consumers.
//!
//! The task also listens on the process's relay channel. A relayed subscription is an entry in
//! its table, nothing at the server: a gateway's WebSocket sessions come and go by the thousand,
//! and a SUBSCRIBE and UNSUBSCRIBE each was two round trips per session.

use super::{Bus, BusError, Payload, Subscription};
use crate::redis_conn::Conn;
use crate::redis_link::Link;
use crate::redis_subscriber::Subscriber;
use crate::store::{REDIS_CONNECT_TIMEOUT, REDIS_RESPONSE_TIMEOUT};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Backoff between reconnection attempts of the subscriber connection.
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(1);

/// `relayed`: through the process's relay, with no subscription of its own at the server.
enum Ctl {
    Subscribe {
        channel: String,
        relayed: bool,
        id: u64,
        tx: mpsc::UnboundedSender<Payload>,
        done: oneshot::Sender<Result<(), BusError>>,
    },
    Unsubscribe {
        channel: String,
        relayed: bool,
        id: u64,
    },
}

#[derive(Clone)]
pub struct RedisBus {
    publisher: Conn,
    ctl: mpsc::UnboundedSender<Ctl>,
    next_id: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// This process's relay channel, random per process.
    relay: std::sync::Arc<str>,
}

struct Unsubscribe {
    ctl: mpsc::UnboundedSender<Ctl>,
    channel: String,
    relayed: bool,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let channel = std::mem::take(&mut self.channel);
        let _ = self.ctl.send(Ctl::Unsubscribe { channel, relayed: self.relayed, id: self.id });
    }
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

impl RedisBus {
    /// Connects, with a health probe of its own.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let client = ::redis::Client::open(url).map_err(unavailable)?;
        let (publisher, probe) = Conn::new(publisher_link(&client)?);
        let (bus, io) = Self::with_publisher(client, publisher);
        io.start().await?;
        tokio::spawn(probe.run());
        Ok(bus)
    }

    /// A bus whose publisher is judged reachable or not by `health`'s probe (the store's, in a
    /// process that has both), and its I/O not started: see [`BusIo`].
    pub fn unstarted(url: &str, health: &Conn) -> Result<(Self, BusIo), BusError> {
        let client = ::redis::Client::open(url).map_err(unavailable)?;
        let publisher = health.sharing_health(publisher_link(&client)?);
        Ok(Self::with_publisher(client, publisher))
    }

    fn with_publisher(client: ::redis::Client, publisher: Conn) -> (Self, BusIo) {
        let (ctl, rx) = mpsc::unbounded_channel();
        let relay: std::sync::Arc<str> = crate::keys::relay_channel(&format!("{:x}", crate::ids::random_id())).into();
        let io = BusIo { client, ctl: rx, publisher: publisher.clone(), relay: relay.clone() };
        (Self { publisher, ctl, next_id: Default::default(), relay }, io)
    }

    async fn subscribe_as(&self, channel: &str, relayed: bool) -> Result<Subscription, BusError> {
        // Redis known unreachable: fail now rather than after the confirmation time-out.
        if !self.publisher.reachable() {
            return Err(unavailable("Redis unreachable"));
        }
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let (done, confirmed) = oneshot::channel();
        self.ctl
            .send(Ctl::Subscribe { channel: channel.to_owned(), relayed, id, tx, done })
            .map_err(|_| unavailable("bus stopped"))?;
        match tokio::time::timeout(REDIS_RESPONSE_TIMEOUT * 2, confirmed).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e),
            _ => {
                let _ = self.ctl.send(Ctl::Unsubscribe { channel: channel.to_owned(), relayed, id });
                return Err(unavailable("subscription not confirmed in time"));
            }
        }
        let guard = Unsubscribe { ctl: self.ctl.clone(), channel: channel.to_owned(), relayed, id };
        Ok(Subscription::new(rx, Box::new(guard)))
    }
}

/// A bus's connections before they open: [`BusIo::start`] opens them, and the I/O of both runs
/// on the thread that calls it. Subscriptions asked for before then wait for it.
pub struct BusIo {
    client: ::redis::Client,
    ctl: mpsc::UnboundedReceiver<Ctl>,
    publisher: Conn,
    relay: std::sync::Arc<str>,
}

impl BusIo {
    pub async fn start(self) -> Result<(), BusError> {
        self.publisher.ping().await.map_err(unavailable)?;
        tokio::spawn(subscriber_task(self.client, self.relay, self.ctl));
        Ok(())
    }
}

/// The publisher's link: it opens its connection on its first command.
fn publisher_link(client: &::redis::Client) -> Result<Link, BusError> {
    Link::new(client, REDIS_CONNECT_TIMEOUT, REDIS_RESPONSE_TIMEOUT).map_err(unavailable)
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), BusError> {
        let mut c = self.publisher.clone();
        ::redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload.as_ref())
            .query_async::<i64>(&mut c)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn publish_many(&self, messages: &[(String, Bytes)]) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut c = self.publisher.clone();
        let mut pipe = ::redis::pipe();
        for (channel, payload) in messages {
            pipe.cmd("PUBLISH").arg(channel).arg(payload.as_ref()).ignore();
        }
        pipe.query_async::<()>(&mut c).await.map_err(unavailable)
    }

    /// Returns once Redis has confirmed the subscription, so a consumer that subscribes and then
    /// reads its mailbox cannot miss a wake-up in between.
    async fn subscribe(&self, channel: &str) -> Result<Subscription, BusError> {
        self.subscribe_as(channel, false).await
    }

    fn relay(&self) -> Option<&str> {
        Some(&self.relay)
    }

    /// Returns once the subscriber task has recorded it (the relay itself is subscribed to for
    /// as long as the task runs), with the same guarantee as [`Bus::subscribe`].
    async fn subscribe_relayed(&self, channel: &str) -> Result<Subscription, BusError> {
        self.subscribe_as(channel, true).await
    }
}

type Wanted = HashMap<String, Vec<(u64, mpsc::UnboundedSender<Payload>)>>;

async fn subscribe_on(sub: &mut Subscriber, channel: &str) -> Result<(), BusError> {
    tokio::time::timeout(REDIS_RESPONSE_TIMEOUT, sub.subscribe(channel))
        .await
        .map_err(|_| unavailable("SUBSCRIBE timed out"))?
        .map_err(unavailable)
}

/// Owns the subscriber connection and the tables of who listens where: `wanted`, channels
/// subscribed to at the server, and `relayed`, channels whose messages arrive on the relay.
async fn subscriber_task(client: ::redis::Client, relay: std::sync::Arc<str>, mut ctl: mpsc::UnboundedReceiver<Ctl>) {
    let mut wanted: Wanted = HashMap::new();
    let mut relayed: Wanted = HashMap::new();
    let mut backoff = RECONNECT_MIN;
    loop {
        // (Re)connect and restore the relay and every wanted subscription.
        let mut sub = match Subscriber::open(&client, REDIS_CONNECT_TIMEOUT).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "bus: Redis subscriber connection failed; retrying");
                // Keep serving control messages while Redis is away: new subscriptions fail fast.
                let sleep = tokio::time::sleep(backoff);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => break,
                        c = ctl.recv() => match c {
                            None => return,
                            Some(Ctl::Subscribe { done, .. }) => { let _ = done.send(Err(unavailable("Redis unavailable"))); }
                            Some(Ctl::Unsubscribe { channel, relayed: r, id }) => {
                                remove(if r { &mut relayed } else { &mut wanted }, &channel, id);
                            }
                        },
                    }
                }
                backoff = (backoff * 2).min(RECONNECT_MAX);
                continue;
            }
        };
        let mut restored = true;
        for channel in std::iter::once(&*relay).chain(wanted.keys().map(String::as_str)) {
            if let Err(e) = subscribe_on(&mut sub, channel).await {
                tracing::warn!(error = %e, "bus: resubscribe failed");
                restored = false;
                break;
            }
        }
        if !restored {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RECONNECT_MAX);
            continue;
        }
        if backoff > RECONNECT_MIN {
            tracing::info!(channels = wanted.len(), "bus: Redis subscriber connection restored");
        }
        backoff = RECONNECT_MIN;
        loop {
            tokio::select! {
                msg = sub.next() => match msg {
                    Ok(m) if m.channel == relay.as_bytes() => {
                        match super::unrelay(&m.payload) {
                            Some((channel, payload)) => send_to(&relayed, channel, m.payload.slice_ref(payload)),
                            None => tracing::warn!("bus: undecodable relayed message"),
                        }
                    }
                    Ok(m) => match std::str::from_utf8(&m.channel) {
                        Ok(channel) => send_to(&wanted, channel, m.payload),
                        Err(_) => tracing::warn!("bus: a message on a channel whose name is not UTF-8"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "bus: Redis subscriber connection lost; reconnecting");
                        break;
                    }
                },
                c = ctl.recv() => match c {
                    None => return,
                    Some(Ctl::Subscribe { channel, relayed: true, id, tx, done }) => {
                        relayed.entry(channel).or_default().push((id, tx));
                        let _ = done.send(Ok(()));
                    }
                    Some(Ctl::Subscribe { channel, relayed: false, id, tx, done }) => {
                        let first = !wanted.contains_key(&channel);
                        let r = if first { subscribe_on(&mut sub, &channel).await } else { Ok(()) };
                        if r.is_ok() {
                            wanted.entry(channel).or_default().push((id, tx));
                        }
                        let failed = r.is_err();
                        let _ = done.send(r);
                        if failed {
                            break; // The connection is suspect: rebuild it.
                        }
                    }
                    Some(Ctl::Unsubscribe { channel, relayed: true, id }) => remove(&mut relayed, &channel, id),
                    Some(Ctl::Unsubscribe { channel, relayed: false, id }) => {
                        remove(&mut wanted, &channel, id);
                        if !wanted.contains_key(&channel) {
                            let _ = tokio::time::timeout(REDIS_RESPONSE_TIMEOUT, sub.unsubscribe(&channel)).await;
                        }
                    }
                },
            }
        }
    }
}

fn send_to(table: &Wanted, channel: &str, payload: Bytes) {
    if let Some(list) = table.get(channel) {
        let payload = Payload::Bytes(payload);
        for (_, tx) in list {
            let _ = tx.send(payload.clone());
        }
    }
}

fn remove(wanted: &mut Wanted, channel: &str, id: u64) {
    if let Some(list) = wanted.get_mut(channel) {
        list.retain(|(i, _)| *i != id);
        if list.is_empty() {
            wanted.remove(channel);
        }
    }
}
