use std::collections::BTreeMap;

use hexabase_it::services::TestDatabase;
use sqlx::PgPool;

/// Append the first event of aggregate `T`/`id` directly.
async fn append(pool: &PgPool, id: &str) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('T', $1, 1, 'Happened', '1', '{}', '{}')",
    )
    .bind(id)
    .execute(pool)
    .await
    .unwrap();
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// The outbox partition the trigger gives aggregate `id`.
async fn partition_of(pool: &PgPool, id: &str) -> i16 {
    sqlx::query_scalar("SELECT ((hashtext($1) & 2147483647) % 8)::smallint")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

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
    append(&pool, "t-1").await;
    let update = sqlx::query("UPDATE events SET payload = '{\"x\":1}'")
        .execute(&pool)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM events").execute(&pool).await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    let outbox = count(&pool, "SELECT count(*) FROM outbox").await;
    assert_eq!(outbox, 1, "the insert wrote its outbox row");
}

/// Upgrading from the layout that marked each outbox row sent: each partition resumes at its
/// oldest unsent row (later rows of it are published again, which JetStream drops), and the
/// others, fully sent or empty, start past every row.
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
    // Ids in the outbox partitions the trigger gives them: three in one, one in another.
    let mut by_partition: BTreeMap<i16, Vec<String>> = BTreeMap::new();
    for i in 0..200 {
        let id = format!("t-{i}");
        by_partition
            .entry(partition_of(&pool, &id).await)
            .or_default()
            .push(id);
    }
    let mut partitions = by_partition.into_values().filter(|ids| ids.len() >= 3);
    let (one, other) = (partitions.next().unwrap(), partitions.next().unwrap());
    // In order: sent, unsent, sent (other partition), sent after the unsent one.
    let appends = [
        (&one[0], true),
        (&one[1], false),
        (&other[0], true),
        (&one[2], true),
    ];
    for (id, sent) in appends {
        append(&pool, id).await;
        if sent {
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
    assert_eq!(pending, [one[1].clone(), one[2].clone()]);
    let past_every_row = count(
        &pool,
        "SELECT count(*) FROM outbox_cursors WHERE position = (SELECT max(position) FROM outbox)",
    )
    .await;
    assert_eq!(past_every_row, 7, "every partition but the unsent row's");
}

/// Every partition the outbox trigger assigns has a cursor, so no event is left unpublished.
#[tokio::test]
async fn every_outbox_partition_has_a_cursor() {
    let db = TestDatabase::create().await;
    let pool = db.pool(2).await;
    hexabase_schema::MIGRATOR.run(&pool).await.unwrap();
    for i in 0..100 {
        append(&pool, &format!("t-{i}")).await;
    }
    let uncovered = count(
        &pool,
        "SELECT count(*) FROM outbox o \
         WHERE NOT EXISTS (SELECT 1 FROM outbox_cursors c WHERE c.partition = o.partition)",
    )
    .await;
    assert_eq!(uncovered, 0);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM outbox_pending").await,
        100
    );
}

/// One append of several events writes an outbox row for each (partition by aggregate, the
/// event's hash) and wakes the relays once; an append that inserts nothing wakes nobody.
#[tokio::test]
async fn an_append_of_several_events_enqueues_each_and_notifies_once() {
    let db = TestDatabase::create().await;
    let pool = db.pool(2).await;
    hexabase_schema::MIGRATOR.run(&pool).await.unwrap();
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool)
        .await
        .unwrap();
    listener.listen("hexabase_outbox").await.unwrap();
    let appended: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT 'T', 't-' || (i / 2), 1 + i % 2, 'Happened', '1', '{}', \
                json_build_object('hash', 'h' || i) \
         FROM generate_series(0, 5) AS i \
         RETURNING position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(appended.len(), 6);
    let rows: Vec<(i64, String, i64, i16, Option<String>)> = sqlx::query_as(
        "SELECT position, aggregate_id, sequence, partition, hash FROM outbox ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), appended);
    for (i, (_, id, sequence, partition, hash)) in rows.iter().enumerate() {
        assert_eq!(id, &format!("t-{}", i / 2));
        assert_eq!(*sequence, 1 + i as i64 % 2);
        assert_eq!(hash.as_deref(), Some(format!("h{i}").as_str()));
        assert_eq!(
            *partition,
            partition_of(&pool, id).await,
            "one aggregate, one partition"
        );
    }
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .expect("the append notifies")
        .unwrap();
    assert_eq!(first.channel(), "hexabase_outbox");

    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         SELECT 'T', 'none', 1, 'Happened', '1', '{}', '{}' WHERE false",
    )
    .execute(&pool)
    .await
    .unwrap();
    let more = tokio::time::timeout(std::time::Duration::from_millis(300), listener.recv()).await;
    assert!(
        more.is_err(),
        "one notification for the append, none for an empty one"
    );
}
