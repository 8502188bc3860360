//! A subscriber's data channels: what the publishers it subscribed to send on theirs, relayed
//! on channels of the same labels (as Janus relays data: the label comes along, and a channel
//! is opened towards the subscriber the first time a label is seen). One task per subscriber
//! owns its channels; one small task per source feeds it.

use super::feed::DataMessage;
use bytes::BytesMut;
use shared::ids::ParticipantId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::AbortHandle;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::PeerConnection;

/// The label of the channel a subscriber's offer carries (janus.js's own default label).
pub const DEFAULT_LABEL: &str = "JanusDataChannel";
/// How long a message waits for its channel to open before it is dropped.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages queued towards one subscriber; a source that outruns it lags and drops.
const QUEUE: usize = 256;
/// The most data channels one PeerConnection has open, each way: Janus's SCTP association
/// holds 150 (`NUMBER_OF_CHANNELS`). A publisher's past it are closed; towards a subscriber, a
/// message under a label past it is dropped, as Janus drops one it has no channel for.
pub const MAX_DATA_CHANNELS: usize = 150;

/// Changes to a subscriber's data sources.
pub enum DataControl {
    /// Relay this publisher's data channel messages.
    Add(ParticipantId, broadcast::WeakSender<DataMessage>),
    /// Stop relaying this publisher's (`unsubscribe`, or it left).
    Remove(ParticipantId),
}

/// One channel towards the subscriber, and whether it is open.
struct Channel {
    dc: Arc<dyn DataChannel>,
    open: watch::Receiver<bool>,
}

/// Drains a data channel's events (someone must) and says whether it is open.
pub fn watch_open(channel: Arc<dyn DataChannel>) -> watch::Receiver<bool> {
    let (tx, open) = watch::channel(false);
    tokio::spawn(async move {
        while let Some(ev) = channel.poll().await {
            match ev {
                DataChannelEvent::OnOpen => {
                    let _ = tx.send(true);
                }
                DataChannelEvent::OnClose => break,
                _ => {}
            }
        }
        let _ = tx.send(false);
    });
    open
}

impl Channel {
    fn watch(dc: Arc<dyn DataChannel>) -> Self {
        Self { open: watch_open(dc.clone()), dc }
    }

    async fn send(&self, m: &DataMessage) -> bool {
        let mut open = self.open.clone();
        match tokio::time::timeout(OPEN_TIMEOUT, open.wait_for(|o| *o)).await {
            Ok(Ok(_)) => {}
            _ => return false,
        }
        // The API takes the bytes by value (a copy per subscriber; data channels carry little).
        let sent = match (m.text, std::str::from_utf8(&m.data)) {
            (true, Ok(text)) => self.dc.send_text(text).await,
            _ => self.dc.send(BytesMut::from(&m.data[..])).await,
        };
        sent.is_ok()
    }
}

/// Relays the subscriber's sources onto its data channels (`first` is the one its offer
/// created) until `control` closes (the subscriber is gone).
pub(super) async fn relay(
    pc: Arc<dyn PeerConnection>,
    first: Arc<dyn DataChannel>,
    mut control: mpsc::UnboundedReceiver<DataControl>,
) {
    let (tx, mut rx) = mpsc::channel::<DataMessage>(QUEUE);
    let mut channels: HashMap<Arc<str>, Channel> = HashMap::new();
    channels.insert(DEFAULT_LABEL.into(), Channel::watch(first));
    let mut sources: HashMap<ParticipantId, AbortHandle> = HashMap::new();
    loop {
        tokio::select! {
            c = control.recv() => match c {
                Some(DataControl::Add(id, feed)) => {
                    let Some(mut messages) = feed.upgrade().map(|f| f.subscribe()) else { continue };
                    let tx = tx.clone();
                    let task = tokio::spawn(async move {
                        loop {
                            match messages.recv().await {
                                Ok(m) => {
                                    if tx.send(m).await.is_err() {
                                        break;
                                    }
                                }
                                Err(broadcast::error::RecvError::Lagged(n)) => {
                                    tracing::debug!(dropped = n, "slow subscriber dropped data channel messages");
                                }
                                Err(broadcast::error::RecvError::Closed) => break,
                            }
                        }
                    });
                    if let Some(old) = sources.insert(id, task.abort_handle()) {
                        old.abort();
                    }
                }
                Some(DataControl::Remove(id)) => {
                    if let Some(task) = sources.remove(&id) {
                        task.abort();
                    }
                }
                None => break,
            },
            Some(m) = rx.recv() => {
                if !channels.contains_key(&m.label) {
                    if channels.len() >= MAX_DATA_CHANNELS {
                        tracing::debug!(label = %m.label, "data channel message dropped (no channel left)");
                        continue;
                    }
                    match pc.create_data_channel(&m.label, None).await {
                        Ok(dc) => {
                            channels.insert(m.label.clone(), Channel::watch(dc));
                        }
                        Err(e) => {
                            tracing::debug!(label = %m.label, error = %e, "cannot open a data channel to the subscriber");
                            continue;
                        }
                    }
                }
                if let Some(ch) = channels.get(&m.label) {
                    if !ch.send(&m).await {
                        tracing::debug!(label = %m.label, "data channel message dropped (channel not open)");
                    }
                }
            }
        }
    }
    for (_, task) in sources {
        task.abort();
    }
}
