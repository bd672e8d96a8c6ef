//! What a rating page link leads to (email and web chat surveys are answered on a page, not by
//! message): the survey's recipient, kept under the survey's id while it takes answers, so that
//! the link itself names nothing but the survey; and the answer a page submission is. Pure.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use throughline_edge::signature::sha256_hex;
use throughline_model::{
    Channel, ConversationId, Direction, Feedback, Handle, Interaction, InteractionKind, NewInteraction, Provider,
    ProviderMessageId,
};

use crate::OpenSurvey;
use crate::survey::LatestMessage;

/// The longest remark the page takes (characters).
pub const MAX_REMARK_CHARS: usize = 2_000;

/// A survey answered on the rating page, as the page needs it: where the survey went (an
/// answer is an interaction from that customer to that endpoint, so the writer finds the
/// customer as for any message), the conversation, the language, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedSurvey {
    /// `survey_id` of the resolution.
    pub id: String,
    pub conversation_id: ConversationId,
    pub channel: Channel,
    pub provider: Provider,
    /// The customer's handle it went to and the company's endpoint it went from.
    pub customer: Handle,
    pub endpoint: Handle,
    /// The customer's locale, for the page's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Answers are taken until then (the link's own expiry).
    pub expires_at: DateTime<Utc>,
}

impl LinkedSurvey {
    /// The page's reference for `survey`, sent in answer to `latest`: only email and web chat
    /// surveys carry a link (other channels are answered by message).
    pub fn of(survey: &OpenSurvey, latest: &LatestMessage) -> Option<Self> {
        matches!(survey.channel, Channel::Email | Channel::Chat).then(|| Self {
            id: survey.id.clone(),
            conversation_id: survey.conversation_id.clone(),
            channel: survey.channel,
            provider: latest.provider,
            customer: latest.customer.clone(),
            endpoint: latest.endpoint.clone(),
            locale: survey.locale.clone(),
            expires_at: survey.expires_at,
        })
    }

    /// The page's submission as the interaction it records: kind `feedback`, from the
    /// customer the survey went to, in the conversation surveyed. `form` is the id of the form
    /// submitted (one per page shown): the same form submitted twice (a double click, a
    /// browser's resend) is the same interaction, recorded once; a form shown again later is
    /// a new answer, and the latest counts.
    pub fn answer(&self, rating: u8, remark: Option<&str>, form: &str, now: DateTime<Utc>) -> Interaction {
        let remark = remark.map(str::trim).filter(|r| !r.is_empty());
        let digest = sha256_hex(
            [self.id.as_str(), form, &rating.to_string(), remark.unwrap_or_default()]
                .join("\0")
                .as_bytes(),
        );
        let message_id = format!("rp_{}", &digest[..40]);
        let mut answer = Interaction::new(NewInteraction {
            channel: self.channel,
            provider: self.provider,
            direction: Direction::Inbound,
            customer: self.customer.clone(),
            business_endpoint: self.endpoint.clone(),
            provider_message_id: ProviderMessageId::parse(&message_id).expect("hex digits are a valid message id"),
            occurred_at: now,
            received_at: now,
        });
        answer.kind = InteractionKind::Feedback;
        answer.conversation_id = Some(self.conversation_id.clone());
        answer.text = remark.map(str::to_owned);
        answer.attributes.insert("via".into(), "rating_page".into());
        answer.feedback = Some(Feedback {
            survey_id: self.id.clone(),
            rating: Some(rating),
            remark: remark.map(str::to_owned),
            replaces: None,
            assignee: None,
        });
        answer
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use throughline_model::{EmailAddress, InteractionId};

    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).unwrap() + TimeDelta::hours(hours)
    }

    fn email(address: &str) -> Handle {
        Handle::Email {
            address: EmailAddress::parse(address).unwrap(),
        }
    }

    fn open(channel: Channel) -> OpenSurvey {
        OpenSurvey {
            id: "sv_0a1b".into(),
            conversation_id: ConversationId::opened_by(
                &InteractionId::try_from(format!("ix_{}", "b".repeat(32))).unwrap(),
            ),
            channel,
            customer: email("ada@example.com").key(),
            endpoint: email("support@acme.example").key(),
            locale: Some("fr-FR".into()),
            sent_at: at(0),
            expires_at: at(24),
            resolved_at: at(0),
            resolved_channel: channel,
            assignee: Some("agent-7".into()),
            reasons: Vec::new(),
            rating: None,
            remarked: false,
        }
    }

    fn latest() -> LatestMessage {
        LatestMessage {
            channel: Channel::Email,
            provider: Provider::Ses,
            endpoint: email("support@acme.example"),
            customer: email("ada@example.com"),
            at: at(-1),
            locale: Some("fr-FR".into()),
            blocked: false,
        }
    }

    #[test]
    fn only_email_and_chat_surveys_have_a_page() {
        let linked = LinkedSurvey::of(&open(Channel::Email), &latest()).unwrap();
        assert_eq!(
            (linked.id.as_str(), linked.provider, linked.expires_at),
            ("sv_0a1b", Provider::Ses, at(24))
        );
        assert!(LinkedSurvey::of(&open(Channel::Chat), &latest()).is_some());
        for channel in [
            Channel::Sms,
            Channel::Whatsapp,
            Channel::Messenger,
            Channel::Telegram,
            Channel::X,
        ] {
            assert_eq!(LinkedSurvey::of(&open(channel), &latest()), None, "{channel:?}");
        }
    }

    #[test]
    fn a_submission_is_feedback_from_the_customer_once_per_form() {
        let linked = LinkedSurvey::of(&open(Channel::Email), &latest()).unwrap();
        let answer = linked.answer(4, Some("  quick and kind "), "01JFORM", at(2));
        assert_eq!(
            (answer.kind, answer.direction, answer.channel),
            (InteractionKind::Feedback, Direction::Inbound, Channel::Email)
        );
        assert_eq!(answer.customer, email("ada@example.com"));
        assert_eq!(answer.business_endpoint, email("support@acme.example"));
        assert_eq!(answer.conversation_id, Some(linked.conversation_id.clone()));
        let feedback = answer.feedback.clone().unwrap();
        assert_eq!(
            (feedback.survey_id.as_str(), feedback.rating, feedback.remark.as_deref()),
            ("sv_0a1b", Some(4), Some("quick and kind"))
        );
        // The same form again (a double click) is the same interaction, whenever it arrives.
        assert_eq!(linked.answer(4, Some("quick and kind"), "01JFORM", at(3)).id, answer.id);
        // Another form, another rating or another remark is another answer.
        assert_ne!(
            linked.answer(4, Some("quick and kind"), "01JOTHER", at(2)).id,
            answer.id
        );
        assert_ne!(linked.answer(5, Some("quick and kind"), "01JFORM", at(2)).id, answer.id);
        assert_ne!(linked.answer(4, None, "01JFORM", at(2)).id, answer.id);
        // A blank remark is none.
        let plain = linked.answer(5, Some("   "), "01JFORM", at(2));
        assert_eq!(plain.feedback.unwrap().remark, None);
        assert_eq!(plain.text, None);
        // Stored as JSON and read back unchanged.
        let stored = serde_json::to_string(&linked).unwrap();
        assert_eq!(serde_json::from_str::<LinkedSurvey>(&stored).unwrap(), linked);
    }
}
