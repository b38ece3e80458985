//! The `bitrouter-mcp` binary: parses the command line and wires the library together.

mod cli;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use bitrouter_mcp::home::Home;
use bitrouter_mcp::lifecycle::{self, ServeOptions};
use bitrouter_mcp::routing::PluginConfig;
use bitrouter_mcp::routing::login;
use bitrouter_mcp::server::dashboard;
use bitrouter_mcp::supervisor::{SupervisorOptions, install};
use cli::{AuthCommand, Cli, Command, DaemonCommand, LoginArgs};

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    bitrouter_mcp::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let home = match &cli.data_dir {
        Some(dir) => Home::new(dir),
        None => Home::new(
            Home::default_data_dir()
                .ok_or("cannot find the user's data directory: pass --data-dir")?,
        ),
    };
    let config = match &cli.config {
        Some(path) => PluginConfig::load(path).map_err(|e| e.to_string())?,
        None => PluginConfig::default(),
    };
    match cli.command {
        Command::Serve(args) => {
            let options = ServeOptions {
                http: args.http,
                auth_token: args.auth_token,
                exit_with_parent: args.exit_with_parent,
                supervisor: SupervisorOptions {
                    binary: args.bitrouter,
                    auto_install: std::env::var("BITROUTER_MCP_AUTO_INSTALL").as_deref() != Ok("0"),
                    ..Default::default()
                },
            };
            lifecycle::serve(home, config, cli.config, options)
                .await
                .map_err(|e| e.to_string())
        }
        Command::Auth {
            command: AuthCommand::Login(args),
        } => auth_login(&home, &config, args),
        Command::Dashboard(args) => open_dashboard(&home, args.no_open).await,
        Command::Daemon {
            command: DaemonCommand::Install,
        } => {
            eprintln!(
                "installing bitrouter {} (about 5 minutes on 2 cores)...",
                bitrouter_mcp::PINNED_BITROUTER_VERSION
            );
            let started = std::time::Instant::now();
            let path = install::install(|line| {
                // One progress line per cargo step, with the elapsed time.
                eprintln!("[{:>4}s] {line}", started.elapsed().as_secs());
            })
            .await
            .map_err(|e| e.to_string())?;
            eprintln!("bitrouter installed at {}", path.display());
            Ok(())
        }
    }
}

/// glibc gives each thread that allocates its own arena and keeps what sessions freed in them;
/// two arenas hold RSS flat under many HTTP sessions at no measurable speed cost here.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// `auth login`: reads the keys from where the flags say (the terminal is read here only) and
/// hands them to the library to check and save.
fn auth_login(home: &Home, config: &PluginConfig, args: LoginArgs) -> Result<(), String> {
    use std::io::{IsTerminal, Read};
    let keys = if args.stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading stdin: {e}"))?;
        login::Keys::from_lines(&text)
    } else if !args.set.is_empty() {
        login::Keys::from_pairs(&args.set)
    } else if std::io::stdin().is_terminal() {
        eprintln!("Enter provider API keys (input is hidden; press Enter to skip one).");
        let mut answers = Vec::new();
        for var in login::prompts(config) {
            let value = rpassword::prompt_password(format!("{var}: "))
                .map_err(|e| format!("reading {var}: {e}"))?;
            answers.push((var, value));
        }
        login::Keys::from_answers(answers)
    } else {
        return Err("no terminal to prompt on: pass keys with --stdin (NAME=value lines) or --set NAME=value".into());
    }
    .map_err(|e| e.to_string())?;
    if keys.is_empty() {
        eprintln!("nothing to save");
        return Ok(());
    }
    let path = login::save(home, &keys).map_err(|e| e.to_string())?;
    eprintln!("saved {} to {}", keys.names().join(", "), path.display());
    Ok(())
}

/// `dashboard`: prints the page's URL of the HTTP server running on this data dir and opens it
/// in a browser where one can be opened.
async fn open_dashboard(home: &Home, no_open: bool) -> Result<(), String> {
    let none = || {
        format!(
            "no HTTP server is running on {}: start one with `bitrouter-mcp serve --http` (stdio \
             servers have no page)",
            home.data_dir().display()
        )
    };
    let url = dashboard::running_url(home).await.ok_or_else(none)?;
    writeln!(std::io::stdout(), "{url}").map_err(|e| format!("writing stdout: {e}"))?;
    if !no_open {
        open_in_browser(&url);
    }
    Ok(())
}

/// Best effort: `open` on macOS, `xdg-open` elsewhere when a display exists; silent otherwise.
fn open_in_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        "xdg-open"
    } else {
        return;
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = spawned {
        // Openers return at once; reap it so no zombie is left.
        std::thread::spawn(move || child.wait());
    }
}
