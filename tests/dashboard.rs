//! The dashboard in a real browser: headless Chromium keeps the page at `/` open against our
//! HTTP server, the real daemon and fake upstreams; when the serving upstream dies the open page
//! shows the switch within 2 s without a reload (read from its live DOM over the DevTools
//! protocol). Also: foreign Origin/Host refused, the MCP App resource as an MCP client sees it,
//! and `bitrouter-mcp dashboard`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::rig::Rig;
use common::upstream::Mode;
use common::{Mcp, SERVER_BIN, TestHome, chat};
use serde_json::{Value, json};

const APP_URI: &str = "ui://bitrouter/dashboard";

/// The address the HTTP server recorded in its data dir (what `bitrouter-mcp dashboard` reads).
async fn recorded_address(home: &TestHome) -> SocketAddr {
    let path = home.data_dir().join("http.addr");
    for _ in 0..100 {
        if let Some(a) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server recorded no address in {}", path.display());
}

fn artifact_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the open page shows for model `smart`: the serving endpoints and the switches listed.
fn page_view(b: &mut browser::Browser) -> Value {
    b.eval(
        r#"(() => {
            const m = document.querySelector('[data-model="smart"]');
            return {
                serving: m ? m.dataset.serving : null,
                health: m ? [...m.querySelectorAll('tr[data-endpoint]')].map(r => r.dataset.endpoint + '=' + r.dataset.health) : [],
                switches: [...document.querySelectorAll('#timeline li[data-kind="switch"]')].map(l => l.textContent),
                polls: Number(document.body.dataset.polls || 0),
                daemon: document.getElementById('daemon').dataset.state || null,
            };
        })()"#,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_page_shows_a_failover_within_two_seconds() {
    if browser::chromium().is_none() {
        // make test installs it (.ci/run); a bare `cargo test` on a machine without it says so.
        panic!("chromium is not installed: apt-get install chromium (or set CHROMIUM)");
    }
    let Rig {
        home,
        mcp,
        upstreams: [a, b],
        port,
        token,
    } = Rig::priority(["a", "b"])
        .metrics_poll_ms(200)
        .http()
        .start()
        .await;
    mcp.wait_status("smart served by pa:m1", Duration::from_secs(30), |s| {
        s["models"][0]["serving"] == json!(["pa:m1"])
            && s["models"][0]["endpoints"][1]["health"] == "healthy"
    })
    .await;
    let addr = recorded_address(&home).await;
    let url = format!("http://{addr}/");

    let mut page = tokio::task::block_in_place(|| browser::Browser::open(&url));
    // Some traffic on the primary, so the charts have something to draw.
    for _ in 0..6 {
        assert_eq!(chat(port, &token, "smart").await.0, 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let start = Instant::now();
    let before = loop {
        let v = tokio::task::block_in_place(|| page_view(&mut page));
        if v["serving"] == "pa:m1" && v["polls"].as_u64() >= Some(3) {
            break v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "page never showed pa:m1 serving: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(before["daemon"], "healthy", "{before}");

    a.set_mode(Mode::Refuse).await;
    let killed = Instant::now();
    let after = loop {
        let v = tokio::task::block_in_place(|| page_view(&mut page));
        if v["serving"] == "pb:m2" {
            break v;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(2),
            "2 s after the serving upstream died the open page still shows {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let shown_after = killed.elapsed();
    eprintln!("page showed the switch {shown_after:?} after the upstream died");
    assert!(
        after["polls"].as_u64() > before["polls"].as_u64(),
        "same page, updated in place"
    );
    // The timeline lists the switch once the route table records it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let listed = loop {
        let v = tokio::task::block_in_place(|| page_view(&mut page));
        if v["switches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().contains("pa:m1 → pb:m2"))
            && v["health"]
                .as_array()
                .unwrap()
                .contains(&json!("pa:m1=unhealthy"))
        {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "timeline/health never showed it: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The same document as an MCP App: framed by a stand-in host that answers the App bridge
    // (ui/initialize, tools/call bitrouter_status) the way an MCP Apps host does.
    let app_html = app_text(&mcp).await;
    let framed = format!(
        r#"(() => {{
            window.__calls = 0;
            window.addEventListener('message', async (ev) => {{
                const m = ev.data;
                if (!m || m.jsonrpc !== '2.0' || m.id === undefined) return;
                let result = {{}};
                if (m.method === 'ui/initialize') {{
                    result = {{ protocolVersion: '2026-01-26', hostInfo: {{ name: 'test-host', version: '1' }}, hostCapabilities: {{}}, hostContext: {{}} }};
                }} else if (m.method === 'tools/call' && m.params.name === 'bitrouter_usage') {{
                    const r = await fetch('dashboard/usage');
                    const u = r.ok ? await r.json() : null;
                    result = u ? {{ content: [{{ type: 'text', text: JSON.stringify(u) }}], structuredContent: u }}
                               : {{ content: [{{ type: 'text', text: await r.text() }}], isError: true }};
                }} else if (m.method === 'tools/call' && m.params.name === 'bitrouter_status') {{
                    window.__calls += 1;
                    const s = await (await fetch('dashboard/status')).json();
                    result = {{ content: [{{ type: 'text', text: JSON.stringify(s) }}], structuredContent: s }};
                }}
                ev.source.postMessage({{ jsonrpc: '2.0', id: m.id, result }}, '*');
            }});
            const f = document.createElement('iframe');
            f.id = 'app';
            f.style.cssText = 'width: 1240px; height: 1100px; border: 2px solid gray';
            f.srcdoc = {};
            document.body.append(f);
            return true;
        }})()"#,
        serde_json::to_string(&app_html).unwrap(),
    );
    tokio::task::block_in_place(|| page.eval(&framed));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = tokio::task::block_in_place(|| {
            page.eval(
                r#"(() => {
                    const d = document.getElementById('app').contentDocument;
                    const m = d && d.querySelector('[data-model="smart"]');
                    const u = d ? [...d.querySelectorAll('tr[data-usage-endpoint]')] : [];
                    return { serving: m ? m.dataset.serving : null, calls: window.__calls,
                             usage: u.map(r => [r.dataset.usageEndpoint, Number(r.dataset.requests), Number(r.dataset.tokens)]) };
                })()"#,
            )
        });
        // The 6 requests the primary served, from the daemon's spend log via bitrouter_usage.
        let primary_usage = v["usage"].as_array().unwrap().iter().any(|r| {
            r[0].as_str().unwrap().ends_with("m1") && r[1] == 6 && r[2].as_u64() > Some(0)
        });
        if v["serving"] == "pb:m2" && v["calls"].as_u64() >= Some(2) && primary_usage {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the App never drew the route through the host bridge: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::task::block_in_place(|| {
        page.eval("document.getElementById('app').scrollIntoView()");
        std::fs::write(artifact_dir().join("app.png"), page.screenshot()).unwrap();
        page.eval("document.getElementById('app').remove()")
    });

    // A daemon crash shows as a restart in the timeline, and the page follows it back to healthy.
    let pid = mcp.ok("bitrouter_status", json!({})).await["daemon"]["pid"]
        .as_u64()
        .unwrap();
    common::kill(pid as u32, "KILL");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = tokio::task::block_in_place(|| {
            page.eval(
                r#"({ restarts: [...document.querySelectorAll('#timeline li[data-kind="restart"]')].map(l => l.textContent),
                      state: document.getElementById('daemon').dataset.state })"#,
            )
        });
        if v["restarts"].as_array().is_some_and(|r| !r.is_empty()) && v["state"] == "healthy" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed the daemon's restart: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    mcp.wait_status(
        "smart on pb:m2 after the restart",
        Duration::from_secs(20),
        |s| s["models"][0]["serving"] == json!(["pb:m2"]) && s["daemon"]["state"] == "healthy",
    )
    .await;

    // Traffic on the fallback, then keep a picture of the page.
    for _ in 0..4 {
        assert_eq!(chat(port, &token, "smart").await.0, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The page itself draws the same usage facts: the fallback's 4 requests appear.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = tokio::task::block_in_place(|| {
            page.eval(
                r#"[...document.querySelectorAll('tr[data-usage-endpoint]')].map(r => [r.dataset.usageEndpoint, Number(r.dataset.requests)])"#,
            )
        });
        if v.as_array()
            .unwrap()
            .iter()
            .any(|r| r[0].as_str().unwrap().ends_with("m2") && r[1] == 4)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the page never drew the fallback's usage: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let png = tokio::task::block_in_place(|| page.screenshot());
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let shot = artifact_dir().join("failover.png");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("screenshot: {} ({listed})", shot.display());
    drop(page);
    mcp.close().await;
    b.stop();
}

#[tokio::test]
async fn foreign_origins_are_refused_and_the_app_resource_is_served() {
    let home = TestHome::new();
    let mcp = Mcp::http(&home, None).await;
    let addr = recorded_address(&home).await;
    let client = reqwest::Client::new();
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut r = client.get(format!("http://{addr}{path}"));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send()
    };

    let page = get("/", &[]).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    let same_origin = format!("http://{addr}");
    let data = get("/dashboard/status", &[("origin", &same_origin)])
        .await
        .unwrap();
    assert_eq!(data.status(), 200, "the page's own origin reads its data");
    let status: Value = data.json().await.unwrap();
    assert!(status["daemon"]["state"].is_string(), "{status}");

    for path in ["/", "/dashboard/status", "/mcp"] {
        let r = get(path, &[("origin", "https://evil.example")])
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "foreign Origin on {path}");
    }
    for path in ["/", "/dashboard/status"] {
        let host = format!("evil.example:{}", addr.port());
        let r = get(path, &[("host", &host)]).await.unwrap();
        assert_eq!(r.status(), 403, "foreign Host (DNS rebinding) on {path}");
    }

    // The MCP App: listed with its MIME type, linked from bitrouter_status, same page.
    let resources = mcp.client.list_all_resources().await.unwrap();
    let app = resources.iter().find(|r| r.uri == APP_URI).expect("listed");
    assert_eq!(app.mime_type.as_deref(), Some("text/html;profile=mcp-app"));
    let text = app_text(&mcp).await;
    assert!(text.len() < 2 * 1024 * 1024, "under the hosts' 2 MiB cap");
    assert_eq!(text, html, "the App and the page are the same document");
    assert_valid_html(&text);
    let tools = mcp.client.list_all_tools().await.unwrap();
    let status_tool = tools.iter().find(|t| t.name == "bitrouter_status").unwrap();
    let meta = serde_json::to_value(status_tool.meta.as_ref().expect("_meta")).unwrap();
    assert_eq!(meta["ui"]["resourceUri"], APP_URI, "{meta}");
    mcp.close().await;
}

/// The App resource's HTML as an MCP client reads it (its MIME type checked).
async fn app_text(mcp: &Mcp) -> String {
    let read = mcp
        .client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(APP_URI))
        .await
        .unwrap();
    match &read.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents {
            text, mime_type, ..
        } => {
            assert_eq!(mime_type.as_deref(), Some("text/html;profile=mcp-app"));
            text.clone()
        }
        other => panic!("expected text, got {other:?}"),
    }
}

/// Well-formed enough for any browser: doctype, one html/head/body in order, every opened
/// element of the kinds the page uses closed, and nothing loaded from elsewhere.
fn assert_valid_html(text: &str) {
    assert!(text.starts_with("<!doctype html>"));
    let script =
        &text[text.find("<script>").unwrap() + "<script>".len()..text.find("</script>").unwrap()];
    let markup = text.replace(script, "");
    for tag in [
        "html", "head", "body", "title", "style", "script", "header", "main", "h1", "h2", "div",
        "span", "ol", "dl", "p",
    ] {
        let opens = markup.matches(&format!("<{tag}>")).count()
            + markup.matches(&format!("<{tag} ")).count();
        let closes = markup.matches(&format!("</{tag}>")).count();
        assert_eq!(opens, closes, "<{tag}> opened {opens}, closed {closes}");
    }
    let order: Vec<usize> = ["<html", "<head>", "</head>", "<body>", "</body>", "</html>"]
        .iter()
        .map(|t| markup.find(t).unwrap_or_else(|| panic!("{t} missing")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "document order");
    assert!(
        !text.contains("src=\"http") && !text.contains("<link"),
        "self-contained"
    );
}

#[tokio::test]
async fn the_dashboard_command_prints_the_running_servers_url() {
    let home = TestHome::new();
    let run = |home: &TestHome| {
        std::process::Command::new(SERVER_BIN)
            .arg("--data-dir")
            .arg(home.data_dir())
            .args(["dashboard", "--no-open"])
            .output()
            .unwrap()
    };
    let none = run(&home);
    assert!(!none.status.success());
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(err.contains("no HTTP server is running"), "{err}");

    let mut mcp = Mcp::http(&home, None).await;
    let addr = recorded_address(&home).await;
    let out = run(&home);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("http://{addr}/")
    );

    // A server that is gone is not offered, and a clean stop removes its record.
    common::kill(mcp.server_pid(), "TERM");
    mcp.wait_server_exit(Duration::from_secs(15)).await;
    assert!(!home.data_dir().join("http.addr").exists());
    assert!(!run(&home).status.success());
}
