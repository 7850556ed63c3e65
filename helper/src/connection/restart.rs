//! SPEC M5, reboot and rejoin, the helper's side. With the customer's yes: take a single-use
//! rejoin ticket from the server, keep it (readable by this user only), add a one-shot
//! autostart entry that runs `tandem-helper rejoin`, leave the session and ask the system to
//! restart (logind; `TANDEM_HELPER_REBOOT_COMMAND` replaces that, for tests). After the
//! restart `rejoin` removes the entry and the ticket before it uses the ticket, so it runs once.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The command that restarts the computer, instead of logind's (shell words).
pub const REBOOT_COMMAND_ENV: &str = "TANDEM_HELPER_REBOOT_COMMAND";
/// logind, as a desktop user may ask it (polkit decides).
const LOGIND_REBOOT: &[&str] = &[
    "busctl",
    "call",
    "org.freedesktop.login1",
    "/org/freedesktop/login1",
    "org.freedesktop.login1.Manager",
    "Reboot",
    "b",
    "false",
];
const AUTOSTART_NAME: &str = "tandem-helper-rejoin.desktop";

/// What `rejoin` needs after the restart.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Saved {
    pub server: String,
    pub ticket: String,
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| home().join(fallback))
}

/// `$XDG_STATE_HOME/tandem-helper/rejoin.json`.
pub fn ticket_path() -> PathBuf {
    xdg("XDG_STATE_HOME", ".local/state")
        .join("tandem-helper")
        .join("rejoin.json")
}

/// `$XDG_CONFIG_HOME/autostart/tandem-helper-rejoin.desktop`.
pub fn autostart_path() -> PathBuf {
    xdg("XDG_CONFIG_HOME", ".config")
        .join("autostart")
        .join(AUTOSTART_NAME)
}

/// A desktop entry's Exec value: each argument quoted as the specification says.
fn exec_line(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let escaped = a
                .replace('\\', "\\\\\\\\")
                .replace('"', "\\\\\"")
                .replace('`', "\\\\`")
                .replace('$', "\\\\$");
            format!("\"{escaped}\"")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Keeps the ticket and adds the autostart entry that runs `relaunch` (the helper's own
/// command line for `rejoin`).
pub fn arrange(saved: &Saved, relaunch: &[String]) -> std::io::Result<()> {
    let ticket = ticket_path();
    if let Some(dir) = ticket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&ticket)?;
    f.write_all(&serde_json::to_vec(saved).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    let entry = autostart_path();
    if let Some(dir) = entry.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = format!(
        "[Desktop Entry]\nType=Application\nName=Tandem Helper (rejoining the support session)\nExec={}\nTerminal=false\nX-GNOME-Autostart-enabled=true\n",
        exec_line(relaunch)
    );
    std::fs::write(&entry, text)
}

/// Reads the ticket back and removes the autostart entry, whatever is found: the rejoin runs
/// once. The ticket itself stays until the server answered it ([`forget`]): the network may
/// not be up yet so soon after the restart.
pub fn take() -> std::io::Result<Saved> {
    let _ = std::fs::remove_file(autostart_path());
    let read = std::fs::read(ticket_path());
    if read.is_err() {
        forget();
    }
    serde_json::from_slice(&read?).map_err(std::io::Error::other)
}

/// The ticket was answered (taken or refused): it is gone.
pub fn forget() {
    let _ = std::fs::remove_file(ticket_path());
}

/// The command that opens a page in the desktop's browser, instead of `xdg-open`.
pub const OPEN_COMMAND_ENV: &str = "TANDEM_HELPER_OPEN_COMMAND";

/// Opens the customer's page again after the restart (their browser closed with it).
pub fn open_page(url: &str) -> Result<(), String> {
    let program = std::env::var(OPEN_COMMAND_ENV).unwrap_or_else(|_| "xdg-open".to_owned());
    std::process::Command::new(&program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("{program}: {e}"))
}

/// Asks the system to restart.
pub fn reboot() -> Result<(), String> {
    let configured = std::env::var(REBOOT_COMMAND_ENV).ok();
    let words: Vec<String> = match &configured {
        Some(c) => c.split_whitespace().map(str::to_owned).collect(),
        None => LOGIND_REBOOT.iter().map(|s| (*s).to_owned()).collect(),
    };
    let (program, args) = words.split_first().ok_or("no restart command")?;
    match std::process::Command::new(program).args(args).status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("{program} failed ({s})")),
        Err(e) => Err(format!("{program}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exec_line_quotes_each_argument() {
        let line = exec_line(&[
            "/opt/tandem helper/tandem-helper".into(),
            "rejoin".into(),
            "--display".into(),
            ":9".into(),
        ]);
        assert_eq!(
            line,
            "\"/opt/tandem helper/tandem-helper\" \"rejoin\" \"--display\" \":9\""
        );
    }
}
