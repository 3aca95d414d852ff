//! Paging parameters shared by every list endpoint: `limit` (1–100, default 50) and an opaque
//! `cursor` from the previous page's `next_cursor`.

use hexabase_query::page::{DEFAULT_LIMIT, MAX_LIMIT};

use super::error::{ApiError, ApiResult};

pub fn limit(requested: Option<u32>) -> ApiResult<u32> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_request(
            format!("limit must be between 1 and {MAX_LIMIT}"),
            Some("limit"),
        )),
    }
}

/// A cursor that is a position in the event history.
pub fn position_cursor(cursor: Option<&str>) -> ApiResult<Option<i64>> {
    cursor
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|p| *p >= 0)
                .ok_or_else(|| ApiError::bad_request("cursor is not valid", Some("cursor")))
        })
        .transpose()
}

/// A free-text filter: at most 200 characters, no NUL (which Postgres cannot store).
pub fn text_filter(field: &str, value: Option<String>) -> ApiResult<Option<String>> {
    match value {
        Some(v) if v.len() > 200 || v.contains('\0') => Err(ApiError::bad_request(
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
) -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
    use chrono::Datelike;
    match value {
        Some(t) if !(1..=9999).contains(&t.year()) => Err(ApiError::bad_request(
            format!("{field} must be between years 1 and 9999"),
            Some(field),
        )),
        other => Ok(other),
    }
}

/// A cursor that is the last id of the previous page.
pub fn id_cursor<T, E>(
    cursor: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> ApiResult<Option<T>> {
    cursor
        .map(parse)
        .transpose()
        .map_err(|_| ApiError::bad_request("cursor is not valid", Some("cursor")))
}
