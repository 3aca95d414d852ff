//! What billing's sagas work with, apart from the rest of their environment.

use std::collections::BTreeMap;

use super::stripe;

/// Where the admins' notifications are published: `user.notification.<user>`.
pub const NOTIFICATION_SUBJECT: &str = "user.notification.";

/// What billing's sagas work with.
#[derive(Clone, Default)]
pub struct BillingEnv {
    /// Stripe, when billing is configured.
    pub stripe: Option<stripe::Stripe>,
    /// How long after a failed payment the workspaces are suspended.
    pub grace: chrono::Duration,
    /// The plan each Stripe price pays for.
    pub plans_by_price: BTreeMap<String, String>,
    /// The JetStream stream notifications are kept in, and the prefix of their subjects
    /// (empty: `user.notification.<user>` as the spec names it).
    pub notification_stream: String,
    pub subject_prefix: String,
}

impl BillingEnv {
    /// The subject of `user`'s notifications.
    pub fn notification_subject(&self, user: &str) -> String {
        if self.subject_prefix.is_empty() {
            format!("{NOTIFICATION_SUBJECT}{user}")
        } else {
            format!("{}.{NOTIFICATION_SUBJECT}{user}", self.subject_prefix)
        }
    }
}
