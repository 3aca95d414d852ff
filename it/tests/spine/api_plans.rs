//! The plan catalogue: built-in plans, plans added by configuration, withdrawn plans.

use hexabase::config::Settings;
use hexabase::server::HttpServer;
use hexabase_it::{TestApp, TestAppOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn ids(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn signed_in_users_read_the_built_in_plans() {
    let app = TestApp::spawn_with(TestAppOptions {
        worker: false,
        ..TestAppOptions::default()
    })
    .await;
    let (_, token) = app.user();

    let list = app.get("/api/v1/plans", &token).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(ids(&list.body), ["enterprise", "starter", "team"]);
    let team = json!({
        "id": "team",
        "name": "Team",
        "price_id": "price_team_monthly",
        "max_projects": 25,
        "dedicated_nodes": false,
        "max_dedicated_nodes": 0,
        "quota": {
            "cpu": "16",
            "memory": "64Gi",
            "storage": "500Gi",
            "pods": 300,
            "services": 100,
            "persistent_volume_claims": 50
        },
        "available": true
    });
    assert_eq!(list.body["items"][2], team);

    let one = app.get("/api/v1/plans/team", &token).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(one.body, team);

    let unknown = app.get("/api/v1/plans/platinum", &token).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
    assert_eq!(unknown.body["code"], "not_found");

    for path in ["/api/v1/plans", "/api/v1/plans/team"] {
        let anonymous = app.request(Method::GET, path, None, None).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(anonymous.body["code"], "unauthorized", "{}", anonymous.text);
    }
}

#[tokio::test]
async fn configured_plans_add_to_the_catalogue_and_withdrawn_ones_leave_the_list() {
    // As an operator would write it: a new plan, and a built-in one withdrawn by one key.
    let dir = std::env::temp_dir().join(format!("hxb-plans-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hexabase.toml");
    std::fs::write(
        &file,
        r#"
[plans.gold]
name = "Gold"
price_id = "price_gold_yearly"
max_projects = 50
dedicated_nodes = true
quota = { cpu = "32", memory = "128Gi", storage = "1Ti", pods = 600, services = 200, persistent_volume_claims = 100 }

[plans.starter]
available = false
"#,
    )
    .unwrap();
    let plans = Settings::load(Some(&file)).unwrap().plans;
    std::fs::remove_dir_all(&dir).unwrap();

    let server = HttpServer::bind("127.0.0.1:0").await.unwrap();
    let options = TestAppOptions {
        worker: false,
        ..TestAppOptions::default()
    };
    let app = TestApp::spawn_on(server, options, |settings| settings.plans = plans).await;
    let (_, token) = app.user();

    let list = app.get("/api/v1/plans", &token).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(ids(&list.body), ["enterprise", "gold", "team"]);
    assert_eq!(list.body["items"][1]["name"], "Gold");
    assert_eq!(list.body["items"][1]["dedicated_nodes"], true);
    assert_eq!(list.body["items"][1]["quota"]["memory"], "128Gi");

    let withdrawn = app.get("/api/v1/plans/starter", &token).await;
    assert_eq!(withdrawn.status, StatusCode::OK, "{}", withdrawn.text);
    assert_eq!(withdrawn.body["available"], false);
    assert_eq!(
        withdrawn.body["name"], "Starter",
        "the other keys stay built in"
    );
    assert_eq!(withdrawn.body["max_projects"], 5);
}
