//! A test certificate authority, made fresh for each test with `rcgen`, for brokers behind TLS.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::temp::write_shared;

/// PEM files of a test PKI: a CA, a server certificate for 127.0.0.1/localhost and a client
/// certificate, all signed by the CA. The files are readable by every user (see
/// [`crate::temp::shared_temp_dir`]).
pub struct TestPki {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The CA's private key, for certificates signed outside the kit ([`TestPki::openssl_v1_client`]).
    pub ca_key: PathBuf,
    /// The server certificate (SANs `localhost` and the IP 127.0.0.1).
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// A client certificate (CN `customersim-test-client`).
    pub client_cert: PathBuf,
    /// The client's private key.
    pub client_key: PathBuf,
}

impl TestPki {
    /// Generates a PKI in `dir` (file names start with `prefix`, so several fit in one folder).
    pub fn generate(dir: &Path, prefix: &str) -> TestPki {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("customersim test CA {prefix}"));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).expect("the CA certificate");

        let (server, server_key) = signed(
            (&ca, &ca_key),
            vec!["localhost".to_string(), "127.0.0.1".to_string()],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client, client_key) = signed(
            (&ca, &ca_key),
            Vec::new(),
            "customersim-test-client",
            ExtendedKeyUsagePurpose::ClientAuth,
        );

        let file = |name: &str, pem: &str| write_shared(dir, &format!("{prefix}{name}"), pem);
        TestPki {
            ca: file("ca.pem", &ca.pem()),
            ca_key: file("ca.key", &ca_key.serialize_pem()),
            server_cert: file("server.pem", &server.pem()),
            server_key: file("server.key", &server_key.serialize_pem()),
            client_cert: file("client.pem", &client.pem()),
            client_key: file("client.key", &client_key.serialize_pem()),
        }
    }

    /// A client certificate and key made with the `openssl` CLI the way Mosquitto's TLS guide
    /// does (`openssl genrsa`, `openssl req -new`, `openssl x509 -req … -CAcreateserial`), signed
    /// by this CA: an X.509 **v1** certificate (no extensions file), checked here to be v1. The
    /// files are `{name}.crt` and `{name}.key` in `dir`; returns (certificate, key).
    pub fn openssl_v1_client(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = dir.join(format!("{name}.key"));
        let request = dir.join(format!("{name}.csr"));
        let certificate = dir.join(format!("{name}.crt"));
        openssl(&[
            "genrsa".as_ref(),
            "-out".as_ref(),
            key.as_os_str(),
            "2048".as_ref(),
        ]);
        openssl(&[
            "req".as_ref(),
            "-new".as_ref(),
            "-key".as_ref(),
            key.as_os_str(),
            "-subj".as_ref(),
            format!("/CN={name}").as_ref(),
            "-out".as_ref(),
            request.as_os_str(),
        ]);
        openssl(&[
            "x509".as_ref(),
            "-req".as_ref(),
            "-in".as_ref(),
            request.as_os_str(),
            "-CA".as_ref(),
            self.ca.as_os_str(),
            "-CAkey".as_ref(),
            self.ca_key.as_os_str(),
            "-CAcreateserial".as_ref(),
            "-days".as_ref(),
            "2".as_ref(),
            "-out".as_ref(),
            certificate.as_os_str(),
        ]);
        let text = openssl(&[
            "x509".as_ref(),
            "-noout".as_ref(),
            "-text".as_ref(),
            "-in".as_ref(),
            certificate.as_os_str(),
        ]);
        assert!(
            text.contains("Version: 1 (0x0)"),
            "openssl made no v1 certificate:\n{text}"
        );
        (certificate, key)
    }

    /// The listener settings of a Mosquitto TLS listener using this PKI.
    pub fn mosquitto_listener(&self, require_client_certificate: bool) -> String {
        format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require_client_certificate}\n",
            self.ca.display(),
            self.server_cert.display(),
            self.server_key.display()
        )
    }
}

/// A certificate for `names` (subject alternative names; an IP address becomes an IP SAN) with
/// the common name `common_name`, for one `usage`, signed by `ca`; and its key.
fn signed(
    (ca, ca_key): (&Certificate, &KeyPair),
    names: Vec<String>,
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::new(names).expect("certificate params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![usage];
    let certificate = params.signed_by(&key, ca, ca_key).expect("a certificate");
    (certificate, key)
}

/// Runs the `openssl` CLI; its standard output. Panics with its standard error if it fails.
fn openssl(args: &[&OsStr]) -> String {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI is installed");
    assert!(
        output.status.success(),
        "openssl {:?} failed: {}",
        args,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
