//! `bitrouter_usage` and `bitrouter://usage` on the real daemon's spend log: traffic through the
//! daemon with fake upstreams, a failover in the middle, direct `provider:model_id` requests, reads
//! while the daemon writes, a database held locked, a home where the daemon never ran, and a
//! corrupt database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::rig::{self, Rig};
use common::upstream::Mode;
use common::{Mcp, TestHome, chat};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e[key] == name)
        .unwrap_or_else(|| panic!("no {key}={name} in {list:#}"))
}

/// Polls `bitrouter_usage` until it counts `n` requests (the daemon logs a request after answering it).
async fn wait_requests(mcp: &Mcp, n: u64) -> Value {
    let start = Instant::now();
    loop {
        let u = mcp.ok("bitrouter_usage", json!({})).await;
        if u["totals"]["requests"] == n {
            return u;
        }
        assert!(
            start.elapsed() < WAIT,
            "usage never counted {n} requests: {u:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn usage_shows_what_the_fallback_served_and_counts_every_request_sent() {
    let Rig {
        home,
        mcp,
        upstreams: [a, _b],
        port,
        token,
    } = Rig::priority(["a", "b"]).start().await;
    rig::wait_active(&mcp, "smart", "pa", true).await;

    // Served by the first endpoint, while usage is read over and over: reads never make the
    // daemon's writes fail or get lost.
    let reader = async {
        for _ in 0..20 {
            mcp.ok("bitrouter_usage", json!({"recent": 5})).await;
        }
    };
    let traffic = async {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(chat(port, &token, "smart").await.0);
        }
        statuses
    };
    let ((), statuses) = tokio::join!(reader, traffic);
    assert_eq!(statuses, [200; 6]);
    wait_requests(&mcp, 6).await;

    // The first endpoint dies; the route moves to the fallback, which serves the next requests.
    a.set_mode(Mode::Fail500).await;
    rig::wait_active(&mcp, "smart", "pb", true).await;
    for _ in 0..4 {
        let (status, body) = chat(port, &token, "smart").await;
        assert_eq!(status, 200, "{body}");
    }
    // Direct traffic: one served by pb, one failing at the dead upstream.
    assert_eq!(chat(port, &token, "pb:direct-1").await.0, 200);
    assert_ne!(chat(port, &token, "pa:direct-2").await.0, 200);

    let u = wait_requests(&mcp, 12).await;
    assert_eq!(u["totals"]["errors"], 1, "{u:#}");
    assert_eq!(u["totals"]["fallback_requests"], 4, "{u:#}");

    let smart = find(&u["by_model"], "model", "smart");
    assert_eq!(smart["requests"], 10, "{u:#}");
    assert_eq!(smart["errors"], 0);
    assert_eq!(smart["fallback_requests"], 4);
    assert_eq!(smart["fallback_share"], 0.4);
    assert!(smart["latency_p50_ms"].is_u64() && smart["latency_p99_ms"].is_u64());

    let first = find(&u["by_endpoint"], "endpoint", "pa:m1");
    let fallback = find(&u["by_endpoint"], "endpoint", "pb:m2");
    assert_eq!(
        (first["requests"].as_u64(), first["fallback"].as_bool()),
        (Some(6), Some(false))
    );
    assert_eq!(
        (
            fallback["requests"].as_u64(),
            fallback["fallback"].as_bool()
        ),
        (Some(4), Some(true))
    );
    assert_eq!(fallback["models"], json!(["smart"]));
    // The upstreams report token usage, so the daemon counted tokens for every served request.
    let (out_first, out_fallback) = (
        first["output_tokens"].as_u64().unwrap(),
        fallback["output_tokens"].as_u64().unwrap(),
    );
    assert!(
        out_first > 0 && out_first % 6 == 0 && out_fallback == out_first / 6 * 4,
        "{u:#}"
    );
    assert!(u["totals"]["input_tokens"].as_u64().unwrap() > 0);

    let direct = &u["direct"];
    assert_eq!(
        (direct["requests"].as_u64(), direct["errors"].as_u64()),
        (Some(2), Some(1)),
        "{u:#}"
    );
    let pa = find(&u["by_provider"], "provider", "pa");
    assert_eq!(
        (pa["requests"].as_u64(), pa["errors"].as_u64()),
        (Some(7), Some(1))
    );

    // The latest requests, newest first, each with the endpoint that served it.
    let recent = u["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 12);
    let failed = &recent[0];
    assert_eq!(failed["endpoint"], "pa:direct-2", "{failed:#}");
    assert_eq!(failed["success"], false);
    assert!(failed["error_type"].is_string());
    assert!(
        failed.get("model").is_none(),
        "direct requests have no virtual model"
    );
    for r in &recent[2..6] {
        assert_eq!(
            (r["model"].as_str(), r["endpoint"].as_str()),
            (Some("smart"), Some("pb:m2"))
        );
        assert_eq!(r["fallback"], true);
    }
    assert_eq!(recent[6]["endpoint"], "pa:m1");
    assert_eq!(recent[6]["fallback"], false);

    // A window and a model filter.
    let only = mcp
        .ok(
            "bitrouter_usage",
            json!({"since": "10m", "model": "smart", "recent": 2}),
        )
        .await;
    assert_eq!(only["totals"]["requests"], 10);
    assert_eq!(only["recent"].as_array().unwrap().len(), 2);
    let none = mcp
        .ok(
            "bitrouter_usage",
            json!({"since": "2020-01-01T00:00:00Z", "until": "2020-01-02T00:00:00Z"}),
        )
        .await;
    assert_eq!(none["totals"]["requests"], 0);
    let e = mcp
        .err("bitrouter_usage", json!({"since": "last tuesday"}))
        .await;
    assert!(e.contains("`since`") && e.contains("RFC 3339"), "{e}");

    // The resource holds the same facts for the default window.
    let r = mcp.read_json("bitrouter://usage").await;
    assert_eq!(r["totals"], u["totals"]);
    assert_eq!(r["by_endpoint"], u["by_endpoint"]);

    // Another process holds the daemon's database locked: a clear error, not a hang or garbage;
    // once the lock is gone usage answers again.
    let db = home.home().daemon_db_file();
    let locker = rusqlite::Connection::open(&db).unwrap();
    locker.busy_timeout(Duration::from_secs(10)).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let start = Instant::now();
    let e = mcp.err("bitrouter_usage", json!({})).await;
    assert!(e.contains("locked") && e.contains("bitrouter.db"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(5), "bounded wait");
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    let again = mcp.ok("bitrouter_usage", json!({})).await;
    assert_eq!(again["totals"]["requests"], 12);
    mcp.close().await;
}

#[tokio::test]
async fn a_missing_database_is_a_note_and_a_corrupt_one_a_clear_error() {
    let home = TestHome::new();
    let mcp = Mcp::stdio(&home, None).await;
    let u = mcp.ok("bitrouter_usage", json!({})).await;
    assert_eq!(u["totals"]["requests"], 0);
    assert!(u["recent"].as_array().unwrap().is_empty());
    let note = u["note"].as_str().unwrap();
    assert!(note.contains("does not exist"), "{note}");
    let db = home.home().daemon_db_file();
    assert!(
        !db.exists(),
        "reading usage never creates the daemon's database"
    );
    let r = mcp.read_json("bitrouter://usage").await;
    assert_eq!(r["note"], u["note"]);

    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(&db, b"this is not a database, it was overwritten by mistake............................................").unwrap();
    let e = mcp.err("bitrouter_usage", json!({})).await;
    assert!(e.contains("not an sqlite database"), "{e}");
    mcp.close().await;
}
