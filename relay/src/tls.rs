//! TLS material: loading a certificate and key into a rustls acceptor, and generating the
//! self-signed pair the embedded default runs on.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Generates a self-signed certificate for `localhost` with the SANs real clients check
/// (mbsync and fetchmail connect to 127.0.0.1 and verify the IP SAN), and writes it to
/// `cert`/`key` — the key readable by the owner only.
///
/// # Errors
/// When generation or writing fails.
pub fn generate_self_signed(cert: &Path, key: &Path) -> anyhow::Result<()> {
    generate_self_signed_for(cert, key, &["localhost", "127.0.0.1", "::1"])
}

/// Like [`generate_self_signed`], for the host names and addresses in `names`.
///
/// # Errors
/// When generation or writing fails.
pub fn generate_self_signed_for(cert: &Path, key: &Path, names: &[&str]) -> anyhow::Result<()> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let certified = rcgen::generate_simple_self_signed(names).context("generating certificate")?;
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if let Some(dir) = key.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_private(key, certified.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert, certified.cert.pem())
        .with_context(|| format!("writing {}", cert.display()))?;
    Ok(())
}

/// Writes a secret file with mode 0600 from the start, so it is never world-readable.
///
/// # Errors
/// When the file cannot be written.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Creates `dir` (and its parents) readable by the owner only: it holds the database and
/// private keys.
///
/// # Errors
/// When the directory cannot be created.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating directory {}", dir.display()))
}

/// The secret in `path` (hex), or, when the file does not exist yet, the one `generate`
/// makes, written there with mode 0600.
///
/// # Errors
/// When the file cannot be read, parsed or written.
pub fn secret_file(
    path: &Path,
    generate: impl FnOnce() -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<Vec<u8>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            hex::decode(text.trim()).with_context(|| format!("{} is not a hex key", path.display()))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let secret = generate()?;
            write_private(path, hex::encode(&secret).as_bytes())?;
            Ok(secret)
        }
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Builds a TLS acceptor (TLS 1.2 and 1.3 only) from PEM files.
///
/// # Errors
/// When a file cannot be read or holds no usable certificate or key.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificate {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", cert.display());
    let key_der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .with_context(|| {
            format!(
                "certificate {} does not match key {}",
                cert.display(),
                key.display()
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pair_loads_and_key_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("tls/cert.pem");
        let key = dir.path().join("tls/key.pem");
        generate_self_signed(&cert, &key).expect("generate");
        acceptor(&cert, &key).expect("acceptor");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn missing_files_give_a_clear_error() {
        let err = acceptor(
            Path::new("/nonexistent/c.pem"),
            Path::new("/nonexistent/k.pem"),
        )
        .err()
        .expect("error");
        assert!(format!("{err:#}").contains("/nonexistent/c.pem"), "{err:#}");
    }
}
