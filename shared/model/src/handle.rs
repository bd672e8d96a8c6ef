//! Who is at either end of an interaction: a customer's handle or a business endpoint, with the
//! grammar of their keys (`phone:+1…`, `messenger:<page>:<psid>`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::{E164, EmailAddress, InvalidValue, PlatformUserId, ShortCode};

/// A platform on which user ids are only meaningful in a scope (a Messenger PSID within a page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Messenger,
    Instagram,
    X,
    Telegram,
    /// The company's web-chat site itself (a business endpoint, scope-less).
    WebChat,
    /// A logged-in web-chat user: the `sub` of a token the company's backend signed.
    WebChatUser,
    /// An anonymous web-chat visitor: the widget's browser cookie, which anyone can set. A
    /// namespace of its own, so no visitor id can ever name a logged-in user.
    WebChatVisitor,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Messenger => "messenger",
            Platform::Instagram => "instagram",
            Platform::X => "x",
            Platform::Telegram => "telegram",
            Platform::WebChat => "web_chat",
            Platform::WebChatUser => "web_chat_user",
            Platform::WebChatVisitor => "web_chat_visitor",
        }
    }
}

/// Who or what is at one end of an interaction: the customer's handle, or the business endpoint
/// (number, mailbox, page, account) that received it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Handle {
    Phone {
        number: E164,
    },
    ShortCode {
        code: ShortCode,
    },
    Email {
        address: EmailAddress,
    },
    Platform {
        platform: Platform,
        /// The page, account or site the id belongs to, where the platform scopes ids.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<PlatformUserId>,
        id: PlatformUserId,
    },
}

impl Platform {
    fn parse(s: &str) -> Option<Self> {
        [
            Platform::Messenger,
            Platform::Instagram,
            Platform::X,
            Platform::Telegram,
            Platform::WebChat,
            Platform::WebChatUser,
            Platform::WebChatVisitor,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

impl Handle {
    /// The handle a key (`Handle::key`) names: how agents and the timeline API name an
    /// identifier (`phone:+14155550100`, `email:ada@example.com`, `messenger:<page>:<psid>`,
    /// `x::<user id>`). Every part is parsed as its type.
    pub fn parse_key(key: &str) -> Result<Self, InvalidValue> {
        let invalid = InvalidValue {
            kind: "identifier",
            rule: "must be phone:<E.164>, shortcode:<digits>, email:<address> or <platform>:<scope>:<id>",
        };
        let (kind, rest) = key.split_once(':').ok_or(invalid.clone())?;
        Ok(match kind {
            "phone" => Handle::Phone {
                number: E164::parse(rest)?,
            },
            "shortcode" => Handle::ShortCode {
                code: ShortCode::parse(rest)?,
            },
            "email" => Handle::Email {
                address: EmailAddress::parse(rest)?,
            },
            platform => {
                let platform = Platform::parse(platform).ok_or(invalid.clone())?;
                let (scope, id) = rest.split_once(':').ok_or(invalid)?;
                Handle::Platform {
                    platform,
                    scope: (!scope.is_empty()).then(|| PlatformUserId::parse(scope)).transpose()?,
                    id: PlatformUserId::parse(id)?,
                }
            }
        })
    }

    /// A stable, unambiguous text key (`phone:+14155550100`), used in storage keys and ids.
    pub fn key(&self) -> String {
        match self {
            Handle::Phone { number } => format!("phone:{number}"),
            Handle::ShortCode { code } => format!("shortcode:{code}"),
            Handle::Email { address } => format!("email:{address}"),
            Handle::Platform {
                platform,
                scope: Some(scope),
                id,
            } => {
                format!("{}:{scope}:{id}", platform.as_str())
            }
            Handle::Platform {
                platform,
                scope: None,
                id,
            } => format!("{}::{id}", platform.as_str()),
        }
    }
}
