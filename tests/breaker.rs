//! The circuit breaker on the real daemon, in the commonest real outage: upstream A's chat answers
//! `529 overloaded` while its model listing keeps answering 200. Users lose at most a few
//! requests, a good listing never brings A back, the plane's one-token trials do once A's chat
//! works again, and status says why the route moved each time.
//!
//! (The shared HTTPS, real-shaped upstreams and the full failover suite live elsewhere; this fake
//! is the smallest that fails chat only.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::{Mcp, TestHome, chat, free_port};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Fake {
    chat_fails: Arc<AtomicBool>,
    /// Chat bodies received, in order.
    chats: Arc<Mutex<Vec<Value>>>,
}

impl Fake {
    async fn start(&self) -> String {
        let app = axum::Router::new()
            .route(
                "/v1/models",
                get(|| async { Json(json!({"object": "list", "data": [{"id": "m"}]})) }),
            )
            .route("/v1/chat/completions", post(fake_chat))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}/v1")
    }

    /// (user requests, one-token trials) received so far.
    fn counts(&self) -> (usize, usize) {
        let chats = self.chats.lock().unwrap();
        let trials = chats.iter().filter(|b| b["max_tokens"] == 1).count();
        (chats.len() - trials, trials)
    }
}

async fn fake_chat(State(f): State<Fake>, Json(body): Json<Value>) -> Response {
    let model = body["model"].clone();
    f.chats.lock().unwrap().push(body);
    if f.chat_fails.load(Ordering::SeqCst) {
        return (
            StatusCode::from_u16(529).unwrap(),
            Json(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
        )
            .into_response();
    }
    Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    }))
    .into_response()
}

fn smart(routes: &Value) -> Value {
    routes["models"][0].clone()
}

fn endpoint_a(routes: &Value) -> Value {
    smart(routes)["endpoints"][0].clone()
}

#[tokio::test]
async fn a_chat_only_outage_costs_few_requests_and_only_a_passed_trial_restores() {
    let home = TestHome::new();
    let (a, b) = (Fake::default(), Fake::default());
    let (a_base, b_base) = (a.start().await, b.start().await);
    let port = free_port();
    let cfg = home.write_config(&json!({
        "port": port,
        "healthCheckIntervalMs": 300,
        "metricsPollMs": 100,
        "providers": {
            "pa": {"derives": "openai", "apiBase": a_base, "apiKey": "ka-123456"},
            "pb": {"derives": "openai", "apiBase": b_base, "apiKey": "kb-123456"}
        },
        "models": {"smart": {"strategy": "priority", "endpoints": [
            {"provider": "pa", "modelId": "m1"}, {"provider": "pb", "modelId": "m2"}]}}
    }));
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    mcp.wait_healthy().await;
    let token = mcp.api_token().await;
    assert_eq!(chat(port, &token, "smart").await.0, 200);
    assert_eq!(a.counts(), (1, 0));

    // A's chat fails; its listing still answers. Users keep sending ~10 requests a second for
    // 6 s — many probe intervals, several cooldowns.
    a.chat_fails.store(true, Ordering::SeqCst);
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
    let (a_users, a_trials) = a.counts();
    assert!(failed <= 3, "{failed} user requests failed: {routes:#}");
    assert!(a_users - 1 <= 3, "{a_users} user requests reached A");
    assert!(
        a_trials >= 2,
        "the plane kept trying A itself: {a_trials} trials"
    );
    assert!(served >= 10, "{served}");
    assert_eq!(b.counts().0, served, "B served the rest");
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
    a.chat_fails.store(false, Ordering::SeqCst);
    let users_before = a.counts().0;
    let status = mcp
        .wait_status("A back", Duration::from_secs(40), |s| {
            s["models"][0]["serving"] == json!(["pa:m1"])
        })
        .await;
    assert_eq!(
        a.counts().0,
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
    assert_eq!(a.counts().0, users_before + 1);
    mcp.close().await;
}
