//! `Reaper`: every [`REAP_INTERVAL`] it takes the sessions whose keepalive deadline (or reclaim
//! window) has passed and ends them with a `timeout` event. `Store::take_expired` hands each
//! expired session to exactly one caller, so several gateways can reap side by side.
//!
//! Messages: none but its own tick.

use crate::api::session::EndReason;
use crate::api::Dispatcher;
use actix::prelude::*;
use std::time::Duration;
use tracing::Instrument;

/// Janus's watchdog runs every 2 s; ticking every second keeps reaping within 2 s of the deadline.
pub const REAP_INTERVAL: Duration = Duration::from_secs(1);
/// Sessions ended per store round trip.
const BATCH: usize = 100;

pub struct Reaper {
    dispatcher: Dispatcher,
    busy: bool,
}

impl Reaper {
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher, busy: false }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Done;

impl Actor for Reaper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(REAP_INTERVAL, |act, ctx| {
            if act.busy {
                return; // The previous sweep is still running.
            }
            act.busy = true;
            let d = act.dispatcher.clone();
            let me = ctx.address();
            actix::spawn(async move {
                loop {
                    let expired = match d.backends().store.take_expired(BATCH).await {
                        Ok(e) => e,
                        Err(e) => {
                            tracing::warn!(error = %e, "reaper could not read deadlines");
                            break;
                        }
                    };
                    let n = expired.len();
                    for sid in expired {
                        let span = tracing::info_span!("reap", session = %sid);
                        let _ = d.end_session(sid, EndReason::Timeout).instrument(span).await;
                    }
                    if n < BATCH {
                        break;
                    }
                }
                me.do_send(Done);
            });
        });
    }
}

impl Handler<Done> for Reaper {
    type Result = ();
    fn handle(&mut self, _: Done, _: &mut Context<Self>) {
        self.busy = false;
    }
}
