//! The script library (SPEC M2): categories and scripts. Names are unique without regard to
//! case (`name_key`); a script's files are read only when a session runs it.

use sqlx::Row;
use tandem_actors::ids::AccountId;
use tandem_actors::protocol::UnixMillis;
use uuid::Uuid;

use super::{Store, StoreError, id_of};

/// The form of a name that uniqueness is checked on.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ScriptCategory {
    pub id: Uuid,
    pub name: String,
    /// Scripts filed under it (a category in use cannot be deleted).
    pub scripts: i64,
}

/// A script as the library lists it: everything but the files' bytes.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Script {
    pub id: Uuid,
    pub name: String,
    pub category: Uuid,
    pub category_name: String,
    pub description: String,
    pub published: bool,
    pub owner: AccountId,
    pub owner_name: String,
    pub file_name: String,
    pub size: i64,
    pub sha256: String,
    pub input_name: Option<String>,
    pub input_size: Option<i64>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// A file of a script: its name and bytes.
#[derive(Clone, Debug)]
pub struct ScriptFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What a new script, or an edit, stores. An edit without a file keeps the one stored; an edit
/// with `input: Some(None)` removes the input file.
#[derive(Clone, Debug)]
pub struct ScriptWrite {
    pub name: String,
    pub category: Uuid,
    pub description: String,
    pub published: bool,
    pub file: Option<ScriptFile>,
    pub input: Option<Option<ScriptFile>>,
}

/// A script's listing with its category's and owner's names, then `$tail`.
macro_rules! select {
    ($tail:literal) => {
        concat!("SELECT s.id, s.name, s.category_id, c.name AS category_name, s.description,
        s.published, s.owner, u.display_name AS owner_name, s.file_name, length(s.content) AS size,
        s.sha256, s.input_name, length(s.input) AS input_size, s.created_at, s.updated_at
     FROM scripts s JOIN script_categories c ON c.id = s.category_id JOIN users u ON u.id = s.owner ", $tail)
    };
}

fn script(row: &sqlx::sqlite::SqliteRow) -> Result<Script, StoreError> {
    Ok(Script {
        id: id_of(row, "id")?,
        name: row.try_get("name")?,
        category: id_of(row, "category_id")?,
        category_name: row.try_get("category_name")?,
        description: row.try_get("description")?,
        published: row.try_get::<i64, _>("published")? != 0,
        owner: id_of(row, "owner")?,
        owner_name: row.try_get("owner_name")?,
        file_name: row.try_get("file_name")?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        input_name: row.try_get("input_name")?,
        input_size: row.try_get("input_size")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn unique(
    r: Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error>,
    what: &'static str,
) -> Result<u64, StoreError> {
    match r {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(what)),
        r => Ok(r?.rows_affected()),
    }
}

impl Store {
    pub async fn script_categories(&self) -> Result<Vec<ScriptCategory>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.id, c.name, (SELECT count(*) FROM scripts s WHERE s.category_id = c.id) AS n
             FROM script_categories c ORDER BY c.name_key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScriptCategory {
                    id: id_of(r, "id")?,
                    name: r.try_get("name")?,
                    scripts: r.try_get("n")?,
                })
            })
            .collect()
    }

    pub async fn create_script_category(&self, name: &str) -> Result<ScriptCategory, StoreError> {
        let id = Uuid::new_v4();
        let r = sqlx::query("INSERT INTO script_categories (id, name, name_key) VALUES (?, ?, ?)")
            .bind(id.to_string())
            .bind(name)
            .bind(name_key(name))
            .execute(&self.pool)
            .await;
        unique(r, "a category with that name")?;
        Ok(ScriptCategory {
            id,
            name: name.into(),
            scripts: 0,
        })
    }

    pub async fn rename_script_category(&self, id: Uuid, name: &str) -> Result<(), StoreError> {
        let r = sqlx::query("UPDATE script_categories SET name = ?, name_key = ? WHERE id = ?")
            .bind(name)
            .bind(name_key(name))
            .bind(id.to_string())
            .execute(&self.pool)
            .await;
        match unique(r, "a category with that name")? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// Deletes an unused category; `Conflict` while scripts are filed under it.
    pub async fn delete_script_category(&self, id: Uuid) -> Result<(), StoreError> {
        let r = sqlx::query(
            "DELETE FROM script_categories WHERE id = ?
             AND NOT EXISTS (SELECT 1 FROM scripts WHERE category_id = ?)",
        )
        .bind(id.to_string())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(());
        }
        let exists = sqlx::query("SELECT 1 FROM script_categories WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Err(if exists.is_some() {
            StoreError::Conflict("scripts in that category")
        } else {
            StoreError::NotFound
        })
    }

    /// The scripts `viewer` may see: the published ones and their own.
    pub async fn scripts_for(&self, viewer: AccountId) -> Result<Vec<Script>, StoreError> {
        let rows = sqlx::query(select!(
            "WHERE s.published = 1 OR s.owner = ? ORDER BY s.name_key"
        ))
        .bind(viewer.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(script).collect()
    }

    pub async fn script(&self, id: Uuid) -> Result<Option<Script>, StoreError> {
        let row = sqlx::query(select!("WHERE s.id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(script).transpose()
    }

    /// A script's executable file and input file.
    pub async fn script_files(
        &self,
        id: Uuid,
    ) -> Result<Option<(ScriptFile, Option<ScriptFile>)>, StoreError> {
        let row =
            sqlx::query("SELECT file_name, content, input_name, input FROM scripts WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        let Some(r) = row else { return Ok(None) };
        let file = ScriptFile {
            name: r.try_get("file_name")?,
            bytes: r.try_get("content")?,
        };
        let input = match (
            r.try_get::<Option<String>, _>("input_name")?,
            r.try_get::<Option<Vec<u8>>, _>("input")?,
        ) {
            (Some(name), Some(bytes)) => Some(ScriptFile { name, bytes }),
            _ => None,
        };
        Ok(Some((file, input)))
    }

    /// A new script owned by `owner`; `Conflict` for a name taken (in any case).
    pub async fn create_script(
        &self,
        owner: AccountId,
        w: ScriptWrite,
        now: UnixMillis,
    ) -> Result<Uuid, StoreError> {
        let id = Uuid::new_v4();
        let file = w.file.ok_or(StoreError::NotFound)?;
        let input = w.input.flatten();
        let r = sqlx::query(
            "INSERT INTO scripts (id, name, name_key, category_id, description, published, owner,
                file_name, content, sha256, input_name, input, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(&w.name)
        .bind(name_key(&w.name))
        .bind(w.category.to_string())
        .bind(&w.description)
        .bind(i64::from(w.published))
        .bind(owner.to_string())
        .bind(&file.name)
        .bind(&file.bytes)
        .bind(sha256_hex(&file.bytes))
        .bind(input.as_ref().map(|i| i.name.clone()))
        .bind(input.map(|i| i.bytes))
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await;
        unique(r, "a script with that name")?;
        Ok(id)
    }

    pub async fn update_script(
        &self,
        id: Uuid,
        w: ScriptWrite,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE scripts SET name = ?, name_key = ?, category_id = ?, description = ?,
                published = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&w.name)
        .bind(name_key(&w.name))
        .bind(w.category.to_string())
        .bind(&w.description)
        .bind(i64::from(w.published))
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await;
        if unique(r, "a script with that name")? == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some(file) = w.file {
            sqlx::query("UPDATE scripts SET file_name = ?, content = ?, sha256 = ? WHERE id = ?")
                .bind(&file.name)
                .bind(&file.bytes)
                .bind(sha256_hex(&file.bytes))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(input) = w.input {
            let (name, bytes) = input.map(|i| (i.name, i.bytes)).unzip();
            sqlx::query("UPDATE scripts SET input_name = ?, input = ? WHERE id = ?")
                .bind(name)
                .bind(bytes)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_script(&self, id: Uuid) -> Result<(), StoreError> {
        let r = sqlx::query("DELETE FROM scripts WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
