//! Short invitation links (issue 18): a random code standing for a long signed invitation link
//! until it expires.

use sqlx::Row;

use super::{Store, StoreError};

impl Store {
    /// Keeps `link` under `code` until `expires_at` (Unix seconds), and forgets the links that
    /// have expired.
    pub async fn put_short_link(
        &self,
        code: &str,
        link: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM short_links WHERE expires_at <= ?")
            .bind(now as i64)
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO short_links (code, link, expires_at) VALUES (?, ?, ?)")
            .bind(code)
            .bind(link)
            .bind(expires_at as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The link `code` stands for, unless it has expired or never existed.
    pub async fn short_link(&self, code: &str, now: u64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT link FROM short_links WHERE code = ? AND expires_at > ?")
            .bind(code)
            .bind(now as i64)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get("link")))
    }
}
