//! Failover figures on the real BitRouter 0.11.0 with fake upstreams: steady traffic (~10
//! requests/s) on a `priority` model while its first upstream dies (connection refused). Per run:
//! time from the death to the route switch (as the route table shows it), time from the first
//! failed request to the switch, and failed requests per death — with passive detection from the
//! daemon's metrics on (metricsPollMs 100) and off (active probes only, every 1 s).
//! Run with `cargo bench --bench failover`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::upstream::{Mode, Upstream};
use common::{Mcp, TestHome, chat, free_port};
use serde_json::json;

const RUNS: usize = 5;

struct Run {
    switch_ms: f64,
    first_failure_to_switch_ms: Option<f64>,
    failed: usize,
}

async fn one_run(metrics_poll_ms: u64) -> Run {
    let home = TestHome::new();
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let port = free_port();
    let cfg = home.write_config(&json!({
        "port": port,
        "healthCheckIntervalMs": 1000,
        "metricsPollMs": metrics_poll_ms,
        "providers": {
            "pa": {"derives": "openai", "apiBase": a.api_base(), "apiKey": "ka-123456"},
            "pb": {"derives": "openai", "apiBase": b.api_base(), "apiKey": "kb-123456"}
        },
        "models": {"smart": {"strategy": "priority", "endpoints": [
            {"provider": "pa", "modelId": "m1"}, {"provider": "pb", "modelId": "m2"}]}}
    }));
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    mcp.wait_healthy().await;
    let token = mcp.api_token().await;

    // Traffic: one request every 100 ms, outcomes timestamped.
    let outcomes: Arc<Mutex<Vec<(Instant, bool)>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let traffic = {
        let (outcomes, stop, token) = (outcomes.clone(), stop.clone(), token.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let (status, _) = chat(port, &token, "smart").await;
                outcomes
                    .lock()
                    .unwrap()
                    .push((Instant::now(), status == 200));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let died = Instant::now();
    a.set_mode(Mode::Refuse).await;
    let switched = loop {
        let r = mcp.read_json("bitrouter://routes").await;
        if r["models"][0]["endpoints"][1]["active"] == true {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.cancel();
    let _ = traffic.await;
    let outcomes = outcomes.lock().unwrap().clone();
    let failures: Vec<Instant> = outcomes
        .iter()
        .filter(|(t, ok)| !ok && *t >= died)
        .map(|(t, _)| *t)
        .collect();
    mcp.close().await;
    Run {
        switch_ms: switched.duration_since(died).as_secs_f64() * 1000.0,
        first_failure_to_switch_ms: failures
            .first()
            .map(|f| switched.saturating_duration_since(*f).as_secs_f64() * 1000.0),
        failed: failures.len(),
    }
}

#[tokio::main]
async fn main() {
    bitrouter_mcp::tls::ensure_crypto_provider();
    println!(
        "bitrouter {} failover, priority model, ~10 req/s, first upstream refuses connections",
        bitrouter_mcp::PINNED_BITROUTER_VERSION
    );
    for (label, poll) in [
        ("passive on (metricsPollMs 100)", 100),
        ("passive off (probes every 1 s)", 0),
    ] {
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            runs.push(one_run(poll).await);
        }
        println!("{label}");
        support::summary(
            "  death -> route switched",
            " ms",
            runs.iter().map(|r| r.switch_ms).collect(),
        );
        support::summary(
            "  first failed request -> route switched",
            " ms",
            runs.iter()
                .filter_map(|r| r.first_failure_to_switch_ms)
                .collect(),
        );
        support::summary(
            "  failed requests per death",
            "   ",
            runs.iter().map(|r| r.failed as f64).collect(),
        );
    }
}
