use serde::{Deserialize, Serialize};

use crate::id::UserId;
use crate::user::Identity;
use crate::values::Email;

/// What an identity provider says about the person behind an identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalProfile {
    pub identity: Identity,
    pub email: Option<Email>,
    /// Whether the provider verified that the person controls `email`.
    pub email_verified: bool,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    /// First login through `profile.identity`.
    Register {
        id: UserId,
        profile: ExternalProfile,
    },
    /// A later login through an identity of this user.
    RecordLogin { profile: ExternalProfile },
    /// The signed-in user adds another identity to their account.
    LinkIdentity { profile: ExternalProfile },
}
