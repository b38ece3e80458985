//! Where the time of one stdio tool call goes (BENCHMARKS.md §1, "Where the time goes"), layer by
//! layer, no daemon: the tool functions alone; rmcp client and server in one process over a tokio
//! duplex and over OS pipes (reactor I/O vs blocking-pool I/O, the way `tokio::io::stdin()`
//! works); the server process driven by a minimal JSON-RPC-lines client without rmcp; and the same
//! process with rmcp's client. Run with `cargo bench --bench breakdown` (`BENCH_QUICK=1`: a smoke
//! run); figures are printed, not asserted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod harness;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use bitrouter_mcp::routing::PluginConfig;
use bitrouter_mcp::server::{AppState, BitrouterServer};
use bitrouter_mcp::supervisor::SupervisorOptions;
use bitrouter_mcp::tools;
use harness::common::{self, TestHome, bitrouter_bin, free_port};
use harness::mcp::{QUIET, SAVED_TOKENS, Session, calls, time_ping, time_tool, warmup};
use harness::{Stats, ms, print_us, stats};
use rmcp::ServiceExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[tokio::main]
async fn main() {
    harness::begin("where the time of one stdio tool call goes");
    // The last layer first: the server process over stdio with rmcp's client, as `--bench
    // latency` measures it (its lines print here too).
    println!(
        "
server process over stdio, rmcp client (no daemon)"
    );
    let s = Session::stdio().await;
    s.prepare().await;
    let stdio = s.tool_latency().await;
    s.close().await;
    breakdown(&stdio.keys, &stdio.ping, &stdio.status).await;
}

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

/// Times `f` `n` times after a warm-up; milliseconds.
async fn time_async<F, Fut>(n: usize, mut f: F) -> Vec<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..warmup() {
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
    time_tool(&client, "bitrouter_keys", &args, warmup()).await;
    let keys = stats(time_tool(&client, "bitrouter_keys", &args, calls()).await.0);
    time_ping(&client, warmup()).await;
    let ping = stats(time_ping(&client, calls()).await);
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
        time_async(calls(), || async {
            let out = tools::keys::run(&h, tools::keys::KeysParams::default()).unwrap();
            std::hint::black_box(serde_json::to_value(&out).unwrap());
        })
        .await,
    );
    let keygen = stats(
        time_async(calls(), || async {
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
    let tasks = TaskTracker::new();
    let (state, supervised) = AppState::start(
        &tasks,
        h.clone(),
        config,
        None,
        "stdio".into(),
        SupervisorOptions {
            binary: Some(bitrouter_bin()),
            ..Default::default()
        },
        shutdown.clone(),
    );
    let state = Arc::new(state);
    let status = stats(
        time_async(calls(), || async {
            std::hint::black_box(serde_json::to_value(state.status().await).unwrap());
        })
        .await,
    );
    let daemon = state.plane.daemon_client();
    let probe = stats(
        time_async(calls(), || async {
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
    let _ = supervised.await;
    tasks.close();
    tasks.wait().await;
    state.ownership.withdraw();

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
        raw.time(method, params.clone(), warmup()).await;
        let (lat, size) = raw.time(method, params, calls()).await;
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
