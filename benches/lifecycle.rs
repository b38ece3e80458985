//! Daemon lifecycle figures on the real BitRouter 0.11.0: time from spawn to healthy (as the
//! supervisor measures it) and from `kill -9` of the daemon to healthy again (as a status poller
//! sees it), and, with two servers on one data dir, from `kill -9` of the owning server to a
//! healthy daemon under the follower that takes over. Run with `cargo bench --bench lifecycle`
//! (`BENCH_QUICK=1`: one run each); prints min / median / max over several runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod harness;

use std::time::{Duration, Instant};

use harness::common::{Mcp, TestHome, free_port, kill};
use serde_json::json;

/// Runs per figure (1 under `BENCH_QUICK=1`).
fn runs() -> usize {
    harness::scale(5, 1)
}

#[tokio::main]
async fn main() {
    harness::begin("daemon lifecycle");
    let mut startup = Vec::new();
    let mut recovery = Vec::new();
    for _ in 0..runs() {
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
    let mut takeover = Vec::new();
    for _ in 0..runs() {
        let home = TestHome::new();
        let cfg = home.write_config(&json!({"port": free_port(), "healthCheckIntervalMs": 200}));
        let mut owner = Mcp::http(&home, Some(&cfg)).await;
        let follower = Mcp::stdio(&home, Some(&cfg)).await;
        let owner_pid = u64::from(owner.server_pid());
        follower
            .wait_status("healthy under the owner", Duration::from_secs(30), |s| {
                s["daemon"]["state"] == "healthy"
                    && s["ownership"]["owner"]["pid"].as_u64() == Some(owner_pid)
            })
            .await;
        let killed = Instant::now();
        kill(owner.server_pid(), "KILL");
        loop {
            let s = follower.ok("bitrouter_status", json!({})).await;
            if s["ownership"]["role"] == "owner" && s["daemon"]["state"] == "healthy" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        takeover.push(killed.elapsed().as_secs_f64() * 1000.0);
        owner.wait_server_exit(Duration::from_secs(5)).await;
        follower.close().await;
    }
    println!(
        "bitrouter {} daemon lifecycle",
        bitrouter_mcp::PINNED_BITROUTER_VERSION
    );
    harness::summary("spawn -> healthy", " ms", startup);
    harness::summary("kill -9 -> healthy again", " ms", recovery);
    harness::summary("owner kill -9 -> healthy under new owner", " ms", takeover);
}
