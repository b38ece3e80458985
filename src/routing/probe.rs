//! Active health probes of upstream providers that cost no tokens: each protocol's model listing
//! (`GET …/models`) with the key the daemon would send.

use std::time::{Duration, Instant};

use super::endpoints::{Protocol, Upstream};

/// The outcome of one probe.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub latency: Duration,
    pub result: Result<(), String>,
}

/// The listing URL and auth header for an upstream.
fn request(
    http: &reqwest::Client,
    upstream: &Upstream,
    key: Option<&str>,
) -> reqwest::RequestBuilder {
    let base = upstream.api_base.trim_end_matches('/');
    match upstream.protocol {
        Protocol::OpenAi => {
            let req = http.get(format!("{base}/models"));
            match key {
                Some(k) => req.bearer_auth(k),
                None => req,
            }
        }
        Protocol::Anthropic => {
            let url = if base.ends_with("/v1") {
                format!("{base}/models")
            } else {
                format!("{base}/v1/models")
            };
            let req = http.get(url).header("anthropic-version", "2023-06-01");
            match key {
                Some(k) => req.header("x-api-key", k),
                None => req,
            }
        }
        Protocol::Google => {
            let url = if base.ends_with("/v1beta") {
                format!("{base}/models")
            } else {
                format!("{base}/v1beta/models")
            };
            let req = http.get(url);
            match key {
                Some(k) => req.header("x-goog-api-key", k),
                None => req,
            }
        }
    }
}

/// Probes `upstream`. Healthy: it answered and did not refuse the key or fail (2xx, or 404/405 from
/// a compatible server without a model listing). Unhealthy: no connection, timeout, 5xx, 401/403
/// (the key is refused, so real requests would fail too) or 429.
pub async fn probe(
    http: &reqwest::Client,
    upstream: &Upstream,
    key: Option<&str>,
    timeout: Duration,
) -> ProbeResult {
    let started = Instant::now();
    let result = match request(http, upstream, key).timeout(timeout).send().await {
        Err(e) if e.is_timeout() => Err(format!("no answer within {} ms", timeout.as_millis())),
        Err(e) if e.is_connect() => Err("connection refused".to_string()),
        Err(e) => Err(format!("request failed: {}", without_url(&e))),
        Ok(resp) => {
            let status = resp.status();
            if status.is_success() || status.as_u16() == 404 || status.as_u16() == 405 {
                Ok(())
            } else {
                Err(format!("answered HTTP {}", status.as_u16()))
            }
        }
    };
    ProbeResult {
        latency: started.elapsed(),
        result,
    }
}

/// reqwest errors may quote the URL; Google keys can travel in URLs, so never show it.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<upstream>");
    }
    text
}
