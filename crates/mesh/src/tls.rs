//! rustls configurations from PEM files: listeners (optionally requiring client certificates)
//! and clusters (optionally presenting one). Files are read when a config snapshot is built, so a
//! reload re-reads renewed certificates.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::MeshError;
use crate::config::{ClusterTls, ListenerTls};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(path: &Path, message: impl std::fmt::Display) -> MeshError {
    MeshError::Tls { path: path.to_owned(), message: message.to_string() }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, MeshError> {
    let pem = std::fs::read(path).map_err(|e| tls_error(path, format!("cannot read: {e}")))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| tls_error(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(path, "no `BEGIN CERTIFICATE` block found"));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, MeshError> {
    let pem = std::fs::read(path).map_err(|e| tls_error(path, format!("cannot read: {e}")))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| tls_error(path, format!("not a PEM key file: {e}")))?
        .ok_or_else(|| tls_error(path, "no private key block found (PKCS#8, PKCS#1 or SEC1 PEM expected)"))
}

fn roots(path: &Path) -> Result<RootCertStore, MeshError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(path)? {
        roots.add(cert).map_err(|e| tls_error(path, format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The server side of a listener: ALPN offers h2 and http/1.1.
pub fn server_config(tls: &ListenerTls) -> Result<Arc<ServerConfig>, MeshError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&tls.cert, e))?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                .build()
                .map_err(|e| tls_error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs(&tls.cert)?, key(&tls.key)?).map_err(|e| tls_error(&tls.key, e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The client side towards a cluster.
pub fn client_config(tls: &ClusterTls, http2: bool) -> Result<Arc<ClientConfig>, MeshError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&tls.ca, e))?
        .with_root_certificates(roots(&tls.ca)?);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key_path)) => {
            builder.with_client_auth_cert(certs(cert)?, key(key_path)?).map_err(|e| tls_error(key_path, e))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = if http2 { vec![b"h2".to_vec()] } else { vec![b"http/1.1".to_vec()] };
    Ok(Arc::new(config))
}
