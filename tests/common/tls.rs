//! A test certificate authority made at test time, as a user's private CA or a real provider's
//! public one would be: a CA certificate, and a server certificate it signed for `127.0.0.1` and
//! `localhost` (`CA:FALSE`, `serverAuth`; the daemon refuses a self-signed end-entity certificate).
//! Processes under test trust it through `SSL_CERT_FILE`, the variable the daemon's TLS stack
//! and ours read; nothing else on the machine trusts it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The CA and the server certificate it signed, made once per test process.
pub struct TestCa {
    /// The CA certificate (PEM), what `SSL_CERT_FILE` holds.
    pub ca_pem: String,
    /// The server certificate (PEM) and its key (PKCS#8 PEM), for servers outside this process.
    pub leaf_pem: String,
    pub leaf_key_pem: String,
    server: Arc<rustls::ServerConfig>,
}

/// The process's test CA.
pub fn ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(make)
}

fn make() -> TestCa {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "bitrouter-mcp test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "fake upstream");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

    let chain = vec![
        CertificateDer::from(leaf_cert.der().to_vec()),
        CertificateDer::from(ca_cert.der().to_vec()),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    // The provider is named, not taken from the process default: another crate in the tree may
    // enable a second one, and then rustls cannot choose.
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    TestCa {
        ca_pem: ca_cert.pem(),
        leaf_pem: leaf_cert.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
        server: Arc::new(server),
    }
}

impl TestCa {
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }

    /// Writes the CA certificate to `dir/test-ca.pem` (once) and returns its path: the value of
    /// `SSL_CERT_FILE` for processes under test.
    pub fn write_to(&self, dir: &Path) -> PathBuf {
        let p = dir.join("test-ca.pem");
        if !p.exists() {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(&p, &self.ca_pem).unwrap();
        }
        p
    }
}
