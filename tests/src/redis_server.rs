//! A real `redis-server` for one test: started on a free loopback port with no persistence,
//! stopped (by its PID) when dropped. A missing `redis-server` fails the test with what to install.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `process_id` of the Redis answering on `port`, if one answers within 500 ms.
fn answering_pid(port: u16) -> Option<u32> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(b"INFO server\r\n").ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < 64 * 1024 {
        let n = s.read(&mut buf).ok().filter(|&n| n > 0)?;
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(rest) = text.split("process_id:").nth(1) {
            if let Some(end) = rest.find("\r\n") {
                return rest[..end].trim().parse().ok();
            }
        }
    }
    None
}

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: std::path::PathBuf,
}

impl RedisServer {
    /// On a free port. A port found free can be taken before the server binds it (tests run in
    /// parallel), and then another test's server answers there: each try checks the answering
    /// server is this one, and takes another port if not.
    pub fn start() -> Self {
        for _ in 0..5 {
            let mut server = Self::spawn(crate::free_port());
            if server.wait_ready() {
                return server;
            }
        }
        panic!("no free port for redis-server in 5 tries");
    }

    /// Starts (or restarts) a server on `port`.
    pub fn start_on(port: u16) -> Self {
        let mut server = Self::spawn(port);
        assert!(server.wait_ready(), "port {port} is held by another redis-server");
        server
    }

    fn spawn(port: u16) -> Self {
        // Unique per server, not per port: a server whose port turned out taken is removed with
        // its directory while the one holding the port runs on.
        static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("portunus-redis-{}-{port}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): apt-get install redis-server (tests/run.sh does)")
            });
        Self { port, child: Some(child), dir }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Waits (10 s at most, then panics) for a server to answer on the port, and tells whether
    /// it is this one: the `process_id` its `INFO` reports is the child's.
    fn wait_ready(&mut self) -> bool {
        let pid = self.child.as_ref().map(Child::id);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(answering) = answering_pid(self.port) {
                return Some(answering) == pid;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                // Ours exited (its port taken) and nothing answers there either.
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// Watches every command the server runs (`MONITOR`) from now on.
    pub fn monitor(&self) -> Monitor {
        Monitor::start(self.port)
    }

    /// Kills the server (SIGKILL, by PID) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `MONITOR` connection read by a thread of its own: each line is one command the server ran
/// (`<time> [<db> <client>] "CMD" "arg" ...`; commands a script ran show `[0 lua]`).
pub struct Monitor {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    fn start(port: u16) -> Self {
        use std::io::{BufRead, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect for MONITOR");
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        s.write_all(b"MONITOR\r\n").unwrap();
        let mut r = std::io::BufReader::new(s);
        let mut ok = String::new();
        r.read_line(&mut ok).expect("MONITOR answered");
        assert_eq!(ok.trim_end(), "+OK", "MONITOR refused");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (l, st) = (lines.clone(), stop.clone());
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                match r.read_line(&mut line) {
                    Ok(0) => return,
                    // A line cut by the read timeout is completed by the next read.
                    Ok(_) if line.ends_with('\n') => l.lock().unwrap().push(std::mem::take(&mut line)),
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => return,
                }
            }
        });
        Self { lines, stop, reader: Some(reader) }
    }

    /// The commands seen since the last call.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}
