//! `/api/v1/plans`: the plan catalogue, read from configuration (`plans.<id>`). Withdrawn plans
//! (`available = false`) leave the list but stay readable by id, since workspaces keep them.

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::context::Ctx;
use super::error::ApiResult;
use super::security::SignedIn;
use crate::config::{PlanSettings, QuotaSettings};

#[derive(Tags)]
enum ApiTags {
    /// Plans: what a workspace is billed for and may use.
    Plans,
}

/// The resource quota of a workspace on the plan, in Kubernetes quantities.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Quota {
    pub cpu: String,
    pub memory: String,
    pub storage: String,
    pub pods: u32,
    pub services: u32,
    pub persistent_volume_claims: u32,
}

impl From<&QuotaSettings> for Quota {
    fn from(quota: &QuotaSettings) -> Self {
        Self {
            cpu: quota.cpu.clone(),
            memory: quota.memory.clone(),
            storage: quota.storage.clone(),
            pods: quota.pods,
            services: quota.services,
            persistent_volume_claims: quota.persistent_volume_claims,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// The Stripe price organizations on this plan are billed with; absent for a free plan.
    pub price_id: Option<String>,
    /// Projects (namespaces) a workspace on this plan may have.
    pub max_projects: u32,
    /// Whether workspaces on this plan may have nodes of their own.
    pub dedicated_nodes: bool,
    /// How many dedicated nodes a workspace may have (and have asked for) at once.
    pub max_dedicated_nodes: u32,
    pub quota: Quota,
    /// Whether new workspaces may choose it (false: withdrawn).
    pub available: bool,
}

impl Plan {
    fn new(id: &str, plan: &PlanSettings) -> Self {
        Self {
            id: id.to_owned(),
            name: plan.name.clone(),
            price_id: plan.price_id.clone(),
            max_projects: plan.max_projects,
            dedicated_nodes: plan.dedicated_nodes,
            max_dedicated_nodes: if plan.dedicated_nodes {
                plan.max_dedicated_nodes
            } else {
                0
            },
            quota: (&plan.quota).into(),
            available: plan.available,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PlanList {
    /// The available plans, by id.
    pub items: Vec<Plan>,
}

pub struct PlansApi;

#[OpenApi(prefix_path = "/api/v1")]
impl PlansApi {
    /// The plans new workspaces may choose, by id.
    #[oai(
        path = "/plans",
        method = "get",
        operation_id = "listPlans",
        tag = "ApiTags::Plans"
    )]
    async fn list(&self, _auth: SignedIn, ctx: Ctx) -> ApiResult<Json<PlanList>> {
        let items = ctx
            .app
            .available_plans()
            .map(|(id, plan)| Plan::new(id, plan))
            .collect();
        Ok(Json(PlanList { items }))
    }

    /// One plan, withdrawn or not.
    #[oai(
        path = "/plans/:plan_id",
        method = "get",
        operation_id = "getPlan",
        tag = "ApiTags::Plans"
    )]
    async fn get(
        &self,
        _auth: SignedIn,
        ctx: Ctx,
        #[oai(name = "plan_id")] plan_id: Path<String>,
    ) -> ApiResult<Json<Plan>> {
        Ok(Json(Plan::new(&plan_id, ctx.app.plan(&plan_id)?)))
    }
}
