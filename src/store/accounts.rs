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
             FROM sip_credentials s JOIN users u ON u.id = s.user_id ORDER BY u.username",
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
            .map(|u| u.is_some_and(|u| u.role == AccountRole::Agent))
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
}
