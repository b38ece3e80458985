//! Route integrity and fast failure detection on the real daemon: foreign routes planted with an
//! api-scope token are reverted and reported, routes come back before a restarted daemon is
//! reported healthy, steady traffic loses at most a request or two when an upstream dies, and
//! subscribers hear about route changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// `resources/subscribe` is the legacy (2025-11-25) mechanism, which is what clients use today.
#![allow(deprecated)]

mod common;

use std::time::{Duration, Instant};

use common::upstream::{Mode, Upstream};
use common::{Mcp, TestHome, chat, free_port, kill};
use rmcp::model::{ResourceUpdatedNotificationParam, SubscribeRequestParams};
use rmcp::service::NotificationContext;
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ClientServiceExt, RoleClient, ServiceExt};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const INTERVAL_MS: u64 = 400;

fn config(
    home: &TestHome,
    a: &Upstream,
    b: &Upstream,
    port: u16,
    extra: Value,
) -> std::path::PathBuf {
    let mut cfg = json!({
        "port": port,
        "healthCheckIntervalMs": INTERVAL_MS,
        "metricsPollMs": 100,
        "providers": {
            "pa": {"derives": "openai", "apiBase": a.api_base(), "apiKey": "ka-123456"},
            "pb": {"derives": "openai", "apiBase": b.api_base(), "apiKey": "kb-123456"}
        },
        "models": {"smart": {"strategy": "priority", "endpoints": [
            {"provider": "pa", "modelId": "m1"}, {"provider": "pb", "modelId": "m2"}]}}
    });
    if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
        c.extend(e);
    }
    home.write_config(&cfg)
}

async fn admin_routes(port: u16, token: &str) -> Vec<Value> {
    let r: Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/admin/routes"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["routes"].as_array().unwrap().clone()
}

async fn plant(port: u16, token: &str, model: &str, provider: &str, model_id: &str) {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/admin/routes"))
        .bearer_auth(token)
        .json(&json!({"model": model, "strategy": "priority",
                      "endpoints": [{"provider": provider, "model_id": model_id}]}))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "the daemon accepts an api-scope token on /admin"
    );
}

fn route<'a>(routes: &'a [Value], model: &str) -> Option<&'a Value> {
    routes.iter().find(|r| r["model"] == model)
}

#[tokio::test]
async fn foreign_routes_are_reverted_and_reported() {
    let home = TestHome::new();
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let port = free_port();
    let mcp = Mcp::stdio(&home, Some(&config(&home, &a, &b, port, json!({})))).await;
    mcp.wait_healthy().await;
    let token = mcp.api_token().await;

    // An agent's api token hijacks `smart` and adds a model nobody configured.
    plant(port, &token, "smart", "pb", "hijacked").await;
    plant(port, &token, "rogue", "pb", "x").await;
    let planted = Instant::now();
    let status = mcp
        .wait_status("foreign changes", WAIT, |s| {
            s["foreign_route_changes"]
                .as_array()
                .is_some_and(|c| c.len() >= 2)
        })
        .await;
    let reverted_after = planted.elapsed();
    let changes = status["foreign_route_changes"].as_array().unwrap();
    let smart = changes.iter().find(|c| c["model"] == "smart").unwrap();
    assert_eq!(smart["action"], "reverted");
    assert!(
        smart["found"].as_str().unwrap().contains("pb:hijacked"),
        "{smart}"
    );
    let rogue = changes.iter().find(|c| c["model"] == "rogue").unwrap();
    assert_eq!(rogue["action"], "reported");
    assert!(
        reverted_after < Duration::from_millis(INTERVAL_MS * 2 + 1000),
        "reverted within about one health interval: {reverted_after:?}"
    );

    let live = admin_routes(port, &token).await;
    let smart = route(&live, "smart").unwrap();
    assert_eq!(
        smart["endpoints"][0]["provider"], "pa",
        "ours again: {smart}"
    );
    assert!(
        route(&live, "rogue").is_some(),
        "unconfigured names are only reported"
    );
    let (status, body) = chat(port, &token, "smart").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(a.count("m1"), 1);
    assert_eq!(b.count("hijacked"), 0);
    let routes = mcp.read_json("bitrouter://routes").await;
    assert_eq!(routes["foreign_changes"].as_array().unwrap().len(), 2);
    // Reported once, not on every tick.
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS * 3)).await;
    let later = mcp.ok("bitrouter_status", json!({})).await;
    assert_eq!(later["foreign_route_changes"].as_array().unwrap().len(), 2);
    mcp.close().await;
}

#[tokio::test]
async fn enforce_routes_removes_unconfigured_dynamic_routes() {
    let home = TestHome::new();
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let port = free_port();
    let cfg = config(&home, &a, &b, port, json!({"enforceRoutes": true}));
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    mcp.wait_healthy().await;
    let token = mcp.api_token().await;
    plant(port, &token, "rogue", "pb", "x").await;
    let s = mcp
        .wait_status("removed", WAIT, |s| {
            s["foreign_route_changes"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["action"] == "removed"))
        })
        .await;
    assert_eq!(s["foreign_route_changes"][0]["model"], "rogue");
    assert!(route(&admin_routes(port, &token).await, "rogue").is_none());
    mcp.close().await;
}

#[tokio::test]
async fn routes_are_back_before_a_restarted_daemon_is_reported_healthy() {
    let home = TestHome::new();
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let port = free_port();
    let mcp = Mcp::stdio(&home, Some(&config(&home, &a, &b, port, json!({})))).await;
    mcp.wait_healthy().await;
    let token = mcp.api_token().await;
    // The first endpoint is down: the live route must point at the second.
    a.set_mode(Mode::Fail500).await;
    let start = Instant::now();
    loop {
        let r = mcp.read_json("bitrouter://routes").await;
        if r["models"][0]["endpoints"][1]["active"] == true {
            break;
        }
        assert!(start.elapsed() < WAIT, "{r:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = mcp.ok("bitrouter_status", json!({})).await;
    let pid = s["daemon"]["pid"].as_u64().unwrap() as u32;
    kill(pid, "KILL");
    // Poll as fast as a client would; the first `healthy` must already carry our route (the
    // daemon's config route alone would send to the failing first endpoint).
    let start = Instant::now();
    loop {
        let s = mcp.ok("bitrouter_status", json!({})).await;
        if s["daemon"]["state"] == "healthy" && s["daemon"]["pid"].as_u64() != Some(pid.into()) {
            break;
        }
        assert!(start.elapsed() < WAIT, "{s:#}");
    }
    let (status, body) = chat(port, &token, "smart").await;
    assert_eq!(status, 200, "first request after restart: {body}");
    assert!(body.contains("hello from b"), "{body}");
    assert_eq!(a.count("m1"), 0);
    mcp.close().await;
}

#[tokio::test]
async fn steady_traffic_loses_at_most_two_requests_when_the_first_upstream_dies() {
    let home = TestHome::new();
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let port = free_port();
    // Probes rarely (10 s): any quick switch comes from the traffic counters.
    let cfg = config(&home, &a, &b, port, json!({"healthCheckIntervalMs": 10000}));
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    mcp.wait_healthy().await;
    let token = mcp.api_token().await;
    let mut failed = 0;
    let mut ok_after = 0;
    for i in 0..40 {
        if i == 10 {
            a.set_mode(Mode::Refuse).await;
        }
        let (status, _) = chat(port, &token, "smart").await;
        if status == 200 {
            if i > 10 {
                ok_after += 1;
            }
        } else {
            failed += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failed >= 1, "the death was noticed through real traffic");
    assert!(failed <= 2, "{failed} requests failed before the switch");
    assert!(ok_after >= 27, "{ok_after}");
    let metrics = mcp.read_json("bitrouter://metrics").await;
    let pa = metrics["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == "pa:m1")
        .unwrap();
    assert_eq!(pa["passive_failures"], 1, "{metrics:#}");
    mcp.close().await;
}

#[derive(Clone)]
struct Recorder(tokio::sync::mpsc::UnboundedSender<String>);

impl ClientHandler for Recorder {
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(params.uri);
    }
}

#[tokio::test]
async fn subscribers_hear_when_the_route_table_changes() {
    let home = TestHome::new();
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let cfg = config(&home, &a, &b, free_port(), json!({}));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut cmd = common::server_command(&home, &cfg, &[]);
    cmd.args(["serve", "--stdio"]);
    let client = Recorder(tx)
        .serve(TokioChildProcess::new(cmd).unwrap())
        .await
        .unwrap();
    client
        .subscribe(SubscribeRequestParams::new("bitrouter://routes"))
        .await
        .unwrap();
    let refused = client
        .subscribe(SubscribeRequestParams::new("bitrouter://metrics"))
        .await;
    assert!(refused.is_err(), "only the route table is subscribable");
    // Daemon start + routes applied is one change; the first endpoint failing is another.
    let first = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, "bitrouter://routes");
    while rx.try_recv().is_ok() {}
    a.set_mode(Mode::Fail500).await;
    let start = Instant::now();
    loop {
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        let table = client
            .read_resource(rmcp::model::ReadResourceRequestParams::new(
                "bitrouter://routes",
            ))
            .await
            .unwrap();
        let text = match &table.contents[0] {
            rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
            _ => panic!(),
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        if v["models"][0]["endpoints"][1]["active"] == true {
            break;
        }
        assert!(start.elapsed() < WAIT);
    }
    let _ = client.cancel().await;
}

/// The same over protocol 2026-07-28, where subscriptions are `subscriptions/listen` streams.
#[tokio::test]
async fn listen_streams_route_table_updates_on_the_modern_protocol() {
    let home = TestHome::new();
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let cfg = config(&home, &a, &b, free_port(), json!({}));
    let mut cmd = common::server_command(&home, &cfg, &[]);
    cmd.args(["serve", "--stdio"]);
    let client = ()
        .serve_with_lifecycle(
            TokioChildProcess::new(cmd).unwrap(),
            rmcp::ClientLifecycleMode::Discover {
                preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let mut updates = client
        .listen(
            rmcp::model::SubscriptionFilter::builder()
                .resource_subscription("bitrouter://routes")
                .build(),
        )
        .await
        .unwrap();
    // The daemon coming up with our routes is the first change.
    let first = tokio::time::timeout(WAIT, updates.next())
        .await
        .expect("an update within the wait")
        .unwrap()
        .expect("the stream stays open");
    let rmcp::model::ServerNotification::ResourceUpdatedNotification(update) = first else {
        panic!("expected a resource update, got {first:?}");
    };
    assert_eq!(update.params.uri, "bitrouter://routes");
    a.set_mode(Mode::Fail500).await;
    let start = Instant::now();
    loop {
        tokio::time::timeout(WAIT, updates.next())
            .await
            .expect("updates keep coming while the route changes")
            .unwrap()
            .expect("the stream stays open");
        let table = client
            .read_resource(rmcp::model::ReadResourceRequestParams::new(
                "bitrouter://routes",
            ))
            .await
            .unwrap();
        let rmcp::model::ResourceContents::TextResourceContents { text, .. } = &table.contents[0]
        else {
            panic!("text contents expected");
        };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        if v["models"][0]["endpoints"][1]["active"] == true {
            break;
        }
        assert!(start.elapsed() < WAIT, "no failover seen: {v:#}");
    }
    let _ = client.cancel().await;
}
