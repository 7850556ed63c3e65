//! `tandem-helper`: the native program on the customer's computer (see docs/helper.md).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tandem_helper::connection::pairing::Credential;
use tandem_helper::connection::{self, JoinError, Platform, desktop, restart, share, terminal};
use tandem_helper::platform::Capture;
use tokio::sync::mpsc::unbounded_channel;

#[derive(Parser)]
#[command(
    name = "tandem-helper",
    version,
    about = "Tandem Helper: shares this computer's screen with a Tandem support session"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a command: the support server to join (without it, typed in the window too),
    /// the code typed in the window.
    #[arg(long)]
    server: Option<String>,
    /// The X display (default: $DISPLAY).
    #[arg(long)]
    display: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Lists the monitors and the application windows that could be shown.
    Screens {
        /// The X display (default: $DISPLAY).
        #[arg(long)]
        display: Option<String>,
    },
    /// Prints, as JSON, the system information the helper sends when a CSR reads it (SPEC M1):
    /// what leaves this computer, to see before allowing it.
    SystemInfo {
        /// The X display (default: $DISPLAY).
        #[arg(long)]
        display: Option<String>,
    },
    /// Joins a support session as this computer, with the pairing code the customer's page shows.
    /// Questions are asked in the helper's window (or on this terminal with --terminal).
    Join {
        /// The support server's address, such as https://support.example.com.
        server: String,
        /// The 8-digit pairing code (spaces and dashes allowed); without it, typed in the window.
        code: Option<String>,
        /// The X display (default: $DISPLAY).
        #[arg(long)]
        display: Option<String>,
        /// Answers on this terminal instead of the window (headless computers, tests).
        #[arg(long)]
        terminal: bool,
    },
    /// After the computer restarted for the support session (SPEC M5): rejoins it with the
    /// ticket kept then, once (run by the autostart entry the helper added, which it removes).
    Rejoin {
        /// The X display (default: $DISPLAY).
        #[arg(long)]
        display: Option<String>,
        /// Answers on this terminal instead of the window.
        #[arg(long)]
        terminal: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Opened with no command (a double-click on the downloaded file): the window, which asks for
    // the code, and for the server's address too when --server does not name it.
    let Some(command) = cli.command else {
        return joined(join(cli.server.as_deref(), None, cli.display, false));
    };
    match command {
        Command::Screens { display } => match screens(display.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tandem-helper: {e}");
                ExitCode::FAILURE
            }
        },
        Command::SystemInfo { display } => {
            let monitors = monitors_of(display);
            let info = tandem_helper::system_info::gather(&monitors());
            match serde_json::to_string_pretty(&info) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tandem-helper: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Join {
            server,
            code,
            display,
            terminal,
        } => joined(join(
            Some(&server),
            code.map(Credential::Code),
            display,
            terminal,
        )),
        Command::Rejoin { display, terminal } => match restart::take() {
            Ok(saved) => joined(join(
                Some(&saved.server),
                Some(Credential::Rejoin(saved.ticket)),
                display,
                terminal,
            )),
            Err(e) => {
                eprintln!("tandem-helper: no rejoin is waiting: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `join`'s outcome, said on the terminal: why it ended, or what went wrong.
fn joined(result: Result<String, JoinError>) -> ExitCode {
    match result {
        Ok(reason) => {
            println!("left: {reason}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tandem-helper: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(target_os = "linux")]
fn platform(display: Option<String>) -> Result<Platform, JoinError> {
    use tandem_helper::platform::x11::Display;
    let shared = Display::open(display.as_deref())?;
    let input = shared.input()?;
    let clipboard = shared.clipboard(connection::clipboard::limits())?;
    // The share thread opens its own connection: capture and input never wait on each other.
    let capture = Display::open(display.as_deref())?.capture()?;
    let monitors = monitors_of(display.clone());
    Ok(Platform {
        monitors,
        input: Box::new(input),
        clipboard: Some(Box::new(clipboard)),
        start_share: Box::new(move |out| share::spawn(capture, out)),
        relaunch: Vec::new(),
        logon: Some(connection::LogonPlatform {
            socket: tandem_helper::logon::client::socket(),
            open: Box::new(|started, out, origin| {
                let other = Display::open_with_cookie(&started.display, &started.cookie)
                    .map_err(|e| e.to_string())?;
                let input = other.input().map_err(|e| e.to_string())?;
                let capture = other.capture().map_err(|e| e.to_string())?;
                let share = share::spawn_at(capture, out, origin).map_err(|e| e.to_string())?;
                Ok((share, Box::new(input) as Box<_>))
            }),
        }),
    })
}

/// The monitors of `display` as the display server has them when called (none without one).
#[cfg(target_os = "linux")]
fn monitors_of(
    display: Option<String>,
) -> std::sync::Arc<dyn Fn() -> Vec<tandem_helper::platform::Monitor> + Send + Sync> {
    use tandem_helper::platform::x11::Display;
    std::sync::Arc::new(move || {
        Display::open(display.as_deref())
            .and_then(|d| d.capture())
            .and_then(|mut c| tandem_helper::platform::Capture::monitors(&mut c))
            .unwrap_or_default()
    })
}

#[cfg(not(target_os = "linux"))]
fn monitors_of(
    _display: Option<String>,
) -> std::sync::Arc<dyn Fn() -> Vec<tandem_helper::platform::Monitor> + Send + Sync> {
    std::sync::Arc::new(Vec::new)
}

#[cfg(not(target_os = "linux"))]
fn platform(_display: Option<String>) -> Result<Platform, JoinError> {
    Err(JoinError::Connection(
        "no screen backend for this platform yet".into(),
    ))
}

/// `join`: the window (or the terminal) as the customer's side.
fn join(
    server: Option<&str>,
    code: Option<Credential>,
    display: Option<String>,
    terminal: bool,
) -> Result<String, JoinError> {
    // M5: how the autostart entry starts this helper again after a restart.
    let mut relaunch = vec![
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "tandem-helper".into()),
        "rejoin".into(),
    ];
    if terminal {
        relaunch.push("--terminal".into());
    }
    if let Some(d) = &display {
        relaunch.extend(["--display".into(), d.clone()]);
    }
    let mut platform = platform(display)?;
    platform.relaunch = relaunch;
    if !terminal {
        return desktop::run(server, code, platform);
    }
    let (Some(server), Some(code)) = (server, code) else {
        return Err(JoinError::BadServer(
            "with --terminal, give the server and the pairing code: join <server> <code>".into(),
        ));
    };
    let code = &code;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| JoinError::Connection(e.to_string()))?;
    let (events_tx, events_rx) = unbounded_channel();
    let (updates_tx, updates_rx) = unbounded_channel();
    let (lines_tx, lines_rx) = unbounded_channel();
    terminal::read_stdin(lines_tx);
    runtime.block_on(async move {
        let terminal = tokio::spawn(terminal::run(updates_rx, lines_rx, events_tx));
        let result = connection::run(server, code, platform, events_rx, updates_tx).await;
        terminal.abort();
        result
    })
}

#[cfg(target_os = "linux")]
fn screens(display: Option<&str>) -> Result<(), tandem_helper::platform::PlatformError> {
    let display = tandem_helper::platform::x11::Display::open(display)?;
    let mut capture = display.capture()?;
    println!("monitors:");
    for m in capture.monitors()? {
        let r = m.rect;
        let primary = if m.primary { " primary" } else { "" };
        println!(
            "  {} {:?} {}x{}+{}+{}{primary}",
            m.id, m.name, r.width, r.height, r.x, r.y
        );
    }
    println!("windows:");
    for w in capture.windows()? {
        let r = w.rect;
        let pid = w.pid.map_or_else(|| "-".to_owned(), |p| p.to_string());
        println!(
            "  0x{:x} {:?} pid {pid} {}x{}+{}+{}",
            w.id, w.title, r.width, r.height, r.x, r.y
        );
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn screens(_display: Option<&str>) -> Result<(), String> {
    Err("no screen backend for this platform yet".into())
}
