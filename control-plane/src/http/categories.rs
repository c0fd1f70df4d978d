//! `/api/categories/`: the catalog's categories. Anyone (even anonymous)
//! reads them; staff operators write. A category offerings use cannot be
//! deleted.

use super::paging::{Page, PageParams, Paging};
use super::provider_agents::check_description;
use super::{JsonBody, Path, required_text};
use crate::AppState;
use crate::auth::Operator;
use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged("categories", OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(update, remove)))
}

type ErrorBody = crate::error::ErrorBody;

/// A category as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
struct CategoryOut {
    id: String,
    name: String,
    slug: String,
    description: String,
    created_at_ms: i64,
    updated_at_ms: i64,
}

const COLUMNS: &str = "id, name, slug, description, created_at, updated_at";

fn category_out(row: &AnyRow) -> Result<CategoryOut> {
    Ok(CategoryOut {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        slug: row.try_get("slug")?,
        description: row.try_get("description")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

/// Lower-case letters, digits and single dashes, 1 to 64 characters.
fn check_slug(slug: &str) -> Result<String> {
    let slug = slug.trim();
    let valid = (1..=64).contains(&slug.len())
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains("--");
    if !valid {
        return Err(Error::Invalid(format!(
            "`slug` must be 1 to 64 lower-case letters, digits and single dashes, like `customer-support` (got `{slug}`)"
        )));
    }
    Ok(slug.to_owned())
}

/// A slug made from a name: `Customer Support!` → `customer-support`.
fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').chars().take(64).collect::<String>().trim_end_matches('-').to_owned()
}

/// Every category, by name (anyone, even anonymous).
#[utoipa::path(
    get,
    path = "/api/categories",
    params(PageParams),
    security(()),
    responses((status = 200, description = "The categories.", body = Vec<CategoryOut>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any.")))),
)]
async fn list(State(state): State<AppState>, paging: Paging) -> Result<Page<CategoryOut>> {
    let rows = sqlx::query(&paging.sql(&format!("SELECT {COLUMNS} FROM category ORDER BY name, id")))
        .fetch_all(state.db.pool())
        .await?;
    rows.iter().map(category_out).collect::<Result<_>>().map(|items| paging.page(items))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateCategory {
    name: String,
    /// Lower-case letters, digits and single dashes; made from the name
    /// when left out.
    slug: Option<String>,
    #[serde(default)]
    description: String,
}

/// Creates a category (operators).
#[utoipa::path(
    post,
    path = "/api/categories",
    request_body = CreateCategory,
    responses(
        (status = 201, description = "The category.", body = CategoryOut),
        (status = 403, description = "Not an operator.", body = ErrorBody),
        (status = 409, description = "The name or slug is taken (`conflict`).", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    _operator: Operator,
    JsonBody(body): JsonBody<CreateCategory>,
) -> Result<(StatusCode, Json<CategoryOut>)> {
    let name = required_text("name", &body.name, 100)?;
    let slug = check_slug(&body.slug.unwrap_or_else(|| slugify(&name)))?;
    let description = check_description(&body.description)?;
    let row = sqlx::query(&format!(
        "INSERT INTO category (id, name, slug, description, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}"
    ))
    .bind(new_id())
    .bind(&name)
    .bind(&slug)
    .bind(&description)
    .bind(now_ms())
    .fetch_one(state.db.pool())
    .await?;
    Ok((StatusCode::CREATED, Json(category_out(&row)?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateCategory {
    name: Option<String>,
    slug: Option<String>,
    description: Option<String>,
}

/// Changes a category (operators).
#[utoipa::path(
    patch,
    path = "/api/categories/{id}",
    params(("id" = String, Path, description = "Category id.")),
    request_body = UpdateCategory,
    responses(
        (status = 200, description = "The category.", body = CategoryOut),
        (status = 403, description = "Not an operator.", body = ErrorBody),
        (status = 409, description = "The name or slug is taken (`conflict`).", body = ErrorBody),
    ),
)]
async fn update(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateCategory>,
) -> Result<Json<CategoryOut>> {
    let name = body.name.as_deref().map(|n| required_text("name", n, 100)).transpose()?;
    let slug = body.slug.as_deref().map(check_slug).transpose()?;
    let description = body.description.as_deref().map(check_description).transpose()?;
    let row = sqlx::query(&format!(
        "UPDATE category SET name = COALESCE($1, name), slug = COALESCE($2, slug), \
         description = COALESCE($3, description), updated_at = $4 WHERE id = $5 RETURNING {COLUMNS}"
    ))
    .bind(name)
    .bind(slug)
    .bind(description)
    .bind(now_ms())
    .bind(&id)
    .fetch_optional(state.db.pool())
    .await?
    .ok_or_else(|| Error::NotFound(format!("no category `{id}`")))?;
    category_out(&row).map(Json)
}

/// Deletes a category no offering uses (operators).
#[utoipa::path(
    delete,
    path = "/api/categories/{id}",
    params(("id" = String, Path, description = "Category id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "Not an operator.", body = ErrorBody),
        (status = 409, description = "Offerings use it (`invalid_transition`).", body = ErrorBody),
    ),
)]
async fn remove(State(state): State<AppState>, _operator: Operator, Path(id): Path<String>) -> Result<StatusCode> {
    let deleted = sqlx::query(
        "DELETE FROM category WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM offering WHERE category_id = $1)",
    )
    .bind(&id)
    .execute(state.db.pool())
    .await?;
    if deleted.rows_affected() == 1 {
        return Ok(StatusCode::NO_CONTENT);
    }
    let exists: Option<String> =
        sqlx::query_scalar("SELECT id FROM category WHERE id = $1").bind(&id).fetch_optional(state.db.pool()).await?;
    Err(match exists {
        None => Error::NotFound(format!("no category `{id}`")),
        Some(_) => Error::InvalidTransition(
            "offerings use this category: move them to another category before deleting it".into(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Customer Support!"), "customer-support");
        assert_eq!(slugify("  Été & AI "), "t-ai");
        assert!(check_slug("customer-support").is_ok());
        for bad in ["", "-a", "a-", "a--b", "A", "a b", "ü"] {
            assert!(check_slug(bad).is_err(), "{bad}");
        }
    }
}
