//! Janus connections for many handles: servers cap handles per session and sessions per
//! connection (Portunus: 100 and 100 by default), so subscribers spread over several
//! WebSockets, one session each, like many browsers would.

use crate::client::{Janus, Result};

/// Handles per session: under every default cap.
const HANDLES_PER_SESSION: usize = 50;

pub struct Conn {
    pub janus: Janus,
    pub session: u64,
    handles: usize,
}

pub struct Pool {
    url: String,
    conns: Vec<Conn>,
}

impl Pool {
    pub fn new(url: &str) -> Self {
        Self { url: url.to_owned(), conns: Vec::new() }
    }

    /// Attaches a VideoRoom handle on a connection with room for it; returns the connection's
    /// index and the handle.
    pub async fn attach(&mut self) -> Result<(usize, u64)> {
        let i = match self.conns.iter().position(|c| c.handles < HANDLES_PER_SESSION) {
            Some(i) => i,
            None => {
                let mut janus = Janus::connect(&self.url).await?;
                let session = janus.create_session().await?;
                self.conns.push(Conn { janus, session, handles: 0 });
                self.conns.len() - 1
            }
        };
        let c = &mut self.conns[i];
        let handle = c.janus.attach(c.session).await?;
        c.handles += 1;
        Ok((i, handle))
    }

    pub fn conn(&mut self, i: usize) -> &mut Conn {
        &mut self.conns[i]
    }

    /// Keeps every session alive (and drops the core events nobody waits for).
    pub async fn keepalive(&mut self) -> Result<()> {
        for c in &mut self.conns {
            c.janus.keepalive(c.session).await?;
            c.janus.forget_events();
        }
        Ok(())
    }

    /// Destroys every session (the server then tears their handles and peers down).
    pub async fn close(self) {
        for mut c in self.conns {
            let _ = c.janus.destroy(c.session).await;
        }
    }
}
