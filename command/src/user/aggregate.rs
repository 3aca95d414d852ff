use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::{ExternalProfile, Identity, UserCommand, UserEvent};
use crate::id::UserId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user not found")]
    NotFound,
    #[error("user already registered")]
    AlreadyRegistered,
    #[error("{0} does not belong to this user")]
    UnknownIdentity(String),
    #[error("{0} is already linked to this user")]
    AlreadyLinked(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    id: Option<UserId>,
    identities: BTreeSet<Identity>,
    email: Option<String>,
    email_verified: bool,
}

impl User {
    pub fn is_registered(&self) -> bool {
        self.id.is_some()
    }

    /// The email of the most recent login, if its provider verified it.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }

    pub fn identities(&self) -> &BTreeSet<Identity> {
        &self.identities
    }

    fn profile_fields(profile: &ExternalProfile) -> (Option<String>, bool) {
        (
            profile.email.as_ref().map(|e| e.as_str().to_owned()),
            profile.email.is_some() && profile.email_verified,
        )
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "User";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            UserCommand::Register { id, profile } => {
                if self.id.is_some() {
                    return Err(UserError::AlreadyRegistered);
                }
                let (email, email_verified) = Self::profile_fields(&profile);
                UserEvent::UserRegistered {
                    id,
                    identity: profile.identity,
                    email,
                    email_verified,
                    display_name: profile.display_name,
                }
            }
            UserCommand::RecordLogin { profile } => {
                if self.id.is_none() {
                    return Err(UserError::NotFound);
                }
                if !self.identities.contains(&profile.identity) {
                    return Err(UserError::UnknownIdentity(profile.identity.to_string()));
                }
                let (email, email_verified) = Self::profile_fields(&profile);
                UserEvent::UserLoggedIn {
                    identity: profile.identity,
                    email,
                    email_verified,
                    display_name: profile.display_name,
                }
            }
            UserCommand::LinkIdentity { profile } => {
                if self.id.is_none() {
                    return Err(UserError::NotFound);
                }
                if self.identities.contains(&profile.identity) {
                    return Err(UserError::AlreadyLinked(profile.identity.to_string()));
                }
                let (email, email_verified) = Self::profile_fields(&profile);
                UserEvent::IdentityLinked {
                    identity: profile.identity,
                    email,
                    email_verified,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            UserEvent::UserRegistered {
                id,
                identity,
                email,
                email_verified,
                ..
            } => {
                self.id = Some(id);
                self.identities.insert(identity);
                self.email = email;
                self.email_verified = email_verified;
            }
            UserEvent::UserLoggedIn {
                email,
                email_verified,
                ..
            } => {
                self.email = email;
                self.email_verified = email_verified;
            }
            UserEvent::IdentityLinked { identity, .. } => {
                // The account's email stays the one of its logins; linking adds a way in.
                self.identities.insert(identity);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::values::Email;

    type Given = TestFramework<User>;

    fn identity(provider: &str, subject: &str) -> Identity {
        Identity {
            provider: provider.into(),
            subject: subject.into(),
        }
    }

    fn profile(provider: &str, subject: &str, verified: bool) -> ExternalProfile {
        ExternalProfile {
            identity: identity(provider, subject),
            email: Some(Email::parse("email", "Ada@Example.com").unwrap()),
            email_verified: verified,
            display_name: Some("Ada".into()),
        }
    }

    fn registered(id: &UserId) -> UserEvent {
        UserEvent::UserRegistered {
            id: id.clone(),
            identity: identity("google", "1"),
            email: Some("ada@example.com".into()),
            email_verified: true,
            display_name: Some("Ada".into()),
        }
    }

    #[test]
    fn first_login_registers() {
        let id = UserId::generate();
        Given::with(())
            .given_no_previous_events()
            .when(UserCommand::Register {
                id: id.clone(),
                profile: profile("google", "1", true),
            })
            .then_expect_events(vec![registered(&id)]);
    }

    #[test]
    fn registering_twice_is_refused() {
        let id = UserId::generate();
        Given::with(())
            .given(vec![registered(&id)])
            .when(UserCommand::Register {
                id: id.clone(),
                profile: profile("google", "1", true),
            })
            .then_expect_error(UserError::AlreadyRegistered);
    }

    #[test]
    fn a_later_login_records_what_the_provider_says_now() {
        let id = UserId::generate();
        Given::with(())
            .given(vec![registered(&id)])
            .when(UserCommand::RecordLogin {
                profile: profile("google", "1", false),
            })
            .then_expect_events(vec![UserEvent::UserLoggedIn {
                identity: identity("google", "1"),
                email: Some("ada@example.com".into()),
                email_verified: false,
                display_name: Some("Ada".into()),
            }]);
    }

    #[test]
    fn a_login_through_an_identity_of_someone_else_is_refused() {
        let id = UserId::generate();
        Given::with(())
            .given(vec![registered(&id)])
            .when(UserCommand::RecordLogin {
                profile: profile("github", "1", true),
            })
            .then_expect_error(UserError::UnknownIdentity("github:1".into()));
        Given::with(())
            .given_no_previous_events()
            .when(UserCommand::RecordLogin {
                profile: profile("google", "1", true),
            })
            .then_expect_error(UserError::NotFound);
    }

    #[test]
    fn linking_adds_an_identity_once() {
        let id = UserId::generate();
        let linked = UserEvent::IdentityLinked {
            identity: identity("github", "42"),
            email: Some("ada@example.com".into()),
            email_verified: true,
        };
        Given::with(())
            .given(vec![registered(&id)])
            .when(UserCommand::LinkIdentity {
                profile: profile("github", "42", true),
            })
            .then_expect_events(vec![linked.clone()]);
        Given::with(())
            .given(vec![registered(&id), linked])
            .when(UserCommand::LinkIdentity {
                profile: profile("github", "42", true),
            })
            .then_expect_error(UserError::AlreadyLinked("github:42".into()));
    }

    #[test]
    fn an_unverified_email_is_not_a_verified_email() {
        let mut user = User::default();
        user.apply(UserEvent::UserRegistered {
            id: UserId::generate(),
            identity: identity("github", "7"),
            email: Some("ada@example.com".into()),
            email_verified: false,
            display_name: None,
        });
        assert_eq!(user.verified_email(), None);
        user.apply(UserEvent::UserLoggedIn {
            identity: identity("github", "7"),
            email: Some("ada@example.com".into()),
            email_verified: true,
            display_name: None,
        });
        assert_eq!(user.verified_email(), Some("ada@example.com"));
    }
}
