//! `bitrouter_usage`: what the daemon served over a time window — totals and a breakdown per
//! virtual model, provider and endpoint (requests, errors, tokens, cost, latency percentiles, the
//! share served by fallback endpoints) and the latest requests.
//!
//! The facts come from the daemon's spend log ([`crate::spend_log`]), which names the endpoint
//! tried (`provider` + `model`), not the virtual model. They are mapped back through the current
//! config's endpoint resolution: an endpoint belongs to the virtual models that list it, and is a
//! *fallback* of a `priority` model when it is not that model's first endpoint (`load_balance`
//! endpoints are all primaries). Rows matching no configured endpoint are direct
//! `provider:model_id` requests.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ErrorCode, ToolError};
use crate::home::Home;
use crate::routing::endpoints::targets;
use crate::routing::{PluginConfig, Strategy};
use crate::spend_log::{Entry, Found, MAX_ROWS, Mirror, SharedMirror};

/// The window's start when none is given.
pub const DEFAULT_SINCE: &str = "24h";
/// Latest requests listed when `recent` is not given, and the most that can be asked for.
pub const DEFAULT_RECENT: u32 = 20;
pub const MAX_RECENT: u32 = 100;
/// Entries per breakdown list; the rest are counted in `omitted`.
pub const MAX_ENTRIES: usize = 25;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// Start of the window: an RFC 3339 time ("2026-11-30T08:00:00Z") or an age ("30m", "1h",
    /// "7d"). Default "24h".
    #[serde(default)]
    #[schemars(with = "String")]
    pub since: Option<String>,
    /// End of the window, same forms as `since`. Default: now.
    #[serde(default)]
    #[schemars(with = "String")]
    pub until: Option<String>,
    /// Only the traffic of this virtual model.
    #[serde(default)]
    #[schemars(with = "String")]
    pub model: Option<String>,
    /// How many of the latest requests to list, 0 to 100. Default 20.
    #[serde(default)]
    #[schemars(with = "u32", range(max = 100))]
    pub recent: Option<u32>,
}

/// Counters over a set of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct Stats {
    pub requests: u64,
    /// Requests that failed (upstream error, refused, timeout...).
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// US dollars as BitRouter priced them (0 for models it has no price for).
    pub cost_usd: f64,
    /// Latency percentiles over all requests, failed ones included (absent without requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<u32>,
    /// Requests served by an endpoint other than their virtual model's first one.
    pub fallback_requests: u64,
    /// `fallback_requests / requests`, 0 to 1.
    pub fallback_share: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ModelUsage {
    /// The virtual model; "a|b" when the requests went to an endpoint that models a and b share
    /// (the spend log does not say which of them was asked for).
    pub model: String,
    #[serde(flatten)]
    pub stats: Stats,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProviderUsage {
    /// The provider as configured (endpoint overrides folded into their provider).
    pub provider: String,
    #[serde(flatten)]
    pub stats: Stats,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EndpointUsage {
    /// `provider:model_id` as the daemon names it.
    pub endpoint: String,
    /// The virtual models listing this endpoint; empty for direct `provider:model_id` requests.
    pub models: Vec<String>,
    /// Whether this endpoint is a fallback (not the first endpoint of a priority model); absent
    /// when the models sharing it disagree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<bool>,
    #[serde(flatten)]
    pub stats: Stats,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RecentRequest {
    /// When the daemon logged it, RFC 3339 UTC.
    pub at: String,
    /// The virtual model ("a|b" when shared, absent for direct requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `provider:model_id` that served (or failed) it.
    pub endpoint: String,
    /// Served by a fallback endpoint (absent when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<bool>,
    pub success: bool,
    /// The daemon's error kind for failed requests (`Provider`, `Transport`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cost_usd: f64,
    pub latency_ms: u32,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct UsageOutput {
    /// The window, RFC 3339 UTC.
    pub since: String,
    pub until: String,
    /// Only this virtual model's traffic, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Why something is empty or incomplete (e.g. the daemon never ran on this home).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub totals: Stats,
    /// Per virtual model, most requests first.
    pub by_model: Vec<ModelUsage>,
    /// Requests that named `provider:model_id` directly (no virtual model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct: Option<Stats>,
    /// Per provider, most requests first.
    pub by_provider: Vec<ProviderUsage>,
    /// Per endpoint, most requests first.
    pub by_endpoint: Vec<EndpointUsage>,
    /// The latest requests in the window, newest first.
    pub recent: Vec<RecentRequest>,
    /// Entries left off a list to keep the answer small: list name → how many.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub omitted: BTreeMap<String, usize>,
    /// The spend log read (BitRouter's sqlite database, opened read-only).
    pub database: String,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// An RFC 3339 time or an age before `now` ("1h", "7d", "90 min", "now").
pub fn parse_time(field: &'static str, value: &str, now: i64) -> Result<i64, ToolError> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = humantime::parse_duration(v) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        return Ok(now.saturating_sub(ms));
    }
    Err(ToolError::arg(
        field,
        format!(
            "expected an RFC 3339 time such as \"2026-11-30T08:00:00Z\" or an age such as \"30m\", \"1h\", \"7d\" (got \"{value}\")"
        ),
    ))
}

/// Which virtual models an endpoint serves and whether it is their fallback.
#[derive(Debug, Clone, Default)]
struct Attribution {
    /// Sorted; empty for direct requests.
    models: Vec<String>,
    provider: String,
    fallback: Option<bool>,
}

impl Attribution {
    fn model_key(&self) -> Option<String> {
        (!self.models.is_empty()).then(|| self.models.join("|"))
    }
}

fn attribute(config: &PluginConfig, endpoints: &[(String, String)]) -> Vec<Attribution> {
    let targets = targets(config);
    endpoints
        .iter()
        .map(|(provider, model_id)| {
            let matching: Vec<_> = targets
                .iter()
                .filter(|t| &t.daemon_provider == provider && &t.model_id == model_id)
                .collect();
            let Some(first) = matching.first() else {
                return Attribution {
                    models: Vec::new(),
                    provider: provider.clone(),
                    fallback: Some(false),
                };
            };
            let is_fallback = |t: &&&crate::routing::endpoints::Target| {
                let strategy = config.models.get(&t.model).map(|m| m.strategy);
                strategy == Some(Strategy::Priority) && t.index > 0
            };
            let fallback = is_fallback(&first);
            let mut models: Vec<String> = matching.iter().map(|t| t.model.clone()).collect();
            models.sort();
            models.dedup();
            Attribution {
                models,
                provider: first.provider.clone(),
                fallback: matching
                    .iter()
                    .all(|t| is_fallback(&t) == fallback)
                    .then_some(fallback),
            }
        })
        .collect()
}

/// Counters plus the latencies their percentiles come from.
#[derive(Debug, Default, Clone)]
struct Acc {
    stats: Stats,
    latencies: Vec<u32>,
}

impl Acc {
    fn add(&mut self, e: &Entry, fallback: bool) {
        let s = &mut self.stats;
        s.requests += 1;
        s.errors += u64::from(!e.success);
        s.input_tokens += u64::from(e.input_tokens);
        s.output_tokens += u64::from(e.output_tokens);
        s.cost_usd += e.cost;
        s.fallback_requests += u64::from(fallback);
        self.latencies.push(e.latency_ms);
    }

    fn merge(&mut self, other: &Acc) {
        let (s, o) = (&mut self.stats, &other.stats);
        s.requests += o.requests;
        s.errors += o.errors;
        s.input_tokens += o.input_tokens;
        s.output_tokens += o.output_tokens;
        s.cost_usd += o.cost_usd;
        s.fallback_requests += o.fallback_requests;
        self.latencies.extend_from_slice(&other.latencies);
    }

    fn finish(mut self) -> Stats {
        let n = self.latencies.len();
        let mut pick = |q: f64| {
            // Nearest rank: the smallest value with at least q of the requests at or below it.
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            *self.latencies.select_nth_unstable(rank).1
        };
        if n > 0 {
            self.stats.latency_p50_ms = Some(pick(0.50));
            self.stats.latency_p99_ms = Some(pick(0.99));
            self.stats.fallback_share = round(
                self.stats.fallback_requests as f64 / self.stats.requests as f64,
                4,
            );
        }
        self.stats.cost_usd = round(self.stats.cost_usd, 6);
        self.stats
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// Sorts by requests (most first) then name, keeps [`MAX_ENTRIES`], counts the rest in `omitted`.
fn top<T>(
    mut items: Vec<(String, T)>,
    requests: impl Fn(&T) -> u64,
    list: &str,
    omitted: &mut BTreeMap<String, usize>,
) -> Vec<T> {
    items.sort_by(|a, b| requests(&b.1).cmp(&requests(&a.1)).then(a.0.cmp(&b.0)));
    if items.len() > MAX_ENTRIES {
        omitted.insert(list.to_string(), items.len() - MAX_ENTRIES);
        items.truncate(MAX_ENTRIES);
    }
    items.into_iter().map(|(_, t)| t).collect()
}

/// Usage over the window `params` asks for, from the daemon's spend log under `home`.
pub fn run(
    home: &Home,
    config: &PluginConfig,
    log: &SharedMirror,
    params: UsageParams,
    now: i64,
) -> Result<UsageOutput, ToolError> {
    let since = parse_time(
        "since",
        params.since.as_deref().unwrap_or(DEFAULT_SINCE),
        now,
    )?;
    let until = match params.until.as_deref() {
        Some(u) => parse_time("until", u, now)?,
        None => now,
    };
    if since > until {
        return Err(ToolError::arg(
            "since",
            format!(
                "{} is after `until` ({}); give an earlier start",
                rfc3339(since),
                rfc3339(until)
            ),
        ));
    }
    let recent = params.recent.unwrap_or(DEFAULT_RECENT);
    if recent > MAX_RECENT {
        return Err(ToolError::arg(
            "recent",
            format!("at most {MAX_RECENT} requests can be listed (got {recent})"),
        ));
    }
    if let Some(m) = &params.model
        && !config.models.contains_key(m)
    {
        let known: Vec<&str> = config.models.keys().map(String::as_str).collect();
        return Err(ToolError::at(
            ErrorCode::NotFound,
            "model",
            format!(
                "no virtual model \"{m}\" (configured: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    let path = home.daemon_db_file();
    let mut out = log
        .with(&path, |found, mirror| {
            summarize(config, found, mirror, &params, since, until, recent)
        })
        .map_err(|e| ToolError::new(ErrorCode::SpendLogUnavailable, e.to_string()))?;
    out.since = rfc3339(since);
    out.until = rfc3339(until);
    out.model = params.model;
    out.database = path.display().to_string();
    Ok(out)
}

fn summarize(
    config: &PluginConfig,
    found: Found,
    mirror: &Mirror,
    params: &UsageParams,
    since: i64,
    until: i64,
    recent: u32,
) -> UsageOutput {
    let mut out = UsageOutput {
        totals: Acc::default().finish(),
        ..Default::default()
    };
    match found {
        Found::NoDatabase => {
            out.note = Some(
                "BitRouter has not logged any request on this home yet: its database does not exist (the daemon creates it when it first starts)".into(),
            );
            return out;
        }
        Found::NoTable => {
            out.note = Some(
                "BitRouter's database has no spend log yet (the daemon creates it when it starts)"
                    .into(),
            );
            return out;
        }
        Found::Log => {}
    }
    let attributions = attribute(config, mirror.endpoints());
    let wanted = |a: &Attribution| match &params.model {
        Some(m) => a.models.iter().any(|x| x == m),
        None => true,
    };
    let mut per_endpoint: Vec<Acc> = vec![Acc::default(); attributions.len()];
    let mut latest: Vec<&Entry> = Vec::new();
    // Entries are in log order, which is time order up to concurrent writes.
    for e in mirror.entries().iter().rev() {
        if e.at_ms < since || e.at_ms > until {
            continue;
        }
        let a = &attributions[e.endpoint as usize];
        if !wanted(a) {
            continue;
        }
        per_endpoint[e.endpoint as usize].add(e, a.fallback == Some(true));
        if latest.len() < recent as usize {
            latest.push(e);
        }
    }

    let mut totals = Acc::default();
    let mut direct = Acc::default();
    let mut models: BTreeMap<String, Acc> = BTreeMap::new();
    let mut providers: BTreeMap<String, Acc> = BTreeMap::new();
    let mut endpoints = Vec::new();
    for (i, acc) in per_endpoint.into_iter().enumerate() {
        if acc.stats.requests == 0 {
            continue;
        }
        let a = &attributions[i];
        totals.merge(&acc);
        match a.model_key() {
            Some(k) => models.entry(k).or_default().merge(&acc),
            None => direct.merge(&acc),
        }
        providers.entry(a.provider.clone()).or_default().merge(&acc);
        let (provider, model_id) = &mirror.endpoints()[i];
        let name = format!("{provider}:{model_id}");
        endpoints.push((
            name.clone(),
            EndpointUsage {
                endpoint: name,
                models: a.models.clone(),
                fallback: a.fallback,
                stats: acc.finish(),
            },
        ));
    }
    let omitted = &mut out.omitted;
    out.by_model = top(
        models
            .into_iter()
            .map(|(model, acc)| {
                let stats = acc.finish();
                (model.clone(), ModelUsage { model, stats })
            })
            .collect(),
        |m| m.stats.requests,
        "by_model",
        omitted,
    );
    out.by_provider = top(
        providers
            .into_iter()
            .map(|(provider, acc)| {
                let stats = acc.finish();
                (provider.clone(), ProviderUsage { provider, stats })
            })
            .collect(),
        |p| p.stats.requests,
        "by_provider",
        omitted,
    );
    out.by_endpoint = top(endpoints, |e| e.stats.requests, "by_endpoint", omitted);
    if direct.stats.requests > 0 {
        out.direct = Some(direct.finish());
    }
    out.totals = totals.finish();
    out.recent = latest
        .into_iter()
        .map(|e| {
            let a = &attributions[e.endpoint as usize];
            let (provider, model_id) = &mirror.endpoints()[e.endpoint as usize];
            RecentRequest {
                at: rfc3339(e.at_ms),
                model: a.model_key(),
                endpoint: format!("{provider}:{model_id}"),
                fallback: a.fallback,
                success: e.success,
                error_type: mirror.error_type(e).map(String::from),
                input_tokens: e.input_tokens,
                output_tokens: e.output_tokens,
                cost_usd: e.cost,
                latency_ms: e.latency_ms,
            }
        })
        .collect();
    let (dropped, dropped_until) = mirror.dropped();
    if dropped > 0 && dropped_until.is_some_and(|t| t >= since) {
        out.note = Some(format!(
            "only the newest {MAX_ROWS} logged requests are kept in memory: {dropped} older ones (up to {}) are not counted",
            dropped_until.map(rfc3339).unwrap_or_default()
        ));
    } else if out.totals.requests == 0 {
        out.note = Some("no request was logged in this window".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    const NOW: i64 = 1_796_025_600_000; // 2026-11-30T08:00:00Z

    fn config() -> PluginConfig {
        PluginConfig::parse(
            r#"{"providers": {"pa": {"derives": "openai"}, "pb": {"derives": "openai"}},
                "models": {
                  "smart": {"strategy": "priority", "endpoints": [
                      {"provider": "pa", "modelId": "m1"},
                      {"provider": "pb", "modelId": "m2", "apiKey": "k"}]},
                  "fast": {"strategy": "load_balance", "endpoints": [
                      {"provider": "pa", "modelId": "m3"}, {"provider": "pb", "modelId": "m4"}]},
                  "both": {"strategy": "priority", "endpoints": [{"provider": "pa", "modelId": "m3"}]}}}"#,
        )
        .unwrap()
    }

    /// A home whose daemon database has `rows` of (provider, model, ok, latency, minutes ago).
    fn home_with(rows: &[(&str, &str, bool, u32, i64)]) -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::create_dir_all(home.bitrouter_home()).unwrap();
        let conn = Connection::open(home.daemon_db_file()).unwrap();
        crate::spend_log::tests::create_pinned(&conn);
        for (i, (provider, model, ok, latency, ago)) in rows.iter().enumerate() {
            let at = chrono::DateTime::from_timestamp_millis(NOW - ago * 60_000)
                .unwrap()
                .naive_utc()
                .format("%Y-%m-%d %H:%M:%S%.f")
                .to_string();
            conn.execute(
                "INSERT INTO spend_logs VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL)",
                rusqlite::params![
                    format!("id-{i}"), model, provider,
                    if *ok { 100 } else { 0 }, if *ok { 20 } else { 0 },
                    if *ok { 0.01 } else { 0.0 }, latency, ok,
                    if *ok { None } else { Some("Provider") }, at
                ],
            )
            .unwrap();
        }
        (dir, home)
    }

    fn usage(home: &Home, params: UsageParams) -> Result<UsageOutput, ToolError> {
        run(home, &config(), &SharedMirror::default(), params, NOW)
    }

    #[test]
    fn maps_endpoints_to_virtual_models_fallbacks_and_direct_traffic() {
        let (_d, home) = home_with(&[
            ("pa", "m1", true, 100, 50),
            ("pa", "m1", false, 10, 40),
            ("pb__smart_1", "m2", true, 300, 30),
            ("pb__smart_1", "m2", true, 200, 20),
            ("pa", "m3", true, 50, 10),
            ("pb", "m4", true, 60, 5),
            ("openai", "gpt-4o", true, 70, 3),
            ("pa", "m1", true, 80, 60 * 25), // outside the default 24 h
        ]);
        let out = usage(&home, UsageParams::default()).unwrap();
        assert_eq!(out.totals.requests, 7);
        assert_eq!(out.totals.errors, 1);
        assert_eq!(out.totals.input_tokens, 600);
        assert_eq!(out.totals.fallback_requests, 2);

        let smart = out.by_model.iter().find(|m| m.model == "smart").unwrap();
        assert_eq!(smart.stats.requests, 4);
        assert_eq!(smart.stats.fallback_requests, 2);
        assert_eq!(smart.stats.fallback_share, 0.5);
        assert_eq!(smart.stats.latency_p50_ms, Some(100));
        assert_eq!(smart.stats.latency_p99_ms, Some(300));
        assert_eq!(smart.stats.cost_usd, 0.03);
        // pa:m3 is listed by both "fast" and "both": the log cannot tell them apart.
        assert!(out.by_model.iter().any(|m| m.model == "both|fast"));
        let fast = out.by_model.iter().find(|m| m.model == "fast").unwrap();
        assert_eq!(
            fast.stats.fallback_requests, 0,
            "load_balance has no fallbacks"
        );
        assert_eq!(out.direct.as_ref().unwrap().requests, 1);

        let pb = out.by_provider.iter().find(|p| p.provider == "pb").unwrap();
        assert_eq!(pb.stats.requests, 3, "the override provider folds into pb");
        let ep = out
            .by_endpoint
            .iter()
            .find(|e| e.endpoint == "pb__smart_1:m2")
            .unwrap();
        assert_eq!(
            (ep.fallback, ep.models.clone()),
            (Some(true), vec!["smart".to_string()])
        );

        assert_eq!(out.recent.len(), 7);
        assert_eq!(out.recent[0].endpoint, "openai:gpt-4o");
        assert_eq!(out.recent[0].model, None);
        let failed = out.recent.iter().find(|r| !r.success).unwrap();
        assert_eq!(failed.error_type.as_deref(), Some("Provider"));
        assert_eq!(failed.model.as_deref(), Some("smart"));
        assert_eq!(failed.fallback, Some(false));
    }

    #[test]
    fn window_model_filter_and_recent_limit() {
        let (_d, home) = home_with(&[
            ("pa", "m1", true, 1, 120),
            ("pb__smart_1", "m2", true, 1, 30),
            ("pa", "m3", true, 1, 10),
        ]);
        let out = usage(
            &home,
            UsageParams {
                since: Some("1h".into()),
                model: Some("smart".into()),
                recent: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(out.totals.requests, 1);
        assert_eq!(out.since, "2026-11-30T07:00:00.000Z");
        assert!(out.recent.is_empty());

        let out = usage(
            &home,
            UsageParams {
                since: Some("2026-11-30T05:00:00Z".into()),
                until: Some("2026-11-30T07:45:00+00:00".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(out.totals.requests, 2);
        assert_eq!(out.until, "2026-11-30T07:45:00.000Z");
    }

    #[test]
    fn bad_arguments_name_themselves() {
        let (_d, home) = home_with(&[]);
        let err = |p| usage(&home, p).unwrap_err().message;
        let e = err(UsageParams {
            since: Some("yesterday".into()),
            ..Default::default()
        });
        assert!(
            e.starts_with("argument `since`") && e.contains("RFC 3339"),
            "{e}"
        );
        let e = err(UsageParams {
            until: Some("2026-13-01".into()),
            ..Default::default()
        });
        assert!(e.starts_with("argument `until`"), "{e}");
        let e = err(UsageParams {
            since: Some("1h".into()),
            until: Some("2h".into()),
            ..Default::default()
        });
        assert!(
            e.starts_with("argument `since`") && e.contains("after"),
            "{e}"
        );
        let e = err(UsageParams {
            recent: Some(1000),
            ..Default::default()
        });
        assert!(e.starts_with("argument `recent`"), "{e}");
        let e = err(UsageParams {
            model: Some("smrt".into()),
            ..Default::default()
        });
        assert!(e.contains("both, fast, smart"), "{e}");
    }

    #[test]
    fn a_home_where_the_daemon_never_ran_is_empty_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let out = usage(&Home::new(dir.path()), UsageParams::default()).unwrap();
        assert_eq!(out.totals.requests, 0);
        assert!(out.note.unwrap().contains("does not exist"));
        assert!(!Home::new(dir.path()).daemon_db_file().exists());
    }

    #[test]
    fn long_lists_are_capped() {
        let rows: Vec<(String, String)> = (0..40)
            .map(|i| (format!("p{i}"), format!("m{i}")))
            .collect();
        let rows: Vec<_> = rows
            .iter()
            .map(|(p, m)| (p.as_str(), m.as_str(), true, 1, 1))
            .collect();
        let (_d, home) = home_with(&rows);
        let out = usage(&home, UsageParams::default()).unwrap();
        assert_eq!(out.by_endpoint.len(), MAX_ENTRIES);
        assert_eq!(out.omitted["by_endpoint"], 40 - MAX_ENTRIES);
        assert_eq!(out.recent.len(), DEFAULT_RECENT as usize);
        assert_eq!(out.totals.requests, 40);
    }
}
