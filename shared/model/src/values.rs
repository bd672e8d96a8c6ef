//! Values parsed at the edge: once a connector holds an `E164` or an `EmailAddress`, the rest of
//! the code can rely on it being well-formed. Each type deserializes through its parser, so an
//! SQS message carrying an invalid value is rejected as a whole instead of spreading it.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Why a value was refused. The message names the rule, never echoes the (possibly personal) value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {rule}")]
pub struct InvalidValue {
    /// What was being parsed (`E.164 phone number`).
    pub kind: &'static str,
    /// The rule the value broke (`must start with '+'`).
    pub rule: &'static str,
}

impl InvalidValue {
    fn new(kind: &'static str, rule: &'static str) -> Self {
        Self { kind, rule }
    }
}

/// Declares a string newtype whose only constructor is `parse`, with serde and JSON Schema wired
/// to that parser.
macro_rules! parsed_string {
    ($(#[$doc:meta])* $name:ident, $kind:literal, schema: $schema:tt) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The parsed value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, InvalidValue> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, InvalidValue> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

parsed_string!(
    /// A phone number in E.164 form: `+`, a non-zero country code digit, 7 to 15 digits in all.
    E164, "E.164 phone number",
    schema: {
        "type": "string",
        "pattern": "^\\+[1-9][0-9]{6,14}$",
        "description": "Phone number in E.164 form"
    }
);

impl E164 {
    /// Parses `+` and digits as they are: no spaces, dashes or national forms.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let invalid = |rule| InvalidValue::new("E.164 phone number", rule);
        let digits = s.strip_prefix('+').ok_or(invalid("must start with '+'"))?;
        if !(7..=15).contains(&digits.len()) {
            return Err(invalid("must have 7 to 15 digits"));
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("must contain only digits after '+'"));
        }
        if digits.starts_with('0') {
            return Err(invalid("country code cannot start with 0"));
        }
        Ok(Self(s.to_owned()))
    }
}

parsed_string!(
    /// A carrier short code (3 to 8 digits), the business side of many SMS programmes.
    ShortCode, "short code",
    schema: { "type": "string", "pattern": "^[0-9]{3,8}$", "description": "SMS short code" }
);

impl ShortCode {
    /// Parses 3 to 8 ASCII digits.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if (3..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue::new("short code", "must be 3 to 8 digits"))
        }
    }
}

parsed_string!(
    /// An email address, normalized to lower case so that one mailbox is one identity.
    EmailAddress, "email address",
    schema: {
        "type": "string",
        "pattern": "^[^@\\s]{1,64}@[^@\\s]+\\.[^@\\s]+$",
        "description": "Email address, lower-cased"
    }
);

impl EmailAddress {
    /// Parses `local@domain`, trimmed, and lower-cases it.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let invalid = |rule| InvalidValue::new("email address", rule);
        let s = s.trim();
        let (local, domain) = s.rsplit_once('@').ok_or(invalid("must contain '@'"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(invalid("local part must be 1 to 64 characters"));
        }
        if domain.len() > 255 || !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(invalid("domain must be a dotted name"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) || local.contains('@') {
            return Err(invalid("must not contain spaces, control characters or a second '@'"));
        }
        Ok(Self(s.to_lowercase()))
    }
}

fn opaque_id(s: &str, kind: &'static str, max: usize) -> Result<String, InvalidValue> {
    if s.is_empty() || s.len() > max {
        return Err(InvalidValue::new(kind, "must be 1 to the maximum length in bytes"));
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(InvalidValue::new(kind, "must not contain spaces or control characters"));
    }
    Ok(s.to_owned())
}

parsed_string!(
    /// The id a provider gave a message (Twilio `MessageSid`, an email `Message-ID`, a Meta `mid`).
    ProviderMessageId, "provider message id",
    schema: { "type": "string", "minLength": 1, "maxLength": 998, "pattern": "^\\S+$" }
);

impl ProviderMessageId {
    /// 998 bytes: the longest header line RFC 5322 allows, so any real Message-ID fits.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        opaque_id(s, "provider message id", 998).map(Self)
    }
}

parsed_string!(
    /// A user id on a messaging platform (a Messenger PSID, an X user id, a chat visitor id).
    PlatformUserId, "platform user id",
    schema: { "type": "string", "minLength": 1, "maxLength": 256, "pattern": "^\\S+$" }
);

impl PlatformUserId {
    /// Parses 1 to 256 bytes without whitespace or control characters.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        opaque_id(s, "platform user id", 256).map(Self)
    }
}

parsed_string!(
    /// The `Idempotency-Key` of a reply: the caller's name for one message, so that a repeated
    /// request answers the message it made the first time instead of making another.
    IdempotencyKey, "idempotency key",
    schema: { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" }
);

impl IdempotencyKey {
    /// Parses 1 to 255 visible ASCII characters (`!` to `~`: no spaces, no control characters).
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue::new(
                "idempotency key",
                "must be 1 to 255 visible ASCII characters",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_1_to_255_visible_ascii() {
        for good in ["a", "compose-01HZY8X-3", &"k".repeat(255), "!~"] {
            assert_eq!(
                IdempotencyKey::parse(good).map(|k| k.as_str().to_owned()),
                Ok(good.to_owned())
            );
        }
        for bad in ["", " ", "has space", "tab\t", "é", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn e164_accepts_valid_numbers_only() {
        assert!(E164::parse("+14155550100").is_ok());
        assert!(E164::parse("+6834002").is_ok());
        for bad in [
            "14155550100",
            "+0155550100",
            "+1415555010x",
            "+123456",
            "+1234567890123456",
            "",
            "+",
        ] {
            assert!(E164::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn email_is_lower_cased_and_checked() {
        let e = EmailAddress::parse(" Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "ada.lovelace@example.com");
        for bad in [
            "ada",
            "@example.com",
            "ada@",
            "ada@localhost",
            "a da@example.com",
            "ada@.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn errors_never_echo_the_value() {
        let err = E164::parse("+1555secret").unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn deserializing_runs_the_parser() {
        assert!(serde_json::from_str::<E164>("\"+14155550100\"").is_ok());
        assert!(serde_json::from_str::<E164>("\"555\"").is_err());
        assert!(serde_json::from_str::<ProviderMessageId>("\"has space\"").is_err());
    }

    #[test]
    fn short_codes() {
        assert!(ShortCode::parse("12345").is_ok());
        assert!(ShortCode::parse("12").is_err());
        assert!(ShortCode::parse("12a45").is_err());
    }
}
