//! Who is at either end of an interaction: a customer's handle or a business endpoint, with the
//! grammar of their keys (`phone:+1…`, `messenger:<page>:<psid>`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::{E164, EmailAddress, InvalidValue, PlatformUserId, ShortCode};

wire_enum! {
    /// A platform on which user ids are only meaningful in a scope (a Messenger PSID within a page).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum Platform {
        /// Facebook Messenger: a customer's id (PSID) is scoped to the page.
        Messenger = "messenger",
        /// Instagram: a customer id is scoped to the business account.
        Instagram = "instagram",
        /// X: user ids are global (no scope).
        X = "x",
        /// Telegram: a user id (global), or a bot named by its username.
        Telegram = "telegram",
        /// The company's web-chat site itself (a business endpoint, scope-less).
        WebChat = "web_chat",
        /// A logged-in web-chat user: the `sub` of a token the company's backend signed.
        WebChatUser = "web_chat_user",
        /// An anonymous web-chat visitor: the widget's browser cookie, which anyone can set. A
        /// namespace of its own, so no visitor id can ever name a logged-in user.
        WebChatVisitor = "web_chat_visitor",
    }
}

/// Who or what is at one end of an interaction: the customer's handle, or the business endpoint
/// (number, mailbox, page, account) that received it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Handle {
    /// A phone number (SMS, WhatsApp).
    Phone {
        /// The number, in E.164 form.
        number: E164,
    },
    /// A carrier short code (SMS).
    ShortCode {
        /// The short code's digits.
        code: ShortCode,
    },
    /// An email address.
    Email {
        /// The address, lower-cased.
        address: EmailAddress,
    },
    /// A user, page, account, bot or site on a messaging platform.
    Platform {
        /// The platform the id belongs to.
        platform: Platform,
        /// The page, account or site the id belongs to, where the platform scopes ids.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<PlatformUserId>,
        /// The platform's id (within `scope`, if any).
        id: PlatformUserId,
    },
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
