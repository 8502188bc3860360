//! The thread the gateway's core actors run on: the first WebSocket worker's.
//!
//! A WebSocket request that needs a media node goes from the connection's actor to the RPC
//! client, over the bus to the node's agent and its room, and back the same way. actix-web runs
//! each worker on a thread of its own; with the core actors (and, standalone, the in-process
//! media node) on the main thread, such a request changed threads twice, and its event once
//! more, and on one core each change is a context switch: the standalone signaling profile spent
//! 39 % of its time there. Started on the worker's own arbiter, the connections that worker serves never leave
//! it. The dispatcher needs the actors' addresses before any worker exists, so the addresses are
//! made first ([`Unstarted`]) and the actors run once the worker reports its arbiter.

use actix::dev::channel;
use actix::prelude::*;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the first worker may take to start and report its arbiter, and the core actors
/// (with an in-process node) to start after it.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// actix's own mailbox capacity for started actors (not exported by actix).
const MAILBOX_CAPACITY: usize = 16;

/// An actor's address handed out before the actor runs. Messages sent meanwhile wait in its
/// mailbox.
pub struct Unstarted<A: Actor<Context = Context<A>>>(channel::AddressReceiver<A>);

impl<A: Actor<Context = Context<A>>> Unstarted<A> {
    pub fn new() -> (Addr<A>, Self) {
        let (tx, rx) = channel::channel(MAILBOX_CAPACITY);
        (Addr::new(tx), Self(rx))
    }

    /// The actor's context, to add streams to before [`Context::run`].
    pub fn into_context(self) -> Context<A> {
        Context::with_receiver(self.0)
    }
}

/// Where the workers report their arbiters (the first report wins).
pub fn worker_reports() -> (WorkerReport, mpsc::UnboundedReceiver<ArbiterHandle>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (WorkerReport(tx), rx)
}

/// Called from an `HttpServer` factory, which actix-web runs once on each worker's thread.
#[derive(Clone)]
pub struct WorkerReport(mpsc::UnboundedSender<ArbiterHandle>);

impl WorkerReport {
    pub fn report(&self) {
        let _ = self.0.send(Arbiter::current());
    }
}

/// The first worker's arbiter, once it has started.
pub async fn first_worker(reports: &mut mpsc::UnboundedReceiver<ArbiterHandle>) -> std::io::Result<ArbiterHandle> {
    match tokio::time::timeout(START_TIMEOUT, reports.recv()).await {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(std::io::Error::other("the WebSocket server stopped before its first worker started")),
        Err(_) => Err(std::io::Error::other(format!(
            "the WebSocket server's first worker did not start within {START_TIMEOUT:?}"
        ))),
    }
}
