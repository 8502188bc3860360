//! The one Redis connection type of the store and the bus: redis-rs's `ConnectionManager`, which
//! reconnects after a failure, plus one resend of a command that certainly never left.
//!
//! Why: when Redis restarts, the manager learns that its socket is dead only by using it, so the
//! first command of every process afterwards failed with "broken pipe" (a client saw 499 or a
//! 462 time-out for a request the cluster could have served). A command whose write failed
//! (broken pipe, not connected, refused) never reached any server, so sending it again on the
//! fresh connection cannot run it twice. A command that failed after it was written (reset,
//! time-out) is not resent: it may have run.

use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};
use std::io::ErrorKind;

#[derive(Clone)]
pub struct Conn(ConnectionManager);

impl Conn {
    pub fn new(manager: ConnectionManager) -> Self {
        Self(manager)
    }
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
        Box::pin(async move {
            match self.0.req_packed_command(cmd).await {
                Err(e) if never_sent(&e) => {
                    tracing::debug!(error = %e, "Redis command never sent; resending on a new connection");
                    self.0.req_packed_command(cmd).await
                }
                r => r,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            match self.0.req_packed_commands(pipeline, offset, count).await {
                Err(e) if never_sent(&e) => {
                    tracing::debug!(error = %e, "Redis pipeline never sent; resending on a new connection");
                    self.0.req_packed_commands(pipeline, offset, count).await
                }
                r => r,
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
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
