//! DESIGN.md §2, items 1–4, 6 and 8, against the real Postgres and JetStream.

use hexabase_command::workspace::WorkspaceCommand;
use std::collections::BTreeMap;

use futures::StreamExt;
use hexabase_command::store::verify::verify;
use hexabase_command::store::StoredEvent;
use hexabase_it::{TestApp, TestAppOptions};
use hexabase_projector::relay::Relay;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn no_worker() -> TestAppOptions {
    TestAppOptions {
        worker: false,
        ..TestAppOptions::default()
    }
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

/// Every app starts with the events of its two signing keys (sessions and the OIDC provider:
/// each generated, activated), which travel like any other event.
const KEYRING_EVENTS: u64 = 4;
const UNSENT_ORG_EVENTS: &str =
    "SELECT count(*) FROM outbox_pending WHERE aggregate_type = 'Organization'";

/// Rename organization `id` (one event), which must succeed.
async fn rename(app: &TestApp, token: &str, id: &str, name: &str) {
    let reply = app
        .patch(
            &format!("/api/v1/organizations/{id}"),
            token,
            &json!({ "name": name }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

/// The app's JetStream stream of events.
async fn event_stream(app: &TestApp) -> async_nats::jetstream::stream::Stream {
    app.state
        .js
        .get_stream(&app.settings.nats.stream)
        .await
        .unwrap()
}

/// The stream read back in order: each aggregate's sequences, in the order they were
/// published, for the first `messages` messages (of `aggregate_type` only, when given).
async fn published_sequences(
    app: &TestApp,
    messages: u64,
    aggregate_type: Option<&str>,
) -> BTreeMap<String, Vec<i64>> {
    let stream = event_stream(app).await;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut delivered = consumer.messages().await.unwrap();
    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for _ in 0..messages {
        let message = delivered.next().await.unwrap().unwrap();
        let event: StoredEvent = serde_json::from_slice(&message.payload).unwrap();
        if aggregate_type.is_some_and(|t| t != event.aggregate_type) {
            continue;
        }
        seen.entry(event.aggregate_id)
            .or_default()
            .push(event.sequence);
    }
    seen
}

fn relay(app: &TestApp) -> Relay {
    Relay::new(
        app.pool.clone(),
        app.state.js.clone(),
        app.state.events.clone(),
    )
}

#[tokio::test]
async fn an_event_committed_while_the_relay_is_down_arrives_once_it_starts() {
    let mut app = TestApp::spawn_with(no_worker()).await;
    let (_, token) = app.user();
    let (id, _) = app.create_org(&token, "Acme").await;
    assert_eq!(count(&app, UNSENT_ORG_EVENTS).await, 1);
    assert_eq!(
        app.stream_messages().await,
        0,
        "nothing published without a relay"
    );

    app.start_worker();
    app.caught_up().await;
    assert_eq!(app.stream_messages().await, 1 + KEYRING_EVENTS);
    assert_eq!(
        count(&app, "SELECT count(*) FROM rm_organizations").await,
        1
    );
    let row: String = sqlx::query_scalar("SELECT id FROM rm_organizations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(row, id);
}

#[tokio::test]
async fn a_relay_killed_between_publishing_and_moving_its_cursors_causes_no_duplicate() {
    let mut app = TestApp::spawn_with(no_worker()).await;
    let (_, token) = app.user();
    app.create_org(&token, "Acme").await;
    let relay = relay(&app);
    app.state.events.ensure(&app.state.js).await.unwrap();

    // Publish, then die before the cursors move: the transaction never commits.
    let mut tx = app.pool.begin().await.unwrap();
    let claim = relay.claim(&mut tx).await.unwrap();
    relay.publish(&claim.events).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(claim.events.len() as u64, 1 + KEYRING_EVENTS);
    assert_eq!(count(&app, UNSENT_ORG_EVENTS).await, 1);
    assert_eq!(app.stream_messages().await, 1 + KEYRING_EVENTS);

    // The restarted relay publishes the same event again; JetStream drops the duplicate.
    assert_eq!(relay.drain().await.unwrap() as u64, 1 + KEYRING_EVENTS);
    assert_eq!(count(&app, "SELECT count(*) FROM outbox_pending").await, 0);
    assert_eq!(
        app.stream_messages().await,
        1 + KEYRING_EVENTS,
        "de-duplicated on Nats-Msg-Id"
    );

    app.start_worker();
    app.caught_up().await;
    assert_eq!(
        count(&app, "SELECT count(*) FROM rm_organizations").await,
        1
    );
    assert_eq!(count(&app, "SELECT count(*) FROM rm_audit_events").await, 1);
}

/// An append left open: its event has a position, and its transaction holds the event store's
/// ordering lock until it ends.
async fn append_left_open(app: &TestApp, id: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('Organization', $1, 1, 'OrganizationCreated', '1', '{}', '{}')",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx
}

/// A relay's cursor must never pass an event that commits later. Appends are ordered by a
/// lock, so an append that started after another waits for it, and a relay pass in between
/// sees neither.
#[tokio::test]
async fn an_append_committing_late_is_not_passed_by_the_relay() {
    let app = TestApp::spawn_with(no_worker()).await;
    let (_, token) = app.user();
    let relay = relay(&app);
    app.state.events.ensure(&app.state.js).await.unwrap();
    assert_eq!(relay.drain().await.unwrap() as u64, KEYRING_EVENTS);

    // A slow writer: its event has a position, its transaction is still open.
    let slow = append_left_open(&app, "org-slow").await;
    // A command meanwhile: it waits for the slow writer instead of committing ahead of it.
    let base = app.base.clone();
    let client = app.client.clone();
    let command = tokio::spawn(async move {
        client
            .post(format!("{base}/api/v1/organizations"))
            .bearer_auth(&token)
            .json(&json!({ "name": "Acme" }))
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !command.is_finished(),
        "the later append waits for the earlier one"
    );
    assert_eq!(
        relay.drain().await.unwrap(),
        0,
        "nothing visible to publish yet"
    );

    slow.commit().await.unwrap();
    assert_eq!(command.await.unwrap(), StatusCode::CREATED);
    assert_eq!(
        relay.drain().await.unwrap(),
        2,
        "both events, in position order"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM outbox_pending").await, 0);
    assert_eq!(app.stream_messages().await, 2 + KEYRING_EVENTS);
}

/// A command that cannot take its turn in the event store within the ordering lock's wait (a
/// transaction left open after appending holds it) answers 503 with `Retry-After` and records
/// nothing; once the lock is free, the same request succeeds.
#[tokio::test]
async fn a_command_held_up_by_an_append_left_open_answers_503_and_records_nothing() {
    let app = TestApp::spawn_with(no_worker()).await;
    let (_, token) = app.user();
    let stuck = append_left_open(&app, "org-stuck").await;
    let create = || {
        app.client
            .post(format!("{}/api/v1/organizations", app.base))
            .bearer_auth(&token)
            .json(&json!({ "name": "Acme" }))
            .send()
    };
    let refused = create().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "busy", "{body}");
    stuck.rollback().await.unwrap();
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE aggregate_type = 'Organization'"
        )
        .await,
        0
    );
    assert_eq!(create().await.unwrap().status(), StatusCode::CREATED);
}

/// A pass that finds nothing to publish lets go of the cursors before it returns, so the next
/// pass (of this relay or another) can take them at once and nothing waits for the poll.
#[tokio::test]
async fn a_pass_with_nothing_to_publish_releases_the_cursors_before_it_returns() {
    let app = TestApp::spawn_with(no_worker()).await;
    let relay = relay(&app);
    app.state.events.ensure(&app.state.js).await.unwrap();
    while relay.drain().await.unwrap() > 0 {}
    let mut other = app.pool.acquire().await.unwrap();
    for _ in 0..20 {
        assert_eq!(relay.drain().await.unwrap(), 0);
        let free: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT 1 FROM outbox_cursors FOR UPDATE NOWAIT) c",
        )
        .fetch_one(&mut *other)
        .await
        .expect("no cursor is still held by the empty pass");
        assert_eq!(free, 8);
    }
}

/// A relay that holds only some partitions, in passes cut short by its batch size, publishes
/// exactly their events and leaves the others' for whoever holds them; nothing is skipped.
#[tokio::test]
async fn a_relay_holding_some_partitions_publishes_theirs_and_leaves_the_rest() {
    let app = TestApp::spawn_with(no_worker()).await;
    let (_, token) = app.user();
    for i in 0..8 {
        let (id, _) = app.create_org(&token, &format!("Org {i}")).await;
        rename(&app, &token, &id, &format!("Org {i} renamed")).await;
    }
    app.state.events.ensure(&app.state.js).await.unwrap();
    let total = count(&app, "SELECT count(*) FROM outbox").await;
    let low = "SELECT count(*) FROM outbox_pending WHERE partition < 4";
    let high = "SELECT count(*) FROM outbox_pending WHERE partition >= 4";
    let (low_before, high_before) = (count(&app, low).await, count(&app, high).await);
    assert!(low_before > 0 && high_before > 0, "events in both halves");

    // Another relay holds partitions 0–3.
    let mut other = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM outbox_cursors WHERE partition < 4 FOR UPDATE")
        .execute(&mut *other)
        .await
        .unwrap();
    let relay = relay(&app).with_batch(3);
    let mut published = 0;
    loop {
        let n = relay.drain().await.unwrap();
        assert!(n <= 3);
        if n == 0 {
            break;
        }
        published += n as i64;
    }
    assert_eq!(published, high_before);
    assert_eq!(count(&app, high).await, 0);
    assert_eq!(
        count(&app, low).await,
        low_before,
        "the held partitions are untouched"
    );

    other.rollback().await.unwrap();
    while relay.drain().await.unwrap() > 0 {}
    assert_eq!(count(&app, "SELECT count(*) FROM outbox_pending").await, 0);
    assert_eq!(app.stream_messages().await, total as u64, "each event once");
    let seen = published_sequences(&app, total as u64, None).await;
    for (id, sequences) in &seen {
        let expected: Vec<i64> = (1..=sequences.len() as i64).collect();
        assert_eq!(sequences, &expected, "{id} in order");
    }
}

#[tokio::test]
async fn redelivered_events_are_applied_once() {
    let mut app = TestApp::spawn_with(no_worker()).await;
    let (_, token) = app.user();
    app.create_org(&token, "Acme").await;
    app.state.events.ensure(&app.state.js).await.unwrap();
    assert_eq!(
        relay(&app).drain().await.unwrap() as u64,
        1 + KEYRING_EVENTS
    );
    // Publish twice more outside the de-duplication path (a new message id), as a redelivery
    // would.
    let events: Vec<StoredEvent> = sqlx::query_as(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at FROM events WHERE aggregate_type = 'Organization'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    for _ in 0..2 {
        let body = serde_json::to_vec(&events[0]).unwrap();
        app.state
            .js
            .publish(app.state.events.subject_for(&events[0]), body.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    assert_eq!(app.stream_messages().await, 3 + KEYRING_EVENTS);
    app.start_worker();
    app.caught_up().await;
    assert_eq!(
        count(&app, "SELECT count(*) FROM rm_organizations").await,
        1
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM rm_organization_members").await,
        1
    );
    assert_eq!(count(&app, "SELECT count(*) FROM rm_audit_events").await, 1);
}

#[tokio::test]
async fn a_rolled_back_command_publishes_nothing() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user();
    let (id, _) = app.create_org(&token, "Acme").await;

    // A transaction that appends and then rolls back leaves no outbox row.
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('Organization', $1, 2, 'OrganizationRenamed', '1', '{\"OrganizationRenamed\":{\"name\":\"Ghost\"}}', '{}')",
    )
    .bind(&id)
    .execute(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM outbox WHERE aggregate_type = 'Organization'"
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap(),
        2
    );
    tx.rollback().await.unwrap();

    // A losing concurrent append (same sequence) fails as a whole.
    let conflict = sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('Organization', $1, 1, 'OrganizationRenamed', '1', '{}', '{}')",
    )
    .bind(&id)
    .execute(&app.pool)
    .await;
    assert!(conflict.is_err());

    // Refused commands record nothing.
    let refused = app
        .delete(&format!("/api/v1/organizations/{id}/users/{user}"), &token)
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);

    let (_, marker) = app.create_org(&token, "Marker").await;
    app.get(&format!("/api/v1/organizations?position={marker}"), &token)
        .await;
    app.caught_up().await;
    let org_events = "SELECT count(*) FROM events WHERE aggregate_type = 'Organization'";
    assert_eq!(count(&app, org_events).await, 2);
    let org_outbox = "SELECT count(*) FROM outbox WHERE aggregate_type = 'Organization'";
    assert_eq!(count(&app, org_outbox).await, 2);
    assert_eq!(
        app.stream_messages().await,
        2 + KEYRING_EVENTS,
        "no phantom event reached JetStream"
    );
    let name: String = sqlx::query_scalar("SELECT name FROM rm_organizations WHERE id = $1")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(name, "Acme");
}

#[tokio::test]
async fn two_workers_keep_each_aggregates_order_and_publish_once() {
    let mut app = TestApp::spawn_with(no_worker()).await;
    app.start_worker();
    app.start_worker();
    let (_, token) = app.user();
    let mut orgs = Vec::new();
    for i in 0..6 {
        orgs.push(app.create_org(&token, &format!("Org {i}")).await.0);
    }
    let renames = orgs.iter().map(|id| {
        let (app, token) = (&app, &token);
        async move {
            for n in 0..12 {
                rename(app, token, id, &format!("{id} v{n}")).await;
            }
        }
    });
    futures::future::join_all(renames).await;
    app.caught_up().await;

    let events = count(
        &app,
        "SELECT count(*) FROM events WHERE aggregate_type = 'Organization'",
    )
    .await;
    assert_eq!(events, 6 * 13);
    assert_eq!(
        app.stream_messages().await,
        events as u64 + KEYRING_EVENTS,
        "each event published exactly once"
    );

    // Read the stream back in order: per aggregate, sequences must be 1, 2, 3, …
    let seen =
        published_sequences(&app, events as u64 + KEYRING_EVENTS, Some("Organization")).await;
    assert_eq!(seen.len(), 6);
    for (id, sequences) in &seen {
        assert_eq!(
            sequences,
            &(1..=13).collect::<Vec<i64>>(),
            "{id} out of order"
        );
    }
    for id in &orgs {
        let name: String = sqlx::query_scalar("SELECT name FROM rm_organizations WHERE id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(name, format!("{id} v11"));
    }
}

async fn snapshot(app: &TestApp, tables: &[&str]) -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    for table in tables {
        let rows: Vec<Value> = sqlx::query_scalar(&format!(
            "SELECT to_jsonb(t) FROM {table} t ORDER BY to_jsonb(t)::text"
        ))
        .fetch_all(&app.pool)
        .await
        .unwrap();
        out.push((table.to_string(), rows));
    }
    out
}

#[tokio::test]
async fn replay_rebuilds_read_models_equal_to_the_live_ones() {
    let app = TestApp::spawn().await;
    let (_, alice) = app.user();
    let (_, bob) = app.user();
    for (token, name) in [(&alice, "Acme"), (&alice, "Globex"), (&bob, "Initech")] {
        let (id, _) = app.create_org(token, name).await;
        app.patch(
            &format!("/api/v1/organizations/{id}"),
            token,
            &json!({ "name": format!("{name} Ltd") }),
        )
        .await;
        app.post(
            &format!("/api/v1/organizations/{id}/users"),
            token,
            &json!({ "email": "ada@example.com" }),
        )
        .await;
        app.post(
            &format!("/api/v1/organizations/{id}/users"),
            token,
            &json!({ "email": "bob@example.com", "role": "admin" }),
        )
        .await;
    }
    // A workspace (the organization records it, the workspace starts with its groups).
    app.caught_up().await;
    let acme: String =
        sqlx::query_scalar("SELECT id FROM rm_organizations WHERE name = 'Acme Ltd'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let workspace = app
        .post(
            &format!("/api/v1/organizations/{acme}/workspaces"),
            &alice,
            &json!({ "name": "Staging", "plan": "starter" }),
        )
        .await;
    assert_eq!(
        workspace.status,
        reqwest::StatusCode::ACCEPTED,
        "{}",
        workspace.text
    );
    // …with a group and a member, a project, a custom role, and both kinds of assignment.
    let ws = workspace.body["id"].as_str().unwrap().to_owned();
    app.caught_up().await;
    let created = |reply: hexabase_it::spine::Reply| {
        assert_eq!(reply.status, reqwest::StatusCode::CREATED, "{}", reply.text);
        reply.body["id"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let ops = created(
        app.post(
            &format!("/api/v1/workspaces/{ws}/groups"),
            &alice,
            &json!({ "name": "ops" }),
        )
        .await,
    );
    let alice_id = app.tokens().verify(&alice).unwrap().user;
    created(
        app.post(
            &format!("/api/v1/workspaces/{ws}/groups/{ops}/members"),
            &alice,
            &json!({ "user_id": alice_id.as_str() }),
        )
        .await,
    );
    let project = created(
        app.post(
            &format!("/api/v1/workspaces/{ws}/projects"),
            &alice,
            &json!({ "name": "web" }),
        )
        .await,
    );
    app.caught_up().await;
    let role = created(
        app.post(
            &format!("/api/v1/projects/{project}/roles"),
            &alice,
            &json!({ "name": "pod-reader", "rules": [
                { "api_groups": [""], "resources": ["pods"], "verbs": ["get"] }
            ] }),
        )
        .await,
    );
    created(
        app.post(
            &format!("/api/v1/projects/{project}/roleassignments"),
            &alice,
            &json!({ "group_id": ops, "role": role }),
        )
        .await,
    );
    created(
        app.post(
            &format!("/api/v1/workspaces/{ws}/clusterroleassignments"),
            &alice,
            &json!({ "group_id": ops, "cluster_role": "view" }),
        )
        .await,
    );
    // A user who signed in, logged in again and linked a second identity.
    let user = hexabase_command::UserId::generate();
    let profile = |provider: &str| hexabase_command::user::ExternalProfile {
        identity: hexabase_command::user::Identity {
            provider: provider.into(),
            subject: "42".into(),
        },
        email: Some(hexabase_command::values::Email::parse("email", "ada@example.com").unwrap()),
        email_verified: true,
        display_name: Some("Ada".into()),
    };
    for command in [
        hexabase_command::user::UserCommand::Register {
            id: user.clone(),
            profile: profile("dex"),
        },
        hexabase_command::user::UserCommand::RecordLogin {
            profile: profile("dex"),
        },
        hexabase_command::user::UserCommand::LinkIdentity {
            profile: profile("github"),
        },
    ] {
        let metadata = hexabase_command::CommandMetadata::for_request(user.clone(), "it".into());
        app.state
            .users
            .execute_with_metadata(user.as_str(), command, metadata.into_map())
            .await
            .unwrap();
    }
    // Dedicated nodes, as the node saga records them (this control plane has no host).
    let (alice_id, _) = app.user();
    let request = hexabase_command::NodeRequestId::generate();
    for command in [
        WorkspaceCommand::RequestDedicatedNodes {
            request: request.clone(),
            count: 2,
            max: 10,
            actor: alice_id.clone(),
        },
        WorkspaceCommand::AssignDedicatedNodes {
            request,
            nodes: vec!["node-a".into(), "node-b".into()],
        },
        WorkspaceCommand::ReleaseDedicatedNode {
            node: "node-b".into(),
            actor: alice_id.clone(),
        },
    ] {
        let metadata =
            hexabase_command::CommandMetadata::for_request(alice_id.clone(), "it".into());
        app.state
            .workspaces
            .execute_with_metadata(&ws, command, metadata.into_map())
            .await
            .unwrap();
    }
    // Billing, as its sagas record it from Stripe: a customer, a subscription, a failed payment.
    {
        use hexabase_command::organization::{
            OrganizationCommand, PaymentState, SubscriptionState,
        };
        let now = chrono::Utc::now();
        for command in [
            OrganizationCommand::RecordBillingCustomer {
                customer_id: "cus_replay".into(),
            },
            OrganizationCommand::SyncSubscription {
                subscription: SubscriptionState {
                    id: "sub_replay".into(),
                    plan: Some("starter".into()),
                    price_id: Some("price_starter_monthly".into()),
                    status: "active".into(),
                    current_period_end: Some(now.timestamp() + 86_400),
                    cancel_at_period_end: false,
                    as_of: now.timestamp() - 10,
                },
                deleted: false,
                now,
            },
            OrganizationCommand::RecordPayment {
                payment: PaymentState {
                    invoice_id: "in_replay".into(),
                    succeeded: false,
                    as_of: now.timestamp(),
                },
                subscription_id: Some("sub_replay".into()),
                grace_until: now + chrono::Duration::days(7),
            },
        ] {
            let metadata =
                hexabase_command::CommandMetadata::for_saga_caused_by("evt_replay", None);
            app.state
                .organizations
                .execute_with_metadata(&acme, command, metadata)
                .await
                .unwrap();
        }
    }
    // The workspace's sagas (its provisioning fails here: the issuer is not https) have ended,
    // so no event is written while the read models are compared.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let tasks = app
            .get(&format!("/api/v1/workspaces/{ws}/tasks"), &alice)
            .await;
        let items = tasks.body["items"].as_array().cloned().unwrap_or_default();
        let ended = !items.is_empty()
            && items
                .iter()
                .all(|t| t["state"] == "done" || t["state"] == "failed");
        if ended {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", tasks.text);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.caught_up().await;
    for projection in hexabase_projector::all() {
        let live = snapshot(&app, projection.tables()).await;
        assert!(
            live.iter().all(|(_, rows)| !rows.is_empty()),
            "{}: scenario touches every table",
            projection.name()
        );
        // Live, the projection left no checkpoint for aggregates it does not read.
        let foreign: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM projection_offsets \
             WHERE projection = $1 AND aggregate_type <> ALL($2)",
        )
        .bind(projection.name())
        .bind(projection.aggregate_types())
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(foreign, 0, "{}", projection.name());
        let replayed = hexabase_projector::replay(&app.pool, projection.as_ref())
            .await
            .unwrap();
        let read: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = ANY($1)")
                .bind(projection.aggregate_types())
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert!(read > 0);
        assert_eq!(
            replayed,
            read as u64,
            "{} replays its events only",
            projection.name()
        );
        let rebuilt = snapshot(&app, projection.tables()).await;
        assert_eq!(live, rebuilt, "{} differs after replay", projection.name());
    }
    // The live projectors keep working after a replay.
    let (_, position) = app.create_org(&alice, "After").await;
    let list = app
        .get(
            &format!("/api/v1/organizations?position={position}"),
            &alice,
        )
        .await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn verify_names_an_edited_or_deleted_event() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user();
    let (id, _) = app.create_org(&token, "Acme").await;
    for name in ["Acme 2", "Acme 3"] {
        rename(&app, &token, &id, name).await;
    }
    let clean = verify(&app.pool).await.unwrap();
    // The organization and the two signing keyrings.
    assert_eq!((clean.events, clean.aggregates), (3 + KEYRING_EVENTS, 3));
    assert!(clean.violations.is_empty(), "{:?}", clean.violations);

    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_append_only")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE events SET payload = '{\"OrganizationRenamed\":{\"name\":\"Evil\"}}' \
         WHERE aggregate_id = $1 AND sequence = 2",
    )
    .bind(&id)
    .execute(&app.pool)
    .await
    .unwrap();
    let edited = verify(&app.pool).await.unwrap();
    assert_eq!(edited.violations.len(), 1, "{:?}", edited.violations);
    let violation = &edited.violations[0];
    assert_eq!(
        (violation.aggregate_id.as_str(), violation.sequence),
        (id.as_str(), 2)
    );
    assert!(violation.to_string().contains(&id));

    sqlx::query("DELETE FROM events WHERE aggregate_id = $1 AND sequence = 3")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    let deleted = verify(&app.pool).await.unwrap();
    assert!(
        deleted
            .violations
            .iter()
            .any(|v| v.sequence == 3 && v.problem.contains("deleted")),
        "{:?}",
        deleted.violations
    );
}

/// `actor` creates organization `id` through the store, as its command handler does (no HTTP).
async fn create_organization(
    app: &TestApp,
    actor: &hexabase_command::UserId,
    id: &hexabase_command::OrganizationId,
) -> Result<(), cqrs_es::AggregateError<hexabase_command::organization::OrganizationError>> {
    create_organization_in(&app.state, actor, id).await
}

async fn create_organization_in(
    state: &hexabase::app::App,
    actor: &hexabase_command::UserId,
    id: &hexabase_command::OrganizationId,
) -> Result<(), cqrs_es::AggregateError<hexabase_command::organization::OrganizationError>> {
    use hexabase_command::organization::OrganizationCommand;
    use hexabase_command::values::DisplayName;
    use hexabase_command::CommandMetadata;

    let command = OrganizationCommand::CreateOrganization {
        id: id.clone(),
        name: DisplayName::parse("name", "Acme").unwrap(),
        actor: actor.clone(),
    };
    let metadata = CommandMetadata::for_request(actor.clone(), "it".into()).into_map();
    hexabase_command::store::create(
        &state.new_organizations,
        id.as_str(),
        command,
        &(),
        metadata,
    )
    .await
}

/// Creating without reading first is still guarded: an id that already has events is a
/// conflict, and appends arriving together (one statement) each keep their own outcome.
#[tokio::test]
async fn creating_an_existing_aggregate_is_a_conflict_even_in_a_group() {
    use hexabase_command::{OrganizationId, UserId};

    let app = TestApp::spawn_with(no_worker()).await;
    let alice = UserId::generate();
    let taken = OrganizationId::generate();
    create_organization(&app, &alice, &taken).await.unwrap();
    // Many at once, one of them for the taken id: that one fails, the others are recorded.
    let mut ids: Vec<OrganizationId> = (0..20).map(|_| OrganizationId::generate()).collect();
    ids.insert(10, taken.clone());
    let attempts = ids.iter().map(|id| create_organization(&app, &alice, id));
    let outcomes = futures::future::join_all(attempts).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        if i == 10 {
            assert!(
                matches!(outcome, Err(cqrs_es::AggregateError::AggregateConflict)),
                "{outcome:?}"
            );
        } else {
            assert!(outcome.is_ok(), "{outcome:?}");
        }
    }
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE aggregate_type = 'Organization'"
        )
        .await,
        21
    );
}

/// An append conditional on other aggregates (`if_unchanged`) is written only if none of them has
/// had an event since the sequence given: among appends arriving together, those whose reads
/// are stale fail as conflicts and write nothing, the others are recorded.
#[tokio::test]
async fn an_append_conditional_on_what_it_read_is_refused_once_that_moved_on() {
    use hexabase_command::store::{self, ReadAt};
    use hexabase_command::{OrganizationId, UserId};

    let app = TestApp::spawn_with(no_worker()).await;
    let alice = UserId::generate();
    let read = OrganizationId::generate();
    create_organization(&app, &alice, &read).await.unwrap();
    let at = |sequence: i64| {
        vec![ReadAt {
            aggregate_type: "Organization".into(),
            aggregate_id: read.to_string(),
            sequence,
        }]
    };
    // `read` stands at sequence 1: decisions that saw it there are current, those that saw
    // nothing of it (0) are not.
    let ids: Vec<OrganizationId> = (0..20).map(|_| OrganizationId::generate()).collect();
    let attempts = ids.iter().enumerate().map(|(i, id)| {
        let sequence = if i % 4 == 0 { 0 } else { 1 };
        store::if_unchanged(at(sequence), create_organization(&app, &alice, id))
    });
    let outcomes = futures::future::join_all(attempts).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        if i % 4 == 0 {
            assert!(
                matches!(outcome, Err(cqrs_es::AggregateError::AggregateConflict)),
                "{i}: {outcome:?}"
            );
        } else {
            assert!(outcome.is_ok(), "{i}: {outcome:?}");
        }
    }
    let recorded: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE aggregate_type = 'Organization' AND aggregate_id <> $1",
    )
    .bind(read.as_str())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut expected: Vec<String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 != 0)
        .map(|(_, id)| id.to_string())
        .collect();
    let mut recorded = recorded;
    recorded.sort();
    expected.sort();
    assert_eq!(recorded, expected);
    assert_eq!(
        count(&app, "SELECT count(*) FROM outbox_pending").await,
        1 + 15 + KEYRING_EVENTS as i64,
        "an outbox row for each event written, none for the refused"
    );
}

/// A conditional append that has to wait for its turn in the event store (another writer holds
/// the ordering lock) checks what it read only once its turn came: an event the other writer
/// committed meanwhile makes it a conflict, and nothing is appended.
#[tokio::test]
async fn a_conditional_append_sees_what_was_committed_while_it_waited_for_its_turn() {
    use hexabase_command::store::{self, ReadAt};
    use hexabase_command::{OrganizationId, UserId};
    use sqlx::Connection;

    let app = TestApp::spawn_with(no_worker()).await;
    let alice = UserId::generate();
    let read = OrganizationId::generate();
    create_organization(&app, &alice, &read).await.unwrap();

    // Another writer appends an event of `read` and, holding the ordering lock until it
    // commits, keeps every other append waiting.
    let mut other = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
                             payload, metadata) \
         SELECT aggregate_type, aggregate_id, 2, event_type, event_version, payload, metadata \
         FROM events WHERE aggregate_type = 'Organization' AND aggregate_id = $1 AND sequence = 1",
    )
    .bind(read.as_str())
    .execute(&mut *tx)
    .await
    .unwrap();

    // A decision taken from `read` at sequence 1, appended while that writer holds the lock.
    let decided = OrganizationId::generate();
    let append = tokio::spawn({
        let (app_state, alice, decided, read) = (
            app.state.clone(),
            alice.clone(),
            decided.clone(),
            read.clone(),
        );
        async move {
            let at = vec![ReadAt {
                aggregate_type: "Organization".into(),
                aggregate_id: read.to_string(),
                sequence: 1,
            }];
            store::if_unchanged(at, create_organization_in(&app_state, &alice, &decided)).await
        }
    });
    // Its statement is under way and waiting for the lock before the other writer commits.
    let waiting = async {
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event = 'advisory'",
            )
            .fetch_one(&app.pool)
            .await
            .unwrap();
            if n > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("the conditional append waits for the ordering lock");
    tx.commit().await.unwrap();

    let outcome = append.await.unwrap();
    assert!(
        matches!(outcome, Err(cqrs_es::AggregateError::AggregateConflict)),
        "{outcome:?}"
    );
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(decided.as_str())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(written, 0, "nothing appended for the stale decision");
}

/// The apply path on batches as a consumer may deliver them: an aggregate whose first events
/// never arrived, redeliveries inside a batch and across batches, new and known aggregates. The
/// organizations projection applies them in order (fetching what never arrived); the audit
/// projection writes organizations' events by position, each once, in any order.
#[tokio::test]
async fn a_batch_applies_each_event_once_whatever_arrived_before_it() {
    let app = TestApp::spawn_with(no_worker()).await;
    let (_, token) = app.user();
    let (x, _) = app.create_org(&token, "X").await;
    for name in ["X v1", "X v2"] {
        rename(&app, &token, &x, name).await;
    }
    let (y, _) = app.create_org(&token, "Y").await;
    rename(&app, &token, &y, "Y v1").await;
    let (z, _) = app.create_org(&token, "Z").await;
    let event = |id: &str, sequence: i64| {
        let (pool, id) = (app.pool.clone(), id.to_owned());
        async move {
            hexabase_command::store::aggregate_events(
                &pool,
                "Organization",
                &id,
                sequence,
                sequence,
            )
            .await
            .unwrap()
            .remove(0)
        }
    };
    let projections = [
        hexabase_projector::by_name("organizations").unwrap(),
        hexabase_projector::by_name("audit").unwrap(),
    ];
    let apply = |batch: Vec<StoredEvent>| {
        let (pool, projections) = (app.pool.clone(), projections.clone());
        async move {
            let mut outcomes = Vec::new();
            for projection in &projections {
                let mut tx = pool.begin().await.unwrap();
                let outcome = hexabase_projector::apply_batch(projection.as_ref(), &mut tx, &batch)
                    .await
                    .unwrap();
                let applied: Vec<(String, i64)> = outcome
                    .applied
                    .iter()
                    .map(|e| (e.aggregate_id.clone(), e.sequence))
                    .collect();
                outcomes.push((applied, outcome.caught_up, outcome.duplicates));
                tx.commit().await.unwrap();
            }
            // The audit is handed each distinct event of the batch, as delivered.
            let mut delivered: Vec<(String, i64)> = batch
                .iter()
                .map(|e| (e.aggregate_id.clone(), e.sequence))
                .collect();
            delivered.sort();
            delivered.dedup();
            let mut audited = outcomes[1].0.clone();
            audited.sort();
            assert_eq!(audited, delivered, "the audit applies what arrived");
            assert_eq!((outcomes[1].1, outcomes[1].2), (0, 0));
            outcomes.remove(0)
        }
    };
    let name = |id: String| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT name FROM rm_organizations WHERE id = $1")
                .bind(id)
                .fetch_optional(&pool)
                .await
                .unwrap()
        }
    };

    // X's first two events never arrived: they are read from the store. Y's creation twice.
    let (applied, caught_up, duplicates) = apply(vec![
        event(&x, 3).await,
        event(&y, 1).await,
        event(&z, 1).await,
        event(&y, 1).await,
    ])
    .await;
    let mut expected = vec![(x.to_string(), 3), (y.to_string(), 1), (z.to_string(), 1)];
    expected.sort();
    let mut applied_sorted = applied.clone();
    applied_sorted.sort();
    assert_eq!(applied_sorted, expected);
    assert_eq!((caught_up, duplicates), (2, 1));
    assert_eq!(name(x.to_string()).await.as_deref(), Some("X v2"));
    assert_eq!(name(y.to_string()).await.as_deref(), Some("Y"));

    // Y's creation again with its rename; X's second event late; Z again: only the rename is new.
    let (applied, caught_up, duplicates) = apply(vec![
        event(&y, 1).await,
        event(&x, 2).await,
        event(&y, 2).await,
        event(&z, 1).await,
    ])
    .await;
    assert_eq!(applied, vec![(y.to_string(), 2)]);
    assert_eq!((caught_up, duplicates), (0, 3));
    assert_eq!(name(y.to_string()).await.as_deref(), Some("Y v1"));

    // The audit has every event that arrived once; X's first event, which never did, is written
    // when it is delivered (again) at last.
    let audited = || async {
        count(
            &app,
            "SELECT count(*) FROM rm_audit_events WHERE aggregate_type = 'Organization'",
        )
        .await
    };
    assert_eq!(audited().await, 5);
    apply(vec![event(&x, 1).await, event(&x, 3).await]).await;
    assert_eq!(audited().await, 6);
    assert_eq!(
        count(&app, "SELECT count(*) FROM rm_organization_members").await,
        3
    );
    // Every checkpoint at its aggregate's last event; the audit keeps none for organizations.
    let offsets: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT projection, aggregate_id, sequence FROM projection_offsets \
         WHERE aggregate_type = 'Organization' ORDER BY projection, aggregate_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut expected: Vec<(String, String, i64)> =
        vec![(x.to_string(), 3), (y.to_string(), 2), (z.to_string(), 1)]
            .into_iter()
            .map(|(id, s)| ("organizations".to_owned(), id, s))
            .collect();
    expected.sort();
    assert_eq!(offsets, expected);
}

/// The stream's consumers, and the one each projection should have (both sorted).
async fn consumers_and_projections(
    stream: &async_nats::jetstream::stream::Stream,
) -> (Vec<String>, Vec<String>) {
    let mut names: Vec<String> = stream
        .consumer_names()
        .map(|name| name.unwrap())
        .collect()
        .await;
    names.sort();
    let mut expected: Vec<String> = hexabase_projector::all()
        .iter()
        .map(|p| hexabase_projector::consumer_name(p.as_ref()))
        .collect();
    expected.sort();
    (names, expected)
}

/// JetStream hands each projection only the aggregate types it reads: one durable consumer per
/// projection, filtered by their subjects. The one consumer of every subject of the first
/// layout is replaced.
#[tokio::test]
async fn each_projection_receives_only_the_aggregate_types_it_reads() {
    let mut app = TestApp::spawn_with(no_worker()).await;
    let earlier = app.state.events.ensure(&app.state.js).await.unwrap();
    earlier
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("organizations".into()),
            filter_subject: app.state.events.all_subjects(),
            ..Default::default()
        })
        .await
        .unwrap();
    app.start_worker();
    let (_, token) = app.user();
    app.create_org(&token, "Acme").await;
    app.caught_up().await;
    let stream = event_stream(&app).await;
    let (names, expected) = consumers_and_projections(&stream).await;
    assert_eq!(names, expected);
    // The keyrings' events are in the stream too; the organizations projection got only the
    // organization's creation, and the audit projection its three types' subjects.
    let mut consumer: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer("organizations").await.unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.delivered.consumer_sequence, 1);
    assert_eq!(info.num_pending + info.num_ack_pending as u64, 0);
    assert!(app.stream_messages().await > 1);
    let audit: async_nats::jetstream::consumer::PullConsumer =
        stream.get_consumer("audit").await.unwrap();
    let mut filters = audit.cached_info().config.filter_subjects.clone();
    filters.sort();
    assert_eq!(
        filters,
        ["Credential", "Organization", "Workspace"]
            .map(|t| app.state.events.subjects_of(t))
            .to_vec()
    );
}

/// The consumers of the layout before (one per projection and aggregate type) are replaced by
/// one per projection that starts where the slowest of them had everything acknowledged: no
/// event is lost or applied twice, and the stream is not read again from the start.
#[tokio::test]
async fn the_consumers_per_aggregate_type_are_replaced_where_they_had_got_to() {
    use async_nats::jetstream::consumer::{pull, PullConsumer};

    let mut app = TestApp::spawn_with(no_worker()).await;
    let (_, token) = app.user();
    let (first, _) = app.create_org(&token, "First").await;
    let stream = app.state.events.ensure(&app.state.js).await.unwrap();
    while relay(&app).drain().await.unwrap() > 0 {}
    // The earlier layout's consumers of the organizations projection and of the audit: the
    // organizations one has applied and acknowledged the first organization.
    for name in [
        "organizations-Organization",
        "audit-Organization",
        "audit-Workspace",
    ] {
        let aggregate_type = name.split('-').nth(1).unwrap();
        stream
            .create_consumer(pull::Config {
                durable_name: Some(name.into()),
                filter_subject: app.state.events.subjects_of(aggregate_type),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let organizations: PullConsumer = stream
        .get_consumer("organizations-Organization")
        .await
        .unwrap();
    let mut batch = organizations
        .fetch()
        .max_messages(10)
        .messages()
        .await
        .unwrap();
    let message = batch.next().await.unwrap().unwrap();
    let event: StoredEvent = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(event.aggregate_id, first);
    let mut tx = app.pool.begin().await.unwrap();
    let projection = hexabase_projector::by_name("organizations").unwrap();
    hexabase_projector::apply_batch(projection.as_ref(), &mut tx, &[event])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    message.double_ack().await.unwrap();
    let floor =
        |mut c: PullConsumer| async move { c.info().await.unwrap().ack_floor.stream_sequence };
    let acknowledged = floor(organizations).await;
    assert!(acknowledged > 0);

    app.create_org(&token, "Second").await;
    app.start_worker();
    app.caught_up().await;
    let (names, expected) = consumers_and_projections(&stream).await;
    assert_eq!(names, expected, "the per-type consumers are gone");
    // The audit's earlier consumers had acknowledged nothing: its new one starts at the
    // stream's beginning; the organizations one after what its predecessor acknowledged.
    let mut organizations: PullConsumer = stream.get_consumer("organizations").await.unwrap();
    let info = organizations.info().await.unwrap();
    assert_eq!(
        info.config.deliver_policy,
        async_nats::jetstream::consumer::DeliverPolicy::ByStartSequence {
            start_sequence: acknowledged + 1
        }
    );
    assert_eq!(
        info.delivered.consumer_sequence, 1,
        "only the second organization"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_organizations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 2);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM rm_audit_events WHERE aggregate_type = 'Organization'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 2);
}

/// Reading your own write from a read model that applies the aggregate's events by position
/// (the audit, for organizations): the wait ends only once every event of the aggregate up to
/// the one written has been applied, whatever order they were applied in.
#[tokio::test]
async fn reading_your_write_waits_for_every_earlier_event_applied_by_position() {
    let app = TestApp::spawn_with(no_worker()).await;
    let (_, token) = app.user();
    let (org, _) = app.create_org(&token, "Acme").await;
    rename(&app, &token, &org, "Acme Corp").await;
    let history = hexabase_command::store::aggregate_events(&app.pool, "Organization", &org, 1, 2)
        .await
        .unwrap();
    let renamed = history[1].position;
    let audit = hexabase_projector::by_name("audit").unwrap();
    let apply = |event: StoredEvent| {
        let (pool, audit) = (app.pool.clone(), audit.clone());
        async move {
            let mut tx = pool.begin().await.unwrap();
            hexabase_projector::apply_batch(audit.as_ref(), &mut tx, &[event])
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    };
    let wait = || {
        let pool = app.pool.clone();
        async move {
            let soon = tokio::time::Instant::now() + std::time::Duration::from_millis(100);
            hexabase_query::consistency::wait_for(&pool, "audit", renamed, soon).await
        }
    };

    assert!(matches!(
        wait().await,
        Err(hexabase_query::consistency::WaitError::NotYet(p)) if p == renamed
    ));
    // The rename arrives first: the creation is still missing.
    apply(history[1].clone()).await;
    assert!(wait().await.is_err());
    apply(history[0].clone()).await;
    assert_eq!(wait().await.unwrap().position, renamed);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM projection_offsets WHERE projection = 'audit'"
        )
        .await,
        0,
        "no checkpoint for events applied by position"
    );
}
