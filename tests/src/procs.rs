//! Portunus binaries as real processes, for tests that kill them (`kill -9`, SIGSTOP). The
//! binaries are built once per test run with the same cargo that runs the tests; every process
//! is stopped by its PID when its handle is dropped, also when a test fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A child process, killed (SIGKILL, by PID) when dropped. Its output (Portunus logs to
/// standard output) goes to a file of its own, whose end a failed start shows, removed with it
/// unless the test is failing; `PORTUNUS_TEST_PROC_LOGS` sends it to the test's instead.
pub struct Proc {
    child: Option<Child>,
    pub name: String,
    log: Option<PathBuf>,
}

impl Proc {
    fn spawn(path: &PathBuf, name: &str, args: &[String], env: &[(&str, &str)]) -> Self {
        static SPAWNED: AtomicUsize = AtomicUsize::new(0);
        let level = std::env::var("PORTUNUS_TEST_LOG").unwrap_or_else(|_| "warn".into());
        let log = std::env::var("PORTUNUS_TEST_PROC_LOGS").is_err().then(|| {
            let n = SPAWNED.fetch_add(1, Ordering::Relaxed);
            std::env::temp_dir().join(format!("portunus-proc-{}-{n}.log", std::process::id()))
        });
        let (stdout, stderr) = match &log {
            Some(path) => {
                let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let copy = file.try_clone().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                (Stdio::from(file), Stdio::from(copy))
            }
            None => (Stdio::inherit(), Stdio::inherit()),
        };
        let child = Command::new(path)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", level)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Self { child: Some(child), name: name.to_owned(), log }
    }

    /// Whether the process has exited (reaped here, so its PID is never signalled after).
    pub fn exited(&mut self) -> bool {
        let done = self.child.as_mut().is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
        if done {
            self.child = None;
        }
        done
    }

    /// The last lines the process wrote.
    pub fn log_tail(&self) -> String {
        let text = self.log.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Whether this process holds a listening TCP socket on `port`: a LISTEN entry for the port
    /// in its namespace's `/proc/PID/net/tcp{,6}` whose inode is one of its descriptors.
    pub fn listens_on(&self, port: u16) -> bool {
        let pid = self.pid();
        let inodes: Vec<String> = ["tcp", "tcp6"]
            .iter()
            .filter_map(|t| std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).ok())
            .flat_map(|table| {
                table
                    .lines()
                    .skip(1)
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
                        (local_port == port && *f.get(3)? == "0A").then(|| f.get(9).map(|i| format!("socket:[{i}]")))?
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
        fds.flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str()))
    }

    /// Starts a server on ports picked free beforehand (`start` spawns it on them) and waits
    /// until it is ready, taking other ports when it exits first (see [`Proc::start_on`]).
    pub fn start_listening(
        ports: usize,
        start: impl Fn(&[u16]) -> Proc,
        ready: impl Fn(&[u16]) -> bool,
    ) -> (Proc, Vec<u16>) {
        let mut failed = Vec::new();
        for _ in 0..5 {
            let picked: Vec<u16> = (0..ports).map(|_| crate::free_port()).collect();
            match Self::start_on(&picked, &start, &ready) {
                Ok(proc) => return (proc, picked),
                Err(log) => failed.push(format!("{picked:?}: {log}")),
            }
        }
        panic!("no start listened on its ports:\n{}", failed.join("\n"))
    }

    /// Spawns a server on `ports` and waits (20 s at most) until it listens on every one
    /// itself and `ready` holds; the end of its log when it exits first. A port picked free
    /// may be taken by another test's server before ours binds it, and then that server, not
    /// ours, would answer `ready`.
    pub fn start_on(
        ports: &[u16],
        start: impl Fn(&[u16]) -> Proc,
        ready: impl Fn(&[u16]) -> bool,
    ) -> Result<Proc, String> {
        let mut proc = start(ports);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && !proc.exited() {
            if ports.iter().all(|p| proc.listens_on(*p)) && ready(ports) {
                return Ok(proc);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(proc.exited(), "{} on {ports:?} was not ready within 20 s:\n{}", proc.name, proc.log_tail());
        Err(proc.log_tail())
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
            if self.exited() {
                return true;
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
        // A failing test keeps the log, for its cause.
        match &self.log {
            Some(log) if std::thread::panicking() => eprintln!("{}'s output: {}", self.name, log.display()),
            Some(log) => {
                let _ = std::fs::remove_file(log);
            }
            None => {}
        }
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
    let start = |ports: &[u16]| {
        let mut args: Vec<String> = vec!["--bind".into(), "127.0.0.1".into()];
        for (flag, port) in ["--ws-port", "--http-port", "--admin-port"].iter().zip(ports) {
            args.extend([flag.to_string(), port.to_string()]);
        }
        if !redis_url.is_empty() {
            args.extend(["--redis-url".into(), redis_url.into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Proc::spawn(&binaries().0, "portunus-gateway", &args, env)
    };
    let (proc, ports) = Proc::start_listening(3, start, |p| ready(p[2]));
    let (ws, http, admin) = (ports[0], ports[1], ports[2]);
    GatewayProc {
        proc,
        ws_url: format!("ws://127.0.0.1:{ws}/"),
        base_url: format!("http://127.0.0.1:{http}/janus"),
        admin_url: format!("http://127.0.0.1:{admin}"),
    }
}

/// Whether the process serving admin `port` on loopback says it is ready.
fn ready(port: u16) -> bool {
    crate::hosts::http_ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)), "/readyz")
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
    let start = |ports: &[u16]| {
        let args: Vec<String> = ["--redis-url", redis_url, "--node-id", node_id, "--admin-port", &ports[0].to_string()]
            .map(String::from)
            .into();
        // Peers on one machine meet on loopback.
        let name = format!("portunus-media-node {node_id}");
        Proc::spawn(&binaries().1, &name, &args, &[("PORTUNUS_MEDIA_IPS", "127.0.0.1")])
    };
    let (proc, ports) = Proc::start_listening(1, start, |p| ready(p[0]));
    NodeProc { proc, admin_url: format!("http://127.0.0.1:{}", ports[0]) }
}
