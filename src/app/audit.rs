//! An organization's event history, for auditors: every event of the organization and of its
//! workspaces (with their groups, projects, roles and assignments), oldest or newest first.

use hexabase_command::policy::OrgAction;
use hexabase_command::OrganizationId;
use hexabase_projector::audit as audit_projection;
use hexabase_query::audit::{self as audit_query, AuditEventRow, AuditFilter};
use hexabase_query::Page;

use super::{App, OpContext, PageRequest};
use crate::error::Result;

impl App {
    /// The organization's history from position `page.after` on (back, newest first), filtered
    /// (admins).
    pub async fn history(
        &self,
        op: &OpContext,
        org: &OrganizationId,
        filter: &AuditFilter,
        page: PageRequest<i64>,
        position: Option<i64>,
    ) -> Result<Page<AuditEventRow>> {
        self.consistent(audit_projection::NAME, Some(org), position)
            .await?;
        self.authorize_org(org, op.user(), OrgAction::ReadHistory)
            .await?;
        Ok(audit_query::history(&self.pool, org, filter, page.after, page.limit).await?)
    }
}
