//! The plan catalogue, from configuration (`plans.<id>`): what a workspace may use and is
//! billed for. A withdrawn plan (`available = false`) is no longer offered but stays readable,
//! since workspaces keep it.

use super::App;
use crate::config::PlanSettings;
use crate::error::{Error, Result};

impl App {
    /// The plans new workspaces may choose, by id.
    pub fn available_plans(&self) -> impl Iterator<Item = (&str, &PlanSettings)> {
        self.settings
            .plans
            .iter()
            .filter(|(_, plan)| plan.available)
            .map(|(id, plan)| (id.as_str(), plan))
    }

    /// One plan, withdrawn or not.
    pub fn plan(&self, id: &str) -> Result<&PlanSettings> {
        self.settings
            .plans
            .get(id)
            .ok_or_else(|| Error::not_found("plan not found"))
    }

    /// `id` if it is a plan new workspaces may choose: a plan that does not exist is not found
    /// (404), like any other id that names nothing; one no longer offered is refused (422).
    pub(super) fn available_plan(&self, id: &str) -> Result<String> {
        match self.settings.plans.get(id) {
            Some(plan) if plan.available => Ok(id.to_owned()),
            None => Err(Error::not_found(format!(
                "there is no plan `{id}` (see GET /api/v1/plans)"
            ))),
            Some(_) => Err(Error::invalid(
                "plan",
                format!("`{id}` is not an available plan (see GET /api/v1/plans)"),
            )),
        }
    }
}
