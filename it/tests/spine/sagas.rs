//! The saga runner's share of the work: who gets the task messages, and what becomes of a
//! workspace whose message never arrives.

use std::sync::Arc;

use hexabase::server::HttpServer;
use hexabase_it::{TestApp, TestAppOptions};
use hexabase_sagas::driver::unavailable::Unavailable;
use hexabase_sagas::engine::{Action, Cx, Registry, Runner, Saga, Step, StepFuture};
use hexabase_sagas::workspace::{Env, WorkspaceTriggers, DELETE, PROVISION};
use serde_json::Value;
use tokio::sync::Barrier;
use tokio_util::sync::CancellationToken;

/// An app whose relay and projections run, and no saga runner yet.
async fn app_without_runner(configure: impl FnOnce(&mut hexabase::config::Settings)) -> TestApp {
    let server = HttpServer::bind("127.0.0.1:0").await.expect("bind");
    let options = TestAppOptions {
        worker: false,
        ..TestAppOptions::default()
    };
    let app = TestApp::spawn_on(server, options, configure).await;
    let (state, token) = (app.state.clone(), CancellationToken::new());
    tokio::spawn(async move { hexabase::worker::run_pipeline(state, token).await });
    app
}

async fn tasks(app: &TestApp, ws: &str, token: &str) -> Value {
    app.get(&format!("/api/v1/workspaces/{ws}/tasks"), token)
        .await
        .body
}

#[tokio::test]
async fn a_workspace_whose_task_message_was_lost_is_provisioned_all_the_same() {
    let mut app = app_without_runner(|settings| settings.sagas.ack_wait_secs = 1).await;
    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let ws = app.create_workspace(&admin, &org, "Staging").await;
    app.caught_up().await;

    // Its task message was published; it is lost before any worker takes it.
    let purged = app
        .state
        .js
        .get_stream(&app.settings.sagas.stream)
        .await
        .expect("the task stream")
        .purge()
        .await
        .expect("purge the task stream");
    assert!(purged.purged >= 1, "{purged:?}");
    let link = format!("/api/v1/organizations/{org}/workspaces/{ws}");
    assert_eq!(app.get(&link, &admin).await.body["status"], "Requested");

    // A worker starts: nothing tells it about the workspace but the event store. Provisioning
    // runs (and fails for good here, as this control plane's issuer is plain http).
    app.start_worker();
    app.eventually("the workspace's provisioning to run and fail", || async {
        app.get(&link, &admin).await.body["status"] == "Failed"
    })
    .await;
    let reason = app.get(&link, &admin).await.body["status_reason"].clone();
    assert!(
        reason.as_str().unwrap_or_default().contains("https"),
        "{reason}"
    );
    let tasks_now = tasks(&app, &ws, &admin).await;
    let items = tasks_now["items"].as_array().expect("tasks");
    assert_eq!(items.len(), 1, "{tasks_now}");
    assert_eq!(items[0]["kind"], PROVISION);
    assert_eq!(items[0]["state"], "failed");

    // Deleted, it has a second task: newest first, that one leads, and paging goes back.
    let deleted = app.delete(&link, &admin).await;
    assert!(deleted.status.is_success(), "{}", deleted.text);
    let list = format!("/api/v1/workspaces/{ws}/tasks");
    app.eventually("the delete task to be listed", || async {
        tasks(&app, &ws, &admin).await["items"]
            .as_array()
            .is_some_and(|items| items.len() == 2)
    })
    .await;
    let kinds = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    let oldest = app.get(&list, &admin).await.body;
    assert_eq!(kinds(&oldest), [PROVISION, DELETE]);
    let newest = app
        .get(&format!("{list}?order=newest&limit=1"), &admin)
        .await
        .body;
    assert_eq!(kinds(&newest), [DELETE]);
    let cursor = newest["next_cursor"].as_str().expect("a second page");
    let older = app
        .get(
            &format!("{list}?order=newest&limit=1&cursor={cursor}"),
            &admin,
        )
        .await
        .body;
    assert_eq!(kinds(&older), [PROVISION]);
    assert!(older["next_cursor"].is_null(), "{older}");
}

/// A provisioning saga whose one step ends only once the other workspace's has started too.
struct Together(Arc<Barrier>);

fn action<F>(f: F) -> Action<Env>
where
    F: for<'a> Fn(&'a Cx<'a, Env>) -> StepFuture<'a> + Send + Sync + 'static,
{
    Arc::new(f)
}

impl Saga<Env> for Together {
    fn kind(&self) -> &'static str {
        PROVISION
    }

    fn steps(&self) -> Vec<Step<Env>> {
        let barrier = self.0.clone();
        vec![Step {
            name: "together",
            action: action(move |_| {
                let barrier = barrier.clone();
                Box::pin(async move {
                    barrier.wait().await;
                    Ok(Value::Null)
                })
            }),
            undo: None,
        }]
    }
}

#[tokio::test]
async fn two_workers_each_able_to_run_one_saga_run_two_workspaces_sagas_at_once() {
    let app = app_without_runner(|_| {}).await;
    let together = Arc::new(Barrier::new(2));
    let mut settings = app.settings.sagas.clone();
    settings.concurrency = 1;
    // Long enough that a message left waiting on a busy worker is not delivered again to
    // the idle one before the test gives up: only a message the busy worker never took can
    // reach the other.
    settings.ack_wait_secs = 600;
    let shutdown = CancellationToken::new();
    for _ in 0..2 {
        let driver = Arc::new(Unavailable::new("test", "no clusters here".into()));
        let env = hexabase::worker::saga_env(&app.state, driver).expect("saga environment");
        let runner = Runner::new(
            app.pool.clone(),
            app.state.js.clone(),
            Arc::new(env),
            Registry::default().with(Together(together.clone())),
            Arc::new(WorkspaceTriggers),
            settings.clone(),
        );
        let token = shutdown.clone();
        tokio::spawn(async move { runner.run(token.cancelled_owned()).await });
    }

    let (_, admin) = app.user();
    let (org, _) = app.create_org(&admin, "Acme").await;
    let first = app.create_workspace(&admin, &org, "First").await;
    let second = app.create_workspace(&admin, &org, "Second").await;
    for ws in [&first, &second] {
        app.eventually("both workspaces' provisioning to end", || async {
            tasks(&app, ws, &admin).await["items"][0]["state"] == "done"
        })
        .await;
    }
    shutdown.cancel();
}
