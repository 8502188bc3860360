//! TLS on the listeners (`tls_cert` + `tls_key`, PEM): one rustls server configuration shared
//! by the WebSocket, HTTP and admin listeners, so a small deployment needs no proxy in front.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use shared::config::Config;
use std::sync::Arc;

/// The listeners' TLS configuration, or `None` when TLS is off. A certificate or key that
/// cannot be read is a start-up error, never a silent fallback to plain text.
pub fn server_config(cfg: &Config) -> std::io::Result<Option<ServerConfig>> {
    let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) else { return Ok(None) };
    let bad = |what: &str, path: &str, e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("TLS {what} {path}: {e}"))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("certificate", cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("certificate", cert, &e))?;
    if chain.is_empty() {
        return Err(bad("certificate", cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("key", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("setup", "", &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad("certificate/key pair", cert, &e))?;
    // WebSocket upgrades and long-polls are HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(config))
}
