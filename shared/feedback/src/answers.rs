//! A survey that is out and taking answers, and which of the customer's messages answer it.
//! Kept on the group's root (one at a time: a later survey replaces it), so the writer, which
//! reads the root for every interaction anyway, recognizes an answer at no extra read. Pure.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use throughline_model::{Channel, ConversationId, Direction, Feedback, Interaction, InteractionKind};

use crate::rating::parse_rating;

/// Where the connectors put a tapped button's payload: Twilio's and WhatsApp Cloud's template
/// buttons, WhatsApp Cloud's interactive replies, Messenger's and Instagram's quick replies.
const PAYLOAD_ATTRIBUTES: [&str; 3] = ["button_payload", "interactive_reply_id", "quick_reply_payload"];

/// A survey sent after a resolution, as the writer needs it to recognize the answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSurvey {
    /// `survey_id` of the resolution.
    pub id: String,
    /// The conversation resolved: answers join it.
    pub conversation_id: ConversationId,
    /// Where it went: answers come back the same way (channel, the customer's handle key, the
    /// company's endpoint key).
    pub channel: Channel,
    pub customer: String,
    pub endpoint: String,
    /// The customer's locale, for rating words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    pub sent_at: DateTime<Utc>,
    /// Answers are taken until then.
    pub expires_at: DateTime<Utc>,
    /// The resolution surveyed, as its rollup cells name it: when, the channel the
    /// conversation opened on, its assignee, its confirmed reasons.
    pub resolved_at: DateTime<Utc>,
    pub resolved_channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The latest rating given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    /// Whether a remark came after a rating (one remark per survey by message).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remarked: bool,
}

impl OpenSurvey {
    /// Whether `at` is within the survey's validity.
    pub fn takes_answers_at(&self, at: DateTime<Utc>) -> bool {
        at >= self.sent_at && at <= self.expires_at
    }

    /// What `interaction` answers, if it is an answer: a customer message from the handle the
    /// survey went to, to the endpoint it came from, within the validity, that is a rating
    /// (a rating again replaces the first), or the first other message after a rating (its
    /// remark). Anything else is an ordinary message and the survey stays open.
    pub fn answer(&self, interaction: &Interaction) -> Option<Feedback> {
        let from_where_it_went = interaction.direction == Direction::Inbound
            && interaction.kind == InteractionKind::Message
            && interaction.channel == self.channel
            && interaction.customer.key() == self.customer
            && interaction.business_endpoint.key() == self.endpoint;
        if !from_where_it_went || !self.takes_answers_at(interaction.occurred_at) {
            return None;
        }
        // A button's payload (`CSAT_4`) is the answer where the survey offered buttons.
        let text = PAYLOAD_ATTRIBUTES
            .iter()
            .find_map(|name| interaction.attributes.get(*name))
            .or(interaction.text.as_ref())?;
        let feedback = |rating: Option<u8>, remark: Option<String>| Feedback {
            survey_id: self.id.clone(),
            rating,
            remark,
            replaces: rating.and(self.rating),
            assignee: self.assignee.clone(),
        };
        match parse_rating(text, self.locale.as_deref()) {
            Some(rating) => Some(feedback(Some(rating.value()), None)),
            None if self.rating.is_some() && !self.remarked && !text.trim().is_empty() => {
                Some(feedback(None, Some(text.trim().to_owned())))
            }
            None => None,
        }
    }

    /// The survey after `feedback` was recorded.
    pub fn answered(&self, feedback: &Feedback) -> OpenSurvey {
        let mut next = self.clone();
        if let Some(rating) = feedback.rating {
            next.rating = Some(rating);
        }
        if feedback.remark.is_some() {
            next.remarked = true;
        }
        next
    }
}

/// An interaction as recorded when it answers a survey, and the survey after it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedAnswer {
    /// Kind `feedback`, with `feedback` set, in the conversation surveyed.
    pub interaction: Interaction,
    /// The group's open survey after this answer (`None`: the answer is to a survey the
    /// group no longer holds: a rating page's answer to a survey a later one replaced).
    pub survey: Option<OpenSurvey>,
}

/// What `interaction` is when the group's open survey is `survey`: `None` for anything that is
/// not an answer (recorded as it came). A message that `OpenSurvey::answer` recognizes becomes
/// a `feedback` interaction; one that came as feedback already (a rating page's) is completed
/// from the survey (the rating it replaces, the assignee, the conversation).
pub fn recorded_answer(survey: Option<&OpenSurvey>, interaction: &Interaction) -> Option<RecordedAnswer> {
    let (feedback, survey) = match &interaction.feedback {
        Some(given) => {
            let survey = survey.filter(|s| s.id == given.survey_id);
            let mut feedback = given.clone();
            if let Some(survey) = survey {
                feedback.replaces = feedback.rating.and(survey.rating);
                feedback.assignee = feedback.assignee.or_else(|| survey.assignee.clone());
            }
            (feedback, survey)
        }
        None => {
            let survey = survey?;
            (survey.answer(interaction)?, Some(survey))
        }
    };
    let mut recorded = interaction.clone();
    recorded.kind = InteractionKind::Feedback;
    if let Some(survey) = survey {
        recorded.conversation_id = Some(survey.conversation_id.clone());
    }
    let after = survey.map(|s| s.answered(&feedback));
    recorded.feedback = Some(feedback);
    Some(RecordedAnswer {
        interaction: recorded,
        survey: after,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use throughline_model::{E164, Handle, InteractionId, NewInteraction, Provider, ProviderMessageId};

    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).unwrap() + TimeDelta::hours(hours)
    }

    fn phone(n: &str) -> Handle {
        Handle::Phone {
            number: E164::parse(n).unwrap(),
        }
    }

    fn survey() -> OpenSurvey {
        OpenSurvey {
            id: "sv_1".into(),
            conversation_id: ConversationId::opened_by(
                &InteractionId::try_from(format!("ix_{}", "a".repeat(32))).unwrap(),
            ),
            channel: Channel::Sms,
            customer: phone("+14155550100").key(),
            endpoint: phone("+14155550199").key(),
            locale: Some("es".into()),
            sent_at: at(0),
            expires_at: at(24),
            resolved_at: at(0),
            resolved_channel: Channel::Whatsapp,
            assignee: Some("agent-7".into()),
            reasons: vec!["delivery/late".into()],
            rating: None,
            remarked: false,
        }
    }

    fn sms(text: &str, hours: i64) -> Interaction {
        let mut sms = Interaction::new(NewInteraction {
            channel: Channel::Sms,
            provider: Provider::Twilio,
            direction: Direction::Inbound,
            customer: phone("+14155550100"),
            business_endpoint: phone("+14155550199"),
            provider_message_id: ProviderMessageId::parse(&format!(
                "SM{hours}{}",
                throughline_edge::signature::sha256_hex(text.as_bytes())
            ))
            .unwrap(),
            occurred_at: at(hours),
            received_at: at(hours),
        });
        sms.text = Some(text.into());
        sms
    }

    #[test]
    fn a_rating_then_a_remark_then_ordinary_messages() {
        let open = survey();
        assert_eq!(
            open.answer(&sms("I still have a question", 1)),
            None,
            "no rating yet: a message"
        );
        let rated = open.answer(&sms("cinco", 1)).unwrap();
        assert_eq!((rated.rating, rated.replaces, &rated.remark), (Some(5), None, &None));
        assert_eq!(rated.assignee.as_deref(), Some("agent-7"));
        let open = open.answered(&rated);
        let remark = open.answer(&sms(" thanks! ", 2)).unwrap();
        assert_eq!((remark.rating, remark.remark.as_deref()), (None, Some("thanks!")));
        let open = open.answered(&remark);
        assert_eq!(open.answer(&sms("one more thing", 3)), None, "one remark");
        let changed = open.answer(&sms("4", 3)).unwrap();
        assert_eq!(
            (changed.rating, changed.replaces),
            (Some(4), Some(5)),
            "the latest counts"
        );
    }

    #[test]
    fn only_from_where_it_went_and_within_its_validity() {
        let open = survey();
        assert_eq!(open.answer(&sms("5", 25)), None, "expired");
        assert_eq!(open.answer(&sms("5", -1)), None, "before it was sent");
        let mut elsewhere = sms("5", 1);
        elsewhere.business_endpoint = phone("+14155550198");
        assert_eq!(open.answer(&elsewhere), None, "another company number");
        let mut whatsapp = sms("5", 1);
        whatsapp.channel = Channel::Whatsapp;
        assert_eq!(open.answer(&whatsapp), None, "another channel");
        let mut echo = sms("5", 1);
        echo.direction = Direction::Outbound;
        assert_eq!(open.answer(&echo), None, "the company's own message");
        let mut button = sms("Great", 1);
        button.attributes.insert("button_payload".into(), "CSAT_4".into());
        assert_eq!(
            open.answer(&button).and_then(|f| f.rating),
            Some(4),
            "a button's payload"
        );
        for attribute in ["interactive_reply_id", "quick_reply_payload"] {
            let mut tapped = sms("4 - Good", 1);
            tapped.attributes.insert(attribute.into(), "CSAT_4".into());
            assert_eq!(open.answer(&tapped).and_then(|f| f.rating), Some(4), "{attribute}");
            tapped.attributes.insert(attribute.into(), "pickup".into());
            assert_eq!(open.answer(&tapped), None, "another button's payload: {attribute}");
        }
    }

    #[test]
    fn an_answer_is_recorded_as_feedback_in_the_conversation_surveyed() {
        let open = survey();
        assert_eq!(recorded_answer(Some(&open), &sms("hello?", 1)), None);
        assert_eq!(recorded_answer(None, &sms("5", 1)), None, "no survey out");
        let answer = recorded_answer(Some(&open), &sms("5", 1)).unwrap();
        assert_eq!(answer.interaction.kind, InteractionKind::Feedback);
        assert_eq!(answer.interaction.conversation_id.as_ref(), Some(&open.conversation_id));
        assert_eq!(
            answer.interaction.text.as_deref(),
            Some("5"),
            "the message stays as sent"
        );
        assert_eq!(answer.survey.as_ref().and_then(|s| s.rating), Some(5));
        // A rating page's answer comes as feedback: completed from the survey it names.
        let mut page = sms("", 2);
        page.text = Some("Quick and kind".into());
        page.feedback = Some(Feedback {
            survey_id: "sv_1".into(),
            rating: Some(3),
            remark: Some("Quick and kind".into()),
            replaces: None,
            assignee: None,
        });
        let after = answer.survey.unwrap();
        let from_page = recorded_answer(Some(&after), &page).unwrap();
        let feedback = from_page.interaction.feedback.unwrap();
        assert_eq!((feedback.rating, feedback.replaces), (Some(3), Some(5)));
        assert_eq!(feedback.assignee.as_deref(), Some("agent-7"));
        let to_another = recorded_answer(Some(&survey()), &{
            let mut other = page.clone();
            other.feedback.as_mut().unwrap().survey_id = "sv_2".into();
            other
        })
        .unwrap();
        assert_eq!(to_another.survey, None, "a survey the group no longer holds");
        assert_eq!(to_another.interaction.feedback.unwrap().replaces, None);
    }
}
