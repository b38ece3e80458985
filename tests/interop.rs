//! Interop with the real `bitrouter` 0.11.0: accounts and tokens are shared with its CLI in both
//! directions, and the daemon accepts the tokens we mint (and refuses expired or out-of-allowlist
//! ones) on a chat completion proxied to a fake upstream on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::upstream::Upstream;
use common::{Daemon, Mcp, TestHome};
use serde_json::json;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn account_made_by_the_cli_is_listed_by_our_tool_and_vice_versa() {
    let home = TestHome::new();
    let out = stdout(&home.bitrouter(&["account", "--generate-key"]));
    let cli_pubkey = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("solana:"))
        .map(|s| s.trim().to_string())
        .expect("CLI prints the solana address");

    let mcp = Mcp::stdio(&home, None).await;
    let list = mcp.ok("bitrouter_account", json!({})).await;
    assert_eq!(list["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(list["accounts"][0]["public_key"], cli_pubkey.as_str());
    assert_eq!(list["accounts"][0]["prefix"], &cli_pubkey[..16]);
    assert_eq!(list["accounts"][0]["active"], true);

    // Ours, made active, shows up in the CLI's list with its active marker.
    let ours = mcp
        .ok("bitrouter_account", json!({"action": "generate"}))
        .await;
    let prefix = ours["changed"]["prefix"].as_str().unwrap().to_string();
    let listed = stdout(&home.bitrouter(&["account", "--list"]));
    assert!(
        listed.contains(&format!("{prefix} *")),
        "CLI list should mark {prefix} active:\n{listed}"
    );
    // And the CLI can sign with our account.
    let jwt = stdout(&home.bitrouter(&["keygen", "--exp", "1h"]));
    let claims = bitrouter_mcp::auth::jwt::verify(jwt.trim()).unwrap();
    assert!(
        claims
            .iss
            .ends_with(ours["changed"]["public_key"].as_str().unwrap())
    );
    mcp.close().await;
}

#[tokio::test]
async fn tokens_are_shared_with_bitrouter_keys_both_ways() {
    let home = TestHome::new();
    let mcp = Mcp::stdio(&home, None).await;
    mcp.ok("bitrouter_account", json!({"action": "generate"}))
        .await;
    mcp.ok(
        "bitrouter_keygen",
        json!({"name": "ours", "exp": "30d", "models": ["up1:*", "smart"], "scope": "api"}),
    )
    .await;
    let shown = stdout(&home.bitrouter(&["keys", "--show", "ours"]));
    let json_part = &shown[..shown.find("Raw JWT").unwrap_or(shown.len())];
    let claims: serde_json::Value = serde_json::from_str(json_part.trim()).unwrap();
    assert_eq!(claims["scope"], "api");
    assert_eq!(claims["models"], json!(["up1:*", "smart"]));

    home.bitrouter(&[
        "keygen", "--name", "fromcli", "--scope", "admin", "--exp", "5m",
    ]);
    let keys = mcp.ok("bitrouter_keys", json!({})).await;
    let names: Vec<&str> = keys["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fromcli", "ours"]);
    assert_eq!(keys["tokens"][0]["scope"], "admin");

    // Removal through our tool is seen by the CLI.
    mcp.ok(
        "bitrouter_keys",
        json!({"action": "remove", "name": "fromcli"}),
    )
    .await;
    let listed = stdout(&home.bitrouter(&["keys", "--list"]));
    assert!(
        !listed.contains("fromcli") && listed.contains("ours"),
        "{listed}"
    );
    mcp.close().await;
}

#[tokio::test]
async fn the_daemon_accepts_our_tokens_and_refuses_expired_or_disallowed_ones() {
    let home = TestHome::new();
    let up = Upstream::start("up1").await;
    let yaml = format!(
        "providers:\n  up1:\n    derives: openai\n    api_base: {}\n    api_key: k1\n\
         models:\n  smart:\n    strategy: priority\n    endpoints:\n      - {{ provider: up1, model_id: m1 }}\n",
        up.api_base()
    );
    let daemon = Daemon::start(&home, &yaml).await;
    let mcp = Mcp::stdio(&home, None).await;
    mcp.ok("bitrouter_account", json!({"action": "generate"}))
        .await;

    let good = mcp.ok("bitrouter_keygen", json!({"exp": "1h"})).await;
    let (status, body) = daemon.chat(good["token"].as_str().unwrap(), "smart").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello from up1"), "{body}");
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].model.as_deref(), Some("m1"));
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer k1"));

    // Our keygen refuses a past expiry, so sign an expired token with the same account directly.
    use bitrouter_mcp::auth::jwt;
    let past = bitrouter_mcp::auth::now_unix() - 60;
    mcp.err("bitrouter_keygen", json!({"exp": past.to_string()}))
        .await;
    let (_, key) = bitrouter_mcp::auth::keystore::load_active(&home.home()).unwrap();
    let claims = jwt::Claims {
        iss: jwt::issuer(&key.verifying_key()),
        chain: jwt::SOLANA_MAINNET.into(),
        iat: Some(past - 60),
        exp: Some(past),
        scope: jwt::Scope::Api,
        models: None,
        budget: None,
        budget_scope: None,
        budget_range: None,
    };
    let expired = jwt::sign(&claims, &key).unwrap();
    let (status, body) = daemon.chat(&expired, "smart").await;
    assert_eq!(status, 401, "{body}");

    let narrow = mcp
        .ok(
            "bitrouter_keygen",
            json!({"exp": "1h", "models": ["up1:m1"]}),
        )
        .await;
    let narrow = narrow["token"].as_str().unwrap();
    let (status, body) = daemon.chat(narrow, "up1:m2").await;
    // 0.11.0 answers this AccessDenied rejection with a 500 and a plain-text body.
    assert!(
        status != 200 && body.contains("model 'up1:m2' is not in your allowlist"),
        "model outside the allowlist must be refused: {status} {body}"
    );
    let (status, body) = daemon.chat(narrow, "up1:m1").await;
    assert_eq!(status, 200, "allowed direct model: {body}");
    assert_eq!(
        up.seen().len(),
        2,
        "refused requests never reach the upstream"
    );

    // Our status sees the daemon it is pointed at.
    let cfg = home.write_config(&json!({"port": daemon.port, "autoStart": false}));
    let mcp2 = Mcp::stdio(&home, Some(&cfg)).await;
    let status = mcp2.ok("bitrouter_status", json!({})).await;
    assert_eq!(status["daemon"]["healthy"], true, "{status}");
    assert_eq!(
        status["binary"]["problem"],
        serde_json::Value::Null,
        "{status}"
    );
    mcp2.close().await;
    mcp.close().await;
    daemon.stop().await;
}
