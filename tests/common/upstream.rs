//! Fake upstream LLM providers on 127.0.0.1: OpenAI-compatible `/v1/chat/completions` (plain and
//! streaming) and `/v1/models`, switchable between answering, failing with 500 and stalling.
//! They record every request so tests can assert what reached them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Fail500,
    Stall,
}

/// One request that reached the fake.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub model: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Clone)]
struct Shared {
    name: String,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start(name: &str) -> Self {
        let shared = Shared {
            name: name.to_string(),
            mode: Arc::new(Mutex::new(Mode::Ok)),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// Base URL as a provider's `api_base`.
    pub fn api_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn models(State(s): State<Shared>) -> Json<Value> {
    Json(
        json!({"object": "list", "data": [{"id": format!("{}-model", s.name), "object": "model"}]}),
    )
}

async fn chat(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let model = body.get("model").and_then(|m| m.as_str()).map(String::from);
    s.seen.lock().unwrap().push(Seen {
        path: "/v1/chat/completions".into(),
        model: model.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
    });
    let mode = *s.mode.lock().unwrap();
    match mode {
        Mode::Fail500 => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": {"message": "injected failure", "type": "server_error"}})),
            )
                .into_response();
        }
        Mode::Stall => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Mode::Ok => {}
    }
    let text = format!("hello from {}", s.name);
    let model = model.unwrap_or_default();
    if body.get("stream").and_then(|v| v.as_bool()) == Some(true) {
        let chunk = |delta: Value, finish: Value| {
            format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                       "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            )
        };
        let body = format!(
            "{}{}{}data: [DONE]\n\n",
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": text}), Value::Null),
            chunk(json!({}), json!("stop")),
        );
        return ([("content-type", "text/event-stream")], body).into_response();
    }
    Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
    }))
    .into_response()
}
