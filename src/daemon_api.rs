//! The only code that talks to the BitRouter daemon's HTTP API.

use std::time::{Duration, Instant};

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
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(1))
            .no_proxy()
            .build()
            .unwrap_or_default();
        Self {
            base_url: format!("http://{listen}"),
            http,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
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

fn describe(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connection refused (daemon not running)".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        e.to_string()
    }
}
