//! The one Redis connection type of the store and the bus: a [`Link`], which reconnects after a
//! failure, plus one resend of a command that certainly never left, plus a health watch.
//!
//! Health: a probe PINGs every [`PROBE_EVERY`]; one unanswered for [`PROBE_TIMEOUT`] marks Redis
//! unreachable. While it is, commands fail at once instead of each waiting out its response
//! time-out (a request that needs three commands would otherwise take three time-outs), and
//! commands in flight when it is marked fail then. The next answered PING clears the mark, so a
//! process cut off from Redis answers every request with an error within about a second and
//! serves again, without a restart, once the network is back.
//!
//! Why: when Redis restarts, a connection learns that its socket is dead only by using it, so the
//! first command of every process afterwards failed with "broken pipe" (a client saw 499 or a
//! 462 time-out for a request the cluster could have served). A command whose write failed
//! (broken pipe, not connected, refused) never reached any server, so sending it again on the
//! fresh connection cannot run it twice. A command that failed after it was written (reset,
//! time-out) is not resent: it may have run.

use crate::redis_link::Link;
use ::redis::aio::ConnectionLike;
use ::redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};
use std::future::Future;
use std::io::ErrorKind;
use std::time::Duration;
use tokio::sync::watch;

pub const PROBE_EVERY: Duration = Duration::from_millis(250);
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(600);

#[derive(Clone)]
pub struct Conn {
    link: Link,
    /// Whether the last probe was answered.
    reachable: watch::Receiver<bool>,
}

impl Conn {
    /// Wraps a link; its health is judged by the returned probe once that runs.
    pub fn new(link: Link) -> (Self, Probe) {
        let (tx, reachable) = watch::channel(true);
        (Self { link: link.clone(), reachable }, Probe { link, tx })
    }

    /// Another link (to the same Redis) judged by this one's probe, so that the store and
    /// the bus of a process never disagree on whether Redis is there.
    pub fn sharing_health(&self, link: Link) -> Self {
        Self { link, reachable: self.reachable.clone() }
    }

    /// One PING: the first command opens the connection, and its I/O task runs on the thread
    /// that sent it.
    pub async fn ping(&self) -> Result<(), RedisError> {
        ::redis::cmd("PING").query_async::<()>(&mut self.clone()).await
    }

    /// Whether Redis answered the last probe.
    pub fn reachable(&self) -> bool {
        *self.reachable.borrow()
    }

    /// Runs `op` unless Redis is marked unreachable, failing it if the mark comes meanwhile.
    async fn guarded<T>(&self, op: impl Future<Output = Result<T, RedisError>>) -> Result<T, RedisError> {
        let mut reachable = self.reachable.clone();
        if !*reachable.borrow_and_update() {
            return Err(unreachable());
        }
        tokio::select! {
            r = op => r,
            _ = async {
                if reachable.wait_for(|ok| !*ok).await.is_err() {
                    std::future::pending::<()>().await; // No probe any more: no mark either.
                }
            } => Err(unreachable()),
        }
    }
}

/// PINGs every [`PROBE_EVERY`] and marks the connections that share it reachable or not; ends
/// when every one of them is gone.
pub struct Probe {
    link: Link,
    tx: watch::Sender<bool>,
}

impl Probe {
    pub async fn run(self) {
        let Self { link, tx } = self;
        let mut tick = tokio::time::interval(PROBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // A dead socket (the old server's) is found and replaced by the resend.
            let ping = resent(&link, || ::redis::cmd("PING").get_packed_command(), 0, 1);
            let ok = match tokio::time::timeout(PROBE_TIMEOUT, ping).await {
                Ok(Ok(replies)) => !matches!(replies.first(), Some(Value::ServerError(_)) | None),
                _ => false,
            };
            if ok != *tx.borrow() {
                if ok {
                    tracing::info!("Redis reachable again");
                } else {
                    tracing::warn!("Redis unreachable: failing requests until it answers");
                }
            }
            if tx.send(ok).is_err() {
                return; // Every connection is gone.
            }
        }
    }
}

fn unreachable() -> RedisError {
    RedisError::from(std::io::Error::new(ErrorKind::TimedOut, "Redis unreachable (no answer to the health probe)"))
}

/// Whether a failed command was never written to a server.
pub fn never_sent(e: &RedisError) -> bool {
    // redis-rs keeps the I/O error behind an `Arc<dyn Error>`, which is what `source` returns.
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let Some(inner) = std::error::Error::source(e) else { return false };
    let io = match inner.downcast_ref::<Shared>() {
        Some(shared) => (**shared).downcast_ref::<std::io::Error>(),
        None => inner.downcast_ref::<std::io::Error>(),
    };
    io.is_some_and(|io| {
        matches!(io.kind(), ErrorKind::BrokenPipe | ErrorKind::NotConnected | ErrorKind::ConnectionRefused)
    })
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let this = self.clone();
        Box::pin(async move {
            let mut replies = this.guarded(resent(&this.link, || cmd.get_packed_command(), 0, 1)).await?;
            Ok(replies.pop().unwrap_or(Value::Nil))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let this = self.clone();
        Box::pin(
            async move { this.guarded(resent(&this.link, || pipeline.get_packed_pipeline(), offset, count)).await },
        )
    }

    fn get_db(&self) -> i64 {
        self.link.db()
    }
}

/// Sends what `bytes` packs, once more on a new connection if it certainly never left.
async fn resent(link: &Link, bytes: impl Fn() -> Vec<u8>, skip: usize, want: usize) -> Result<Vec<Value>, RedisError> {
    match link.send(bytes(), skip, want).await {
        Err(e) if never_sent(&e) => {
            tracing::debug!(error = %e, "Redis command never sent; resending on a new connection");
            link.send(bytes(), skip, want).await
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_commands_whose_write_failed_count_as_never_sent() {
        let io = |k: ErrorKind| RedisError::from(std::io::Error::from(k));
        assert!(never_sent(&io(ErrorKind::BrokenPipe)));
        assert!(never_sent(&io(ErrorKind::NotConnected)));
        assert!(never_sent(&io(ErrorKind::ConnectionRefused)));
        // Written, then the answer was lost: it may have run.
        assert!(!never_sent(&io(ErrorKind::ConnectionReset)));
        assert!(!never_sent(&io(ErrorKind::TimedOut)));
        assert!(!never_sent(&io(ErrorKind::UnexpectedEof)));
    }
}
