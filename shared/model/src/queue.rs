//! The SQS message body: an interaction, an update to one, or the rest of an erasure, with
//! their wire format and its errors.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{CustomerId, Interaction, InteractionUpdate, SCHEMA_VERSION};

/// Every SQS message body: an interaction, an update to one
/// (`{"schema_version": 1, "update": {...}}`), or the rest of an erasure
/// (`{"schema_version": 1, "erasure": {...}}`).
#[derive(Debug, Clone, PartialEq)]
pub enum QueueMessage {
    /// A new interaction, which is the body as it is.
    Interaction(Box<Interaction>),
    /// A change to an interaction already sent, under `update`.
    Update(InteractionUpdate),
    /// The rest of an erasure, under `erasure`.
    Erasure(ErasureStep),
}

/// An erasure that one step did not finish (a customer with years of history): the writer
/// takes it up where the last step stopped, and queues another step until it is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErasureStep {
    /// The erased customer, any member of its group.
    pub customer_id: CustomerId,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct UpdateEnvelope {
    schema_version: u32,
    update: InteractionUpdate,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct ErasureEnvelope {
    schema_version: u32,
    erasure: ErasureStep,
}

impl From<Interaction> for QueueMessage {
    fn from(i: Interaction) -> Self {
        QueueMessage::Interaction(Box::new(i))
    }
}

impl From<InteractionUpdate> for QueueMessage {
    fn from(u: InteractionUpdate) -> Self {
        QueueMessage::Update(u)
    }
}

impl QueueMessage {
    /// The SQS body, stamped with this build's `SCHEMA_VERSION`.
    pub fn to_json(&self) -> String {
        match self {
            QueueMessage::Interaction(i) => i.to_json(),
            QueueMessage::Update(update) => serde_json::to_string(&UpdateEnvelope {
                schema_version: SCHEMA_VERSION,
                update: update.clone(),
            })
            .expect("an update always serializes"),
            QueueMessage::Erasure(erasure) => serde_json::to_string(&ErasureEnvelope {
                schema_version: SCHEMA_VERSION,
                erasure: erasure.clone(),
            })
            .expect("an erasure step always serializes"),
        }
    }

    /// Parses an SQS body of either kind, refusing versions this code does not understand.
    pub fn from_json(body: &str) -> Result<Self, WireError> {
        #[derive(Deserialize)]
        struct Probe {
            update: Option<serde::de::IgnoredAny>,
            erasure: Option<serde::de::IgnoredAny>,
        }
        let probe = serde_json::from_str::<Probe>(body).ok();
        let version = |v: u32| {
            if v == SCHEMA_VERSION {
                Ok(())
            } else {
                Err(WireError::UnsupportedVersion(v))
            }
        };
        match probe {
            Some(Probe { update: Some(_), .. }) => {
                let envelope: UpdateEnvelope = serde_json::from_str(body).map_err(WireError::from_serde)?;
                version(envelope.schema_version)?;
                Ok(QueueMessage::Update(envelope.update))
            }
            Some(Probe { erasure: Some(_), .. }) => {
                let envelope: ErasureEnvelope = serde_json::from_str(body).map_err(WireError::from_serde)?;
                version(envelope.schema_version)?;
                Ok(QueueMessage::Erasure(envelope.erasure))
            }
            _ => Interaction::from_json(body).map(QueueMessage::from),
        }
    }
}

/// The JSON Schema of an update message.
pub(crate) fn update_json_schema() -> schemars::Schema {
    schemars::schema_for!(UpdateEnvelope)
}

/// The JSON Schema of an erasure step message.
pub(crate) fn erasure_json_schema() -> schemars::Schema {
    schemars::schema_for!(ErasureEnvelope)
}

/// Why an SQS body is not an interaction. Carries positions, never content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not JSON, or not a valid message (a field missing, a value invalid).
    #[error("not a valid interaction ({category} error at line {line}, column {column})")]
    Malformed {
        /// Where the parser stopped: the line, from 1.
        line: usize,
        /// Where the parser stopped: the column, from 1.
        column: usize,
        /// `serde_json`'s category, lower-cased: `io`, `syntax`, `data` or `eof`.
        category: String,
    },
    /// A `schema_version` other than the one this build reads (`SCHEMA_VERSION`).
    #[error("unsupported schema_version {0} (this build reads {SCHEMA_VERSION})")]
    UnsupportedVersion(u32),
}

impl WireError {
    pub(crate) fn from_serde(e: serde_json::Error) -> Self {
        WireError::Malformed {
            line: e.line(),
            column: e.column(),
            category: format!("{:?}", e.classify()).to_lowercase(),
        }
    }
}
