//! Fake upstream LLM providers on 127.0.0.1: OpenAI-compatible `/v1/chat/completions` (plain and
//! streaming) and `/v1/models`, switchable between answering, failing with 500, stalling and
//! refusing connections. They record every chat request so tests can assert what reached them.

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
    /// The listener is closed: connections are refused.
    Refuse,
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
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn serve(listener: tokio::net::TcpListener, shared: Shared) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .with_state(shared);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

impl Upstream {
    pub async fn start(name: &str) -> Self {
        let shared = Shared {
            name: name.to_string(),
            mode: Arc::new(Mutex::new(Mode::Ok)),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = serve(listener, shared.clone());
        Self {
            addr,
            shared,
            task: Mutex::new(Some(task)),
        }
    }

    /// Base URL as a provider's `api_base`.
    pub fn api_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Switches behaviour; `Refuse` closes the listener, leaving it reopens on the same port.
    pub async fn set_mode(&self, mode: Mode) {
        let previous = std::mem::replace(&mut *self.shared.mode.lock().unwrap(), mode);
        if mode == Mode::Refuse && previous != Mode::Refuse {
            let task = self.task.lock().unwrap().take();
            if let Some(task) = task {
                task.abort();
                let _ = task.await;
            }
        } else if previous == Mode::Refuse && mode != Mode::Refuse {
            let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
            *self.task.lock().unwrap() = Some(serve(listener, self.shared.clone()));
        }
    }

    /// Chat requests seen for `model`.
    pub fn count(&self, model: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.model.as_deref() == Some(model))
            .count()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    pub fn stop(self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }
}

/// The failure a mode injects, if any.
async fn injected(s: &Shared) -> Option<Response> {
    let mode = *s.mode.lock().unwrap();
    match mode {
        Mode::Fail500 => Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": {"message": "injected failure", "type": "server_error"}})),
            )
                .into_response(),
        ),
        Mode::Stall => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            None
        }
        Mode::Ok | Mode::Refuse => None,
    }
}

async fn models(State(s): State<Shared>) -> Response {
    if let Some(r) = injected(&s).await {
        return r;
    }
    Json(
        json!({"object": "list", "data": [{"id": format!("{}-model", s.name), "object": "model"}]}),
    )
    .into_response()
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
    if let Some(r) = injected(&s).await {
        return r;
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
