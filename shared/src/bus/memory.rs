//! The in-process bus for standalone mode and tests. A typed message ([`Bus::send`]) is handed
//! over as it is; the wire encoding runs where the bus is Redis.

use super::{Bus, BusError, Message, Payload, Subscription};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::mpsc;

type Subscribers = HashMap<String, Vec<(u64, mpsc::UnboundedSender<Payload>)>>;

/// One broker shared by everything in the process; the lock guards only the subscriber table
/// and is never held across an await.
#[derive(Clone, Default)]
pub struct MemoryBus {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    subs: Subscribers,
}

struct Unsubscribe {
    bus: Weak<Mutex<Inner>>,
    channel: String,
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            let mut g = bus.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(list) = g.subs.get_mut(&self.channel) {
                list.retain(|(i, _)| *i != self.id);
                if list.is_empty() {
                    g.subs.remove(&self.channel);
                }
            }
        }
    }
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn deliver(&self, channel: &str, payload: Payload) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = g.subs.get(channel) {
            for (_, tx) in list {
                // A closed receiver is being dropped; its guard removes it.
                let _ = tx.send(payload.clone());
            }
        }
    }

    /// How many subscriptions are live (a leak check for tests).
    pub fn subscription_count(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.subs.values().map(Vec::len).sum()
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), BusError> {
        self.deliver(channel, Payload::Bytes(payload));
        Ok(())
    }

    async fn send(&self, channel: &str, message: Arc<dyn Message>) -> Result<(), BusError> {
        self.deliver(channel, Payload::Message(message));
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.next_id += 1;
        let id = g.next_id;
        g.subs.entry(channel.to_owned()).or_default().push((id, tx));
        let guard = Unsubscribe { bus: Arc::downgrade(&self.inner), channel: channel.to_owned(), id };
        Ok(Subscription::new(rx, Box::new(guard)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_bus_conformance_suite() {
        let bus = MemoryBus::new();
        crate::testing::bus_conformance::run(&bus).await;
        assert_eq!(bus.subscription_count(), 0, "every subscription was released");
    }
}
