//! Shutdown signals: SIGTERM (Kubernetes, systemd) and SIGINT (a terminal) as one stream. The
//! first asks a process to drain; a second one makes it exit at once.

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// Must be called inside a tokio runtime (actix's included).
pub fn signals() -> std::io::Result<mpsc::UnboundedReceiver<()>> {
    let (tx, rx) = mpsc::unbounded_channel();
    for kind in [SignalKind::terminate(), SignalKind::interrupt()] {
        let mut s = signal(kind)?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                let _ = tx.send(());
            }
        });
    }
    Ok(rx)
}
