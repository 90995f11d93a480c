//! TLS for the API with rustls, from PEM files, with optional client-certificate
//! authentication. Bearer tokens still decide who a caller is and what it may do; a client
//! certificate, when required, only decides who may connect at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// The PEM files of the server's certificate chain and key, and of the certificate
/// authorities whose client certificates it accepts.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM: the server certificate first, then the intermediates.
    pub certificate: PathBuf,
    /// PEM: the private key (PKCS #8, PKCS #1 or SEC1).
    pub key: PathBuf,
    /// PEM: when set, every client must present a certificate these authorities signed.
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {what} from {path}: {message}")]
    File { what: &'static str, path: PathBuf, message: String },
    #[error("the TLS settings were refused: {0}")]
    Settings(String),
}

/// Returns the crypto provider of every TLS connection the server makes or accepts.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads every certificate of a PEM file; an empty file is an error.
pub(crate) fn certificates(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |message: String| TlsError::File { what, path: path.to_path_buf(), message };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(file_error("no PEM certificate found (expected -----BEGIN CERTIFICATE-----)".into()));
    }
    Ok(certificates)
}

/// Builds the rustls settings of the server: TLS 1.2 and 1.3, HTTP/1.1.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certificates(&files.certificate, "server certificate")?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::File {
        what: "private key",
        path: files.key.clone(),
        message: format!("{e} (expected a PEM private key: PKCS #8, PKCS #1 or SEC1)"),
    })?;

    let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(|e| TlsError::Settings(e.to_string()))?;
    let builder = match &files.client_ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates(path, "client certificate authorities")? {
                roots.add(certificate).map_err(|e| TlsError::File { what: "client certificate authorities", path: path.clone(), message: e.to_string() })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build().map_err(|e| TlsError::Settings(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| TlsError::Settings(format!("the certificate and the key do not match, or the key is unusable: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
