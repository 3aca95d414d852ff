//! Forward-only SQL migrations, embedded in the binary and applied by `hexabase migrate`.
//!
//! Files in `schema/migrations/` are never edited once released; a change is a new file.

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
