//! The interaction: one message on one channel, as every connector hands it to the queue.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::ProviderMessageId;
use crate::{
    Channel, ConversationId, Delivery, Direction, Evidence, Handle, Identity, InteractionId, Provider, SenderCheck,
    WireError,
};

/// Version of the wire format. Additive changes (a new optional field, a new enum variant) keep
/// it; anything that changes the meaning of an existing field raises it.
pub const SCHEMA_VERSION: u32 = 1;

/// What sort of interaction this is, for the agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    /// A private message (SMS, DM, email, chat).
    #[default]
    Message,
    /// A public post addressed to or answering the company (a mention or reply on X).
    PublicPost,
    /// Sent by a machine, not the customer: an auto-reply, a bounce, mailing-list mail. Kept on
    /// the timeline, never part of the customer's conversation (`attributes.automated` says which).
    Automated,
    /// Failed the provider's spam or virus check: recorded, not shown as a customer message.
    Quarantined,
    /// The customer's answer to a satisfaction survey (a rating, a remark): `feedback` says
    /// what it answers. In the conversation surveyed; not a customer message of it (it neither
    /// reopens it nor waits for an answer).
    Feedback,
}

/// A customer's answer to the satisfaction survey sent after a conversation was resolved: on
/// an interaction of kind `feedback` (a message recognized as the answer, or a rating page's
/// submission). The latest rating of a survey counts; the earlier stay on the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Feedback {
    /// The survey answered (`sv_…`): one per resolution.
    pub survey_id: String,
    /// 1 (poor) to 5 (great), when this answer rates; a remark alone does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    /// What the customer said about the service, when this answer says something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    /// The rating this one replaced (the customer changed their answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<u8>,
    /// Who had the conversation when it was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
}

/// An object in S3 that Throughline keeps for an interaction (a raw email).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct StoredObject {
    /// The S3 bucket.
    pub bucket: String,
    /// The object's key in `bucket`.
    pub key: String,
}

/// Where an attachment can be fetched. The bytes never travel through the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AttachmentSource {
    /// A URL at the provider (Twilio media URLs need the account's credentials to fetch).
    Url {
        /// The URL to fetch it from.
        url: String,
    },
    /// A file the provider keeps and hands out by id through its API (Telegram `file_id`,
    /// WhatsApp media id): fetched with the business's credentials when someone opens it.
    ProviderFile {
        /// The provider's id for the file.
        file_id: String,
    },
    /// A part of a raw email kept in S3: the object, and the part's index in its MIME tree.
    MimePart {
        /// The S3 bucket of the raw email.
        bucket: String,
        /// The raw email's key in `bucket`.
        key: String,
        /// The part's index in the parsed message's list of MIME parts.
        part: u32,
    },
}

/// A file that came with an interaction (an image, a document, a voice note), by reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Attachment {
    /// Where to fetch it.
    pub source: AttachmentSource,
    /// The MIME type (`image/jpeg`), when the provider gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The size in bytes, when the provider gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// The file's name as the sender gave it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The MIME `Content-ID`, by which an HTML body shows an inline image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    /// Shown in the body (an inline image) rather than attached.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline: bool,
}

/// What the provider says about the conversation this message belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ThreadHints {
    /// The provider's own thread or conversation id, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_thread_id: Option<String>,
    /// The provider message id this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// The ids of the earlier messages of the thread (an email's `References`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
}

impl ThreadHints {
    /// No hint at all: the field is then left out of the wire.
    pub fn is_empty(&self) -> bool {
        self == &ThreadHints::default()
    }
}

/// One message on one channel, normalized. This is the SQS message body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Interaction {
    /// The wire format's version (`SCHEMA_VERSION`); a reader refuses others.
    pub schema_version: u32,
    /// Derived from (provider, business endpoint, provider message id).
    pub id: InteractionId,
    /// The channel the customer used.
    pub channel: Channel,
    /// The company that delivered the webhook.
    pub provider: Provider,
    /// Whether the customer or the company sent it.
    pub direction: Direction,
    /// Absent in messages written before it existed: those are messages.
    #[serde(default)]
    pub kind: InteractionKind,
    /// The customer's handle on the channel, whichever way the message went.
    pub customer: Handle,
    /// Further identifiers of the customer that came with this interaction, with their evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<Identity>,
    /// The name the provider shows for the customer (WhatsApp profile name), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_display_name: Option<String>,
    /// The company's number, mailbox, page, account, bot or site at the other end.
    pub business_endpoint: Handle,
    /// The provider's id for the message.
    pub provider_message_id: ProviderMessageId,
    /// When the provider says the message was sent; the time the webhook arrived when it says nothing.
    pub occurred_at: DateTime<Utc>,
    /// When the connector received the webhook.
    pub received_at: DateTime<Utc>,
    /// The message's text, as plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The whole text when `text` holds only its new part (an email reply without the quoted
    /// history and signature).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_text: Option<String>,
    /// An email's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// An email's HTML body, as received (not sanitized).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The files that came with the message; their bytes stay where `source` says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// The provider's hints at the thread, read when the conversation is assigned.
    #[serde(default, skip_serializing_if = "ThreadHints::is_empty")]
    pub thread: ThreadHints,
    /// The channel's own check of the sender (email, chat), where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_check: Option<SenderCheck>,
    /// Provider facts worth keeping that have no field of their own (e.g. `from_country`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Set when the customer deleted the message at the provider; the entry stays, marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Set when the customer edited the message at the provider; `text` is then the latest
    /// version and `original_text` the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<DateTime<Utc>>,
    /// The text before the first edit (`None` if there was none, or no edit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_text: Option<String>,
    /// The customer conversation this interaction belongs to, across channels. Connectors leave
    /// it empty; the timeline writer assigns it when it records the interaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    /// The provider's original of this interaction kept in S3 (a raw email, which its
    /// attachments point into): erasing the customer deletes every version of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_object: Option<StoredObject>,
    /// Outbound through the timeline API: who asked for it (the caller's IAM principal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Outbound through the timeline API: where its sending is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Kind `feedback`: the survey it answers, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
}

/// The fields a connector knows; `Interaction::new` derives the id and stamps the version.
#[derive(Debug, Clone)]
pub struct NewInteraction {
    /// `Interaction::channel`.
    pub channel: Channel,
    /// `Interaction::provider`.
    pub provider: Provider,
    /// `Interaction::direction`.
    pub direction: Direction,
    /// `Interaction::customer`.
    pub customer: Handle,
    /// `Interaction::business_endpoint`.
    pub business_endpoint: Handle,
    /// `Interaction::provider_message_id`.
    pub provider_message_id: ProviderMessageId,
    /// `Interaction::occurred_at`.
    pub occurred_at: DateTime<Utc>,
    /// `Interaction::received_at`.
    pub received_at: DateTime<Utc>,
}

impl Interaction {
    /// A `Message` with the connector's fields, its id derived, its version stamped and the rest
    /// empty.
    pub fn new(n: NewInteraction) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            id: InteractionId::derive(n.provider, &n.business_endpoint, &n.provider_message_id),
            channel: n.channel,
            provider: n.provider,
            direction: n.direction,
            kind: InteractionKind::Message,
            customer: n.customer,
            identities: Vec::new(),
            customer_display_name: None,
            business_endpoint: n.business_endpoint,
            provider_message_id: n.provider_message_id,
            occurred_at: n.occurred_at,
            received_at: n.received_at,
            text: None,
            full_text: None,
            subject: None,
            html: None,
            attachments: Vec::new(),
            thread: ThreadHints::default(),
            sender_check: None,
            attributes: BTreeMap::new(),
            deleted_at: None,
            edited_at: None,
            original_text: None,
            conversation_id: None,
            raw_object: None,
            author: None,
            delivery: None,
            feedback: None,
        }
    }

    /// How far the channel itself vouches for `customer`: carriers and platforms deliver the
    /// number or id they saw, while an email's From is only a claim unless the receiving
    /// service checked DKIM and DMARC (`sender_check`).
    pub fn customer_evidence(&self) -> Evidence {
        let checked = match self.sender_check {
            Some(check) => check == SenderCheck::Verified,
            // Queued by an email connector from before `sender_check`: its attribute said so.
            None => self.attributes.get("sender_verified").map(String::as_str) == Some("true"),
        };
        match self.channel {
            Channel::Email if !checked => Evidence::Claimed,
            _ => Evidence::Verified,
        }
    }

    /// The interaction as it reads after an edit made at `at`.
    pub fn apply_edit(&mut self, text: Option<String>, at: DateTime<Utc>) {
        if self.edited_at.is_none() {
            self.original_text = self.text.take();
        }
        self.text = text;
        self.edited_at = Some(at);
    }

    /// Parses an SQS body, refusing versions this code does not understand.
    pub fn from_json(body: &str) -> Result<Self, WireError> {
        let interaction: Interaction = serde_json::from_str(body).map_err(WireError::from_serde)?;
        if interaction.schema_version != SCHEMA_VERSION {
            return Err(WireError::UnsupportedVersion(interaction.schema_version));
        }
        Ok(interaction)
    }

    /// The SQS body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an Interaction always serializes")
    }
}

/// A change to an interaction already sent (the customer deleted or edited it at the provider).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InteractionUpdate {
    /// The interaction changed.
    pub interaction_id: InteractionId,
    /// What changed.
    pub change: Change,
    /// When the provider says the change happened.
    pub at: DateTime<Utc>,
}

/// What the customer did to a message at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Deleted it.
    Deleted,
    /// The message's new text (`None`: the text was removed, e.g. a caption).
    Edited {
        /// The text after the edit.
        text: Option<String>,
    },
}

impl InteractionUpdate {
    /// `interaction_id` was deleted at `at`.
    pub fn deleted(interaction_id: InteractionId, at: DateTime<Utc>) -> Self {
        Self {
            interaction_id,
            change: Change::Deleted,
            at,
        }
    }

    /// `interaction_id` was edited at `at`, to read `text`.
    pub fn edited(interaction_id: InteractionId, text: Option<String>, at: DateTime<Utc>) -> Self {
        Self {
            interaction_id,
            change: Change::Edited { text },
            at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    fn sample() -> Interaction {
        let t = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z").unwrap().to_utc();
        Interaction::new(NewInteraction {
            channel: Channel::Sms,
            provider: Provider::Twilio,
            direction: Direction::Inbound,
            customer: Handle::Phone {
                number: E164::parse("+14155550100").unwrap(),
            },
            business_endpoint: Handle::Phone {
                number: E164::parse("+14155550199").unwrap(),
            },
            provider_message_id: ProviderMessageId::parse("SM0123").unwrap(),
            occurred_at: t,
            received_at: t,
        })
    }

    #[test]
    fn handle_keys_parse_back_to_their_handles() {
        let handles = [
            sample().customer,
            Handle::ShortCode {
                code: ShortCode::parse("12345").unwrap(),
            },
            Handle::Email {
                address: EmailAddress::parse("ada@example.com").unwrap(),
            },
            Handle::Platform {
                platform: Platform::Messenger,
                scope: Some(PlatformUserId::parse("1234").unwrap()),
                id: PlatformUserId::parse("psid:with:colons").unwrap(),
            },
            Handle::Platform {
                platform: Platform::X,
                scope: None,
                id: PlatformUserId::parse("2244994945").unwrap(),
            },
        ];
        for handle in handles {
            assert_eq!(Handle::parse_key(&handle.key()).unwrap(), handle);
        }
        for bad in [
            "",
            "phone",
            "phone:555",
            "fax:+14155550100",
            "messenger:1234",
            "email:nobody",
        ] {
            assert!(Handle::parse_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conversations_are_named_after_their_opener() {
        let opener = sample().id;
        let conversation = ConversationId::opened_by(&opener);
        assert_eq!(&conversation.as_str()[3..], &opener.as_str()[3..]);
        assert!(conversation.as_str().starts_with("cv_"));
        assert!(ConversationId::try_from(conversation.to_string()).is_ok());
        assert!(ConversationId::try_from(opener.to_string()).is_err());
    }

    #[test]
    fn only_a_dkim_and_dmarc_checked_sender_is_verified_evidence() {
        let mut mail = sample();
        mail.channel = Channel::Email;
        assert_eq!(mail.customer_evidence(), Evidence::Claimed);
        mail.sender_check = Some(SenderCheck::Verified);
        assert_eq!(mail.customer_evidence(), Evidence::Verified);
        mail.sender_check = Some(SenderCheck::Unverified);
        assert_eq!(mail.customer_evidence(), Evidence::Claimed);
        assert_eq!(sample().customer_evidence(), Evidence::Verified);
        // A message queued before the field existed says it in its attribute.
        mail.sender_check = None;
        mail.attributes.insert("sender_verified".into(), "true".into());
        assert_eq!(mail.customer_evidence(), Evidence::Verified);
    }

    #[test]
    fn id_depends_on_provider_endpoint_and_message_id_only() {
        let a = sample();
        let mut b = sample();
        b.received_at += chrono::Duration::seconds(30);
        b.text = Some("different".into());
        assert_eq!(a.id, Interaction::new(to_new(&b)).id);

        let other_endpoint = Handle::Phone {
            number: E164::parse("+14155550198").unwrap(),
        };
        let id2 = InteractionId::derive(Provider::Twilio, &other_endpoint, &a.provider_message_id);
        assert_ne!(a.id, id2);
        let id3 = InteractionId::derive(Provider::Meta, &a.business_endpoint, &a.provider_message_id);
        assert_ne!(a.id, id3);
    }

    fn to_new(i: &Interaction) -> NewInteraction {
        NewInteraction {
            channel: i.channel,
            provider: i.provider,
            direction: i.direction,
            customer: i.customer.clone(),
            business_endpoint: i.business_endpoint.clone(),
            provider_message_id: i.provider_message_id.clone(),
            occurred_at: i.occurred_at,
            received_at: i.received_at,
        }
    }

    #[test]
    fn json_round_trip() {
        let mut i = sample();
        i.text = Some("hello".into());
        i.attachments.push(Attachment {
            source: AttachmentSource::Url {
                url: "https://api.twilio.com/m/1".into(),
            },
            content_type: Some("image/jpeg".into()),
            size_bytes: None,
            file_name: None,
            content_id: None,
            inline: false,
        });
        let back = Interaction::from_json(&i.to_json()).unwrap();
        assert_eq!(back, i);
    }

    #[test]
    fn wrong_version_and_bad_values_are_refused() {
        let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        v["schema_version"] = 2.into();
        assert_eq!(
            Interaction::from_json(&v.to_string()),
            Err(WireError::UnsupportedVersion(2))
        );

        let mut v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        v["customer"]["number"] = "0800 SECRET".into();
        let err = Interaction::from_json(&v.to_string()).unwrap_err().to_string();
        assert!(err.contains("data error"), "{err}");
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn queue_messages_of_every_kind_round_trip() {
        let i = sample();
        assert_eq!(
            QueueMessage::from_json(&i.to_json()).unwrap(),
            QueueMessage::from(i.clone())
        );
        let update = InteractionUpdate::deleted(i.id.clone(), i.occurred_at);
        let body = QueueMessage::from(update.clone()).to_json();
        assert!(body.contains("\"update\""), "{body}");
        assert_eq!(QueueMessage::from_json(&body).unwrap(), QueueMessage::Update(update));
        assert!(QueueMessage::from_json(r#"{"schema_version":1,"update":{"interaction_id":"nope"}}"#).is_err());
        let report = crate::StatusReport {
            interaction_id: i.id.clone(),
            event: crate::StatusEvent {
                status: crate::DeliveryStatus::Undelivered,
                at: i.occurred_at,
                source: "twilio_status_callback".into(),
                error: Some(crate::DeliveryError {
                    code: "30003".into(),
                    reason: "the phone was unreachable".into(),
                }),
            },
            recipient: None,
        };
        let body = QueueMessage::from(report.clone()).to_json();
        assert!(body.contains("\"delivery_status\""), "{body}");
        assert_eq!(QueueMessage::from_json(&body).unwrap(), QueueMessage::Status(report));
        assert!(QueueMessage::from_json(r#"{"schema_version":2,"delivery_status":{}}"#).is_err());
        let watermark = crate::WatermarkReport {
            customer: i.customer.clone(),
            status: crate::DeliveryStatus::Read,
            up_to: i.occurred_at,
        };
        let body = QueueMessage::from(watermark.clone()).to_json();
        assert!(body.contains("\"delivery_watermark\""), "{body}");
        assert_eq!(
            QueueMessage::from_json(&body).unwrap(),
            QueueMessage::Watermark(watermark)
        );
        // Bodies written before `kind` existed still read, as messages.
        let mut v: serde_json::Value = serde_json::from_str(&i.to_json()).unwrap();
        v.as_object_mut().unwrap().remove("kind");
        assert_eq!(
            Interaction::from_json(&v.to_string()).unwrap().kind,
            InteractionKind::Message
        );
    }

    #[test]
    fn handle_keys_are_distinct_per_kind() {
        let phone = Handle::Phone {
            number: E164::parse("+14155550100").unwrap(),
        };
        assert_eq!(phone.key(), "phone:+14155550100");
        let psid = Handle::Platform {
            platform: Platform::Messenger,
            scope: Some(PlatformUserId::parse("page1").unwrap()),
            id: PlatformUserId::parse("123").unwrap(),
        };
        assert_eq!(psid.key(), "messenger:page1:123");
    }
}
