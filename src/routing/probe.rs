//! Requests the control plane makes to upstream providers itself, with the key the daemon would
//! send: the **probe** (each protocol's model listing, `GET …/models`, free) and the **trial** (one
//! real completion capped at one output token, sent only to end a circuit breaker's cooldown; see
//! `health`).
//!
//! Trust and proxies are the daemon's: rustls with the platform verifier (the system roots, or
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` when set) and `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` /
//! `NO_PROXY` from the environment. Redirects are followed only within the same origin, so a key
//! never travels to another host (`x-api-key` and `x-goog-api-key` are not stripped by reqwest on
//! a cross-host redirect, only `Authorization` is). Failures are classified from the error's
//! source chain, so a certificate problem is never called "connection refused".

use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, Instant};

use super::providers::Protocol;
use super::resolve::Upstream;

/// The outcome of one probe or trial.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub latency: Duration,
    pub result: Result<(), ProbeError>,
}

/// What went wrong, as a user would want it named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// The server's certificate was refused: unknown issuer, expired, wrong name, ….
    Certificate(String),
    /// The TLS handshake failed for another reason (a plain-HTTP server, an alert, no roots).
    Handshake(String),
    /// The host name does not resolve.
    Dns(String),
    Refused,
    /// No answer (connect or response) within the limit, in ms.
    Timeout(u128),
    /// Answered with this status; `detail` is the provider's error type when it gave one.
    Status {
        code: u16,
        detail: Option<String>,
    },
    /// A redirect to another origin, not followed so the key stays with its provider.
    CrossOriginRedirect {
        code: u16,
        to: String,
    },
    Other(String),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Certificate(what) => write!(f, "TLS certificate rejected: {what}"),
            ProbeError::Handshake(what) => write!(f, "TLS handshake failed: {what}"),
            ProbeError::Dns(host) => write!(f, "DNS lookup failed for {host}"),
            ProbeError::Refused => f.write_str("connection refused"),
            ProbeError::Timeout(ms) => write!(f, "no answer within {ms} ms"),
            ProbeError::Status { code, detail } => {
                let meaning = match code {
                    401 | 403 => " (key refused)",
                    429 => " (rate limited)",
                    529 => " (overloaded)",
                    _ => "",
                };
                write!(f, "HTTP {code}{meaning}")?;
                if let Some(d) = detail {
                    write!(f, ": {d}")?;
                }
                Ok(())
            }
            ProbeError::CrossOriginRedirect { code, to } => write!(
                f,
                "HTTP {code} redirect to {to} not followed (keys go only to the configured apiBase)"
            ),
            ProbeError::Other(what) => f.write_str(what),
        }
    }
}

/// The HTTP client for upstreams.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    /// Why the platform's trust roots could not be loaded (then every HTTPS request fails).
    trust_error: Option<String>,
}

impl Default for UpstreamClient {
    fn default() -> Self {
        Self::new()
    }
}

fn origin(u: &reqwest::Url) -> (String, Option<String>, Option<u16>) {
    (
        u.scheme().to_string(),
        u.host_str().map(str::to_ascii_lowercase),
        u.port_or_known_default(),
    )
}

fn builder() -> reqwest::ClientBuilder {
    crate::tls::ensure_crypto_provider();
    let same_origin_only = reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .last()
            .is_some_and(|prev| origin(prev) == origin(attempt.url()));
        if !same {
            attempt.stop()
        } else if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder().redirect(same_origin_only)
}

impl UpstreamClient {
    pub fn new() -> Self {
        Self::with_roots(Vec::new())
    }

    /// With extra trusted roots on top of the platform's (tests use a private CA this way).
    pub fn with_roots(roots: Vec<reqwest::Certificate>) -> Self {
        let mut b = builder();
        for r in roots.iter().cloned() {
            b = b.add_root_certificate(r);
        }
        match b.build() {
            Ok(http) => Self {
                http,
                trust_error: None,
            },
            Err(e) => {
                // No usable roots on this machine (e.g. no CA bundle in a minimal container):
                // plain-HTTP upstreams still work, HTTPS ones fail with this reason.
                let reason = error_chain(&e);
                tracing::warn!(error = %reason, "cannot load TLS trust roots for upstream probes");
                // An empty root store loads nothing, so this build does not fail the same way.
                let http = builder()
                    .tls_certs_only(Vec::<reqwest::Certificate>::new())
                    .build()
                    .unwrap_or_default();
                Self {
                    http,
                    trust_error: Some(reason),
                }
            }
        }
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<reqwest::Response, ProbeError> {
        let resp = req.timeout(timeout).send().await.map_err(|e| {
            let kind = classify(&e, timeout);
            match (&kind, &self.trust_error) {
                (ProbeError::Certificate(_) | ProbeError::Handshake(_), Some(t)) => {
                    ProbeError::Handshake(format!("no trusted roots on this machine ({t})"))
                }
                _ => kind,
            }
        })?;
        if resp.status().is_redirection() {
            let to = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| resp.url().join(l).ok())
                .map(|u| {
                    let (scheme, host, port) = origin(&u);
                    format!(
                        "{scheme}://{}{}",
                        host.unwrap_or_default(),
                        port.map(|p| format!(":{p}")).unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "another origin".into());
            return Err(ProbeError::CrossOriginRedirect {
                code: resp.status().as_u16(),
                to,
            });
        }
        Ok(resp)
    }
}

/// `https://host/v1` → the base with the protocol's version segment, then `tail`.
fn versioned(base: &str, version: &str, tail: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with(version) {
        format!("{base}{tail}")
    } else {
        format!("{base}{version}{tail}")
    }
}

/// The listing request with the protocol's auth header.
fn listing(
    http: &reqwest::Client,
    upstream: &Upstream,
    key: Option<&str>,
) -> reqwest::RequestBuilder {
    let base = upstream.api_base.trim_end_matches('/');
    match upstream.protocol {
        Protocol::OpenAi => with_key(http.get(format!("{base}/models")), upstream.protocol, key),
        Protocol::Anthropic => with_key(
            http.get(versioned(base, "/v1", "/models")),
            upstream.protocol,
            key,
        ),
        Protocol::Google => with_key(
            http.get(versioned(base, "/v1beta", "/models")),
            upstream.protocol,
            key,
        ),
    }
}

fn with_key(
    req: reqwest::RequestBuilder,
    protocol: Protocol,
    key: Option<&str>,
) -> reqwest::RequestBuilder {
    let req = match protocol {
        Protocol::Anthropic => req.header("anthropic-version", "2023-06-01"),
        _ => req,
    };
    match (protocol, key) {
        (_, None) => req,
        (Protocol::OpenAi, Some(k)) => req.bearer_auth(k),
        (Protocol::Anthropic, Some(k)) => req.header("x-api-key", k),
        (Protocol::Google, Some(k)) => req.header("x-goog-api-key", k),
    }
}

/// The smallest real request of each protocol: one user word, at most one output token.
fn trial_request(
    http: &reqwest::Client,
    upstream: &Upstream,
    model_id: &str,
    key: Option<&str>,
    openai_limit_field: &str,
) -> reqwest::RequestBuilder {
    let base = upstream.api_base.trim_end_matches('/');
    let (url, body) = match upstream.protocol {
        Protocol::OpenAi => (
            format!("{base}/chat/completions"),
            serde_json::json!({
                "model": model_id,
                "messages": [{"role": "user", "content": "ping"}],
                openai_limit_field: 1,
            }),
        ),
        Protocol::Anthropic => (
            versioned(base, "/v1", "/messages"),
            serde_json::json!({
                "model": model_id,
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "ping"}],
            }),
        ),
        Protocol::Google => (
            versioned(
                base,
                "/v1beta",
                &format!("/models/{model_id}:generateContent"),
            ),
            serde_json::json!({
                "contents": [{"role": "user", "parts": [{"text": "ping"}]}],
                "generationConfig": {"maxOutputTokens": 1},
            }),
        ),
    };
    with_key(http.post(url).json(&body), upstream.protocol, key)
}

/// Probes `upstream`'s model listing. Healthy: 2xx, or 404/405 from a compatible server without
/// a listing. Unhealthy: no connection, TLS or DNS failure, timeout, 5xx, 401/403 (the key is
/// refused, so real requests would fail too), 429, or a redirect to another origin.
pub async fn probe(
    client: &UpstreamClient,
    upstream: &Upstream,
    key: Option<&str>,
    timeout: Duration,
) -> ProbeResult {
    let started = Instant::now();
    let result = match client
        .send(listing(&client.http, upstream, key), timeout)
        .await
    {
        Err(e) => Err(e),
        Ok(resp) => {
            let code = resp.status().as_u16();
            if resp.status().is_success() || code == 404 || code == 405 {
                Ok(())
            } else {
                Err(ProbeError::Status {
                    code,
                    detail: error_type(resp).await,
                })
            }
        }
    };
    ProbeResult {
        latency: started.elapsed(),
        result,
    }
}

/// One real completion of `model_id` (at most one output token), as the daemon would send it.
/// Passes on 2xx only. OpenAI reasoning models refuse `max_tokens`; the trial then asks again
/// with `max_completion_tokens`, as OpenAI's error says.
pub async fn trial(
    client: &UpstreamClient,
    upstream: &Upstream,
    model_id: &str,
    key: Option<&str>,
    timeout: Duration,
) -> ProbeResult {
    let started = Instant::now();
    let mut field = "max_tokens";
    let result = loop {
        let req = trial_request(&client.http, upstream, model_id, key, field);
        match client.send(req, timeout).await {
            Err(e) => break Err(e),
            Ok(resp) if resp.status().is_success() => break Ok(()),
            Ok(resp) => {
                let code = resp.status().as_u16();
                let body = resp.text().await.unwrap_or_default();
                if code == 400
                    && field == "max_tokens"
                    && upstream.protocol == Protocol::OpenAi
                    && body.contains("max_completion_tokens")
                {
                    field = "max_completion_tokens";
                    continue;
                }
                break Err(ProbeError::Status {
                    code,
                    detail: error_type_of(&body),
                });
            }
        }
    };
    ProbeResult {
        latency: started.elapsed(),
        result,
    }
}

async fn error_type(resp: reqwest::Response) -> Option<String> {
    error_type_of(&resp.text().await.unwrap_or_default())
}

/// The provider's machine-readable error name (`overloaded_error`, `rate_limit_exceeded`,
/// `RESOURCE_EXHAUSTED`, …) from an error body; never free text, which may quote a key.
fn error_type_of(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let e = v.get("error")?;
    ["type", "code", "status"]
        .iter()
        .filter_map(|k| e.get(*k).and_then(|t| t.as_str()))
        .find(|t| {
            !t.is_empty()
                && t.len() <= 40
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        })
        .map(String::from)
}

/// Names a failed request from its error's source chain (reqwest → hyper → io → rustls).
pub fn classify(e: &reqwest::Error, timeout: Duration) -> ProbeError {
    if e.is_timeout() {
        return ProbeError::Timeout(timeout.as_millis());
    }
    let host = e
        .url()
        .and_then(|u| u.host_str())
        .unwrap_or("the upstream")
        .to_string();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return from_tls(tls);
        }
        // hyper-util's connector names resolver failures "dns error" (its type is private).
        if err.to_string().starts_with("dns error") {
            return ProbeError::Dns(host);
        }
        cur = match err.downcast_ref::<std::io::Error>() {
            Some(io) => {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => return ProbeError::Refused,
                    std::io::ErrorKind::TimedOut => {
                        return ProbeError::Timeout(timeout.as_millis());
                    }
                    _ => {}
                }
                // io::Error::source() skips the error it wraps (TLS errors come wrapped twice).
                match io.get_ref() {
                    Some(inner) => Some(inner as &(dyn StdError + 'static)),
                    None => io.source(),
                }
            }
            None => err.source(),
        };
    }
    if e.is_redirect() {
        return ProbeError::Other("too many redirects".into());
    }
    ProbeError::Other(format!("request failed: {}", error_chain(e)))
}

fn from_tls(e: &rustls::Error) -> ProbeError {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => ProbeError::Certificate(match c {
            C::UnknownIssuer => {
                "unknown issuer (not signed by a CA this machine trusts; a private CA goes in SSL_CERT_FILE)".into()
            }
            C::Expired | C::ExpiredContext { .. } => "expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet".into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "not valid for this host name".into()
            }
            C::Revoked => "revoked".into(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "not a server certificate (wrong purpose; a CA certificate used as a server's?)"
                    .into()
            }
            other => format!("{other:?}"),
        }),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            ProbeError::Handshake(format!("{e} (is the upstream plain HTTP?)"))
        }
        other => ProbeError::Handshake(other.to_string()),
    }
}

/// Every message of the chain, without URLs (Google keys can travel in them).
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let mut text = err.to_string();
        if let Some(url) = e.url() {
            text = text.replace(url.as_str(), "<upstream>");
        }
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    //! Real failures on 127.0.0.1: closed ports, an unresolvable name, TLS listeners with bad
    //! certificates, stalls, and two listeners for redirects.

    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use rcgen::{CertificateParams, CertifiedIssuer, IsCa, KeyPair, date_time_ymd};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::routing::resolve::KeySource;

    const KEY: &str = "sk-test-key-0123456789";

    fn upstream(protocol: Protocol, base: String) -> Upstream {
        Upstream {
            protocol,
            api_base: base,
            keys: vec![KeySource::Literal(KEY.into())],
        }
    }

    /// One request as it reached a test listener.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        body: serde_json::Value,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    type Respond = Arc<dyn Fn(&Seen) -> (u16, Vec<(String, String)>, String) + Send + Sync>;

    async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
        mut stream: S,
        respond: Respond,
        seen: Arc<Mutex<Vec<Seen>>>,
    ) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let Ok(n) = stream.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf[0] == 0x16 {
                // A TLS ClientHello: answer as plain-HTTP servers do.
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
                    .await;
                return;
            }
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.lines();
        let mut first = lines.next().unwrap_or_default().split(' ');
        let (method, path) = (
            first.next().unwrap_or_default().to_string(),
            first.next().unwrap_or_default().to_string(),
        );
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let Ok(n) = stream.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let request = Seen {
            method,
            path,
            headers,
            body: serde_json::from_slice(&buf[head_end..]).unwrap_or_default(),
        };
        let (code, extra, body) = respond(&request);
        seen.lock().unwrap().push(request);
        let mut out = format!(
            "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        for (k, v) in extra {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&body);
        let _ = stream.write_all(out.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    /// A plain-HTTP listener answering every request with `respond`.
    async fn listen(
        respond: impl Fn(&Seen) -> (u16, Vec<(String, String)>, String) + Send + Sync + 'static,
    ) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let respond: Respond = Arc::new(respond);
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(handle(stream, respond.clone(), log.clone()));
            }
        });
        (addr, seen)
    }

    fn ok_json(_: &Seen) -> (u16, Vec<(String, String)>, String) {
        (200, vec![], r#"{"data":[]}"#.into())
    }

    struct Pki {
        ca: CertifiedIssuer<'static, KeyPair>,
    }

    impl Pki {
        fn new() -> Self {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "probe test CA");
            Self {
                ca: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
            }
        }

        fn root(&self) -> reqwest::Certificate {
            reqwest::Certificate::from_der(self.ca.der()).unwrap()
        }

        /// A leaf for `names`, signed by this CA, optionally long expired.
        fn leaf(&self, names: &[&str], expired: bool) -> (Vec<u8>, Vec<u8>) {
            let key = KeyPair::generate().unwrap();
            let mut params =
                CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap();
            if expired {
                params.not_before = date_time_ymd(2001, 1, 1);
                params.not_after = date_time_ymd(2002, 1, 1);
            }
            let cert = params.signed_by(&key, &self.ca).unwrap();
            (cert.der().to_vec(), key.serialize_der())
        }
    }

    /// An HTTPS listener on 127.0.0.1 with this certificate, answering 200 to every request.
    async fn listen_tls(cert: Vec<u8>, key: Vec<u8>) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
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
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let respond: Respond = Arc::new(ok_json);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, respond, log) = (acceptor.clone(), respond.clone(), log.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        handle(tls, respond, log).await;
                    }
                });
            }
        });
        (addr, seen)
    }

    async fn probe_err(client: &UpstreamClient, base: String) -> ProbeError {
        let up = upstream(Protocol::OpenAi, base);
        probe(client, &up, Some(KEY), Duration::from_secs(5))
            .await
            .result
            .unwrap_err()
    }

    #[tokio::test]
    async fn https_with_a_trusted_ca_works_and_certificate_problems_are_named() {
        let pki = Pki::new();
        let trusted = UpstreamClient::with_roots(vec![pki.root()]);

        let (cert, key) = pki.leaf(&["127.0.0.1"], false);
        let (good, seen) = listen_tls(cert, key).await;
        let up = upstream(Protocol::OpenAi, format!("https://{good}/v1"));
        let r = probe(&trusted, &up, Some(KEY), Duration::from_secs(5)).await;
        assert_eq!(r.result, Ok(()));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen[0].path, "/v1/models");
        assert_eq!(
            seen[0].header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );

        // The platform's roots alone do not know this CA.
        let e = probe_err(&UpstreamClient::new(), format!("https://{good}/v1")).await;
        assert!(
            matches!(&e, ProbeError::Certificate(w) if w.starts_with("unknown issuer")),
            "{e}"
        );
        assert!(e.to_string().contains("SSL_CERT_FILE"), "{e}");

        let (cert, key) = pki.leaf(&["127.0.0.1"], true);
        let (expired, _) = listen_tls(cert, key).await;
        let e = probe_err(&trusted, format!("https://{expired}/v1")).await;
        assert_eq!(e, ProbeError::Certificate("expired".into()));

        let (cert, key) = pki.leaf(&["api.example.com"], false);
        let (wrong_name, _) = listen_tls(cert, key).await;
        let e = probe_err(&trusted, format!("https://{wrong_name}/v1")).await;
        assert_eq!(
            e.to_string(),
            "TLS certificate rejected: not valid for this host name"
        );

        // A self-signed certificate used directly by the server.
        let own = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let (self_signed, _) =
            listen_tls(own.cert.der().to_vec(), own.signing_key.serialize_der()).await;
        let e = probe_err(&trusted, format!("https://{self_signed}/v1")).await;
        assert!(matches!(e, ProbeError::Certificate(_)), "{e}");
        assert!(!e.to_string().contains("refused"), "{e}");
    }

    #[tokio::test]
    async fn refused_dns_plain_http_timeout_and_status_are_told_apart() {
        let client = UpstreamClient::new();
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        assert_eq!(
            probe_err(&client, format!("http://127.0.0.1:{port}/v1")).await,
            ProbeError::Refused
        );

        let e = probe_err(&client, "https://nothing-here.invalid/v1".into()).await;
        assert_eq!(e, ProbeError::Dns("nothing-here.invalid".into()), "{e}");

        // https:// to a plain-HTTP server.
        let (plain, _) = listen(ok_json).await;
        let e = probe_err(&client, format!("https://{plain}/v1")).await;
        assert!(
            matches!(&e, ProbeError::Handshake(w) if w.contains("plain HTTP")),
            "{e}"
        );

        // Accepts, never answers.
        let stall = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stall_addr = stall.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((s, _)) = stall.accept().await {
                open.push(s);
            }
        });
        let up = upstream(Protocol::OpenAi, format!("http://{stall_addr}/v1"));
        let r = probe(&client, &up, Some(KEY), Duration::from_millis(300)).await;
        assert_eq!(r.result, Err(ProbeError::Timeout(300)));
        held.abort();

        let (overloaded, _) = listen(|_| {
            (
                529,
                vec![],
                format!(
                    r#"{{"type":"error","error":{{"type":"overloaded_error","message":"Overloaded {KEY}"}}}}"#
                ),
            )
        })
        .await;
        let e = probe_err(&client, format!("http://{overloaded}")).await;
        assert_eq!(e.to_string(), "HTTP 529 (overloaded): overloaded_error");
        assert!(!e.to_string().contains(KEY));

        let (listing_missing, _) = listen(|_| (404, vec![], String::new())).await;
        let up = upstream(Protocol::OpenAi, format!("http://{listing_missing}/v1"));
        let r = probe(&client, &up, None, Duration::from_secs(5)).await;
        assert_eq!(r.result, Ok(()), "a compatible server without a listing");
    }

    #[tokio::test]
    async fn no_key_follows_a_redirect_to_another_origin() {
        let client = UpstreamClient::new();
        let (elsewhere, elsewhere_seen) = listen(ok_json).await;
        let target = format!("http://{elsewhere}/v1/models");
        let (redirecting, seen) = listen(move |r| {
            if r.path.starts_with("/same/") {
                (200, vec![], r#"{"data":[]}"#.into())
            } else if r.path.contains("hop") {
                (
                    302,
                    vec![("location".into(), "/same/models".into())],
                    String::new(),
                )
            } else {
                (
                    302,
                    vec![("location".into(), target.clone())],
                    String::new(),
                )
            }
        })
        .await;
        for protocol in [Protocol::OpenAi, Protocol::Anthropic, Protocol::Google] {
            let up = upstream(protocol, format!("http://{redirecting}"));
            let r = probe(&client, &up, Some(KEY), Duration::from_secs(5)).await;
            let e = r.result.unwrap_err();
            assert_eq!(
                e,
                ProbeError::CrossOriginRedirect {
                    code: 302,
                    to: format!("http://{elsewhere}")
                },
                "{protocol:?}"
            );
            let t = trial(&client, &up, "m", Some(KEY), Duration::from_secs(5)).await;
            assert!(
                matches!(t.result, Err(ProbeError::CrossOriginRedirect { .. })),
                "{protocol:?}"
            );
        }
        assert!(
            elsewhere_seen.lock().unwrap().is_empty(),
            "the other host was never contacted, so no key reached it"
        );
        assert_eq!(seen.lock().unwrap().len(), 6);

        // Within the same origin a redirect is followed, with the key.
        let up = upstream(Protocol::Anthropic, format!("http://{redirecting}/hop"));
        let r = probe(&client, &up, Some(KEY), Duration::from_secs(5)).await;
        assert_eq!(r.result, Ok(()));
        let last = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(last.path, "/same/models");
        assert_eq!(last.header("x-api-key"), Some(KEY));
    }

    #[tokio::test]
    async fn trials_are_one_token_requests_in_each_providers_shape() {
        let client = UpstreamClient::new();
        let (addr, seen) = listen(|r| {
            if r.body.get("max_tokens").is_some() && r.body["model"] == "o3" {
                (
                    400,
                    vec![],
                    r#"{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","code":"unsupported_parameter"}}"#.into(),
                )
            } else if r.body["model"] == "busy" {
                (
                    529,
                    vec![],
                    r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
                        .into(),
                )
            } else {
                (200, vec![], "{}".into())
            }
        })
        .await;
        let t = Duration::from_secs(5);
        let openai = upstream(Protocol::OpenAi, format!("http://{addr}/v1"));
        let anthropic = upstream(Protocol::Anthropic, format!("http://{addr}"));
        let google = upstream(Protocol::Google, format!("http://{addr}/v1beta/"));
        assert_eq!(
            trial(&client, &openai, "gpt-4o", Some(KEY), t).await.result,
            Ok(())
        );
        assert_eq!(
            trial(&client, &openai, "o3", Some(KEY), t).await.result,
            Ok(())
        );
        assert_eq!(
            trial(&client, &anthropic, "claude-x", Some(KEY), t)
                .await
                .result,
            Ok(())
        );
        assert_eq!(
            trial(&client, &google, "gemini-y", Some(KEY), t)
                .await
                .result,
            Ok(())
        );
        assert_eq!(
            trial(&client, &anthropic, "busy", Some(KEY), t)
                .await
                .result
                .unwrap_err()
                .to_string(),
            "HTTP 529 (overloaded): overloaded_error"
        );

        let seen = seen.lock().unwrap().clone();
        let s = &seen[0];
        assert_eq!(
            (s.method.as_str(), s.path.as_str()),
            ("POST", "/v1/chat/completions")
        );
        assert_eq!(
            s.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(s.body["max_tokens"], 1);
        assert_eq!(s.body["model"], "gpt-4o");
        assert_eq!(seen[2].body["max_completion_tokens"], 1, "{:?}", seen[2]);
        assert!(seen[2].body.get("max_tokens").is_none());
        let s = &seen[3];
        assert_eq!(s.path, "/v1/messages");
        assert_eq!(s.header("x-api-key"), Some(KEY));
        assert_eq!(s.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(s.header("authorization"), None);
        assert_eq!(s.body["max_tokens"], 1);
        let s = &seen[4];
        assert_eq!(s.path, "/v1beta/models/gemini-y:generateContent");
        assert_eq!(s.header("x-goog-api-key"), Some(KEY));
        assert_eq!(s.body["generationConfig"]["maxOutputTokens"], 1);
    }
}
