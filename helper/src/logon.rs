//! SPEC M4, log in as another user: `tandem-helper-logon`, the small root service that checks
//! another user's password with PAM and starts their graphical session on a display of its own,
//! and what the helper says to it. Checking someone else's password and starting their session
//! need root (pam_unix's `unix_chkpwd` checks only the caller's own), and the helper runs as the
//! customer, so this part is apart: no window, no network, one Unix socket whose caller is known
//! by `SO_PEERCRED`. The connection is the session: when it closes the session ends.
//! docs/plans/m4_login_as_user.md says why it is built this way.

pub mod admission;
#[cfg(unix)]
pub mod client;
#[cfg(all(feature = "logon", target_os = "linux"))]
pub mod listener;
pub mod proto;
#[cfg(all(feature = "logon", target_os = "linux"))]
pub mod worker;
pub mod xauth;
