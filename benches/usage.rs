//! `bitrouter_usage` over a large spend log: 100,000 requests of BitRouter 0.11.0's `spend_logs`
//! schema, all inside the default 24 h window (the worst case: every row is aggregated). Run with
//! `cargo bench --bench usage` (`BENCH_QUICK=1`: fewer calls, the same 100,000 rows);
//! figures are printed, not asserted.
//!
//! - cold: a fresh mirror reads all rows (what the first call after a server start costs);
//! - warm: one mirror across calls, 10 new rows logged between calls (as a live daemon would),
//!   so each call reads the new rows and aggregates all 100,000 in memory;
//! - the same call through the MCP server over stdio (JSON encoding and transport included);
//! - for comparison, one `GROUP BY` over the table in sqlite, which is what the daemon's write
//!   lock would wait behind on every call without the mirror;
//! - a writer committing a row every 20 ms while cold reads run: its longest commit is how long our
//!   reads can hold the daemon up (rollback journal: readers block a committing writer).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bitrouter_mcp::home::Home;
use bitrouter_mcp::routing::PluginConfig;
use bitrouter_mcp::spend_log::SharedMirror;
use bitrouter_mcp::tools::usage::{self, UsageParams};
use harness::common::{Mcp, TestHome};
use harness::{ms, percentile as pct, scale};
use rusqlite::Connection;
use serde_json::json;

const ROWS: usize = 100_000;
const TARGET_P50_MS: f64 = 50.0;
/// The concurrent writer's pace: 50 requests/s logged, well above an agent's traffic.
const WRITE_EVERY: Duration = Duration::from_millis(20);

/// `spend_logs` exactly as BitRouter 0.11.0's migrations create it.
const SCHEMA: &str = r#"CREATE TABLE "spend_logs" ( "id" uuid_text NOT NULL PRIMARY KEY, "account_id" varchar NULL,
 "model" varchar NOT NULL, "provider" varchar NOT NULL, "input_tokens" integer NOT NULL,
 "output_tokens" integer NOT NULL, "cost" double NOT NULL, "latency_ms" bigint NOT NULL,
 "success" boolean NOT NULL, "error_type" varchar NULL, "created_at" timestamp_text NOT NULL,
 "session_id" uuid_text NULL );
CREATE INDEX "idx_spend_logs_account_created" ON "spend_logs" ("account_id", "created_at");
CREATE INDEX "idx_spend_logs_session_id" ON "spend_logs" ("session_id");"#;

const ENDPOINTS: [(&str, &str); 7] = [
    ("openai", "gpt-4o"),
    ("anthropic", "claude-sonnet-4-20250514"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-3.5-haiku"),
    ("google", "gemini-2.0-flash"),
    ("openrouter", "meta-llama/llama-3.3-70b"),
    ("openai", "o3-mini"),
];

fn config() -> PluginConfig {
    PluginConfig::parse(
        r#"{"models": {
            "smart": {"strategy": "priority", "endpoints": [
                {"provider": "openai", "modelId": "gpt-4o"},
                {"provider": "anthropic", "modelId": "claude-sonnet-4-20250514"}]},
            "fast": {"strategy": "load_balance", "endpoints": [
                {"provider": "openai", "modelId": "gpt-4o-mini"},
                {"provider": "anthropic", "modelId": "claude-3.5-haiku"}]},
            "cheap": {"strategy": "priority", "endpoints": [
                {"provider": "google", "modelId": "gemini-2.0-flash"},
                {"provider": "openrouter", "modelId": "meta-llama/llama-3.3-70b"}]}}}"#,
    )
    .unwrap()
}

/// xorshift64: deterministic rows without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn insert_rows(conn: &Connection, rng: &mut Rng, first: usize, n: usize, span_ms: i64) {
    let now = usage::now_ms();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut stmt = tx
            .prepare("INSERT INTO spend_logs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL)")
            .unwrap();
        for i in 0..n {
            let r = rng.next();
            let (provider, model) = ENDPOINTS[(r % ENDPOINTS.len() as u64) as usize];
            let ok = !r.is_multiple_of(20);
            // Oldest first, like a log: row i of n sits (n - i) / n of the span ago.
            let at = now - span_ms * (n - i) as i64 / n as i64;
            let created = chrono::DateTime::from_timestamp_millis(at)
                .unwrap()
                .naive_utc()
                .format("%Y-%m-%d %H:%M:%S%.f")
                .to_string();
            let input = if ok { 200 + (r >> 8) % 4000 } else { 0 };
            let output = if ok { 20 + (r >> 20) % 800 } else { 0 };
            stmt.execute(rusqlite::params![
                // sqlx writes a UUID as a 16-byte blob.
                [(first + i) as u64, r].map(u64::to_be_bytes).concat(),
                format!("acct-{}", r % 3),
                model,
                provider,
                input as i64,
                output as i64,
                (input as f64 * 2.5 + output as f64 * 10.0) / 1e6,
                (50 + (r >> 32) % 3000) as i64,
                ok,
                if ok { None } else { Some("Provider") },
                created,
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

#[tokio::main]
async fn main() {
    harness::begin("bitrouter_usage over a large spend log");
    // Calls per figure: the whole log stays (every figure reads 100,000 rows), fewer calls.
    let (warm_calls, mcp_calls, cold_runs) = (scale(200, 20), scale(100, 10), scale(5, 2));
    let test_home = TestHome::new();
    let home = Home::new(test_home.data_dir());
    std::fs::create_dir_all(home.bitrouter_home()).unwrap();
    let db = home.daemon_db_file();
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let seed = Instant::now();
    insert_rows(&conn, &mut rng, 0, ROWS, 23 * 3600 * 1000);
    println!(
        "seeded {ROWS} rows in {:.1} s; database {:.1} MB",
        seed.elapsed().as_secs_f64(),
        std::fs::metadata(&db).unwrap().len() as f64 / 1e6
    );
    let config = config();
    let call = |mirror: &SharedMirror| {
        usage::run(
            &home,
            &config,
            mirror,
            UsageParams::default(),
            usage::now_ms(),
        )
        .unwrap()
    };

    let mut cold = Vec::new();
    for _ in 0..cold_runs {
        let mirror = SharedMirror::default();
        let t = Instant::now();
        let out = call(&mirror);
        cold.push(ms(t.elapsed()));
        assert_eq!(out.totals.requests as usize, ROWS);
    }
    harness::summary("cold: first call, reads 100k rows", " ms", cold);

    let mirror = SharedMirror::default();
    call(&mirror);
    let mut warm = Vec::new();
    let mut next = ROWS;
    for _ in 0..warm_calls {
        insert_rows(&conn, &mut rng, next, 10, 1);
        next += 10;
        let t = Instant::now();
        let out = call(&mirror);
        warm.push(ms(t.elapsed()));
        assert_eq!(out.totals.requests as usize, next);
    }
    let (p50, p99) = (pct(&mut warm, 0.5), pct(&mut warm, 0.99));
    harness::summary("warm: 10 new rows per call, 100k aggregated", " ms", warm);
    println!(
        "warm p50 {p50:.2} ms, p99 {p99:.2} ms (target p50 <= {TARGET_P50_MS} ms: {})",
        if p50 <= TARGET_P50_MS {
            "met"
        } else {
            "MISSED"
        }
    );

    let mut group = Vec::new();
    for _ in 0..cold_runs {
        let t = Instant::now();
        let n: i64 = conn
            .prepare(
                "SELECT model, provider, count(*), sum(input_tokens), sum(output_tokens), sum(cost), \
                 sum(success = 0) FROM spend_logs WHERE created_at >= ?1 GROUP BY model, provider",
            )
            .unwrap()
            .query_map(["2000-01-01 00:00:00"], |_| Ok(()))
            .unwrap()
            .count() as i64;
        group.push(ms(t.elapsed()));
        assert!(n > 0);
    }
    harness::summary("sqlite GROUP BY (no percentiles), for scale", " ms", group);

    // A writer committing while cold reads run: how long do our reads hold it up? First alone,
    // for its own commit time (a rollback-journal commit is several fsyncs).
    let writer = |seed: u64| {
        let db = db.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let conn = Connection::open(&db).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            let mut rng = Rng(seed);
            let mut waits = Vec::new();
            let mut i = (seed as usize) * ROWS;
            while !flag.load(Ordering::Relaxed) {
                let t = Instant::now();
                insert_rows(&conn, &mut rng, i, 1, 1);
                waits.push(ms(t.elapsed()));
                i += 1;
                std::thread::sleep(WRITE_EVERY);
            }
            waits
        });
        (stop, handle)
    };
    let (stop, alone) = writer(5);
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let mut alone = alone.join().unwrap();
    println!(
        "writer alone: {} commits, p50 {:.2} ms, max {:.2} ms",
        alone.len(),
        pct(&mut alone, 0.5),
        alone.iter().cloned().fold(0.0, f64::max)
    );
    let (stop, writer) = writer(7);
    let mut during = Vec::new();
    let mut locked = 0;
    for _ in 0..cold_runs {
        let t = Instant::now();
        match usage::run(
            &home,
            &config,
            &SharedMirror::default(),
            UsageParams::default(),
            usage::now_ms(),
        ) {
            Ok(_) => during.push(ms(t.elapsed())),
            Err(_) => locked += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut waits = writer.join().unwrap();
    let max = waits.iter().cloned().fold(0.0, f64::max);
    println!(
        "writer (1 commit / {WRITE_EVERY:?}) during {cold_runs} cold reads: {} commits, p50 {:.2} ms, max {max:.2} ms, none failed",
        waits.len(),
        pct(&mut waits, 0.5)
    );
    harness::summary("cold reads while the writer commits", " ms", during);
    println!("cold reads that gave up on the lock (> 1 s): {locked}");

    // Through the MCP server over stdio.
    drop(conn);
    let mcp = Mcp::stdio(&test_home, None).await;
    mcp.ok("bitrouter_usage", json!({})).await;
    let mut over_mcp = Vec::new();
    for _ in 0..mcp_calls {
        let t = Instant::now();
        let u = mcp.ok("bitrouter_usage", json!({})).await;
        over_mcp.push(ms(t.elapsed()));
        assert!(u["totals"]["requests"].as_u64().unwrap() as usize >= ROWS);
    }
    let bytes = serde_json::to_string(&mcp.ok("bitrouter_usage", json!({})).await)
        .unwrap()
        .len();
    harness::summary("MCP stdio: bitrouter_usage, warm", " ms", over_mcp);
    println!("structured result: {bytes} bytes");
    mcp.close().await;
}
