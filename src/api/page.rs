//! Paging shared by every list endpoint: `limit` (1–100, default 50) and an opaque `cursor`
//! from the previous page's `next_cursor` in, one list shape out.

use hexabase_query::page::{DEFAULT_LIMIT, MAX_LIMIT};
use hexabase_query::Page;
use poem_openapi::payload::Json;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::Object;

use crate::app::PageRequest;
use crate::error::{Error, Result};

/// One page of a list, keyset-paged and stably sorted (each list has a schema of its own in
/// the OpenAPI document, `List_<item>`).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct List<T: ParseFromJSON + ToJSON> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ParseFromJSON + ToJSON> List<T> {
    /// The answer for a page of rows, each shown as a `T`.
    pub fn of<R>(page: Page<R>) -> Json<Self>
    where
        T: From<R>,
    {
        Json(Self {
            items: page.items.into_iter().map(T::from).collect(),
            next_cursor: page.next,
        })
    }
}

/// The page a list request asks for: `limit` checked, `cursor` parsed by `parse` (the id or
/// position the previous page ended at).
pub fn request<T, E>(
    limit: Option<u32>,
    cursor: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<PageRequest<T>> {
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return Err(Error::bad_request(
                format!("limit must be between 1 and {MAX_LIMIT}"),
                Some("limit"),
            ))
        }
    };
    let after = cursor
        .map(parse)
        .transpose()
        .map_err(|_| Error::bad_request("cursor is not valid", Some("cursor")))?;
    Ok(PageRequest { limit, after })
}

/// A cursor that is a position in the event history.
pub fn position(cursor: &str) -> Result<i64, ()> {
    cursor.parse::<i64>().ok().filter(|p| *p >= 0).ok_or(())
}

/// A free-text filter: at most 200 characters, no NUL (which Postgres cannot store).
pub fn text_filter(field: &str, value: Option<String>) -> Result<Option<String>> {
    match value {
        Some(v) if v.chars().nth(200).is_some() || v.contains('\0') => Err(Error::bad_request(
            format!("{field} must be at most 200 characters without NUL"),
            Some(field),
        )),
        other => Ok(other),
    }
}

/// A time filter within what Postgres can compare (years 1 to 9999).
pub fn time_filter(
    field: &str,
    value: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    use chrono::Datelike;
    match value {
        Some(t) if !(1..=9999).contains(&t.year()) => Err(Error::bad_request(
            format!("{field} must be between years 1 and 9999"),
            Some(field),
        )),
        other => Ok(other),
    }
}

/// Which end of a list ordered in time a page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum Order {
    /// Oldest first (the default).
    Oldest,
    /// The latest first; `next_cursor` then pages back in time.
    Newest,
}
