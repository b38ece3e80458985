//! This process's own log: `tracing` to stderr (stdout is the MCP channel in stdio mode),
//! filtered by `BITROUTER_MCP_LOG`, in colour only for a person at a terminal.
//!
//! The daemon's log is not here: the supervisor writes it (`supervisor::logs`), colour stripped.

use std::ffi::OsStr;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the process's subscriber. Call once, first thing.
pub fn init() {
    let ansi = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(filter(std::env::var("BITROUTER_MCP_LOG").ok().as_deref()))
        .init();
}

/// Colour only on a terminal: OpenClaw, systemd and `2>file` capture stderr into files where
/// escape codes are noise. A non-empty `NO_COLOR` (no-color.org) turns it off everywhere.
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// `BITROUTER_MCP_LOG` (default `info`). rmcp logs whole responses at debug level, and
/// `bitrouter_keygen`'s response holds a token: rmcp stays at info unless named explicitly. The
/// TLS verifier's own lines stay off unless named.
pub fn filter(spec: Option<&str>) -> EnvFilter {
    let spec = spec.unwrap_or("info");
    let verbose = spec.contains("debug") || spec.contains("trace");
    let spec = if verbose && !spec.contains("rmcp") {
        format!("{spec},rmcp=info")
    } else {
        spec.to_string()
    };
    // The TLS verifier logs an ERROR for every refused certificate, i.e. on every probe of a
    // misconfigured upstream; the control plane reports it once per change of health instead.
    let spec = if spec.contains("rustls_platform_verifier") {
        spec
    } else {
        format!("{spec},rustls_platform_verifier=off")
    };
    EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info,rmcp=info"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(false, None));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn debug_keeps_rmcp_at_info_and_the_verifier_off() {
        let f = filter(Some("debug")).to_string();
        assert!(f.contains("rmcp=info"), "{f}");
        assert!(f.contains("rustls_platform_verifier=off"), "{f}");
        let f = filter(Some("debug,rmcp=trace")).to_string();
        assert!(!f.contains("rmcp=info"), "{f}");
        // A spec that does not parse falls back to info, rmcp included.
        let f = filter(Some("not a filter ===")).to_string();
        assert!(f.contains("rmcp=info") && !f.contains("verifier"), "{f}");
    }
}
