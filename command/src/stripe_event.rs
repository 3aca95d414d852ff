//! Stripe's webhook deliveries: one small aggregate per Stripe event (its `evt_…` id), so each
//! event is recorded once however often Stripe delivers it, whichever API replica receives it,
//! and auditors can read exactly what Stripe said. What the event means for an organization is
//! worked out afterwards, by the billing saga the recorded event starts.

use std::fmt;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// A Stripe event id: `evt_` and up to 251 letters, digits or `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StripeEventId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Stripe event id (expected `evt_` followed by letters, digits or `_`)")]
pub struct InvalidStripeEventId(pub String);

impl StripeEventId {
    pub const PREFIX: &'static str = "evt_";

    pub fn parse(value: &str) -> Result<Self, InvalidStripeEventId> {
        let valid = value.len() <= 255
            && value.strip_prefix(Self::PREFIX).is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidStripeEventId(value.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StripeEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StripeEventId {
    type Error = InvalidStripeEventId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<StripeEventId> for String {
    fn from(id: StripeEventId) -> String {
        id.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StripeEventCommand {
    /// A delivery whose signature was verified: `object` is the event's `data.object`.
    Receive {
        event_type: String,
        /// When Stripe created the event (Unix seconds).
        created: i64,
        livemode: bool,
        object: serde_json::Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StripeEventEvent {
    StripeEventReceived {
        event_type: String,
        created: i64,
        livemode: bool,
        object: serde_json::Value,
    },
}

impl DomainEvent for StripeEventEvent {
    fn event_type(&self) -> String {
        match self {
            StripeEventEvent::StripeEventReceived { .. } => "StripeEventReceived",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeEventError {
    #[error("this Stripe event was already received")]
    AlreadyReceived,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StripeEvent {
    received: bool,
}

impl Aggregate for StripeEvent {
    const TYPE: &'static str = "StripeEvent";
    type Command = StripeEventCommand;
    type Event = StripeEventEvent;
    type Error = StripeEventError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let StripeEventCommand::Receive {
            event_type,
            created,
            livemode,
            object,
        } = command;
        if self.received {
            return Err(StripeEventError::AlreadyReceived);
        }
        let event = StripeEventEvent::StripeEventReceived {
            event_type,
            created,
            livemode,
            object,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            StripeEventEvent::StripeEventReceived { .. } => self.received = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use serde_json::json;

    use super::*;

    #[test]
    fn stripe_event_ids_are_evt_and_a_plain_suffix() {
        assert!(StripeEventId::parse("evt_1NG8Du2eZvKYlo2CUI79vXWy").is_ok());
        for bad in ["", "evt_", "ev_1", "evt_a.b", "evt_a b", "evt_>"] {
            assert!(StripeEventId::parse(bad).is_err(), "{bad}");
        }
        assert!(StripeEventId::parse(&format!("evt_{}", "a".repeat(252))).is_err());
    }

    #[test]
    fn an_event_is_received_once() {
        let receive = StripeEventCommand::Receive {
            event_type: "invoice.paid".into(),
            created: 1_700_000_000,
            livemode: false,
            object: json!({ "id": "in_1" }),
        };
        let received = StripeEventEvent::StripeEventReceived {
            event_type: "invoice.paid".into(),
            created: 1_700_000_000,
            livemode: false,
            object: json!({ "id": "in_1" }),
        };
        TestFramework::<StripeEvent>::with(())
            .given_no_previous_events()
            .when(receive.clone())
            .then_expect_events(vec![received.clone()]);
        TestFramework::<StripeEvent>::with(())
            .given(vec![received])
            .when(receive)
            .then_expect_error(StripeEventError::AlreadyReceived);
    }
}
