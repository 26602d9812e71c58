//! TLS settings: the rustls client config built from the PEM files of the config, with the `ring`
//! crypto provider (the project's one TLS stack: rustls + ring, no aws-lc-rs). The client
//! certificate may be of any X.509 version (see `customersim_plugin_api::tls`).
//!
//! Files are read and checked when the sink is built, so a missing or malformed file is a
//! configuration error (exit 2) naming the setting, its environment variable and the path. Key
//! material is never echoed in a message.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use customersim_plugin_api::{PluginError, tls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Where the TLS files are (already resolved against the config's folder).
#[derive(Debug, Default, Clone)]
pub struct TlsFiles {
    /// CA certificate(s) that sign the broker's certificate: enables TLS.
    pub ca: Option<PathBuf>,
    /// Client certificate chain (mutual TLS).
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (mutual TLS).
    pub client_key: Option<PathBuf>,
}

const CA: &str = "broker_cert_file (MQTT_BROKER_CERT_FILE)";
const CERT: &str = "client_cert_file (MQTT_CLIENT_CERT_FILE)";
const KEY: &str = "client_key_file (MQTT_CLIENT_KEY_FILE)";

fn config_error(setting: &str, path: &Path, why: impl std::fmt::Display) -> PluginError {
    PluginError::Config(format!("{setting}: {}: {why}", path.display()))
}

fn read(setting: &str, path: &Path) -> Result<Vec<u8>, PluginError> {
    std::fs::read(path)
        .map_err(|error| config_error(setting, path, format!("cannot read: {error}")))
}

fn certificates(setting: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, PluginError> {
    let pem = read(setting, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| config_error(setting, path, format!("not a valid PEM file: {error}")))?;
    if certs.is_empty() {
        return Err(config_error(setting, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The rustls config for these files; `None` when TLS is off (no CA file).
pub fn client_config(files: &TlsFiles) -> Result<Option<Arc<ClientConfig>>, PluginError> {
    let Some(ca) = &files.ca else {
        if files.client_cert.is_some() || files.client_key.is_some() {
            return Err(PluginError::Config(format!(
                "{CERT} and {KEY} are used over TLS, which {CA} turns on: set it too"
            )));
        }
        return Ok(None);
    };
    match (&files.client_cert, &files.client_key) {
        (Some(_), None) => {
            return Err(PluginError::Config(format!(
                "{CERT} is set but {KEY} is not: mutual TLS needs both"
            )));
        }
        (None, Some(_)) => {
            return Err(PluginError::Config(format!(
                "{KEY} is set but {CERT} is not: mutual TLS needs both"
            )));
        }
        _ => {}
    }
    let mut roots = RootCertStore::empty();
    for cert in certificates(CA, ca)? {
        roots
            .add(cert)
            .map_err(|error| config_error(CA, ca, format!("unusable CA certificate: {error}")))?;
    }
    let identity = match (&files.client_cert, &files.client_key) {
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => unreachable!("checked above"),
        (Some(cert_path), Some(key_path)) => {
            let chain = certificates(CERT, cert_path)?;
            let pem = read(KEY, key_path)?;
            // The parser's error could quote the file: keep only that it failed.
            let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
                config_error(
                    KEY,
                    key_path,
                    "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                )
            })?;
            // Any X.509 version (v1 from `openssl x509 -req` included); the key must match.
            Some(tls::client_identity(chain, key).map_err(|why| {
                PluginError::Config(format!(
                    "{CERT} / {KEY}: the certificate and key cannot be used together: {why}"
                ))
            })?)
        }
    };
    let config = tls::client_config(roots, identity).map_err(PluginError::Config)?;
    Ok(Some(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("customersim-mqtt-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn message(result: Result<Option<Arc<ClientConfig>>, PluginError>) -> String {
        match result {
            Err(PluginError::Config(why)) => why,
            Err(other) => panic!("expected a config error, got {other}"),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn no_ca_means_no_tls() {
        assert!(client_config(&TlsFiles::default()).unwrap().is_none());
    }

    #[test]
    fn unreadable_and_malformed_files_name_the_variable_and_path() {
        let missing = PathBuf::from("/nonexistent/ca.pem");
        let why = message(client_config(&TlsFiles {
            ca: Some(missing),
            ..TlsFiles::default()
        }));
        assert!(
            why.contains("MQTT_BROKER_CERT_FILE") && why.contains("/nonexistent/ca.pem"),
            "{why}"
        );
        let garbage = temp_file("garbage.pem", "hello\n");
        let why = message(client_config(&TlsFiles {
            ca: Some(garbage),
            ..TlsFiles::default()
        }));
        assert!(
            why.contains("MQTT_BROKER_CERT_FILE") && why.contains("no PEM certificate"),
            "{why}"
        );
    }

    #[test]
    fn client_certificate_needs_the_key_and_the_ca() {
        let cert = temp_file("client.pem", "x");
        let why = message(client_config(&TlsFiles {
            client_cert: Some(cert.clone()),
            ..TlsFiles::default()
        }));
        assert!(why.contains("MQTT_BROKER_CERT_FILE"), "{why}");
        let ca = temp_file("ca-x.pem", "x");
        let why = message(client_config(&TlsFiles {
            ca: Some(ca),
            client_cert: Some(cert),
            client_key: None,
        }));
        assert!(why.contains("MQTT_CLIENT_KEY_FILE"), "{why}");
    }
}
