//! `GET /api/catalog/`: the public marketplace. Active offerings with the
//! plans that can be ordered, for anyone (even anonymous);
//! `?category=<slug or id>` and `?q=<text>` (case-insensitive, over name and
//! description) narrow it.

use super::offerings::{OFFERING_COLUMNS, OfferingOut, offering_out};
use super::paging::{Listing, Page, PageParams};
use super::plans::{PLAN_COLUMNS, PlanOut, plan_out};
use crate::AppState;
use crate::error::{Error, Result};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn router() -> OpenApiRouter<AppState> {
    super::tagged("catalog", OpenApiRouter::new().routes(routes!(catalog)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CatalogQuery {
    /// A category's slug or id.
    category: Option<String>,
    /// Text to look for in names and descriptions (case-insensitive, at most
    /// 200 characters).
    q: Option<String>,
}

/// An active offering with the plans that can be ordered.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CatalogEntry)]
struct Entry {
    #[serde(flatten)]
    offering: OfferingOut,
    plans: Vec<PlanOut>,
}

/// `text` as a `LIKE` pattern matching it anywhere, with `%`, `_` and `\`
/// taken literally (`ESCAPE '\'`).
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Active offerings with their orderable plans (anyone, even anonymous).
#[utoipa::path(
    get,
    path = "/api/catalog",
    params(CatalogQuery, PageParams),
    security(()),
    responses((status = 200, description = "The catalog.", body = Vec<Entry>, headers(("Link" = String, description = "The pages beside this one (RFC 8288), when there are any.")))),
)]
async fn catalog(
    State(state): State<AppState>,
    Listing { filters: query, paging }: Listing<CatalogQuery>,
) -> Result<Page<Entry>> {
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > 200) {
        return Err(Error::Invalid("`q` must be at most 200 characters".into()));
    }
    let pattern = q.map(contains_pattern);
    let active = "state = 'active' \
         AND (CAST($1 AS TEXT) IS NULL OR category_id IN (SELECT id FROM category WHERE slug = $1 OR id = $1)) \
         AND (CAST($2 AS TEXT) IS NULL OR LOWER(name) LIKE $2 ESCAPE '\\' OR LOWER(description) LIKE $2 ESCAPE '\\')";
    let on_page =
        sqlx::query(&paging.sql(&format!("SELECT {OFFERING_COLUMNS} FROM offering WHERE {active} ORDER BY name, id")))
            .bind(&query.category)
            .bind(&pattern)
            .fetch_all(state.db.pool())
            .await?;
    let on_page = on_page.iter().map(offering_out).collect::<Result<Vec<_>>>()?;
    // The plans of exactly these offerings, whatever moved since.
    let plans = if on_page.is_empty() {
        Vec::new()
    } else {
        let placeholders: Vec<String> = (1..=on_page.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT {PLAN_COLUMNS} FROM plan WHERE archived_at IS NULL AND offering_id IN ({}) \
             ORDER BY created_at, id",
            placeholders.join(", ")
        );
        let mut plans = sqlx::query(&sql);
        for offering in &on_page {
            plans = plans.bind(&offering.id);
        }
        plans.fetch_all(state.db.pool()).await?
    };
    let mut by_offering: HashMap<String, Vec<PlanOut>> = HashMap::new();
    for row in &plans {
        let plan = plan_out(row)?;
        by_offering.entry(plan.offering_id.clone()).or_default().push(plan);
    }
    let entries = on_page.into_iter().map(|offering| {
        let plans = by_offering.remove(&offering.id).unwrap_or_default();
        Entry { offering, plans }
    });
    Ok(paging.page(entries.collect()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(super::contains_pattern("Ab"), "%ab%");
        assert_eq!(super::contains_pattern("50%_\\"), "%50\\%\\_\\\\%");
    }
}
