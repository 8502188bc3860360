//! Test hosts: a private network on this machine in which every process is a host of its own.
//!
//! An outer network namespace, made by the test and linked to nothing of the machine's, holds a
//! bridge; each host is a namespace of its own joined to the bridge by a veth pair and carrying
//! one address of [`SUBNET`]. Nothing inside can reach any other network, so the addresses are
//! ours to choose. A namespace lives as long as the process holding it (`unshare --net` running
//! `sleep`); programs run inside through `nsenter`. Every process started here dies with the
//! [`Network`] (by PID, when it is dropped, also when a test fails) and with the thread that
//! started it (`PR_SET_PDEATHSIG`), so a killed test run leaves nothing behind.
//!
//! The test's own code (Janus clients, WebRTC peers) joins a host with [`Host::enter`]: the
//! calling thread, and the threads and sockets it makes afterwards, live in that namespace.
//! Needs root.

use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The hosts' subnet (/24 on the bridge).
pub const SUBNET: [u8; 3] = [10, 99, 0];

/// A namespace and the process that keeps it alive.
struct Namespace {
    holder: Child,
}

impl Namespace {
    fn new() -> Self {
        assert!(unsafe { libc::geteuid() } == 0, "test hosts need root (network namespaces)");
        let holder = dying_with_thread(Command::new("unshare").args(["--net", "--", "sleep", "86400"]))
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare --net (util-linux)");
        let ns = Self { holder };
        // The namespace exists once the holder has exec'd `sleep` inside it.
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(ns.path()).ok().is_none_or(|l| l == own)
            || std::fs::read_to_string(format!("/proc/{}/comm", ns.pid())).is_ok_and(|c| c.trim() != "sleep")
        {
            assert!(Instant::now() < deadline, "the namespace holder never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        ns
    }

    fn pid(&self) -> u32 {
        self.holder.id()
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.pid())
    }

    /// Runs a command inside, to completion; panics when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.path()))
            .arg("--")
            .arg(program)
            .args(args)
            .output()
            .expect("nsenter");
        assert!(out.status.success(), "{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }

    /// `ip` inside.
    fn ip(&self, args: &str) {
        self.run("ip", &args.split_whitespace().collect::<Vec<_>>());
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Children die with the thread that started them, even when the test process is killed, and
/// leave no core file when they crash (a crashed Janus dumped 500 MB into the working folder;
/// the tests say how a process ended instead).
fn dying_with_thread(cmd: &mut Command) -> &mut Command {
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        })
    }
}

/// One test host.
pub struct Host {
    pub name: String,
    pub addr: Ipv4Addr,
    ns: Namespace,
    /// The bridge side of its veth, in the outer namespace.
    link: String,
    procs: Vec<Child>,
}

/// A process running on a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pid(pub u32);

impl Host {
    /// Starts `program` on this host, its output appended to `log`.
    pub fn spawn(&mut self, program: &Path, args: &[String], env: &[(&str, String)], log: &Path) -> Pid {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let child = dying_with_thread(
            Command::new("nsenter")
                .arg(format!("--net={}", self.ns.path()))
                .arg("--")
                .arg(program)
                .args(args)
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdin(Stdio::null())
                .stdout(file.try_clone().expect("log file"))
                .stderr(file),
        )
        .spawn()
        .unwrap_or_else(|e| panic!("start {} on {}: {e}", program.display(), self.name));
        let pid = Pid(child.id());
        self.procs.push(child);
        pid
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to a process of this host.
    pub fn signal(&self, pid: Pid, signal: i32) {
        assert!(self.procs.iter().any(|c| c.id() == pid.0), "{pid:?} is not a process of {}", self.name);
        unsafe { libc::kill(pid.0 as i32, signal) };
    }

    /// Waits up to `wait` for a process of this host to exit; returns whether it did.
    pub fn wait_exit(&mut self, pid: Pid, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let Some(i) = self.procs.iter().position(|c| c.id() == pid.0) else { return true };
            if let Ok(Some(_)) = self.procs[i].try_wait() {
                self.procs.remove(i);
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How a process of this host ended, if it has (without waiting).
    pub fn exit_status(&mut self, pid: Pid) -> Option<std::process::ExitStatus> {
        let child = self.procs.iter_mut().find(|c| c.id() == pid.0)?;
        child.try_wait().ok().flatten()
    }

    /// Runs a command on this host to completion (`nft`, `ip`); panics when it fails.
    pub fn run(&self, program: &str, args: &[&str]) {
        self.ns.run(program, args);
    }

    /// Moves the calling thread into this host's network namespace: the sockets it opens from
    /// now on, and the threads it starts, are this host's. For the test's own clients.
    pub fn enter(&self) {
        let f = std::fs::File::open(self.ns.path()).expect("open the host's namespace");
        let r = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns into {}: {}", self.name, std::io::Error::last_os_error());
    }

    /// Adds nftables rules on this host (`nft -f` syntax).
    pub fn nft(&self, rules: &str) {
        let path = std::env::temp_dir().join(format!("portunus-nft-{}-{}.nft", std::process::id(), self.name));
        std::fs::write(&path, rules).unwrap();
        self.run("nft", &["-f", path.to_str().unwrap()]);
        let _ = std::fs::remove_file(path);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for mut c in self.procs.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The outer namespace with its bridge, and the hosts on it.
pub struct Network {
    outer: Namespace,
    hosts: Vec<Host>,
}

impl Network {
    pub fn new() -> Self {
        let outer = Namespace::new();
        outer.ip("link set lo up");
        outer.ip("link add br0 type bridge");
        outer.ip("link set br0 up");
        Self { outer, hosts: Vec::new() }
    }

    /// Adds a host named `name` (at most 12 characters) with the next address; returns its index.
    pub fn add(&mut self, name: &str) -> usize {
        let i = self.hosts.len();
        let addr = Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], 10 + i as u8);
        let ns = Namespace::new();
        let link = format!("vh{i}");
        // The veth is made in the outer namespace, its host end moved into the host's.
        self.outer.ip(&format!("link add {link} type veth peer name eth0 netns {}", ns.pid()));
        self.outer.ip(&format!("link set {link} master br0"));
        self.outer.ip(&format!("link set {link} up"));
        ns.ip("link set lo up");
        ns.ip(&format!("addr add {addr}/24 dev eth0"));
        ns.ip("link set eth0 up");
        self.hosts.push(Host { name: name.to_owned(), addr, ns, link, procs: Vec::new() });
        i
    }

    pub fn host(&mut self, i: usize) -> &mut Host {
        &mut self.hosts[i]
    }

    pub fn addr(&self, i: usize) -> Ipv4Addr {
        self.hosts[i].addr
    }

    /// Cuts (`up = false`) or restores a host's only link, as a pulled cable would.
    pub fn set_link(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        self.outer.ip(&format!("link set {} {state}", self.hosts[i].link));
    }
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Hosts first (their processes), then the bridge's namespace.
        self.hosts.clear();
    }
}

/// Polls `GET path` on `addr` from the calling thread's namespace until it answers 200.
pub fn wait_http_ok(addr: std::net::SocketAddr, path: &str, wait: Duration) {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if http_ok(addr, path) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{addr}{path} never answered 200");
}

/// One `GET path` on `addr` (a second to connect, a second to answer): whether it answered 200.
pub fn http_ok(addr: std::net::SocketAddr, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(1000)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}
