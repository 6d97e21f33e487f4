//! TLS to a hub: pin its certificate by SHA-256, or verify it against CA certificates.
//!
//! A hub with a self-signed certificate prints its fingerprint at start-up; a client given that
//! fingerprint accepts exactly that certificate (chain, name and expiry do not matter, the
//! handshake signatures are still checked, so only the holder of the key can answer). With a CA
//! file, the usual WebPKI checks apply (chain to one of those roots, name, expiry). With neither,
//! the system's CA bundle is used.
//!
//! Only the `ring` crypto provider is built in, and configurations name it explicitly.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::{ClientError, Result};

/// Where the system's CA bundle usually is, after `$SSL_CERT_FILE`.
const SYSTEM_CA_FILES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// How to check the hub's certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of CA certificates to verify the hub's certificate against (chain, name, expiry).
    /// A self-signed hub certificate can be its own CA.
    pub ca: Option<PathBuf>,
    /// SHA-256 of the hub's certificate (DER): accept exactly that certificate. With `ca` too,
    /// both checks must pass.
    pub fingerprint: Option<[u8; 32]>,
    /// The name the certificate must be for, instead of the address's host (with `ca`).
    pub server_name: Option<String>,
}

impl TlsOptions {
    /// Pins the hub's certificate by its SHA-256.
    pub fn pinned(fingerprint: [u8; 32]) -> Self {
        TlsOptions {
            fingerprint: Some(fingerprint),
            ..Default::default()
        }
    }

    /// Verifies the hub's certificate against the CA certificates in a PEM file.
    pub fn with_ca(ca: impl Into<PathBuf>) -> Self {
        TlsOptions {
            ca: Some(ca.into()),
            ..Default::default()
        }
    }
}

/// Parses a SHA-256 fingerprint: 64 hex digits, optionally in colon-separated pairs
/// (`AB:CD:...`, as hubs and browsers show it), either case; spaces are ignored.
///
/// # Errors
/// Anything else, with what was wrong.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], String> {
    if let Some(fp) = framewire_proto::parse_fingerprint(s) {
        return Ok(fp);
    }
    let digits = s
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .count()
        .saturating_sub(if s.to_ascii_lowercase().contains("sha256:") {
            6
        } else {
            0
        });
    if digits != 64 {
        return Err(format!(
            "a SHA-256 fingerprint has 64 hex digits (32 bytes, AB:CD:... or abcd...), this has {digits}"
        ));
    }
    Err("a SHA-256 fingerprint has only hex digits 0-9, A-F".to_owned())
}

pub use framewire_proto::format_fingerprint;

/// The SHA-256 of a certificate's DER bytes.
pub fn certificate_fingerprint(der: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// The certificate a pinned client got instead of the one it expected.
#[derive(Debug)]
struct FingerprintMismatch {
    got: [u8; 32],
}

impl std::fmt::Display for FingerprintMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "certificate fingerprint {}",
            format_fingerprint(&self.got)
        )
    }
}

impl std::error::Error for FingerprintMismatch {}

/// Accepts exactly the certificate with the pinned SHA-256, then (if given) runs WebPKI checks.
#[derive(Debug)]
struct Pinned {
    expected: [u8; 32],
    then: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = certificate_fingerprint(end_entity);
        if got != self.expected {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(FingerprintMismatch { got })),
            )));
        }
        match &self.then {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Ok(ServerCertVerified::assertion()),
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

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn setup(msg: impl Into<String>) -> ClientError {
    ClientError::TlsSetup(msg.into())
}

/// The CA certificates of `path` (PEM).
fn load_roots(path: &Path) -> Result<RootCertStore> {
    let bytes = std::fs::read(path)
        .map_err(|e| setup(format!("cannot read the CA file {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            setup(format!(
                "{}: not a PEM certificate file ({e})",
                path.display()
            ))
        })?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(setup(format!(
            "{}: no usable CA certificate in it (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(roots)
}

/// The system's CA bundle.
fn system_roots() -> Result<RootCertStore> {
    let candidates = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_CA_FILES.iter().map(PathBuf::from));
    for path in candidates {
        if path.is_file() {
            return load_roots(&path);
        }
    }
    Err(setup(
        "no system CA certificates found: give the hub's certificate fingerprint \
         (--tls-fingerprint) or a CA file (--tls-ca)",
    ))
}

/// The rustls client configuration for `opts`.
fn client_config(opts: &TlsOptions) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(e.to_string()))?;
    let roots = match (&opts.ca, opts.fingerprint) {
        (Some(ca), _) => Some(load_roots(ca)?),
        (None, Some(_)) => None,
        (None, None) => Some(system_roots()?),
    };
    let config = match (opts.fingerprint, roots) {
        (Some(expected), roots) => {
            let then = match roots {
                None => None,
                Some(r) => Some(
                    WebPkiServerVerifier::builder_with_provider(Arc::new(r), Arc::clone(&provider))
                        .build()
                        .map_err(|e| setup(e.to_string()))?,
                ),
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    expected,
                    then,
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth()
        }
        (None, Some(roots)) => builder.with_root_certificates(roots).with_no_client_auth(),
        (None, None) => unreachable!("roots are loaded when nothing is pinned"),
    };
    Ok(config)
}

/// The host part of `host:port`, `[v6]:port`, or a bare host.
fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => addr,
    }
}

/// The name the certificate is checked for.
fn server_name(addr: &str, opts: &TlsOptions) -> Result<ServerName<'static>> {
    let name = opts
        .server_name
        .clone()
        .unwrap_or_else(|| host_of(addr).to_owned());
    match ServerName::try_from(name.clone()) {
        Ok(n) => Ok(n),
        // A pinned certificate is not checked for a name: any valid name will do.
        Err(_) if opts.fingerprint.is_some() && opts.ca.is_none() => {
            Ok(ServerName::try_from("hub.invalid").expect("a valid DNS name"))
        }
        Err(_) => Err(setup(format!(
            "{name:?} is not a host name or IP address a certificate can be checked for"
        ))),
    }
}

/// Runs the TLS handshake on a connected socket, by `deadline`.
pub(crate) async fn handshake(
    stream: TcpStream,
    addr: &str,
    opts: &TlsOptions,
    deadline: Instant,
    limit: std::time::Duration,
) -> Result<TlsStream<TcpStream>> {
    let connector = TlsConnector::from(Arc::new(client_config(opts)?));
    let name = server_name(addr, opts)?;
    match tokio::time::timeout_at(deadline.into(), connector.connect(name, stream)).await {
        Err(_) => Err(ClientError::Timeout {
            what: "the hub's TLS handshake",
            after: limit,
        }),
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(handshake_error(addr, opts, e)),
    }
}

/// Says what a failed handshake means for the user.
fn handshake_error(addr: &str, opts: &TlsOptions, e: std::io::Error) -> ClientError {
    use std::io::ErrorKind as K;
    let not_tls = || ClientError::NotTls {
        addr: addr.to_owned(),
    };
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        // The hub hung up on our ClientHello: what a plain port (or an old hub) does.
        return match e.kind() {
            K::UnexpectedEof | K::ConnectionReset | K::BrokenPipe | K::ConnectionAborted => {
                not_tls()
            }
            _ => ClientError::Io(e),
        };
    };
    let reason = match tls {
        rustls::Error::InvalidMessage(_)
        | rustls::Error::PeerSentOversizedRecord
        | rustls::Error::InappropriateMessage { .. } => return not_tls(),
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            match other.0.downcast_ref::<FingerprintMismatch>() {
                Some(m) => {
                    return ClientError::FingerprintMismatch {
                        addr: addr.to_owned(),
                        expected: format_fingerprint(&opts.fingerprint.unwrap_or_default()),
                        got: format_fingerprint(&m.got),
                    }
                }
                None => format!("its certificate was refused: {other}"),
            }
        }
        rustls::Error::InvalidCertificate(c) => format!(
            "its certificate was refused: {}",
            certificate_problem(c, addr, opts)
        ),
        rustls::Error::AlertReceived(a) => format!("the hub refused the handshake ({a:?})"),
        other => other.to_string(),
    };
    ClientError::Tls {
        addr: addr.to_owned(),
        reason,
    }
}

fn certificate_problem(c: &CertificateError, addr: &str, opts: &TlsOptions) -> String {
    match c {
        // BadSignature: a CA of the same name is there, but its key did not sign this
        // certificate (a self-signed hub that made a new one, say).
        CertificateError::UnknownIssuer | CertificateError::BadSignature => match &opts.ca {
            Some(ca) => format!(
                "it is not signed by a CA in {} (or pin it with --tls-fingerprint)",
                ca.display()
            ),
            None => "it is not signed by a CA this system trusts (a self-signed hub? \
                     pin its certificate with --tls-fingerprint, or give its CA with --tls-ca)"
                .to_owned(),
        },
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "it is not valid for {:?} (connect by a name the certificate has, or set the server name)",
                opts.server_name.as_deref().unwrap_or(host_of(addr))
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet (is this machine's clock right?)".to_owned()
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_either_form() {
        let fp: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
        let colons = format_fingerprint(&fp);
        assert_eq!(colons.len(), 95);
        assert_eq!(parse_fingerprint(&colons), Ok(fp));
        assert_eq!(parse_fingerprint(&colons.to_lowercase()), Ok(fp));
        assert_eq!(parse_fingerprint(&hex::encode(fp)), Ok(fp));
        assert_eq!(parse_fingerprint(&format!(" sha256:{colons}\n")), Ok(fp));
        let e = parse_fingerprint("AB:CD").unwrap_err();
        assert!(e.contains("64 hex digits") && e.contains("has 4"), "{e}");
        let e = parse_fingerprint(&"zz".repeat(32)).unwrap_err();
        assert!(e.contains("only hex digits"), "{e}");
    }

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(host_of("127.0.0.1:7878"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7878"), "::1");
        assert_eq!(host_of("hub.lan:7878"), "hub.lan");
        assert_eq!(host_of("hub.lan"), "hub.lan");
        assert_eq!(host_of("::1"), "::1");
    }

    #[test]
    fn names_for_pinned_and_verified_connections() {
        let pinned = TlsOptions::pinned([0; 32]);
        assert!(server_name("bad name:1", &pinned).is_ok());
        let ca = TlsOptions::with_ca("/nonexistent");
        assert!(server_name("bad name:1", &ca).is_err());
        assert_eq!(
            server_name("127.0.0.1:1", &ca).unwrap().to_str(),
            "127.0.0.1"
        );
    }

    #[test]
    fn unreadable_ca_files_are_named() {
        let e = client_config(&TlsOptions::with_ca("/nonexistent/ca.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot read the CA file /nonexistent/ca.pem"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = client_config(&TlsOptions::with_ca(&junk))
            .unwrap_err()
            .to_string();
        assert!(e.contains("junk.pem") && e.contains("no usable CA"), "{e}");
    }
}
