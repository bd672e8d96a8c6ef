//! The SQS message body: an interaction, an update to one, a status its provider reported for
//! an outbound message, or the rest of an erasure, with their wire format and its errors.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{CustomerId, Interaction, InteractionUpdate, SCHEMA_VERSION, StatusReport, WatermarkReport};

/// Every SQS message body: an interaction, an update to one
/// (`{"schema_version": 1, "update": {...}}`), a provider's status of an outbound message
/// (`{"schema_version": 1, "delivery_status": {...}}`), a provider's watermark for a customer
/// (`{"schema_version": 1, "delivery_watermark": {...}}`), or the rest of an erasure
/// (`{"schema_version": 1, "erasure": {...}}`).
#[derive(Debug, Clone, PartialEq)]
pub enum QueueMessage {
    /// A new interaction, which is the body as it is.
    Interaction(Box<Interaction>),
    /// A change to an interaction already sent, under `update`.
    Update(InteractionUpdate),
    /// The rest of an erasure, under `erasure`.
    Erasure(ErasureStep),
    /// A status a provider reported for a message it was asked to send, under `delivery_status`.
    Status(StatusReport),
    /// A provider's watermark for a customer, under `delivery_watermark`.
    Watermark(WatermarkReport),
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
struct StatusEnvelope {
    schema_version: u32,
    delivery_status: StatusReport,
}

#[derive(Serialize, Deserialize, JsonSchema)]
struct WatermarkEnvelope {
    schema_version: u32,
    delivery_watermark: WatermarkReport,
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

impl From<StatusReport> for QueueMessage {
    fn from(s: StatusReport) -> Self {
        QueueMessage::Status(s)
    }
}

impl From<WatermarkReport> for QueueMessage {
    fn from(w: WatermarkReport) -> Self {
        QueueMessage::Watermark(w)
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
            QueueMessage::Status(report) => serde_json::to_string(&StatusEnvelope {
                schema_version: SCHEMA_VERSION,
                delivery_status: report.clone(),
            })
            .expect("a status report always serializes"),
            QueueMessage::Watermark(report) => serde_json::to_string(&WatermarkEnvelope {
                schema_version: SCHEMA_VERSION,
                delivery_watermark: report.clone(),
            })
            .expect("a watermark always serializes"),
        }
    }

    /// Parses an SQS body of either kind, refusing versions this code does not understand.
    pub fn from_json(body: &str) -> Result<Self, WireError> {
        #[derive(Deserialize)]
        struct Probe {
            update: Option<serde::de::IgnoredAny>,
            erasure: Option<serde::de::IgnoredAny>,
            delivery_status: Option<serde::de::IgnoredAny>,
            delivery_watermark: Option<serde::de::IgnoredAny>,
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
            Some(Probe {
                delivery_status: Some(_),
                ..
            }) => {
                let envelope: StatusEnvelope = serde_json::from_str(body).map_err(WireError::from_serde)?;
                version(envelope.schema_version)?;
                Ok(QueueMessage::Status(envelope.delivery_status))
            }
            Some(Probe {
                delivery_watermark: Some(_),
                ..
            }) => {
                let envelope: WatermarkEnvelope = serde_json::from_str(body).map_err(WireError::from_serde)?;
                version(envelope.schema_version)?;
                Ok(QueueMessage::Watermark(envelope.delivery_watermark))
            }
            _ => Interaction::from_json(body).map(QueueMessage::from),
        }
    }
}

/// The JSON Schema of an update message.
pub(crate) fn update_json_schema() -> schemars::Schema {
    schemars::schema_for!(UpdateEnvelope)
}

/// The JSON Schema of a status report message.
pub(crate) fn status_json_schema() -> schemars::Schema {
    schemars::schema_for!(StatusEnvelope)
}

/// The JSON Schema of a watermark message.
pub(crate) fn watermark_json_schema() -> schemars::Schema {
    schemars::schema_for!(WatermarkEnvelope)
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
