//! The SQS message body: an interaction, an update to one, a status or watermark its provider
//! reported for outbound messages, or the rest of an erasure, with their wire format and its
//! errors.

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

/// Declares a message kind's envelope, `{"schema_version": N, "<key>": <body>}`: its type (for
/// the JSON Schema), how it is written with this build's version, and how it is read, refusing
/// other versions.
macro_rules! envelope {
    ($name:ident, $key:ident: $body:ty) => {
        #[derive(Serialize, Deserialize, JsonSchema)]
        struct $name {
            schema_version: u32,
            $key: $body,
        }

        impl $name {
            fn write($key: &$body) -> String {
                serde_json::to_string(&Self {
                    schema_version: SCHEMA_VERSION,
                    $key: $key.clone(),
                })
                .expect("a queue message always serializes")
            }

            fn read(body: &str) -> Result<$body, WireError> {
                let envelope: Self = serde_json::from_str(body).map_err(WireError::from_serde)?;
                if envelope.schema_version != SCHEMA_VERSION {
                    return Err(WireError::UnsupportedVersion(envelope.schema_version));
                }
                Ok(envelope.$key)
            }
        }
    };
}

envelope!(UpdateEnvelope, update: InteractionUpdate);
envelope!(StatusEnvelope, delivery_status: StatusReport);
envelope!(WatermarkEnvelope, delivery_watermark: WatermarkReport);
envelope!(ErasureEnvelope, erasure: ErasureStep);

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
            QueueMessage::Update(update) => UpdateEnvelope::write(update),
            QueueMessage::Erasure(erasure) => ErasureEnvelope::write(erasure),
            QueueMessage::Status(report) => StatusEnvelope::write(report),
            QueueMessage::Watermark(report) => WatermarkEnvelope::write(report),
        }
    }

    /// Parses an SQS body of any kind (told apart by its envelope's key), refusing versions this
    /// code does not understand.
    pub fn from_json(body: &str) -> Result<Self, WireError> {
        #[derive(Deserialize)]
        struct Probe {
            update: Option<serde::de::IgnoredAny>,
            erasure: Option<serde::de::IgnoredAny>,
            delivery_status: Option<serde::de::IgnoredAny>,
            delivery_watermark: Option<serde::de::IgnoredAny>,
        }
        let Ok(probe) = serde_json::from_str::<Probe>(body) else {
            return Interaction::from_json(body).map(QueueMessage::from);
        };
        if probe.update.is_some() {
            UpdateEnvelope::read(body).map(QueueMessage::Update)
        } else if probe.erasure.is_some() {
            ErasureEnvelope::read(body).map(QueueMessage::Erasure)
        } else if probe.delivery_status.is_some() {
            StatusEnvelope::read(body).map(QueueMessage::Status)
        } else if probe.delivery_watermark.is_some() {
            WatermarkEnvelope::read(body).map(QueueMessage::Watermark)
        } else {
            Interaction::from_json(body).map(QueueMessage::from)
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
