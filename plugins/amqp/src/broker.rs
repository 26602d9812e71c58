//! Connecting to the broker: the URL, the TLS files, and which failures are worth retrying.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use customersim_plugin_api::tls::{
    self,
    rustls::RootCertStore,
    rustls::pki_types::pem::PemObject,
    rustls::pki_types::{CertificateDer, PrivateKeyDer},
};
use customersim_plugin_api::{BuildContext, CredentialUrl, PluginError};
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::tcp::{AMQPUriTcpExt, RustlsConnector, TLSConfig};
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Connection, ConnectionProperties, ErrorKind};

use crate::AmqpConfig;

/// How long one connection attempt may take when the URL sets no `connection_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to connect; never prints the password.
#[derive(Clone)]
pub struct Broker {
    uri: AMQPUri,
    /// The TLS layer of `amqps://` connections; `None` for `amqp://`.
    tls: Option<RustlsConnector>,
    /// `amqp://guest@127.0.0.1:5672/%2f`-like text for messages: no password.
    pub shown: String,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub struct ConnectError {
    /// `true` when retrying cannot help (credentials, vhost, TLS certificates).
    pub permanent: bool,
    /// One line for the user, without the password.
    pub message: String,
}

impl Broker {
    /// Parses the URL and reads the TLS files (errors name the key and its variable).
    pub fn from_config(config: &AmqpConfig, cx: &BuildContext) -> Result<Broker, PluginError> {
        let (uri, shown) = parse_url(config.url.expose())?;
        let tls_wanted = uri.scheme == AMQPScheme::AMQPS;
        let files = [
            ("ca_file", "AMQP_CA_FILE", &config.ca_file),
            (
                "client_cert_file",
                "AMQP_CLIENT_CERT_FILE",
                &config.client_cert_file,
            ),
            (
                "client_key_file",
                "AMQP_CLIENT_KEY_FILE",
                &config.client_key_file,
            ),
        ];
        if !tls_wanted && let Some((key, var, _)) = files.iter().find(|(_, _, path)| path.is_some())
        {
            return Err(PluginError::Config(format!(
                "{key} ({var}) is set but url (AMQP_URL) {shown} is not amqps://: TLS files need an amqps:// URL"
            )));
        }
        let read = |key: &str, var: &str, path: &Path| -> Result<Vec<u8>, PluginError> {
            let path = cx.resolve_path(path);
            std::fs::read(&path).map_err(|error| {
                PluginError::Config(format!(
                    "{key} ({var}): cannot read {}: {error}",
                    path.display()
                ))
            })
        };
        let ca = match &config.ca_file {
            Some(path) => {
                let pem = read("ca_file", "AMQP_CA_FILE", path)?;
                Some(certificates(&pem, CA, path)?)
            }
            None => None,
        };
        let identity = match (&config.client_cert_file, &config.client_key_file) {
            (Some(cert), Some(key)) => {
                let pem = read("client_cert_file", "AMQP_CLIENT_CERT_FILE", cert)?;
                let chain = certificates(&pem, CERT, cert)?;
                let key_pem = read("client_key_file", "AMQP_CLIENT_KEY_FILE", key)?;
                // The parser's error could quote the file: keep only that it failed.
                let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
                    PluginError::Config(format!(
                        "{KEY}: {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                        key.display()
                    ))
                })?;
                // Any X.509 version (v1 from `openssl x509 -req` included); the key must match.
                Some(tls::client_identity(chain, key).map_err(|why| {
                    PluginError::Config(format!(
                        "{CERT} / {KEY}: the certificate and key cannot be used together: {why}"
                    ))
                })?)
            }
            (Some(_), None) => {
                return Err(PluginError::Config(format!("{CERT} is set without {KEY}")));
            }
            (None, Some(_)) => {
                return Err(PluginError::Config(format!("{KEY} is set without {CERT}")));
            }
            (None, None) => None,
        };
        let tls = if tls_wanted {
            let roots = match ca {
                Some(certificates) => certificates,
                None => system_roots()?,
            };
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(roots);
            if added == 0 {
                return Err(PluginError::Config(format!(
                    "{CA}: no usable CA certificate for amqps://"
                )));
            }
            let config = tls::client_config(store, identity).map_err(PluginError::Config)?;
            Some(RustlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        Ok(Broker { uri, tls, shown })
    }

    /// The vhost of the URL.
    pub fn vhost(&self) -> &str {
        &self.uri.vhost
    }

    /// The broker's `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.uri.authority.host, self.uri.authority.port)
    }

    /// One connection attempt, named `customersim` on the broker.
    pub async fn connect(&self) -> Result<Connection, ConnectError> {
        self.connect_named("customersim").await
    }

    /// One connection attempt; `name` is the connection name the broker shows (RabbitMQ's
    /// management UI, `rabbitmqctl list_connections client_properties`).
    pub async fn connect_named(&self, name: &str) -> Result<Connection, ConnectError> {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let runtime = lapin::runtime::default_runtime().map_err(|error| ConnectError {
            permanent: true,
            message: format!("amqp: no async runtime: {error}"),
        })?;
        let limit = self
            .uri
            .query
            .connection_timeout
            .map(|ms| Duration::from_millis(ms) + Duration::from_secs(1))
            .unwrap_or(CONNECT_TIMEOUT);
        let tls = self.tls.clone();
        // lapin's own connect makes the TCP connection (and reconnects); the TLS layer is ours,
        // so the client certificate may be of any X.509 version (see `plugin_api::tls`).
        let attempt = Connection::connector(
            self.uri.clone(),
            runtime,
            async move |uri: AMQPUri, runtime| {
                let host = uri.authority.host.clone();
                let plain = AMQPUri {
                    scheme: AMQPScheme::AMQP,
                    ..uri
                };
                let stream = plain
                    .connect_with_config_async(TLSConfig::default(), &runtime)
                    .await?;
                Ok(match &tls {
                    Some(connector) => stream.into_rustls(connector, &host).await?,
                    None => stream,
                })
            },
            properties,
        );
        match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(self.classify(&error)),
            Err(_) => Err(ConnectError {
                permanent: false,
                message: format!("amqp: no answer from {} within {limit:?}", self.address()),
            }),
        }
    }

    /// Turns a lapin error of a connection attempt into a message and a verdict.
    pub fn classify(&self, error: &lapin::Error) -> ConnectError {
        let address = self.address();
        let user = &self.uri.authority.userinfo.username;
        let vhost = &self.uri.vhost;
        let text = self.scrub(&error.to_string());
        match error.kind() {
            ErrorKind::ProtocolError(amqp) => match amqp.kind() {
                AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => ConnectError {
                    permanent: true,
                    message: format!(
                        "amqp: the broker at {address} refused the login of user {user:?} ({}): check the user name and password in url (AMQP_URL)",
                        self.scrub(amqp.get_message().as_str())
                    ),
                },
                AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => ConnectError {
                    permanent: true,
                    message: format!(
                        "amqp: the broker at {address} refused user {user:?} access to vhost {vhost:?} ({}): check the vhost in url (AMQP_URL)",
                        self.scrub(amqp.get_message().as_str())
                    ),
                },
                _ => ConnectError {
                    permanent: false,
                    message: format!("amqp: {address}: {text}"),
                },
            },
            ErrorKind::AuthProviderError(_) => ConnectError {
                permanent: true,
                message: format!(
                    "amqp: authentication with {address} failed ({text}): check url (AMQP_URL)"
                ),
            },
            ErrorKind::IOError(io) if is_tls_failure(io) => ConnectError {
                permanent: true,
                message: format!(
                    "amqp: TLS with {address} failed ({text}): check url (AMQP_URL), ca_file (AMQP_CA_FILE), client_cert_file and client_key_file"
                ),
            },
            _ => ConnectError {
                permanent: false,
                message: format!("amqp: cannot connect to {address}: {text}"),
            },
        }
    }

    /// Removes the password from a text, in case a library echoed it.
    fn scrub(&self, text: &str) -> String {
        let password = &self.uri.authority.userinfo.password;
        if password.len() >= 3 {
            text.replace(password.as_str(), "******")
        } else {
            text.to_string()
        }
    }
}

/// TLS handshake and certificate failures: rustls reports them as `InvalidData`.
fn is_tls_failure(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
    )
}

const CA: &str = "ca_file (AMQP_CA_FILE)";
const CERT: &str = "client_cert_file (AMQP_CLIENT_CERT_FILE)";
const KEY: &str = "client_key_file (AMQP_CLIENT_KEY_FILE)";

/// The PEM certificates of a file; an error naming the setting when there are none.
fn certificates(
    pem: &[u8],
    setting: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, PluginError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            PluginError::Config(format!(
                "{setting}: {} is not a valid PEM file: {error}",
                path.display()
            ))
        })?;
    if certificates.is_empty() {
        return Err(PluginError::Config(format!(
            "{setting}: {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certificates)
}

/// The system's CA certificates, trusted for `amqps://` when no `ca_file` is set.
fn system_roots() -> Result<Vec<CertificateDer<'static>>, PluginError> {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        return Err(PluginError::Config(format!(
            "amqps:// without {CA}: the system has no CA certificates to trust ({} errors reading them); set {CA}",
            found.errors.len()
        )));
    }
    Ok(found.certs)
}

/// Parses the AMQP URL (the `url` crate, as lapin does) and checks it: `amqp://` or `amqps://`,
/// a host after `//` (lapin would otherwise connect to localhost, taking what follows as the
/// vhost). Errors and the returned display text never hold the password.
pub fn parse_url(url: &str) -> Result<(AMQPUri, String), PluginError> {
    let url = CredentialUrl::new(url);
    let invalid = |why: &dyn std::fmt::Display| {
        PluginError::Config(format!(
            "url (AMQP_URL): invalid AMQP URL (not shown, it may hold a password): {why}; expected amqp://user:pass@host:5672/vhost or amqps://…"
        ))
    };
    let parsed = url.parse(&["amqp", "amqps"]).map_err(|why| invalid(&why))?;
    let shown = url.masked();
    let password = parsed.password().unwrap_or_default().to_string();
    let mut uri: AMQPUri = parsed.as_str().parse().map_err(|error: String| {
        // lapin's own messages may quote the URL: keep them only without it.
        let error = if password.is_empty() || !error.contains(&password) {
            error.replace(parsed.as_str(), &shown)
        } else {
            "its parameters".to_string()
        };
        PluginError::Config(format!("url (AMQP_URL): invalid AMQP URL {shown}: {error}"))
    })?;
    // amq-protocol-uri only keeps domain names; keep IP addresses too (127.0.0.1 stays 127.0.0.1
    // instead of becoming "localhost", which may resolve to ::1 first).
    let host = parsed.host_str().expect("checked: the URL has a host");
    uri.authority.host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((uri, shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<(AMQPUri, String), PluginError> {
        parse_url(url)
    }

    #[test]
    fn parses_urls_and_keeps_ip_hosts() {
        let (uri, shown) = parse("amqp://guest:s3cret@127.0.0.1:5673/%2f").unwrap();
        assert_eq!(uri.authority.host, "127.0.0.1");
        assert_eq!(uri.authority.port, 5673);
        assert_eq!(uri.vhost, "/");
        assert_eq!(uri.authority.userinfo.password, "s3cret");
        assert_eq!(shown, "amqp://guest:******@127.0.0.1:5673/%2f");
        let (uri, _) = parse("amqps://u:p@broker.example/prod").unwrap();
        assert_eq!(uri.scheme, AMQPScheme::AMQPS);
        assert_eq!(uri.authority.port, 5671);
        assert_eq!(uri.vhost, "prod");
        let (uri, _) = parse("amqp://u:p%2Fq@[::1]:5672/v").unwrap();
        assert_eq!(uri.authority.host, "::1");
        assert_eq!(uri.authority.userinfo.password, "p/q");
    }

    #[test]
    fn bad_urls_are_reported_without_the_password() {
        for url in [
            "http://guest:s3cret@host/",
            "amqp://guest:s3cret@host:99999/",
            "amqp://guest:s3cret@host/?heartbeat=soon",
            "amqp:/guest:s3cret@host/vhost",
            "amqp:guest:s3cret@host",
            "amqp:///s3cret",
            "amqp://guest:12/s3cret@host/",
            "guest:s3cret@host",
        ] {
            let error = parse(url).unwrap_err().to_string();
            assert!(error.contains("url (AMQP_URL)"), "{error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
    }
}
