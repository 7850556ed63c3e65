//! The process's open-file limit (RLIMIT_NOFILE). Every connection, WebSocket, SIP TCP
//! connection, recording, export and database file is one descriptor; many systems start a
//! process with a soft limit of 1,024, which about 1,100 idle connections used to exhaust (and
//! then nothing could be accepted or opened at all). The server raises the soft limit to the
//! hard one at start, and its HTTP connection cap takes at most half of what it got, leaving
//! the rest for everything else.

use std::fmt;

/// The soft and hard limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

impl fmt::Display for FileLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
        write!(f, "{} (hard limit {})", show(self.soft), show(self.hard))
    }
}

/// The limits in force.
pub fn current() -> FileLimit {
    let l = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    FileLimit {
        soft: l.current,
        hard: l.maximum,
    }
}

/// Raises the soft limit to the hard one, where the system allows; answers the limits in
/// force afterwards and, when raising failed, why.
pub fn raise() -> (FileLimit, Option<std::io::Error>) {
    let before = current();
    if before.soft == before.hard {
        return (before, None);
    }
    let wanted = rustix::process::Rlimit {
        current: before.hard,
        maximum: before.hard,
    };
    let failed = rustix::process::setrlimit(rustix::process::Resource::Nofile, wanted)
        .err()
        .map(std::io::Error::from);
    (current(), failed)
}

/// The HTTP connections let in at once: the configured cap, but never more than half the
/// soft limit (at least one).
pub fn connection_cap(configured: usize, limit: FileLimit) -> usize {
    match limit.soft {
        Some(soft) => configured.min(usize::try_from(soft / 2).unwrap_or(usize::MAX).max(1)),
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_half_the_descriptors_for_the_rest() {
        let l = |soft| FileLimit {
            soft,
            hard: Some(1 << 20),
        };
        assert_eq!(connection_cap(4096, l(Some(1024))), 512);
        assert_eq!(connection_cap(4096, l(Some(1 << 20))), 4096);
        assert_eq!(connection_cap(4096, l(None)), 4096);
        assert_eq!(connection_cap(4096, l(Some(1))), 1);
    }

    #[test]
    fn raising_ends_at_the_hard_limit() {
        let (after, failed) = raise();
        if failed.is_none() {
            assert_eq!(after.soft, after.hard);
        }
        assert_eq!(after, current());
    }
}
