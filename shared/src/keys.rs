//! Every bus channel name, in one place. Session channels carry a `{s:SID}` hash tag so that a
//! Redis Cluster keeps a session's keys and channel on one shard.

use crate::ids::{NodeId, SessionId};

/// Commands for one media node: the node's name between these two (a store's script that
/// reads the name builds the channel from them).
pub const NODE_RPC: (&str, &str) = ("pt:node:", ":rpc");

/// Commands for one media node.
pub fn node_rpc(node: &NodeId) -> String {
    format!("{}{node}{}", NODE_RPC.0, NODE_RPC.1)
}

/// Replies for one gateway process.
pub fn gateway_rpc(gateway: &str) -> String {
    format!("pt:gw:{gateway}:rpc")
}

/// A gateway process's relay (`Bus::relay`).
pub fn relay_channel(relay: &str) -> String {
    format!("pt:relay:{relay}")
}

/// Wake-ups and lifecycle signals of one session.
pub fn session_channel(sid: SessionId) -> String {
    format!("pt:{{s:{sid}}}:signal")
}
