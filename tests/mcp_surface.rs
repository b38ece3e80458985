//! The MCP surface as a client sees it, over stdio and streamable HTTP: the tool list with schemas
//! and annotations, every tool called, the route table resource, and clear errors for bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;

use bitrouter_mcp::auth::jwt;
use common::{Mcp, TestHome};
use serde_json::{Value, json};

fn config() -> Value {
    json!({
        "port": 18787,
        "autoStart": false,
        "providers": {"openrouter": {"derives": "openai", "apiBase": "https://openrouter.example/api/v1",
                                     "apiKey": "sk-or-literal-secret-123"}},
        "models": common::seed_models()
    })
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Drives every tool and the resource through one connected client.
async fn exercise(mcp: &Mcp, home: &TestHome) {
    // Status before anything exists: config summary, no daemon, secrets redacted.
    let status = mcp.ok("bitrouter_status", json!({})).await;
    assert_eq!(status["listen"], "127.0.0.1:18787");
    assert_eq!(status["daemon"]["healthy"], false);
    assert_eq!(status["daemon"]["state"], "stopped");
    assert_eq!(status["daemon"]["managed"], false);
    assert_eq!(status["accounts"], 0);
    let models: Vec<&str> = status["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["fast", "smart"]);
    let smart = &status["models"][1];
    let endpoints: Vec<String> = smart["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["provider"].as_str().unwrap(),
                e["model_id"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        endpoints,
        ["anthropic:claude-sonnet-4-20250514", "openai:gpt-4o"]
    );
    // Route health rides along (the route table's entries), even with no daemon to route.
    assert_eq!(smart["strategy"], "priority");
    assert_eq!(smart["serving"], json!([]));
    assert_eq!(smart["endpoints"][0]["breaker"], "closed");
    assert_eq!(smart["endpoints"][0]["active"], false);
    assert_eq!(smart["last_switch"], Value::Null);
    let openrouter = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openrouter")
        .expect("configured provider listed");
    assert_eq!(openrouter["has_credentials"], true);
    assert!(!status.to_string().contains("sk-or-literal-secret-123"));
    assert!(
        status["paths"]["bitrouter_home"]
            .as_str()
            .unwrap()
            .starts_with(home.data_dir().to_str().unwrap())
    );

    // Accounts: none, then two; only the first generated one stays active when asked.
    let list = mcp.ok("bitrouter_account", json!({})).await;
    assert_eq!(list["accounts"], json!([]));
    let first = mcp
        .ok("bitrouter_account", json!({"action": "generate"}))
        .await;
    let first_prefix = first["changed"]["prefix"].as_str().unwrap().to_string();
    assert_eq!(first["active"], first_prefix.as_str());
    let second = mcp
        .ok(
            "bitrouter_account",
            json!({"action": "generate", "set_active": false}),
        )
        .await;
    assert_eq!(second["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(second["active"], first_prefix.as_str());
    assert!(!second.to_string().contains("seed"));
    let second_prefix = second["changed"]["prefix"].as_str().unwrap().to_string();
    let switched = mcp
        .ok(
            "bitrouter_account",
            json!({"action": "set_active", "account": &second_prefix[..6]}),
        )
        .await;
    assert_eq!(switched["active"], second_prefix.as_str());
    let index_of_first = switched["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["prefix"] == first_prefix.as_str())
        .unwrap()["index"]
        .clone();
    let back = mcp
        .ok(
            "bitrouter_account",
            json!({"action": "set_active", "account": index_of_first}),
        )
        .await;
    assert_eq!(back["active"], first_prefix.as_str());
    let key_file = home.home().master_key_file(&first_prefix);
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(mode(key_file.parent().unwrap()), 0o700);

    // Keygen: a verifiable token, saved privately.
    let minted = mcp
        .ok(
            "bitrouter_keygen",
            json!({"exp": "1h", "models": ["openai:*"], "name": "t1", "budget": 5000000,
                   "budget_scope": "session", "budget_range": "rounds:10"}),
        )
        .await;
    let token = minted["token"].as_str().unwrap();
    let claims = jwt::verify(token).expect("token verifies against its issuer");
    assert_eq!(claims.models, Some(vec!["openai:*".to_string()]));
    assert_eq!(claims.budget, Some(5_000_000));
    let first_key = back["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["prefix"] == first_prefix.as_str())
        .unwrap()["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(claims.iss, format!("{}:{first_key}", jwt::SOLANA_MAINNET));
    assert!(claims.exp.unwrap() > claims.iat.unwrap() + 3500);
    assert_eq!(minted["account"], first_prefix.as_str());
    let saved = std::path::PathBuf::from(minted["saved_to"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), token);
    assert_eq!(mode(&saved), 0o600);
    let again = mcp.err("bitrouter_keygen", json!({"name": "t1"})).await;
    assert!(
        again.contains("`name`") && again.contains("already exists"),
        "{again}"
    );
    assert_eq!(
        std::fs::read_to_string(&saved).unwrap(),
        token,
        "existing token untouched"
    );

    // Keys: listed without the token text, shown, removed.
    let keys = mcp.ok("bitrouter_keys", json!({})).await;
    assert_eq!(keys["tokens"][0]["name"], "t1");
    assert_eq!(keys["tokens"][0]["scope"], "api");
    assert_eq!(keys["tokens"][0]["expired"], false);
    assert!(!keys.to_string().contains(token));
    let shown = mcp
        .ok("bitrouter_keys", json!({"action": "show", "name": "t1"}))
        .await;
    assert_eq!(shown["claims"]["models"], json!(["openai:*"]));
    assert_eq!(
        shown["claims"]["budget_range"],
        json!({"type": "rounds", "count": 10})
    );
    let removed = mcp
        .ok("bitrouter_keys", json!({"action": "remove", "name": "t1"}))
        .await;
    assert_eq!(removed["removed"]["name"], "t1");
    assert!(!saved.exists());
    let keys = mcp.ok("bitrouter_keys", json!({"action": "list"})).await;
    assert_eq!(keys["tokens"], json!([]));

    // Route table resource built from the config.
    let routes = mcp.read_json("bitrouter://routes").await;
    assert_eq!(routes["models"][0]["name"], "fast");
    assert_eq!(routes["models"][0]["strategy"], "load_balance");
    assert_eq!(routes["models"][1]["strategy"], "priority");
    // No daemon runs here: nothing carries traffic yet.
    assert_eq!(routes["models"][1]["endpoints"][0]["active"], false);
    assert_eq!(routes["models"][1]["endpoints"][0]["provider"], "anthropic");
    assert_eq!(
        routes["models"][1]["endpoints"][0]["model_id"],
        "claude-sonnet-4-20250514"
    );
    assert_eq!(routes["daemon_healthy"], false);
    assert!(
        routes["direct_providers"]
            .as_array()
            .unwrap()
            .contains(&json!("openrouter"))
    );
}

#[tokio::test]
async fn every_tool_and_the_route_table_over_stdio() {
    let home = TestHome::new();
    let cfg = home.write_config(&config());
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    exercise(&mcp, &home).await;
    mcp.close().await;
}

#[tokio::test]
async fn every_tool_and_the_route_table_over_http() {
    let home = TestHome::new();
    let cfg = home.write_config(&config());
    let mcp = Mcp::http(&home, Some(&cfg)).await;
    exercise(&mcp, &home).await;
    mcp.close().await;
}

#[tokio::test]
async fn tool_list_has_schemas_annotations_and_descriptions() {
    let home = TestHome::new();
    let mcp = Mcp::stdio(&home, None).await;
    let info = mcp.client.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().unwrap().name, "bitrouter-mcp");
    let tools = mcp.client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bitrouter_account",
            "bitrouter_keygen",
            "bitrouter_keys",
            "bitrouter_status",
            "bitrouter_usage"
        ]
    );
    for t in &tools {
        assert!(t.output_schema.is_some(), "{} has an output schema", t.name);
        assert!(
            t.description.as_deref().unwrap_or("").len() > 80,
            "{} is described",
            t.name
        );
        let a = t.annotations.as_ref().expect("annotations");
        let destructive = a.destructive_hint == Some(true);
        assert_eq!(destructive, t.name == "bitrouter_keys", "{}", t.name);
        assert_eq!(
            a.read_only_hint == Some(true),
            t.name == "bitrouter_status" || t.name == "bitrouter_usage",
            "{}",
            t.name
        );
    }
    let keygen = tools.iter().find(|t| t.name == "bitrouter_keygen").unwrap();
    let props = keygen.input_schema.get("properties").unwrap();
    for field in [
        "exp",
        "scope",
        "models",
        "budget",
        "budget_scope",
        "budget_range",
        "name",
    ] {
        assert!(props.get(field).is_some(), "keygen takes {field}");
    }
    let resources = mcp.client.list_all_resources().await.unwrap();
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "bitrouter://routes",
            "bitrouter://metrics",
            "bitrouter://usage",
            "ui://bitrouter/dashboard"
        ]
    );
    assert!(
        resources
            .iter()
            .filter(|r| r.uri.starts_with("bitrouter://"))
            .all(|r| r.mime_type.as_deref() == Some("application/json"))
    );
    mcp.close().await;
}

#[tokio::test]
async fn bad_arguments_name_the_argument_and_leave_no_file() {
    let home = TestHome::new();
    let mcp = Mcp::stdio(&home, None).await;
    // No account yet: keygen must say how to get one, and write nothing.
    let e = mcp.err("bitrouter_keygen", json!({"name": "x"})).await;
    assert!(e.contains("no active account"), "{e}");

    let cases: &[(&str, Value, &[&str])] = &[
        (
            "bitrouter_account",
            json!({"action": "explode"}),
            &["`action`", "generate", "set_active"],
        ),
        (
            "bitrouter_account",
            json!({"action": "set_active"}),
            &["`account`", "required"],
        ),
        (
            "bitrouter_account",
            json!({"action": "set_active", "account": 3}),
            &["`account`"],
        ),
        (
            "bitrouter_account",
            json!({"action": "list", "account": 0}),
            &["`account`", "not used"],
        ),
        (
            "bitrouter_account",
            json!({"actoin": "list"}),
            &["actoin", "action"],
        ),
        ("bitrouter_keygen", json!({"exp": "5w"}), &["`exp`", "30m"]),
        (
            "bitrouter_keygen",
            json!({"scope": "root"}),
            &["`scope`", "api", "admin"],
        ),
        (
            "bitrouter_keygen",
            json!({"scope": "admin"}),
            &["`exp`", "admin"],
        ),
        (
            "bitrouter_keygen",
            json!({"name": "../escape"}),
            &["`name`", "A-Z"],
        ),
        ("bitrouter_keygen", json!({"models": []}), &["`models`"]),
        (
            "bitrouter_keygen",
            json!({"budget_range": "weekly"}),
            &["`budget_range`", "rounds:N"],
        ),
        ("bitrouter_keygen", json!({"budget": -1}), &["`budget`"]),
        (
            "bitrouter_keys",
            json!({"action": "show"}),
            &["`name`", "required"],
        ),
        (
            "bitrouter_keys",
            json!({"action": "burn"}),
            &["`action`", "remove"],
        ),
        ("bitrouter_status", json!({"verbose": true}), &["verbose"]),
    ];
    for (tool, args, needles) in cases {
        let e = mcp.err(tool, args.clone()).await;
        for n in *needles {
            assert!(
                e.contains(n),
                "{tool} {args}: error {e:?} should mention {n}"
            );
        }
    }
    assert_eq!(
        home.files(),
        Vec::<String>::new(),
        "no file written by failed calls"
    );

    // With an account, a wrong token name is refused and nothing else changes.
    mcp.ok("bitrouter_account", json!({"action": "generate"}))
        .await;
    let before = home.files();
    let e = mcp
        .err(
            "bitrouter_keys",
            json!({"action": "remove", "name": "nope"}),
        )
        .await;
    assert!(e.contains("`name`") && e.contains("saved: none"), "{e}");
    let e = mcp
        .err("bitrouter_keygen", json!({"name": "bad/name", "exp": "1h"}))
        .await;
    assert!(e.contains("`name`"), "{e}");
    assert_eq!(home.files(), before);

    // Unknown resource: a protocol error naming what exists.
    let r = mcp
        .client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "bitrouter://nope",
        ))
        .await;
    let msg = format!("{:?}", r.unwrap_err());
    assert!(msg.contains("bitrouter://routes"), "{msg}");
    assert!(msg.contains("\"uri\""), "error data names the uri: {msg}");
    mcp.close().await;
}

/// The tool list (names, descriptions, input and output schemas, annotations) is a contract with
/// every agent that found these tools: a change must show up as a reviewed diff of
/// `tests/snapshots/tools.json`. Regenerate with `UPDATE_SNAPSHOTS=1 cargo test --test mcp_surface`.
#[tokio::test]
async fn tool_list_matches_the_reviewed_snapshot() {
    let home = TestHome::new();
    let mcp = Mcp::stdio(&home, None).await;
    let mut tools = mcp.client.list_all_tools().await.unwrap();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    let mut current = serde_json::to_string_pretty(&tools).unwrap();
    current.push('\n');
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/tools.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    let reviewed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        reviewed == current,
        "the tool list changed; review the diff and regenerate {} with UPDATE_SNAPSHOTS=1\n--- reviewed\n{reviewed}\n--- current\n{current}",
        path.display()
    );
    mcp.close().await;
}

/// A failed call's machine-readable code and argument, as an MCP client reads them from `_meta`.
fn error_code(r: &rmcp::model::CallToolResult) -> (String, Option<String>) {
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert!(
        r.structured_content.is_none(),
        "an error has no structured content: {r:?}"
    );
    let meta = r.meta.as_ref().expect("a tool error carries _meta");
    let e = &meta.0["bitrouter/error"];
    (
        e["code"].as_str().expect("a code").to_string(),
        e.get("field").map(|f| f.as_str().unwrap().to_string()),
    )
}

fn text(r: &rmcp::model::CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

/// Tool errors carry a stable code (and the argument at fault) in `_meta["bitrouter/error"]`
/// beside the unchanged message, so a program can branch without reading the text: what the
/// OpenClaw adapter does with `no_active_account` and `already_exists` when it mints its token.
#[tokio::test]
async fn tool_errors_carry_a_stable_code_and_the_argument() {
    let home = TestHome::new();
    let mcp = Mcp::stdio(&home, None).await;
    let call = |tool: &'static str, args: Value| {
        let mcp = &mcp;
        async move {
            let r = mcp.call(tool, args).await;
            let (code, field) = error_code(&r);
            (code, field, text(&r))
        }
    };
    let no = |s: &str| (s.to_string(), None::<String>);
    let at = |s: &str, f: &str| (s.to_string(), Some(f.to_string()));

    // A fresh home: nothing signs yet.
    let (code, field, msg) = call("bitrouter_keygen", json!({"exp": "1h", "name": "t1"})).await;
    assert_eq!((code, field), no("no_active_account"));
    assert!(msg.contains("no active account"), "{msg}");
    let (code, field, _) = call(
        "bitrouter_account",
        json!({"action": "set_active", "account": 0}),
    )
    .await;
    assert_eq!((code, field), at("not_found", "account"));

    // Bad arguments, found by the tool and by argument parsing.
    let (code, field, msg) = call("bitrouter_keygen", json!({"exp": "5w"})).await;
    assert_eq!((code, field), at("invalid_argument", "exp"));
    assert!(msg.starts_with("argument `exp`"), "{msg}");
    let (code, field, msg) = call("bitrouter_account", json!({"action": "explode"})).await;
    assert_eq!((code, field), at("invalid_argument", "action"));
    assert!(msg.contains("`action`"), "{msg}");
    let (code, field, _) = call("bitrouter_keygen", json!({"models": ["ok", 7]})).await;
    assert_eq!((code, field), at("invalid_argument", "models"));
    let (code, _, _) = call("bitrouter_account", json!({"actoin": "list"})).await;
    assert_eq!(code, "invalid_argument");

    // With an account: a taken name, a missing token, an unknown virtual model.
    mcp.ok("bitrouter_account", json!({"action": "generate"}))
        .await;
    mcp.ok("bitrouter_keygen", json!({"exp": "1h", "name": "t1"}))
        .await;
    let (code, field, msg) = call("bitrouter_keygen", json!({"exp": "1h", "name": "t1"})).await;
    assert_eq!((code, field), at("already_exists", "name"));
    assert!(msg.contains("already exists"), "{msg}");
    let (code, field, _) = call("bitrouter_keys", json!({"action": "show", "name": "t2"})).await;
    assert_eq!((code, field), at("not_found", "name"));
    let (code, field, _) = call("bitrouter_usage", json!({"model": "nope"})).await;
    assert_eq!((code, field), at("not_found", "model"));

    // A successful call carries no error meta.
    let r = mcp.call("bitrouter_keys", json!({"action": "list"})).await;
    assert!(
        r.meta
            .as_ref()
            .is_none_or(|m| m.0.get("bitrouter/error").is_none())
    );
    mcp.close().await;

    // The same over streamable HTTP.
    let mcp = Mcp::http(&home, None).await;
    let r = mcp
        .call("bitrouter_keygen", json!({"exp": "1h", "name": "t1"}))
        .await;
    assert_eq!(error_code(&r), at("already_exists", "name"));
    mcp.close().await;
}

/// Tool schemas hold only JSON Schema formats: the TypeScript SDK's validator (OpenClaw's MCP client
/// and the adapter's) warns on stderr for every unknown one (`uint64`...) at each `tools/list`.
#[tokio::test]
async fn tool_schemas_have_no_rust_width_formats() {
    let home = TestHome::new();
    let mcp = Mcp::stdio(&home, None).await;
    let tools = mcp.client.list_all_tools().await.unwrap();
    let text = serde_json::to_string(&tools).unwrap();
    for width in ["uint", "int32", "int64", "double", "float"] {
        assert!(
            !text.contains(&format!("\"format\":\"{width}")),
            "a tool schema has format {width}"
        );
    }
    assert!(text.contains("\"minimum\":0"), "ranges are kept");
    mcp.close().await;
}
