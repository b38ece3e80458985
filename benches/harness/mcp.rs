//! The MCP measurements several benchmarks share: our server (stdio or streamable HTTP,
//! `autoStart: false` unless a config says otherwise) with one account and saved tokens, tool
//! calls and pings timed through rmcp's client, and `bitrouter_status` with a managed daemon.

use std::path::Path;
use std::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::model::{CallToolRequestParams, ClientRequest, ServerResult};
use rmcp::service::RunningService;
use serde_json::{Value, json};

use super::common::{Mcp, TestHome, free_port};
use super::procfs::{ConnMark, CpuMark, children, rss_mb};
use super::{Stats, ms, print_ms, print_ms_extra, scale, stats};

pub type Client = RunningService<RoleClient, ()>;

/// Server environment: the harness's quiet logs, rmcp's per-session lines included.
pub const QUIET: &[(&str, &str)] = &[("BITROUTER_MCP_LOG", "warn,rmcp=warn")];
/// Saved tokens in every home, so `keys list` has something to read and decode.
pub const SAVED_TOKENS: usize = 5;

/// Timed calls per operation (after [`warmup`] untimed ones).
pub fn calls() -> usize {
    scale(1000, 50)
}

pub fn warmup() -> usize {
    scale(100, 10)
}

/// Our server in a fresh home, and what the benchmarks read about it.
pub struct Session {
    pub home: TestHome,
    pub mcp: Mcp,
    pub pid: u32,
    /// The `/mcp` URL (streamable HTTP only).
    pub url: Option<String>,
}

impl Session {
    /// `bitrouter-mcp serve --stdio`, `autoStart: false` (no daemon).
    pub async fn stdio() -> Self {
        let home = TestHome::new();
        let (mcp, pid) = stdio_server(&home, None).await;
        Self {
            home,
            mcp,
            pid,
            url: None,
        }
    }

    /// `bitrouter-mcp serve --http`, `autoStart: false` (no daemon), one rmcp session.
    pub async fn http() -> Self {
        let home = TestHome::new();
        let mcp = Mcp::http_env(&home, None, QUIET).await;
        let pid = mcp.server_pid();
        let url = Some(http_url(pid));
        Self {
            home,
            mcp,
            pid,
            url,
        }
    }

    /// The HTTP server's port (None over stdio).
    pub fn port(&self) -> Option<u16> {
        self.url.as_deref().map(url_port)
    }

    /// An account and [`SAVED_TOKENS`] saved tokens, made through the server's tools.
    pub async fn prepare(&self) {
        self.mcp
            .ok("bitrouter_account", json!({"action": "generate"}))
            .await;
        for i in 0..SAVED_TOKENS {
            self.mcp
                .ok(
                    "bitrouter_keygen",
                    json!({"exp": "30d", "name": format!("tok{i}")}),
                )
                .await;
        }
    }

    /// [`tool_latency`] over this session.
    pub async fn tool_latency(&self) -> ToolFigures {
        tool_latency(&self.mcp.client, self.pid, self.port()).await
    }

    pub async fn close(self) {
        self.mcp.close().await;
    }
}

/// `bitrouter-mcp serve --stdio` through the harness, plus the server's pid.
pub async fn stdio_server(home: &TestHome, config: Option<&Path>) -> (Mcp, u32) {
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
pub fn http_url(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let i = args.iter().position(|a| a == "--http").unwrap();
    format!("http://{}/mcp", args[i + 1])
}

pub fn url_port(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("a port in the URL")
}

pub struct Op {
    pub label: &'static str,
    pub tool: &'static str,
    pub args: Value,
}

pub fn ops() -> Vec<Op> {
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

pub fn params(tool: &str, args: &Value) -> CallToolRequestParams {
    let mut p = CallToolRequestParams::new(tool.to_string());
    if let Value::Object(map) = args.clone() {
        p = p.with_arguments(map);
    }
    p
}

/// Latencies (ms) of `n` calls, and what each result says about the daemon probe.
pub async fn time_tool(
    client: &Client,
    tool: &str,
    args: &Value,
    n: usize,
) -> (Vec<f64>, Vec<f64>) {
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
pub async fn time_ping(client: &Client, n: usize) -> Vec<f64> {
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

/// p50/p99 per operation over one transport.
#[derive(Default)]
pub struct ToolFigures {
    pub status: Stats,
    pub keys: Stats,
    pub keygen: Stats,
    pub ping: Stats,
    pub probe: Stats,
}

/// Each of [`ops`] and a ping, [`warmup`] untimed then [`calls`] timed calls; prints a line each.
pub async fn tool_latency(client: &Client, pid: u32, port: Option<u16>) -> ToolFigures {
    let (calls, warmup) = (calls(), warmup());
    let mut f = ToolFigures::default();
    for op in ops() {
        time_tool(client, op.tool, &op.args, warmup).await;
        let cpu = CpuMark::now(pid);
        let conns = ConnMark::now(port);
        let (lat, probe) = time_tool(client, op.tool, &op.args, calls).await;
        let cpu = cpu.per_call_us(pid, calls);
        let s = stats(lat);
        print_ms_extra(op.label, &s, Some(cpu), &conns.per_call(calls));
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
    time_ping(client, warmup).await;
    let cpu = CpuMark::now(pid);
    let conns = ConnMark::now(port);
    f.ping = stats(time_ping(client, calls).await);
    print_ms_extra(
        "ping (no tool: transport + rmcp floor)",
        &f.ping,
        Some(cpu.per_call_us(pid, calls)),
        &conns.per_call(calls),
    );
    f
}

/// `bitrouter_status` with a managed, healthy daemon (autoStart true, the real daemon), over
/// stdio then streamable HTTP; prints a line each and the server's and daemon's RSS.
pub async fn managed_status() -> [Stats; 2] {
    println!(
        "\nbitrouter_status with a managed healthy daemon (autoStart true, real bitrouter {}), cached health",
        bitrouter_mcp::PINNED_BITROUTER_VERSION
    );
    let (calls, warmup) = (calls(), warmup());
    let mut managed = [Stats::default(); 2];
    for (i, transport) in ["stdio", "streamable HTTP"].into_iter().enumerate() {
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
        time_tool(&mcp.client, "bitrouter_status", &json!({}), warmup).await;
        let cpu = CpuMark::now(pid);
        let (lat, _) = time_tool(&mcp.client, "bitrouter_status", &json!({}), calls).await;
        let cpu = cpu.per_call_us(pid, calls);
        let st = stats(lat);
        print_ms(&format!("{transport}: bitrouter_status"), &st, Some(cpu));
        println!(
            "    server RSS {:.1} MB, daemon RSS {:.1} MB (separate process)",
            rss_mb(pid),
            rss_mb(daemon_pid)
        );
        managed[i] = st;
        mcp.close().await;
    }
    managed
}
