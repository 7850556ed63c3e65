//! The media workers of one server: one per core by default, and which one carries a session.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{MediaWorkerConfig, MediaWorkerHandle};
use crate::ids::SessionId;

/// The media workers, one per core by default, each with its own UDP socket (consecutive ports
/// when the port is fixed). A session's participants all go to the one worker its id picks, so
/// its call is mixed and forwarded in one place.
#[derive(Clone, Debug)]
pub struct MediaPool {
    workers: Arc<[MediaWorkerHandle]>,
}

impl MediaPool {
    /// Starts `workers` workers (at least one).
    pub async fn start(config: MediaWorkerConfig, workers: usize) -> std::io::Result<Self> {
        if workers > 1 && config.listen.port() == 0 && config.public.is_some() {
            // Each worker's announced port must be the one it bound; with free ports that is
            // not known in advance.
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "with a media.public_address and more than one media worker, media.listen needs a fixed port",
            ));
        }
        let mut started = Vec::new();
        for i in 0..workers.max(1) {
            let offset = |a: SocketAddr| {
                let mut a = a;
                if a.port() != 0 {
                    let port = u16::try_from(usize::from(a.port()) + i).map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            "media ports run past 65535",
                        )
                    })?;
                    a.set_port(port);
                }
                Ok::<_, std::io::Error>(a)
            };
            let public = match config.public {
                Some(p) if config.listen.port() == 0 => Some(p),
                Some(p) => Some(offset(p)?),
                None => None,
            };
            started.push(
                MediaWorkerHandle::start_numbered(
                    MediaWorkerConfig {
                        listen: offset(config.listen)?,
                        public,
                    },
                    i,
                )
                .await?,
            );
        }
        Ok(Self {
            workers: started.into(),
        })
    }

    /// The worker that carries this session's media.
    pub fn for_session(&self, session: SessionId) -> MediaWorkerHandle {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        session.hash(&mut h);
        self.workers[(h.finish() % self.workers.len() as u64) as usize].clone()
    }

    /// The first worker: where phones wait at the service prompt before their session is
    /// known.
    pub fn first(&self) -> MediaWorkerHandle {
        self.workers[0].clone()
    }

    /// The workers' announced addresses.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.workers.iter().map(|w| w.address).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pool_with_free_ports_cannot_announce_one_public_address() {
        let e = MediaPool::start(
            MediaWorkerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                public: Some("192.0.2.10:50000".parse().unwrap()),
            },
            2,
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn a_pool_takes_consecutive_ports_and_spreads_sessions() {
        let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let pool = MediaPool::start(
            MediaWorkerConfig {
                listen: format!("127.0.0.1:{port}").parse().unwrap(),
                public: Some("192.0.2.10:50000".parse().unwrap()),
            },
            2,
        )
        .await
        .unwrap();
        assert_eq!(
            pool.addresses(),
            [
                "192.0.2.10:50000".parse().unwrap(),
                "192.0.2.10:50001".parse().unwrap()
            ]
        );
        let sessions: Vec<SessionId> = (0..64).map(|_| SessionId::random()).collect();
        let picked: std::collections::BTreeSet<SocketAddr> = sessions
            .iter()
            .map(|s| pool.for_session(*s).address)
            .collect();
        assert_eq!(picked.len(), 2, "both workers carry sessions");
        // A session always goes to the same worker (a restored session finds its call).
        assert_eq!(
            pool.for_session(sessions[0]).address,
            pool.for_session(sessions[0]).address
        );
    }
}
