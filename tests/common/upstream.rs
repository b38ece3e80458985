//! Fake upstream LLM providers on 127.0.0.1 that look like the real ones from the daemon's side:
//! HTTPS from the test CA (see [`super::tls`]), each protocol's paths, auth headers, JSON and SSE
//! shapes, usage and error bodies:
//!
//! - OpenAI: `POST /v1/chat/completions` (`Authorization: Bearer`; SSE chunks when `stream`),
//!   `GET /v1/models`;
//! - Anthropic: `POST /v1/messages` (`x-api-key` + `anthropic-version` required; SSE events
//!   `message_start` … `message_stop`), `GET /v1/models`; overload is `529 overloaded_error`;
//! - Google: `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`
//!   (key in `x-goog-api-key` or `?key=`), `GET /v1beta/models`.
//!
//! A [`Mode`] injects failures (5xx, overload, 429, stall, refused connections, and the partial
//! outage where chat fails while the model listing answers). Every request is recorded with the
//! credential it carried, so tests can assert which key reached which upstream. Plain HTTP is kept
//! for local providers (Ollama, vLLM) via [`Upstream::local`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// The wire protocol a fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OpenAi,
    Anthropic,
    Google,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS with a certificate from the test CA, as every hosted provider.
    Https,
    /// Plain HTTP, as a local provider (Ollama, vLLM) on the user's machine.
    Http,
}

/// The transport of [`Upstream::start`].
pub const DEFAULT_TRANSPORT: Transport = Transport::Https;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    /// Every path answers 500 in the protocol's error shape.
    Fail500,
    /// Every path answers the protocol's overload error (Anthropic `529 overloaded_error`,
    /// OpenAI `503`, Google `503 UNAVAILABLE`).
    Overloaded,
    /// Every path answers 429 in the protocol's shape, with `retry-after: 1`.
    RateLimited,
    /// Requests are accepted and never answered.
    Stall,
    /// The listener and every open connection are closed: connections are refused.
    Refuse,
    /// The partial outage: chat answers the protocol's overload error while the model listing
    /// answers 200 (an overloaded Anthropic, a quota, one model down).
    ChatOnlyFail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A chat / messages / generateContent request.
    Chat,
    /// A model listing (what health probes read).
    Listing,
    /// Anything else (recorded so a wrong path shows up in assertions).
    Other,
}

/// One request that reached the fake.
#[derive(Debug, Clone)]
pub struct Seen {
    pub kind: Kind,
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub model: Option<String>,
    pub stream: bool,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
    /// Every credential the request carried: (`authorization` | `x-api-key` |
    /// `x-goog-api-key` | `?key`, the key without `Bearer `).
    pub credentials: Vec<(String, String)>,
    /// The status the fake answered (0: stalled, never answered).
    pub status: u16,
    pub user_agent: Option<String>,
    /// The text of the last message of a chat request (tells a user's request from the control
    /// plane's own one-token trial).
    pub prompt: Option<String>,
}

impl Seen {
    /// The key the request carried, whichever header or parameter held it.
    pub fn key(&self) -> Option<&str> {
        self.credentials.first().map(|(_, k)| k.as_str())
    }
}

struct Inner {
    name: String,
    protocol: Protocol,
    mode: Mutex<Mode>,
    require_key: Mutex<Option<String>>,
    auth_required: bool,
    stream_gap: Mutex<Duration>,
    seen: Mutex<Vec<Seen>>,
    tls_failures: AtomicUsize,
}

type Shared = Arc<Inner>;

pub struct Upstream {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    pub transport: Transport,
    shared: Shared,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Accepts connections (TLS handshakes in parallel) and serves each in a task owned by this one,
/// so aborting it closes every connection, kept-alive ones included.
fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Shared,
) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(shared.clone());
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let (tls, svc, shared) = (tls.clone(), TowerToHyperService::new(app.clone()), shared.clone());
                    conns.spawn(async move {
                        let http = hyper::server::conn::http1::Builder::new();
                        match tls {
                            Some(acceptor) => match acceptor.accept(tcp).await {
                                Ok(stream) => {
                                    let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                                }
                                Err(_) => {
                                    shared.tls_failures.fetch_add(1, Ordering::SeqCst);
                                }
                            },
                            None => {
                                let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                            }
                        }
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    })
}

impl Upstream {
    /// An OpenAI-compatible upstream over [`DEFAULT_TRANSPORT`].
    pub async fn start(name: &str) -> Self {
        Self::start_with(name, Protocol::OpenAi, DEFAULT_TRANSPORT).await
    }

    pub async fn openai(name: &str) -> Self {
        Self::start_with(name, Protocol::OpenAi, Transport::Https).await
    }

    pub async fn anthropic(name: &str) -> Self {
        Self::start_with(name, Protocol::Anthropic, Transport::Https).await
    }

    pub async fn google(name: &str) -> Self {
        Self::start_with(name, Protocol::Google, Transport::Https).await
    }

    /// A local OpenAI-compatible server (Ollama, vLLM): plain HTTP, no key needed.
    pub async fn local(name: &str) -> Self {
        Self::build(name, Protocol::OpenAi, Transport::Http, false).await
    }

    /// An upstream that requires a credential (any value until [`Upstream::require_key`]).
    pub async fn start_with(name: &str, protocol: Protocol, transport: Transport) -> Self {
        Self::build(name, protocol, transport, true).await
    }

    async fn build(name: &str, protocol: Protocol, transport: Transport, auth: bool) -> Self {
        let shared = Arc::new(Inner {
            name: name.to_string(),
            protocol,
            mode: Mutex::new(Mode::Ok),
            require_key: Mutex::new(None),
            auth_required: auth,
            stream_gap: Mutex::new(Duration::from_millis(20)),
            seen: Mutex::new(Vec::new()),
            tls_failures: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Self {
            addr,
            protocol,
            transport,
            shared,
            task: Mutex::new(None),
        };
        *up.task.lock().unwrap() = Some(serve(listener, up.acceptor(), up.shared.clone()));
        up
    }

    fn acceptor(&self) -> Option<TlsAcceptor> {
        match self.transport {
            Transport::Https => Some(TlsAcceptor::from(super::tls::ca().server_config())),
            Transport::Http => None,
        }
    }

    /// Base URL as a provider's `api_base`, the way each provider's own default is written
    /// (OpenAI's includes `/v1`; Anthropic's and Google's are the bare host).
    pub fn api_base(&self) -> String {
        let scheme = match self.transport {
            Transport::Https => "https",
            Transport::Http => "http",
        };
        match self.protocol {
            Protocol::OpenAi => format!("{scheme}://{}/v1", self.addr),
            Protocol::Anthropic | Protocol::Google => format!("{scheme}://{}", self.addr),
        }
    }

    /// Answers 401/400 (the protocol's shape) to requests that do not carry `key`.
    pub fn require_key(&self, key: &str) {
        *self.shared.require_key.lock().unwrap() = Some(key.to_string());
    }

    /// Pause between SSE events of a streamed answer.
    pub fn set_stream_gap(&self, gap: Duration) {
        *self.shared.stream_gap.lock().unwrap() = gap;
    }

    pub fn mode(&self) -> Mode {
        *self.shared.mode.lock().unwrap()
    }

    /// Switches behaviour; `Refuse` closes the listener and every open connection, leaving it
    /// listens again on the same port.
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
            *self.task.lock().unwrap() =
                Some(serve(listener, self.acceptor(), self.shared.clone()));
        }
    }

    /// Chat requests seen for `model`.
    pub fn count(&self, model: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.model.as_deref() == Some(model))
            .count()
    }

    /// Chat requests seen, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.of_kind(Kind::Chat)
    }

    /// Model listings seen (health probes), in order.
    pub fn listings(&self) -> Vec<Seen> {
        self.of_kind(Kind::Listing)
    }

    /// Every request seen, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    fn of_kind(&self, kind: Kind) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|s| s.kind == kind)
            .collect()
    }

    /// Chat requests that were not answered with success (errors and stalls).
    pub fn failed_chats(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| !(200..300).contains(&s.status))
            .count()
    }

    /// Chat requests with this prompt (see [`Seen::prompt`]) that were not answered with success.
    pub fn failed_chats_saying(&self, prompt: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.prompt.as_deref() == Some(prompt) && !(200..300).contains(&s.status))
            .count()
    }

    /// TLS handshakes that failed (a client that does not trust the test CA).
    pub fn tls_failures(&self) -> usize {
        self.shared.tls_failures.load(Ordering::SeqCst)
    }

    pub fn stop(self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }
}

/// The request as the fake understood it.
struct Parsed {
    kind: Kind,
    model: Option<String>,
    stream: bool,
    body: Value,
}

fn parse(protocol: Protocol, method: &Method, uri: &Uri, body: &[u8]) -> Parsed {
    let path = uri.path();
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let body_model = json.get("model").and_then(Value::as_str).map(String::from);
    let body_stream = json.get("stream").and_then(Value::as_bool) == Some(true);
    let post = method == Method::POST;
    let get = method == Method::GET;
    let (kind, model, stream) = match protocol {
        Protocol::OpenAi if post && path == "/v1/chat/completions" => {
            (Kind::Chat, body_model, body_stream)
        }
        Protocol::Anthropic if post && path == "/v1/messages" => {
            (Kind::Chat, body_model, body_stream)
        }
        Protocol::Google if post && path.starts_with("/v1beta/models/") => {
            let call = &path["/v1beta/models/".len()..];
            match call.rsplit_once(':') {
                Some((model, "generateContent")) => (Kind::Chat, Some(model.to_string()), false),
                Some((model, "streamGenerateContent")) => {
                    (Kind::Chat, Some(model.to_string()), true)
                }
                _ => (Kind::Other, None, false),
            }
        }
        Protocol::OpenAi | Protocol::Anthropic if get && path == "/v1/models" => {
            (Kind::Listing, None, false)
        }
        Protocol::Google if get && path == "/v1beta/models" => (Kind::Listing, None, false),
        _ => (Kind::Other, None, false),
    };
    Parsed {
        kind,
        model,
        stream,
        body: json,
    }
}

/// The text of the last message, in any of the three protocols' request shapes.
fn last_text(body: &Value) -> Option<String> {
    let last = body
        .get("messages")
        .or_else(|| body.get("contents"))
        .and_then(Value::as_array)
        .and_then(|m| m.last())?;
    let content = last.get("content").or_else(|| last.get("parts"))?;
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

fn credentials(headers: &HeaderMap, uri: &Uri) -> Vec<(String, String)> {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let mut out = Vec::new();
    if let Some(a) = header("authorization") {
        let key = a.strip_prefix("Bearer ").unwrap_or(&a).to_string();
        out.push(("authorization".to_string(), key));
    }
    for h in ["x-api-key", "x-goog-api-key"] {
        if let Some(v) = header(h) {
            out.push((h.to_string(), v));
        }
    }
    for pair in uri.query().unwrap_or_default().split('&') {
        if let Some(k) = pair.strip_prefix("key=") {
            out.push(("?key".to_string(), k.to_string()));
        }
    }
    out
}

async fn handle(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = parse(s.protocol, &method, &uri, &body);
    let creds = credentials(&headers, &uri);
    let mode = *s.mode.lock().unwrap();
    let response = decide(&s, &p, &headers, &creds, mode);
    let status = match &response {
        Some(r) => r.status().as_u16(),
        None => 0,
    };
    s.seen.lock().unwrap().push(Seen {
        kind: p.kind,
        method: method.to_string(),
        path: uri.path().to_string(),
        model: p.model.clone(),
        stream: p.stream,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        credentials: creds,
        status,
        user_agent: headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        prompt: last_text(&p.body),
    });
    match response {
        Some(r) => r,
        None => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

/// The answer to a request, or `None` to stall.
fn decide(
    s: &Inner,
    p: &Parsed,
    headers: &HeaderMap,
    creds: &[(String, String)],
    mode: Mode,
) -> Option<Response> {
    let failure = match mode {
        Mode::Stall => return None,
        Mode::Fail500 => Some(Failure::Server),
        Mode::Overloaded => Some(Failure::Overloaded),
        Mode::RateLimited => Some(Failure::RateLimited),
        Mode::ChatOnlyFail if p.kind == Kind::Chat => Some(Failure::Overloaded),
        Mode::ChatOnlyFail | Mode::Ok | Mode::Refuse => None,
    };
    if let Some(f) = failure {
        return Some(error(s.protocol, f));
    }
    if p.kind == Kind::Other {
        return Some(error(s.protocol, Failure::NotFound));
    }
    if let Some(r) = auth_problem(s, headers, creds) {
        return Some(r);
    }
    Some(match p.kind {
        Kind::Listing => listing(s),
        _ => chat(s, p),
    })
}

#[derive(Clone, Copy)]
enum Failure {
    Server,
    Overloaded,
    RateLimited,
    NotFound,
    MissingKey,
    BadKey,
    BadRequest(&'static str),
}

/// Each provider's own error status and body.
fn error(protocol: Protocol, f: Failure) -> Response {
    let (status, body) = match protocol {
        Protocol::OpenAi => {
            let (status, message, kind, code) = match f {
                Failure::Server => (
                    500,
                    "The server had an error while processing your request. Sorry about that!",
                    "server_error",
                    Value::Null,
                ),
                Failure::Overloaded => (
                    503,
                    "The engine is currently overloaded, please try again later.",
                    "server_error",
                    Value::Null,
                ),
                Failure::RateLimited => (
                    429,
                    "Rate limit reached for requests. Please try again in 1s.",
                    "requests",
                    json!("rate_limit_exceeded"),
                ),
                Failure::NotFound => (404, "Invalid URL", "invalid_request_error", Value::Null),
                Failure::MissingKey => (
                    401,
                    "You didn't provide an API key.",
                    "invalid_request_error",
                    Value::Null,
                ),
                Failure::BadKey => (
                    401,
                    "Incorrect API key provided.",
                    "invalid_request_error",
                    json!("invalid_api_key"),
                ),
                Failure::BadRequest(m) => (400, m, "invalid_request_error", Value::Null),
            };
            (
                status,
                json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
            )
        }
        Protocol::Anthropic => {
            let (status, kind, message) = match f {
                Failure::Server => (500, "api_error", "Internal server error"),
                Failure::Overloaded => (529, "overloaded_error", "Overloaded"),
                Failure::RateLimited => (
                    429,
                    "rate_limit_error",
                    "Number of requests has exceeded your rate limit.",
                ),
                Failure::NotFound => (404, "not_found_error", "Not found"),
                Failure::MissingKey => {
                    (401, "authentication_error", "x-api-key header is required")
                }
                Failure::BadKey => (401, "authentication_error", "invalid x-api-key"),
                Failure::BadRequest(m) => (400, "invalid_request_error", m),
            };
            (
                status,
                json!({"type": "error", "error": {"type": kind, "message": message}}),
            )
        }
        Protocol::Google => {
            let (status, state, message) = match f {
                Failure::Server => (
                    500,
                    "INTERNAL",
                    "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
                ),
                Failure::Overloaded => (
                    503,
                    "UNAVAILABLE",
                    "The model is overloaded. Please try again later.",
                ),
                Failure::RateLimited => (
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Resource has been exhausted (e.g. check quota).",
                ),
                Failure::NotFound => (404, "NOT_FOUND", "Requested entity was not found."),
                Failure::MissingKey => (
                    403,
                    "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                ),
                Failure::BadKey => (
                    400,
                    "INVALID_ARGUMENT",
                    "API key not valid. Please pass a valid API key.",
                ),
                Failure::BadRequest(m) => (400, "INVALID_ARGUMENT", m),
            };
            (
                status,
                json!({"error": {"code": status, "message": message, "status": state}}),
            )
        }
    };
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response();
    if matches!(f, Failure::RateLimited) {
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
    }
    r
}

fn auth_problem(s: &Inner, headers: &HeaderMap, creds: &[(String, String)]) -> Option<Response> {
    let wanted: &[&str] = match s.protocol {
        Protocol::OpenAi => &["authorization"],
        Protocol::Anthropic => &["x-api-key"],
        Protocol::Google => &["x-goog-api-key", "?key"],
    };
    let key = creds
        .iter()
        .find(|(h, _)| wanted.contains(&h.as_str()))
        .map(|(_, k)| k.as_str());
    if s.protocol == Protocol::Anthropic && !headers.contains_key("anthropic-version") {
        return Some(error(
            s.protocol,
            Failure::BadRequest("anthropic-version: header is required"),
        ));
    }
    match (key, s.require_key.lock().unwrap().as_deref()) {
        (None, _) if s.auth_required => Some(error(s.protocol, Failure::MissingKey)),
        (Some(k), Some(want)) if k != want => Some(error(s.protocol, Failure::BadKey)),
        _ => None,
    }
}

fn listing(s: &Inner) -> Response {
    let own = format!("{}-model", s.name);
    let body = match s.protocol {
        Protocol::OpenAi => json!({"object": "list", "data": [
            {"id": own, "object": "model", "created": 1715367049, "owned_by": "system"},
            {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
            {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"}]}),
        Protocol::Anthropic => json!({"data": [
            {"type": "model", "id": own, "display_name": own, "created_at": "2025-05-14T00:00:00Z"},
            {"type": "model", "id": "claude-sonnet-4-20250514", "display_name": "Claude Sonnet 4", "created_at": "2025-05-14T00:00:00Z"},
            {"type": "model", "id": "claude-3-5-haiku-20241022", "display_name": "Claude Haiku 3.5", "created_at": "2024-10-22T00:00:00Z"}],
            "has_more": false, "first_id": own, "last_id": "claude-3-5-haiku-20241022"}),
        Protocol::Google => json!({"models": [
            {"name": format!("models/{own}"), "displayName": own, "inputTokenLimit": 1048576, "outputTokenLimit": 8192,
             "supportedGenerationMethods": ["generateContent", "countTokens"]},
            {"name": "models/gemini-2.0-flash", "version": "2.0", "displayName": "Gemini 2.0 Flash",
             "inputTokenLimit": 1048576, "outputTokenLimit": 8192,
             "supportedGenerationMethods": ["generateContent", "countTokens"]}],
            "nextPageToken": ""}),
    };
    axum::Json(body).into_response()
}

/// A rough token count of what was asked, so usage figures move with the request.
fn prompt_tokens(body: &Value) -> u64 {
    (body.to_string().len() as u64 / 4).max(1)
}

fn chat(s: &Inner, p: &Parsed) -> Response {
    if s.protocol == Protocol::Anthropic && p.body.get("max_tokens").is_none() {
        return error(
            s.protocol,
            Failure::BadRequest("max_tokens: Field required"),
        );
    }
    let text = format!("hello from {}", s.name);
    let model = p.model.clone().unwrap_or_default();
    let input = prompt_tokens(&p.body);
    let output = 3u64;
    if p.stream {
        let include_usage = p.body["stream_options"]["include_usage"] == true;
        let events = stream_events(s.protocol, &model, &text, input, output, include_usage);
        return sse(events, *s.stream_gap.lock().unwrap());
    }
    let body = match s.protocol {
        Protocol::OpenAi => json!({
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion",
            "created": 1741569952, "model": model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}
        }),
        Protocol::Anthropic => json!({
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": output,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        }),
        Protocol::Google => json!({
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": input, "candidatesTokenCount": output,
                              "totalTokenCount": input + output},
            "modelVersion": model
        }),
    };
    axum::Json(body).into_response()
}

/// The SSE events (each complete with its blank line) of a streamed answer.
fn stream_events(
    protocol: Protocol,
    model: &str,
    text: &str,
    input: u64,
    output: u64,
    include_usage: bool,
) -> Vec<String> {
    let words: Vec<String> = text.split_inclusive(' ').map(String::from).collect();
    let data = |v: Value| format!("data: {v}\n\n");
    match protocol {
        Protocol::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                data(
                    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1741569952,
                            "model": model, "system_fingerprint": "fp_fake",
                            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]}),
                )
            };
            let mut out = vec![chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            )];
            out.extend(
                words
                    .iter()
                    .map(|w| chunk(json!({"content": w}), Value::Null)),
            );
            out.push(chunk(json!({}), json!("stop")));
            if include_usage {
                out.push(data(json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                    "created": 1741569952, "model": model, "choices": [],
                    "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}})));
            }
            out.push("data: [DONE]\n\n".to_string());
            out
        }
        Protocol::Anthropic => {
            let event = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
            let mut out = vec![
                event(
                    "message_start",
                    json!({"type": "message_start", "message": {
                    "id": "msg_01", "type": "message", "role": "assistant", "model": model, "content": [],
                    "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": input, "output_tokens": 1}}}),
                ),
                event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
                ),
                event("ping", json!({"type": "ping"})),
            ];
            out.extend(words.iter().map(|w| {
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": w}}),
                )
            }));
            out.push(event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ));
            out.push(event(
                "message_delta",
                json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": output}}),
            ));
            out.push(event("message_stop", json!({"type": "message_stop"})));
            out
        }
        Protocol::Google => {
            let n = words.len();
            words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let mut candidate =
                        json!({"content": {"parts": [{"text": w}], "role": "model"}, "index": 0});
                    let mut chunk = json!({"modelVersion": model});
                    if i + 1 == n {
                        candidate["finishReason"] = json!("STOP");
                        chunk["usageMetadata"] = json!({"promptTokenCount": input,
                            "candidatesTokenCount": output, "totalTokenCount": input + output});
                    }
                    chunk["candidates"] = json!([candidate]);
                    format!("data: {chunk}\r\n\r\n")
                })
                .collect()
        }
    }
}

/// An SSE response whose events leave `gap` apart, as a real model's tokens do.
fn sse(events: Vec<String>, gap: Duration) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, Infallible>>(4);
    tokio::spawn(async move {
        for (i, e) in events.into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            if tx.send(Ok(e)).await.is_err() {
                return;
            }
        }
    });
    (
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response()
}
