//! Starting and stopping the server: storage, the supervision tree, the HTTP listener.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::ActorRef;
use tandem_actors::media_worker::{MediaPool, MediaWorkerConfig};
use tandem_actors::participant::rules::ParticipantConfig;
use tandem_actors::queue_registry::QueueRegistryMsg;
use tandem_actors::root::{self, Directory, RootArgs, RootMsg};
use tandem_actors::session::rules::SessionRules;
use tandem_actors::session::unix_now;
use tandem_actors::session_registry::SessionRegistryArgs;
use tandem_actors::supervision::RestartPolicy;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::Signer;
use crate::config::Config;
use crate::exporter::{self, Exports};
use crate::hashing::PasswordHashing;
use crate::http::client_address::TrustedProxies;
use crate::http::{self, AppState, Inner};
use crate::listener::{self, Limits};
use crate::mail::Mailer;
use crate::recordings::RecordingStore;
use crate::store::{Store, StoreError};
use crate::throttle::Throttle;
use crate::throttle::session_numbers::SharedNumbers;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("signing key: {0}")]
    Key(#[from] crate::auth::AuthError),
    #[error("mail settings: {0}")]
    Mail(#[from] crate::mail::MailError),
    #[error("actor system: {0}")]
    Actors(String),
    #[error("published files folder {path}: {source}")]
    Files {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("media socket on {addr}: {source}")]
    Media {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("SIP endpoint on {addr}: {source}")]
    Sip {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub struct Server {
    pub addr: SocketAddr,
    /// The media workers' announced UDP addresses.
    pub media_addresses: Vec<SocketAddr>,
    pub media: MediaPool,
    /// The SIP endpoint, when enabled.
    pub sip: Option<crate::sip::SipServer>,
    pub directory: Directory,
    pub store: Store,
    pub signer: Signer,
    root: ActorRef<RootMsg>,
    /// The MP4 exporter: woken, asked how far exports are, stopped with the server.
    pub exports: Exports,
    shutdown: oneshot::Sender<()>,
    serving: JoinHandle<std::io::Result<()>>,
}

/// Sessions the journal shows live belonged to a server that stopped; they are ended as
/// interrupted, so nobody waits in them and reports show how they ended.
async fn close_interrupted(store: &Store) -> Result<usize, StoreError> {
    let unfinished = store.unfinished_sessions().await?;
    for init in &unfinished {
        let records = store.records(init.id).await?;
        let mut rules = SessionRules::restore(init.clone(), &records);
        let end = rules.interrupt(unix_now());
        tandem_actors::ports::Journal::append(store, init, &end)
            .await
            .map_err(|e| StoreError::Corrupt(e.0))?;
    }
    Ok(unfinished.len())
}

pub async fn start(config: Config) -> Result<Server, StartError> {
    let metrics = crate::metrics::handle();
    let store = Store::open(&config.storage.database).await?;
    let exports = Exports::default();
    let recordings = Arc::new(RecordingStore::new(
        store.clone(),
        config.recording.dir.clone(),
        exports.clone(),
    ));
    // Closed first, so the exporter finds what a killed server left.
    recordings.recover().await?;
    exporter::start(store.clone(), &config.recording, &exports);
    let signer = Signer::from_key_file(&config.auth.secret_file)?;
    let signed_out = crate::signed_out::SignedOut::from_stored(
        store.signed_out(crate::auth::unix_secs()).await?,
    );
    let interrupted = close_interrupted(&store).await?;
    if interrupted > 0 {
        tracing::warn!(interrupted, "ended sessions left live by the previous run");
    }
    let file_batches = crate::file_batches::FileBatches::new(&config.files.dir)
        .map(Arc::new)
        .map_err(|source| StartError::Files {
            path: config.files.dir.clone(),
            source,
        })?;
    let shared_files = crate::shared_files::SharedFiles::with_batches(
        &config.files.dir,
        Some(file_batches.clone()),
    );
    shared_files.sweep().map_err(|source| StartError::Files {
        path: config.files.dir.clone(),
        source,
    })?;
    let participant_config = ParticipantConfig {
        reconnect_grace: config.reconnect_grace(),
        commands_per_second: config.sessions.commands_per_second,
        burst: config.sessions.command_burst,
        restart_hold: std::time::Duration::from_secs(config.helper.rejoin_ttl_secs),
    };
    let media = MediaPool::start(
        MediaWorkerConfig {
            listen: config.media.listen,
            public: config.media.public().expect("validated at load"),
        },
        config.media.worker_count(),
    )
    .await
    .map_err(|source| StartError::Media {
        addr: config.media.listen,
        source,
    })?;
    let media_addresses = media.addresses();
    let (root, directory) = root::start(RootArgs {
        sessions: SessionRegistryArgs {
            journal: Arc::new(store.clone()),
            accounts: Arc::new(store.clone()),
            participant_config,
            restart_policy: RestartPolicy::default(),
            queues: None,
            media: Some(media.clone()),
            recordings: Some(recordings.clone()),
            files: Some(shared_files.clone()),
        },
    })
    .await
    .map_err(|e| StartError::Actors(e.to_string()))?;
    for q in store.queues().await? {
        directory
            .queues()
            .cast(QueueRegistryMsg::Upsert {
                id: q.id,
                name: q.name,
                agents: q.agents,
            })
            .map_err(|e| StartError::Actors(e.to_string()))?;
    }
    let sip_accounts = crate::sip::accounts::SipAccounts::new(
        &config.sip.realm_for(&config.server.public_url),
        config.sip.algorithms().expect("validated at load"),
    );
    sip_accounts.reload(&store).await?;
    // One budget of wrong session numbers for the API and the phones.
    let session_numbers = SharedNumbers::new(
        config.sessions.wrong_numbers_per_address,
        config.sessions.wrong_numbers_total,
    );
    let sip = if config.sip.enabled {
        Some(
            crate::sip::server::start(
                &config.sip,
                sip_accounts.clone(),
                directory.clone(),
                media.clone(),
                session_numbers.clone(),
            )
            .await
            .map_err(|source| StartError::Sip {
                addr: config.sip.listen,
                source,
            })?,
        )
    } else {
        None
    };
    let mailer = if config.mail.enabled {
        Some(Mailer::new(&config.mail)?)
    } else {
        None
    };
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: listen,
        source,
    })?;
    let hashing = PasswordHashing::new(
        config.auth.hashing_threads(),
        config.auth.max_waiting_hashes,
    );
    let mail_limits = crate::mail::MailLimits::new(&config.mail);
    let trusted_proxies = TrustedProxies::new(
        config.server.trusted_proxies().expect("validated at load"),
        config
            .server
            .client_address_header()
            .expect("validated at load"),
    );
    let state = AppState(Arc::new(Inner {
        helper: http::helper::Helper::new(&config.helper),
        trusted_proxies,
        revocations: crate::auth::Revocations::default(),
        mail_limits,
        upload_room: Default::default(),
        shared_files: shared_files.clone(),
        file_batches,
        feeds: Default::default(),
        signed_out,
        config,
        store: store.clone(),
        signer: signer.clone(),
        directory: directory.clone(),
        mailer,
        exports: exports.clone(),
        sip_accounts,
        metrics,
        hashing,
        login_throttle: Mutex::new(Throttle::new(
            http::accounts::LOGIN_FAILURES,
            http::accounts::LOGIN_WINDOW,
            http::accounts::LOGIN_KEYS,
        )),
        // Only counted (slowdown), never checked: the most failures it must remember is the
        // count past which the slowdown no longer grows.
        account_failures: Mutex::new(Throttle::new(
            64,
            http::accounts::LOGIN_WINDOW,
            http::accounts::LOGIN_KEYS,
        )),
        session_numbers,
    }));
    let limits = Limits::new(&state.config.server, crate::open_files::current());
    let app = http::router(state);
    let (shutdown, signal) = oneshot::channel();
    let serving = tokio::spawn(listener::serve(listener, app, limits, async {
        let _ = signal.await;
    }));
    tracing::info!(
        %addr,
        max_connections = limits.max_connections,
        per_address = limits.max_connections_per_address,
        "tandem listening"
    );
    Ok(Server {
        addr,
        media_addresses,
        media,
        sip,
        directory,
        store,
        signer,
        root,
        exports,
        shutdown,
        serving,
    })
}

impl Server {
    /// Stops accepting, lets open requests finish, and stops the actor tree. Sessions still live
    /// are ended as interrupted on the next start.
    pub async fn stop(self) {
        if let Some(sip) = &self.sip {
            sip.stop();
        }
        let _ = self.shutdown.send(());
        // Exports run on blocking threads, which the runtime would wait for at exit.
        self.exports.stop().await;
        // WebSockets do not end on their own; do not wait for them forever.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.serving).await;
        let _ = self
            .root
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(5)))
            .await;
    }

    /// Runs until ctrl-c (SIGINT) or SIGTERM (what `systemctl stop` and `docker stop` send).
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => {
                r?;
                tracing::info!("shutting down (interrupt)");
            }
            _ = term.recv() => tracing::info!("shutting down (terminate)"),
        }
        self.stop().await;
        Ok(())
    }
}
