//! The only code that talks to the BitRouter daemon's HTTP API.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Client for one daemon, addressed by its listen address.
#[derive(Debug, Clone)]
pub struct DaemonClient {
    base_url: String,
    http: reqwest::Client,
}

/// The outcome of one `/health` probe.
#[derive(Debug, Clone)]
pub struct HealthProbe {
    pub latency: Duration,
    pub result: Result<(), String>,
}

impl DaemonClient {
    /// `listen` is `host:port`; a wildcard bind is probed on loopback.
    pub fn new(listen: &str) -> Self {
        let listen = listen
            .replace("0.0.0.0:", "127.0.0.1:")
            .replace("[::]:", "[::1]:");
        crate::tls::ensure_crypto_provider();
        // Loopback HTTP only: never through a proxy, whatever HTTPS_PROXY says, and no trust
        // roots to load (the platform's may be missing, e.g. in a slim container, and must not
        // fail this client).
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(1))
            .no_proxy()
            .tls_certs_only(Vec::<reqwest::Certificate>::new())
            .build()
            .unwrap_or_default();
        Self {
            base_url: format!("http://{listen}"),
            http,
        }
    }

    /// `GET /health`: healthy when it answers 200 with `{"status":"ok"}`.
    pub async fn health(&self) -> HealthProbe {
        let started = Instant::now();
        let result = async {
            let resp = self
                .http
                .get(format!("{}/health", self.base_url))
                .send()
                .await
                .map_err(|e| describe(&e))?;
            let status = resp.status();
            let body: serde_json::Value = resp
                .json()
                .await
                .map_err(|e| format!("unexpected /health body: {e}"))?;
            if status.is_success() && body.get("status").and_then(|s| s.as_str()) == Some("ok") {
                Ok(())
            } else {
                Err(format!("/health answered {status}: {body}"))
            }
        }
        .await;
        HealthProbe {
            latency: started.elapsed(),
            result,
        }
    }
}

/// One endpoint of a route as the admin API names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEndpoint {
    pub provider: String,
    pub model_id: String,
}

/// A dynamic route: `POST /admin/routes` body and `GET /admin/routes` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    pub endpoints: Vec<RouteEndpoint>,
    /// `config` or `dynamic` in listings; absent when creating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RouteList {
    routes: Vec<Route>,
}

/// Per-endpoint counters from `GET /v1/metrics`, keyed by route then `provider:model_id`.
pub type Metrics = BTreeMap<String, BTreeMap<String, EndpointCounters>>;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct EndpointCounters {
    #[serde(default)]
    pub total_requests: u64,
    #[serde(default)]
    pub total_errors: u64,
}

#[derive(Debug, Deserialize)]
struct MetricsBody {
    #[serde(default)]
    routes: BTreeMap<String, RouteMetrics>,
}

#[derive(Debug, Deserialize)]
struct RouteMetrics {
    #[serde(default)]
    by_endpoint: BTreeMap<String, EndpointCounters>,
}

impl DaemonClient {
    /// `GET /admin/routes`.
    pub async fn routes(&self, token: &str) -> Result<Vec<Route>, String> {
        let resp = self
            .http
            .get(format!("{}/admin/routes", self.base_url))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let list: RouteList = ok_json(resp, "GET /admin/routes").await?;
        Ok(list.routes)
    }

    /// `POST /admin/routes`: creates or replaces the dynamic route of `route.model`.
    pub async fn set_route(&self, token: &str, route: &Route) -> Result<(), String> {
        let resp = self
            .http
            .post(format!("{}/admin/routes", self.base_url))
            .bearer_auth(token)
            .json(route)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let _: serde_json::Value = ok_json(resp, "POST /admin/routes").await?;
        Ok(())
    }

    /// `DELETE /admin/routes/<model>`.
    pub async fn delete_route(&self, token: &str, model: &str) -> Result<(), String> {
        let resp = self
            .http
            .delete(format!("{}/admin/routes/{model}", self.base_url))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let _: serde_json::Value = ok_json(resp, "DELETE /admin/routes").await?;
        Ok(())
    }

    /// `GET /v1/metrics` (no auth): counters of real traffic per route and endpoint.
    pub async fn metrics(&self) -> Result<Metrics, String> {
        let resp = self
            .http
            .get(format!("{}/v1/metrics", self.base_url))
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let body: MetricsBody = ok_json(resp, "GET /v1/metrics").await?;
        Ok(body
            .routes
            .into_iter()
            .map(|(route, m)| (route, m.by_endpoint))
            .collect())
    }
}

async fn ok_json<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    what: &str,
) -> Result<T, String> {
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(format!(
            "{what} answered {status}: {}",
            body.chars().take(300).collect::<String>()
        ));
    }
    resp.json()
        .await
        .map_err(|e| format!("{what}: unexpected body: {e}"))
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connection refused (daemon not running)".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        e.to_string()
    }
}
