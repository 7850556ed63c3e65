//! Support accounts (SPEC A1): users with their roles and argon2 password hashes, and the SIP
//! digest credentials of CSRs' and agents' softphones (SPEC V5), stored only as HA1 hashes.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use tandem_actors::ids::AccountId;
use tandem_actors::ports::JournalError;

use tandem_actors::protocol::UnixMillis;

use super::{Store, StoreError, id_of};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountRole {
    Admin,
    Csr,
    Agent,
}

impl AccountRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Csr => "csr",
            Self::Agent => "agent",
        }
    }
}

impl FromStr for AccountRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Self::Admin),
            "csr" => Ok(Self::Csr),
            "agent" => Ok(Self::Agent),
            other => Err(format!("unknown role {other:?} (admin, csr or agent)")),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: AccountId,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub role: AccountRole,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: UnixMillis,
    /// A disabled account cannot sign in, and none of its tokens or SIP credentials work.
    pub disabled: bool,
    /// Tokens signed for an older generation are refused: bumping it signs out everywhere.
    #[serde(skip)]
    pub token_generation: u32,
}

/// Why an account could not be disabled.
#[derive(Debug, PartialEq, Eq)]
pub enum DisableRefusal {
    UnknownAccount,
    /// It is the last enabled admin: nobody could manage the server any more.
    LastAdmin,
}

/// An account's SIP digest credential as stored: HA1 hashes, never the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipCredentialRow {
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    pub updated_at: UnixMillis,
}

impl Store {
    pub async fn create_user(
        &self,
        username: &str,
        display_name: &str,
        email: &str,
        password_hash: &str,
        role: AccountRole,
        now: UnixMillis,
    ) -> Result<User, StoreError> {
        let id = AccountId::random();
        let result = sqlx::query(
            "INSERT INTO users (id, username, display_name, email, password_hash, role, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(username)
        .bind(display_name)
        .bind(email)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict("a user with that username"))
            }
            Err(e) => Err(e.into()),
            Ok(_) => Ok(User {
                id,
                username: username.into(),
                display_name: display_name.into(),
                email: email.into(),
                role,
                password_hash: password_hash.into(),
                created_at: now,
                disabled: false,
                token_generation: 0,
            }),
        }
    }

    fn user_from(row: &sqlx::sqlite::SqliteRow) -> Result<User, StoreError> {
        Ok(User {
            id: id_of(row, "id")?,
            username: row.try_get("username")?,
            display_name: row.try_get("display_name")?,
            email: row.try_get("email")?,
            role: id_of(row, "role")?,
            password_hash: row.try_get("password_hash")?,
            created_at: row.try_get("created_at")?,
            disabled: row.try_get("disabled")?,
            token_generation: row.try_get("token_generation")?,
        })
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::user_from).transpose()
    }

    pub async fn user_by_id(&self, id: AccountId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::user_from).transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::user_from).collect()
    }

    /// Disables or re-enables an account; either way its generation moves on, so no token
    /// signed before comes back to life on re-enabling. The last enabled admin is never
    /// disabled (checked in the same statement, so two admins cannot disable each other at once).
    pub async fn set_disabled(
        &self,
        id: AccountId,
        disabled: bool,
    ) -> Result<Result<User, DisableRefusal>, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET disabled = ?1, token_generation = token_generation + 1
             WHERE id = ?2 AND (?1 = 0 OR role != 'admin' OR EXISTS (
                 SELECT 1 FROM users o WHERE o.role = 'admin' AND o.disabled = 0 AND o.id != ?2))",
        )
        .bind(disabled)
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        let user = self.user_by_id(id).await?;
        Ok(match (done.rows_affected(), user) {
            (_, None) => Err(DisableRefusal::UnknownAccount),
            (0, Some(_)) => Err(DisableRefusal::LastAdmin),
            (_, Some(u)) => Ok(u),
        })
    }

    /// Moves the account's token generation on, so every token signed for it so far is
    /// refused; the new generation, or `None` for no such account.
    pub async fn revoke_tokens(&self, id: AccountId) -> Result<Option<u32>, StoreError> {
        let row = sqlx::query(
            "UPDATE users SET token_generation = token_generation + 1 WHERE id = ?
             RETURNING token_generation",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| r.try_get::<u32, _>("token_generation"))
            .transpose()?)
    }

    /// Sets (or replaces) an account's SIP digest credential.
    pub async fn set_sip_credential(
        &self,
        user: AccountId,
        cred: &SipCredentialRow,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sip_credentials (user_id, realm, ha1_md5, ha1_sha256, updated_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (user_id) DO UPDATE SET realm = excluded.realm,
                 ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256,
                 updated_at = excluded.updated_at",
        )
        .bind(user.to_string())
        .bind(&cred.realm)
        .bind(&cred.ha1_md5)
        .bind(&cred.ha1_sha256)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes an account's SIP credential; whether it had one.
    pub async fn delete_sip_credential(&self, user: AccountId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sip_credentials WHERE user_id = ?")
            .bind(user.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Every account with a SIP credential, with it.
    pub async fn sip_credentials(&self) -> Result<Vec<(User, SipCredentialRow)>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.*, s.realm, s.ha1_md5, s.ha1_sha256, s.updated_at AS sip_updated_at
             FROM sip_credentials s JOIN users u ON u.id = s.user_id
             WHERE u.disabled = 0 ORDER BY u.username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    Self::user_from(row)?,
                    SipCredentialRow {
                        realm: row.try_get("realm")?,
                        ha1_md5: row.try_get("ha1_md5")?,
                        ha1_sha256: row.try_get("ha1_sha256")?,
                        updated_at: row.try_get("sip_updated_at")?,
                    },
                ))
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl tandem_actors::ports::Accounts for Store {
    async fn is_agent(&self, account: AccountId) -> Result<bool, JournalError> {
        self.user_by_id(account)
            .await
            .map(|u| u.is_some_and(|u| u.role == AccountRole::Agent && !u.disabled))
            .map_err(|e| JournalError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn usernames_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        store
            .create_user("a", "A", "a@x", "h", AccountRole::Admin, 1)
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_user("a", "A2", "a@x", "h", AccountRole::Csr, 1)
                .await,
            Err(StoreError::Conflict(_))
        ));
    }

    #[tokio::test]
    async fn the_last_enabled_admin_cannot_be_disabled_and_each_change_revokes_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let a = store
            .create_user("a", "A", "a@x", "h", AccountRole::Admin, 1)
            .await
            .unwrap();
        let b = store
            .create_user("b", "B", "b@x", "h", AccountRole::Admin, 1)
            .await
            .unwrap();
        let c = store
            .create_user("c", "C", "c@x", "h", AccountRole::Csr, 1)
            .await
            .unwrap();
        let b = store.set_disabled(b.id, true).await.unwrap().unwrap();
        assert!(b.disabled);
        assert_eq!(b.token_generation, 1);
        assert_eq!(
            store.set_disabled(a.id, true).await.unwrap().unwrap_err(),
            DisableRefusal::LastAdmin
        );
        assert!(!store.user_by_id(a.id).await.unwrap().unwrap().disabled);
        let b = store.set_disabled(b.id, false).await.unwrap().unwrap();
        assert!(!b.disabled);
        assert_eq!(
            b.token_generation, 2,
            "re-enabling does not revive old tokens"
        );
        assert!(store.set_disabled(a.id, true).await.unwrap().is_ok());
        assert!(store.set_disabled(c.id, true).await.unwrap().is_ok());
        assert_eq!(
            store
                .set_disabled(AccountId::random(), true)
                .await
                .unwrap()
                .unwrap_err(),
            DisableRefusal::UnknownAccount
        );
        assert_eq!(store.revoke_tokens(c.id).await.unwrap(), Some(2));
        assert_eq!(
            store.revoke_tokens(AccountId::random()).await.unwrap(),
            None
        );
    }
}
