//! A network namespace of the load test's own, for `--media --janus`: Janus's ICE gathers no
//! candidate on a loopback address, so its peers need another local address. The process
//! enters a new namespace (it must be root) and makes one there: a veth pair, one end with
//! [`ADDRESS`]. Everything the load test starts (Tandem, Janus) runs inside it; its traffic
//! stays on this machine and the namespace goes away with the last of them.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{Context, bail};

/// The device Janus may gather candidates on.
pub const DEVICE: &str = "tandem0";
/// Its address, where the load test's VideoRoom clients bind.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

/// Moves this process into a new network namespace with loopback and [`DEVICE`] up. Call it
/// before any thread starts: only the calling thread changes namespace.
pub fn enter() -> anyhow::Result<()> {
    // SAFETY: unshare(2) takes only flags; it changes this thread's namespace, which the
    // caller does while it is the only thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        bail!(
            "could not make a network namespace for Janus's VideoRoom (run as root): {}",
            std::io::Error::last_os_error()
        );
    }
    let peer = format!("{DEVICE}p");
    let address = format!("{ADDRESS}/24");
    for args in [
        vec!["link", "set", "lo", "up"],
        vec!["link", "add", DEVICE, "type", "veth", "peer", "name", &peer],
        vec!["addr", "add", &address, "dev", DEVICE],
        vec!["link", "set", DEVICE, "up"],
        vec!["link", "set", &peer, "up"],
    ] {
        let status = Command::new("ip")
            .args(&args)
            .status()
            .context("running ip (apt install iproute2)")?;
        if !status.success() {
            bail!("ip {} failed: {status}", args.join(" "));
        }
    }
    Ok(())
}
