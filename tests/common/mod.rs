//! Shared harness for the integration tests: temp homes, our server binary (stdio and HTTP) driven
//! by rmcp's client, the real `bitrouter` daemon, and fake upstream LLM providers on 127.0.0.1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod rig;
pub mod tls;
pub mod upstream;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResult, ReadResourceRequestParams};
use rmcp::service::RunningService;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

pub const SERVER_BIN: &str = env!("CARGO_BIN_EXE_bitrouter-mcp");

/// The pinned `bitrouter` binary: `$BITROUTER_BIN` or the project's cache.
pub fn bitrouter_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BITROUTER_BIN") {
        return PathBuf::from(p);
    }
    let p = bitrouter_mcp::supervisor::binary::cached_binary().expect("no cache dir");
    assert!(
        p.is_file(),
        "bitrouter {} not found at {}: run scripts/install-bitrouter.sh",
        bitrouter_mcp::PINNED_BITROUTER_VERSION,
        p.display()
    );
    p
}

/// A free TCP port on 127.0.0.1 (bound then released), never one handed out before in this test
/// process: the kernel may offer a just-released port again before its taker has bound it (a
/// daemon port and an MCP port once came out equal).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    // Every test reaches this or `TestHome::new` before building an HTTP client.
    bitrouter_mcp::tls::ensure_crypto_provider();
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A temp data dir, kept (and named in the panic message) when a test fails.
pub struct TestHome {
    pub dir: tempfile::TempDir,
}

impl TestHome {
    pub fn new() -> Self {
        // reqwest is built without a default TLS provider: install ours before any client.
        bitrouter_mcp::tls::ensure_crypto_provider();
        Self {
            dir: tempfile::Builder::new()
                .prefix("bitrouter-mcp-test-")
                .tempdir()
                .unwrap(),
        }
    }
    /// The server's `--data-dir`: a child of the temp dir, so configs can sit beside it.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub fn home(&self) -> bitrouter_mcp::home::Home {
        bitrouter_mcp::home::Home::new(self.data_dir())
    }
    pub fn bitrouter_home(&self) -> PathBuf {
        self.home().bitrouter_home()
    }
    /// Writes a plugin config file and returns its path.
    pub fn write_config(&self, json: &Value) -> PathBuf {
        self.write_config_as("config.json", json)
    }
    pub fn write_config_as(&self, name: &str, json: &Value) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, serde_json::to_vec_pretty(json).unwrap()).unwrap();
        p
    }
    /// The test CA's certificate in this home's temp dir: `SSL_CERT_FILE` of every process a
    /// test starts, so HTTPS fake upstreams are trusted as a real provider's would be.
    pub fn ca_file(&self) -> PathBuf {
        tls::ca().write_to(self.dir.path())
    }
    /// Where [`Mcp::stdio_logged`] writes the server's stderr.
    pub fn server_stderr(&self) -> PathBuf {
        self.dir.path().join("server-stderr.log")
    }
    /// Every file under the data dir, relative, sorted; the running servers' ownership files
    /// (`owner.lock`, `owner.json`) left out.
    pub fn files(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(base, &p, out);
                    } else {
                        out.push(p.strip_prefix(base).unwrap().display().to_string());
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data_dir(), &self.data_dir(), &mut out);
        // The owner's published state (and its atomic write in flight) is the server's own
        // bookkeeping, rewritten on a timer: not a file any tool call leaves behind.
        out.retain(|f| f != "owner.lock" && f != "owner.json" && !f.starts_with(".tmp-"));
        out.sort();
        out
    }
    /// Runs the real `bitrouter` CLI against this home.
    pub fn bitrouter(&self, args: &[&str]) -> std::process::Output {
        let out = std::process::Command::new(bitrouter_bin())
            .arg("--home-dir")
            .arg(self.bitrouter_home())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bitrouter {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// An rmcp client connected to our server.
pub struct Mcp {
    pub client: RunningService<RoleClient, ()>,
    child: Option<tokio::process::Child>,
}

impl Mcp {
    /// Spawns `bitrouter-mcp serve --stdio` and connects over its stdin/stdout. Without a config,
    /// one with `autoStart: false` is used, so no daemon is started.
    pub async fn stdio(home: &TestHome, config: Option<&Path>) -> Self {
        Self::stdio_env(home, config, &[]).await
    }

    /// Like [`Mcp::stdio`] with extra environment for the server.
    pub async fn stdio_env(home: &TestHome, config: Option<&Path>, env: &[(&str, &str)]) -> Self {
        let config = config
            .map(Path::to_path_buf)
            .unwrap_or_else(|| unmanaged_config(home));
        let mut cmd = server_command(home, &config, env);
        cmd.args(["serve", "--stdio"]);
        let transport = TokioChildProcess::new(cmd).unwrap();
        let client = ().serve(transport).await.unwrap();
        Self {
            client,
            child: None,
        }
    }

    /// Like [`Mcp::stdio_env`], with the server's stderr kept in [`TestHome::server_stderr`] so a
    /// test can read what it logged.
    pub async fn stdio_logged(home: &TestHome, config: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = server_command(home, config, env);
        cmd.args(["serve", "--stdio"]);
        let stderr = std::fs::File::create(home.server_stderr()).unwrap();
        let (transport, _) = TokioChildProcess::builder(cmd)
            .stderr(stderr)
            .spawn()
            .unwrap();
        let client = ().serve(transport).await.unwrap();
        Self {
            client,
            child: None,
        }
    }

    /// Spawns `bitrouter-mcp serve --http 127.0.0.1:<port>` and connects over streamable HTTP.
    pub async fn http(home: &TestHome, config: Option<&Path>) -> Self {
        Self::http_env(home, config, &[]).await
    }

    pub async fn http_env(home: &TestHome, config: Option<&Path>, env: &[(&str, &str)]) -> Self {
        let config = config
            .map(Path::to_path_buf)
            .unwrap_or_else(|| unmanaged_config(home));
        let port = free_port();
        let mut cmd = server_command(home, &config, env);
        cmd.args(["serve", "--http", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn().unwrap();
        wait_for_port(port, Duration::from_secs(10)).await;
        let transport =
            StreamableHttpClientTransport::from_uri(format!("http://127.0.0.1:{port}/mcp"));
        let client = ().serve(transport).await.unwrap();
        Self {
            client,
            child: Some(child),
        }
    }

    /// Pid of the server process (HTTP mode only).
    pub fn server_pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(|c| c.id())
            .expect("http server pid")
    }

    /// Waits the server process's exit (HTTP mode only).
    pub async fn wait_server_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("http server");
        tokio::time::timeout(timeout, child.wait())
            .await
            .expect("server exits in time")
            .unwrap()
    }

    /// Waits for a healthy daemon; returns that status.
    pub async fn wait_healthy(&self) -> Value {
        self.wait_status("healthy", Duration::from_secs(30), |s| {
            s["daemon"]["state"] == "healthy"
        })
        .await
    }

    /// Generates an account (made active) and mints an api-scope token valid for an hour.
    pub async fn api_token(&self) -> String {
        self.ok(
            "bitrouter_account",
            serde_json::json!({"action": "generate"}),
        )
        .await;
        self.ok(
            "bitrouter_keygen",
            serde_json::json!({"exp": "1h", "scope": "api"}),
        )
        .await["token"]
            .as_str()
            .expect("keygen returns a token")
            .to_string()
    }

    /// Polls `bitrouter_status` until `pred` holds; returns that status.
    pub async fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let s = self.ok("bitrouter_status", serde_json::json!({})).await;
            if pred(&s) {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "status never showed {what} within {timeout:?}; last: {s:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        let mut params = CallToolRequestParams::new(tool.to_string());
        if let Value::Object(map) = args {
            params = params.with_arguments(map);
        }
        self.client.call_tool(params).await.unwrap()
    }

    /// Calls a tool that must succeed and returns its structured content.
    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args.clone()).await;
        assert_ne!(
            r.is_error,
            Some(true),
            "{tool} {args} failed: {:?}",
            r.content
        );
        r.structured_content
            .unwrap_or_else(|| panic!("{tool} returned no structured content"))
    }

    /// Calls a tool that must fail and returns its error text.
    pub async fn err(&self, tool: &str, args: Value) -> String {
        let r = self.call(tool, args.clone()).await;
        assert_eq!(
            r.is_error,
            Some(true),
            "{tool} {args} should have failed: {:?}",
            r.structured_content
        );
        r.content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn read_json(&self, uri: &str) -> Value {
        let r = self
            .client
            .read_resource(ReadResourceRequestParams::new(uri))
            .await
            .unwrap();
        match &r.contents[0] {
            rmcp::model::ResourceContents::TextResourceContents { text, .. } => {
                serde_json::from_str(text).unwrap()
            }
            other => panic!("expected text contents, got {other:?}"),
        }
    }

    pub async fn close(mut self) {
        let _ = self.client.close().await;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}

/// Our server binary with a data dir, a config, quiet logs and the pinned daemon.
pub fn server_command(
    home: &TestHome,
    config: &Path,
    env: &[(&str, &str)],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(SERVER_BIN);
    cmd.arg("--data-dir")
        .arg(home.data_dir())
        .arg("--config")
        .arg(config)
        .env("BITROUTER_MCP_LOG", "warn")
        .env("BITROUTER_BIN", bitrouter_bin())
        .env("SSL_CERT_FILE", home.ca_file());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                == Some("Z")
        }
    }
}

/// Waits until `pid` is gone.
pub async fn wait_gone(pid: u32, timeout: Duration) {
    let start = Instant::now();
    while !process_gone(pid) {
        assert!(
            start.elapsed() < timeout,
            "process {pid} still alive after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `sig` to `pid`.
pub fn kill(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// Runs `bitrouter-mcp auth login --stdin` with `input`; returns whether it succeeded and all
/// it printed.
pub fn auth_login(home: &TestHome, input: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(SERVER_BIN)
        .arg("--data-dir")
        .arg(home.data_dir())
        .args(["auth", "login", "--stdin"])
        .env_remove("BITROUTER_MCP_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

/// POSTs an OpenAI chat completion for `model` to the daemon on `port`; returns status and body
/// (status 0 when the request itself failed, e.g. timed out).
pub async fn chat(port: u16, token: &str, model: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .json(&serde_json::json!({
            "model": model,
            "messages": [{"role": "user", "content": "hi"}]
        }))
        .send()
        .await;
    match r {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// A config that starts no daemon, on a port nothing uses.
fn unmanaged_config(home: &TestHome) -> PathBuf {
    home.write_config_as(
        "unmanaged.json",
        &serde_json::json!({"autoStart": false, "port": free_port()}),
    )
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub async fn wait_for_port(port: u16, timeout: Duration) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < timeout,
            "nothing listened on 127.0.0.1:{port} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The real BitRouter daemon running `serve` in a test home; killed on drop.
pub struct Daemon {
    pub port: u16,
    child: tokio::process::Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Writes `yaml` as the home's `bitrouter.yaml` (with `server.listen` set) and starts the daemon.
    pub async fn start(home: &TestHome, yaml_body: &str) -> Self {
        Self::start_env(home, yaml_body, &[]).await
    }

    /// Like [`Daemon::start`] with extra environment for the daemon.
    pub async fn start_env(home: &TestHome, yaml_body: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let bh = home.bitrouter_home();
        std::fs::create_dir_all(&bh).unwrap();
        let yaml = format!("server:\n  listen: 127.0.0.1:{port}\n{yaml_body}");
        std::fs::write(bh.join("bitrouter.yaml"), yaml).unwrap();
        let log = home.data_dir().join("daemon-test.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(bitrouter_bin())
            .arg("--home-dir")
            .arg(&bh)
            .arg("serve")
            .env("SSL_CERT_FILE", home.ca_file())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let d = Self { port, child, log };
        let http = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = http.get(d.url("/health")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "daemon not healthy within 30 s; log:\n{}",
                std::fs::read_to_string(&d.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        d
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// POSTs an OpenAI chat completion for `model` with `token`; returns status and body text.
    pub async fn chat(&self, token: &str, model: &str) -> (u16, String) {
        chat(self.port, token, model).await
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Every file under `dir` (which must exist), relative path → bytes: to prove a tree unchanged.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The seed plugin README's example virtual models, as written there: `fast` balances OpenAI's
/// gpt-4o-mini and Anthropic's claude-3.5-haiku, `smart` prefers Anthropic's Sonnet over gpt-4o.
pub fn seed_models() -> Value {
    serde_json::json!({
        "fast": {"strategy": "load_balance", "endpoints": [
            {"provider": "openai", "modelId": "gpt-4o-mini"},
            {"provider": "anthropic", "modelId": "claude-3.5-haiku"}]},
        "smart": {"strategy": "priority", "endpoints": [
            {"provider": "anthropic", "modelId": "claude-sonnet-4-20250514"},
            {"provider": "openai", "modelId": "gpt-4o"}]}
    })
}
