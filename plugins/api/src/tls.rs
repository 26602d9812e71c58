//! Client TLS for plugins that connect over TLS (feature `tls`): the project's one TLS stack
//! (rustls with the `ring` provider, no aws-lc-rs) and a client certificate of any X.509 version.
//!
//! Why not rustls's own `with_client_auth_cert`: it checks that the certificate matches its key
//! by parsing the certificate as a webpki end-entity certificate, and webpki refuses X.509 v1.
//! A v1 certificate is what `openssl x509 -req` makes without an extensions file, as in the
//! TLS recipes of Mosquitto and RabbitMQ, and those brokers (OpenSSL, Erlang) accept it. So
//! [`client_identity`] compares the key's SubjectPublicKeyInfo with the certificate's, read by
//! `x509-parser` (which reads every version), and the certificate is presented as it is. A key
//! that does not belong to the certificate is still refused before any connection.

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};

pub use rustls;

/// The crypto provider of every TLS connection: rustls's `ring`.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client certificate chain (end-entity first) and its key, checked to belong together.
///
/// The error says why they cannot be used, without quoting key material: the key is not one
/// the provider can sign with, the first certificate is not DER X.509, or its public key is not
/// the key's.
pub fn client_identity(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, String> {
    let Some(end_entity) = chain.first() else {
        return Err("the certificate file holds no certificate".into());
    };
    let (_, certificate) = x509_parser::parse_x509_certificate(end_entity)
        .map_err(|error| format!("the first certificate is not X.509: {error}"))?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|error| format!("the key is not usable for signing: {error}"))?;
    // The ring provider knows the public key of every key type it loads (RSA, ECDSA, Ed25519);
    // a key without one cannot be checked here, and the broker's handshake will tell.
    if let Some(public) = signing_key.public_key()
        && public.as_ref() != certificate.tbs_certificate.subject_pki.raw
    {
        return Err(format!(
            "the key is not the key of the certificate (subject {:?})",
            certificate.subject().to_string()
        ));
    }
    Ok(Arc::new(CertifiedKey::new(chain, signing_key)))
}

/// Presents the one client certificate to every server that asks for one.
#[derive(Debug)]
struct PresentAlways(Arc<CertifiedKey>);

impl ResolvesClientCert for PresentAlways {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A client config trusting `roots`, presenting `identity` (from [`client_identity`]) when the
/// server asks for a client certificate.
pub fn client_config(
    roots: RootCertStore,
    identity: Option<Arc<CertifiedKey>>,
) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS: {error}"))?
        .with_root_certificates(roots);
    Ok(match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => builder.with_client_cert_resolver(Arc::new(PresentAlways(identity))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn certificate_and_key() -> (CertificateDer<'static>, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let certificate = CertificateParams::new(vec!["client".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (certificate.der().clone(), key)
    }

    fn private(key: &KeyPair) -> PrivateKeyDer<'static> {
        PrivateKeyDer::try_from(key.serialize_der()).unwrap()
    }

    #[test]
    fn a_certificate_and_its_own_key_belong_together() {
        let (certificate, key) = certificate_and_key();
        let identity = client_identity(vec![certificate.clone()], private(&key)).unwrap();
        assert_eq!(identity.cert, vec![certificate]);
        let config = client_config(RootCertStore::empty(), Some(identity)).unwrap();
        assert!(config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn another_key_is_refused_without_quoting_it() {
        let (certificate, _) = certificate_and_key();
        let (_, other) = certificate_and_key();
        let error = client_identity(vec![certificate], private(&other)).unwrap_err();
        assert!(error.contains("not the key of the certificate"), "{error}");
    }

    #[test]
    fn a_chain_must_hold_an_x509_certificate() {
        let (_, key) = certificate_and_key();
        let error = client_identity(Vec::new(), private(&key)).unwrap_err();
        assert!(error.contains("no certificate"), "{error}");
        let error = client_identity(
            vec![CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])],
            private(&key),
        )
        .unwrap_err();
        assert!(error.contains("not X.509"), "{error}");
    }
}
