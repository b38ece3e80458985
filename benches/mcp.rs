//! MCP figures: tool-call latency over stdio and streamable HTTP, the same operations through the
//! `bitrouter` 0.11.0 CLI, HTTP throughput with 1, 8 and 32 sessions, the server's RSS, and where
//! the time of one call goes. Run with `cargo bench --bench mcp`; figures are printed, not asserted.
//!
//! - Tool latency runs a server with `autoStart: false` (no daemon): `bitrouter_status` then probes
//!   the configured daemon address (nothing listens there), so that probe is part of its latency.
//!   Status is also measured with a managed, healthy daemon, where it reads cached health.
//! - The CLI runs `bitrouter --home-dir H status | keys --list | keygen --exp 1h` as processes,
//!   with a daemon started by `bitrouter start` in that home (so `status` reports it running).
//! - Throughput: each session is its own rmcp client over streamable HTTP calling
//!   `bitrouter_keys` (list) back to back for a few seconds; the clients run in this process, on
//!   the same cores as the server. RSS is the server's VmRSS, sampled every 100 ms.
//! - Where the time goes: the tool functions alone, rmcp client and server in one process over a
//!   tokio duplex and over OS pipes (reactor I/O vs blocking-pool I/O, the way
//!   `tokio::io::stdin()` works), and the server process driven by minimal clients without rmcp
//!   (JSON-RPC lines over stdio; plain HTTP POSTs with and without keep-alive).
//! - CPU per call is the schedstat run time of all threads of the server (and of this process,
//!   "client") over the run, divided by the calls.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitrouter_mcp::routing::PluginConfig;
use bitrouter_mcp::server::{AppState, BitrouterServer};
use bitrouter_mcp::supervisor::SupervisorOptions;
use bitrouter_mcp::tools;
use common::{Mcp, TestHome, bitrouter_bin, free_port};
use rmcp::model::{CallToolRequestParams, ClientRequest, ServerResult};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

/// Timed calls per operation (after `WARMUP` untimed ones).
const CALLS: usize = 1000;
const WARMUP: usize = 100;
/// Timed CLI runs per operation (after `CLI_WARMUP` untimed ones).
const CLI_RUNS: usize = 50;
const CLI_WARMUP: usize = 5;
/// Saved tokens in every home, so `keys list` has something to read and decode.
const SAVED_TOKENS: usize = 5;
/// Raw keep-alive HTTP calls (each waits ~40 ms).
const RAW_KEEPALIVE_CALLS: usize = 100;
const THROUGHPUT_RUN: Duration = Duration::from_secs(5);
const SESSIONS: [usize; 3] = [1, 8, 32];

// Targets from the issue.
const TARGET_P50_MS: f64 = 0.5;
const TARGET_P99_MS: f64 = 2.0;
const TARGET_CALLS_PER_S: f64 = 2000.0;
const TARGET_RSS_MB: f64 = 20.0;

type Client = RunningService<RoleClient, ()>;

/// Server environment: the harness's quiet logs, rmcp's per-session lines included.
const QUIET: &[(&str, &str)] = &[("BITROUTER_MCP_LOG", "warn,rmcp=warn")];
/// Extra 32-session runs after the first: a leak would grow RSS run after run.
const REPEATS_32: usize = 2;

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    p50: f64,
    p99: f64,
    mean: f64,
    max: f64,
    n: usize,
}

/// Nearest-rank percentiles of `v` (any unit).
fn stats(mut v: Vec<f64>) -> Stats {
    if v.is_empty() {
        return Stats::default();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Stats {
        p50: rank(0.50),
        p99: rank(0.99),
        mean: v.iter().sum::<f64>() / v.len() as f64,
        max: v[v.len() - 1],
        n: v.len(),
    }
}

/// One latency line in milliseconds, with optional CPU time per call of server and client.
fn print_ms(name: &str, s: &Stats, cpu: Option<(f64, f64)>) {
    print_ms_extra(name, s, cpu, "");
}

fn print_ms_extra(name: &str, s: &Stats, cpu: Option<(f64, f64)>, extra: &str) {
    let cpu = cpu.map_or_else(String::new, |(server, client)| {
        format!("   cpu/call server {server:>5.0} us, client {client:>5.0} us")
    });
    println!(
        "  {name:<40} p50 {:>7.3} ms  p99 {:>7.3} ms  mean {:>7.3} ms  max {:>7.2} ms  (n={}){cpu}{extra}",
        s.p50, s.p99, s.mean, s.max, s.n
    );
}

/// One latency line in microseconds.
fn print_us(name: &str, s: &Stats) {
    println!(
        "  {name:<62} p50 {:>8.1} us  p99 {:>8.1} us  mean {:>8.1} us  (n={})",
        s.p50 * 1000.0,
        s.p99 * 1000.0,
        s.mean * 1000.0,
        s.n
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn verdict(value: f64, target: f64, lower_is_better: bool) -> String {
    let met = if lower_is_better {
        value <= target
    } else {
        value >= target
    };
    if met {
        "met".into()
    } else if lower_is_better {
        format!("MISSED by {:.2}x", value / target)
    } else {
        format!("MISSED: {:.0}% of target", value / target * 100.0)
    }
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

/// A `kB` field of /proc/<pid>/status, in MB.
fn proc_status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn rss_mb(pid: u32) -> f64 {
    proc_status_mb(pid, "VmRSS:")
}

/// "X MB (anonymous A MB, file-backed F MB)".
fn rss_split(pid: u32) -> String {
    format!(
        "{:>5.1} MB (anonymous {:.1} MB, file-backed {:.1} MB)",
        rss_mb(pid),
        proc_status_mb(pid, "RssAnon:"),
        proc_status_mb(pid, "RssFile:")
    )
}

/// CPU time a process's live threads have run, from their schedstat (nanosecond resolution).
fn cpu_ns(pid: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// CPU of (server, this process) since `since`, per call, in microseconds.
#[derive(Clone, Copy)]
struct CpuMark {
    server: u64,
    client: u64,
}

impl CpuMark {
    fn now(server_pid: u32) -> Self {
        Self {
            server: cpu_ns(&server_pid.to_string()),
            client: cpu_ns("self"),
        }
    }
    fn per_call_us(self, server_pid: u32, calls: usize) -> (f64, f64) {
        let end = Self::now(server_pid);
        let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1000.0 / calls.max(1) as f64;
        (per(self.server, end.server), per(self.client, end.client))
    }
}

/// TCP connections to or from 127.0.0.1:`port` now in TIME_WAIT, i.e. closed in the last minute
/// (a lower bound of the connections opened: one closed by a reset leaves none).
fn closed_conns(port: u16) -> usize {
    let port = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[3] == "06" && (f[1].ends_with(&port) || f[2].ends_with(&port))
        })
        .count()
}

/// Counts TCP connections closed around a run of `calls` calls.
struct ConnMark(Option<(u16, usize)>);

impl ConnMark {
    fn now(port: Option<u16>) -> Self {
        Self(port.map(|p| (p, closed_conns(p))))
    }
    /// ", N TCP connections per call" for HTTP, nothing for stdio.
    fn per_call(&self, calls: usize) -> String {
        self.0.map_or_else(String::new, |(p, before)| {
            let n = closed_conns(p).saturating_sub(before);
            format!(
                ", new TCP conns/call >= {:.2}",
                n as f64 / calls.max(1) as f64
            )
        })
    }
}

/// Direct children of this process.
fn children() -> HashSet<u32> {
    let mut out = HashSet::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out
}

fn url_port(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("a port in the URL")
}

/// `bitrouter-mcp serve --stdio` through the harness, plus the server's pid.
async fn stdio_server(home: &TestHome, config: Option<&Path>) -> (Mcp, u32) {
    let before = children();
    let mcp = Mcp::stdio_env(home, config, QUIET).await;
    let pid = children()
        .difference(&before)
        .copied()
        .next()
        .expect("the stdio server is a new child");
    (mcp, pid)
}

/// The `/mcp` URL of an HTTP server, from its command line.
fn http_url(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let i = args.iter().position(|a| a == "--http").unwrap();
    format!("http://{}/mcp", args[i + 1])
}

// ---------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------

struct Op {
    label: &'static str,
    tool: &'static str,
    args: Value,
}

fn ops() -> Vec<Op> {
    vec![
        Op {
            label: "bitrouter_status",
            tool: "bitrouter_status",
            args: json!({}),
        },
        Op {
            label: "bitrouter_keys list",
            tool: "bitrouter_keys",
            args: json!({"action": "list"}),
        },
        Op {
            label: "bitrouter_keygen exp 1h",
            tool: "bitrouter_keygen",
            args: json!({"exp": "1h"}),
        },
    ]
}

fn params(tool: &str, args: &Value) -> CallToolRequestParams {
    let mut p = CallToolRequestParams::new(tool.to_string());
    if let Value::Object(map) = args.clone() {
        p = p.with_arguments(map);
    }
    p
}

/// Latencies (ms) of `n` calls, and what each result says about the daemon probe.
async fn time_tool(client: &Client, tool: &str, args: &Value, n: usize) -> (Vec<f64>, Vec<f64>) {
    let p = params(tool, args);
    let mut lat = Vec::with_capacity(n);
    let mut probe = Vec::new();
    for _ in 0..n {
        let req = p.clone();
        let t = Instant::now();
        let r = client.call_tool(req).await.unwrap();
        lat.push(ms(t.elapsed()));
        assert_ne!(r.is_error, Some(true), "{tool} failed: {:?}", r.content);
        if let Some(v) = r.structured_content.as_ref().and_then(|s| {
            s.get("daemon")
                .and_then(|d| d.get("health_latency_ms"))
                .and_then(Value::as_f64)
        }) {
            probe.push(v);
        }
    }
    (lat, probe)
}

/// Latencies (ms) of `n` MCP pings (a request the server answers without any tool work).
async fn time_ping(client: &Client, n: usize) -> Vec<f64> {
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = client
            .send_request(ClientRequest::PingRequest(Default::default()))
            .await
            .unwrap();
        lat.push(ms(t.elapsed()));
        assert!(matches!(r, ServerResult::EmptyResult(_)), "ping: {r:?}");
    }
    lat
}

/// An account and `SAVED_TOKENS` saved tokens, made through the server's tools.
async fn prepare(mcp: &Mcp) {
    mcp.ok("bitrouter_account", json!({"action": "generate"}))
        .await;
    for i in 0..SAVED_TOKENS {
        mcp.ok(
            "bitrouter_keygen",
            json!({"exp": "30d", "name": format!("tok{i}")}),
        )
        .await;
    }
}

/// p50/p99 per operation over one transport.
#[derive(Default)]
struct ToolFigures {
    status: Stats,
    keys: Stats,
    keygen: Stats,
    ping: Stats,
    probe: Stats,
}

async fn tool_latency(client: &Client, pid: u32, port: Option<u16>) -> ToolFigures {
    let mut f = ToolFigures::default();
    for op in ops() {
        time_tool(client, op.tool, &op.args, WARMUP).await;
        let cpu = CpuMark::now(pid);
        let conns = ConnMark::now(port);
        let (lat, probe) = time_tool(client, op.tool, &op.args, CALLS).await;
        let cpu = cpu.per_call_us(pid, CALLS);
        let s = stats(lat);
        print_ms_extra(op.label, &s, Some(cpu), &conns.per_call(CALLS));
        match op.tool {
            "bitrouter_status" => {
                f.status = s;
                f.probe = stats(probe);
                println!(
                    "  {:<40} p50 {:>7.3} ms  p99 {:>7.3} ms  (the status tool's own /health probe, inside its latency)",
                    "  of which the daemon probe", f.probe.p50, f.probe.p99
                );
            }
            "bitrouter_keys" => f.keys = s,
            _ => f.keygen = s,
        }
    }
    time_ping(client, WARMUP).await;
    let cpu = CpuMark::now(pid);
    let conns = ConnMark::now(port);
    f.ping = stats(time_ping(client, CALLS).await);
    print_ms_extra(
        "ping (no tool: transport + rmcp floor)",
        &f.ping,
        Some(cpu.per_call_us(pid, CALLS)),
        &conns.per_call(CALLS),
    );
    f
}

// ---------------------------------------------------------------------------------------------
// Where the time goes
// ---------------------------------------------------------------------------------------------

/// A JSON-RPC-over-lines client with no rmcp on the client side.
struct RawStdio {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    next_id: u64,
}

impl RawStdio {
    async fn start(home: &TestHome, config: &Path) -> Self {
        let mut cmd = common::server_command(home, config, QUIET);
        cmd.args(["serve", "--stdio"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let mut raw = Self {
            stdin: child.stdin.take().unwrap(),
            lines: BufReader::new(child.stdout.take().unwrap()).lines(),
            _child: child,
            next_id: 0,
        };
        raw.request(
            "initialize",
            Some(json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"}
            })),
        )
        .await;
        raw.stdin
            .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
            .await
            .unwrap();
        raw
    }

    /// Sends one request and returns the response line.
    async fn request(&mut self, method: &str, params: Option<Value>) -> String {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(p) = params {
            msg["params"] = p;
        }
        let mut line = serde_json::to_string(&msg).unwrap();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        let want = format!("\"id\":{id}");
        loop {
            let l = self.lines.next_line().await.unwrap().expect("server open");
            if l.contains(&want) {
                return l;
            }
        }
    }

    /// Latencies (ms) of `n` requests, and the size of the last response line.
    async fn time(&mut self, method: &str, params: Option<Value>, n: usize) -> (Vec<f64>, usize) {
        let mut lat = Vec::with_capacity(n);
        let mut size = 0;
        for _ in 0..n {
            let p = params.clone();
            let t = Instant::now();
            let l = self.request(method, p).await;
            lat.push(ms(t.elapsed()));
            size = l.len();
            assert!(!l.contains("\"isError\":true"), "{method} failed: {l}");
        }
        (lat, size)
    }
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

/// Times `f` `n` times after a warm-up; milliseconds.
async fn time_async<F, Fut>(n: usize, mut f: F) -> Vec<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..WARMUP {
        f().await;
    }
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        lat.push(ms(t.elapsed()));
    }
    lat
}

/// rmcp client and our server in this process over `transport`; p50 of keys list and ping.
async fn in_process_pair<SR, SW, CR, CW>(
    state: &Arc<AppState>,
    server_io: (SR, SW),
    client_io: (CR, CW),
) -> (Stats, Stats)
where
    SR: tokio::io::AsyncRead + Unpin + Send + 'static,
    SW: tokio::io::AsyncWrite + Unpin + Send + 'static,
    CR: tokio::io::AsyncRead + Unpin + Send + 'static,
    CW: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let server = BitrouterServer::new(state.clone());
    let (server, client) = tokio::join!(server.serve(server_io), ().serve(client_io));
    let (server, client) = (server.unwrap(), client.unwrap());
    let args = json!({"action": "list"});
    time_tool(&client, "bitrouter_keys", &args, WARMUP).await;
    let keys = stats(time_tool(&client, "bitrouter_keys", &args, CALLS).await.0);
    time_ping(&client, WARMUP).await;
    let ping = stats(time_ping(&client, CALLS).await);
    let _ = client.cancel().await;
    let _ = server.cancel().await;
    (keys, ping)
}

/// The breakdown of one stdio call: handler alone, rmcp in one process over three transports,
/// the real server process with a minimal client, and with rmcp's client.
async fn breakdown(stdio_keys: &Stats, stdio_ping: &Stats, stdio_status: &Stats) {
    println!("\nwhere the time of one stdio call goes (no daemon)");
    let home = TestHome::new();
    home.bitrouter(&["account", "--generate-key"]);
    for i in 0..SAVED_TOKENS {
        home.bitrouter(&["keygen", "--exp", "30d", "--name", &format!("tok{i}")]);
    }
    let h = home.home();

    // 1. The tool functions alone.
    let keys = stats(
        time_async(CALLS, || async {
            let out = tools::keys::run(&h, tools::keys::KeysParams::default()).unwrap();
            std::hint::black_box(serde_json::to_value(&out).unwrap());
        })
        .await,
    );
    let keygen = stats(
        time_async(CALLS, || async {
            let p = tools::keygen::KeygenParams {
                exp: Some("1h".into()),
                ..Default::default()
            };
            let out = tools::keygen::run(&h, p).unwrap();
            std::hint::black_box(serde_json::to_value(&out).unwrap());
        })
        .await,
    );
    let config = PluginConfig::parse(&format!(
        "{{\"autoStart\": false, \"port\": {}}}",
        free_port()
    ))
    .unwrap();
    let shutdown = CancellationToken::new();
    let (state, task) = AppState::start(
        h.clone(),
        config,
        None,
        SupervisorOptions {
            binary: Some(bitrouter_bin()),
            ..Default::default()
        },
        shutdown.clone(),
    );
    let state = Arc::new(state);
    let status = stats(
        time_async(CALLS, || async {
            std::hint::black_box(serde_json::to_value(state.status().await).unwrap());
        })
        .await,
    );
    let daemon = state.plane.daemon_client();
    let probe = stats(
        time_async(CALLS, || async {
            std::hint::black_box(daemon.health().await);
        })
        .await,
    );
    print_us("handler only: tools::keys::run + to_value (list)", &keys);
    print_us(
        "handler only: tools::keygen::run + to_value (exp 1h)",
        &keygen,
    );
    print_us("handler only: AppState::status + to_value", &status);
    print_us(
        "  of which: /health probe of a closed port (reqwest)",
        &probe,
    );

    // 2. rmcp client and server in one process.
    let (c, s) = tokio::io::duplex(1 << 16);
    let (duplex_keys, duplex_ping) =
        in_process_pair(&state, tokio::io::split(s), tokio::io::split(c)).await;

    let (c2s_tx, c2s_rx) = tokio::net::unix::pipe::pipe().unwrap();
    let (s2c_tx, s2c_rx) = tokio::net::unix::pipe::pipe().unwrap();
    let (reactor_keys, reactor_ping) =
        in_process_pair(&state, (c2s_rx, s2c_tx), (s2c_rx, c2s_tx)).await;

    // The server side through the blocking thread pool, as tokio::io::stdin()/stdout() do.
    let (c2s_tx, c2s_rx) = tokio::net::unix::pipe::pipe().unwrap();
    let (s2c_tx, s2c_rx) = tokio::net::unix::pipe::pipe().unwrap();
    let server_in =
        tokio::fs::File::from_std(std::fs::File::from(c2s_rx.into_blocking_fd().unwrap()));
    let server_out =
        tokio::fs::File::from_std(std::fs::File::from(s2c_tx.into_blocking_fd().unwrap()));
    let (blocking_keys, blocking_ping) =
        in_process_pair(&state, (server_in, server_out), (s2c_rx, c2s_tx)).await;
    shutdown.cancel();
    let _ = task.await;

    print_us("rmcp in one process, tokio duplex: keys list", &duplex_keys);
    print_us("rmcp in one process, tokio duplex: ping", &duplex_ping);
    print_us(
        "rmcp in one process, OS pipes, reactor I/O: keys list",
        &reactor_keys,
    );
    print_us(
        "rmcp in one process, OS pipes, reactor I/O: ping",
        &reactor_ping,
    );
    print_us(
        "rmcp in one process, OS pipes, blocking-pool I/O: keys list",
        &blocking_keys,
    );
    print_us(
        "rmcp in one process, OS pipes, blocking-pool I/O: ping",
        &blocking_ping,
    );

    // 3. The real server process with a minimal line client (no rmcp on the client side).
    let cfg = home.write_config_as(
        "raw.json",
        &json!({"autoStart": false, "port": free_port()}),
    );
    let mut raw = RawStdio::start(&home, &cfg).await;
    let mut sizes = Vec::new();
    for (label, method, params) in [
        ("ping", "ping", None),
        (
            "keys list",
            "tools/call",
            Some(json!({"name": "bitrouter_keys", "arguments": {"action": "list"}})),
        ),
        (
            "keygen exp 1h",
            "tools/call",
            Some(json!({"name": "bitrouter_keygen", "arguments": {"exp": "1h"}})),
        ),
        (
            "status",
            "tools/call",
            Some(json!({"name": "bitrouter_status", "arguments": {}})),
        ),
    ] {
        raw.time(method, params.clone(), WARMUP).await;
        let (lat, size) = raw.time(method, params, CALLS).await;
        print_us(
            &format!("server process over stdio, raw JSON-RPC client: {label}"),
            &stats(lat),
        );
        sizes.push((label, size));
    }
    print_us(
        "server process over stdio, rmcp client: keys list",
        stdio_keys,
    );
    print_us("server process over stdio, rmcp client: ping", stdio_ping);
    print_us(
        "server process over stdio, rmcp client: status",
        stdio_status,
    );
    let sizes: Vec<String> = sizes.iter().map(|(l, s)| format!("{l} {s} B")).collect();
    println!("  response line sizes: {}", sizes.join(", "));
}

// ---------------------------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------------------------

/// A `bitrouter start`ed daemon in a test home; `bitrouter stop`ped (and killed) on drop.
struct CliDaemon<'a> {
    home: &'a TestHome,
}

impl Drop for CliDaemon<'_> {
    fn drop(&mut self) {
        let bh = self.home.bitrouter_home();
        let pid = std::fs::read_to_string(bh.join("run").join("bitrouter.pid")).ok();
        let _ = std::process::Command::new(bitrouter_bin())
            .arg("--home-dir")
            .arg(&bh)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(pid) = pid
            .as_deref()
            .map(str::trim)
            .and_then(|p| p.parse::<u32>().ok())
            && !common::process_gone(pid)
        {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// Latencies (ms) of `n` runs of `bitrouter --home-dir H <args>`, and the last stdout.
fn time_cli(bh: &Path, args: &[&str], n: usize) -> (Vec<f64>, String) {
    let mut lat = Vec::with_capacity(n);
    let mut stdout = String::new();
    for _ in 0..n {
        let t = Instant::now();
        let out = std::process::Command::new(bitrouter_bin())
            .arg("--home-dir")
            .arg(bh)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        lat.push(ms(t.elapsed()));
        assert!(
            out.status.success(),
            "bitrouter {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    (lat, stdout)
}

struct CliFigures {
    status: Stats,
    keys: Stats,
    keygen: Stats,
    /// The same, without runs over 1 s (see `STALL_MS`).
    status_fast: Stats,
    keys_fast: Stats,
    keygen_fast: Stats,
}

/// A CLI run this slow was held up by bitrouter's own update check (see BENCHMARKS.md).
const STALL_MS: f64 = 1000.0;

async fn cli() -> CliFigures {
    let home = TestHome::new();
    let bh: PathBuf = home.bitrouter_home();
    std::fs::create_dir_all(&bh).unwrap();
    let port = free_port();
    std::fs::write(
        bh.join("bitrouter.yaml"),
        format!("server:\n  listen: 127.0.0.1:{port}\n"),
    )
    .unwrap();
    home.bitrouter(&["start"]);
    let _daemon = CliDaemon { home: &home };
    common::wait_for_port(port, Duration::from_secs(30)).await;
    home.bitrouter(&["account", "--generate-key"]);
    for i in 0..SAVED_TOKENS {
        home.bitrouter(&["keygen", "--exp", "30d", "--name", &format!("tok{i}")]);
    }
    let mut figures = Vec::new();
    for args in [
        &["status"][..],
        &["keys", "--list"][..],
        &["keygen", "--exp", "1h"][..],
    ] {
        time_cli(&bh, args, CLI_WARMUP);
        let (lat, stdout) = time_cli(&bh, args, CLI_RUNS);
        let fast: Vec<f64> = lat.iter().copied().filter(|l| *l < STALL_MS).collect();
        let stalls = lat.len() - fast.len();
        let s = stats(lat);
        let f = stats(fast);
        print_ms(&format!("bitrouter {}", args.join(" ")), &s, None);
        println!(
            "    runs over {STALL_MS} ms: {stalls}/{CLI_RUNS}; without them p50 {:.3} ms  p99 {:.3} ms  max {:.2} ms",
            f.p50, f.p99, f.max
        );
        if args[0] == "status" {
            let line = stdout.lines().next().unwrap_or_default().to_string();
            println!("    (first line of its output: \"{line}\")");
        }
        figures.push((s, f));
    }
    CliFigures {
        status: figures[0].0,
        keys: figures[1].0,
        keygen: figures[2].0,
        status_fast: figures[0].1,
        keys_fast: figures[1].1,
        keygen_fast: figures[2].1,
    }
}

// ---------------------------------------------------------------------------------------------
// Throughput and RSS
// ---------------------------------------------------------------------------------------------

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
    let deadline = start + THROUGHPUT_RUN;
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

// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() {
    bitrouter_mcp::tls::ensure_crypto_provider();
    println!(
        "bitrouter-mcp {} MCP benchmark (bitrouter {}), {} cores; figures only, nothing asserted",
        env!("CARGO_PKG_VERSION"),
        bitrouter_mcp::PINNED_BITROUTER_VERSION,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 1. Tool latency, no daemon (autoStart false).
    println!(
        "\ntool-call latency, autoStart false (no daemon), {CALLS} calls each after {WARMUP} warm-up, rmcp client"
    );
    println!("stdio");
    let home = TestHome::new();
    let (mcp, stdio_pid) = stdio_server(&home, None).await;
    let stdio_rss_start = rss_split(stdio_pid);
    prepare(&mcp).await;
    let stdio = tool_latency(&mcp.client, stdio_pid, None).await;
    let stdio_rss_after = rss_mb(stdio_pid);
    mcp.close().await;

    println!("streamable HTTP (one session)");
    let home = TestHome::new();
    let mcp = Mcp::http_env(&home, None, QUIET).await;
    let http_pid = mcp.server_pid();
    let http_rss_start = rss_split(http_pid);
    prepare(&mcp).await;
    let url = http_url(http_pid);
    let port = url_port(&url);
    let http = tool_latency(&mcp.client, http_pid, Some(port)).await;
    let http_rss_after = rss_mb(http_pid);
    // The server alone, without rmcp's client: plain POSTs, each response read to its end. With
    // keep-alive every call waits ~40 ms (see BENCHMARKS.md), so fewer calls there.
    for (conn, fresh, n) in [
        ("keep-alive", false, RAW_KEEPALIVE_CALLS),
        ("new conn per call", true, CALLS),
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
            let cpu = CpuMark::now(http_pid);
            let conns = ConnMark::now(Some(port));
            let lat = raw.time(method, params, n).await;
            print_ms_extra(
                &format!("raw POSTs, {conn}: {what}"),
                &stats(lat),
                Some(cpu.per_call_us(http_pid, n)),
                &conns.per_call(n),
            );
        }
    }

    // 3 + 4. Throughput and RSS, on the same HTTP server.
    println!(
        "\nHTTP throughput: bitrouter_keys list, each session its own rmcp client, {} s per run; clients share the cores with the server",
        THROUGHPUT_RUN.as_secs()
    );
    let mut tput = Vec::new();
    let mut rss_after_runs = Vec::new();
    for (i, n) in SESSIONS.into_iter().chain([32; REPEATS_32]).enumerate() {
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
    mcp.close().await;

    println!("\nserver RSS (VmRSS of the bitrouter-mcp process; no daemon)");
    println!("  stdio, after start + initialize            {stdio_rss_start}");
    println!(
        "  stdio, after {} calls                     {stdio_rss_after:>6.1} MB",
        4 * (CALLS + WARMUP)
    );
    println!("  HTTP, after start + 1 session              {http_rss_start}");
    println!(
        "  HTTP, after {} calls, 1 session           {http_rss_after:>6.1} MB",
        4 * (CALLS + WARMUP)
    );
    support::summary("  HTTP, during the 32-session run", " MB", load_rss.clone());
    println!(
        "  HTTP, after each run (sessions closed)     {}",
        rss_after_runs.join(", ")
    );
    println!(
        "  HTTP, at the end                           {http_rss_end:>6.1} MB (anonymous {anon:.1} MB, file-backed {file:.1} MB), peak (VmHWM) {hwm:.1} MB, {threads} threads"
    );

    // 1b. Status with a managed, healthy daemon.
    println!(
        "\nbitrouter_status with a managed healthy daemon (autoStart true, real bitrouter {}), cached health",
        bitrouter_mcp::PINNED_BITROUTER_VERSION
    );
    let mut managed = Vec::new();
    for transport in ["stdio", "streamable HTTP"] {
        let home = TestHome::new();
        let cfg = home.write_config(&json!({"port": free_port()}));
        let (mcp, pid) = if transport == "stdio" {
            stdio_server(&home, Some(&cfg)).await
        } else {
            let m = Mcp::http_env(&home, Some(&cfg), QUIET).await;
            let pid = m.server_pid();
            (m, pid)
        };
        let s = mcp
            .wait_status("healthy", Duration::from_secs(60), |s| {
                s["daemon"]["state"] == "healthy"
            })
            .await;
        let daemon_pid = s["daemon"]["pid"].as_u64().unwrap_or(0) as u32;
        time_tool(&mcp.client, "bitrouter_status", &json!({}), WARMUP).await;
        let cpu = CpuMark::now(pid);
        let (lat, _) = time_tool(&mcp.client, "bitrouter_status", &json!({}), CALLS).await;
        let cpu = cpu.per_call_us(pid, CALLS);
        let st = stats(lat);
        print_ms(&format!("{transport}: bitrouter_status"), &st, Some(cpu));
        println!(
            "    server RSS {:.1} MB, daemon RSS {:.1} MB (separate process)",
            rss_mb(pid),
            rss_mb(daemon_pid)
        );
        managed.push(st);
        mcp.close().await;
    }

    // Breakdown.
    breakdown(&stdio.keys, &stdio.ping, &stdio.status).await;

    // 2. The CLI.
    println!(
        "\nthe same operations through the bitrouter {} CLI, one process per run, {CLI_RUNS} runs each after {CLI_WARMUP} warm-up (daemon running)",
        bitrouter_mcp::PINNED_BITROUTER_VERSION
    );
    let cli = cli().await;
    println!("  ratio CLI / MCP: p50 | p99 | p99 without CLI runs over {STALL_MS} ms");
    let rows = [
        (
            "status vs status, managed daemon",
            (cli.status, cli.status_fast),
            managed[0],
            managed[1],
        ),
        (
            "status vs status, no daemon (probe)",
            (cli.status, cli.status_fast),
            stdio.status,
            http.status,
        ),
        (
            "keys --list vs bitrouter_keys list",
            (cli.keys, cli.keys_fast),
            stdio.keys,
            http.keys,
        ),
        (
            "keygen --exp 1h vs bitrouter_keygen",
            (cli.keygen, cli.keygen_fast),
            stdio.keygen,
            http.keygen,
        ),
    ];
    for (label, (c, cf), s, h) in rows {
        println!(
            "  {label:<38} vs stdio {:>4.0}x | {:>6.0}x | {:>4.0}x    vs HTTP {:>4.0}x | {:>6.0}x | {:>4.0}x",
            c.p50 / s.p50,
            c.p99 / s.p99,
            cf.p99 / s.p99,
            c.p50 / h.p50,
            c.p99 / h.p99,
            cf.p99 / h.p99
        );
    }

    // Targets.
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
        .chain([stdio_rss_after, http_rss_after, hwm])
        .fold(0.0, f64::max);
    println!(
        "  {:<42} {max_rss:.1} MB <= {TARGET_RSS_MB} MB: {}",
        "server RSS, highest seen (incl. VmHWM)",
        verdict(max_rss, TARGET_RSS_MB, true)
    );
    println!("  (hook decision time: node openclaw-adapter/scripts/bench-hook.mjs)");
}
