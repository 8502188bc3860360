//! One pipelined connection to Redis, shared by every clone of its handle: commands from any
//! task go out in the order they were given, as many as are waiting in one write, and each
//! reply goes back to the command it answers (Redis answers in order).
//!
//! Why not redis-rs's `ConnectionManager`: its multiplexed connection reads replies with
//! redis-rs's `combine` parser and moves each command through a sink, a framed codec and boxed
//! futures; in a cluster's gateway that machinery was a third of the process's CPU
//! (`BENCHMARKS.md`). Here one task owns the socket, reads replies with [`crate::resp`] and
//! hands them over through a oneshot each. Commands are still built, and replies still
//! converted, by redis-rs (`Cmd`, `Script`, `FromRedisValue`), through [`crate::redis_conn`].
//!
//! The connection opens on the first command (its task then runs on that command's thread)
//! and again on the first command after it failed. What a failure does to the commands it
//! catches is what the caller needs to know to resend safely: a command whose bytes never all
//! reached the socket fails as `BrokenPipe` (or `ConnectionRefused` when no connection could
//! be opened), which cannot have run; one that was written and not answered fails as
//! `ConnectionReset`, which may have run.

use crate::resp;
use ::redis::{ConnectionAddr, RedisError, Value};
use bytes::{Buf, BytesMut};
use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// The most bytes one read takes from the socket.
const READ_CHUNK: usize = 64 * 1024;

/// Where to connect and how to greet the server.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    addr: ConnectionAddr,
    username: Option<String>,
    password: Option<String>,
    db: i64,
    connect_timeout: Duration,
}

/// A command (or a pipeline) to send: its bytes, how many replies to pass over (a
/// transaction's `OK` and `QUEUED`), how many to hand back.
struct Job {
    bytes: Vec<u8>,
    skip: usize,
    want: usize,
    done: oneshot::Sender<Result<Vec<Value>, RedisError>>,
}

/// A job written, or being written, and waiting for its replies.
struct Waiting {
    skip: usize,
    want: usize,
    got: Vec<Value>,
    /// Where its bytes end in the connection's output (counted from the connection's start).
    end: u64,
    done: oneshot::Sender<Result<Vec<Value>, RedisError>>,
}

/// A handle on the connection; clones share it.
#[derive(Clone)]
pub struct Link {
    jobs: mpsc::UnboundedSender<Job>,
    start: Arc<Start>,
    db: i64,
    response_timeout: Duration,
}

/// The connection's task until the first command starts it (then `None` for good); the lock
/// is taken only until then, once per link.
struct Start {
    unstarted: Mutex<Option<Io>>,
    started: AtomicBool,
}

struct Io {
    target: Target,
    jobs: mpsc::UnboundedReceiver<Job>,
}

fn io_error(kind: ErrorKind, what: &str) -> RedisError {
    RedisError::from(io::Error::new(kind, what.to_owned()))
}

impl Target {
    /// The server `client` names (TCP or a Unix socket, RESP2).
    pub(crate) fn of(client: &::redis::Client, connect_timeout: Duration) -> Result<Self, RedisError> {
        let info = client.get_connection_info();
        let addr = info.addr().clone();
        let supported = match &addr {
            ConnectionAddr::Tcp(..) => true,
            #[cfg(unix)]
            ConnectionAddr::Unix(_) => true,
            _ => false,
        };
        if !supported {
            return Err(io_error(ErrorKind::Unsupported, "only redis:// and redis+unix:// addresses are supported"));
        }
        let settings = info.redis_settings();
        if settings.protocol() != ::redis::ProtocolVersion::RESP2 {
            return Err(io_error(ErrorKind::Unsupported, "only RESP2 is supported"));
        }
        Ok(Target {
            addr,
            username: settings.username().map(str::to_owned),
            password: settings.password().map(str::to_owned),
            db: settings.db(),
            connect_timeout,
        })
    }

    /// A connection to it, greeted, within the connect time-out.
    pub(crate) async fn connect(&self) -> io::Result<Stream> {
        match tokio::time::timeout(self.connect_timeout, open(self)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(ErrorKind::TimedOut, "connecting to Redis timed out")),
        }
    }
}

impl Link {
    /// A link to the server `client` names (TCP or a Unix socket, RESP2), not yet connected.
    pub fn new(
        client: &::redis::Client,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Self, RedisError> {
        let target = Target::of(client, connect_timeout)?;
        let (tx, rx) = mpsc::unbounded_channel();
        Ok(Self {
            jobs: tx,
            start: Arc::new(Start {
                unstarted: Mutex::new(Some(Io { target: target.clone(), jobs: rx })),
                started: AtomicBool::new(false),
            }),
            db: target.db,
            response_timeout,
        })
    }

    pub fn db(&self) -> i64 {
        self.db
    }

    /// Sends `bytes` (one command or several) and returns the `want` replies after the first
    /// `skip`, each server error as a `Value::ServerError` (as redis-rs's connections return
    /// them, for its callers to turn into errors).
    pub async fn send(&self, bytes: Vec<u8>, skip: usize, want: usize) -> Result<Vec<Value>, RedisError> {
        if !self.start.started.load(Ordering::Acquire) {
            if let Some(io) = self.start.unstarted.lock().unwrap_or_else(|e| e.into_inner()).take() {
                tokio::spawn(io.run());
            }
            self.start.started.store(true, Ordering::Release);
        }
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { bytes, skip, want, done })
            .map_err(|_| io_error(ErrorKind::NotConnected, "the Redis connection's task is gone"))?;
        match tokio::time::timeout(self.response_timeout, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(io_error(ErrorKind::ConnectionReset, "the Redis connection's task ended")),
            Err(_) => Err(io_error(ErrorKind::TimedOut, "no answer from Redis in time")),
        }
    }
}

impl Io {
    async fn run(self) {
        let Self { target, mut jobs } = self;
        // Without a connection: wait for work, then open one for it.
        while let Some(first) = jobs.recv().await {
            match target.connect().await {
                Ok(Stream::Tcp(mut s)) => {
                    let (r, w) = s.split();
                    serve(r, w, first, &mut jobs).await;
                }
                #[cfg(unix)]
                Ok(Stream::Unix(mut s)) => {
                    let (r, w) = s.split();
                    serve(r, w, first, &mut jobs).await;
                }
                Err(e) => refuse(first, &mut jobs, &format!("cannot connect to Redis: {e}")),
            }
        }
    }
}

/// Fails `first` and every job queued behind it: none was sent.
fn refuse(first: Job, jobs: &mut mpsc::UnboundedReceiver<Job>, why: &str) {
    let _ = first.done.send(Err(io_error(ErrorKind::ConnectionRefused, why)));
    while let Ok(j) = jobs.try_recv() {
        let _ = j.done.send(Err(io_error(ErrorKind::ConnectionRefused, why)));
    }
}

pub(crate) enum Stream {
    Tcp(tokio::net::TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Stream {
    async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_buf(buf).await,
            #[cfg(unix)]
            Stream::Unix(s) => s.read_buf(buf).await,
        }
    }

    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(bytes).await,
            #[cfg(unix)]
            Stream::Unix(s) => s.write_all(bytes).await,
        }
    }

    /// The next reply, read into `input`, which keeps whatever follows it. Cancel-safe: a read
    /// cut short loses nothing, as bytes read stay in `input` until a whole reply is there.
    pub(crate) async fn reply(&mut self, input: &mut BytesMut) -> io::Result<Value> {
        loop {
            if let Some((v, n)) = resp::parse(input).map_err(io::Error::other)? {
                input.advance(n);
                return Ok(v);
            }
            if self.read_buf(input).await? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// Opens a connection and greets the server (AUTH, SELECT) before any job's command.
async fn open(t: &Target) -> io::Result<Stream> {
    let mut greeting = Vec::new();
    if let Some(password) = &t.password {
        let mut auth = ::redis::cmd("AUTH");
        if let Some(user) = &t.username {
            auth.arg(user.as_str());
        }
        auth.arg(password.as_str());
        greeting.push(auth.get_packed_command());
    }
    if t.db != 0 {
        greeting.push(::redis::cmd("SELECT").arg(t.db).get_packed_command());
    }
    let mut stream = match &t.addr {
        ConnectionAddr::Tcp(host, port) => {
            let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
            s.set_nodelay(true)?;
            Stream::Tcp(s)
        }
        #[cfg(unix)]
        ConnectionAddr::Unix(path) => Stream::Unix(tokio::net::UnixStream::connect(path).await?),
        _ => return Err(io::Error::new(ErrorKind::Unsupported, "unsupported Redis address")),
    };
    let mut input = BytesMut::new();
    for command in greeting {
        stream.write_all(&command).await?;
        if let Value::ServerError(e) = stream.reply(&mut input).await? {
            return Err(io::Error::new(ErrorKind::PermissionDenied, format!("Redis refused the greeting: {e:?}")));
        }
    }
    Ok(stream)
}

/// Runs one connection until it fails (every job it holds then failed) or no handle is left.
async fn serve<R, W>(mut r: R, mut w: W, first: Job, jobs: &mut mpsc::UnboundedReceiver<Job>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out: Vec<u8> = Vec::new();
    let mut written = 0usize; // of `out`
    let mut sent: u64 = 0; // every byte written on this connection
    let mut queued: u64 = 0; // every byte put in `out` on this connection
    let mut waiting: VecDeque<Waiting> = VecDeque::new();
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut accept = |j: Job, out: &mut Vec<u8>, waiting: &mut VecDeque<Waiting>| {
        out.extend_from_slice(&j.bytes);
        queued += j.bytes.len() as u64;
        if j.skip == 0 && j.want == 0 {
            let _ = j.done.send(Ok(Vec::new())); // Nothing to wait for.
            return;
        }
        waiting.push_back(Waiting {
            skip: j.skip,
            want: j.want,
            got: Vec::with_capacity(j.want),
            end: queued,
            done: j.done,
        });
    };
    accept(first, &mut out, &mut waiting);
    let failure: io::Error = loop {
        while let Ok(j) = jobs.try_recv() {
            accept(j, &mut out, &mut waiting);
        }
        let pending_output = written < out.len();
        tokio::select! {
            biased;
            wrote = w.write(&out[written..]), if pending_output => match wrote {
                Ok(0) => break ErrorKind::WriteZero.into(),
                Ok(n) => {
                    written += n;
                    sent += n as u64;
                    if written == out.len() {
                        out.clear();
                        written = 0;
                    }
                }
                Err(e) => break e,
            },
            read = r.read_buf(&mut input) => match read {
                Ok(0) => break ErrorKind::UnexpectedEof.into(),
                Ok(_) => {
                    if let Err(e) = deliver(&mut input, &mut waiting) {
                        break e;
                    }
                    if input.capacity() - input.len() < READ_CHUNK / 4 {
                        input.reserve(READ_CHUNK);
                    }
                }
                Err(e) => break e,
            },
            job = jobs.recv(), if !pending_output => match job {
                Some(j) => accept(j, &mut out, &mut waiting),
                // No handle left: nothing more will be asked; answers still owed go unread.
                None => return,
            },
        }
    };
    tracing::debug!(error = %failure, "Redis connection failed");
    let why = format!("Redis connection failed: {failure}");
    for w in waiting {
        let kind = if w.end <= sent { ErrorKind::ConnectionReset } else { ErrorKind::BrokenPipe };
        let _ = w.done.send(Err(io_error(kind, &why)));
    }
}

/// Hands every whole reply in `input` to the job it answers.
fn deliver(input: &mut BytesMut, waiting: &mut VecDeque<Waiting>) -> io::Result<()> {
    while let Some((v, n)) = resp::parse(input).map_err(io::Error::other)? {
        input.advance(n);
        let Some(front) = waiting.front_mut() else {
            return Err(io::Error::other("a Redis reply nobody asked for"));
        };
        if front.skip > 0 {
            front.skip -= 1;
        } else {
            front.got.push(v);
        }
        if front.skip == 0 && front.got.len() == front.want {
            if let Some(w) = waiting.pop_front() {
                let _ = w.done.send(Ok(w.got));
            }
        }
    }
    Ok(())
}
