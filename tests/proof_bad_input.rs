//! Bad input never takes the server down. Property tests throw arbitrary JSON at every argument of
//! every tool (wrong types, unknown fields, huge and exotic strings, negative and enormous numbers):
//! the server always answers with a result or a tool error, stays up (a valid call right after
//! works), and a failed call writes no file. The config loader takes arbitrary JSON/YAML-ish text
//! without panicking. Malformed JSON-RPC over stdio and malformed HTTP bodies get protocol errors
//! (or are ignored) and the server keeps serving well-formed clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Mcp, TestHome, free_port, wait_for_port};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CASES_PER_TOOL: u32 = 64;
/// A local stdio call answers in milliseconds; this only catches calls that never answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Value generators

/// Strings a careless or hostile client might send.
fn weird_string() -> BoxedStrategy<String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[ -~]{0,40}",
        2 => "\\PC{0,24}",
        1 => prop::sample::select(vec![
            "", " ", ".", "..", "../escape", "/etc/passwd", ".hidden", "a/b", "a\\b",
            "nul\u{0}byte", "line\nbreak", "tab\there", "${OPENAI_API_KEY}", "\u{202e}rtl",
            "🦀🦀🦀", "CON", "-", "*", ":", "null", "true", "0", "-1",
        ])
        .prop_map(String::from),
        1 => (60usize..70).prop_map(|n| "x".repeat(n)),
        1 => (1usize..300_000).prop_map(|n| "x".repeat(n)),
        1 => (1usize..40_000).prop_map(|n| "é🦀\u{0}\u{ffff}".repeat(n)),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(vec![
            json!(0),
            json!(-1),
            json!(1),
            json!(2),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1e308),
            json!(-1e308),
            json!(0.5),
            json!(-0.0),
        ]),
    ]
    .boxed()
}

/// Any JSON value, a few levels deep.
fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        weird_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map("[a-z_]{0,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

fn strs(values: &[&str]) -> BoxedStrategy<Value> {
    let values: Vec<Value> = values.iter().map(|s| json!(s)).collect();
    prop::sample::select(values).boxed()
}

/// One argument of a tool: values it documents as valid, and odd values of the right JSON type.
struct Field {
    name: &'static str,
    valid: BoxedStrategy<Value>,
    odd: BoxedStrategy<Value>,
}

fn f(name: &'static str, valid: BoxedStrategy<Value>, odd: BoxedStrategy<Value>) -> Field {
    Field { name, valid, odd }
}

/// Argument objects for a tool, half of them well-formed (every field absent or valid, so calls
/// get past validation to the code that signs and writes files), half chaotic (odd values, any
/// JSON at all, unknown fields).
fn args(fields: Vec<Field>) -> BoxedStrategy<Value> {
    let names: Vec<&'static str> = fields.iter().map(|f| f.name).collect();
    let mut well_formed = Vec::new();
    let mut chaotic = Vec::new();
    for field in fields {
        well_formed
            .push(prop_oneof![1 => Just(None), 2 => field.valid.clone().prop_map(Some)].boxed());
        chaotic.push(
            prop_oneof![
                2 => Just(None),
                2 => field.valid.prop_map(Some),
                2 => field.odd.prop_map(Some),
                1 => any_json().prop_map(Some),
            ]
            .boxed(),
        );
    }
    let extra = prop_oneof![
        2 => Just(BTreeMap::new()),
        1 => btree_map(weird_string(), any_json(), 1..3),
    ];
    let build = move |values: Vec<Option<Value>>, extra: BTreeMap<String, Value>| {
        let mut map: Map<String, Value> = extra.into_iter().collect();
        for (name, v) in names.iter().zip(values) {
            if let Some(v) = v {
                map.insert((*name).to_string(), v);
            }
        }
        Value::Object(map)
    };
    let build2 = build.clone();
    prop_oneof![
        well_formed.prop_map(move |values| build(values, BTreeMap::new())),
        (chaotic, extra).prop_map(move |(values, extra)| build2(values, extra)),
    ]
    .boxed()
}

fn token_name() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => strs(&["t1", "t2", "nope", "x", "a.b", "a-b_c"]),
        2 => "[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}".prop_map(Value::from),
    ]
    .boxed()
}

fn odd_string() -> BoxedStrategy<Value> {
    weird_string().prop_map(Value::from).boxed()
}

// ---------------------------------------------------------------------------------------------
// The tool fuzzer

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    let rel = p.strip_prefix(base).unwrap().display().to_string();
                    out.insert(rel, std::fs::read(&p).unwrap_or_default());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 {
        let head: String = s.chars().take(300).collect();
        format!("{head}… ({} bytes)", s.len())
    } else {
        s
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// What the seeded home holds: two accounts (the first active) and two saved tokens.
struct Seeded {
    prefixes: Vec<String>,
    public_keys: Vec<String>,
}

async fn seed(mcp: &Mcp) -> Seeded {
    let a = mcp
        .ok("bitrouter_account", json!({"action": "generate"}))
        .await;
    let b = mcp
        .ok(
            "bitrouter_account",
            json!({"action": "generate", "set_active": false}),
        )
        .await;
    for name in ["t1", "t2"] {
        mcp.ok("bitrouter_keygen", json!({"name": name, "exp": "1h"}))
            .await;
    }
    let pick = |v: &Value, k: &str| v["changed"][k].as_str().unwrap().to_string();
    Seeded {
        prefixes: vec![pick(&a, "prefix"), pick(&b, "prefix")],
        public_keys: vec![pick(&a, "public_key"), pick(&b, "public_key")],
    }
}

/// Runs `CASES_PER_TOOL` generated argument objects against `tool` on one server.
fn fuzz_tool(tool: &'static str, strategy: impl Fn(&Seeded) -> BoxedStrategy<Value>) {
    let rt = runtime();
    let home = TestHome::new();
    let (mcp, seeded) = rt.block_on(async {
        let mcp = Mcp::stdio(&home, None).await;
        let seeded = seed(&mcp).await;
        (mcp, seeded)
    });
    let strategy = strategy(&seeded);
    let mut runner = TestRunner::new(Config {
        cases: CASES_PER_TOOL,
        failure_persistence: None,
        max_shrink_iters: 256,
        max_shrink_time: 15_000,
        ..Config::default()
    });
    let tally = std::sync::Mutex::new((0usize, 0usize));
    let result = runner.run(&strategy, |args| {
        rt.block_on(async {
            let before = snapshot(&home.data_dir());
            let Value::Object(map) = args.clone() else {
                unreachable!()
            };
            let params = CallToolRequestParams::new(tool).with_arguments(map);
            let answer = tokio::time::timeout(ANSWER_WITHIN, mcp.client.call_tool(params)).await;
            let r = match answer {
                Err(_) => {
                    return Err(TestCaseError::fail(format!(
                        "{tool} {}: no answer within {ANSWER_WITHIN:?}",
                        short(&args)
                    )));
                }
                Ok(Err(e)) => {
                    return Err(TestCaseError::fail(format!(
                        "{tool} {}: protocol or transport error instead of a tool result: {e}",
                        short(&args)
                    )));
                }
                Ok(Ok(r)) => r,
            };
            if r.is_error == Some(true) {
                tally.lock().unwrap().1 += 1;
                // Every refusal carries a documented code a program can branch on.
                let code = r
                    .meta
                    .as_ref()
                    .and_then(|m| m.0.get("bitrouter/error"))
                    .and_then(|e| e.get("code"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                prop_assert!(
                    bitrouter_mcp::tools::ErrorCode::ALL
                        .iter()
                        .any(|c| c.as_str() == code),
                    "{tool} {} failed without a known code: {:?}",
                    short(&args),
                    r.meta
                );
                let after = snapshot(&home.data_dir());
                if after != before {
                    let added: Vec<&String> =
                        after.keys().filter(|k| !before.contains_key(*k)).collect();
                    let changed: Vec<&String> = before
                        .keys()
                        .filter(|k| after.get(*k) != before.get(*k))
                        .collect();
                    return Err(TestCaseError::fail(format!(
                        "{tool} {} failed but touched files: added {added:?}, changed/removed {changed:?}",
                        short(&args)
                    )));
                }
            } else {
                tally.lock().unwrap().0 += 1;
                prop_assert!(
                    r.structured_content.is_some(),
                    "{tool} {} succeeded without structured content",
                    short(&args)
                );
            }
            // Still up: a valid call answers.
            let status = tokio::time::timeout(
                ANSWER_WITHIN,
                mcp.client
                    .call_tool(CallToolRequestParams::new("bitrouter_status")),
            )
            .await;
            prop_assert!(
                matches!(&status, Ok(Ok(r)) if r.is_error != Some(true)),
                "after {tool} {}: bitrouter_status failed: {status:?}",
                short(&args)
            );
            Ok(())
        })
    });
    let (ok, failed) = *tally.lock().unwrap();
    eprintln!("{tool}: {ok} calls succeeded, {failed} were refused with a tool error");
    rt.block_on(mcp.close());
    if let Err(e) = result {
        panic!("{tool}: {e}");
    }
}

#[test]
fn status_takes_any_arguments_without_falling_over() {
    fuzz_tool("bitrouter_status", |_| args(vec![]));
}

#[test]
fn account_takes_any_arguments_without_falling_over() {
    fuzz_tool("bitrouter_account", |seeded| {
        let mut refs = vec![json!(0), json!(1)];
        for p in &seeded.prefixes {
            refs.push(json!(p));
            refs.push(json!(&p[..4]));
        }
        for k in &seeded.public_keys {
            refs.push(json!(k));
        }
        args(vec![
            f(
                "action",
                strs(&["list", "generate", "set_active"]),
                strs(&["LIST", "set-active", "", "delete"]),
            ),
            f(
                "account",
                prop::sample::select(refs).boxed(),
                prop_oneof![number(), odd_string()].boxed(),
            ),
            f(
                "set_active",
                any::<bool>().prop_map(Value::from).boxed(),
                strs(&["true", "yes", "1"]),
            ),
        ])
    });
}

#[test]
fn keygen_takes_any_arguments_without_falling_over() {
    fuzz_tool("bitrouter_keygen", |_| {
        let pattern = strs(&["openai:*", "smart", "anthropic:claude-*", "up:m1", "*"]);
        args(vec![
            f(
                "exp",
                prop_oneof![
                    strs(&["1h", "30m", "12h", "30d", "1y", "never", "0", "1700000000"]),
                    // Documented as valid: any Unix time, any count of a unit.
                    any::<u64>().prop_map(|n| json!(n.to_string())),
                    (
                        0u64..100_000_000,
                        prop::sample::select(vec!["s", "m", "h", "d", "y"])
                    )
                        .prop_map(|(n, u)| json!(format!("{n}{u}"))),
                ]
                .boxed(),
                prop_oneof![
                    strs(&["-5", "5w", "h", "1.5h", " 1h ", "NEVER", "1e9", "0x10", ""]),
                    odd_string(),
                ]
                .boxed(),
            ),
            f("scope", strs(&["api", "admin"]), strs(&["root", "API", ""])),
            f(
                "models",
                vec(pattern, 1..4).prop_map(Value::Array).boxed(),
                prop_oneof![
                    Just(json!([])),
                    vec(
                        prop_oneof![strs(&["", " ", "a b", "x\ty"]), odd_string()],
                        1..3
                    )
                    .prop_map(Value::Array),
                ]
                .boxed(),
            ),
            f(
                "budget",
                any::<u64>().prop_map(Value::from).boxed(),
                number(),
            ),
            f(
                "budget_scope",
                strs(&["session", "account"]),
                strs(&["global", ""]),
            ),
            f(
                "budget_range",
                prop_oneof![
                    any::<u64>().prop_map(|n| json!(format!("rounds:{n}"))),
                    any::<u64>().prop_map(|n| json!(format!("duration:{n}s"))),
                ]
                .boxed(),
                prop_oneof![
                    strs(&["rounds:-1", "duration:s", "rounds:", "weekly", "rounds:1.5"]),
                    any::<i128>().prop_map(|n| json!(format!("duration:{n}s"))),
                    odd_string(),
                ]
                .boxed(),
            ),
            f("name", token_name(), odd_string()),
        ])
    });
}

#[test]
fn keys_takes_any_arguments_without_falling_over() {
    fuzz_tool("bitrouter_keys", |_| {
        args(vec![
            f(
                "action",
                strs(&["list", "show", "remove"]),
                strs(&["LIST", "delete", ""]),
            ),
            f("name", token_name(), odd_string()),
        ])
    });
}

#[test]
fn usage_takes_any_arguments_without_falling_over() {
    fuzz_tool("bitrouter_usage", |_| {
        args(vec![
            f(
                "since",
                prop_oneof![
                    strs(&["1h", "7d", "30m", "now", "2026-11-30T08:00:00Z", "10000y"]),
                    "[0-9]{1,20}[smhdwy]".prop_map(Value::from),
                    "[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"
                        .prop_map(Value::from),
                ]
                .boxed(),
                odd_string(),
            ),
            f(
                "until",
                strs(&["now", "1m", "2026-11-30T09:00:00+01:00"]),
                odd_string(),
            ),
            f("model", strs(&["smart", "nope"]), odd_string()),
            f(
                "recent",
                (0u32..=120).prop_map(Value::from).boxed(),
                number(),
            ),
        ])
    });
}

/// Found by the keygen fuzzer: an expiry past 9999-12-31 (a Unix time such as
/// 18446744073709551615, or "10000y") is accepted by the parser, then formatting it as RFC 3339
/// panics inside the tool. The call never answers, and a token saved that way (by us or by
/// `bitrouter keygen`) makes every later `bitrouter_keys` listing fail the same way.
#[tokio::test]
async fn keygen_and_keys_answer_for_expiries_past_year_9999() {
    let home = TestHome::new();
    let mcp = Mcp::stdio(&home, None).await;
    mcp.ok("bitrouter_account", json!({"action": "generate"}))
        .await;
    let answer = |tool: &'static str, args: Value| {
        let Value::Object(map) = args else {
            unreachable!()
        };
        let call = mcp
            .client
            .call_tool(CallToolRequestParams::new(tool).with_arguments(map));
        async move { tokio::time::timeout(ANSWER_WITHIN, call).await }
    };
    for (i, exp) in ["253402300800", "18446744073709551615", "10000y"]
        .iter()
        .enumerate()
    {
        let name = format!("far-{i}");
        let before = home.files();
        let r = answer("bitrouter_keygen", json!({"exp": exp, "name": name})).await;
        let r = match r {
            Ok(Ok(r)) => r,
            other => panic!("keygen exp={exp}: no tool result: {other:?}"),
        };
        if r.is_error == Some(true) {
            assert_eq!(home.files(), before, "refused exp={exp} left a file");
            let text = format!("{:?}", r.content);
            assert!(text.contains("`exp`"), "error names the argument: {text}");
        }
        let listed = answer("bitrouter_keys", json!({})).await;
        assert!(
            matches!(&listed, Ok(Ok(r)) if r.is_error != Some(true)),
            "bitrouter_keys after keygen exp={exp}: {listed:?}"
        );
    }
    // A token the real CLI saved with such an expiry must not break listing either.
    let cli = std::process::Command::new(common::bitrouter_bin())
        .arg("--home-dir")
        .arg(home.bitrouter_home())
        .args(["keygen", "--exp", "253402300800", "--name", "cli-far"])
        .output()
        .unwrap();
    eprintln!(
        "bitrouter keygen --exp 253402300800: {} {}",
        cli.status,
        String::from_utf8_lossy(&cli.stderr).trim()
    );
    if cli.status.success() {
        let listed = answer("bitrouter_keys", json!({})).await;
        assert!(
            matches!(&listed, Ok(Ok(r)) if r.is_error != Some(true)),
            "bitrouter_keys with a CLI token expiring after 9999: {listed:?}"
        );
        let shown = answer(
            "bitrouter_keys",
            json!({"action": "show", "name": "cli-far"}),
        )
        .await;
        assert!(
            matches!(&shown, Ok(Ok(_))),
            "bitrouter_keys show cli-far: {shown:?}"
        );
    }
    mcp.close().await;
}

// ---------------------------------------------------------------------------------------------
// The config loader

const VALID_CONFIG: &str = r#"{"port": 8787, "host": "127.0.0.1", "healthCheckIntervalMs": 300,
  "providers": {"pa": {"derives": "openai", "apiBase": "http://127.0.0.1:9/v1", "apiKey": "k-123456"}},
  "models": {"smart": {"strategy": "priority", "endpoints": [
    {"provider": "pa", "modelId": "m1"}, {"provider": "openai", "modelId": "gpt-4o"}]}}}"#;

const YAML_BITS: &[&str] = &[
    "port: 8787",
    "port: -1",
    "port: 65536",
    "port: 0x1F",
    "host: ::1",
    "host: localhost",
    "autoStart: false",
    "healthCheckIntervalMs: 1e400",
    "metricsPollMs: .inf",
    "models:",
    "  smart:",
    "    strategy: load_balance",
    "    endpoints:",
    "      - provider: openai",
    "        modelId: gpt",
    "providers:",
    "  openai:",
    "    apiKey: ${X}",
    "    derives: openai",
    "  - ",
    "&a",
    "*a",
    "<<: *a",
    "!!binary aGVsbG8=",
    "!!str",
    "!custom",
    "? ",
    "{",
    "}",
    "[",
    "]",
    "---",
    "...",
    "|",
    ">",
    "\t",
    "%YAML 1.2",
    "~",
    "null",
    ".nan",
    "\"unterminated",
    "'",
    "#",
    ":",
    ",",
];

fn config_text() -> BoxedStrategy<String> {
    let keys = prop::sample::select(vec![
        "port",
        "host",
        "autoStart",
        "healthCheckIntervalMs",
        "interceptAllModels",
        "metricsPollMs",
        "enforceRoutes",
        "providers",
        "models",
        "nope",
    ]);
    let shaped = btree_map(keys, any_json(), 0..6)
        .prop_map(|m| serde_json::to_string(&m).unwrap())
        .boxed();
    let yamlish = vec(
        (
            prop::sample::select(YAML_BITS.to_vec()),
            prop::sample::select(vec!["\n", " ", "\n  ", ""]),
        ),
        0..24,
    )
    .prop_map(|bits| {
        bits.into_iter()
            .map(|(b, sep)| format!("{b}{sep}"))
            .collect()
    })
    .boxed();
    let mutated = vec(
        (any::<prop::sample::Index>(), any::<char>(), any::<bool>()),
        1..8,
    )
    .prop_map(|edits| {
        let mut chars: Vec<char> = VALID_CONFIG.chars().collect();
        for (at, c, insert) in edits {
            let i = at.index(chars.len());
            if insert {
                chars.insert(i, c);
            } else {
                chars.remove(i);
            }
        }
        chars.into_iter().collect()
    })
    .boxed();
    let structured = any_json()
        .prop_map(|v| serde_json::to_string(&v).unwrap())
        .boxed();
    prop_oneof![
        2 => any::<String>(),
        2 => shaped,
        3 => yamlish,
        3 => mutated,
        1 => structured,
    ]
    .boxed()
}

/// Parses on a thread with a generous deadline, so a hang fails instead of stalling the suite.
fn parse_in_time(text: String) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(|| {
            if let Ok(c) = bitrouter_mcp::routing::PluginConfig::parse(&text) {
                // What the server does next with an accepted config must not panic either.
                let _ = c.listen_addr();
                let _ = c.known_providers();
                let _ = bitrouter_mcp::routing::daemon_config::render(&c);
            }
        });
        let _ = tx.send(outcome.map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        }));
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(panic)) => Err(format!("panicked: {panic}")),
        Err(_) => Err("did not return within 10 s".into()),
    }
}

#[test]
fn the_config_loader_never_panics_on_arbitrary_text() {
    assert!(bitrouter_mcp::routing::PluginConfig::parse(VALID_CONFIG).is_ok());
    let mut runner = TestRunner::new(Config {
        cases: 1024,
        failure_persistence: None,
        ..Config::default()
    });
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&config_text(), |text| {
        if bitrouter_mcp::routing::PluginConfig::parse(&text).is_ok() {
            accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        parse_in_time(text.clone()).map_err(|e| TestCaseError::fail(format!("{e}: {text:?}")))
    });
    eprintln!(
        "config loader: {} of 1024 generated texts accepted",
        accepted.load(std::sync::atomic::Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    // Hostile shapes: an alias bomb and very deep nesting.
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (i, prev) in ('b'..='j').zip('a'..='i') {
        bomb.push_str(&format!(
            "{i}: &{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    for text in [
        bomb,
        "[".repeat(100_000),
        "{\"a\":".repeat(10_000),
        "- ".repeat(50_000),
        format!("port: {}", "9".repeat(10_000)),
    ] {
        let head: String = text.chars().take(40).collect();
        parse_in_time(text).unwrap_or_else(|e| panic!("config {head:?}…: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed JSON-RPC

fn unmanaged_config(home: &TestHome) -> std::path::PathBuf {
    home.write_config(&json!({"autoStart": false, "port": free_port()}))
}

/// Reads JSON lines from the server's stdout into a channel.
fn read_lines(
    stdout: tokio::process::ChildStdout,
) -> tokio::sync::mpsc::UnboundedReceiver<Result<Value, String>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let parsed = serde_json::from_str::<Value>(&line).map_err(|_| line);
            if tx.send(parsed).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for the response with `id`, collecting everything seen on the way.
async fn response(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<Value, String>>,
    id: u64,
    seen: &mut Vec<Value>,
) -> Value {
    let wait = async {
        loop {
            match rx.recv().await {
                Some(Ok(v)) => {
                    seen.push(v.clone());
                    if v["id"] == id {
                        return v;
                    }
                }
                Some(Err(line)) => panic!("stdout carried a non-JSON line: {line:?}"),
                None => panic!("stdout closed before the answer to id {id}; seen: {seen:#?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("no answer to id {id} within 30 s"))
}

#[tokio::test]
async fn garbage_on_stdin_gets_protocol_errors_and_the_session_keeps_working() {
    let home = TestHome::new();
    let cfg = unmanaged_config(&home);
    let mut cmd = common::server_command(&home, &cfg, &[]);
    cmd.args(["serve", "--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut rx = read_lines(child.stdout.take().unwrap());
    let mut seen = Vec::new();

    let send = |v: Value| format!("{v}\n").into_bytes();
    stdin
        .write_all(&send(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "garbage-test", "version": "0"}}}),
        ))
        .await
        .unwrap();
    let init = response(&mut rx, 1, &mut seen).await;
    assert!(init["result"]["serverInfo"].is_object(), "{init}");
    stdin
        .write_all(&send(
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        ))
        .await
        .unwrap();

    let huge_name = "n".repeat(1_000_000);
    let mut garbage: Vec<Vec<u8>> = vec![
        b"{\n".to_vec(),
        b"[]\n".to_vec(),
        b"{\"jsonrpc\":\"2.0\",\"method\":5}\n".to_vec(),
        b"null\n".to_vec(),
        b"42\n".to_vec(),
        b"\"just a string\"\n".to_vec(),
        b"{}\n".to_vec(),
        b"\n".to_vec(),
        b"\r\n".to_vec(),
        b"\xff\xfe{\"jsonrpc\": \xc3\x28}\n".to_vec(),
        format!("{}\n", "[".repeat(100_000)).into_bytes(),
        send(json!({"jsonrpc": "1.0", "id": 20, "method": "ping"})),
        send(json!({"jsonrpc": "2.0", "id": 21, "method": "no/such/method"})),
        send(json!({"jsonrpc": "2.0", "id": 22, "method": "tools/call",
                    "params": {"name": "bitrouter_status", "arguments": 5}})),
        send(json!({"jsonrpc": "2.0", "id": 23, "method": "tools/call",
                    "params": {"name": "no_such_tool"}})),
        send(json!({"jsonrpc": "2.0", "id": 24, "method": "tools/call",
                    "params": {"name": "bitrouter_keys",
                               "arguments": {"action": "show", "name": huge_name}}})),
        send(
            json!({"jsonrpc": "2.0", "id": 25, "method": "resources/read",
                    "params": {"uri": "file:///etc/passwd"}}),
        ),
        send(json!({"jsonrpc": "2.0", "id": 26, "method": "tools/call", "params": 7})),
        send(json!({"jsonrpc": "2.0", "id": 27, "result": {}})),
        send(json!({"jsonrpc": "2.0", "id": 28, "error": {"code": 1, "message": "x"}})),
        send(json!({"jsonrpc": "2.0", "id": {"nested": true}, "method": "tools/list"})),
        send(
            json!({"jsonrpc": "2.0", "id": 29, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "again", "version": "0"}}}),
        ),
    ];
    // Over rmcp's 16 MiB line limit: discarded, not fatal.
    let mut oversized = vec![b'x'; 17 * 1024 * 1024];
    oversized.push(b'\n');
    garbage.push(oversized);
    for line in &garbage {
        stdin.write_all(line).await.unwrap();
    }
    stdin
        .write_all(&send(
            json!({"jsonrpc": "2.0", "id": 99, "method": "tools/list"}),
        ))
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    let list = response(&mut rx, 99, &mut seen).await;
    let tools = list["result"]["tools"].as_array().unwrap_or_else(|| {
        panic!("tools/list after garbage: {list}");
    });
    assert_eq!(tools.len(), 5, "{list}");

    // What came back for the requests that had ids.
    let by_id = |id: u64| seen.iter().find(|v| v["id"] == id).cloned();
    let summary: Vec<String> = seen
        .iter()
        .map(|v| {
            let mut s = v.to_string();
            s.truncate(160);
            s
        })
        .collect();
    eprintln!("answers seen:\n{}", summary.join("\n"));
    let unknown = by_id(21).expect("an answer to the unknown method");
    assert!(unknown["error"].is_object(), "{unknown}");
    let no_tool = by_id(23).expect("an answer to the unknown tool");
    assert!(
        no_tool["error"].is_object() || no_tool["result"]["isError"] == true,
        "{no_tool}"
    );
    let huge = by_id(24).expect("an answer to the 1 MB argument");
    assert_eq!(
        huge["result"]["isError"],
        true,
        "{}",
        &huge.to_string()[..200]
    );
    let file = by_id(25).expect("an answer to the foreign resource");
    assert!(file["error"].is_object(), "{file}");
    for v in &seen {
        if let Some(code) = v["error"]["code"].as_i64() {
            assert!(
                (-32700..=-32000).contains(&code),
                "JSON-RPC error codes only: {v}"
            );
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server is still running"
    );

    // Closing stdin still ends it cleanly.
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("server exits after stdin closes")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// One hand-made POST to `/mcp`.
struct RawPost {
    what: &'static str,
    body: Vec<u8>,
    content_type: &'static str,
    /// Whether to send `Accept: application/json, text/event-stream`.
    accept: bool,
    session: Option<&'static str>,
}

#[tokio::test]
async fn malformed_http_bodies_get_4xx_and_clients_keep_working() {
    let home = TestHome::new();
    let cfg = unmanaged_config(&home);
    let port = free_port();
    let mut cmd = common::server_command(&home, &cfg, &[]);
    cmd.args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let mut server = cmd.spawn().unwrap();
    wait_for_port(port, Duration::from_secs(10)).await;
    let url = format!("http://127.0.0.1:{port}/mcp");

    // A client in session before the barrage.
    let before: rmcp::service::RunningService<RoleClient, ()> =
        ().serve(StreamableHttpClientTransport::from_uri(url.clone()))
            .await
            .unwrap();

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}})
    .to_string();
    let body = |what: &'static str, body: &[u8]| RawPost {
        what,
        body: body.to_vec(),
        content_type: "application/json",
        accept: true,
        session: None,
    };
    let cases = vec![
        body("empty body", b""),
        body("truncated JSON", b"{"),
        body("empty batch", b"[]"),
        body("null", b"null"),
        body("number", b"42"),
        body("method is a number", br#"{"jsonrpc":"2.0","method":5}"#),
        body(
            "initialize with params 5",
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":5}"#,
        ),
        body("invalid UTF-8", b"\xff\xfe{\"jsonrpc\": \xc3\x28}"),
        body("deep nesting", "[".repeat(100_000).as_bytes()),
        body("20 MB of garbage", &vec![b'x'; 20 * 1024 * 1024]),
        RawPost {
            session: Some("no-such-session"),
            ..body(
                "tools/list with an unknown session",
                br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            )
        },
        RawPost {
            content_type: "text/plain",
            ..body("initialize as text/plain", init.as_bytes())
        },
        RawPost {
            accept: false,
            ..body("initialize without Accept", init.as_bytes())
        },
    ];
    let mut report = Vec::new();
    let mut bad = Vec::new();
    for RawPost {
        what,
        body,
        content_type,
        accept,
        session,
    } in cases
    {
        let mut req = http
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        if accept {
            req = req.header("accept", "application/json, text/event-stream");
        }
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        let (status, text) = match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            // A server may drop an oversized upload early; that is a refusal too, as long
            // as it keeps serving (checked below).
            Err(e) if what == "20 MB of garbage" => (0, e.to_string()),
            Err(e) => panic!("{what}: request failed: {e}"),
        };
        let mut text = text;
        text.truncate(120);
        report.push(format!("{what:<36} {status} {text}"));
        if !(status == 0 || (400..500).contains(&status)) {
            bad.push(format!("{what}: {status} {text}"));
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        bad.is_empty(),
        "malformed requests must get a 4xx:\n{}",
        bad.join("\n")
    );
    assert!(
        server.try_wait().unwrap().is_none(),
        "the server is still running"
    );

    // The session from before still works, and so does a new one.
    let tools = before.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 5);
    let after: rmcp::service::RunningService<RoleClient, ()> =
        ().serve(StreamableHttpClientTransport::from_uri(url))
            .await
            .unwrap();
    let r = after
        .call_tool(CallToolRequestParams::new("bitrouter_status"))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true), "{:?}", r.content);
    let _ = before.cancel().await;
    let _ = after.cancel().await;
    let _ = server.kill().await;
}

// ---------------------------------------------------------------------------------------------
// Rough edges: each answer names the problem

/// A raw stdio session: the server, its stdin and its parsed stdout.
struct RawStdio {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    rx: tokio::sync::mpsc::UnboundedReceiver<Result<Value, String>>,
    seen: Vec<Value>,
}

impl RawStdio {
    async fn start(home: &TestHome) -> Self {
        let cfg = unmanaged_config(home);
        let mut cmd = common::server_command(home, &cfg, &[]);
        cmd.args(["serve", "--stdio"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let rx = read_lines(child.stdout.take().unwrap());
        let mut s = Self {
            child,
            stdin,
            rx,
            seen: Vec::new(),
        };
        s.send_line(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "rough-edges", "version": "0"}}})
            .to_string(),
        )
        .await;
        let init = s.answer(1).await;
        assert!(init["result"]["serverInfo"].is_object(), "{init}");
        s.send_line(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
            .await;
        s
    }

    async fn send_line(&mut self, line: String) {
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn answer(&mut self, id: u64) -> Value {
        response(&mut self.rx, id, &mut self.seen).await
    }

    /// The next message without an id (`null` or left out, as MCP 2026-07-28 allows for errors
    /// whose request id cannot be read).
    async fn null_id_answer(&mut self) -> Value {
        let wait = async {
            loop {
                match self.rx.recv().await {
                    Some(Ok(v)) if v["id"].is_null() && v["error"].is_object() => return v,
                    Some(Ok(v)) => self.seen.push(v),
                    Some(Err(line)) => panic!("stdout carried a non-JSON line: {line:?}"),
                    None => panic!("stdout closed"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("an id-less error answer within 30 s")
    }

    /// Calls a tool; returns the tool error's text (the call must fail as a tool error).
    async fn tool_error(&mut self, id: u64, tool: &str, arguments: Value) -> String {
        self.send_line(
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                   "params": {"name": tool, "arguments": arguments}})
            .to_string(),
        )
        .await;
        let v = self.answer(id).await;
        assert_eq!(v["result"]["isError"], true, "{tool}: {}", short(&v));
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[tokio::test]
async fn stdio_answers_lines_that_are_not_json_and_requests_nested_too_deep() {
    let home = TestHome::new();
    let mut s = RawStdio::start(&home).await;

    s.send_line("this is not json".into()).await;
    let v = s.null_id_answer().await;
    assert_eq!(v["error"]["code"], -32700, "{v}");

    s.send_line("{\"jsonrpc\": \"2.0\", \"id\": 5, \"method\": ".into())
        .await;
    let v = s.null_id_answer().await;
    assert_eq!(v["error"]["code"], -32700, "{v}");

    // Valid JSON, 10,000 levels deep inside the arguments: answered, with its id.
    let deep = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":77,\"method\":\"tools/call\",\"params\":{{\"name\":\"bitrouter_status\",\"arguments\":{{\"x\":{}{}}}}}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    s.send_line(deep).await;
    let v = s.answer(77).await;
    assert_eq!(v["error"]["code"], -32600, "{}", short(&v));

    // The session still works.
    s.send_line(json!({"jsonrpc": "2.0", "id": 78, "method": "tools/list"}).to_string())
        .await;
    let v = s.answer(78).await;
    assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 5);
    drop(s.stdin);
    let _ = s.child.wait().await;
}

#[tokio::test]
async fn bad_tool_arguments_get_answers_that_name_the_problem() {
    let home = TestHome::new();
    let mut s = RawStdio::start(&home).await;

    // `arguments` as an array: invalid params (-32602), not "method not found".
    s.send_line(
        json!({"jsonrpc": "2.0", "id": 10, "method": "tools/call",
               "params": {"name": "bitrouter_status", "arguments": []}})
        .to_string(),
    )
    .await;
    let v = s.answer(10).await;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("arguments"),
        "{v}"
    );

    // An account to sign with, so keygen gets as far as the expiry.
    s.send_line(
        json!({"jsonrpc": "2.0", "id": 11, "method": "tools/call",
               "params": {"name": "bitrouter_account", "arguments": {"action": "generate"}}})
        .to_string(),
    )
    .await;
    let v = s.answer(11).await;
    assert_ne!(v["result"]["isError"], true, "{v}");
    let files_before = snapshot(&home.data_dir());

    // An expiry in the past (or now) mints nothing.
    let mut id = 20;
    for exp in ["0", "1", "1700000000", "0s"] {
        id += 1;
        let e = s
            .tool_error(
                id,
                "bitrouter_keygen",
                json!({"exp": exp, "name": format!("dead{id}")}),
            )
            .await;
        assert!(e.contains("argument `exp`"), "{exp}: {e}");
        assert!(
            e.contains("not in the future") || e.contains("at once"),
            "{exp}: {e}"
        );
    }
    assert_eq!(snapshot(&home.data_dir()), files_before, "no token saved");

    // A bad account reference names the accepted forms.
    for account in [
        json!(true),
        json!(-1),
        json!(1.5),
        json!({"index": 0}),
        json!([0]),
    ] {
        id += 1;
        let e = s
            .tool_error(
                id,
                "bitrouter_account",
                json!({"action": "set_active", "account": account}),
            )
            .await;
        assert!(!e.contains("untagged"), "{account}: {e}");
        assert!(
            e.contains("argument `account`") && e.contains("index") && e.contains("prefix"),
            "{account}: {e}"
        );
    }

    // A 1 MB bad value comes back cut, not whole.
    let huge = "n".repeat(1_000_000);
    for (tool, args) in [
        ("bitrouter_keys", json!({"action": "show", "name": huge})),
        ("bitrouter_keygen", json!({"exp": huge})),
        ("bitrouter_account", json!({"action": huge})),
        ("bitrouter_keygen", json!({"budget": huge})),
    ] {
        id += 1;
        let e = s.tool_error(id, tool, args).await;
        assert!(
            e.len() < 4096,
            "{tool}: {} bytes echoed: {}",
            e.len(),
            &e[..200]
        );
        assert!(
            e.contains("characters"),
            "{tool}: says how long it was: {e}"
        );
    }
    drop(s.stdin);
    let _ = s.child.wait().await;
}

#[tokio::test]
async fn a_name_given_twice_in_a_config_file_is_refused_by_name() {
    let home = TestHome::new();
    let files = [
        (
            "dup.json",
            r#"{"autoStart": false, "models": {
                "smart": {"endpoints": [{"provider": "openai", "modelId": "a"}]},
                "smart": {"endpoints": [{"provider": "openai", "modelId": "b"}]}}}"#,
            "smart",
        ),
        (
            "dup.yaml",
            "autoStart: false\nproviders:\n  mine:\n    derives: openai\n  mine:\n    derives: google\n",
            "mine",
        ),
    ];
    for (name, text, key) in files {
        let path = home.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = common::server_command(&home, &path, &[])
            .args(["serve", "--stdio"])
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: must be refused");
        assert!(
            stderr.contains(key) && stderr.contains("twice"),
            "{name}: {stderr}"
        );
    }
}

#[tokio::test]
async fn an_empty_or_half_written_config_never_replaces_the_working_one() {
    use common::upstream::Upstream;
    let home = TestHome::new();
    let up = Upstream::start("a").await;
    let port = free_port();
    let config = json!({
        "port": port,
        "healthCheckIntervalMs": 500,
        "providers": {"pa": {"derives": "openai", "apiBase": up.api_base(), "apiKey": "pa-key-0123456789"}},
        "models": {"smart": {"endpoints": [{"provider": "pa", "modelId": "m1"}]}}
    });
    let cfg = home.write_config(&config);
    let mcp = Mcp::stdio(&home, Some(&cfg)).await;
    let s = mcp.wait_healthy().await;
    let pid = s["daemon"]["pid"].clone();
    let token = mcp.api_token().await;
    let full = serde_json::to_vec_pretty(&config).unwrap();
    for (what, bytes) in [
        ("empty", Vec::new()),
        (
            "whitespace",
            b"
  
"
            .to_vec(),
        ),
        ("half-written", full[..full.len() / 2].to_vec()),
    ] {
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::fs::write(&cfg, &bytes).unwrap();
        let s = mcp
            .wait_status(what, Duration::from_secs(30), |s| {
                s["config_error"].is_string()
            })
            .await;
        assert_eq!(
            s["daemon"]["pid"], pid,
            "{what}: the daemon was not restarted"
        );
        assert_eq!(s["daemon"]["state"], "healthy", "{what}: {s:#}");
        assert_eq!(s["listen"], format!("127.0.0.1:{port}"), "{what}");
        assert_eq!(
            s["models"][0]["name"], "smart",
            "{what}: the old config stays"
        );
        if what != "half-written" {
            assert!(
                s["config_error"].as_str().unwrap().contains("empty"),
                "{what}: {}",
                s["config_error"]
            );
        }
        let (status, body) = common::chat(port, &token, "smart").await;
        assert_eq!(status, 200, "{what}: still serving: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::fs::write(&cfg, &full).unwrap();
        mcp.wait_status("the error cleared", Duration::from_secs(30), |s| {
            s["config_error"].is_null()
        })
        .await;
    }
    mcp.close().await;
}

/// One `initialize` over raw HTTP; returns the session id.
async fn open_session(http: &reqwest::Client, url: &str) -> String {
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "abandoned", "version": "0"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.text().await;
    let r = session_post(
        http,
        url,
        &id,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(r, 202);
    id
}

/// A POST in session `id`; returns the status (the body is read to its end).
async fn session_post(http: &reqwest::Client, url: &str, id: &str, body: Value) -> u16 {
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", id)
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let _ = r.text().await;
    status
}

#[tokio::test]
async fn http_sessions_are_capped_and_the_longest_idle_goes_first() {
    let cap = bitrouter_mcp::server::sessions::MAX_SESSIONS;
    let home = TestHome::new();
    let cfg = unmanaged_config(&home);
    let port = free_port();
    let mut cmd = common::server_command(&home, &cfg, &[]);
    cmd.args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let mut server = cmd.spawn().unwrap();
    wait_for_port(port, Duration::from_secs(10)).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let list = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"});

    // Fill the server, abandoning every session; then use the first one again.
    let mut ids = Vec::new();
    for _ in 0..cap {
        ids.push(open_session(&http, &url).await);
    }
    assert_eq!(session_post(&http, &url, &ids[0], list(2)).await, 200);
    // Three more: the three idle the longest (ids[1..4]) make room; ids[0] was just used.
    let mut more = Vec::new();
    for _ in 0..3 {
        more.push(open_session(&http, &url).await);
    }
    for gone in &ids[1..4] {
        assert_eq!(
            session_post(&http, &url, gone, list(3)).await,
            404,
            "an evicted session is unknown (its client starts a new one)"
        );
    }
    for kept in [&ids[0], &ids[4], &ids[cap - 1], &more[0], &more[2]] {
        assert_eq!(session_post(&http, &url, kept, list(4)).await, 200);
    }
    assert!(
        server.try_wait().unwrap().is_none(),
        "the server is still running"
    );
    let _ = server.kill().await;
}

#[tokio::test]
async fn sigterm_ends_a_stdio_server_whose_client_never_initialized() {
    let home = TestHome::new();
    let cfg = unmanaged_config(&home);
    let mut cmd = common::server_command(&home, &cfg, &[]);
    cmd.args(["serve", "--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    // stdin stays open and silent, as with a client that hangs before `initialize`.
    let _stdin = child.stdin.take().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    common::kill(child.id().unwrap(), "TERM");
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the server exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
