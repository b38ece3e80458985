//! Failover as a user of the seed's own example sees it, on the real daemon with HTTPS upstreams
//! that speak each provider's real shape (tests/common/upstream.rs):
//!
//! - the fakes' shapes hold against the daemon itself (OpenAI, Anthropic, Google; JSON and SSE);
//! - the seed's `smart` (priority anthropic -> openai) answers from Anthropic, moves to OpenAI
//!   when Anthropic answers 529, streams on the fallback, and comes back when Anthropic recovers;
//! - the seed's `fast` (load_balance openai + anthropic) balances and drops a dead endpoint;
//! - every probe and request carried its own provider's key, and no key reached a log;
//! - a local provider over plain HTTP (Ollama, vLLM) fails over too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::rig::{self, endpoint};
use common::upstream::{Mode, Upstream};
use common::{Daemon, Mcp, TestHome, chat, free_port};
use serde_json::{Value, json};

const OPENAI_KEY: &str = "sk-proj-test-openai-4f1c9a7e";
const ANTHROPIC_KEY: &str = "sk-ant-api03-test-8b2d6e1f";
const GOOGLE_KEY: &str = "AIzaSy-test-google-5c3e";
const WAIT: Duration = Duration::from_secs(45);

/// POSTs a streamed chat completion; returns status, content type, and the body's chunks with
/// the time each arrived after the request was sent.
async fn stream_chat(
    port: u16,
    token: &str,
    model: &str,
) -> (u16, String, Vec<(Duration, String)>) {
    let sent = Instant::now();
    let mut r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(20))
        .json(&json!({"model": model, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut chunks = Vec::new();
    while let Some(c) = r.chunk().await.unwrap() {
        chunks.push((sent.elapsed(), String::from_utf8_lossy(&c).into_owned()));
    }
    (status, content_type, chunks)
}

/// The text of an OpenAI SSE body (concatenated deltas) and whether it ended with `[DONE]`.
fn sse_text(body: &str) -> (String, bool) {
    let mut text = String::new();
    let mut done = false;
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data:").map(str::trim) else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
        if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
    }
    (text, done)
}

/// Asserts a streamed answer came as SSE, spread over time as the upstream sent it (not
/// buffered), and says `expect`.
fn assert_streamed(
    what: &str,
    (status, ct, chunks): &(u16, String, Vec<(Duration, String)>),
    expect: &str,
    spread: Duration,
) {
    let body: String = chunks.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(*status, 200, "{what}: {body}");
    assert!(
        ct.starts_with("text/event-stream"),
        "{what}: content-type {ct}: {body}"
    );
    let (text, done) = sse_text(&body);
    assert_eq!(text, expect, "{what}: {body}");
    assert!(done, "{what}: ends with [DONE]: {body}");
    let first = chunks.first().unwrap().0;
    let last = chunks.last().unwrap().0;
    assert!(
        last - first >= spread,
        "{what}: chunks arrived as the upstream sent them (first {first:?}, last {last:?}, {} chunks)",
        chunks.len()
    );
}

// ------------------------------------------------------------------ the fakes against the daemon

#[tokio::test]
async fn fakes_speak_each_protocol_the_daemon_understands() {
    let home = TestHome::new();
    let openai = Upstream::openai("openai").await;
    let anthropic = Upstream::anthropic("anthropic").await;
    let google = Upstream::google("google").await;
    openai.require_key(OPENAI_KEY);
    anthropic.require_key(ANTHROPIC_KEY);
    google.require_key(GOOGLE_KEY);
    for up in [&openai, &anthropic, &google] {
        up.set_stream_gap(Duration::from_millis(100));
    }
    let yaml = format!(
        "providers:\n  openai:\n    api_base: {}\n    api_key: {OPENAI_KEY}\n\
         \x20 anthropic:\n    api_base: {}\n    api_key: {ANTHROPIC_KEY}\n\
         \x20 google:\n    api_base: {}\n    api_key: {GOOGLE_KEY}\n",
        openai.api_base(),
        anthropic.api_base(),
        google.api_base()
    );
    let daemon = Daemon::start(&home, &yaml).await;
    let mcp = Mcp::stdio(&home, None).await;
    let token = mcp.api_token().await;

    for (up, model, path, header, key) in [
        (
            &openai,
            "openai:gpt-4o",
            "/v1/chat/completions",
            "authorization",
            OPENAI_KEY,
        ),
        (
            &anthropic,
            "anthropic:claude-sonnet-4-20250514",
            "/v1/messages",
            "x-api-key",
            ANTHROPIC_KEY,
        ),
        (
            &google,
            "google:gemini-2.0-flash",
            "/v1beta/models/gemini-2.0-flash:generateContent",
            "?key",
            GOOGLE_KEY,
        ),
    ] {
        let name = model.split(':').next().unwrap();
        let (status, body) = daemon.chat(&token, model).await;
        assert_eq!(status, 200, "{model} over HTTPS: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["choices"][0]["message"]["content"],
            format!("hello from {name}"),
            "{body}"
        );
        assert!(
            v["usage"]["prompt_tokens"].as_u64().unwrap() >= 1,
            "usage reaches the client: {body}"
        );
        assert_eq!(v["usage"]["completion_tokens"], 3, "{body}");
        let seen = up.seen();
        let last = seen.last().unwrap();
        assert_eq!(last.path, path, "{model}");
        assert_eq!(
            last.model.as_deref(),
            Some(model.split_once(':').unwrap().1)
        );
        assert_eq!(
            last.credentials,
            [(header.to_string(), key.to_string())],
            "{model}"
        );

        let streamed = stream_chat(daemon.port, &token, model).await;
        assert_streamed(
            model,
            &streamed,
            &format!("hello from {name}"),
            Duration::from_millis(150),
        );
        assert!(
            up.seen().last().unwrap().stream,
            "{model}: the daemon asked the upstream to stream"
        );
    }
    // Google's stream: the documented path and its query.
    assert!(
        google
            .seen()
            .iter()
            .any(|s| s.path == "/v1beta/models/gemini-2.0-flash:streamGenerateContent")
    );

    // Anthropic's overload reaches the client as a failure, and is counted at the upstream.
    anthropic.set_mode(Mode::Overloaded).await;
    let (status, body) = daemon
        .chat(&token, "anthropic:claude-sonnet-4-20250514")
        .await;
    assert_ne!(status, 200, "{body}");
    assert_eq!(anthropic.failed_chats(), 1);
    assert_eq!(anthropic.seen().last().unwrap().status, 529);
    // Chat-only failure: chat fails, the listing answers.
    anthropic.set_mode(Mode::ChatOnlyFail).await;
    let (status, _) = daemon
        .chat(&token, "anthropic:claude-sonnet-4-20250514")
        .await;
    assert_ne!(status, 200);
    assert_eq!(anthropic.failed_chats(), 2);
    assert_eq!(
        openai.tls_failures() + anthropic.tls_failures() + google.tls_failures(),
        0
    );
    mcp.close().await;
    daemon.stop().await;
}

#[tokio::test]
async fn the_daemon_refuses_an_upstream_its_trust_does_not_cover() {
    // The same HTTPS fake, but the daemon runs without the test CA: a real user's machine with a
    // private CA not configured. The request must fail at the handshake, not reach the fake.
    let home = TestHome::new();
    let up = Upstream::openai("openai").await;
    let yaml = format!(
        "providers:\n  openai:\n    api_base: {}\n    api_key: {OPENAI_KEY}\n",
        up.api_base()
    );
    let empty = home.dir.path().join("no-ca.pem");
    std::fs::write(&empty, "").unwrap();
    let daemon =
        Daemon::start_env(&home, &yaml, &[("SSL_CERT_FILE", empty.to_str().unwrap())]).await;
    let mcp = Mcp::stdio(&home, None).await;
    let token = mcp.api_token().await;
    let (status, body) = daemon.chat(&token, "openai:gpt-4o").await;
    assert_ne!(status, 200, "{body}");
    assert!(up.seen().is_empty(), "nothing got past the handshake");
    assert!(up.tls_failures() >= 1);
    mcp.close().await;
    daemon.stop().await;
}

// ------------------------------------------------------------------ the seed's fast and smart

struct Seed {
    home: TestHome,
    mcp: Mcp,
    openai: Upstream,
    anthropic: Upstream,
    port: u16,
    token: String,
}

/// The seed README's example config (`fast`, `smart`, built-in provider names), with `apiBase`
/// overrides pointing at HTTPS fakes and the keys in the environment as the seed expects
/// (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`).
async fn seed() -> Seed {
    let home = TestHome::new();
    let openai = Upstream::openai("openai").await;
    let anthropic = Upstream::anthropic("anthropic").await;
    openai.require_key(OPENAI_KEY);
    anthropic.require_key(ANTHROPIC_KEY);
    let port = free_port();
    let cfg = home.write_config(&json!({
        "port": port,
        "host": "127.0.0.1",
        "healthCheckIntervalMs": 300,
        "metricsPollMs": 100,
        "providers": {
            "openai": {"apiBase": openai.api_base()},
            "anthropic": {"apiBase": anthropic.api_base()}
        },
        "models": common::seed_models()
    }));
    let mcp = Mcp::stdio_logged(
        &home,
        &cfg,
        &[
            ("OPENAI_API_KEY", OPENAI_KEY),
            ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
            ("BITROUTER_MCP_LOG", "debug"),
        ],
    )
    .await;
    mcp.wait_healthy().await;
    let token = mcp.api_token().await;
    Seed {
        home,
        mcp,
        openai,
        anthropic,
        port,
        token,
    }
}

/// `bitrouter_status`'s entry for `model`: route health as most MCP clients see it (a tool, not
/// a resource).
fn status_model<'a>(status: &'a Value, model: &str) -> &'a Value {
    status["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == model)
        .unwrap_or_else(|| panic!("no {model} in status: {status:#}"))
}

fn status_endpoint<'a>(model: &'a Value, provider: &str) -> &'a Value {
    model["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["provider"] == provider)
        .unwrap_or_else(|| panic!("no {provider}: {model:#}"))
}

impl Seed {
    /// Waits until `bitrouter_status` says `model` is served by `serving` alone.
    async fn wait_serving(&self, model: &str, serving: &str) -> Value {
        self.mcp
            .wait_status(&format!("{model} served by {serving}"), WAIT, |s| {
                s["models"].as_array().is_some_and(|ms| {
                    ms.iter()
                        .any(|m| m["name"] == model && m["serving"] == json!([serving]))
                })
            })
            .await
    }

    async fn routes(&self) -> Value {
        self.mcp.read_json("bitrouter://routes").await
    }

    /// Waits until `provider`'s endpoint of `model` is (in)active in the route table.
    async fn wait_active(&self, model: &str, provider: &str, active: bool) -> Value {
        rig::wait_active(&self.mcp, model, provider, active).await
    }

    async fn chat(&self, model: &str) -> (u16, String) {
        chat(self.port, &self.token, model).await
    }

    /// Every request each fake saw carried that provider's own key, and only it; the listings
    /// (probes) were made and answered.
    fn assert_own_keys(&self) {
        for (up, header, key) in [
            (&self.openai, "authorization", OPENAI_KEY),
            (&self.anthropic, "x-api-key", ANTHROPIC_KEY),
        ] {
            let all = up.requests();
            assert!(
                up.listings().len() >= 2,
                "{header}: probes read the model listing: {all:?}"
            );
            for s in &all {
                assert_eq!(
                    s.credentials,
                    [(header.to_string(), key.to_string())],
                    "{:?} {} carried its own provider's key only",
                    s.kind,
                    s.path
                );
                assert!(![400, 401, 403].contains(&s.status), "refused: {s:?}");
            }
        }
    }

    /// No key in the daemon's log, its yaml, or the server's stderr.
    fn assert_no_key_in_logs(&self) {
        let home = self.home.home();
        for (what, path) in [
            ("daemon log", home.logs_dir().join("daemon.log")),
            ("daemon yaml", home.daemon_config_file()),
            ("server stderr", self.home.server_stderr()),
        ] {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                !text.is_empty() || what == "server stderr",
                "{what} is empty"
            );
            for key in [OPENAI_KEY, ANTHROPIC_KEY] {
                assert!(!text.contains(key), "{what} holds a key");
            }
        }
    }
}

#[tokio::test]
async fn smart_answers_from_anthropic_fails_over_on_529_streams_and_comes_back() {
    let seed = seed().await;
    seed.wait_active("smart", "anthropic", true).await;
    let (status, body) = seed.chat("smart").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello from anthropic"), "{body}");
    let asked = seed.anthropic.seen();
    assert_eq!(asked.last().unwrap().path, "/v1/messages");
    assert_eq!(
        asked.last().unwrap().model.as_deref(),
        Some("claude-sonnet-4-20250514")
    );

    // Anthropic is overloaded: 529 on every path, as the real one answers.
    seed.anthropic.set_mode(Mode::Overloaded).await;
    let routes = seed.wait_active("smart", "openai", true).await;
    let a = endpoint(&routes, "smart", "anthropic");
    assert_eq!(a["active"], false, "{routes:#}");
    assert_eq!(a["health"], "unhealthy", "{routes:#}");
    assert!(
        a["last_error"].as_str().unwrap_or_default().contains("529"),
        "the reason names the status: {routes:#}"
    );
    for _ in 0..3 {
        let (status, body) = seed.chat("smart").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("hello from openai"), "{body}");
    }
    assert_eq!(seed.openai.count("gpt-4o"), 3);

    // The status tool tells why: who serves, each endpoint's health and last error, the switch.
    let status = seed.wait_serving("smart", "openai:gpt-4o").await;
    let smart = status_model(&status, "smart");
    let a = status_endpoint(smart, "anthropic");
    assert_eq!(a["health"], "unhealthy", "{smart:#}");
    assert!(
        a["last_error"].as_str().unwrap_or_default().contains("529"),
        "{smart:#}"
    );
    assert!(
        status_endpoint(smart, "openai")["probe_ms"].is_u64(),
        "{smart:#}"
    );
    let switch = &smart["last_switch"];
    assert_eq!(
        (&switch["from"], &switch["to"]),
        (
            &json!("anthropic:claude-sonnet-4-20250514"),
            &json!("openai:gpt-4o")
        ),
        "{smart:#}"
    );
    assert!(
        switch["why"]
            .as_str()
            .unwrap_or_default()
            .contains("anthropic"),
        "{smart:#}"
    );
    let counted = seed
        .mcp
        .wait_status("openai's requests counted", WAIT, |s| {
            status_endpoint(status_model(s, "smart"), "openai")["requests"]
                .as_u64()
                .is_some_and(|n| n >= 3)
        })
        .await;
    assert_eq!(
        status_endpoint(status_model(&counted, "smart"), "openai")["errors"],
        0
    );

    // A streamed request on the fallback streams.
    seed.openai.set_stream_gap(Duration::from_millis(100));
    let streamed = stream_chat(seed.port, &seed.token, "smart").await;
    assert_streamed(
        "smart on openai",
        &streamed,
        "hello from openai",
        Duration::from_millis(200),
    );
    assert!(seed.openai.seen().last().unwrap().stream);

    // Anthropic recovers: the route returns.
    seed.anthropic.set_mode(Mode::Ok).await;
    seed.wait_active("smart", "anthropic", true).await;
    let before = seed.anthropic.count("claude-sonnet-4-20250514");
    let (status, body) = seed.chat("smart").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello from anthropic"), "{body}");
    assert_eq!(seed.anthropic.count("claude-sonnet-4-20250514"), before + 1);
    let status = seed
        .wait_serving("smart", "anthropic:claude-sonnet-4-20250514")
        .await;
    let smart = status_model(&status, "smart");
    assert_eq!(
        smart["last_switch"]["to"],
        "anthropic:claude-sonnet-4-20250514"
    );
    assert_eq!(status_endpoint(smart, "anthropic")["health"], "healthy");

    seed.assert_own_keys();
    seed.assert_no_key_in_logs();
    seed.mcp.close().await;
}

#[tokio::test]
async fn fast_balances_over_both_and_drops_a_dead_one() {
    let seed = seed().await;
    seed.wait_active("fast", "openai", true).await;
    seed.wait_active("fast", "anthropic", true).await;
    for _ in 0..10 {
        let (status, body) = seed.chat("fast").await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        (
            seed.openai.count("gpt-4o-mini"),
            seed.anthropic.count("claude-3.5-haiku")
        ),
        (5, 5),
        "round-robin over both providers"
    );

    seed.openai.set_mode(Mode::Refuse).await;
    seed.wait_active("fast", "openai", false).await;
    for _ in 0..10 {
        let (status, body) = seed.chat("fast").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("hello from anthropic"), "{body}");
    }
    assert_eq!(seed.anthropic.count("claude-3.5-haiku"), 15);

    seed.openai.set_mode(Mode::Ok).await;
    seed.wait_active("fast", "openai", true).await;
    for _ in 0..4 {
        let (status, body) = seed.chat("fast").await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(seed.openai.count("gpt-4o-mini"), 7, "back in the rotation");
    seed.assert_own_keys();
    seed.assert_no_key_in_logs();
    seed.mcp.close().await;
}

// ------------------------------------------------------------------ a local provider

#[tokio::test]
async fn a_local_provider_over_plain_http_fails_over_to_a_hosted_one_and_back() {
    let home = TestHome::new();
    let local = Upstream::local("ollama").await;
    let openai = Upstream::openai("openai").await;
    openai.require_key(OPENAI_KEY);
    let port = free_port();
    let cfg = home.write_config(&json!({
        "port": port,
        "healthCheckIntervalMs": 300,
        "metricsPollMs": 100,
        "providers": {
            "ollama": {"derives": "openai", "apiBase": local.api_base()},
            "openai": {"apiBase": openai.api_base()}
        },
        "models": {"local": {"strategy": "priority", "endpoints": [
            {"provider": "ollama", "modelId": "llama3.2"},
            {"provider": "openai", "modelId": "gpt-4o-mini"}]}}
    }));
    let mcp = Mcp::stdio_env(&home, Some(&cfg), &[("OPENAI_API_KEY", OPENAI_KEY)]).await;
    mcp.wait_healthy().await;
    let token = mcp.api_token().await;
    let wait = |provider: &'static str| {
        let mcp = &mcp;
        async move {
            let start = Instant::now();
            loop {
                let routes = mcp.read_json("bitrouter://routes").await;
                if endpoint(&routes, "local", provider)["active"] == true {
                    return;
                }
                assert!(
                    start.elapsed() < WAIT,
                    "{provider} never active: {routes:#}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait("ollama").await;
    let (status, body) = chat(port, &token, "local").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello from ollama"), "{body}");
    assert!(
        local
            .listings()
            .iter()
            .all(|s| s.path == "/v1/models" && s.status == 200)
    );

    local.set_mode(Mode::Refuse).await;
    wait("openai").await;
    let (status, body) = chat(port, &token, "local").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello from openai"), "{body}");

    local.set_mode(Mode::Ok).await;
    wait("ollama").await;
    let (status, body) = chat(port, &token, "local").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello from ollama"), "{body}");
    assert!(
        openai
            .requests()
            .iter()
            .all(|s| s.key() == Some(OPENAI_KEY)),
        "the hosted provider got its key"
    );
    assert!(
        local.requests().iter().all(|s| s.key() != Some(OPENAI_KEY)),
        "the OpenAI key never went to the local server"
    );
    mcp.close().await;
}

// ------------------------------------------------------------------ the partial outage

#[tokio::test]
async fn a_chat_only_outage_keeps_the_endpoint_out_while_its_listing_answers() {
    let seed = seed().await;
    seed.wait_active("smart", "anthropic", true).await;
    // Overloaded for chat only: /v1/messages answers 529, /v1/models 200. Probes alone would
    // call it healthy; real traffic must keep it out.
    seed.anthropic.set_mode(Mode::ChatOnlyFail).await;
    let listings_before = seed.anthropic.listings().len();
    let began = Instant::now();
    let (mut client_failed, mut returns, mut out) = (0, 0, false);
    while began.elapsed() < Duration::from_secs(20) {
        let (status, body) = seed.chat("smart").await;
        if status != 200 {
            client_failed += 1;
        } else {
            assert!(body.contains("hello from openai"), "{body}");
        }
        let on_anthropic = endpoint(&seed.routes().await, "smart", "anthropic")["active"] == true;
        if !on_anthropic {
            out = true;
        } else if out {
            returns += 1;
            out = false;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Users' requests (common::chat says "hi") apart from the control plane's own one-token
    // trials, which end each cooldown and cost no user a failure.
    let failed = seed.anthropic.failed_chats_saying("hi");
    let trials = seed.anthropic.failed_chats() - failed;
    let listings: Vec<_> = seed.anthropic.listings()[listings_before..].to_vec();
    assert!(
        listings.len() >= 5 && listings.iter().all(|s| s.status == 200),
        "probes kept reading a good listing: {listings:?}"
    );
    assert!(
        failed <= 3,
        "users' requests failed at the upstream over 20 s of chat-only failure: {failed} (route returned {returns} times)"
    );
    // Cooldowns grow while it keeps failing: 1 s, 2 s, 4 s, 8 s … so a handful of trials.
    assert!(
        (1..=6).contains(&trials),
        "the plane's trials in 20 s: {trials}"
    );
    assert!(client_failed <= 3, "failed at the client: {client_failed}");
    assert!(
        returns <= 2,
        "the endpoint came back {returns} times while chat kept failing (flapping)"
    );
    assert!(!seed.openai.seen().is_empty());
    // Status says it is out because real traffic failed, though its listing answers.
    let status = seed.mcp.ok("bitrouter_status", json!({})).await;
    let smart = status_model(&status, "smart");
    assert_eq!(smart["serving"], json!(["openai:gpt-4o"]), "{smart:#}");
    let a = status_endpoint(smart, "anthropic");
    assert_ne!(a["breaker"], "closed", "{smart:#}");
    assert!(
        a["probe_ms"].is_u64(),
        "its listing still answers: {smart:#}"
    );
    assert!(
        a["last_error"].as_str().unwrap_or_default().contains("529"),
        "{smart:#}"
    );

    // Healed: it comes back (through a trial), and answers again.
    seed.anthropic.set_mode(Mode::Ok).await;
    let start = Instant::now();
    loop {
        let (status, body) = seed.chat("smart").await;
        if status == 200 && body.contains("hello from anthropic") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "smart never came back to anthropic: {:#}",
            seed.routes().await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    seed.assert_own_keys();
    seed.assert_no_key_in_logs();
    seed.mcp.close().await;
}

// ------------------------------------------------------------------ a key in the URL

#[tokio::test]
async fn a_google_key_sent_in_the_url_never_reaches_a_log() {
    // BitRouter 0.11.0 sends Google's key as `?key=` in the URL; transport errors quote URLs.
    let home = TestHome::new();
    let google = Upstream::google("google").await;
    google.require_key(GOOGLE_KEY);
    let port = free_port();
    let cfg = home.write_config(&json!({
        "port": port,
        "healthCheckIntervalMs": 300,
        "providers": {"google": {"apiBase": google.api_base()}},
        "models": {"gem": {"strategy": "priority", "endpoints": [
            {"provider": "google", "modelId": "gemini-2.0-flash"}]}}
    }));
    let mcp = Mcp::stdio_logged(
        &home,
        &cfg,
        &[
            ("GOOGLE_API_KEY", GOOGLE_KEY),
            ("BITROUTER_MCP_LOG", "debug"),
        ],
    )
    .await;
    mcp.wait_healthy().await;
    let token = mcp.api_token().await;
    let (status, body) = chat(port, &token, "gem").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        google.seen()[0].credentials,
        [("?key".to_string(), GOOGLE_KEY.to_string())]
    );
    google.set_mode(Mode::Refuse).await;
    for _ in 0..3 {
        let (status, _) = chat(port, &token, "gem").await;
        assert_ne!(status, 200);
    }
    google.set_mode(Mode::Fail500).await;
    let (status, _) = chat(port, &token, "gem").await;
    assert_ne!(status, 200);
    // Let the probes run against the broken upstream too.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    mcp.close().await;
    let h = home.home();
    for (what, path) in [
        ("daemon log", h.logs_dir().join("daemon.log")),
        ("server stderr", home.server_stderr()),
    ] {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(!text.contains(GOOGLE_KEY), "{what} holds the Google key");
    }
    // Not vacuous: the daemon did log the failing URLs, key parameter included (redacted).
    let log = std::fs::read_to_string(h.logs_dir().join("daemon.log")).unwrap();
    assert!(log.contains(":generateContent?key="), "{log}");
}

#[tokio::test]
async fn a_streamed_chat_only_outage_keeps_the_endpoint_out_too() {
    // What OpenClaw does: every request streams. The upstream's 529 comes before the stream
    // starts; the daemon answers 500, and its metrics must still show the failure.
    let seed = seed().await;
    seed.wait_active("smart", "anthropic", true).await;
    seed.anthropic.set_mode(Mode::ChatOnlyFail).await;
    let began = Instant::now();
    let mut client_failed = 0;
    while began.elapsed() < Duration::from_secs(10) {
        let (status, _, _) = stream_chat(seed.port, &seed.token, "smart").await;
        if status != 200 {
            client_failed += 1;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let failed = seed.anthropic.failed_chats_saying("hi");
    assert!(
        failed <= 3 && client_failed <= 3,
        "streamed users' requests failed at the upstream over 10 s: {failed} (client saw {client_failed}): {:#}",
        seed.routes().await
    );
    seed.mcp.close().await;
}
