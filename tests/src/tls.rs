//! TLS for tests: a self-signed certificate for 127.0.0.1 made on the spot, and clients that
//! trust exactly that certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate (and its key) written as PEM files into `dir`.
pub struct SelfSigned {
    pub cert: PathBuf,
    pub key: PathBuf,
    der: rustls::pki_types::CertificateDer<'static>,
}

impl SelfSigned {
    pub fn new(dir: &Path) -> Self {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("self-signed certificate");
        std::fs::create_dir_all(dir).expect("certificate folder");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).expect("write cert.pem");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key.pem");
        Self { cert, key, der: made.cert.der().clone() }
    }

    /// An HTTP/WebSocket client that trusts this certificate only.
    pub fn client(&self) -> awc::Client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).expect("trust the test certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = awc::Connector::new().rustls_0_23(Arc::new(config));
        // (No `max_http_version` here: it would replace this connector's TLS settings.)
        awc::Client::builder().connector(connector).timeout(std::time::Duration::from_secs(5)).finish()
    }
}
