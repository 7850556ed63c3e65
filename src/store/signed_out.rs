//! Sign-in tokens signed out one by one ([`crate::signed_out`]).

use sqlx::Row;

use super::{Store, StoreError};
use crate::signed_out::TokenId;

impl Store {
    /// Keeps `id` signed out until `expires_at` (Unix seconds), and forgets those past theirs.
    pub async fn put_signed_out(
        &self,
        id: &TokenId,
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM signed_out_tokens WHERE expires_at <= ?")
            .bind(now as i64)
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT OR REPLACE INTO signed_out_tokens (id, expires_at) VALUES (?, ?)")
            .bind(&id[..])
            .bind(expires_at as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The tokens signed out that have not expired yet.
    pub async fn signed_out(&self, now: u64) -> Result<Vec<(TokenId, u64)>, StoreError> {
        let rows = sqlx::query("SELECT id, expires_at FROM signed_out_tokens WHERE expires_at > ?")
            .bind(now as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let id: Vec<u8> = r.get("id");
                let exp: i64 = r.get("expires_at");
                Some((id.try_into().ok()?, exp as u64))
            })
            .collect())
    }
}
