use std::fmt;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::id::UserId;

/// An account at an external identity provider: the provider's configured name and the
/// subject it assigns (OIDC `sub`, GitHub's numeric user id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub provider: String,
    pub subject: String,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.subject)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    UserRegistered {
        id: UserId,
        identity: Identity,
        email: Option<String>,
        email_verified: bool,
        display_name: Option<String>,
    },
    UserLoggedIn {
        identity: Identity,
        email: Option<String>,
        email_verified: bool,
        display_name: Option<String>,
    },
    IdentityLinked {
        identity: Identity,
        email: Option<String>,
        email_verified: bool,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            UserEvent::UserRegistered { .. } => "UserRegistered",
            UserEvent::UserLoggedIn { .. } => "UserLoggedIn",
            UserEvent::IdentityLinked { .. } => "IdentityLinked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
