//! The deployment files: every Kubernetes manifest, both Compose files and the Dockerfile pass
//! the offline validators and the properties the schemas cannot state (`deploy/validate.sh`),
//! and the Grafana dashboard queries only series the binaries export.

use portunus_tests::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_deployment_files_pass_the_kubernetes_and_compose_validators() {
    let out = Command::new("bash").arg(root().join("deploy/validate.sh")).output().expect("run deploy/validate.sh");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "deploy/validate.sh failed:\n{text}");
    for needle in
        ["k8s/standalone:", "k8s/cluster:", "docker-compose.cluster.yml: valid", "deployment properties: all hold"]
    {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

/// The `portunus_*` series a PromQL expression reads (a histogram's `_bucket` is its name).
fn series_in(expr: &str) -> Vec<String> {
    let re = regex_lite::Regex::new(r"portunus_[a-z_]+").unwrap();
    re.find_iter(expr)
        .map(|m| {
            let name = m.as_str();
            name.strip_suffix("_bucket").unwrap_or(name).to_owned()
        })
        .collect()
}

#[actix_web::test]
async fn the_dashboard_queries_only_series_the_binaries_export() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("deploy/grafana/portunus.json")).unwrap()).unwrap();
    let mut queried = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queried.extend(series_in(target["expr"].as_str().unwrap()));
        }
    }
    assert!(queried.len() >= 25, "the dashboard reads only {} series: {queried:?}", queried.len());
    // A server that has served a little, so that every labelled series has a child; a
    // standalone gateway's /metrics carries its media node's series too, and the cluster
    // views. (In a cluster, the media node's own port serves the same media series.)
    let server = TestServer::start();
    let mut ws = WsClient::connect(&server.ws_url).await;
    let sid = ws.create_session().await;
    let h = ws.attach(sid).await;
    ws.message(sid, h, json!({"request": "list"})).await;
    ws.request(json!({"janus": "nonsense", "session_id": sid})).await;
    let (_, gateway) = get_text(&format!("{}/metrics", server.admin_url)).await;
    let (_, media) = get_text(&format!("{}/metrics", server.media_admin_url())).await;
    let exported: BTreeSet<String> = format!("{gateway}{media}")
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let missing: Vec<&String> = queried.iter().filter(|s| !exported.contains(*s)).collect();
    assert!(missing.is_empty(), "the dashboard queries series no binary exports: {missing:?}\nexported: {exported:?}");
}
