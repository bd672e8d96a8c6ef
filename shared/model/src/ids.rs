//! Deterministic ids: of an interaction (provider retries and queue redeliveries collapse) and
//! of a conversation.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::values::{InvalidValue, ProviderMessageId};
use crate::{Handle, Provider};

/// Declares an id that is a prefix and 32 lowercase hex digits, with its parser wired to serde
/// and its JSON Schema.
macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal, $description:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            const PREFIX: &'static str = $prefix;

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The 32 hex digits.
            pub fn hex(&self) -> &str {
                &self.0[Self::PREFIX.len()..]
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, InvalidValue> {
                let ok = s.strip_prefix(Self::PREFIX).is_some_and(|h| {
                    h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                });
                if ok {
                    Ok(Self(s))
                } else {
                    Err(InvalidValue {
                        kind: $kind,
                        rule: concat!("must be '", $prefix, "' and 32 lowercase hex digits"),
                    })
                }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": concat!("^", $prefix, "[0-9a-f]{32}$"),
                    "description": $description
                })
            }
        }
    };
}

hex_id!(
    /// Deterministic id of an interaction: the same provider message received at the same
    /// business endpoint always gets the same id, so webhook retries and queue redeliveries
    /// collapse.
    InteractionId, "ix_", "interaction id", "Derived from (provider, business endpoint, provider message id)"
);

impl InteractionId {
    pub fn derive(provider: Provider, business_endpoint: &Handle, message_id: &ProviderMessageId) -> Self {
        let mut hasher = Sha256::new();
        // Length-prefixed parts: no two different triples can hash the same input.
        for part in [provider.as_str(), &business_endpoint.key(), message_id.as_str()] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Self(format!("{}{hex}", Self::PREFIX))
    }
}

hex_id!(
    /// A customer conversation: `cv_` and 32 hex digits, those of the interaction that opened it
    /// (or that an agent split it at), so assigning one twice gives the same id.
    ConversationId, "cv_", "conversation id",
    "Assigned by the timeline writer; named after the interaction that opened the conversation"
);

impl ConversationId {
    /// The conversation that `opener` opens.
    pub fn opened_by(opener: &InteractionId) -> Self {
        Self(format!("{}{}", Self::PREFIX, opener.hex()))
    }
}
