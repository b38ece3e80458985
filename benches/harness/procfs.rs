//! What /proc says about a process: resident memory, CPU time of its threads, its children, and
//! TCP connections closed on a port.

use std::collections::HashSet;

/// A `kB` field of /proc/<pid>/status, in MB.
pub fn proc_status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

pub fn rss_mb(pid: u32) -> f64 {
    proc_status_mb(pid, "VmRSS:")
}

/// "X MB (anonymous A MB, file-backed F MB)".
pub fn rss_split(pid: u32) -> String {
    format!(
        "{:>5.1} MB (anonymous {:.1} MB, file-backed {:.1} MB)",
        rss_mb(pid),
        proc_status_mb(pid, "RssAnon:"),
        proc_status_mb(pid, "RssFile:")
    )
}

/// CPU time a process's live threads have run, from their schedstat (nanosecond resolution).
pub fn cpu_ns(pid: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// CPU of (server, this process) since `since`, per call, in microseconds.
#[derive(Clone, Copy)]
pub struct CpuMark {
    server: u64,
    client: u64,
}

impl CpuMark {
    pub fn now(server_pid: u32) -> Self {
        Self {
            server: cpu_ns(&server_pid.to_string()),
            client: cpu_ns("self"),
        }
    }
    pub fn per_call_us(self, server_pid: u32, calls: usize) -> (f64, f64) {
        let end = Self::now(server_pid);
        let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1000.0 / calls.max(1) as f64;
        (per(self.server, end.server), per(self.client, end.client))
    }
}

/// TCP connections to or from 127.0.0.1:`port` now in TIME_WAIT, i.e. closed in the last minute
/// (a lower bound of the connections opened: one closed by a reset leaves none).
pub fn closed_conns(port: u16) -> usize {
    let port = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[3] == "06" && (f[1].ends_with(&port) || f[2].ends_with(&port))
        })
        .count()
}

/// Counts TCP connections closed around a run of `calls` calls.
pub struct ConnMark(Option<(u16, usize)>);

impl ConnMark {
    pub fn now(port: Option<u16>) -> Self {
        Self(port.map(|p| (p, closed_conns(p))))
    }
    /// ", N TCP connections per call" for HTTP, nothing for stdio.
    pub fn per_call(&self, calls: usize) -> String {
        self.0.map_or_else(String::new, |(p, before)| {
            let n = closed_conns(p).saturating_sub(before);
            format!(
                ", new TCP conns/call >= {:.2}",
                n as f64 / calls.max(1) as f64
            )
        })
    }
}

/// Direct children of this process.
pub fn children() -> HashSet<u32> {
    let mut out = HashSet::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out
}
