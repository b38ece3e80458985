//! Failover figures on the real BitRouter 0.11.0 with HTTPS fake upstreams that speak each
//! provider's shape: the seed's `smart` (priority anthropic -> openai) under steady traffic.
//!
//! - **death** (`FAILOVER_BENCH=death`): ~10 requests/s while Anthropic dies (connection refused,
//!   then 529 on every path). Per run: death -> route switched (as the route table shows it), first
//!   failed request -> switched, failed requests per death; passive detection from the daemon's
//!   metrics on (metricsPollMs 100) and off (active probes only, every 1 s).
//! - **partial** (`FAILOVER_BENCH=partial`): Anthropic fails chat only (529 on `/v1/messages`,
//!   `/v1/models` answers 200) for `FAILOVER_PARTIAL_SECS` (default 600) at ~10 requests/s:
//!   failed requests at the upstream and at the client, route switches (flapping) and the time
//!   the endpoint spent in the route.
//!
//! Default: both. Run with `cargo bench --bench failover`. `BENCH_QUICK=1`: one run per death
//! figure and a 20 s partial outage (unless `FAILOVER_PARTIAL_SECS` says otherwise).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod harness;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::common::upstream::{Mode, Upstream};
use harness::common::{Mcp, TestHome, chat, free_port};
use serde_json::{Value, json};

/// Runs per death figure (1 under `BENCH_QUICK=1`).
fn death_runs() -> usize {
    harness::scale(5, 1)
}
/// Outcomes of the steady traffic: when each request ended and whether it succeeded.
type Outcomes = Arc<Mutex<Vec<(Instant, bool)>>>;
/// Pause between requests of the steady traffic (~10 requests/s with the request itself).
const PACE: Duration = Duration::from_millis(100);

struct Rig {
    _home: TestHome,
    mcp: Mcp,
    anthropic: Upstream,
    openai: Upstream,
    port: u16,
    token: String,
}

async fn rig(metrics_poll_ms: u64) -> Rig {
    let home = TestHome::new();
    let (anthropic, openai) = (
        Upstream::anthropic("anthropic").await,
        Upstream::openai("openai").await,
    );
    let port = free_port();
    let cfg = home.write_config(&json!({
        "port": port,
        "healthCheckIntervalMs": 1000,
        "metricsPollMs": metrics_poll_ms,
        "providers": {
            "anthropic": {"apiBase": anthropic.api_base(), "apiKey": "sk-ant-bench-1"},
            "openai": {"apiBase": openai.api_base(), "apiKey": "sk-openai-bench-1"}
        },
        "models": {"smart": {"strategy": "priority", "endpoints": [
            {"provider": "anthropic", "modelId": "claude-sonnet-4-20250514"},
            {"provider": "openai", "modelId": "gpt-4o"}]}}
    }));
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    mcp.wait_healthy().await;
    let token = mcp.api_token().await;
    let r = Rig {
        _home: home,
        mcp,
        anthropic,
        openai,
        port,
        token,
    };
    while r.active().await.as_deref() != Some("anthropic") {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r
}

impl Rig {
    /// The provider `smart` is routed to now (when exactly one endpoint is active).
    async fn active(&self) -> Option<String> {
        let r: Value = self.mcp.read_json("bitrouter://routes").await;
        let active: Vec<&Value> = r["models"][0]["endpoints"]
            .as_array()?
            .iter()
            .filter(|e| e["active"] == true)
            .collect();
        match active.as_slice() {
            [one] => one["provider"].as_str().map(String::from),
            _ => None,
        }
    }

    /// Steady traffic on `smart` until `stop`; outcomes timestamped.
    fn traffic(
        &self,
        stop: tokio_util::sync::CancellationToken,
    ) -> (Outcomes, tokio::task::JoinHandle<()>) {
        let outcomes: Outcomes = Arc::default();
        let (o, port, token) = (outcomes.clone(), self.port, self.token.clone());
        let task = tokio::spawn(async move {
            while !stop.is_cancelled() {
                let (status, _) = chat(port, &token, "smart").await;
                o.lock().unwrap().push((Instant::now(), status == 200));
                tokio::time::sleep(PACE).await;
            }
        });
        (outcomes, task)
    }
}

struct Death {
    switch_ms: f64,
    first_failure_to_switch_ms: Option<f64>,
    failed: usize,
}

async fn one_death(metrics_poll_ms: u64, how: Mode) -> Death {
    let rig = rig(metrics_poll_ms).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let (outcomes, traffic) = rig.traffic(stop.clone());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let died = Instant::now();
    rig.anthropic.set_mode(how).await;
    let switched = loop {
        if rig.active().await.as_deref() == Some("openai") {
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
    rig.mcp.close().await;
    Death {
        switch_ms: switched.duration_since(died).as_secs_f64() * 1000.0,
        first_failure_to_switch_ms: failures
            .first()
            .map(|f| switched.saturating_duration_since(*f).as_secs_f64() * 1000.0),
        failed: failures.len(),
    }
}

async fn deaths() {
    println!(
        "bitrouter {} failover, seed `smart` (anthropic -> openai) over HTTPS, ~10 req/s, {} runs each",
        bitrouter_mcp::PINNED_BITROUTER_VERSION,
        death_runs()
    );
    for (how, how_label) in [
        (Mode::Refuse, "anthropic refuses connections"),
        (Mode::Overloaded, "anthropic answers 529 on every path"),
    ] {
        for (label, poll) in [
            ("passive on (metricsPollMs 100)", 100),
            ("passive off (probes every 1 s)", 0),
        ] {
            let mut runs = Vec::new();
            for _ in 0..death_runs() {
                runs.push(one_death(poll, how).await);
            }
            println!("{how_label}, {label}");
            harness::summary(
                "  death -> route switched",
                " ms",
                runs.iter().map(|r| r.switch_ms).collect(),
            );
            harness::summary(
                "  first failed request -> route switched",
                " ms",
                runs.iter()
                    .filter_map(|r| r.first_failure_to_switch_ms)
                    .collect(),
            );
            harness::summary(
                "  failed requests per death",
                "   ",
                runs.iter().map(|r| r.failed as f64).collect(),
            );
        }
    }
}

/// Chat-only failure of the first endpoint for `secs`, steady traffic.
async fn partial(secs: u64) {
    println!(
        "bitrouter {} partial outage: anthropic answers 529 on /v1/messages, 200 on /v1/models, for {secs} s at ~10 req/s (passive on, probes every 1 s)",
        bitrouter_mcp::PINNED_BITROUTER_VERSION
    );
    let rig = rig(100).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let (outcomes, traffic) = rig.traffic(stop.clone());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let began = Instant::now();
    rig.anthropic.set_mode(Mode::ChatOnlyFail).await;
    let a_before = rig.anthropic.seen().len();
    // Sample the route every 200 ms: switches and time spent on the failing endpoint.
    let mut last = rig.active().await;
    let mut switches = Vec::new();
    let mut on_failing = Duration::ZERO;
    let mut sampled = Instant::now();
    let mut minute = 1;
    while began.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = rig.active().await;
        if last.as_deref() == Some("anthropic") {
            on_failing += sampled.elapsed();
        }
        sampled = Instant::now();
        if now != last {
            switches.push((began.elapsed(), last.clone(), now.clone()));
            last = now;
        }
        if began.elapsed() >= Duration::from_secs(60 * minute) {
            println!(
                "  {minute:>2} min: failed users' requests at anthropic {}, failed trials {}, switches {}",
                rig.anthropic.failed_chats_saying("hi"),
                rig.anthropic.failed_chats() - rig.anthropic.failed_chats_saying("hi"),
                switches.len()
            );
            minute += 1;
        }
    }
    stop.cancel();
    let _ = traffic.await;
    let outcomes = outcomes.lock().unwrap().clone();
    let during: Vec<bool> = outcomes
        .iter()
        .filter(|(t, _)| *t >= began)
        .map(|(_, ok)| *ok)
        .collect();
    let failed_client = during.iter().filter(|ok| !**ok).count();
    println!(
        "  requests during the outage                  {}  ({:.1} req/s achieved)",
        during.len(),
        during.len() as f64 / secs as f64
    );
    // common::chat says "hi"; the rest are the control plane's own one-token trials.
    let users_failed = rig.anthropic.failed_chats_saying("hi");
    println!(
        "  failed users' requests at the upstream      {users_failed}  (of {} chat requests that reached it)",
        rig.anthropic.seen().len() - a_before
    );
    println!(
        "  failed trials (the plane's one-token chats) {}",
        rig.anthropic.failed_chats() - users_failed
    );
    println!("  failed requests at the client               {failed_client}");
    println!(
        "  route switches                              {}",
        switches.len()
    );
    for (at, from, to) in &switches {
        println!(
            "    at {:>7.1} s: {} -> {}",
            at.as_secs_f64(),
            from.as_deref().unwrap_or("-"),
            to.as_deref().unwrap_or("-")
        );
    }
    println!(
        "  time the failing endpoint was routed        {:.1} s",
        on_failing.as_secs_f64()
    );
    println!(
        "  answered by openai                          {}",
        rig.openai.seen().len()
    );
    rig.mcp.close().await;
}

#[tokio::main]
async fn main() {
    harness::begin("failover");
    let which = std::env::var("FAILOVER_BENCH").unwrap_or_else(|_| "all".into());
    let secs = std::env::var("FAILOVER_PARTIAL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(harness::scale(600, 20));
    if which == "all" || which == "death" {
        deaths().await;
    }
    if which == "all" || which == "partial" {
        partial(secs).await;
    }
}
