//! Pages of the list endpoints: `?page=` (from 1) and `?page_size=` (1 to
//! [`MAX_PAGE_SIZE`], [`DEFAULT_PAGE_SIZE`] when absent).
//!
//! A page is still a JSON array, so clients that never ask for a page keep
//! working on lists that fit one. What is beyond it is announced in a
//! `Link` header (RFC 8288) with `rel="next"`, and `rel="prev"` from the
//! second page on, each the request's own path and filters with the other
//! page. The database reads one row more than the page holds to know
//! whether a next page exists, so no list is counted.

use crate::error::Error;
use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

/// How many items a page holds unless `?page_size=` says otherwise.
pub const DEFAULT_PAGE_SIZE: u64 = 100;
/// The largest `?page_size=`.
pub const MAX_PAGE_SIZE: u64 = 1000;
/// The last page that may be asked for (keeps the offset far from overflow).
const MAX_PAGE: u64 = 1_000_000;

/// The paging keys, as the OpenAPI document shows them.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The page, from 1 (default 1).
    #[param(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u64>,
    /// Items a page holds (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub page_size: Option<u64>,
}

/// The page a list request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    page: u64,
    page_size: u64,
    /// The request's path.
    path: String,
    /// The request's query pairs but the paging ones, as sent.
    filters: Vec<String>,
}

impl Paging {
    /// Reads the paging keys of a query string and keeps the rest; a
    /// missing key takes its default.
    fn parse(path: &str, query: Option<&str>) -> Result<Self, Error> {
        let (mut page, mut page_size, mut filters) = (1, DEFAULT_PAGE_SIZE, Vec::new());
        for pair in query.unwrap_or("").split('&').filter(|pair| !pair.is_empty()) {
            // Keys and values as the filters' deserializer reads them
            // (percent-decoded, `+` a space); the pair itself stays as sent.
            let (key, value) = form_urlencoded::parse(pair.as_bytes()).next().unwrap_or_default();
            match &*key {
                "page" => page = number("page", &value, 1, MAX_PAGE)?,
                "page_size" => page_size = number("page_size", &value, 1, MAX_PAGE_SIZE)?,
                _ => filters.push(pair.to_owned()),
            }
        }
        Ok(Self { page, page_size, path: path.to_owned(), filters })
    }

    /// The query string without the paging keys.
    fn filter_query(&self) -> String {
        self.filters.join("&")
    }

    /// `query`, which must end in an `ORDER BY` that settles every row's
    /// place (an id last), limited to this page and one row more.
    pub fn sql(&self, query: &str) -> String {
        let offset = (self.page - 1) * self.page_size;
        format!("{query} LIMIT {} OFFSET {offset}", self.page_size + 1)
    }

    /// The page of `rows` read with [`Paging::sql`]: the extra row, if
    /// any, is dropped and announces a next page.
    pub fn page<T>(&self, mut rows: Vec<T>) -> Page<T> {
        let size = usize::try_from(self.page_size).unwrap_or(usize::MAX);
        let more = rows.len() > size;
        rows.truncate(size);
        let mut links = Vec::new();
        if more && self.page < MAX_PAGE {
            links.push(format!("<{}>; rel=\"next\"", self.link(self.page + 1)));
        }
        if self.page > 1 {
            links.push(format!("<{}>; rel=\"prev\"", self.link(self.page - 1)));
        }
        Page { items: rows, link: (!links.is_empty()).then(|| links.join(", ")) }
    }

    fn link(&self, page: u64) -> String {
        let mut query = self.filters.clone();
        query.push(format!("page={page}"));
        query.push(format!("page_size={}", self.page_size));
        link_target(&format!("{}?{}", self.path, query.join("&")))
    }
}

/// `target` with every byte a `Link` header's `<…>` cannot hold as it is
/// (controls, spaces, `<`, `>`, `"`, anything past ASCII)
/// percent-encoded, so the header is always valid.
fn link_target(target: &str) -> String {
    let mut encoded = String::with_capacity(target.len());
    for byte in target.bytes() {
        if byte.is_ascii_graphic() && !matches!(byte, b'<' | b'>' | b'"') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn number(key: &str, value: &str, min: u64, max: u64) -> Result<u64, Error> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::Invalid(format!("`{key}` must be a whole number from {min} to {max}, not `{value}`"))),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        Self::parse(parts.uri.path(), parts.uri.query())
    }
}

/// A list endpoint's filters (`T`, whose unknown keys are refused as
/// [`super::Query`] refuses them) and the page it asks for.
#[derive(Debug)]
pub struct Listing<T> {
    /// The filters.
    pub filters: T,
    /// The page.
    pub paging: Paging,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Listing<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let paging = Paging::parse(parts.uri.path(), parts.uri.query())?;
        let filters = serde_urlencoded::from_str(&paging.filter_query()).map_err(|e| {
            Error::Invalid(format!("the query string is not valid: Failed to deserialize query string: {e}"))
        })?;
        Ok(Self { filters, paging })
    }
}

/// One page of a list: a JSON array, with a `Link` header to the pages
/// beside it.
#[derive(Debug)]
pub struct Page<T> {
    items: Vec<T>,
    link: Option<String>,
}

impl<T: Serialize> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        let mut response = Json(self.items).into_response();
        // Visible ASCII only (see `link_target`), so always a valid value.
        if let Some(link) = self.link.and_then(|link| HeaderValue::from_str(&link).ok()) {
            response.headers_mut().insert(header::LINK, link);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let paging = Paging::parse("/api/orders", None).unwrap();
        assert_eq!((paging.page, paging.page_size), (1, DEFAULT_PAGE_SIZE));
        assert_eq!(paging.sql("SELECT 1 ORDER BY id"), "SELECT 1 ORDER BY id LIMIT 101 OFFSET 0");
        let paging = Paging::parse("/api/orders", Some("state=done&page=3&page_size=20")).unwrap();
        assert_eq!(paging.sql("Q"), "Q LIMIT 21 OFFSET 40");
        assert_eq!(paging.filter_query(), "state=done");
        for bad in ["page=0", "page=-1", "page=x", "page=", "page_size=0", "page_size=1001", "page=1000001"] {
            let error = Paging::parse("/", Some(bad)).unwrap_err().to_string();
            assert!(error.contains("must be a whole number"), "{bad}: {error}");
        }
        let last = Paging::parse("/", Some("page=1000000&page_size=1000")).unwrap();
        assert_eq!(last.sql("Q"), "Q LIMIT 1001 OFFSET 999999000");
    }

    #[test]
    fn links_to_the_pages_beside() {
        let first = Paging::parse("/api/orders", Some("state=done&page_size=2")).unwrap();
        let page = first.page(vec![1, 2, 3]);
        assert_eq!(page.items, [1, 2]);
        assert_eq!(page.link.as_deref(), Some("</api/orders?state=done&page=2&page_size=2>; rel=\"next\""));
        let second = Paging::parse("/api/orders", Some("page=2&page_size=2&state=done")).unwrap();
        let page = second.page(vec![3, 4, 5]);
        assert_eq!(
            page.link.as_deref(),
            Some(
                "</api/orders?state=done&page=3&page_size=2>; rel=\"next\", \
                 </api/orders?state=done&page=1&page_size=2>; rel=\"prev\""
            )
        );
        let last = second.page(vec![3]);
        assert_eq!(last.link.as_deref(), Some("</api/orders?state=done&page=1&page_size=2>; rel=\"prev\""));
        assert_eq!(first.page(vec![1]).link, None, "one page, no links");
    }

    #[test]
    fn keys_are_read_decoded_and_links_stay_valid() {
        let paging = Paging::parse("/api/catalog", Some("%70age=2&page_size=%31&q=caf%C3%A9+bar")).unwrap();
        assert_eq!((paging.page, paging.page_size), (2, 1));
        assert_eq!(paging.filter_query(), "q=caf%C3%A9+bar", "filters as sent");
        assert_eq!(link_target("/a?q=<\"é\" x>"), "/a?q=%3C%22%C3%A9%22%20x%3E");
        let page = paging.page(vec![1, 2]);
        let link = page.link.unwrap();
        assert!(HeaderValue::from_str(&link).is_ok(), "{link}");
        assert!(link.starts_with("</api/catalog?q=caf%C3%A9+bar&page=3&page_size=1>; rel=\"next\""), "{link}");
    }
}
