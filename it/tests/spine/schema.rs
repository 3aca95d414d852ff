use hexabase_it::services::TestDatabase;

#[tokio::test]
async fn all_migrations_apply_to_an_empty_database_and_again_as_a_no_op() {
    let db = TestDatabase::create().await;
    let pool = db.pool(2).await;
    hexabase_schema::MIGRATOR
        .run(&pool)
        .await
        .expect("migrations apply");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for expected in [
        "events",
        "snapshots",
        "outbox",
        "outbox_cursors",
        "projection_offsets",
        "idempotency",
        "rm_organizations",
        "rm_organization_members",
        "rm_organization_invitations",
        "rm_audit_events",
    ] {
        assert!(
            tables.iter().any(|t| t == expected),
            "{expected} missing from {tables:?}"
        );
    }
    hexabase_schema::MIGRATOR
        .run(&pool)
        .await
        .expect("second run is a no-op");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, hexabase_schema::MIGRATOR.iter().count());
}

#[tokio::test]
async fn the_event_table_refuses_updates_and_deletes() {
    let db = TestDatabase::create().await;
    let pool = db.pool(2).await;
    hexabase_schema::MIGRATOR.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('T', 't-1', 1, 'Happened', '1', '{}', '{}')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let update = sqlx::query("UPDATE events SET payload = '{\"x\":1}'")
        .execute(&pool)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM events").execute(&pool).await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(outbox, 1, "the insert wrote its outbox row");
}

/// Upgrading from the layout that marked each outbox row sent: what was not sent yet is still
/// to be published, and what was sent is not published again.
#[tokio::test]
async fn the_outbox_cursors_start_where_the_sent_marks_ended() {
    let db = TestDatabase::create().await;
    let pool = db.pool(2).await;
    let before = sqlx::migrate::Migrator {
        migrations: hexabase_schema::MIGRATOR
            .iter()
            .filter(|m| m.version < 10)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
    for (i, id) in ["t-1", "t-2", "t-3", "t-4"].iter().enumerate() {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
             VALUES ('T', $1, 1, 'Happened', '1', '{}', '{}')",
        )
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
        if i < 2 {
            sqlx::query("UPDATE outbox SET sent_at = now() WHERE aggregate_id = $1")
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
    }
    hexabase_schema::MIGRATOR.run(&pool).await.unwrap();
    let pending: Vec<String> =
        sqlx::query_scalar("SELECT aggregate_id FROM outbox_pending ORDER BY position")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(pending, ["t-3", "t-4"]);
}
