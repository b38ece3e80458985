//! Config changes while running: new routes go live without a daemon restart, a port change
//! restarts the daemon on the new port, a bad edit is refused with the reason in status while the
//! old config keeps serving, and new provider keys from `auth login` reach the daemon.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::upstream::Upstream;
use common::{Mcp, TestHome, chat, free_port};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn base(up: &Upstream, port: u16) -> Value {
    json!({
        "port": port,
        "healthCheckIntervalMs": 300,
        "providers": {"pa": {"derives": "openai", "apiBase": up.api_base(), "apiKey": "${PA_KEY}"}},
        "models": {"smart": {"endpoints": [{"provider": "pa", "modelId": "m1"}]}}
    })
}

async fn start(home: &TestHome, cfg: &std::path::Path) -> (Mcp, String, u32) {
    let mcp = Mcp::stdio_env(home, Some(cfg), &[("PA_KEY", "pa-key-from-env")]).await;
    let s = mcp.wait_healthy().await;
    let token = mcp.api_token().await;
    (mcp, token, s["daemon"]["pid"].as_u64().unwrap() as u32)
}

/// Rewrites the config file; bumps its mtime past the watcher's last look.
fn rewrite(path: &std::path::Path, v: &Value) {
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

#[tokio::test]
async fn a_new_model_goes_live_without_a_restart() {
    let home = TestHome::new();
    let up = Upstream::start("a").await;
    let port = free_port();
    let mut cfg = base(&up, port);
    let path = home.write_config(&cfg);
    let (mcp, token, pid) = start(&home, &path).await;

    cfg["models"]["extra"] = json!({"endpoints": [{"provider": "pa", "modelId": "m-extra"}]});
    rewrite(&path, &cfg);
    let start = std::time::Instant::now();
    loop {
        let (status, _) = chat(port, &token, "extra").await;
        if status == 200 {
            break;
        }
        assert!(start.elapsed() < WAIT, "new model never became routable");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(up.count("m-extra"), 1);
    let s = mcp.ok("bitrouter_status", json!({})).await;
    assert_eq!(
        s["daemon"]["pid"].as_u64(),
        Some(pid.into()),
        "no restart for a route change"
    );
    assert_eq!(s["daemon"]["state"], "healthy");
    let names: Vec<&str> = s["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["extra", "smart"]);
    assert!(
        std::fs::read_to_string(home.home().daemon_config_file())
            .unwrap()
            .contains("m-extra")
    );
    // The key came from the server's environment through `${PA_KEY}`.
    assert_eq!(
        up.seen()[0].authorization.as_deref(),
        Some("Bearer pa-key-from-env")
    );
    mcp.close().await;
}

#[tokio::test]
async fn a_port_change_restarts_on_the_new_port_and_a_bad_edit_is_refused() {
    let home = TestHome::new();
    let up = Upstream::start("a").await;
    let port = free_port();
    let mut cfg = base(&up, port);
    let path = home.write_config(&cfg);
    let (mcp, token, _) = start(&home, &path).await;

    // A typo: refused, named, and the running daemon is untouched.
    let mut bad = cfg.clone();
    bad["models"]["smart"]["endpoints"][0]["provider"] = json!("pz");
    rewrite(&path, &bad);
    let s = mcp
        .wait_status("config error", WAIT, |s| s["config_error"].is_string())
        .await;
    let err = s["config_error"].as_str().unwrap();
    assert!(
        err.contains("models.smart.endpoints[0].provider: unknown provider \"pz\""),
        "{err}"
    );
    let (code, body) = chat(port, &token, "smart").await;
    assert_eq!(
        code,
        200,
        "{body} {:#}",
        mcp.ok("bitrouter_status", json!({})).await
    );

    let new_port = free_port();
    cfg["port"] = json!(new_port);
    rewrite(&path, &cfg);
    let s = mcp
        .wait_status("healthy on the new port", WAIT, |s| {
            s["daemon"]["state"] == "healthy" && s["listen"] == format!("127.0.0.1:{new_port}")
        })
        .await;
    assert!(s["config_error"].is_null());
    assert_eq!(chat(new_port, &token, "smart").await.0, 200);
    assert_eq!(
        chat(port, &token, "smart").await.0,
        0,
        "nothing left on the old port"
    );
    mcp.close().await;
}

#[tokio::test]
async fn keys_saved_by_auth_login_reach_the_running_daemon() {
    let home = TestHome::new();
    let up = Upstream::start("a").await;
    let port = free_port();
    // The provider's key comes from .env (no literal, no process env).
    let cfg = json!({
        "port": port,
        "healthCheckIntervalMs": 300,
        "providers": {"pa": {"derives": "openai", "apiBase": up.api_base(), "envPrefix": "PAX"}},
        "models": {"smart": {"endpoints": [{"provider": "pa", "modelId": "m1"}]}}
    });
    let path = home.write_config(&cfg);
    let (mcp, token, pid) = start(&home, &path).await;
    let s = mcp.ok("bitrouter_status", json!({})).await;
    let pa = s["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pa")
        .unwrap();
    assert_eq!(pa["has_credentials"], false);

    let (ok, said) = common::auth_login(&home, "# keys\nPAX_API_KEY=pax-secret-991\n");
    assert!(ok, "{said}");
    assert!(
        said.contains("PAX_API_KEY") && !said.contains("pax-secret-991"),
        "{said}"
    );

    let s = mcp
        .wait_status("restarted with the new key", WAIT, |s| {
            s["daemon"]["state"] == "healthy" && s["daemon"]["pid"].as_u64() != Some(pid.into())
        })
        .await;
    let pa = s["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pa")
        .unwrap();
    assert_eq!(pa["has_credentials"], true);
    assert_eq!(pa["credential"], "env PAX_API_KEY");
    assert!(!s.to_string().contains("pax-secret-991"));
    let (code, body) = chat(port, &token, "smart").await;
    assert_eq!(
        code,
        200,
        "{body} {:#}",
        mcp.ok("bitrouter_status", json!({})).await
    );
    assert_eq!(
        up.seen().last().unwrap().authorization.as_deref(),
        Some("Bearer pax-secret-991")
    );
    mcp.close().await;
}
