//! Every saga of the control plane, and which events start them: the workspaces' and
//! billing's.

use async_trait::async_trait;
use hexabase_command::store::StoredEvent;
use serde_json::Value;

use crate::billing::{self, BillingTriggers};
use crate::engine::log::NewSaga;
use crate::engine::{Aggregate, Registry, StepError, Triggers};
use crate::workspace::{self, Env, WorkspaceTriggers};

/// Every saga kind the runner knows.
pub fn registry() -> Registry<Env> {
    workspace::registry()
        .with(billing::CreateCustomer)
        .with(billing::ApplyStripeEvent)
        .with(billing::NotifyAdmins)
        .with(billing::SuspendWorkspaces)
        .with(billing::ResumeWorkspaces)
        .with(billing::ApplyPlan)
}

/// The workspaces' triggers and billing's together.
#[derive(Debug, Clone, Copy)]
pub struct ControlPlaneTriggers {
    pub billing: BillingTriggers,
}

impl ControlPlaneTriggers {
    /// `billing_enabled`: billing is configured (organizations get Stripe customers).
    pub fn new(billing_enabled: bool) -> Self {
        Self {
            billing: BillingTriggers {
                enabled: billing_enabled,
            },
        }
    }
}

#[async_trait]
impl Triggers<Env> for ControlPlaneTriggers {
    fn sagas_for(&self, event: &StoredEvent) -> Vec<(&'static str, Value)> {
        let mut sagas = WorkspaceTriggers.sagas_for(event);
        sagas.extend(self.billing.sagas_for(event));
        sagas
    }

    fn subject_for(&self, event: &StoredEvent) -> Option<String> {
        WorkspaceTriggers
            .subject_for(event)
            .or_else(|| self.billing.subject_for(event))
    }

    fn aggregate_of(&self, subject: &str) -> Option<Aggregate> {
        self.billing
            .aggregate_of(subject)
            .or_else(|| WorkspaceTriggers.aggregate_of(subject))
    }

    async fn maintenance(&self, env: &Env, period: i64) -> Result<Vec<NewSaga>, StepError> {
        let mut sagas = WorkspaceTriggers.maintenance(env, period).await?;
        sagas.extend(self.billing.maintenance(env).await?);
        Ok(sagas)
    }
}
