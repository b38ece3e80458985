//! HTTP throughput and the server's RSS under load (BENCHMARKS.md §3 and §4): `bitrouter_keys`
//! list back to back for a few seconds with 1, 8 and 32 sessions, each its own rmcp client over
//! streamable HTTP, in this process on the same cores as the server; 32 sessions twice more
//! (a leak would grow RSS run after run). RSS is the server's VmRSS, sampled every 100 ms; the
//! throughput and RSS targets. Before the runs the server takes the one-session call sequence of
//! `--bench latency` (its lines print too). Run with `cargo bench --bench throughput`
//! (`BENCH_QUICK=1`: a smoke run); figures are printed, not asserted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod harness;

use std::time::{Duration, Instant};

use harness::mcp::{Client, Session, calls, params, time_tool, url_port, warmup};
use harness::procfs::{ConnMark, CpuMark, proc_status_mb, rss_mb, rss_split};
use harness::{Stats, ms, scale, stats, verdict};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const SESSIONS: [usize; 3] = [1, 8, 32];
const TARGET_CALLS_PER_S: f64 = 2000.0;
const TARGET_RSS_MB: f64 = 20.0;

/// How long each run calls.
fn run_for() -> Duration {
    scale(Duration::from_secs(5), Duration::from_secs(1))
}

/// Extra 32-session runs after the first.
fn repeats_32() -> usize {
    scale(2, 1)
}

#[tokio::main]
async fn main() {
    harness::begin("HTTP throughput and server RSS");
    println!(
        "\none session first: {} calls each after {} warm-up, rmcp client over streamable HTTP",
        calls(),
        warmup()
    );
    let s = Session::http().await;
    let http_pid = s.pid;
    let http_rss_start = rss_split(http_pid);
    s.prepare().await;
    s.tool_latency().await;
    let http_rss_after = rss_mb(http_pid);
    let url = s.url.clone().unwrap();

    println!(
        "\nHTTP throughput: bitrouter_keys list, each session its own rmcp client, {} s per run; clients share the cores with the server",
        run_for().as_secs()
    );
    let mut tput = Vec::new();
    let mut rss_after_runs = Vec::new();
    for (i, n) in SESSIONS
        .into_iter()
        .chain(std::iter::repeat_n(32, repeats_32()))
        .enumerate()
    {
        let t = throughput(&url, http_pid, n).await;
        let again = if i >= SESSIONS.len() { " (again)" } else { "" };
        println!(
            "  {n:>2} sessions{again:<8} {:>7.0} calls/s   latency p50 {:>6.2} ms  p99 {:>6.2} ms   cpu/call server {:>4.0} us, client {:>4.0} us   RSS max {:>5.1} MB{}",
            t.calls_per_s,
            t.latency.p50,
            t.latency.p99,
            t.server_cpu_us,
            t.client_cpu_us,
            t.rss.iter().copied().fold(0.0, f64::max),
            t.conns
        );
        rss_after_runs.push(format!("{n}{again}: {:.1} MB", rss_mb(http_pid)));
        if i < SESSIONS.len() {
            tput.push((n, t));
        }
    }
    let load_rss = tput.last().map(|(_, t)| t.rss.clone()).unwrap_or_default();
    let http_rss_end = rss_mb(http_pid);
    let anon = proc_status_mb(http_pid, "RssAnon:");
    let file = proc_status_mb(http_pid, "RssFile:");
    let hwm = proc_status_mb(http_pid, "VmHWM:");
    let threads = std::fs::read_dir(format!("/proc/{http_pid}/task")).map_or(0, Iterator::count);
    s.close().await;

    println!(
        "\nserver RSS (VmRSS of the bitrouter-mcp process; no daemon; stdio: --bench latency)"
    );
    println!("  HTTP, after start + 1 session              {http_rss_start}");
    println!(
        "  HTTP, after {} calls, 1 session           {http_rss_after:>6.1} MB",
        4 * (calls() + warmup())
    );
    harness::summary("  HTTP, during the 32-session run", " MB", load_rss.clone());
    println!(
        "  HTTP, after each run (sessions closed)     {}",
        rss_after_runs.join(", ")
    );
    println!(
        "  HTTP, at the end                           {http_rss_end:>6.1} MB (anonymous {anon:.1} MB, file-backed {file:.1} MB), peak (VmHWM) {hwm:.1} MB, {threads} threads"
    );

    println!("\ntargets");
    if let Some((_, t)) = tput.iter().find(|(n, _)| *n == 32) {
        println!(
            "  {:<42} {:.0} calls/s >= {TARGET_CALLS_PER_S}: {}",
            "HTTP throughput, 32 sessions",
            t.calls_per_s,
            verdict(t.calls_per_s, TARGET_CALLS_PER_S, false)
        );
    }
    let max_rss = load_rss
        .iter()
        .copied()
        .chain([http_rss_after, hwm])
        .fold(0.0, f64::max);
    println!(
        "  {:<42} {max_rss:.1} MB <= {TARGET_RSS_MB} MB: {}",
        "server RSS, highest seen (incl. VmHWM)",
        verdict(max_rss, TARGET_RSS_MB, true)
    );
}

struct Throughput {
    calls_per_s: f64,
    latency: Stats,
    server_cpu_us: f64,
    client_cpu_us: f64,
    rss: Vec<f64>,
    conns: String,
}

async fn throughput(url: &str, pid: u32, sessions: usize) -> Throughput {
    let mut clients = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let c: Client =
            ().serve(StreamableHttpClientTransport::from_uri(url.to_string()))
                .await
                .unwrap();
        time_tool(&c, "bitrouter_keys", &json!({"action": "list"}), 10).await;
        clients.push(c);
    }
    let stop = CancellationToken::new();
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut rss = Vec::new();
            while !stop.is_cancelled() {
                rss.push(rss_mb(pid));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            rss
        })
    };
    let cpu = CpuMark::now(pid);
    let conns = ConnMark::now(Some(url_port(url)));
    let start = Instant::now();
    let deadline = start + run_for();
    let p = params("bitrouter_keys", &json!({"action": "list"}));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            let p = p.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let req = p.clone();
                    let t = Instant::now();
                    let r = c.call_tool(req).await.unwrap();
                    lat.push(ms(t.elapsed()));
                    assert_ne!(r.is_error, Some(true), "keys list failed: {:?}", r.content);
                }
                (c, lat)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut clients = Vec::new();
    for t in tasks {
        let (c, lat) = t.await.unwrap();
        all.extend(lat);
        clients.push(c);
    }
    let elapsed = start.elapsed();
    let calls = all.len();
    let (server_cpu_us, client_cpu_us) = cpu.per_call_us(pid, calls);
    let conns = conns.per_call(calls);
    stop.cancel();
    let rss = sampler.await.unwrap();
    for c in clients {
        let _ = c.cancel().await;
    }
    Throughput {
        calls_per_s: calls as f64 / elapsed.as_secs_f64(),
        latency: stats(all),
        server_cpu_us,
        client_cpu_us,
        rss,
        conns,
    }
}
