//! Failures only the daemon's log shows. BitRouter 0.11.0 counts a streamed request that failed
//! before its stream began (an upstream 529 or refused connection; OpenClaw always streams)
//! neither in `/v1/metrics` nor in its spend log: only an "unhandled custom rejection" line
//! naming the provider shows it.
//!
//! Policy: [`rejected_provider`] reads one line (pure). I/O: the supervisor's log writer feeds
//! every line it writes to a [`Rejections`] counter, which the control plane drains at each
//! metrics poll, so nothing reads the log file back. Counts are per daemon provider: the line
//! names no model.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The provider a daemon log line says a request failed at, if it is such a line.
pub fn rejected_provider(line: &str) -> Option<&str> {
    let rest = &line[line.find("unhandled custom rejection")?..];
    let rest = &rest[rest.find("BitrouterRejection(")?..];
    let start = rest
        .find("provider: Some(\"")
        .map(|i| i + "provider: Some(\"".len())
        .or_else(|| rest.find("provider: \"").map(|i| i + "provider: \"".len()))?;
    let name = &rest[start..];
    Some(&name[..name.find('"')?])
}

/// Rejections seen since the last [`Rejections::take`], per daemon provider. One writer (the
/// daemon's log pump), one reader (the control plane); both run in the data dir's owner only.
#[derive(Debug, Default)]
pub struct Rejections {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl Rejections {
    /// Counts `line` if it is a rejection.
    pub fn observe(&self, line: &str) {
        if let Some(provider) = rejected_provider(line) {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            *counts.entry(provider.to_string()).or_default() += 1;
        }
    }

    /// The counts since the last call, reset.
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.counts.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_line_names_its_provider() {
        let provider = r#"2026-11-30T09:48:50Z ERROR warp::reject: unhandled custom rejection, returning 500 response: BitrouterRejection(Provider { provider: "anthropic", message: "Overloaded", context: ProviderErrorContext { status_code: Some(529) } })"#;
        assert_eq!(rejected_provider(provider), Some("anthropic"));
        let transport = r#"ERROR warp::reject: unhandled custom rejection, returning 500 response: BitrouterRejection(Transport { provider: Some("google__gem_0"), message: "failed to send" })"#;
        assert_eq!(rejected_provider(transport), Some("google__gem_0"));
        // The trace line of the same failure is not counted twice; other lines are not failures.
        assert_eq!(
            rejected_provider(
                r#"ERROR request{method=POST}: warp::filters::trace: unable to process request (internal error) status=500 error=Some(Rejection(BitrouterRejection(Provider { provider: "anthropic" })))"#
            ),
            None
        );
        assert_eq!(
            rejected_provider("INFO bitrouter::runtime::server: server listening"),
            None
        );
        assert_eq!(
            rejected_provider(
                r#"unhandled custom rejection: BitrouterRejection(Provider { provider: "cut"#
            ),
            None,
            "a line cut before the name's end counts for nobody"
        );
    }

    #[test]
    fn counts_are_per_provider_and_taken_once() {
        let r = Rejections::default();
        let line = |p: &str| {
            format!(
                r#"ERROR warp::reject: unhandled custom rejection, returning 500 response: BitrouterRejection(Provider {{ provider: "{p}", message: "x" }})"#
            )
        };
        r.observe(&line("anthropic"));
        r.observe(&line("anthropic"));
        r.observe(&line("openai"));
        r.observe("INFO served");
        let taken = r.take();
        assert_eq!(taken.get("anthropic"), Some(&2));
        assert_eq!(taken.get("openai"), Some(&1));
        assert_eq!(taken.len(), 2);
        assert!(r.take().is_empty(), "counted once");
    }
}
