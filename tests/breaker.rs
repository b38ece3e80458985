//! The circuit breaker on the real daemon, in the commonest real outage: upstream A (an HTTPS
//! Anthropic-shaped fake) answers chat with `529 overloaded_error` while its model listing keeps
//! answering 200. Users lose at most a few requests, a good listing never brings A back, the
//! plane's one-token trials do once A's chat works again, and status says why the route moved
//! each time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::chat;
use common::rig::Rig;
use common::upstream::{Mode, Protocol, Upstream};
use serde_json::{Value, json};

/// (users' requests, the plane's one-token trials) that reached `up`: users' requests say "hi"
/// (`common::chat`), trials say something else.
fn counts(up: &Upstream) -> (usize, usize) {
    let chats = up.seen();
    let users = chats
        .iter()
        .filter(|s| s.prompt.as_deref() == Some("hi"))
        .count();
    (users, chats.len() - users)
}

fn smart(routes: &Value) -> Value {
    routes["models"][0].clone()
}

fn endpoint_a(routes: &Value) -> Value {
    smart(routes)["endpoints"][0].clone()
}

#[tokio::test]
async fn a_chat_only_outage_costs_few_requests_and_only_a_passed_trial_restores() {
    let Rig {
        home: _home,
        mcp,
        upstreams: [a, b],
        port,
        token,
    } = Rig::priority(["a", "b"])
        .protocols([Protocol::Anthropic, Protocol::OpenAi])
        .start()
        .await;
    assert_eq!(chat(port, &token, "smart").await.0, 200);
    assert_eq!(counts(&a), (1, 0));

    // A's chat fails; its listing still answers. Users keep sending ~10 requests a second for
    // 6 s — many probe intervals, several cooldowns.
    a.set_mode(Mode::ChatOnlyFail).await;
    let (mut failed, mut served) = (0, 0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        let (status, _) = chat(port, &token, "smart").await;
        if status == 200 {
            served += 1;
        } else {
            failed += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let routes = mcp.read_json("bitrouter://routes").await;
    let listings = a.listings();
    assert!(
        listings.len() >= 5 && listings.iter().all(|s| s.status == 200),
        "A's listing kept answering the probes: {listings:?}"
    );
    let (a_users, a_trials) = counts(&a);
    assert!(failed <= 3, "{failed} user requests failed: {routes:#}");
    assert!(a_users - 1 <= 3, "{a_users} user requests reached A");
    assert!(
        a_trials >= 2,
        "the plane kept trying A itself: {a_trials} trials"
    );
    assert!(served >= 10, "{served}");
    assert_eq!(counts(&b).0, served, "B served the rest");
    let ea = endpoint_a(&routes);
    assert_eq!(ea["health"], "unhealthy", "{routes:#}");
    assert_ne!(ea["breaker"], "closed", "{routes:#}");
    assert!(
        ea["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 529 (overloaded)"),
        "{ea}"
    );
    assert_eq!(smart(&routes)["serving"], json!(["pb:m2"]));
    let switch = smart(&routes)["last_switch"].clone();
    assert_eq!(
        (switch["from"].as_str(), switch["to"].as_str()),
        (Some("pa:m1"), Some("pb:m2"))
    );
    assert!(
        switch["why"].as_str().unwrap().contains("traffic"),
        "{switch}"
    );

    // A's chat works again: a trial finds out and the route returns to A, no user request spent.
    a.set_mode(Mode::Ok).await;
    let users_before = counts(&a).0;
    let status = mcp
        .wait_status("A back", Duration::from_secs(40), |s| {
            s["models"][0]["serving"] == json!(["pa:m1"])
        })
        .await;
    assert_eq!(
        counts(&a).0,
        users_before,
        "found out by a trial, not a user"
    );
    let switch = &status["models"][0]["last_switch"];
    assert_eq!(
        switch["why"], "pa:m1 in (trial request answered)",
        "{switch}"
    );
    assert_eq!(status["models"][0]["endpoints"][0]["breaker"], "closed");
    assert_eq!(chat(port, &token, "smart").await.0, 200);
    assert_eq!(counts(&a).0, users_before + 1);
    mcp.close().await;
}
