//! TLS for the native port and the dashboard: the hub's certificate and the rustls configuration.
//!
//! A certificate comes from PEM files the operator gives (`--tls-cert`, `--tls-key`), or is made
//! once and kept in `DATA/tls/` (`--tls-self-signed`). Clients of a self-signed hub pin its
//! certificate by the SHA-256 of its DER bytes, the same fingerprint browsers show, which
//! [`TlsIdentity::fingerprint`] returns for printing at start-up.
//!
//! Only the `ring` crypto provider is built in. Configurations name it explicitly, so they work
//! whether or not a process-wide default was installed; [`install_crypto_provider`] installs it as
//! that default for code that asks rustls for one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Folder under the data folder where `--tls-self-signed` keeps its certificate.
pub const SELF_SIGNED_DIR: &str = "tls";

/// The first byte of every TLS connection (a handshake record); a framewire `Hello` starts `01 00`.
pub const TLS_HANDSHAKE_BYTE: u8 = 0x16;

/// Why the hub's TLS identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// A certificate file holds no usable PEM certificate.
    #[error("{}: {reason}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A key file holds no usable PEM private key.
    #[error("{}: {reason}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the pair (a key that does not match the certificate, an unsupported key type).
    #[error("certificate {} with key {}: {reason}", cert.display(), key.display())]
    Refused {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        reason: String,
    },
    /// Only one of `cert.pem` and `key.pem` exists in the self-signed folder.
    #[error("{} exists but {} does not: remove the folder {} to make a new certificate", present.display(), missing.display(), dir.display())]
    HalfPair {
        /// The folder.
        dir: PathBuf,
        /// The file that is there.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// The self-signed certificate could not be made.
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
    /// The self-signed certificate could not be saved.
    #[error("cannot write {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
}

/// The crypto provider every configuration of this crate uses.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs `ring` as the process's default rustls provider (once; later calls do nothing).
/// Call it at start-up, before any TLS configuration is built.
pub fn install_crypto_provider() {
    // Err means a default is installed already (by an earlier call): nothing to do.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The SHA-256 of a certificate's DER bytes.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

pub use framewire_proto::format_fingerprint;

/// The hub's certificate chain and private key, ready to serve TLS.
#[derive(Debug)]
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    fingerprint: [u8; 32],
    /// The certificate file (for messages).
    pub cert_path: PathBuf,
    /// Whether [`TlsIdentity::self_signed`] made a new certificate (false: loaded).
    pub created: bool,
}

impl TlsIdentity {
    /// Loads a certificate chain (leaf first) and its private key from PEM files.
    ///
    /// # Errors
    /// A file cannot be read, holds no certificate or key, or the key does not fit the certificate.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
        let chain = read_certificates(cert)?;
        let key_der = read_key(key)?;
        let id = TlsIdentity {
            fingerprint: fingerprint(&chain[0]),
            chain,
            key: key_der,
            cert_path: cert.to_owned(),
            created: false,
        };
        // Check the pair now, so a mismatch is reported at start-up with the file names.
        id.server_config(&[]).map_err(|e| TlsError::Refused {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(id)
    }

    /// The certificate kept in `DATA/tls/{cert.pem,key.pem}`: loaded if it is there, else made
    /// (ECDSA P-256, for `localhost`, `127.0.0.1`, `::1` and this machine's host name) and saved,
    /// the key readable by its owner only.
    ///
    /// # Errors
    /// The folder or files cannot be written or read, or only one of the two files exists.
    pub fn self_signed(data_dir: &Path) -> Result<TlsIdentity, TlsError> {
        let dir = data_dir.join(SELF_SIGNED_DIR);
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        match (cert.exists(), key.exists()) {
            (true, true) => {
                warn_if_key_readable_by_others(&key);
                return TlsIdentity::from_pem_files(&cert, &key);
            }
            (true, false) | (false, true) => {
                let (present, missing) = if cert.exists() {
                    (cert, key)
                } else {
                    (key, cert)
                };
                return Err(TlsError::HalfPair {
                    dir,
                    present,
                    missing,
                });
            }
            (false, false) => {}
        }
        let (cert_pem, key_pem) = generate_self_signed(&host_name())?;
        std::fs::create_dir_all(&dir).map_err(|error| TlsError::Write {
            path: dir.clone(),
            error,
        })?;
        // Key first: a crash between the two leaves a half pair, reported clearly on restart.
        write_file(&key, key_pem.as_bytes(), 0o600)?;
        write_file(&cert, cert_pem.as_bytes(), 0o644)?;
        let mut id = TlsIdentity::from_pem_files(&cert, &key)?;
        id.created = true;
        Ok(id)
    }

    /// SHA-256 of the leaf certificate's DER bytes: what clients pin.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// The fingerprint as `AB:CD:...`, as browsers show it.
    pub fn fingerprint_hex(&self) -> String {
        format_fingerprint(&self.fingerprint)
    }

    /// The leaf certificate, DER.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// A rustls server configuration offering `alpn` (may be empty).
    ///
    /// # Errors
    /// rustls refuses the key (unsupported type, or not the certificate's).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<rustls::ServerConfig, rustls::Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }

    /// An acceptor for the native port.
    pub fn native_acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::new(
            self.server_config(&[])
                .expect("the pair was checked when loaded"),
        ))
    }

    /// An acceptor for the dashboard (HTTP/1.1, which WebSockets and MJPEG need).
    pub fn https_acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::new(
            self.server_config(&[b"http/1.1"])
                .expect("the pair was checked when loaded"),
        ))
    }
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_owned(),
        error,
    })?;
    let bad = |reason: String| TlsError::BadCertificate {
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file ({e})")))?;
    if chain.is_empty() {
        return Err(bad(
            "no certificate in it (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_owned(),
        error,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::BadKey {
        path: path.to_owned(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in it (expected -----BEGIN PRIVATE KEY-----, EC or RSA)".into()
            }
            e => format!("not a PEM private key file ({e})"),
        },
    })
}

/// A new self-signed certificate and key, PEM.
fn generate_self_signed(host: &Option<String>) -> Result<(String, String), TlsError> {
    let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
    if let Some(h) = host {
        if h != "localhost" {
            names.push(h.clone());
        }
    }
    let mut params = rcgen::CertificateParams::new(names).map_err(gen)?;
    let cn = match host {
        Some(h) => format!("framewire hub {h}"),
        None => "framewire hub".into(),
    };
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let year = this_year();
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 20, 1, 1);
    let key = rcgen::KeyPair::generate().map_err(gen)?;
    let cert = params.self_signed(&key).map_err(gen)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The current year (UTC), near enough for a validity window that starts a year before it.
fn this_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    1970 + (secs / 31_556_952) as i32
}

/// This machine's host name, if it is a valid DNS name (a certificate cannot carry another).
fn host_name() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let h = h.trim().to_ascii_lowercase();
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    (h.len() <= 253 && h.split('.').all(valid_label) && h.parse::<std::net::IpAddr>().is_err())
        .then_some(h)
}

/// Writes a new file with `mode`, through a temporary name so a reader never sees half of it.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |error| TlsError::Write {
        path: path.to_owned(),
        error,
    };
    let tmp = path.with_extension("pem.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

fn warn_if_key_readable_by_others(key: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(key) {
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %key.display(),
                "the TLS private key is readable by other users; chmod 600 it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_format_like_browsers() {
        let fp: [u8; 32] = std::array::from_fn(|i| (i * 8) as u8);
        let s = format_fingerprint(&fp);
        assert_eq!(s.len(), 95);
        assert!(s.starts_with("00:08:10:18:20:"), "{s}");
        assert!(s.ends_with(":F8"), "{s}");
        // the SHA-256 of nothing, a known value
        assert_eq!(
            hex::encode(fingerprint(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn self_signed_is_made_once_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = TlsIdentity::self_signed(dir.path()).unwrap();
        assert!(first.created);
        let key = dir.path().join("tls/key.pem");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key mode {mode:o}");
        assert_eq!(
            first.fingerprint(),
            fingerprint(
                &std::fs::read_to_string(dir.path().join("tls/cert.pem")).map_or(
                    Vec::new(),
                    |pem| CertificateDer::from_pem_slice(pem.as_bytes())
                        .unwrap()
                        .to_vec()
                )
            )
        );
        let again = TlsIdentity::self_signed(dir.path()).unwrap();
        assert!(!again.created);
        assert_eq!(again.fingerprint(), first.fingerprint());
        assert_eq!(again.fingerprint_hex(), first.fingerprint_hex());
        assert!(first.native_acceptor().config().alpn_protocols.is_empty());
        assert_eq!(
            first.https_acceptor().config().alpn_protocols,
            vec![b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn self_signed_names_the_local_addresses() {
        let (pem, _) = generate_self_signed(&Some("hub-1.lan".into())).unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        // The SANs are in the DER as plain bytes: DNS names as ASCII, IPs as 4 or 16 bytes.
        let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"localhost") && has(b"hub-1.lan"));
        assert!(has(&[127, 0, 0, 1]));
        assert!(has(&std::net::Ipv6Addr::LOCALHOST.octets()));
    }

    #[test]
    fn half_a_pair_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        TlsIdentity::self_signed(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join("tls/key.pem")).unwrap();
        let e = TlsIdentity::self_signed(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cert.pem exists but") && e.contains("key.pem does not"),
            "{e}"
        );
    }

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let made = TlsIdentity::self_signed(dir.path()).unwrap();
        let cert = dir.path().join("tls/cert.pem");
        let key = dir.path().join("tls/key.pem");
        let nope = dir.path().join("nope.pem");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello\n").unwrap();

        let e = TlsIdentity::from_pem_files(&nope, &key)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot read ") && e.contains("nope.pem"),
            "{e}"
        );
        let e = TlsIdentity::from_pem_files(&junk, &key)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("junk.pem") && e.contains("no certificate"),
            "{e}"
        );
        let e = TlsIdentity::from_pem_files(&cert, &junk)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("junk.pem") && e.contains("no private key"),
            "{e}"
        );
        // the certificate where the key should be
        let e = TlsIdentity::from_pem_files(&cert, &cert)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no private key"), "{e}");
        // a key that is not the certificate's
        let other = tempfile::tempdir().unwrap();
        TlsIdentity::self_signed(other.path()).unwrap();
        let e = TlsIdentity::from_pem_files(&cert, &other.path().join("tls/key.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("certificate ") && e.contains("with key"),
            "{e}"
        );
        // the pair itself loads, with the same fingerprint
        let ok = TlsIdentity::from_pem_files(&cert, &key).unwrap();
        assert_eq!(ok.fingerprint(), made.fingerprint());
    }
}
