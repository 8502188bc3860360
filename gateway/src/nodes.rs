//! `NodeDirectory`: this gateway's view of the live media nodes, refreshed from the store's
//! registry every [`REFRESH`], and the placement choice for new rooms (power of two choices on
//! the nodes' reported load, skipping draining nodes).
//!
//! Messages: `Pick` (a node for a new room, from the cached view), `IsLive` (is this owner
//! still registered? asked of the store).

use actix::prelude::*;
use rand::seq::IndexedRandom;
use shared::ids::NodeId;
use shared::store::{NodeStatus, Store};
use shared::Backends;
use std::sync::Arc;
use std::time::Duration;

/// Nodes beat every 2 s with a 6 s lease; a 1 s refresh keeps this view at most 1 s behind.
pub const REFRESH: Duration = Duration::from_secs(1);

pub struct NodeDirectory {
    backends: Backends,
    store: Arc<dyn Store>,
    live: Vec<NodeStatus>,
}

impl NodeDirectory {
    pub fn new(backends: Backends) -> Self {
        let store = backends.store.clone();
        Self { backends, store, live: Vec::new() }
    }
}

/// Two random serving nodes, the less loaded wins (LiveKit's and Nginx's "two choices").
pub fn two_choices(live: &[NodeStatus]) -> Option<NodeId> {
    let serving: Vec<&NodeStatus> = live.iter().filter(|n| !n.draining).collect();
    let mut rng = rand::rng();
    let picked: Vec<&&NodeStatus> = serving.choose_multiple(&mut rng, 2).collect();
    picked.into_iter().min_by_key(|n| n.load).map(|n| n.node.clone())
}

#[derive(Message)]
#[rtype(result = "Option<NodeId>")]
pub struct Pick;

#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsLive(pub NodeId);

#[derive(Message)]
#[rtype(result = "()")]
struct Refreshed(Vec<NodeStatus>);

impl Actor for NodeDirectory {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(REFRESH, |act, ctx| {
            let backends = act.backends.clone();
            let me = ctx.address();
            actix::spawn(async move {
                match backends.store.live_nodes().await {
                    Ok(live) => me.do_send(Refreshed(live)),
                    Err(e) => tracing::warn!(error = %e, "node registry unreadable"),
                }
                // Every gateway looks; the store hands each lost node to exactly one of them.
                if let Ok(lost) = backends.store.take_lost_nodes().await {
                    for node in lost {
                        shared::lost_node::hang_up(&backends, &node).await;
                    }
                }
            });
        });
    }
}

impl Handler<Refreshed> for NodeDirectory {
    type Result = ();
    fn handle(&mut self, Refreshed(live): Refreshed, _: &mut Context<Self>) {
        self.live = live;
    }
}

impl Handler<Pick> for NodeDirectory {
    type Result = ResponseActFuture<Self, Option<NodeId>>;

    fn handle(&mut self, _: Pick, _: &mut Context<Self>) -> Self::Result {
        if let Some(n) = two_choices(&self.live) {
            return Box::pin(fut::ready(Some(n)));
        }
        // Nothing cached yet (just started, or every node looked dead): ask the store now.
        let store = self.store.clone();
        Box::pin(async move { store.live_nodes().await.unwrap_or_default() }.into_actor(self).map(|live, act, _| {
            act.live = live;
            two_choices(&act.live)
        }))
    }
}

impl Handler<IsLive> for NodeDirectory {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, IsLive(node): IsLive, _: &mut Context<Self>) -> Self::Result {
        // Asked of the store, not the cached view: a node lost since the last refresh (another
        // gateway may have hung its handles up already, and their clients come straight back)
        // would otherwise still be live here for up to REFRESH, and a request sent there waits
        // out the RPC timeout. Asked when a request finds its room's node for an unbound handle
        // (a join, a room-level synchronous request), not for a bound handle's requests.
        let store = self.store.clone();
        Box::pin(async move { store.live_nodes().await.unwrap_or_default() }.into_actor(self).map(
            move |live, act, _| {
                act.live = live;
                act.live.iter().any(|n| n.node == node)
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(n: &str, load: u64, draining: bool) -> NodeStatus {
        NodeStatus { node: NodeId(n.into()), load, draining }
    }

    #[test]
    fn picks_only_serving_nodes_and_prefers_the_less_loaded() {
        assert_eq!(two_choices(&[]), None);
        assert_eq!(two_choices(&[st("a", 0, true)]), None);
        assert_eq!(two_choices(&[st("a", 9, false), st("b", 0, true)]), Some(NodeId("a".into())));
        for _ in 0..50 {
            assert_eq!(two_choices(&[st("a", 9, false), st("b", 1, false)]), Some(NodeId("b".into())));
        }
    }
}
