//! `tandem-helper`: the native program on the customer's computer (see docs/helper.md).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tandem_helper::platform::Capture;

#[derive(Parser)]
#[command(
    name = "tandem-helper",
    version,
    about = "Tandem Helper: shares this computer's screen with a Tandem support session"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lists the monitors and the application windows that could be shown.
    Screens {
        /// The X display (default: $DISPLAY).
        #[arg(long)]
        display: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Screens { display } => match screens(display.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tandem-helper: {e}");
                ExitCode::FAILURE
            }
        },
    }
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
