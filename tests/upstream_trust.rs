//! Probes reach upstreams as the daemon does, as set up by the server's environment: through the
//! proxy `HTTP_PROXY` names (but not for `NO_PROXY` hosts, nor for the daemon on loopback), and
//! over TLS trusting the CA that `SSL_CERT_FILE` names — an unknown CA is named as such, never
//! "connection refused". The server runs without a daemon (`autoStart: false`): only its probes
//! and the route table are under test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Mcp, TestHome, free_port};
use rcgen::{CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(20);

/// Request heads that reached a listener.
type Heads = Arc<Mutex<Vec<String>>>;

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, heads: Heads) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    heads
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&buf).to_string());
    let body = r#"{"object":"list","data":[]}"#;
    let _ = s
        .write_all(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    let _ = s.shutdown().await;
}

/// A listener answering every request with an empty model list, over TLS when given one.
async fn listen(tls: Option<tokio_rustls::TlsAcceptor>) -> (SocketAddr, Heads) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads: Heads = Arc::default();
    let log = heads.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let (tls, log) = (tls.clone(), log.clone());
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(s).await {
                            answer(s, log).await;
                        }
                    }
                    None => answer(s, log).await,
                }
            });
        }
    });
    (addr, heads)
}

fn acceptor(cert: Vec<u8>, key: Vec<u8>) -> tokio_rustls::TlsAcceptor {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.into()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
    )
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn test_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(ca: &CertifiedIssuer<'static, KeyPair>) -> (Vec<u8>, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, ca)
        .unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

fn endpoint(routes: &Value, provider: &str) -> Value {
    routes["models"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["provider"] == provider)
        .cloned()
        .unwrap()
}

/// Polls the route table until `pred` holds for it.
async fn wait_routes(mcp: &Mcp, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let start = std::time::Instant::now();
    loop {
        let routes = mcp.read_json("bitrouter://routes").await;
        if pred(&routes) {
            return routes;
        }
        assert!(start.elapsed() < WAIT, "never {what}: {routes:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config(home: &TestHome, providers: Value) -> std::path::PathBuf {
    let names: Vec<String> = providers.as_object().unwrap().keys().cloned().collect();
    home.write_config(&json!({
        "autoStart": false,
        "port": free_port(),
        "healthCheckIntervalMs": 300,
        "providers": providers,
        "models": {"smart": {"strategy": "priority", "endpoints":
            names.iter().map(|p| json!({"provider": p, "modelId": "m"})).collect::<Vec<_>>()}}
    }))
}

#[tokio::test]
async fn probes_go_through_the_environments_proxy_except_for_no_proxy_hosts() {
    let home = TestHome::new();
    let (proxy, proxied) = listen(None).await;
    let (local, direct) = listen(None).await;
    let cfg = config(
        &home,
        json!({
            "remote": {"derives": "openai", "apiBase": "http://provider.invalid/v1", "apiKey": "k-remote-123456"},
            "local": {"derives": "openai", "apiBase": format!("http://{local}/v1"), "apiKey": "k-local-123456"}
        }),
    );
    let proxy_url = format!("http://{proxy}");
    let mcp = Mcp::stdio_env(
        &home,
        Some(&cfg),
        &[
            ("HTTP_PROXY", proxy_url.as_str()),
            ("NO_PROXY", "127.0.0.1"),
        ],
    )
    .await;
    // Without the proxy `provider.invalid` would be a DNS failure.
    let routes = wait_routes(&mcp, "both healthy", |r| {
        endpoint(r, "remote")["health"] == "healthy" && endpoint(r, "local")["health"] == "healthy"
    })
    .await;
    assert!(
        endpoint(&routes, "remote")["probe_ms"].is_u64(),
        "{routes:#}"
    );
    let proxied = proxied.lock().unwrap().clone();
    assert!(
        proxied[0].starts_with("GET http://provider.invalid/v1/models HTTP/1.1"),
        "{proxied:?}"
    );
    assert!(
        proxied[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer k-remote-123456")
    );
    assert!(
        proxied.iter().all(|h| !h.contains("127.0.0.1")),
        "NO_PROXY hosts and the daemon on loopback are reached directly: {proxied:?}"
    );
    assert!(direct.lock().unwrap()[0].starts_with("GET /v1/models HTTP/1.1"));
    mcp.close().await;
}

#[tokio::test]
async fn probes_trust_the_ca_in_ssl_cert_file_and_name_an_unknown_one() {
    let home = TestHome::new();
    let ca = test_ca("bitrouter-mcp test CA");
    let ca_file = home.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let (cert, key) = leaf(&ca);
    let (trusted, trusted_seen) = listen(Some(acceptor(cert, key))).await;
    let (cert, key) = leaf(&test_ca("someone else's CA"));
    let (untrusted, untrusted_seen) = listen(Some(acceptor(cert, key))).await;
    let cfg = config(
        &home,
        json!({
            "trusted": {"derives": "anthropic", "apiBase": format!("https://{trusted}"), "apiKey": "k-trusted-123456"},
            "untrusted": {"derives": "openai", "apiBase": format!("https://{untrusted}/v1"), "apiKey": "k-untrusted-123456"}
        }),
    );
    let mcp = Mcp::stdio_env(
        &home,
        Some(&cfg),
        &[("SSL_CERT_FILE", ca_file.to_str().unwrap())],
    )
    .await;
    let routes = wait_routes(&mcp, "trusted healthy, untrusted unhealthy", |r| {
        endpoint(r, "trusted")["health"] == "healthy"
            && endpoint(r, "untrusted")["health"] == "unhealthy"
    })
    .await;
    let error = endpoint(&routes, "untrusted")["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with("probe: TLS certificate rejected: unknown issuer"),
        "{error}"
    );
    let seen = trusted_seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(seen.starts_with("get /v1/models http/1.1"), "{seen}");
    assert!(seen.contains("x-api-key: k-trusted-123456"), "{seen}");
    assert!(
        untrusted_seen.lock().unwrap().is_empty(),
        "no request after a refused handshake"
    );
    // bitrouter_status carries the same facts (probe latencies move between the two reads).
    let status = mcp.ok("bitrouter_status", json!({})).await;
    for provider in ["trusted", "untrusted"] {
        let (a, b) = (endpoint(&status, provider), endpoint(&routes, provider));
        assert_eq!(
            (&a["health"], &a["last_error"]),
            (&b["health"], &b["last_error"])
        );
    }
    mcp.close().await;
}

#[tokio::test]
async fn a_machine_without_trust_roots_still_serves_and_says_why_https_fails() {
    // A slim container without a CA bundle: SSL_CERT_FILE/DIR name nothing, so no roots load.
    let home = TestHome::new();
    let (cert, key) = leaf(&test_ca("some CA"));
    let (https, _) = listen(Some(acceptor(cert, key))).await;
    let (plain, plain_seen) = listen(None).await;
    let cfg = config(
        &home,
        json!({
            "secure": {"derives": "openai", "apiBase": format!("https://{https}/v1"), "apiKey": "k-secure-123456"},
            "plain": {"derives": "openai", "apiBase": format!("http://{plain}/v1"), "apiKey": "k-plain-123456"}
        }),
    );
    let nowhere = home.dir.path().join("no-such-roots");
    let nowhere = nowhere.to_str().unwrap();
    let mcp = Mcp::stdio_env(
        &home,
        Some(&cfg),
        &[("SSL_CERT_FILE", nowhere), ("SSL_CERT_DIR", nowhere)],
    )
    .await;
    let routes = wait_routes(&mcp, "plain healthy, https unhealthy", |r| {
        endpoint(r, "plain")["health"] == "healthy"
            && endpoint(r, "secure")["health"] == "unhealthy"
    })
    .await;
    let error = endpoint(&routes, "secure")["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with("probe: TLS handshake failed: no trusted roots on this machine"),
        "{error}"
    );
    assert!(!plain_seen.lock().unwrap().is_empty());
    mcp.close().await;
}
