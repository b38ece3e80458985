//! Abandoned HTTP sessions: RSS of the server after 3,000 clients each opened a session
//! (`initialize` + `notifications/initialized`) and left without `DELETE`, as crashed agents and
//! one-shot scripts do. Sessions are capped (`server::sessions::MAX_SESSIONS`, the longest idle
//! closed first), so RSS should level off instead of growing ~50 KB per session.
//! Run with `cargo bench --bench sessions`; figures are printed, not asserted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TestHome, free_port, wait_for_port};
use serde_json::json;

const ABANDONED: usize = 3000;
/// RSS is sampled after this many sessions.
const SAMPLE_EVERY: usize = 500;

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
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
    for i in 1..=ABANDONED {
        abandon_one(&http, &url).await;
        if i % SAMPLE_EVERY == 0 {
            println!("{i:>8} sessions  {:>6.1} MB", rss_mb(pid));
        }
    }
    let took = start.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "after {ABANDONED} (+1 s)  {:>6.1} MB   ({:.1} s, {:.2} ms per session)",
        rss_mb(pid),
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / ABANDONED as f64
    );
    let _ = server.kill().await;
}
