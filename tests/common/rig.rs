//! The two-upstream priority rig several suites share: HTTPS fake upstreams from the test CA, our
//! server managing the real daemon, an account and an api token.
//!
//! `Rig::priority(["a", "b"]).start().await` writes this config (upstream `x` is provider `px`;
//! the i-th upstream serves model `m<i>`, counting from 1):
//!
//! ```json
//! {"port": <free>, "healthCheckIntervalMs": 300, "metricsPollMs": 100,
//!  "providers": {"pa": {"derives": "openai", "apiBase": <a>, "apiKey": "key-a"},
//!                "pb": {"derives": "openai", "apiBase": <b>, "apiKey": "key-b"}},
//!  "models": {"smart": {"strategy": "priority", "endpoints": [
//!      {"provider": "pa", "modelId": "m1"}, {"provider": "pb", "modelId": "m2"}]}}}
//! ```
//!
//! The builder changes one thing at a time: the keys, each upstream's protocol, the metrics poll,
//! a `load_balance` model over the same endpoints, streamable HTTP instead of stdio.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::upstream::{Protocol, Upstream};
use super::{Mcp, TestHome, chat, free_port};

/// How long a route change may take to show.
pub const WAIT: Duration = Duration::from_secs(30);

/// A started rig: `upstreams[i]` is provider `p<names[i]>`, serving model `m<i+1>`.
pub struct Rig<const N: usize> {
    pub home: TestHome,
    pub mcp: Mcp,
    pub upstreams: [Upstream; N],
    /// The daemon's port.
    pub port: u16,
    /// An api-scope token for the daemon.
    pub token: String,
}

/// What [`Rig::priority`] will start.
pub struct RigBuilder<const N: usize> {
    names: [&'static str; N],
    keys: Option<[&'static str; N]>,
    protocols: [Protocol; N],
    metrics_poll_ms: u64,
    load_balanced: Option<&'static str>,
    http: bool,
}

impl<const N: usize> Rig<N> {
    /// A model `smart` with strategy `priority` over one HTTPS OpenAI upstream per name, in order.
    pub fn priority(names: [&'static str; N]) -> RigBuilder<N> {
        RigBuilder {
            names,
            keys: None,
            protocols: [Protocol::OpenAi; N],
            metrics_poll_ms: 100,
            load_balanced: None,
            http: false,
        }
    }

    pub async fn routes(&self) -> Value {
        self.mcp.read_json("bitrouter://routes").await
    }

    /// Waits until `provider`'s endpoint of `model` is (in)active in the route table; returns it.
    pub async fn wait_active(&self, model: &str, provider: &str, active: bool) -> Value {
        wait_active(&self.mcp, model, provider, active).await
    }

    /// A chat completion for `model` through the daemon (see [`super::chat`]).
    pub async fn chat(&self, model: &str) -> (u16, String) {
        chat(self.port, &self.token, model).await
    }
}

impl<const N: usize> RigBuilder<N> {
    /// Literal `apiKey`s, one per upstream (default `key-<name>`).
    pub fn keys(mut self, keys: [&'static str; N]) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The protocol each upstream speaks; its provider derives the matching built-in.
    pub fn protocols(mut self, protocols: [Protocol; N]) -> Self {
        self.protocols = protocols;
        self
    }

    pub fn metrics_poll_ms(mut self, ms: u64) -> Self {
        self.metrics_poll_ms = ms;
        self
    }

    /// Also a model `name` with strategy `load_balance` over the same endpoints.
    pub fn also_load_balanced(mut self, name: &'static str) -> Self {
        self.load_balanced = Some(name);
        self
    }

    /// The server over streamable HTTP instead of stdio.
    pub fn http(mut self) -> Self {
        self.http = true;
        self
    }

    /// Starts the upstreams and the server, waits for a healthy daemon, mints a token.
    pub async fn start(self) -> Rig<N> {
        let home = TestHome::new();
        let mut upstreams = Vec::with_capacity(N);
        for (name, protocol) in self.names.iter().zip(self.protocols) {
            upstreams.push(match protocol {
                Protocol::OpenAi => Upstream::openai(name).await,
                Protocol::Anthropic => Upstream::anthropic(name).await,
                Protocol::Google => Upstream::google(name).await,
            });
        }
        let mut providers = serde_json::Map::new();
        let mut endpoints = Vec::new();
        for (i, (name, up)) in self.names.iter().zip(&upstreams).enumerate() {
            let key = self
                .keys
                .map_or_else(|| format!("key-{name}"), |k| k[i].to_string());
            let derives = match up.protocol {
                Protocol::OpenAi => "openai",
                Protocol::Anthropic => "anthropic",
                Protocol::Google => "google",
            };
            providers.insert(
                format!("p{name}"),
                json!({"derives": derives, "apiBase": up.api_base(), "apiKey": key}),
            );
            endpoints
                .push(json!({"provider": format!("p{name}"), "modelId": format!("m{}", i + 1)}));
        }
        let mut models = json!({"smart": {"strategy": "priority", "endpoints": endpoints}});
        if let Some(lb) = self.load_balanced {
            models[lb] = json!({"strategy": "load_balance", "endpoints": endpoints});
        }
        let port = free_port();
        let cfg = home.write_config(&json!({
            "port": port,
            "healthCheckIntervalMs": 300,
            "metricsPollMs": self.metrics_poll_ms,
            "providers": providers,
            "models": models
        }));
        let mcp = if self.http {
            Mcp::http(&home, Some(&cfg)).await
        } else {
            Mcp::stdio(&home, Some(&cfg)).await
        };
        mcp.wait_healthy().await;
        let token = mcp.api_token().await;
        let upstreams = upstreams
            .try_into()
            .unwrap_or_else(|_| unreachable!("one upstream per name"));
        Rig {
            home,
            mcp,
            upstreams,
            port,
            token,
        }
    }
}

/// Waits until `provider`'s endpoint of `model` is (in)active in `mcp`'s route table
/// (`bitrouter://routes`); returns the table.
pub async fn wait_active(mcp: &Mcp, model: &str, provider: &str, active: bool) -> Value {
    let start = Instant::now();
    loop {
        let routes = mcp.read_json("bitrouter://routes").await;
        if endpoint(&routes, model, provider)["active"] == active {
            return routes;
        }
        assert!(
            start.elapsed() < WAIT,
            "{model}/{provider} never became active={active}: {routes:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `provider`'s endpoint of `model` in a route table (`bitrouter://routes`).
pub fn endpoint<'a>(routes: &'a Value, model: &str, provider: &str) -> &'a Value {
    routes["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == model)
        .unwrap_or_else(|| panic!("no {model}: {routes:#}"))["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["provider"] == provider)
        .unwrap_or_else(|| panic!("no {model}/{provider}: {routes:#}"))
}

/// `model`'s entry in a route table.
pub fn model<'a>(routes: &'a Value, model: &str) -> &'a Value {
    routes["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == model)
        .unwrap_or_else(|| panic!("no {model}: {routes:#}"))
}
