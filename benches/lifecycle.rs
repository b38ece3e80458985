//! Daemon lifecycle figures on the real BitRouter 0.11.0: time from spawn to healthy (as the
//! supervisor measures it) and from `kill -9` of the daemon to healthy again (as a status poller
//! sees it). Run with `cargo bench --bench lifecycle`; prints min / median / max over several runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::{Mcp, TestHome, free_port, kill};
use serde_json::json;

const RUNS: usize = 5;

#[tokio::main]
async fn main() {
    bitrouter_mcp::tls::ensure_crypto_provider();
    let mut startup = Vec::new();
    let mut recovery = Vec::new();
    for _ in 0..RUNS {
        let home = TestHome::new();
        let cfg = home.write_config(&json!({"port": free_port(), "healthCheckIntervalMs": 200}));
        let mcp = Mcp::stdio(&home, Some(&cfg)).await;
        let s = mcp
            .wait_status("healthy", Duration::from_secs(30), |s| {
                s["daemon"]["state"] == "healthy"
            })
            .await;
        startup.push(s["daemon"]["startup_ms"].as_f64().unwrap());
        let pid = s["daemon"]["pid"].as_u64().unwrap() as u32;
        let killed = Instant::now();
        kill(pid, "KILL");
        loop {
            let s = mcp.ok("bitrouter_status", json!({})).await;
            if s["daemon"]["state"] == "healthy" && s["daemon"]["pid"].as_u64() != Some(pid.into())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        recovery.push(killed.elapsed().as_secs_f64() * 1000.0);
        mcp.close().await;
    }
    println!(
        "bitrouter {} daemon lifecycle",
        bitrouter_mcp::PINNED_BITROUTER_VERSION
    );
    support::summary("spawn -> healthy", " ms", startup);
    support::summary("kill -9 -> healthy again", " ms", recovery);
}
