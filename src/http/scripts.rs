//! SPEC M2, the script library: admins manage categories; CSRs and agents list the published
//! scripts and their own, add a script (a unique name, a category, a description, published or
//! private, the executable file and an optional input file, each at most 1 MiB), edit and
//! delete their own. Files travel as base64 in the JSON body. Every refusal names what to fix
//! with a code the form maps to its field (docs/protocol.md, "Script library").

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use tandem_actors::session::rules::check_file_name;
use tandem_actors::session::unix_now;
use uuid::Uuid;

use super::{ApiJson, AppState, Caller};
use crate::problem::Problem;
use crate::store::{AccountRole, Script, ScriptFile, ScriptWrite, StoreError};

/// Largest executable or input file.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Largest body: both files in base64 and the rest.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
const MAX_NAME_CHARS: usize = 80;
const MAX_DESCRIPTION_CHARS: usize = 2000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBody {
    name: String,
    content_base64: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptBody {
    name: String,
    category: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    published: bool,
    /// Required for a new script; an edit without it keeps the stored file.
    #[serde(default)]
    file: Option<FileBody>,
    #[serde(default)]
    input: Option<FileBody>,
    /// An edit that removes the input file.
    #[serde(default)]
    remove_input: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryBody {
    name: String,
}

fn check_name(name: &str, what: &str) -> Result<String, Problem> {
    super::checked_name(name, what, MAX_NAME_CHARS).map(str::to_owned)
}

/// A file of the body, decoded and within its limit; `code` says which file was refused.
fn decoded(body: FileBody, code: &str, which: &str) -> Result<ScriptFile, Problem> {
    check_file_name(&body.name).map_err(|_| {
        Problem::unprocessable(
            "invalid_file_name",
            format!("the {which}'s name must be a plain file name"),
        )
    })?;
    // Base64 is 4/3 of the bytes: a longer text is over the limit before it is decoded.
    if body.content_base64.len() > MAX_FILE_BYTES.div_ceil(3) * 4 + 4 {
        return Err(too_large(code, which));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.content_base64.trim())
        .map_err(|_| {
            Problem::unprocessable("invalid_body", format!("the {which} is not valid base64"))
        })?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(code, which));
    }
    Ok(ScriptFile {
        name: body.name,
        bytes,
    })
}

/// The input file is written beside the script: one name for both would let it replace it.
fn same_names() -> Problem {
    Problem::unprocessable(
        "invalid_file_name",
        "the input file needs a name other than the script file's",
    )
}

fn too_large(code: &str, which: &str) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        code,
        format!("the {which} is over {MAX_FILE_BYTES} bytes (1 MiB)"),
    )
}

fn uuid(s: &str, code: &str, what: &str) -> Result<Uuid, Problem> {
    s.parse()
        .map_err(|_| Problem::not_found(code, format!("no such {what}")))
}

/// The body as the store takes it, checked field by field in the form's order.
async fn write(state: &AppState, b: ScriptBody, new: bool) -> Result<ScriptWrite, Problem> {
    let name = check_name(&b.name, "script")?;
    let category = b
        .category
        .parse::<Uuid>()
        .ok()
        .ok_or_else(|| Problem::unprocessable("unknown_category", "choose a category"))?;
    let known = state.store.script_categories().await?;
    if !known.iter().any(|c| c.id == category) {
        return Err(Problem::unprocessable(
            "unknown_category",
            "that category no longer exists; choose another",
        ));
    }
    let description = b.description.trim().to_owned();
    if description.chars().count() > MAX_DESCRIPTION_CHARS
        || description
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Problem::unprocessable(
            "invalid_description",
            format!("a description is at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    let file = match b.file {
        Some(f) => Some(decoded(f, "script_too_large", "script file")?),
        None if new => {
            return Err(Problem::unprocessable(
                "file_required",
                "choose the script's executable file",
            ));
        }
        None => None,
    };
    let input = match (b.input, b.remove_input) {
        (Some(f), _) => Some(Some(decoded(f, "input_too_large", "input file")?)),
        (None, true) => Some(None),
        (None, false) => None,
    };
    if let (Some(f), Some(Some(i))) = (&file, &input)
        && f.name == i.name
    {
        return Err(same_names());
    }
    Ok(ScriptWrite {
        name,
        category,
        description,
        published: b.published,
        file,
        input,
    })
}

fn taken(e: StoreError) -> Problem {
    match e {
        StoreError::Conflict(_) => Problem::conflict(
            "script_name_taken",
            "a script with that name is in the library already (names are compared without regard to case); choose another",
        ),
        other => other.into(),
    }
}

/// A script the caller may see: published, or their own.
async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<Script, Problem> {
    let unknown = || Problem::not_found("unknown_script", "no such script");
    let id = uuid(id, "unknown_script", "script")?;
    let s = state.store.script(id).await?.ok_or_else(unknown)?;
    if s.published || s.owner == caller.0.id {
        Ok(s)
    } else {
        Err(unknown())
    }
}

/// `GET /api/scripts`: the published scripts and the caller's own.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<impl IntoResponse, Problem> {
    let scripts = state.store.scripts_for(caller.0.id).await?;
    Ok(ApiJson(json!({ "scripts": scripts })))
}

/// `POST /api/scripts`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ScriptBody>,
) -> Result<impl IntoResponse, Problem> {
    let w = write(&state, body, true).await?;
    let id = state
        .store
        .create_script(caller.0.id, w, unix_now())
        .await
        .map_err(taken)?;
    let created = state
        .store
        .script(id)
        .await?
        .ok_or_else(|| Problem::internal("the new script is gone"))?;
    Ok((StatusCode::CREATED, ApiJson(created)))
}

/// `GET /api/scripts/{id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    Ok(ApiJson(visible(&state, &caller, &id).await?))
}

/// The caller's own script, for a change.
async fn own(state: &AppState, caller: &Caller, id: &str) -> Result<Script, Problem> {
    let s = visible(state, caller, id).await?;
    if s.owner != caller.0.id {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "not_owner",
            format!("only {} changes or deletes this script", s.owner_name),
        ));
    }
    Ok(s)
}

/// `PATCH /api/scripts/{id}`: the owner edits (a file left out is kept).
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ScriptBody>,
) -> Result<impl IntoResponse, Problem> {
    let s = own(&state, &caller, &id).await?;
    let w = write(&state, body, false).await?;
    let script_name = w.file.as_ref().map_or(&s.file_name, |f| &f.name);
    let input_name = match &w.input {
        Some(Some(i)) => Some(&i.name),
        Some(None) => None,
        None => s.input_name.as_ref(),
    };
    if input_name == Some(script_name) {
        return Err(same_names());
    }
    state
        .store
        .update_script(s.id, w, unix_now())
        .await
        .map_err(taken)?;
    let updated = state
        .store
        .script(s.id)
        .await?
        .ok_or_else(|| Problem::not_found("unknown_script", "no such script"))?;
    Ok(ApiJson(updated))
}

/// `DELETE /api/scripts/{id}`: the owner only.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let s = own(&state, &caller, &id).await?;
    state.store.delete_script(s.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/script-categories`.
pub async fn categories(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<impl IntoResponse, Problem> {
    Ok(ApiJson(
        json!({ "categories": state.store.script_categories().await? }),
    ))
}

fn category_taken(e: StoreError) -> Problem {
    match e {
        StoreError::Conflict(_) => Problem::conflict(
            "category_name_taken",
            "a category with that name exists already",
        ),
        StoreError::NotFound => Problem::not_found("unknown_category", "no such category"),
        other => other.into(),
    }
}

/// `POST /api/script-categories` (admins).
pub async fn create_category(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CategoryBody>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(&[AccountRole::Admin])?;
    let name = check_name(&body.name, "category")?;
    let c = state
        .store
        .create_script_category(&name)
        .await
        .map_err(category_taken)?;
    Ok((StatusCode::CREATED, ApiJson(c)))
}

/// `PATCH /api/script-categories/{id}` (admins): renames.
pub async fn rename_category(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CategoryBody>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(&[AccountRole::Admin])?;
    let id = uuid(&id, "unknown_category", "category")?;
    let name = check_name(&body.name, "category")?;
    state
        .store
        .rename_script_category(id, &name)
        .await
        .map_err(category_taken)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/script-categories/{id}` (admins): only a category no script is filed under.
pub async fn delete_category(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    caller.require(&[AccountRole::Admin])?;
    let id = uuid(&id, "unknown_category", "category")?;
    match state.store.delete_script_category(id).await {
        Err(StoreError::Conflict(_)) => Err(Problem::conflict(
            "category_in_use",
            "scripts are filed under this category; move or delete them first",
        )),
        r => r.map_err(category_taken).map(|()| StatusCode::NO_CONTENT),
    }
}
