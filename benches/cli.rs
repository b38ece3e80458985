//! The same operations through the `bitrouter` 0.11.0 CLI (BENCHMARKS.md §2), the way the
//! original plugin ran them, against our MCP server: `bitrouter --home-dir H status | keys --list |
//! keygen --exp 1h`, one process per run, with a daemon started by `bitrouter start` in that home
//! (so `status` reports it running); then the ratios CLI / MCP over stdio and streamable HTTP. The
//! MCP figures are measured here as `--bench latency` measures them (their lines print too).
//! Run with `cargo bench --bench cli` (`BENCH_QUICK=1`: a smoke run); figures are printed, not
//! asserted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod harness;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use harness::common::{self, TestHome, bitrouter_bin, free_port};
use harness::mcp::{SAVED_TOKENS, Session, managed_status};
use harness::{Stats, ms, print_ms, scale, stats};

#[tokio::main]
async fn main() {
    harness::begin("the bitrouter CLI against the MCP server");
    println!("\nMCP, for the ratios: autoStart false (no daemon), rmcp client");
    println!("stdio");
    let s = Session::stdio().await;
    s.prepare().await;
    let stdio = s.tool_latency().await;
    s.close().await;
    println!("streamable HTTP (one session)");
    let s = Session::http().await;
    s.prepare().await;
    let http = s.tool_latency().await;
    s.close().await;
    let managed = managed_status().await;

    let (runs, warm) = (cli_runs(), cli_warmup());
    println!(
        "\nthe same operations through the bitrouter {} CLI, one process per run, {runs} runs each after {warm} warm-up (daemon running)",
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
}

/// Timed CLI runs per operation (after [`cli_warmup`] untimed ones).
fn cli_runs() -> usize {
    scale(50, 5)
}

fn cli_warmup() -> usize {
    scale(5, 1)
}

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
        time_cli(&bh, args, cli_warmup());
        let (lat, stdout) = time_cli(&bh, args, cli_runs());
        let fast: Vec<f64> = lat.iter().copied().filter(|l| *l < STALL_MS).collect();
        let stalls = lat.len() - fast.len();
        let s = stats(lat);
        let f = stats(fast);
        print_ms(&format!("bitrouter {}", args.join(" ")), &s, None);
        println!(
            "    runs over {STALL_MS} ms: {stalls}/{}; without them p50 {:.3} ms  p99 {:.3} ms  max {:.2} ms",
            cli_runs(),
            f.p50,
            f.p99,
            f.max
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
