//! Shared harness of the benchmarks (`mod harness;` atop each): the integration tests' harness
//! ([`common`]: temp homes, our server driven by rmcp's client, the real daemon, HTTPS fake
//! upstreams), figures (percentiles and the lines that print them), what /proc says about a
//! process ([`procfs`]), the MCP measurements several benchmarks share ([`mcp`]), and
//! `BENCH_QUICK=1`, which shortens every benchmark to a smoke run that still prints each figure.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

#[path = "../../tests/common/mod.rs"]
pub mod common;
pub mod mcp;
pub mod procfs;

use std::time::Duration;

/// Whether `BENCH_QUICK=1` (or any value but `0`) asks for a smoke run.
pub fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0")
}

/// `full` normally, `short` under `BENCH_QUICK=1`.
pub fn scale<T>(full: T, short: T) -> T {
    if quick() { short } else { full }
}

/// Every benchmark's first lines: the TLS provider installed before any HTTP client, and what
/// ran (versions, cores, quick or full) above `title`.
pub fn begin(title: &str) {
    bitrouter_mcp::tls::ensure_crypto_provider();
    println!(
        "bitrouter-mcp {} with bitrouter {}, {} cores{}; figures only, nothing asserted",
        env!("CARGO_PKG_VERSION"),
        bitrouter_mcp::PINNED_BITROUTER_VERSION,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if quick() {
            " (BENCH_QUICK: a smoke run, too few samples to quote)"
        } else {
            ""
        }
    );
    println!("{title}");
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints min / median / max of `v` (milliseconds or counts) under `name`.
pub fn summary(name: &str, unit: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        println!("{name:<46} no samples");
        return;
    }
    println!(
        "{name:<46} min {:>8.1}{unit}   median {:>8.1}{unit}   max {:>8.1}{unit}   (n={})",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1],
        v.len()
    );
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub p50: f64,
    pub p99: f64,
    pub mean: f64,
    pub max: f64,
    pub n: usize,
}

/// Nearest-rank percentile `q` of `v` (sorted here); 0 when empty.
pub fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}

/// Nearest-rank percentiles of `v` (any unit).
pub fn stats(mut v: Vec<f64>) -> Stats {
    if v.is_empty() {
        return Stats::default();
    }
    Stats {
        p50: percentile(&mut v, 0.50),
        p99: percentile(&mut v, 0.99),
        mean: v.iter().sum::<f64>() / v.len() as f64,
        max: v[v.len() - 1],
        n: v.len(),
    }
}

/// One latency line in milliseconds, with optional CPU time per call of server and client.
pub fn print_ms(name: &str, s: &Stats, cpu: Option<(f64, f64)>) {
    print_ms_extra(name, s, cpu, "");
}

pub fn print_ms_extra(name: &str, s: &Stats, cpu: Option<(f64, f64)>, extra: &str) {
    let cpu = cpu.map_or_else(String::new, |(server, client)| {
        format!("   cpu/call server {server:>5.0} us, client {client:>5.0} us")
    });
    println!(
        "  {name:<40} p50 {:>7.3} ms  p99 {:>7.3} ms  mean {:>7.3} ms  max {:>7.2} ms  (n={}){cpu}{extra}",
        s.p50, s.p99, s.mean, s.max, s.n
    );
}

/// One latency line in microseconds.
pub fn print_us(name: &str, s: &Stats) {
    println!(
        "  {name:<62} p50 {:>8.1} us  p99 {:>8.1} us  mean {:>8.1} us  (n={})",
        s.p50 * 1000.0,
        s.p99 * 1000.0,
        s.mean * 1000.0,
        s.n
    );
}

/// "met", or by how much a target was missed.
pub fn verdict(value: f64, target: f64, lower_is_better: bool) -> String {
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
