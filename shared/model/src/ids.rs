//! Ids. Deterministic ones: of an interaction (provider retries and queue redeliveries
//! collapse), of a conversation, of a link suggestion. Generated ones, which the store makes
//! and sort by creation time: of a customer, a merge, a ledger entry.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::values::{InvalidValue, ProviderMessageId};
use crate::{Handle, Provider};

/// What every string id has, whatever its grammar: the struct (serde through its parser,
/// `TryFrom<String>`), `as_str`, `String::from`, `Display`, and a JSON Schema of its `pattern`.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $pattern:expr, $description:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The whole id, prefix included.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
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
                    "pattern": $pattern,
                    "description": $description
                })
            }
        }
    };
}

/// Declares an id that is a prefix and 32 lowercase hex digits, with its parser wired to serde
/// and its JSON Schema.
macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal, $description:literal) => {
        string_id!($(#[$doc])* $name, concat!("^", $prefix, "[0-9a-f]{32}$"), $description);

        impl $name {
            const PREFIX: &'static str = $prefix;

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
    };
}

hex_id!(
    /// Deterministic id of an interaction: the same provider message received at the same
    /// business endpoint always gets the same id, so webhook retries and queue redeliveries
    /// collapse.
    InteractionId, "ix_", "interaction id", "Derived from (provider, business endpoint, provider message id)"
);

impl InteractionId {
    /// The id of the message `message_id` that `provider` delivered for `business_endpoint`.
    pub fn derive(provider: Provider, business_endpoint: &Handle, message_id: &ProviderMessageId) -> Self {
        Self::of_parts(&[provider.as_str(), &business_endpoint.key(), message_id.as_str()])
    }
}

impl InteractionId {
    /// The id of the reply a caller asked for on `customer`'s timeline under `key`: the same
    /// request made twice names the same message. Its own input domain (`outbound`), so it can
    /// never equal the id of a message a provider delivered.
    pub fn outbound(customer: &CustomerId, key: &crate::IdempotencyKey) -> Self {
        Self::of_parts(&["outbound", customer.as_str(), key.as_str()])
    }

    /// The first 128 bits of SHA-256 over length-prefixed `parts`: no two different lists of
    /// parts hash the same input.
    fn of_parts(parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
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

    /// The interaction this conversation is named after: the one that opened it (or, for a
    /// conversation split off, the one it was split at).
    pub fn opener(&self) -> InteractionId {
        InteractionId(format!("{}{}", InteractionId::PREFIX, self.hex()))
    }
}

hex_id!(
    /// A link suggestion: `sg_` and 32 hex digits of its (claimant, owner, identifier), so the
    /// same claim suggests the same link once.
    SuggestionId, "sg_", "suggestion id",
    "Derived from the claimant, the owner and the identifier claimed"
);

impl SuggestionId {
    /// The id of the suggestion that `claimant`, who claimed `identifier` (a `Handle::key`), may be
    /// `owner`, who holds it. The order matters: swapping the two is another suggestion.
    pub fn derive(claimant: &CustomerId, owner: &CustomerId, identifier: &str) -> Self {
        let mut hasher = Sha256::new();
        for part in [claimant.as_str(), owner.as_str(), identifier] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let hex: String = hasher.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect();
        Self(format!("{}{hex}", Self::PREFIX))
    }
}

/// Declares an id the store generates: a prefix and a lowercase ULID, so that ids sort by
/// creation time; `parse` (and serde, and the JSON Schema) accept exactly that.
macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $rule:literal) => {
        string_id!($(#[$doc])* $name, concat!("^", $prefix, "[0-7][0-9a-hjkmnp-tv-z]{25}$"), $rule);

        impl $name {
            const PREFIX: &'static str = $prefix;

            /// A new id, of now.
            pub fn generate() -> Self {
                Self(format!("{}{}", Self::PREFIX, ulid::Ulid::new().to_string().to_lowercase()))
            }

            /// Parses an id from outside (an API path or body, a stored item).
            pub fn parse(id: &str) -> Option<Self> {
                let ulid = id.strip_prefix(Self::PREFIX)?;
                // Crockford base32 as the generator writes it: lowercase, no i, l, o or u, the
                // first digit at most 7 (128 bits).
                let canonical = ulid.len() == 26
                    && ulid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'h' | b'j' | b'k' | b'm' | b'n' | b'p'..=b't' | b'v'..=b'z'))
                    && ulid.as_bytes()[0] <= b'7';
                canonical.then(|| Self(id.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(id: String) -> Result<Self, String> {
                Self::parse(&id).ok_or_else(|| $rule.to_owned())
            }
        }
    };
}

ulid_id!(
    /// A customer: one person as one channel knows them (merges group customers).
    CustomerId, "cus_", "a customer id is 'cus_' and a lowercase ULID"
);
ulid_id!(
    /// A merge of two customers' groups, which unmerge names.
    MergeId, "mg_", "a merge id is 'mg_' and a lowercase ULID"
);
ulid_id!(
    /// A fact of the ledger.
    LedgerEntryId, "lg_", "a ledger entry id is 'lg_' and a lowercase ULID"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbound_id_is_the_same_for_the_same_customer_and_key_only() {
        let key = |k: &str| crate::IdempotencyKey::parse(k).unwrap();
        let (ada, bob) = (CustomerId::generate(), CustomerId::generate());
        let id = InteractionId::outbound(&ada, &key("compose-1"));
        assert_eq!(id, InteractionId::outbound(&ada, &key("compose-1")));
        assert_ne!(id, InteractionId::outbound(&ada, &key("compose-2")));
        assert_ne!(id, InteractionId::outbound(&bob, &key("compose-1")));
        assert!(InteractionId::try_from(id.to_string()).is_ok());
    }

    #[test]
    fn generated_ids_parse_and_sort_by_creation_and_others_do_not_parse() {
        let first = CustomerId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = CustomerId::generate();
        assert!(first < second, "ULIDs sort by time");
        assert_eq!(CustomerId::parse(first.as_str()), Some(first.clone()));
        assert_eq!(MergeId::parse(first.as_str()), None, "the prefix names the kind");
        for bad in [
            "cus_",
            "cus_01JB2K8Z7M3Q4R5S6T7V8W9X0Y",
            "cus_01jb2k8z7m3q4r5s6t7v8w9x0",
            "cus_01jb2k8z7m3q4r5s6t7v8w9x0y!",
            "cus_01jb2k8z7m3q4r5s6t7v8w9x0u",
            "cus_81jb2k8z7m3q4r5s6t7v8w9x0y",
        ] {
            assert_eq!(CustomerId::parse(bad), None, "{bad}");
        }
        let id: LedgerEntryId = serde_json::from_str(&format!("\"{}\"", LedgerEntryId::generate())).unwrap();
        assert!(id.as_str().starts_with("lg_"));
        assert!(serde_json::from_str::<MergeId>("\"mg_x\"").is_err());
    }

    #[test]
    fn a_suggestion_id_is_the_same_for_the_same_claim_only() {
        let (a, b) = (CustomerId::generate(), CustomerId::generate());
        let id = SuggestionId::derive(&a, &b, "email:ada@example.com");
        assert_eq!(id, SuggestionId::derive(&a, &b, "email:ada@example.com"));
        assert_ne!(id, SuggestionId::derive(&b, &a, "email:ada@example.com"));
        assert_ne!(id, SuggestionId::derive(&a, &b, "email:bob@example.com"));
        assert_eq!(SuggestionId::try_from(id.to_string()), Ok(id));
    }
}
