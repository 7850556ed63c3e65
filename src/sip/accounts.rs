//! The accounts that can authenticate over SIP and where their softphones are registered,
//! shared between the HTTP API (which sets SIP passwords and shows registrations) and the
//! SIP endpoint (which checks digests and keeps the bindings). Each side publishes its part
//! through a watch channel, so neither waits on the other.

use std::sync::Arc;

use tokio::sync::watch;

use tandem_actors::session_registry::SessionHandle;
use tokio::sync::oneshot;

use super::digest::{Algorithm, SipCredential};
use super::endpoint::DialError;
use super::registrar::{AccountTable, Binding, RegistrationTable, SipAccount};
use crate::store::{AccountRole, Store, StoreError};

/// A CSR's request to have their softphone rung into a session.
pub struct DialRequest {
    pub account: Box<SipAccount>,
    pub session: SessionHandle,
    /// The name the phone joined under, or why it did not.
    pub reply: oneshot::Sender<Result<String, DialFailure>>,
}

/// Why a softphone was not rung into the session, or did not join it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DialFailure {
    #[error("SIP is turned off on this server")]
    SipDisabled,
    /// The endpoint would not place the call.
    #[error(transparent)]
    NotPlaced(#[from] DialError),
    #[error("the softphone refused the call ({0})")]
    Declined(u16),
    #[error("nobody answered the softphone")]
    NoAnswer,
    #[error("the softphone did not respond")]
    Unreachable,
    #[error("the softphone answered but could not join the session")]
    JoinFailed,
}

struct Inner {
    realm: String,
    /// Where phones reach the endpoint, once it listens.
    server: std::sync::OnceLock<std::net::SocketAddr>,
    /// Asks the endpoint to ring a softphone, once it runs.
    dialer: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<DialRequest>>,
    algorithms: Vec<Algorithm>,
    accounts: watch::Sender<Arc<AccountTable>>,
    /// Held from reading the store to publishing what was read, so two reloads at once cannot
    /// publish an older read after a newer one (a removed password would stay valid).
    reloading: tokio::sync::Mutex<()>,
    registrations: watch::Sender<Arc<RegistrationTable>>,
}

#[derive(Clone)]
pub struct SipAccounts(Arc<Inner>);

impl SipAccounts {
    pub fn new(realm: &str, algorithms: Vec<Algorithm>) -> Self {
        Self(Arc::new(Inner {
            realm: realm.to_string(),
            server: std::sync::OnceLock::new(),
            dialer: std::sync::OnceLock::new(),
            algorithms,
            accounts: watch::Sender::new(Arc::default()),
            reloading: tokio::sync::Mutex::new(()),
            registrations: watch::Sender::new(Arc::default()),
        }))
    }

    pub fn realm(&self) -> &str {
        &self.0.realm
    }

    /// Where phones reach the SIP endpoint (`None` when SIP is off).
    pub fn server(&self) -> Option<std::net::SocketAddr> {
        self.0.server.get().copied()
    }

    pub fn set_server(&self, addr: std::net::SocketAddr) {
        let _ = self.0.server.set(addr);
    }

    pub fn algorithms(&self) -> &[Algorithm] {
        &self.0.algorithms
    }

    /// Reads the credentials again from the store (after one was set or removed). Credentials
    /// made for another realm (the realm was reconfigured) cannot be checked and are left out.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let _one_at_a_time = self.0.reloading.lock().await;
        let mut table = AccountTable::new();
        for (user, row) in store.sip_credentials().await? {
            if !matches!(user.role, AccountRole::Csr | AccountRole::Agent) {
                continue;
            }
            if row.realm != self.0.realm {
                tracing::warn!(
                    user = %user.username,
                    realm = %row.realm,
                    "a SIP password was set for another realm; set it again"
                );
                continue;
            }
            table.insert(
                user.username.clone(),
                SipAccount {
                    credential: SipCredential {
                        username: user.username.clone(),
                        realm: row.realm,
                        ha1_md5: row.ha1_md5,
                        ha1_sha256: row.ha1_sha256,
                    },
                    id: user.id,
                    display_name: user.display_name,
                    email: user.email,
                    is_agent: user.role == AccountRole::Agent,
                },
            );
        }
        self.0.accounts.send_replace(Arc::new(table));
        Ok(())
    }

    pub fn set_dialer(&self, dialer: tokio::sync::mpsc::UnboundedSender<DialRequest>) {
        let _ = self.0.dialer.set(dialer);
    }

    /// The account with this username, if it has a SIP password.
    pub fn account(&self, username: &str) -> Option<SipAccount> {
        self.0.accounts.borrow().get(username).cloned()
    }

    /// Rings `account`'s registered softphone into the session; answers the name it joined
    /// under once it has, or why it did not.
    pub async fn dial(
        &self,
        account: SipAccount,
        session: SessionHandle,
    ) -> Result<String, DialFailure> {
        let dialer = self.0.dialer.get().ok_or(DialFailure::SipDisabled)?;
        let (reply, answer) = oneshot::channel();
        dialer
            .send(DialRequest {
                account: Box::new(account),
                session,
                reply,
            })
            .map_err(|_| DialFailure::SipDisabled)?;
        answer.await.unwrap_or(Err(DialFailure::JoinFailed))
    }

    pub fn accounts(&self) -> watch::Receiver<Arc<AccountTable>> {
        self.0.accounts.subscribe()
    }

    pub fn has_credential(&self, username: &str) -> bool {
        self.0.accounts.borrow().contains_key(username)
    }

    pub fn publish_registrations(&self, table: RegistrationTable) {
        self.0.registrations.send_replace(Arc::new(table));
    }

    /// Where `username`'s softphones are registered now.
    pub fn registrations_of(&self, username: &str) -> Vec<Binding> {
        self.0
            .registrations
            .borrow()
            .get(username)
            .cloned()
            .unwrap_or_default()
    }
}
