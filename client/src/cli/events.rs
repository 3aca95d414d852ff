//! `hexabase events`: an organization's event history (its own events and its workspaces'),
//! paged to the end, and with `--follow` polled for new events as they are recorded.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;

use super::connection::{Api, PAGE};
use super::error::{input, CliError};
use super::output::{emit, json_text, or_dash, time, Output};
use super::resolve;
use crate::api::types;

#[derive(Debug, Args)]
pub struct EventsArgs {
    org: String,
    /// Keep polling for new events (one JSON object a line with `-o json`).
    #[arg(long)]
    follow: bool,
    /// Only events of this aggregate type (Organization, Workspace, Credential, …).
    #[arg(long)]
    aggregate_type: Option<String>,
    /// Only events that occurred at or after this time (RFC 3339, e.g. 2025-01-31T12:00:00Z).
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// With --follow: seconds between polls.
    #[arg(long, default_value_t = 2)]
    interval: u64,
}

const HEADER: &str = "POSITION  TIME                  AGGREGATE     ID                                        EVENT                           ACTOR";

fn line(e: &types::AuditEvent) -> String {
    format!(
        "{:<8}  {:<20}  {:<12}  {:<40}  {:<30}  {}\n",
        e.position,
        time(&e.occurred_at),
        e.aggregate_type,
        e.aggregate_id,
        e.event_type,
        or_dash(e.actor.as_deref())
    )
}

pub async fn run(api: &mut Api, args: EventsArgs, output: Output) -> Result<(), CliError> {
    let org = &resolve::organization(api, &args.org).await?;
    let kind: Option<types::ListOrganizationEventsAggregateType> = args
        .aggregate_type
        .as_deref()
        .map(|kind| input("aggregate-type", kind))
        .transpose()?;
    let (kind, since) = (kind.as_ref(), args.since.as_ref());
    let position = api.position();
    type Cursor = types::ListOrganizationEventsCursor;
    let page = |c: crate::api::Client, cursor: Option<Cursor>| async move {
        c.list_organization_events(
            org,
            None,
            kind,
            cursor.as_ref(),
            Some(PAGE),
            // Oldest first: the table reads down in time, and --follow goes on from the end.
            None,
            position,
            since,
            None,
        )
        .await
    };
    if !args.follow {
        let events = api.all(page).await?;
        return match output {
            Output::Json => emit(&json_text(&events)?),
            Output::Table => emit(&format!(
                "{HEADER}\n{}",
                events.iter().map(line).collect::<String>()
            )),
        };
    }
    if output == Output::Table {
        emit(&format!("{HEADER}\n"))?;
    }
    let mut cursor: Option<String> = None;
    loop {
        let after: Option<Cursor> = cursor.as_deref().map(|c| input("cursor", c)).transpose()?;
        let answer = api.call(|c| page(c, after.clone())).await?;
        for event in &answer.items {
            emit(&match output {
                Output::Json => {
                    serde_json::to_string(event).map_err(|e| CliError::Other(e.to_string()))? + "\n"
                }
                Output::Table => line(event),
            })?;
        }
        // The history's cursor is the position of the last event seen (its `position`).
        let last = answer.items.last().map(|e| e.position.to_string());
        match answer.next_cursor {
            Some(next) => cursor = Some(next),
            None => {
                if last.is_some() {
                    cursor = last;
                }
                tokio::time::sleep(Duration::from_secs(args.interval.max(1))).await;
            }
        }
    }
}
