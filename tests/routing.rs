//! The routing control plane on the real daemon with fake upstreams that fail on demand:
//! `priority` fails over and comes back, `load_balance` spreads over live endpoints only, direct
//! `provider:model` routing works, route changes reach subscribers, and literal keys stay out of
//! the daemon's yaml and logs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::rig::{Rig, endpoint, model};
use common::upstream::Mode;
use serde_json::json;

const KEY_A: &str = "key-a-literal-7f3e9c";
const KEY_B: &str = "key-b-literal-2d81aa";

/// `smart` (priority) and `fast` (load_balance), both over pa:m1 then pb:m2, with literal keys.
async fn rig() -> Rig<2> {
    Rig::priority(["a", "b"])
        .keys([KEY_A, KEY_B])
        .also_load_balanced("fast")
        .start()
        .await
}

#[tokio::test]
async fn priority_fails_over_on_500_refused_and_stall_and_comes_back() {
    let rig = rig().await;
    let [a, b] = &rig.upstreams;
    rig.wait_active("smart", "pa", true).await;
    let (status, body) = rig.chat("smart").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(a.count("m1"), 1);
    assert_eq!(
        a.seen()[0].authorization.as_deref(),
        Some(format!("Bearer {KEY_A}").as_str()),
        "the upstream gets its configured key"
    );

    for mode in [Mode::Fail500, Mode::Refuse, Mode::Stall] {
        a.set_mode(mode).await;
        let routes = rig.wait_active("smart", "pb", true).await;
        let pa = endpoint(&routes, "smart", "pa");
        assert_eq!(pa["active"], false, "{mode:?}");
        assert_eq!(pa["health"], "unhealthy", "{mode:?}");
        assert!(pa["last_error"].is_string(), "{mode:?}");
        let smart = model(&routes, "smart");
        assert_eq!(smart["serving"], json!(["pb:m2"]), "{mode:?}");
        let switch = &smart["last_switch"];
        assert_eq!(
            (&switch["from"], &switch["to"]),
            (&json!("pa:m1"), &json!("pb:m2")),
            "{mode:?}: {switch}"
        );
        assert!(
            switch["why"].as_str().unwrap().starts_with("pa:m1 out ("),
            "{mode:?}: {switch}"
        );
        let before_b = b.count("m2");
        for _ in 0..3 {
            let (status, body) = rig.chat("smart").await;
            assert_eq!(status, 200, "{mode:?}: {body}");
            assert!(body.contains("hello from b"), "{mode:?}: {body}");
        }
        assert_eq!(b.count("m2"), before_b + 3);
        assert_eq!(
            b.seen().last().unwrap().authorization.as_deref(),
            Some(format!("Bearer {KEY_B}").as_str())
        );

        a.set_mode(Mode::Ok).await;
        rig.wait_active("smart", "pa", true).await;
        let before_a = a.count("m1");
        let (status, body) = rig.chat("smart").await;
        assert_eq!(status, 200, "{mode:?} recovered: {body}");
        assert_eq!(
            a.count("m1"),
            before_a + 1,
            "{mode:?}: back on the first endpoint"
        );
    }

    let metrics = rig.mcp.read_json("bitrouter://metrics").await;
    assert!(
        metrics["switches"]["smart"].as_u64().unwrap() >= 6,
        "{metrics:#}"
    );
    let pa = metrics["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == "pa:m1")
        .unwrap();
    assert!(pa["probe_failures"].as_u64().unwrap() >= 2, "{metrics:#}");
    assert!(pa["requests"].as_u64().unwrap() >= 1, "{metrics:#}");

    // Literal keys never reach the daemon's yaml or its log.
    let yaml = std::fs::read_to_string(rig.home.home().daemon_config_file()).unwrap();
    assert!(!yaml.contains(KEY_A) && !yaml.contains(KEY_B), "{yaml}");
    let log = std::fs::read_to_string(rig.home.home().logs_dir().join("daemon.log")).unwrap();
    assert!(!log.contains(KEY_A) && !log.contains(KEY_B));
    let env = std::fs::read_to_string(rig.home.home().env_file()).unwrap();
    assert!(env.contains(KEY_A), "literal keys live in .env");
    rig.mcp.close().await;
}

#[tokio::test]
async fn load_balance_spreads_over_live_endpoints_only() {
    let rig = rig().await;
    let [a, b] = &rig.upstreams;
    let routes = rig.wait_active("fast", "pb", true).await;
    assert_eq!(endpoint(&routes, "fast", "pa")["active"], true);
    for _ in 0..10 {
        let (status, body) = rig.chat("fast").await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!((a.count("m1"), b.count("m2")), (5, 5), "round-robin");

    b.set_mode(Mode::Refuse).await;
    rig.wait_active("fast", "pb", false).await;
    for _ in 0..10 {
        let (status, body) = rig.chat("fast").await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(a.count("m1"), 15, "all traffic on the live endpoint");

    b.set_mode(Mode::Ok).await;
    rig.wait_active("fast", "pb", true).await;
    for _ in 0..4 {
        rig.chat("fast").await;
    }
    assert_eq!(b.count("m2"), 7, "restored endpoint takes its share again");
    rig.mcp.close().await;
}

#[tokio::test]
async fn direct_provider_model_routing_works() {
    let rig = rig().await;
    let [_, b] = &rig.upstreams;
    let (status, body) = rig.chat("pb:anything-9").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(b.count("anything-9"), 1);
    let routes = rig.routes().await;
    let direct = routes["direct_providers"].as_array().unwrap();
    assert!(
        direct.contains(&json!("pa")) && direct.contains(&json!("pb")),
        "{routes:#}"
    );
    rig.mcp.close().await;
}
