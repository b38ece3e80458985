//! The MCP protocol surface: tool and resource declarations, and the stdio and streamable-HTTP
//! transports. Everything here adapts [`crate::tools`] to MCP; no business logic lives here.

pub mod args;
pub mod dashboard;
pub mod http;
pub mod peer;
pub mod sessions;
pub mod state;
pub mod stdio;
pub mod subscriptions;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
    CustomResult, Implementation, ListResourcesResult, MetaObject, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig, SubscribeRequestParams, SubscriptionFilter,
    UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, Json, RoleServer, ServerHandler, tool, tool_handler, tool_router};

pub use state::AppState;

use crate::tools::{self, ToolError};
use args::Args;

/// Why a transport could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("stdio transport: {0}")]
    Stdio(String),
    #[error("cannot listen on {addr}: {source} (choose another address with --http)")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "refusing to serve MCP on non-loopback address {0} without a bearer token: pass --auth-token or set BITROUTER_MCP_AUTH_TOKEN"
    )]
    InsecureBind(std::net::SocketAddr),
    #[error("--auth-token (or BITROUTER_MCP_AUTH_TOKEN) is empty: give a token or leave it unset")]
    EmptyToken,
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
}

/// URI of the route table resource.
pub const ROUTES_URI: &str = "bitrouter://routes";
/// URI of the per-endpoint counters resource.
pub const METRICS_URI: &str = "bitrouter://metrics";
/// URI of the usage and spend resource (`bitrouter_usage` over its default window).
pub const USAGE_URI: &str = "bitrouter://usage";

/// MCP methods this server serves in every protocol era; a request for one of them reaching
/// `on_custom_request` had params rmcp could not parse. `initialize`, `ping` and
/// `resources/(un)subscribe` are left out: 2026-07-28 removed them, so there they must stay
/// "method not found" (HTTP 404), and rmcp parses them itself in the eras that have them.
const SERVED_METHODS: [&str; 5] = [
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "subscriptions/listen",
];

fn custom_request_error(method: &str, params: Option<serde_json::Value>) -> ErrorData {
    if !SERVED_METHODS.contains(&method) {
        // What rmcp answers by default.
        return ErrorData::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            crate::redact::clip(method),
            None,
        );
    }
    let why = match (method, params) {
        ("tools/call", Some(params)) => {
            match serde_path_to_error::deserialize::<_, CallToolRequestParams>(params) {
                Err(e) if e.path().to_string() == "arguments" => {
                    "`arguments` must be an object of named arguments (e.g. {\"action\": \"list\"})"
                        .to_string()
                }
                Err(e) => format!("{}: {}", e.path(), e.inner()),
                Ok(_) => "params do not match the MCP schema".to_string(),
            }
        }
        (_, None) => "params are missing".to_string(),
        _ => "params do not match the MCP schema".to_string(),
    };
    ErrorData::invalid_params(
        crate::redact::clip(&format!("invalid params for {method}: {why}")),
        None,
    )
}

/// Key of a failed tool call's `_meta` entry holding its machine-readable code (and the argument at
/// fault): `{"bitrouter/error": {"code": "already_exists", "field": "name"}}`.
pub const ERROR_META_KEY: &str = "bitrouter/error";

/// A tool schema without schemars' Rust-width `format`s (`uint64`, `uint32`, `uint`, `double`...):
/// they are no JSON Schema formats, and the TypeScript SDK's validator (OpenClaw's MCP client, the
/// adapter) prints a warning for each one on every `tools/list`. Ranges stay in
/// `minimum`/`maximum`.
fn without_integer_formats(
    schema: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                let rust_width = map.get("format").and_then(|f| f.as_str()).is_some_and(|f| {
                    matches!(
                        f,
                        "uint"
                            | "uint8"
                            | "uint16"
                            | "uint32"
                            | "uint64"
                            | "uint128"
                            | "int"
                            | "int8"
                            | "int16"
                            | "int32"
                            | "int64"
                            | "int128"
                            | "float"
                            | "double"
                    )
                });
                if rust_width {
                    map.remove("format");
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = serde_json::Value::Object(schema.clone());
    strip(&mut value);
    match value {
        serde_json::Value::Object(map) => map,
        _ => schema.clone(),
    }
}

/// `_meta` of a failed tool call: its code and, when one argument is at fault, that argument.
fn error_meta(code: tools::ErrorCode, field: Option<&str>) -> MetaObject {
    let mut error = serde_json::Map::new();
    error.insert("code".into(), code.as_str().into());
    if let Some(field) = field {
        error.insert("field".into(), field.into());
    }
    let mut meta = serde_json::Map::new();
    meta.insert(ERROR_META_KEY.into(), error.into());
    MetaObject(meta)
}

fn tool_error(e: ToolError) -> CallToolResult {
    // A bad argument may be huge; the agent gets its start and length. No structuredContent: a
    // client would check it against the tool's output schema.
    CallToolResult::error(vec![ContentBlock::text(crate::redact::clip(&e.message))])
        .with_meta(Some(error_meta(e.code, e.field)))
}

/// rmcp answers arguments that do not deserialize (wrong type, unknown variant or field) with an
/// error result of its own, before a tool runs; it gets the same code as the tools' own argument
/// errors, with the argument [`args::Args`] named (`failed to deserialize parameters: argument
/// `models[0]`: ...` names `models`).
fn code_argument_error(mut result: CallToolResult) -> CallToolResult {
    if result.is_error != Some(true) || result.meta.is_some() {
        return result;
    }
    let text = result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.as_str())
        .unwrap_or_default();
    let Some(rest) = text.strip_prefix("failed to deserialize parameters:") else {
        return result;
    };
    let field = rest
        .trim_start()
        .strip_prefix("argument `")
        .and_then(|r| r.split(['`', '.', '[']).next())
        .filter(|f| !f.is_empty());
    result.meta = Some(error_meta(tools::ErrorCode::InvalidArgument, field));
    result
}

/// One MCP server; cheap to clone (the HTTP transport makes one per session).
#[derive(Clone)]
pub struct BitrouterServer {
    state: Arc<AppState>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl BitrouterServer {
    pub fn new(state: Arc<AppState>) -> Self {
        // Built once per process: the HTTP transport makes a server per session, and a router
        // with its schemas rebuilt for each one cost ~10 MB of RSS at 32 sessions. A clone shares
        // the schemas (`Arc`).
        static ROUTER: std::sync::OnceLock<ToolRouter<BitrouterServer>> =
            std::sync::OnceLock::new();
        let tool_router = ROUTER
            .get_or_init(|| {
                let mut router = Self::tool_router();
                for route in router.map.values_mut() {
                    let tool = &mut route.attr;
                    tool.input_schema = Arc::new(without_integer_formats(&tool.input_schema));
                    if let Some(output) = &tool.output_schema {
                        tool.output_schema = Some(Arc::new(without_integer_formats(output)));
                    }
                }
                router
            })
            .clone();
        Self { state, tool_router }
    }

    #[tool(
        name = "bitrouter_status",
        description = "Check the local BitRouter LLM router: is the daemon healthy, where it listens \
            (OpenAI-compatible base URL), which providers have credentials (names only, never keys), \
            which virtual models route where and how each endpoint is doing (health, circuit \
            breaker, last error, probe latency, request and error counts, last switch and why), \
            the binary version and the data paths. Read-only; call it first when model requests \
            fail or to find the endpoint.",
        meta = dashboard::tool_meta(),
        annotations(
            title = "BitRouter status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn bitrouter_status(
        &self,
        Parameters(Args(_)): Parameters<Args<tools::status::StatusParams>>,
    ) -> Result<Json<state::StatusJson>, CallToolResult> {
        Ok(Json(self.state.status().await))
    }

    #[tool(
        name = "bitrouter_account",
        description = "Manage BitRouter's local Ed25519 accounts (the keys that sign API tokens): \
            list them, generate a new one, or choose the active one by index or public-key prefix. \
            Never reveals a private key. Same files as `bitrouter account`.",
        annotations(
            title = "BitRouter accounts",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn bitrouter_account(
        &self,
        Parameters(Args(p)): Parameters<Args<tools::account::AccountParams>>,
    ) -> Result<Json<tools::account::AccountOutput>, CallToolResult> {
        tools::account::run(&self.state.home, p)
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "bitrouter_keygen",
        description = "Mint a BitRouter API key (a JWT signed by the active account) for calling \
            models through the local router: choose expiry (\"30m\", \"12h\", \"30d\", \"never\"), \
            scope (api or admin), an optional model allowlist and budget, and optionally save it \
            by name. Returns the token and its decoded claims. Same format as `bitrouter keygen`.",
        annotations(
            title = "Mint a BitRouter API token",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn bitrouter_keygen(
        &self,
        Parameters(Args(p)): Parameters<Args<tools::keygen::KeygenParams>>,
    ) -> Result<Json<tools::keygen::KeygenOutput>, CallToolResult> {
        tools::keygen::run(&self.state.home, p)
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "bitrouter_keys",
        description = "List, inspect or remove saved BitRouter API tokens (JWTs) of the active \
            account: name, scope, model allowlist, expiry and whether it has expired. Listing and \
            showing never print the token text. action \"remove\" deletes a token file and cannot \
            be undone. Same files as `bitrouter keys`.",
        annotations(
            title = "Saved BitRouter tokens",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn bitrouter_keys(
        &self,
        Parameters(Args(p)): Parameters<Args<tools::keys::KeysParams>>,
    ) -> Result<Json<tools::keys::KeysOutput>, CallToolResult> {
        tools::keys::run(&self.state.home, p)
            .map(Json)
            .map_err(tool_error)
    }

    #[tool(
        name = "bitrouter_usage",
        description = "What BitRouter served and what it cost, from the daemon's spend log: over a \
            window (since: RFC 3339 or an age like \"1h\", \"7d\"; default the last 24 h) the totals \
            and per virtual model, provider and endpoint: requests, errors, input/output tokens, \
            cost in USD, p50/p99 latency and the share served by fallback endpoints; plus the \
            latest requests with the endpoint that served each. Read-only; results are capped.",
        meta = dashboard::tool_meta(),
        annotations(
            title = "BitRouter usage and spend",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn bitrouter_usage(
        &self,
        Parameters(Args(p)): Parameters<Args<tools::usage::UsageParams>>,
    ) -> Result<Json<tools::usage::UsageOutput>, CallToolResult> {
        self.usage(p).await.map(Json).map_err(tool_error)
    }
}

impl BitrouterServer {
    /// `bitrouter_usage` off the async threads: the first read of a large spend log takes a while.
    async fn usage(
        &self,
        p: tools::usage::UsageParams,
    ) -> Result<tools::usage::UsageOutput, ToolError> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            tools::usage::run(
                &state.home,
                &state.config.current(),
                &state.spend_log,
                p,
                tools::usage::now_ms(),
            )
        })
        .await
        .unwrap_or_else(|e| {
            Err(ToolError::new(
                tools::ErrorCode::Internal,
                format!("reading usage failed: {e}"),
            ))
        })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for BitrouterServer {
    /// The router's call, with a code on the argument errors rmcp makes itself.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = ToolCallContext::new(self, request, context);
        Ok(match self.tool_router.call(call).await? {
            CallToolResponse::Complete(result) => {
                CallToolResponse::Complete(code_argument_error(result))
            }
            other => other,
        })
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(
            Implementation::new("bitrouter-mcp", env!("CARGO_PKG_VERSION")).with_title("BitRouter"),
        )
        .with_instructions(
            "BitRouter is a local LLM routing proxy with failover between providers. Use \
             bitrouter_status to see health and the endpoint, bitrouter_keygen to mint an API \
             token, bitrouter_keys and bitrouter_account to manage tokens and signing accounts, \
             bitrouter_usage to see which endpoints served what and at what cost. \
             The resource bitrouter://routes holds the live route table. The daemon's lifecycle \
             is managed by this server and cannot be changed through tools.",
        )
    }

    /// rmcp hands a standard request whose params do not parse (e.g. `tools/call` with
    /// `arguments` as an array) here as if its method were unknown (-32601). It is a request for
    /// a method we have with invalid params: -32602, naming what is wrong.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        Err(custom_request_error(&request.method, request.params))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new(ROUTES_URI, "routes")
                .with_title("BitRouter route table")
                .with_description(
                    "Each virtual model with its strategy and endpoints (provider, model id, \
                     health, active), the providers usable as provider:model_id, and whether the \
                     daemon is healthy.",
                )
                .with_mime_type("application/json"),
            Resource::new(METRICS_URI, "metrics")
                .with_title("BitRouter endpoint metrics")
                .with_description(
                    "Per endpoint: active probes and probe failures, requests and errors of real \
                     traffic through the daemon, failures detected from that traffic; route \
                     switches per virtual model.",
                )
                .with_mime_type("application/json"),
            Resource::new(USAGE_URI, "usage")
                .with_title("BitRouter usage and spend (last 24 h)")
                .with_description(
                    "What bitrouter_usage returns for the last 24 hours: requests, errors, tokens, \
                     cost, latency and fallback share per virtual model, provider and endpoint, and \
                     the latest requests.",
                )
                .with_mime_type("application/json"),
            dashboard::app_resource(),
        ]))
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if request.uri != ROUTES_URI {
            return Err(ErrorData::invalid_params(
                format!(
                    "argument `uri`: only {ROUTES_URI} can be subscribed (got \"{}\"); read {METRICS_URI} when needed",
                    request.uri
                ),
                None,
            ));
        }
        self.state
            .subscribers
            .add(subscriptions::session_of(&context), context.peer.clone());
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // Only the route table can be subscribed; unsubscribing anything else changes nothing.
        if request.uri == ROUTES_URI {
            self.state
                .subscribers
                .remove(subscriptions::session_of(&context));
        }
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let wants_routes = context
            .accepted()
            .resource_subscriptions
            .as_ref()
            .is_some_and(|uris| uris.iter().any(|u| u == ROUTES_URI));
        let mut changes = self.state.route_changes();
        loop {
            tokio::select! {
                _ = context.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    if wants_routes && context.sink().notify_resource_updated(ROUTES_URI).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri == dashboard::APP_URI {
            return Ok(ReadResourceResult::new(vec![dashboard::app_contents()]).into());
        }
        let text = match request.uri.as_str() {
            ROUTES_URI => serde_json::to_string_pretty(&self.state.route_table()),
            METRICS_URI => serde_json::to_string_pretty(&self.state.metrics()),
            USAGE_URI => match self.usage(Default::default()).await {
                Ok(usage) => serde_json::to_string_pretty(&usage),
                Err(e) => return Err(ErrorData::internal_error(e.message, None)),
            },
            other => {
                return Err(ErrorData::resource_not_found(
                    format!(
                        "unknown resource \"{other}\" (available: {ROUTES_URI}, {METRICS_URI}, {USAGE_URI}, {})",
                        dashboard::APP_URI
                    ),
                    Some(serde_json::json!({ "uri": other })),
                ));
            }
        }
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri).with_mime_type("application/json"),
        ])
        .into())
    }
}
