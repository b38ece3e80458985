//! MCP tool-call latency (BENCHMARKS.md §1): `bitrouter_status`, `bitrouter_keys` list,
//! `bitrouter_keygen` and a ping through rmcp's client over stdio and streamable HTTP, the same
//! calls as plain HTTP POSTs (keep-alive and a new connection per call), and `bitrouter_status`
//! with a managed healthy daemon; the server's RSS before and after; the latency targets.
//! Run with `cargo bench --bench latency` (`BENCH_QUICK=1`: a smoke run); figures are printed,
//! not asserted.
//!
//! - Without a daemon the server runs with `autoStart: false`: `bitrouter_status` then probes the
//!   configured daemon address (nothing listens there), so that probe is part of its latency.
//!   With a managed, healthy daemon it reads cached health.
//! - CPU per call is the schedstat run time of all threads of the server (and of this process,
//!   "client") over the run, divided by the calls.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod harness;

use std::time::Instant;

use harness::mcp::{Session, calls, managed_status, warmup};
use harness::procfs::{ConnMark, CpuMark, rss_mb, rss_split};
use harness::{ms, print_ms_extra, scale, stats, verdict};
use serde_json::{Value, json};

const TARGET_P50_MS: f64 = 0.5;
const TARGET_P99_MS: f64 = 2.0;

#[tokio::main]
async fn main() {
    harness::begin("MCP tool-call latency");
    let (calls, warmup) = (calls(), warmup());
    println!(
        "\ntool-call latency, autoStart false (no daemon), {calls} calls each after {warmup} warm-up, rmcp client"
    );
    println!("stdio");
    let s = Session::stdio().await;
    let stdio_rss_start = rss_split(s.pid);
    s.prepare().await;
    let stdio = s.tool_latency().await;
    let stdio_rss_after = rss_mb(s.pid);
    s.close().await;

    println!("streamable HTTP (one session)");
    let s = Session::http().await;
    let http_rss_start = rss_split(s.pid);
    s.prepare().await;
    s.tool_latency().await;
    let http_rss_after = rss_mb(s.pid);
    let (url, port) = (s.url.clone().unwrap(), s.port());
    // The server alone, without rmcp's client: plain POSTs, each response read to its end. With
    // keep-alive every call once waited ~40 ms (see BENCHMARKS.md), so fewer calls there.
    for (conn, fresh, n) in [
        ("keep-alive", false, scale(100, 10)),
        ("new conn per call", true, calls),
    ] {
        let mut raw = RawHttp::connect(&url, fresh).await;
        for (what, method, params) in [
            ("ping", "ping", None),
            (
                "keys list",
                "tools/call",
                Some(json!({"name": "bitrouter_keys", "arguments": {"action": "list"}})),
            ),
        ] {
            raw.time(method, params.clone(), n / 10).await;
            let cpu = CpuMark::now(s.pid);
            let conns = ConnMark::now(port);
            let lat = raw.time(method, params, n).await;
            print_ms_extra(
                &format!("raw POSTs, {conn}: {what}"),
                &stats(lat),
                Some(cpu.per_call_us(s.pid, n)),
                &conns.per_call(n),
            );
        }
    }
    s.close().await;

    let managed = managed_status().await;

    println!(
        "\nserver RSS (VmRSS of the bitrouter-mcp process; no daemon; under load: --bench throughput)"
    );
    println!("  stdio, after start + initialize            {stdio_rss_start}");
    println!(
        "  stdio, after {} calls                     {stdio_rss_after:>6.1} MB",
        4 * (calls + warmup)
    );
    println!("  HTTP, after start + 1 session              {http_rss_start}");
    println!(
        "  HTTP, after {} calls, 1 session           {http_rss_after:>6.1} MB",
        4 * (calls + warmup)
    );

    println!("\ntargets");
    for (label, s) in [
        ("stdio bitrouter_status (no daemon)", stdio.status),
        ("stdio bitrouter_status (managed daemon)", managed[0]),
        ("stdio bitrouter_keys list", stdio.keys),
        ("stdio bitrouter_keygen", stdio.keygen),
    ] {
        println!(
            "  {label:<42} p50 {:.3} ms <= {TARGET_P50_MS} ms: {:<22} p99 {:.3} ms <= {TARGET_P99_MS} ms: {}",
            s.p50,
            verdict(s.p50, TARGET_P50_MS, true),
            s.p99,
            verdict(s.p99, TARGET_P99_MS, true)
        );
    }
    println!("  (hook decision time: node openclaw-adapter/scripts/bench-hook.mjs)");
}

/// A streamable-HTTP client made of plain reqwest POSTs (no rmcp on the client side).
struct RawHttp {
    http: reqwest::Client,
    url: String,
    session: String,
    next_id: u64,
}

impl RawHttp {
    /// `fresh`: a new TCP connection per request instead of keep-alive.
    async fn connect(url: &str, fresh: bool) -> Self {
        let mut builder = reqwest::Client::builder();
        if fresh {
            builder = builder.pool_max_idle_per_host(0);
        }
        let http = builder.build().unwrap();
        let init = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"}
            }
        });
        let r = Self::post(&http, url, None, &init).await;
        let session = r
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .expect("a session id")
            .to_string();
        let _ = r.text().await;
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let r = Self::post(&http, url, Some(&session), &done).await;
        assert!(r.status().is_success(), "initialized: {}", r.status());
        Self {
            http,
            url: url.to_string(),
            session,
            next_id: 0,
        }
    }

    async fn post(
        http: &reqwest::Client,
        url: &str,
        session: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut req = http
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(serde_json::to_vec(body).unwrap());
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        req.send().await.unwrap()
    }

    /// Latencies (ms) of `n` requests (each response body read to its end).
    async fn time(&mut self, method: &str, params: Option<Value>, n: usize) -> Vec<f64> {
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            self.next_id += 1;
            let mut msg = json!({"jsonrpc": "2.0", "id": self.next_id, "method": method});
            if let Some(p) = params.clone() {
                msg["params"] = p;
            }
            let t = Instant::now();
            let r = Self::post(&self.http, &self.url, Some(&self.session), &msg).await;
            let body = r.text().await.unwrap();
            lat.push(ms(t.elapsed()));
            assert!(
                body.contains("\"result\"") && !body.contains("\"isError\":true"),
                "{method}: {body}"
            );
        }
        lat
    }
}
