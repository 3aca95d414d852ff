/// Keyset pagination: at most `MAX_LIMIT` items per page, `next` is the cursor of the following
/// page (absent on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

/// Fetch one row more than asked, so the presence of a next page is known without a count.
pub(crate) fn paginate<T>(
    mut rows: Vec<T>,
    limit: u32,
    cursor_of: impl Fn(&T) -> String,
) -> Page<T> {
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(cursor_of)
    } else {
        None
    };
    Page { items: rows, next }
}
