//! A real `redis-server` for one test: started on a free loopback port with no persistence,
//! stopped (by its PID) when dropped. A missing `redis-server` fails the test with what to install.

use crate::procs::{spawn_program, Proc};
use std::time::Duration;

/// Whether the Redis on `port` answers `PING` within 500 ms.
fn pongs(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

pub struct RedisServer {
    pub port: u16,
    proc: Proc,
    dir: std::path::PathBuf,
}

impl RedisServer {
    /// On a free port, as every process the harness starts on a port picked beforehand
    /// ([`Proc::start_listening`]): ready once it holds the port itself and answers.
    pub fn start() -> Self {
        let dir = Self::dir();
        let (proc, ports) = Proc::start_listening(1, |p| Self::spawn(p[0], &dir), |p| pongs(p[0]));
        Self { port: ports[0], proc, dir }
    }

    /// Starts (or restarts) a server on `port`; panics when another server holds it.
    pub fn start_on(port: u16) -> Self {
        let dir = Self::dir();
        let proc = Proc::start_on(&[port], |p| Self::spawn(p[0], &dir), |p| pongs(p[0]))
            .unwrap_or_else(|log| panic!("redis-server could not take port {port}: {log}"));
        Self { port, proc, dir }
    }

    /// A directory of its own for each server (none is written: no persistence).
    fn dir() -> std::path::PathBuf {
        static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("portunus-redis-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn spawn(port: u16, dir: &std::path::Path) -> Proc {
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            if let Err(e) = std::process::Command::new("redis-server").arg("--version").output() {
                panic!("cannot start redis-server ({e}): apt-get install redis-server (tests/deps.sh does)")
            }
        });
        let (port, dir) = (port.to_string(), dir.display().to_string());
        let args = ["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", &dir];
        spawn_program("redis-server", &args)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Watches every command the server runs (`MONITOR`) from now on.
    pub fn monitor(&self) -> Monitor {
        Monitor::start(self.port)
    }

    /// Kills the server (SIGKILL, by PID) and waits for it to exit.
    pub fn kill(&mut self) {
        self.proc.kill9();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.proc.kill9();
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
