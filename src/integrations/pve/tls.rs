//! TLS for the client: system roots, a pinned SHA-256 fingerprint, or (explicitly) nothing. ring only.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use super::PveError;
use super::config::TlsMode;

/// Parses `AB:CD:…` (32 bytes, as PVE shows it; colons optional, any case).
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let hex_text: String = text.trim().chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(&hex_text).map_err(|_| "expected SHA-256 as colon-separated hex".to_owned())?;
    bytes.try_into().map_err(|_| "expected 32 bytes (SHA-256), colon-separated hex".to_owned())
}

/// `AB:CD:…` for a certificate, the way PVE prints fingerprints.
pub fn fingerprint_of(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client config for `mode`.
pub(crate) fn client_config(mode: &TlsMode) -> Result<rustls::ClientConfig, PveError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| PveError::Setup(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        TlsMode::SystemRoots => {
            Arc::new(rustls_platform_verifier::Verifier::new(provider).map_err(|e| PveError::Setup(e.to_string()))?)
        }
        TlsMode::Fingerprint(pin) => {
            Arc::new(PinnedVerifier { pin: Some(*pin), algorithms: provider.signature_verification_algorithms })
        }
        TlsMode::Insecure => {
            tracing::warn!(
                "PROXDESK_PVE_INSECURE=true: the Proxmox VE certificate is NOT verified; anyone on the path \
                 can read the API token. Pin PROXDESK_PVE_FINGERPRINT instead."
            );
            Arc::new(PinnedVerifier { pin: None, algorithms: provider.signature_verification_algorithms })
        }
    };
    Ok(builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth())
}

/// Accepts exactly the certificate whose SHA-256 is `pin` (any certificate when `None`), and still checks
/// that the server holds its key (handshake signatures).
#[derive(Debug)]
struct PinnedVerifier {
    pin: Option<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            None => Ok(ServerCertVerified::assertion()),
            Some(pin) if Sha256::digest(end_entity.as_ref()).as_slice() == pin => Ok(ServerCertVerified::assertion()),
            Some(_) => Err(rustls::Error::General(format!(
                "server certificate fingerprint {} does not match PROXDESK_PVE_FINGERPRINT",
                fingerprint_of(end_entity.as_ref())
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_as_pve_prints_them() {
        let text = fingerprint_of(b"cert");
        assert_eq!(parse_fingerprint(&text).unwrap().as_slice(), Sha256::digest(b"cert").as_slice());
        assert!(parse_fingerprint("AB:CD").is_err());
        assert!(parse_fingerprint("zz").is_err());
    }
}
