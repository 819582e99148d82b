//! TLS for the HTTP, Flight SQL and PostgreSQL listeners, from the PEM files
//! of the `[tls]` section.
//!
//! The files are read and checked once at start, so a missing, unreadable or
//! invalid file stops `apitrail serve` before it binds any port. Every
//! listener then serves the same certificate chain.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// Maximum time a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// ALPN protocol ids of HTTP/2 and HTTP/1.1 (RFC 7301).
const ALPN_HTTP: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// ALPN protocol id of PostgreSQL. libpq 17 sends it on every TLS connection,
/// and pgwire requires it for a TLS handshake without an SSLRequest first.
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// Certificate chain and key, loaded and checked, ready to make acceptors.
pub struct TlsSettings {
    cert_file: PathBuf,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    /// Configuration shared by the HTTP and PostgreSQL acceptors, without ALPN.
    config: rustls::ServerConfig,
}

/// Shows the certificate file only, so the key never reaches a log.
impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("cert_file", &self.cert_file)
            .finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// Loads the certificate chain and key of `config`, or returns `None` when
    /// neither file is set.
    ///
    /// Fails when only one of the two files is set, when a file cannot be read
    /// or has no PEM item of its kind, or when the key does not belong to the
    /// first certificate. Each error names the file.
    pub fn load(config: &TlsConfig) -> anyhow::Result<Option<Self>> {
        let (cert_file, key_file) = match (&config.cert_file, &config.key_file) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            (Some(cert), None) => bail!(
                "the TLS certificate file {} is set without a key file: set --tls-key \
                 (APITRAIL_TLS_KEY, [tls] key_file) as well, or neither",
                cert.display()
            ),
            (None, Some(key)) => bail!(
                "the TLS key file {} is set without a certificate file: set --tls-cert \
                 (APITRAIL_TLS_CERT, [tls] cert_file) as well, or neither",
                key.display()
            ),
        };

        let cert_pem = std::fs::read(cert_file)
            .with_context(|| format!("reading the TLS certificate file {}", cert_file.display()))?;
        let certs = parse_certificates(&cert_pem)
            .with_context(|| format!("invalid TLS certificate file {}", cert_file.display()))?;
        let key_pem = std::fs::read(key_file)
            .with_context(|| format!("reading the TLS key file {}", key_file.display()))?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| {
            anyhow::anyhow!(
                "invalid TLS key file {}: expected a PEM PRIVATE KEY, RSA PRIVATE KEY \
                 or EC PRIVATE KEY item ({error})",
                key_file.display()
            )
        })?;

        // Explicit, because both the ring and the aws-lc-rs providers are
        // compiled into this binary and rustls cannot pick one on its own.
        let provider = Arc::new(ring_provider());
        // tonic's `ServerTlsConfig` builds its own rustls configuration with the
        // process-default provider, so ring becomes the default as well. An
        // error means a default is installed already, which tonic then uses.
        let _ = ring_provider().install_default();

        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("the ring provider supports no TLS version")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .with_context(|| {
                format!(
                    "the TLS key in {} cannot serve the certificate in {}",
                    key_file.display(),
                    cert_file.display()
                )
            })?;
        Ok(Some(TlsSettings {
            cert_file: cert_file.clone(),
            cert_pem,
            key_pem,
            config,
        }))
    }

    /// Returns the certificate file, for logs.
    pub fn cert_file(&self) -> &Path {
        &self.cert_file
    }

    /// Returns the acceptor of the HTTP listener, which offers HTTP/2 and HTTP/1.1 by ALPN.
    pub fn http_acceptor(&self) -> TlsAcceptor {
        self.acceptor(&ALPN_HTTP)
    }

    /// Returns the acceptor of the PostgreSQL listener.
    pub fn pg_acceptor(&self) -> TlsAcceptor {
        self.acceptor(&[ALPN_POSTGRESQL])
    }

    /// Returns the TLS settings of the Flight SQL (gRPC) listener. tonic
    /// builds the rustls configuration itself and offers `h2` by ALPN.
    pub fn grpc_config(&self) -> tonic::transport::ServerTlsConfig {
        let identity = tonic::transport::Identity::from_pem(&self.cert_pem, &self.key_pem);
        tonic::transport::ServerTlsConfig::new()
            .identity(identity)
            .timeout(HANDSHAKE_TIMEOUT)
    }

    fn acceptor(&self, alpn: &[&[u8]]) -> TlsAcceptor {
        let mut config = self.config.clone();
        config.alpn_protocols = alpn.iter().map(|id| id.to_vec()).collect();
        TlsAcceptor::from(Arc::new(config))
    }
}

/// Returns rustls' ring provider, the one that tonic's `tls-ring` feature and
/// pgwire's TLS use as well. rustls 0.23.48 deprecates it because ring has no
/// post-quantum key exchange, so TLS 1.3 here negotiates X25519 or a NIST curve.
#[expect(
    deprecated,
    reason = "ring is the provider that pgwire and tonic are built with here"
)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Parses every `CERTIFICATE` item of a PEM file, in order; other items are skipped.
fn parse_certificates(pem: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| anyhow::anyhow!("the PEM data cannot be read: {error}"))?;
    if certs.is_empty() {
        bail!("it contains no PEM CERTIFICATE item");
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_file_means_no_tls() {
        let settings = TlsSettings::load(&TlsConfig::default()).unwrap();
        assert!(settings.is_none());
    }

    #[test]
    fn cert_without_key_names_the_file() {
        let config = TlsConfig {
            cert_file: Some(PathBuf::from("/etc/apitrail/cert.pem")),
            key_file: None,
        };
        let error = TlsSettings::load(&config).unwrap_err().to_string();
        assert!(error.contains("/etc/apitrail/cert.pem"), "{error}");
        assert!(error.contains("--tls-key"), "{error}");
    }

    #[test]
    fn key_without_cert_names_the_file() {
        let config = TlsConfig {
            cert_file: None,
            key_file: Some(PathBuf::from("/etc/apitrail/key.pem")),
        };
        let error = TlsSettings::load(&config).unwrap_err().to_string();
        assert!(error.contains("/etc/apitrail/key.pem"), "{error}");
        assert!(error.contains("--tls-cert"), "{error}");
    }

    #[test]
    fn pem_without_certificate_is_rejected() {
        let pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let error = parse_certificates(pem).unwrap_err().to_string();
        assert!(error.contains("no PEM CERTIFICATE"), "{error}");
        assert!(parse_certificates(b"not pem at all").is_err());
    }
}
