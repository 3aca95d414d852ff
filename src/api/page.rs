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
