//! A private PKI made with rcgen and an HTTPS server on 127.0.0.1 made
//! with tokio-rustls and hyper, for the tests of the `http` prober's TLS
//! handling (CA file, expiry, server name, mTLS) and for `/metrics` bodies
//! that carry TLS expiry gauges.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A private PKI: root CA → intermediate CA → leaf for `localhost` /
/// 127.0.0.1 / `status.internal`, and a client certificate from the root.
pub struct Pki {
    dir: tempfile::TempDir,
    root_pem: String,
    intermediate_der: CertificateDer<'static>,
    /// Unix seconds of the intermediate CA's `not_after`.
    pub intermediate_not_after: f64,
    root: (CertificateParams, KeyPair),
    intermediate: (CertificateParams, KeyPair),
}

fn ca_params(name: &str, not_after: (i32, u8, u8)) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    params
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let root_key = KeyPair::generate().expect("key");
        let root_params = ca_params("upstream-exporter test root", (2040, 1, 1));
        let root_cert = root_params.self_signed(&root_key).expect("root");
        let inter_key = KeyPair::generate().expect("key");
        let inter_params = ca_params("upstream-exporter test intermediate", (2034, 6, 1));
        let intermediate_not_after = inter_params.not_after.unix_timestamp() as f64;
        let inter_cert = inter_params
            .signed_by(&inter_key, &Issuer::from_params(&root_params, &root_key))
            .expect("intermediate");
        let root_pem = root_cert.pem();
        std::fs::write(dir.path().join("ca.pem"), &root_pem).expect("write ca");
        Pki {
            dir,
            root_pem,
            intermediate_der: inter_cert.der().clone(),
            intermediate_not_after,
            root: (root_params, root_key),
            intermediate: (inter_params, inter_key),
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A server leaf signed by the intermediate, valid until `not_after`;
    /// returns (chain [leaf, intermediate], key, leaf not_after).
    pub fn leaf(
        &self,
        not_before: (i32, u8, u8),
        not_after: (i32, u8, u8),
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, f64) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "status.internal".to_owned(),
        ])
        .expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let leaf_not_after = params.not_after.unix_timestamp() as f64;
        let (inter_params, inter_key) = &self.intermediate;
        let cert = params
            .signed_by(&key, &Issuer::from_params(inter_params, inter_key))
            .expect("leaf");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (
            vec![cert.der().clone(), self.intermediate_der.clone()],
            key,
            leaf_not_after,
        )
    }

    /// A client certificate signed by the root, written as
    /// `client.pem` / `client-key.pem`.
    pub fn client_files(&self) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "upstream-exporter");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let (root_params, root_key) = &self.root;
        let cert = params
            .signed_by(&key, &Issuer::from_params(root_params, root_key))
            .expect("client cert");
        std::fs::write(self.path("client.pem"), cert.pem()).expect("write");
        std::fs::write(self.path("client-key.pem"), key.serialize_pem()).expect("write");
    }

    pub fn root_store(&self) -> rustls::RootCertStore {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.root_pem.as_bytes()) {
            roots.add(cert.expect("pem")).expect("add root");
        }
        roots
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An HTTPS server on 127.0.0.1 answering `200 ok` to everything; with
/// `client_roots`, it requires a client certificate issued by them.
pub async fn https_server(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Option<rustls::RootCertStore>,
) -> SocketAddr {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = match client_roots {
        Some(roots) => builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .expect("client verifier"),
        ),
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, key).expect("server cert");
    serve(config).await
}

/// An HTTPS server like [`https_server`] (no client certificates) whose
/// certificate can be renewed while it runs: new handshakes get the new
/// one, open connections keep theirs, as a server that reloads its
/// certificate without closing connections does.
pub async fn https_server_renewable(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> (SocketAddr, Arc<Renewable>) {
    let renewable = Arc::new(Renewable(std::sync::Mutex::new(certified(chain, key))));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(renewable.clone());
    (serve(config).await, renewable)
}

/// The certificate [`https_server_renewable`] hands to new handshakes.
#[derive(Debug)]
pub struct Renewable(std::sync::Mutex<Arc<rustls::sign::CertifiedKey>>);

impl Renewable {
    pub fn renew(&self, chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) {
        *self.0.lock().expect("renewable") = certified(chain, key);
    }
}

impl rustls::server::ResolvesServerCert for Renewable {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.lock().expect("renewable").clone())
    }
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Arc<rustls::sign::CertifiedKey> {
    let signer = provider()
        .key_provider
        .load_private_key(key)
        .expect("server key");
    Arc::new(rustls::sign::CertifiedKey::new(chain, signer))
}

/// Answer `200 ok` to everything over TLS with `config`, on 127.0.0.1.
async fn serve(config: rustls::ServerConfig) -> SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}
