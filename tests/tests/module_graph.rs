//! Module folders form no cycle: each `*.rs` names its siblings through `super::<name>`, and
//! the graph of those references is acyclic. In `media`, what both directions of the forwarding
//! path share lives in `feed`, and a publisher's PeerConnection reaches `publisher` only through
//! the `IncomingMedia` trait `peer` defines.
//!
//! The VideoRoom state machine and its tests work on typed replies and events
//! (`VideoRoomEvent`): no JSON is built or read there, but a participant's `metadata`, which is
//! the client's own opaque JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Each module of `dir` and the sibling modules it refers to (`super::name`).
fn sibling_references(dir: &str) -> BTreeMap<String, BTreeSet<String>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let modules: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("module folder")
        .flatten()
        .filter_map(|e| e.path().file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|m| m != "mod")
        .collect();
    let mut graph = BTreeMap::new();
    for m in &modules {
        let text = std::fs::read_to_string(dir.join(format!("{m}.rs"))).expect("module");
        let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let refs = modules
            .iter()
            .filter(|other| *other != m)
            .filter(|other| {
                code.contains(&format!("super::{other}::"))
                    || code.contains(&format!("super::{other};"))
                    || code.contains(&format!("super::{other}}}"))
                    || code.contains(&format!("super::{{{other}"))
            })
            .cloned()
            .collect();
        graph.insert(m.clone(), refs);
    }
    graph
}

/// A cycle in `graph`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            return Some(path[i..].to_vec());
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for next in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_media_modules_form_no_cycle() {
    let graph = sibling_references("media-node/src/media");
    assert!(graph["forward"].contains("feed") && graph["publisher"].contains("peer"), "the graph is read: {graph:?}");
    assert_eq!(cycle(&graph), None, "{graph:#?}");
}

#[test]
fn no_other_module_folder_has_a_cycle() {
    for dir in [
        "gateway/src/api",
        "gateway/src/transport",
        "media-node/src/room/state",
        "shared/src/janus/videoroom",
        "shared/src/store",
        "shared/src/bus",
    ] {
        let graph = sibling_references(dir);
        assert_eq!(cycle(&graph), None, "{dir}: {graph:#?}");
    }
}

#[test]
fn a_cycle_is_found() {
    let mut g = BTreeMap::new();
    g.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    g.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    g.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(cycle(&g), Some(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]));
}

#[test]
fn the_room_state_builds_and_reads_no_json() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../media-node/src/room");
    let mut files = vec![root.join("state.rs")];
    files.extend(std::fs::read_dir(root.join("state")).expect("state folder").flatten().map(|e| e.path()));
    assert!(files.len() > 5, "{files:?}");
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("module");
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            let json = ["json!", "serde_json", "Value"].iter().any(|w| code.contains(w));
            if json && !code.starts_with("//") && !code.contains("metadata") {
                found.push(format!("{}:{}: {line}", f.display(), i + 1));
            }
        }
    }
    assert!(found.is_empty(), "JSON in the room state:\n{}", found.join("\n"));
}
