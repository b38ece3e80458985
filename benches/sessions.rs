//! Abandoned HTTP sessions: RSS of the server after 3,000 clients each opened a session
//! (`initialize` + `notifications/initialized`) and left without `DELETE`, as crashed agents and
//! one-shot scripts do. Sessions are capped (`server::sessions::MAX_SESSIONS`, the longest idle
//! closed first), so RSS should level off instead of growing ~50 KB per session.
//! Run with `cargo bench --bench sessions` (`BENCH_QUICK=1`: 500 sessions); figures are printed, not asserted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod harness;

use std::process::Stdio;
use std::time::{Duration, Instant};

use harness::common::{self, TestHome, free_port, wait_for_port};
use harness::procfs::rss_mb;
use serde_json::json;

/// Sessions abandoned (500 under `BENCH_QUICK=1`).
fn abandoned() -> usize {
    harness::scale(3000, 500)
}
/// RSS is sampled after this many sessions.
fn sample_every() -> usize {
    harness::scale(500, 100)
}

async fn abandon_one(http: &reqwest::Client, url: &str) {
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "abandoned", "version": "0"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.text().await;
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", id)
        .header("mcp-protocol-version", "2025-06-18")
        .body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
        .send()
        .await
        .unwrap();
    let _ = r.text().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    harness::begin("abandoned HTTP sessions");
    let (abandoned, sample_every) = (abandoned(), sample_every());
    let home = TestHome::new();
    let cfg = home.write_config(&json!({"autoStart": false, "port": free_port()}));
    let port = free_port();
    let mut server = common::server_command(&home, &cfg, &[("BITROUTER_MCP_LOG", "warn")])
        .args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = server.id().unwrap();
    wait_for_port(port, Duration::from_secs(10)).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let http = reqwest::Client::new();
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "abandoned HTTP sessions (cap {}), server VmRSS",
        bitrouter_mcp::server::sessions::MAX_SESSIONS
    );
    println!("{:>8} sessions  {:>6.1} MB", 0, rss_mb(pid));
    let start = Instant::now();
    for i in 1..=abandoned {
        abandon_one(&http, &url).await;
        if i % sample_every == 0 {
            println!("{i:>8} sessions  {:>6.1} MB", rss_mb(pid));
        }
    }
    let took = start.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "after {abandoned} (+1 s)  {:>6.1} MB   ({:.1} s, {:.2} ms per session)",
        rss_mb(pid),
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / abandoned as f64
    );
    let _ = server.kill().await;
}
