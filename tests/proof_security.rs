//! Security as a user relies on it: MCP over HTTP refuses to serve a non-loopback address without
//! a bearer token and refuses requests without the right one; browser pages of other origins and
//! foreign `Host` headers are turned away; provider keys (literal in the config, saved in `.env`
//! by `auth login`, or in the server's environment) never show up in tool output, errors, the
//! server's log, the daemon's log or the daemon's yaml, even when upstreams echo them back and
//! things go wrong; and keys, tokens and `.env` are private files in private directories, also
//! after the `bitrouter` CLI wrote some.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use common::{Mcp, TestHome, chat, free_port, kill, wait_for_port};
use rmcp::model::{CallToolRequestParams, CallToolResult, ReadResourceRequestParams};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

// Planted secrets. Distinct, greppable, shaped like real keys.
const KEY_LITERAL: &str = "sk-proj-literalConfigKey-4f9a2c7e1b6d";
const KEY_DOTENV: &str = "sk-ant-api03-dotenvLoginKey-93b1d2e0aa5c";
const KEY_ENV: &str = "sk-envOpenAIKey-77d3e9f1c2ab48e1";
const KEY_LATE: &str = "AIzaLateLoginGoogleKey-0c6e1f9d2b7a";
const MCP_TOKEN: &str = "mcp-bearer-secret-6a1f0e93c7d2b845";

fn secrets() -> [(&'static str, &'static str); 5] {
    [
        ("literal config key", KEY_LITERAL),
        (".env key from auth login", KEY_DOTENV),
        ("OPENAI_API_KEY from the environment", KEY_ENV),
        (".env key added while running", KEY_LATE),
        ("MCP bearer token", MCP_TOKEN),
    ]
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `bitrouter-mcp serve --http 127.0.0.1:<port>` with extra args and env, stderr into a file.
struct Server {
    child: tokio::process::Child,
    port: u16,
    stderr: PathBuf,
}

impl Server {
    async fn start(
        home: &TestHome,
        config: &Path,
        bind: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let stderr = home.dir.path().join(format!("server-stderr-{port}.log"));
        let mut cmd = common::server_command(home, config, env);
        cmd.env_remove("BITROUTER_MCP_AUTH_TOKEN")
            .args(["serve", "--http", &format!("{bind}:{port}")])
            .args(args)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .kill_on_drop(true);
        let child = cmd.spawn().unwrap();
        wait_for_port(port, Duration::from_secs(10)).await;
        Self {
            child,
            port,
            stderr,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// A raw `initialize` POST with extra headers; returns status and response headers.
    async fn post_init(&self, headers: &[(&str, &str)]) -> (u16, HeaderMap) {
        let mut req = reqwest::Client::new()
            .post(self.url())
            .timeout(Duration::from_secs(10))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(INIT);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers)
    }

    async fn stop(mut self) -> String {
        if let Some(pid) = self.child.id() {
            kill(pid, "TERM");
        }
        let _ = tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await;
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

async fn client(url: String, bearer: Option<&str>) -> RunningService<RoleClient, ()> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(t) = bearer {
        config = config.auth_header(t);
    }
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
}

fn unmanaged(home: &TestHome) -> PathBuf {
    home.write_config_as(
        "unmanaged.json",
        &json!({"autoStart": false, "port": free_port()}),
    )
}

// ---------------------------------------------------------------------------------------------
// HTTP exposure

#[tokio::test]
async fn a_non_loopback_bind_without_a_token_refuses_to_start() {
    let home = TestHome::new();
    let cfg = unmanaged(&home);
    for bind in ["0.0.0.0", "[::]"] {
        let port = free_port();
        let addr = format!("{bind}:{port}");
        let mut cmd = common::server_command(&home, &cfg, &[]);
        cmd.env_remove("BITROUTER_MCP_AUTH_TOKEN")
            .args(["serve", "--http", &addr])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(15), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("serve --http {addr} without a token kept running"))
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "serve --http {addr}: {stderr}");
        assert!(
            stderr.contains("--auth-token") && stderr.contains(&addr),
            "the refusal names --auth-token and the address: {stderr}"
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "nothing listens on {addr} after the refusal"
        );
    }

    // With a token it serves on all interfaces, and still wants the token.
    let server = Server::start(&home, &cfg, "0.0.0.0", &["--auth-token", MCP_TOKEN], &[]).await;
    let (status, _) = server.post_init(&[]).await;
    assert_eq!(status, 401, "no bearer on a 0.0.0.0 bind");
    let auth = format!("Bearer {MCP_TOKEN}");
    let (status, _) = server.post_init(&[("authorization", &auth)]).await;
    assert_eq!(status, 200, "right bearer on a 0.0.0.0 bind");
    server.stop().await;

    // An empty token (e.g. an unset variable in a script) is refused outright, not served.
    let port = free_port();
    let mut cmd = common::server_command(&home, &cfg, &[]);
    cmd.args([
        "serve",
        "--http",
        &format!("0.0.0.0:{port}"),
        "--auth-token",
        "",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(15), cmd.output())
        .await
        .expect("serve with an empty token kept running")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--auth-token") && stderr.contains("empty"),
        "{stderr}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[tokio::test]
async fn the_bearer_token_is_required_and_checked_exactly() {
    let home = TestHome::new();
    let cfg = unmanaged(&home);
    let server = Server::start(&home, &cfg, "127.0.0.1", &["--auth-token", MCP_TOKEN], &[]).await;

    let near_misses = [
        String::new(),
        "Bearer wrong".to_string(),
        format!("Bearer {MCP_TOKEN}x"),
        format!("Bearer {}", &MCP_TOKEN[..MCP_TOKEN.len() - 1]),
        format!("Bearer  {MCP_TOKEN}"),
        MCP_TOKEN.to_string(),
        format!("Basic {MCP_TOKEN}"),
        format!("Token {MCP_TOKEN}"),
    ];
    for auth in &near_misses {
        let headers: Vec<(&str, &str)> = if auth.is_empty() {
            vec![]
        } else {
            vec![("authorization", auth.as_str())]
        };
        let (status, h) = server.post_init(&headers).await;
        assert_eq!(status, 401, "Authorization {auth:?} must be refused");
        assert_eq!(
            h.get("www-authenticate").and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "401 names the scheme"
        );
    }
    // Other methods and paths are covered too.
    let http = reqwest::Client::new();
    for (method, path) in [
        (reqwest::Method::GET, "/mcp"),
        (reqwest::Method::DELETE, "/mcp"),
        (reqwest::Method::GET, "/"),
    ] {
        let r = http
            .request(
                method.clone(),
                format!("http://127.0.0.1:{}{path}", server.port),
            )
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let right = format!("Bearer {MCP_TOKEN}");
    let (status, _) = server.post_init(&[("authorization", &right)]).await;
    assert_eq!(status, 200, "the right bearer is accepted");

    // rmcp's client: without the token it cannot connect, with it everything works.
    let refused = ().serve(StreamableHttpClientTransport::from_uri(server.url())).await;
    assert!(refused.is_err(), "a client without the token connects");
    let c = client(server.url(), Some(MCP_TOKEN)).await;
    assert_eq!(c.list_all_tools().await.unwrap().len(), 5, "the five tools");
    let r = c
        .call_tool(CallToolRequestParams::new("bitrouter_status"))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{:?}", r.content);
    let _ = c.cancel().await;

    let log = server.stop().await;
    assert!(
        !log.contains(MCP_TOKEN),
        "the server's log shows its bearer token:\n{log}"
    );
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_refused() {
    let home = TestHome::new();
    let cfg = unmanaged(&home);
    let server = Server::start(&home, &cfg, "127.0.0.1", &[], &[]).await;
    for origin in [
        "http://evil.example",
        "https://evil.example:443",
        "http://localhost.evil.example:1234",
        "http://127.0.0.1.evil.example",
        "null",
    ] {
        let (status, _) = server.post_init(&[("origin", origin)]).await;
        assert_eq!(status, 403, "Origin {origin} must be refused");
    }
    for origin in [
        "http://localhost:1234",
        "http://127.0.0.1:5173",
        "http://[::1]:8080",
    ] {
        let (status, _) = server.post_init(&[("origin", origin)]).await;
        assert_eq!(status, 200, "Origin {origin} is a local page");
    }
    let (status, _) = server.post_init(&[]).await;
    assert_eq!(status, 200, "no Origin (not a browser)");

    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host.
    let (status, _) = server.post_init(&[("host", "evil.example")]).await;
    assert_eq!(status, 403, "foreign Host header");
    let (status, _) = server
        .post_init(&[("host", &format!("localhost:{}", server.port))])
        .await;
    assert_eq!(status, 200, "Host localhost");

    // The SSE stream is guarded too.
    let r = reqwest::Client::new()
        .get(server.url())
        .header("accept", "text/event-stream")
        .header("origin", "http://evil.example")
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "GET with a foreign Origin"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Secrets

/// An upstream that refuses every chat and quotes the credential it was sent, as some
/// OpenAI-compatible providers do; its model listing answers 200 so routes stay up.
async fn echoing_upstream() -> std::net::SocketAddr {
    async fn handler(
        method: axum::http::Method,
        uri: axum::http::Uri,
        headers: HeaderMap,
    ) -> axum::response::Response {
        if method == axum::http::Method::GET && uri.path().ends_with("/models") {
            return axum::Json(
                json!({"object": "list", "data": [{"id": "m1", "object": "model"}]}),
            )
            .into_response();
        }
        let sent: Vec<String> = ["authorization", "x-api-key", "x-goog-api-key"]
            .iter()
            .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
            .map(String::from)
            .collect();
        let message = format!("Incorrect API key provided: {}", sent.join(", "));
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"message": message, "type": "invalid_request_error"}})),
        )
            .into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(handler);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Everything a user or agent can see, labelled by where it came from.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn add(&mut self, place: impl Into<String>, text: impl Into<String>) {
        self.0.push((place.into(), text.into()));
    }

    fn result(&mut self, place: &str, r: &CallToolResult) {
        let mut text = String::new();
        for c in &r.content {
            if let Some(t) = c.as_text() {
                text.push_str(&t.text);
                text.push('\n');
            }
        }
        if let Some(s) = &r.structured_content {
            text.push_str(&s.to_string());
        }
        self.add(place, text);
    }

    /// Where `needle` (or its distinctive middle) appears, with context.
    fn find(&self, needle: &str) -> Vec<String> {
        let core = &needle[4..needle.len() - 4];
        self.0
            .iter()
            .filter_map(|(place, text)| {
                let at = text.find(core)?;
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(80)
                    .map_or(0, |(i, _)| i);
                let to = (at + core.len() + 80).min(text.len());
                let to = (to..=text.len())
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap();
                Some(format!("{place}: …{}…", &text[from..to]))
            })
            .collect()
    }
}

struct Client {
    c: RunningService<RoleClient, ()>,
}

impl Client {
    async fn call(&self, seen: &mut Seen, tool: &str, args: Value) -> CallToolResult {
        let Value::Object(map) = args.clone() else {
            unreachable!()
        };
        let r = tokio::time::timeout(
            WAIT,
            self.c
                .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(map)),
        )
        .await
        .unwrap_or_else(|_| panic!("{tool} {args}: no answer"))
        .unwrap_or_else(|e| panic!("{tool} {args}: {e}"));
        seen.result(&format!("{tool} {args}"), &r);
        r
    }

    async fn ok(&self, seen: &mut Seen, tool: &str, args: Value) -> Value {
        let r = self.call(seen, tool, args.clone()).await;
        assert_ne!(r.is_error, Some(true), "{tool} {args}: {:?}", r.content);
        r.structured_content.unwrap()
    }

    async fn err(&self, seen: &mut Seen, tool: &str, args: Value) {
        let r = self.call(seen, tool, args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{tool} {args} should fail");
    }

    async fn status_until(
        &self,
        seen: &mut Seen,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let s = self.ok(seen, "bitrouter_status", json!({})).await;
            if pred(&s) {
                return s;
            }
            assert!(start.elapsed() < WAIT, "status never showed {what}: {s:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn read(&self, seen: &mut Seen, uri: &str) {
        let r = self
            .c
            .read_resource(ReadResourceRequestParams::new(uri))
            .await;
        seen.add(format!("resource {uri}"), format!("{r:?}"));
    }
}

fn healthy(s: &Value) -> bool {
    s["daemon"]["state"] == "healthy"
}

/// Every file under `dir`, concatenated with its path.
fn read_tree(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(read_tree(&p));
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                out.push((
                    p.display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_keys_never_show_in_tool_output_errors_or_logs() {
    let home = TestHome::new();
    let mut seen = Seen::default();
    let echo = echoing_upstream().await;
    let (ok, printed) = common::auth_login(&home, &format!("ANTHROPIC_API_KEY={KEY_DOTENV}\n"));
    assert!(ok, "auth login: {printed}");
    seen.add("auth login output", printed);

    let port = free_port();
    let config = json!({
        "port": port,
        "healthCheckIntervalMs": 300,
        "providers": {
            "pa": {"derives": "openai", "apiBase": format!("http://{echo}/v1"), "apiKey": KEY_LITERAL},
            "openai": {"apiBase": format!("http://{echo}/v1")},
            "anthropic": {"apiBase": format!("http://{echo}")},
            "google": {"apiBase": format!("http://{echo}/v1beta")}
        },
        "models": {
            "smart": {"strategy": "priority", "endpoints": [
                {"provider": "pa", "modelId": "m1"}, {"provider": "openai", "modelId": "gpt-4o"}]},
            "claude": {"endpoints": [{"provider": "anthropic", "modelId": "claude-x"}]},
            "gem": {"endpoints": [{"provider": "google", "modelId": "gemini-x"}]}
        }
    });
    let cfg = home.write_config(&config);
    let server = Server::start(
        &home,
        &cfg,
        "127.0.0.1",
        &["--auth-token", MCP_TOKEN],
        // The default log level, as users run it.
        &[("OPENAI_API_KEY", KEY_ENV), ("BITROUTER_MCP_LOG", "info")],
    )
    .await;
    let mcp = Client {
        c: client(server.url(), Some(MCP_TOKEN)).await,
    };
    let s = mcp.status_until(&mut seen, "healthy", healthy).await;
    let providers = s["providers"].to_string();
    assert!(
        providers.contains("OPENAI_API_KEY"),
        "status names the env source: {providers}"
    );

    // Every tool, success and error paths.
    mcp.ok(&mut seen, "bitrouter_account", json!({})).await;
    let acc = mcp
        .ok(
            &mut seen,
            "bitrouter_account",
            json!({"action": "generate"}),
        )
        .await;
    let prefix = acc["changed"]["prefix"].as_str().unwrap().to_string();
    mcp.ok(
        &mut seen,
        "bitrouter_account",
        json!({"action": "generate", "set_active": false}),
    )
    .await;
    mcp.ok(
        &mut seen,
        "bitrouter_account",
        json!({"action": "set_active", "account": &prefix[..8]}),
    )
    .await;
    for args in [
        json!({"action": "set_active", "account": 99}),
        json!({"action": "set_active", "account": "zzzz"}),
        json!({"action": "bogus"}),
        json!({"action": "list", "account": 0}),
    ] {
        mcp.err(&mut seen, "bitrouter_account", args).await;
    }
    let minted = mcp
        .ok(
            &mut seen,
            "bitrouter_keygen",
            json!({"name": "s1", "exp": "1h",
                   "models": ["smart", "claude", "gem", "openai:*", "anthropic:*", "google:*", "pa:*"]}),
        )
        .await;
    let token = minted["token"].as_str().unwrap().to_string();
    for args in [
        json!({"name": "s1"}),
        json!({"exp": "5w"}),
        json!({"scope": "admin"}),
        json!({"name": "../x"}),
        json!({"models": []}),
        json!({"budget_range": "weekly"}),
    ] {
        mcp.err(&mut seen, "bitrouter_keygen", args).await;
    }
    home.bitrouter(&["keygen", "--name", "fromcli", "--exp", "1h"]);
    let cli_token = std::fs::read_to_string(home.home().token_file(&prefix, "fromcli")).unwrap();
    let mut no_token_text = Vec::new();
    let listed = mcp.ok(&mut seen, "bitrouter_keys", json!({})).await;
    no_token_text.push(("keys list", listed.to_string()));
    for name in ["s1", "fromcli"] {
        let shown = mcp
            .ok(
                &mut seen,
                "bitrouter_keys",
                json!({"action": "show", "name": name}),
            )
            .await;
        no_token_text.push(("keys show", shown.to_string()));
    }
    for args in [
        json!({"action": "show", "name": "missing"}),
        json!({"action": "remove", "name": "missing"}),
        json!({"action": "show"}),
        json!({"action": "burn"}),
    ] {
        mcp.err(&mut seen, "bitrouter_keys", args).await;
    }
    mcp.err(&mut seen, "bitrouter_status", json!({"verbose": true}))
        .await;
    mcp.read(&mut seen, "bitrouter://routes").await;
    mcp.read(&mut seen, "bitrouter://metrics").await;
    mcp.read(&mut seen, "bitrouter://nope").await;

    // Trouble: upstreams that quote the key back, a wrong token, a killed daemon.
    for model in [
        "smart",
        "claude",
        "gem",
        "openai:gpt-4o",
        "pa:m1",
        "anthropic:claude-x",
    ] {
        // The daemon's answer is BitRouter's business, not ours; noted, not asserted.
        let (status, body) = chat(port, &token, model).await;
        let quoted = secrets().iter().any(|(_, k)| body.contains(k));
        eprintln!("chat {model}: {status}; the daemon's answer quotes a provider key: {quoted}");
    }
    let (status, _) = chat(port, "not-a-token", "smart").await;
    assert_eq!(status, 401, "a wrong token is refused by the daemon");
    let pid = s["daemon"]["pid"].as_u64().unwrap() as u32;
    kill(pid, "KILL");
    let s = mcp
        .status_until(&mut seen, "restarted", |s| {
            healthy(s) && s["daemon"]["pid"].as_u64() != Some(u64::from(pid))
        })
        .await;
    // Recovered: the crash is in `last_exit`, `last_error` is cleared.
    assert!(s["daemon"]["last_exit"].is_string(), "{s:#}");
    mcp.read(&mut seen, "bitrouter://routes").await;
    mcp.read(&mut seen, "bitrouter://metrics").await;

    // A key added while running restarts the daemon to load it.
    let before = mcp.ok(&mut seen, "bitrouter_status", json!({})).await;
    let (ok, printed) = common::auth_login(&home, &format!("GOOGLE_API_KEY={KEY_LATE}\n"));
    assert!(ok, "{printed}");
    seen.add("auth login output (running)", printed);
    let old = before["daemon"]["pid"].as_u64();
    mcp.status_until(&mut seen, "restarted with the new key", |s| {
        healthy(s) && s["daemon"]["pid"].as_u64() != old
    })
    .await;
    for model in ["gem", "google:gemini-x"] {
        chat(port, &token, model).await;
    }
    mcp.status_until(&mut seen, "a final look", |_| true).await;
    mcp.read(&mut seen, "bitrouter://routes").await;
    mcp.read(&mut seen, "bitrouter://metrics").await;
    let _ = mcp.c.cancel().await;
    let server_log = server.stop().await;

    // Where secrets must not be.
    seen.add("server stderr", server_log);
    let h = home.home();
    let mut masked = 0;
    for (path, text) in read_tree(&h.logs_dir()) {
        masked += text.matches("[REDACTED]").count();
        seen.add(format!("daemon log {path}"), text);
    }
    eprintln!("daemon log: {masked} secrets masked");
    seen.add(
        "bitrouter.yaml",
        std::fs::read_to_string(h.daemon_config_file()).unwrap(),
    );
    let mut leaks = leaks_of_planted_keys(&seen);
    // Minted tokens are secrets too: not in any log.
    for (place, text) in &seen.0 {
        let is_log = place.starts_with("server stderr") || place.starts_with("daemon log");
        for (what, t) in [("keygen token", &token), ("CLI token", &cli_token)] {
            let signature = t.trim().rsplit('.').next().unwrap();
            if is_log && text.contains(signature) {
                leaks.push(format!("{what} in {place}"));
            }
        }
    }
    // Saved tokens are listed and shown by their claims, never by their text.
    for (place, text) in &no_token_text {
        for (what, t) in [("keygen token", &token), ("CLI token", &cli_token)] {
            let signature = t.trim().rsplit('.').next().unwrap();
            if text.contains(t.trim()) || text.contains(signature) {
                leaks.push(format!("{what} text in {place}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets leaked ({} places):\n{}",
        leaks.len(),
        leaks.join("\n\n")
    );
    // The keys do live where they belong.
    let env = std::fs::read_to_string(h.env_file()).unwrap();
    for key in [KEY_LITERAL, KEY_DOTENV, KEY_LATE] {
        assert!(env.contains(key), ".env holds the provider keys");
    }
}

/// Each place a planted secret shows up, once per distinct text.
fn leaks_of_planted_keys(seen: &Seen) -> Vec<String> {
    let mut leaks = Vec::new();
    for (what, secret) in secrets() {
        for hit in seen.find(secret) {
            let line = format!("{what} found in {hit}");
            if !leaks.contains(&line) {
                leaks.push(line);
            }
        }
    }
    leaks
}

#[tokio::test]
async fn a_refused_config_edit_never_quotes_a_key() {
    let home = TestHome::new();
    let mut seen = Seen::default();
    let config = json!({
        "autoStart": false,
        "port": free_port(),
        "providers": {"pa": {"derives": "openai", "apiBase": "http://127.0.0.1:9/v1", "apiKey": KEY_LITERAL}},
        "models": {"smart": {"endpoints": [{"provider": "pa", "modelId": "m1"}]}}
    });
    let cfg = home.write_config(&config);
    let server = Server::start(
        &home,
        &cfg,
        "127.0.0.1",
        &[],
        &[("BITROUTER_MCP_LOG", "info")],
    )
    .await;
    let mcp = Client {
        c: client(server.url(), None).await,
    };
    mcp.ok(&mut seen, "bitrouter_status", json!({})).await;
    // Slips made while editing by hand: a half-written file, the key pasted where the provider
    // object belongs, the key in the port's place, a key with a line break.
    let mut key_as_provider = config.clone();
    key_as_provider["providers"]["pa"] = json!(KEY_LITERAL);
    let mut key_as_port = config.clone();
    key_as_port["port"] = json!(KEY_LITERAL);
    let mut key_with_newline = config.clone();
    key_with_newline["providers"]["pa"]["apiKey"] = json!(format!("{KEY_LITERAL}\n"));
    let edits = [
        ("half-written", b"{ \"port\": ".to_vec()),
        (
            "key as provider",
            serde_json::to_vec_pretty(&key_as_provider).unwrap(),
        ),
        (
            "key as port",
            serde_json::to_vec_pretty(&key_as_port).unwrap(),
        ),
        (
            "key with a line break",
            serde_json::to_vec_pretty(&key_with_newline).unwrap(),
        ),
    ];
    for (what, bytes) in edits {
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::fs::write(&cfg, bytes).unwrap();
        let s = mcp
            .status_until(&mut seen, what, |s| s["config_error"].is_string())
            .await;
        eprintln!("{what}: {}", s["config_error"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        home.write_config(&config);
        mcp.status_until(&mut seen, "the error cleared", |s| {
            s["config_error"].is_null()
        })
        .await;
    }
    let _ = mcp.c.cancel().await;
    seen.add("server stderr", server.stop().await);
    let leaks = leaks_of_planted_keys(&seen);
    assert!(
        leaks.is_empty(),
        "a refused config edit quoted a key ({} places):\n{}",
        leaks.len(),
        leaks.join("\n\n")
    );
}

#[test]
fn auth_login_errors_never_echo_a_pasted_key() {
    let home = TestHome::new();
    // Typical slips: the key without NAME=, a base64 key whose padding looks like NAME=value,
    // a lower-case name, a key split over two lines.
    let pasted = "dGhpc0lzQVNlY3JldEtleVdpdGhQYWRkaW5nMDEyMzQ1";
    for input in [
        format!("{KEY_DOTENV}\n"),
        format!("{pasted}==\n"),
        format!("openai_api_key={KEY_DOTENV}\n"),
        format!(
            "OPENAI_API_KEY={}\n{}\n",
            &KEY_DOTENV[..12],
            &KEY_DOTENV[12..]
        ),
    ] {
        let (ok, printed) = common::auth_login(&home, &input);
        assert!(!ok, "auth login should refuse {input:?}: {printed}");
        for secret in [KEY_DOTENV, pasted] {
            let core = &secret[4..secret.len() - 4];
            assert!(
                !printed.contains(core),
                "auth login echoed the key it refused:\n{printed}"
            );
        }
    }
    assert!(
        !home.home().env_file().exists(),
        "a refused login writes nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// File permissions

/// Every directory from BitRouter's home down to the secrets is 0700, every key, token and
/// `.env` file 0600. Returns the problems.
fn permission_problems(home: &TestHome) -> Vec<String> {
    let h = home.home();
    let mut problems = Vec::new();
    let check_dir = |p: &Path, problems: &mut Vec<String>| {
        if mode(p) != 0o700 {
            problems.push(format!("dir {:o} {}", mode(p), p.display()));
        }
    };
    check_dir(&h.bitrouter_home(), &mut problems);
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            out.push(e.path());
            if e.path().is_dir() {
                walk(&e.path(), out);
            }
        }
    }
    let mut all = vec![h.keys_dir()];
    walk(&h.keys_dir(), &mut all);
    for p in all {
        if p.is_dir() {
            check_dir(&p, &mut problems);
        } else if mode(&p) != 0o600 {
            problems.push(format!("file {:o} {}", mode(&p), p.display()));
        }
    }
    if mode(&h.env_file()) != 0o600 {
        problems.push(format!("file {:o} .env", mode(&h.env_file())));
    }
    problems
}

#[tokio::test]
async fn keys_tokens_and_env_are_private_even_when_the_cli_wrote_them() {
    let home = TestHome::new();
    // The CLI writes with the umask: world-readable seeds and tokens.
    let cli = String::from_utf8_lossy(&home.bitrouter(&["account", "--generate-key"]).stdout)
        .into_owned();
    home.bitrouter(&["keygen", "--name", "cli-token", "--exp", "1h"]);
    let (ok, printed) = common::auth_login(&home, &format!("OPENAI_API_KEY={KEY_ENV}\n"));
    assert!(ok, "{printed}");
    let before = permission_problems(&home);
    eprintln!("as the CLI left them: {before:#?}");
    assert!(cli.contains("solana:"), "{cli}");

    // Starting the server makes all of it private.
    let mcp = Mcp::stdio(&home, None).await;
    assert_eq!(
        permission_problems(&home),
        Vec::<String>::new(),
        "after the server started"
    );
    // What the server writes itself is private too.
    mcp.ok("bitrouter_account", json!({"action": "generate"}))
        .await;
    mcp.ok(
        "bitrouter_account",
        json!({"action": "generate", "set_active": false}),
    )
    .await;
    mcp.ok("bitrouter_keygen", json!({"name": "ours", "exp": "1h"}))
        .await;
    assert_eq!(
        permission_problems(&home),
        Vec::<String>::new(),
        "after our tools wrote"
    );

    // An account the CLI writes while the server runs is behind a private directory at once...
    home.bitrouter(&["account", "--generate-key"]);
    let h = home.home();
    assert_eq!(mode(&h.bitrouter_home()), 0o700, "BitRouter's home");
    assert_eq!(mode(&h.keys_dir()), 0o700, ".keys");
    mcp.close().await;

    // ...and private itself from the next start on.
    let mcp = Mcp::stdio(&home, None).await;
    assert_eq!(
        permission_problems(&home),
        Vec::<String>::new(),
        "after a restart"
    );
    let list = mcp.ok("bitrouter_account", json!({})).await;
    assert_eq!(list["accounts"].as_array().unwrap().len(), 4);
    mcp.close().await;
}

// ---------------------------------------------------------------------------------------------
// Hardening: generated names, keys in the wrong field, the daemon's exposure, other local users

/// Keys planted in fields where they do not belong: one shaped like an OpenAI key, one bare
/// (32 letters and digits, as several providers issue them).
const KEY_MISPLACED: &str = "sk-proj-misplacedKey-8c1d4e7f2a9b";
const KEY_BARE: &str = "Qm7Zt2Vx9Lk4Rp8Wn3Hs6Jd1Fg5Cb0Ya";

/// Where either misplaced key shows up.
fn leaks_of_misplaced_keys(seen: &Seen) -> Vec<String> {
    let mut leaks = Vec::new();
    for key in [KEY_MISPLACED, KEY_BARE] {
        leaks.extend(seen.find(key));
    }
    leaks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_whose_names_differ_only_in_case_or_punctuation_keep_their_own_upstream_and_key() {
    use common::upstream::Upstream;
    let home = TestHome::new();
    let names = ["team-a", "team_a", "Smart", "smart"];
    let mut ups = Vec::new();
    for n in names {
        ups.push(Upstream::start(n).await);
    }
    let port = free_port();
    let mut models = serde_json::Map::new();
    for (n, up) in names.iter().zip(&ups) {
        models.insert(
            n.to_string(),
            json!({"endpoints": [{"provider": "openai", "modelId": format!("m-{n}"),
                                  "apiBase": up.api_base(), "apiKey": format!("key-of-{n}-0123456789")}]}),
        );
    }
    let cfg = home.write_config(&json!({
        "port": port,
        "healthCheckIntervalMs": 500,
        "models": models,
    }));
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    mcp.wait_healthy().await;
    let token = mcp.api_token().await;
    for n in names {
        let (status, body) = chat(port, &token, n).await;
        assert_eq!(status, 200, "{n}: {body}");
    }
    let mut wrong = Vec::new();
    for (n, up) in names.iter().zip(&ups) {
        let expected = format!("Bearer key-of-{n}-0123456789");
        let chats: Vec<_> = up
            .seen()
            .into_iter()
            .filter(|s| s.path == "/v1/chat/completions")
            .collect();
        if chats.len() != 1 {
            wrong.push(format!(
                "upstream of {n} got {} chat requests: {chats:?}",
                chats.len()
            ));
        }
        for s in &chats {
            if s.model.as_deref() != Some(format!("m-{n}").as_str())
                || s.authorization.as_deref() != Some(expected.as_str())
            {
                wrong.push(format!(
                    "upstream of {n} got model {:?} with {:?}",
                    s.model, s.authorization
                ));
            }
        }
    }
    mcp.close().await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_key_pasted_into_any_config_field_is_never_echoed() {
    let home = TestHome::new();
    let mut seen = Seen::default();
    let good = json!({
        "autoStart": false,
        "port": free_port(),
        "providers": {"pa": {"derives": "openai", "apiBase": "http://127.0.0.1:9/v1"}},
        "models": {"smart": {"endpoints": [{"provider": "pa", "modelId": "m1"}]}}
    });
    // Each field the issue names, with the path the error must give instead of the value.
    let edits = |key: &str| -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        let mut c = good.clone();
        c["providers"]["pa"]["apiBase"] = json!(key);
        out.push(("providers.pa.apiBase", c));
        let mut c = good.clone();
        c["models"]["smart"]["endpoints"][0]["apiBase"] = json!(key);
        out.push(("models.smart.endpoints[0].apiBase", c));
        let mut c = good.clone();
        c["host"] = json!(key);
        out.push(("host", c));
        let mut c = good.clone();
        c["models"]["smart"]["strategy"] = json!(key);
        out.push(("strategy", c));
        let mut c = good.clone();
        c["models"]["smart"]["endpoints"][0]["provider"] = json!(key);
        out.push(("models.smart.endpoints[0].provider", c));
        let mut c = good.clone();
        c["providers"]["pa"]["envPrefix"] = json!(key);
        out.push(("providers.pa.envPrefix", c));
        let mut c = good.clone();
        c["providers"]["pa"]["derives"] = json!(key);
        out.push(("providers.pa.derives", c));
        let mut c = good.clone();
        c["providers"][key] = json!({"derives": "openai"});
        out.push(("providers.", c));
        out
    };
    // At startup: the error goes to stderr and the server exits.
    for key in [KEY_MISPLACED, KEY_BARE] {
        for (path, config) in edits(key) {
            let file = home.write_config_as("startup.json", &config);
            let out = common::server_command(&home, &file, &[])
                .args(["serve", "--stdio"])
                .stdin(Stdio::null())
                .output()
                .await
                .unwrap();
            assert!(!out.status.success(), "{path}: the server must refuse it");
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(stderr.contains(path), "{path}: {stderr}");
            seen.add(format!("startup stderr ({path})"), stderr);
        }
    }
    // Live: refused, named in status and on stderr.
    let cfg = home.write_config(&good);
    let server = Server::start(
        &home,
        &cfg,
        "127.0.0.1",
        &[],
        &[("BITROUTER_MCP_LOG", "info")],
    )
    .await;
    let mcp = Client {
        c: client(server.url(), None).await,
    };
    for key in [KEY_MISPLACED, KEY_BARE] {
        for (path, config) in edits(key) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            home.write_config(&config);
            let s = mcp
                .status_until(&mut seen, path, |s| {
                    s["config_error"].as_str().is_some_and(|e| e.contains(path))
                })
                .await;
            eprintln!("{path}: {}", s["config_error"]);
            tokio::time::sleep(Duration::from_millis(20)).await;
            home.write_config(&good);
            mcp.status_until(&mut seen, "the error cleared", |s| {
                s["config_error"].is_null()
            })
            .await;
        }
    }
    let _ = mcp.c.cancel().await;
    seen.add("server stderr", server.stop().await);
    let leaks = leaks_of_misplaced_keys(&seen);
    assert!(
        leaks.is_empty(),
        "a key in the wrong field was echoed ({} places):\n{}",
        leaks.len(),
        leaks.join("\n\n")
    );
}

#[tokio::test]
async fn a_daemon_host_beyond_loopback_needs_the_explicit_opt_in() {
    let home = TestHome::new();
    let open = json!({"autoStart": false, "port": free_port(), "host": "0.0.0.0"});
    let file = home.write_config_as("open.json", &open);
    let out = common::server_command(&home, &file, &[])
        .args(["serve", "--stdio"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "0.0.0.0 without the opt-in must be refused"
    );
    assert!(
        stderr.contains("host") && stderr.contains("exposeToNetwork"),
        "{stderr}"
    );
    // Live: the same edit is refused and named; the opt-in is shown in status.
    let cfg = home.write_config(&json!({"autoStart": false, "port": free_port()}));
    let mcp = Mcp::http(&home, Some(&cfg)).await;
    let s = mcp.ok("bitrouter_status", json!({})).await;
    assert_eq!(s["expose_to_network"], false, "{s:#}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::write(&cfg, serde_json::to_vec(&open).unwrap()).unwrap();
    let s = mcp
        .wait_status("the refusal", WAIT, |s| {
            s["config_error"]
                .as_str()
                .is_some_and(|e| e.contains("exposeToNetwork"))
        })
        .await;
    assert!(
        s["listen"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{s:#}"
    );
    let mut opted = open.clone();
    opted["exposeToNetwork"] = json!(true);
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::write(&cfg, serde_json::to_vec(&opted).unwrap()).unwrap();
    let s = mcp
        .wait_status("the opt-in", WAIT, |s| s["expose_to_network"] == true)
        .await;
    assert!(s["config_error"].is_null(), "{s:#}");
    assert!(
        s["listen"].as_str().unwrap().starts_with("0.0.0.0:"),
        "{s:#}"
    );
    mcp.close().await;
}

/// Sends one raw `initialize` POST to `port` from a shell running as `uid`; returns what came
/// back (status line first).
async fn initialize_as(uid: u32, port: u16, bearer: Option<&str>) -> String {
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{INIT}",
        INIT.len()
    );
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port} || exit 9; printf '%s' \"$REQ\" >&3; timeout 10 cat <&3"
    );
    let out = tokio::process::Command::new("bash")
        .args(["-c", &script])
        .env("REQ", request)
        .uid(uid)
        .gid(uid)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn another_local_user_cannot_drive_the_mcp_server() {
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    const NOBODY: u32 = 65534;
    assert_ne!(me, NOBODY, "the test needs a second uid");
    let home = TestHome::new();
    let cfg = unmanaged(&home);
    let server = Server::start(&home, &cfg, "127.0.0.1", &[], &[]).await;
    let theirs = initialize_as(NOBODY, server.port, None).await;
    assert!(
        theirs.starts_with("HTTP/1.1 403"),
        "another user's connection must be refused:\n{theirs}"
    );
    assert!(!theirs.contains("serverInfo"), "{theirs}");
    let mine = initialize_as(me, server.port, None).await;
    assert!(
        mine.starts_with("HTTP/1.1 200") && mine.contains("serverInfo"),
        "the server's own user is served:\n{mine}"
    );
    // rmcp's client as the same user works as before.
    let mcp = Client {
        c: client(server.url(), None).await,
    };
    let mut seen = Seen::default();
    mcp.ok(&mut seen, "bitrouter_status", json!({})).await;
    let _ = mcp.c.cancel().await;
    let log = server.stop().await;
    assert!(
        log.contains("another local user"),
        "the refusal is logged:\n{log}"
    );

    // With a bearer token, holding the token is what counts, whoever connects.
    let server = Server::start(&home, &cfg, "127.0.0.1", &["--auth-token", MCP_TOKEN], &[]).await;
    let theirs = initialize_as(NOBODY, server.port, Some(MCP_TOKEN)).await;
    assert!(theirs.starts_with("HTTP/1.1 200"), "{theirs}");
    let no_token = initialize_as(NOBODY, server.port, None).await;
    assert!(no_token.starts_with("HTTP/1.1 401"), "{no_token}");
    server.stop().await;
}
