//! The official janus.js (Debian package `libjs-janus-gateway`, unmodified) driven under Node by
//! `js/janus_flow.js`: create -> attach videoroom -> list -> join -> keepalive -> destroy.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

pub fn janus_js() -> PathBuf {
    let p = std::env::var("JANUS_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| "/usr/share/javascript/janus-gateway/janus.js".into());
    assert!(
        p.is_file(),
        "janus.js not found at {} (apt-get install libjs-janus-gateway, or set JANUS_JS); .ci/run installs it",
        p.display()
    );
    p
}

/// Node, with the flag that gives Node 20 a global WebSocket when it needs it.
fn node() -> Command {
    let probe = Command::new("node").args(["-e", "process.stdout.write(typeof WebSocket)"]).output();
    let out = probe.expect("node not found (apt-get install nodejs); .ci/run installs it");
    let mut cmd = Command::new("node");
    if String::from_utf8_lossy(&out.stdout) != "function" {
        let flagged = Command::new("node")
            .args(["--experimental-websocket", "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"])
            .status()
            .is_ok_and(|s| s.success());
        // Otherwise janus_flow.js falls back to the `ws` package that tests/run.sh installs.
        if flagged {
            cmd.arg("--experimental-websocket");
        }
    }
    cmd
}

pub fn run_janus_js_flow(server_url: &str, wait_ms: u64) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js/janus_flow.js");
    let out = node().arg(script).arg(server_url).arg(janus_js()).arg(wait_ms.to_string()).output().expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).unwrap_or_else(|| {
        panic!(
            "no RESULT line; status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let v: Value = serde_json::from_str(line).expect("RESULT JSON");
    assert!(
        out.status.success() && v["ok"] == true,
        "janus.js flow failed: {v}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}
