//! One daemon process: spawning it tied to our life, stopping it politely then firmly, the pid
//! file that lets a later server find it, and the port check before spawning.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::logs::RotatingLog;
use crate::home::Home;

/// A running daemon and the tasks copying its output into the log.
pub struct Daemon {
    pub child: Child,
    pumps: Vec<tokio::task::JoinHandle<()>>,
}

impl Daemon {
    /// Waits (briefly) until the daemon's last output lines are in the log, so what it said
    /// before dying comes before our note that it died.
    pub async fn drain_output(&mut self) {
        for pump in self.pumps.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
        }
    }
}

/// Spawns `bitrouter --home-dir <home> serve` with its output pumped into `log`. `owner_lock`,
/// the data dir's ownership lock, is inherited by the daemon (Linux): the lock is then released
/// only once both the owner and its daemon are gone.
pub fn spawn(
    binary: &Path,
    home: &Home,
    log: &Arc<Mutex<RotatingLog>>,
    owner_lock: Option<std::os::fd::RawFd>,
) -> std::io::Result<Daemon> {
    let mut cmd = Command::new(binary);
    cmd.arg("--home-dir")
        .arg(home.bitrouter_home())
        .arg("serve")
        .current_dir(home.bitrouter_home())
        // The daemon logs every request (our /v1/metrics polls included) and every SQL statement
        // at info; keep its log for what matters. BITROUTER_LOG overrides.
        .env(
            "RUST_LOG",
            std::env::var("BITROUTER_LOG")
                .unwrap_or_else(|_| "info,warp::filters::trace=warn,sqlx=warn".into()),
        )
        // The daemon colours its log even into a pipe but honours NO_COLOR (verified on 0.11.0);
        // the log writer still strips colour from a daemon that does not.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // The daemon must not outlive this server, even if we are SIGKILLed. (Linux only;
            // elsewhere only an orderly shutdown stops it.)
            #[cfg(target_os = "linux")]
            {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Our parent may already be gone between fork and prctl.
                if libc::getppid() == 1 {
                    return Err(std::io::Error::other("parent exited"));
                }
                // Keep the ownership lock's descriptor across exec (only in this child).
                if let Some(fd) = owner_lock
                    && libc::fcntl(fd, libc::F_SETFD, 0) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            #[cfg(not(target_os = "linux"))]
            let _ = owner_lock;
            // Own process group: a terminal's Ctrl-C reaches us, and we stop the daemon in order.
            libc::setpgid(0, 0);
            // Everything the daemon creates (its database, logs) is private.
            libc::umask(0o077);
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(out, log.clone())));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(err, log.clone())));
    }
    Ok(Daemon { child, pumps })
}

async fn pump(stream: impl AsyncRead + Unpin, log: Arc<Mutex<RotatingLog>>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(mut log) = log.lock() {
            let _ = log.write_line(&line);
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// SIGTERM, then SIGKILL after `grace`. Returns how it exited.
pub async fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Some(pid) = child.id() {
        signal(pid, libc::SIGTERM);
        if let Ok(Ok(status)) = tokio::time::timeout(grace, child.wait()).await {
            return Some(status);
        }
    }
    let _ = child.start_kill();
    child.wait().await.ok()
}

/// SIGKILL at once (a hung or unsafe daemon). Returns how it exited.
pub async fn kill(child: &mut Child) -> Option<ExitStatus> {
    let _ = child.start_kill();
    child.wait().await.ok()
}

/// Human-readable exit: `exit code 1` or `killed by signal 9`.
pub fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// Whether something already listens on `addr` (we cannot bind it).
pub fn port_in_use(addr: &str) -> bool {
    matches!(
        std::net::TcpListener::bind(addr),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse
    )
}

/// Records the daemon we started: pid and the home it serves.
pub fn write_pid_file(home: &Home, pid: u32) {
    let text = format!("{pid}\n{}\n", home.bitrouter_home().display());
    let _ = crate::fsutil::write_private(&home.pid_file(), text.as_bytes());
}

pub fn remove_pid_file(home: &Home) {
    let _ = std::fs::remove_file(home.pid_file());
}

/// A daemon an earlier server left running on this home (crashed or killed before it could stop
/// it): the pid from our pid file, if that process still is `bitrouter … serve` on this home.
pub fn leftover_daemon(home: &Home) -> Option<u32> {
    let text = std::fs::read_to_string(home.pid_file()).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let home_arg = home.bitrouter_home().display().to_string();
    let ours = args.first().is_some_and(|a| a.ends_with("bitrouter"))
        && args.contains(&home_arg)
        && args.iter().any(|a| a == "serve");
    ours.then_some(pid)
}

/// Stops a leftover daemon of this home: SIGTERM, then SIGKILL after `grace`.
pub async fn stop_leftover(pid: u32, grace: Duration) {
    signal(pid, libc::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    while signal(pid, 0) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if signal(pid, 0) {
        signal(pid, libc::SIGKILL);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
