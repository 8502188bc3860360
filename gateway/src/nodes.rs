//! `NodeDirectory`: the placement choice for new rooms (power of two choices on the nodes'
//! reported load, skipping draining nodes) and, every [`SWEEP`], the cleanup after lost nodes.
//!
//! `Pick` (a node for a new room) reads the store's registry, not a copy of it: a copy is behind
//! by up to its refresh interval, and a node lost meanwhile (another gateway may have hung its
//! handles up already, and their clients come straight back) would get a join that waits out
//! the RPC timeout. Whether a room's owner is still registered is read with the owner
//! (`Store::room_owner_status`), for the same reason.

use actix::prelude::*;
use rand::seq::IndexedRandom;
use shared::ids::NodeId;
use shared::store::{NodeStatus, Store};
use shared::Backends;
use std::sync::Arc;
use std::time::Duration;

/// Nodes beat every 2 s with a 6 s lease; every gateway looks for lapsed ones every second.
pub const SWEEP: Duration = Duration::from_secs(1);

pub struct NodeDirectory {
    backends: Backends,
}

impl NodeDirectory {
    pub fn new(backends: Backends) -> Self {
        Self { backends }
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

impl Actor for NodeDirectory {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SWEEP, |act, _| {
            let backends = act.backends.clone();
            actix::spawn(async move {
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

/// The registry as the store has it now (empty, and said, when it cannot be read).
async fn registered(store: Arc<dyn Store>) -> Vec<NodeStatus> {
    store.live_nodes().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "node registry unreadable");
        Vec::new()
    })
}

impl Handler<Pick> for NodeDirectory {
    type Result = ResponseFuture<Option<NodeId>>;

    fn handle(&mut self, _: Pick, _: &mut Context<Self>) -> Self::Result {
        let store = self.backends.store.clone();
        Box::pin(async move { two_choices(&registered(store).await) })
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
