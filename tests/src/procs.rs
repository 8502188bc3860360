//! Portunus binaries as real processes, for tests that kill them (`kill -9`, SIGSTOP). The
//! binaries are built once per test run with the same cargo that runs the tests; every process
//! is stopped by its PID when its handle is dropped, also when a test fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Paths of `portunus-gateway` and `portunus-media-node`, built on first use.
pub fn binaries() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&root)
            .args(["build", "--quiet", "-p", "gateway", "-p", "media-node", "--bins"])
            .status()
            .expect("run cargo build for the Portunus binaries");
        assert!(status.success(), "building the Portunus binaries failed");
        let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
        let dir = target.join("debug");
        let bins = (dir.join("portunus-gateway"), dir.join("portunus-media-node"));
        assert!(bins.0.is_file() && bins.1.is_file(), "binaries not found in {}", dir.display());
        bins
    })
}

/// A child process, killed (SIGKILL, by PID) when dropped.
pub struct Proc {
    child: Option<Child>,
    pub name: String,
}

impl Proc {
    fn spawn(path: &PathBuf, name: &str, args: &[String], env: &[(&str, &str)]) -> Self {
        let log = std::env::var("PORTUNUS_TEST_LOG").unwrap_or_else(|_| "warn".into());
        let child = Command::new(path)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", log)
            .stdout(Stdio::null())
            .stderr(if std::env::var("PORTUNUS_TEST_PROC_LOGS").is_ok() { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Self { child: Some(child), name: name.to_owned() }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.pid().to_string()]).status().is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {} ({}) failed", self.pid(), self.name);
    }

    /// `kill -9`: no goodbye, no cleanup.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the process (SIGSTOP): alive, but silent.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// SIGTERM, then waits up to `wait` for the process to exit; returns whether it did.
    pub fn terminate(&mut self, wait: Duration) -> bool {
        self.signal("-TERM");
        self.wait_exit(wait)
    }

    /// Waits up to `wait` for the process to exit by itself; returns whether it did.
    pub fn wait_exit(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    self.child = None;
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

/// Any program as a child process (nginx, ...), killed by PID when dropped.
pub fn spawn_program(program: &str, args: &[&str]) -> Proc {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    Proc::spawn(&PathBuf::from(program), program, &args, &[])
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A frozen process must be thawed to die promptly.
            let _ = Command::new("kill").args(["-CONT", &self.pid().to_string()]).status();
        }
        self.kill9();
    }
}

/// A gateway process in cluster mode; returns it with its WebSocket, HTTP base and admin URLs.
pub struct GatewayProc {
    pub proc: Proc,
    pub ws_url: String,
    pub base_url: String,
    pub admin_url: String,
}

pub fn spawn_gateway(redis_url: &str, extra: &[&str]) -> GatewayProc {
    spawn_gateway_env(redis_url, extra, &[])
}

/// A standalone Portunus process (gateway and media node in one, media on loopback).
pub fn spawn_standalone(extra: &[&str], env: &[(&str, &str)]) -> GatewayProc {
    let mut env = env.to_vec();
    env.push(("PORTUNUS_MEDIA_IPS", "127.0.0.1"));
    spawn_gateway_env("", extra, &env)
}

/// A gateway with extra `PORTUNUS_*` environment (keys without a flag); an empty `redis_url`
/// makes it standalone.
pub fn spawn_gateway_env(redis_url: &str, extra: &[&str], env: &[(&str, &str)]) -> GatewayProc {
    let (ws, http, admin) = (crate::free_port(), crate::free_port(), crate::free_port());
    let mut args: Vec<String> = vec![
        "--bind".into(),
        "127.0.0.1".into(),
        "--ws-port".into(),
        ws.to_string(),
        "--http-port".into(),
        http.to_string(),
        "--admin-port".into(),
        admin.to_string(),
    ];
    if !redis_url.is_empty() {
        args.extend(["--redis-url".into(), redis_url.into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let proc = Proc::spawn(&binaries().0, "portunus-gateway", &args, env);
    let admin_url = format!("http://127.0.0.1:{admin}");
    wait_http_ok(&format!("127.0.0.1:{admin}"), "/readyz");
    GatewayProc {
        proc,
        ws_url: format!("ws://127.0.0.1:{ws}/"),
        base_url: format!("http://127.0.0.1:{http}/janus"),
        admin_url,
    }
}

/// A media node process with its admin URL (`/metrics`, `/healthz`, `/readyz`).
pub struct NodeProc {
    pub proc: Proc,
    pub admin_url: String,
}

impl std::ops::Deref for NodeProc {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.proc
    }
}

impl std::ops::DerefMut for NodeProc {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

/// A media node in cluster mode, returned once it reports ready (registered in Redis).
pub fn spawn_node(redis_url: &str, node_id: &str) -> NodeProc {
    let admin = crate::free_port();
    let args: Vec<String> =
        ["--redis-url", redis_url, "--node-id", node_id, "--admin-port", &admin.to_string()].map(String::from).into();
    // Peers on one machine meet on loopback.
    let proc = Proc::spawn(
        &binaries().1,
        &format!("portunus-media-node {node_id}"),
        &args,
        &[("PORTUNUS_MEDIA_IPS", "127.0.0.1")],
    );
    wait_http_ok(&format!("127.0.0.1:{admin}"), "/readyz");
    NodeProc { proc, admin_url: format!("http://127.0.0.1:{admin}") }
}

/// Polls `GET path` on `addr` (`host:port`) until it answers 200 (20 s at most).
pub fn wait_http_ok(addr: &str, path: &str) {
    let addr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
    crate::hosts::wait_http_ok(addr, path, Duration::from_secs(20));
}
