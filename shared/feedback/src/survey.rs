//! Whether, and as what, a satisfaction survey goes out after a resolution: on the channel and
//! endpoint of the conversation's latest customer message, through the outbound pipeline and
//! the same channel rules as any reply (`check_window`, with no human-agent tag: a survey is
//! not an agent's answer). Pure.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use throughline_model::{
    Channel, ConversationId, Handle, OutboundContent, OutboundMessage, Provider, WhatsappTemplate, check_window,
};

use crate::token::FeedbackToken;

/// How long a survey takes answers by default.
pub const DEFAULT_VALIDITY: TimeDelta = TimeDelta::hours(24);

/// The company's survey settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveySettings {
    /// The channels surveys go out on (none: no surveys).
    pub channels: BTreeSet<Channel>,
    /// The question per language (`en` is the fallback): "How did we do? Reply 1 (poor) to 5
    /// (great)."
    pub questions: BTreeMap<String, String>,
    /// The approved WhatsApp template sent when the 24-hour window has closed; without one no
    /// survey goes to WhatsApp then.
    pub whatsapp_template: Option<WhatsappTemplate>,
    /// The rating page's URL, to which the token is appended (`https://…/feedback/`): email and
    /// web chat are answered there.
    pub page_url: Option<String>,
    /// How long answers are taken.
    pub validity: TimeDelta,
}

/// The survey settings document (`SURVEYS`, or the SSM parameter `SURVEYS_PARAMETER` names):
///
/// ```json
/// {"channels": ["sms", "whatsapp", "email", "chat"],
///  "questions": {"en": "How did we do? Reply 1 (poor) to 5 (great).", "es": "…"},
///  "whatsapp_template": {"name": "csat_survey", "language": "en_US"},
///  "page_url": "https://feedback.example.com/feedback/",
///  "validity_hours": 24}
/// ```
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsDocument {
    channels: BTreeSet<Channel>,
    questions: BTreeMap<String, String>,
    #[serde(default)]
    whatsapp_template: Option<WhatsappTemplate>,
    #[serde(default)]
    page_url: Option<String>,
    #[serde(default)]
    validity_hours: Option<i64>,
}

/// The longest validity a survey may have: a month.
pub const MAX_VALIDITY_HOURS: i64 = 720;

/// Parses the survey settings document; the error names the problem, never a value.
pub fn parse_settings(document: &str) -> Result<SurveySettings, String> {
    let document: SettingsDocument = serde_json::from_str(document).map_err(|e| format!("survey settings: {e}"))?;
    let questions: BTreeMap<String, String> = document
        .questions
        .into_iter()
        .map(|(language, question)| (language.to_ascii_lowercase(), question))
        .collect();
    if !questions.contains_key("en") {
        return Err("survey settings: questions needs an \"en\" question, the fallback".into());
    }
    if questions.values().any(|q| q.trim().is_empty()) {
        return Err("survey settings: a question is empty".into());
    }
    let validity = document.validity_hours.unwrap_or(DEFAULT_VALIDITY.num_hours());
    if !(1..=MAX_VALIDITY_HOURS).contains(&validity) {
        return Err(format!(
            "survey settings: validity_hours must be 1 to {MAX_VALIDITY_HOURS}"
        ));
    }
    if let Some(page) = &document.page_url
        && !((page.starts_with("https://")
            || page.starts_with("http://localhost")
            || page.starts_with("http://127.0.0.1"))
            && page.ends_with('/'))
    {
        return Err("survey settings: page_url must be an https:// URL ending in /".into());
    }
    Ok(SurveySettings {
        channels: document.channels,
        questions,
        whatsapp_template: document.whatsapp_template,
        page_url: document.page_url,
        validity: TimeDelta::hours(validity),
    })
}

/// Where the customer last wrote in the resolved conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestMessage {
    pub channel: Channel,
    pub provider: Provider,
    /// The company's endpoint it came to.
    pub endpoint: Handle,
    /// The customer's handle it came from.
    pub customer: Handle,
    pub at: DateTime<Utc>,
    /// The customer's locale, where the interaction gave one (`es-MX`).
    pub locale: Option<String>,
    /// The customer opted out of this sender (SMS STOP) or the address does not take mail.
    pub blocked: bool,
}

/// Why no survey goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurveySkip {
    /// Surveys are not enabled on this channel.
    NotEnabled,
    /// The customer opted out, or the address bounced.
    RecipientBlocked,
    /// The channel's window has closed and nothing it allows outside it is configured
    /// (WhatsApp without a template; Messenger and Instagram never).
    WindowClosed,
    /// Email and web chat are answered on the rating page, and none is configured; or no
    /// question is configured.
    NotConfigured,
}

/// The survey of one resolution: its id is derived from the conversation and the resolution's
/// time, so a resolution is surveyed at most once (the store writes it only if absent), and a
/// later resolution of the reopened conversation gets its own.
pub fn survey_id(conversation: &ConversationId, resolved_at: DateTime<Utc>) -> String {
    let digest = throughline_edge::signature::sha256_hex(
        format!("{conversation}@{}", resolved_at.timestamp_millis()).as_bytes(),
    );
    format!("sv_{}", &digest[..32])
}

fn question<'a>(settings: &'a SurveySettings, locale: Option<&str>) -> Option<&'a String> {
    let language = locale
        .and_then(|l| l.split(['-', '_']).next())
        .map(str::to_ascii_lowercase);
    language
        .and_then(|l| settings.questions.get(&l))
        .or_else(|| settings.questions.get("en"))
}

/// The survey to send for a resolution at `now`, or why none goes out. `key` signs the rating
/// page's token for email and web chat.
pub fn plan_survey(
    settings: &SurveySettings,
    latest: &LatestMessage,
    survey: &str,
    now: DateTime<Utc>,
    key: &[u8],
) -> Result<OutboundMessage, SurveySkip> {
    if !settings.channels.contains(&latest.channel) {
        return Err(SurveySkip::NotEnabled);
    }
    if latest.blocked {
        return Err(SurveySkip::RecipientBlocked);
    }
    let question = question(settings, latest.locale.as_deref()).ok_or(SurveySkip::NotConfigured)?;
    let text = match latest.channel {
        Channel::Email | Channel::Chat => {
            let page = settings.page_url.as_ref().ok_or(SurveySkip::NotConfigured)?;
            let token = FeedbackToken {
                survey: survey.to_owned(),
                expires_at: now + settings.validity,
            }
            .sign(key);
            format!("{question}\n{page}{token}")
        }
        _ => question.clone(),
    };
    let mut message = OutboundMessage {
        channel: latest.channel,
        provider: latest.provider,
        from: latest.endpoint.clone(),
        to: latest.customer.clone(),
        content: OutboundContent::Message {
            text: Some(text),
            attachments: Vec::new(),
        },
        reply_to: None,
        email: None,
        messenger_tag: None,
        survey: Some(survey.to_owned()),
    };
    if check_window(&message, Some(latest.at), now, false).is_ok() {
        return Ok(message);
    }
    match (&settings.whatsapp_template, latest.channel) {
        (Some(template), Channel::Whatsapp) => {
            message.content = OutboundContent::WhatsappTemplate(template.clone());
            check_window(&message, Some(latest.at), now, false).map_err(|_| SurveySkip::WindowClosed)?;
            Ok(message)
        }
        _ => Err(SurveySkip::WindowClosed),
    }
}

#[cfg(test)]
mod tests {
    use throughline_model::{E164, EmailAddress, InteractionId};

    use super::*;

    const KEY: &[u8] = b"throughline-test-feedback-key";

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).unwrap()
    }

    fn settings() -> SurveySettings {
        SurveySettings {
            channels: [
                Channel::Sms,
                Channel::Whatsapp,
                Channel::Email,
                Channel::Messenger,
                Channel::Chat,
            ]
            .into_iter()
            .collect(),
            questions: BTreeMap::from([
                ("en".into(), "How did we do? Reply 1 (poor) to 5 (great).".into()),
                ("es".into(), "¿Cómo lo hicimos? Responda de 1 a 5.".into()),
            ]),
            whatsapp_template: Some(WhatsappTemplate {
                name: "csat_survey".into(),
                language: "en_US".into(),
                components: serde_json::Value::Null,
            }),
            page_url: Some("https://feedback.acme.example/feedback/".into()),
            validity: DEFAULT_VALIDITY,
        }
    }

    fn phone(n: &str) -> Handle {
        Handle::Phone {
            number: E164::parse(n).unwrap(),
        }
    }

    fn latest(channel: Channel, hours_ago: i64) -> LatestMessage {
        let (endpoint, customer) = match channel {
            Channel::Email => (
                Handle::Email {
                    address: EmailAddress::parse("help@acme.example").unwrap(),
                },
                Handle::Email {
                    address: EmailAddress::parse("ada@example.com").unwrap(),
                },
            ),
            _ => (phone("+14155550199"), phone("+14155550100")),
        };
        LatestMessage {
            channel,
            provider: Provider::Twilio,
            endpoint,
            customer,
            at: now() - TimeDelta::hours(hours_ago),
            locale: None,
            blocked: false,
        }
    }

    fn text_of(message: &OutboundMessage) -> &str {
        match &message.content {
            OutboundContent::Message { text, .. } => text.as_deref().unwrap(),
            OutboundContent::WhatsappTemplate(t) => &t.name,
        }
    }

    #[test]
    fn a_survey_goes_where_the_customer_last_wrote_in_their_language() {
        let mut sms = latest(Channel::Sms, 1);
        sms.locale = Some("es-MX".into());
        let message = plan_survey(&settings(), &sms, "sv_01", now(), KEY).unwrap();
        assert_eq!((message.channel, &message.to), (Channel::Sms, &sms.customer));
        assert_eq!(message.from, sms.endpoint, "from the endpoint she wrote to");
        assert_eq!(text_of(&message), "¿Cómo lo hicimos? Responda de 1 a 5.");
        sms.locale = Some("de".into());
        assert!(text_of(&plan_survey(&settings(), &sms, "sv_01", now(), KEY).unwrap()).starts_with("How did we do?"));
    }

    #[test]
    fn email_gets_a_signed_link_to_the_rating_page() {
        let message = plan_survey(&settings(), &latest(Channel::Email, 30), "sv_0abc", now(), KEY).unwrap();
        let text = text_of(&message);
        let token = text.rsplit("/feedback/").next().unwrap();
        let verified = FeedbackToken::verify(token, &[KEY], now()).unwrap();
        assert_eq!(verified.survey, "sv_0abc");
        assert_eq!(verified.expires_at, now() + DEFAULT_VALIDITY);
        assert!(!text.contains("ada@example.com"), "no personal data in the link");
    }

    #[test]
    fn the_channel_rules_decide_outside_the_window() {
        // WhatsApp after 24 h: the template.
        let message = plan_survey(&settings(), &latest(Channel::Whatsapp, 30), "sv_01", now(), KEY).unwrap();
        assert!(matches!(message.content, OutboundContent::WhatsappTemplate(_)));
        let mut no_template = settings();
        no_template.whatsapp_template = None;
        assert_eq!(
            plan_survey(&no_template, &latest(Channel::Whatsapp, 30), "sv_01", now(), KEY),
            Err(SurveySkip::WindowClosed)
        );
        // Messenger outside its window: never (a survey carries no human-agent tag).
        assert_eq!(
            plan_survey(&settings(), &latest(Channel::Messenger, 30), "sv_01", now(), KEY),
            Err(SurveySkip::WindowClosed)
        );
        assert!(plan_survey(&settings(), &latest(Channel::Messenger, 2), "sv_01", now(), KEY).is_ok());
    }

    #[test]
    fn no_survey_where_not_enabled_to_the_opted_out_or_without_a_page() {
        assert_eq!(
            plan_survey(&settings(), &latest(Channel::X, 1), "sv_01", now(), KEY),
            Err(SurveySkip::NotEnabled)
        );
        let mut stopped = latest(Channel::Sms, 1);
        stopped.blocked = true;
        assert_eq!(
            plan_survey(&settings(), &stopped, "sv_01", now(), KEY),
            Err(SurveySkip::RecipientBlocked)
        );
        let mut no_page = settings();
        no_page.page_url = None;
        assert_eq!(
            plan_survey(&no_page, &latest(Channel::Email, 1), "sv_01", now(), KEY),
            Err(SurveySkip::NotConfigured)
        );
    }

    #[test]
    fn the_settings_document_parses_and_its_problems_are_named() {
        let parsed = parse_settings(
            r#"{"channels": ["sms", "email"], "questions": {"en": "How did we do?", "ES": "¿Qué tal?"},
                "page_url": "https://feedback.acme.example/feedback/"}"#,
        )
        .unwrap();
        assert_eq!(parsed.channels, [Channel::Sms, Channel::Email].into_iter().collect());
        assert_eq!(parsed.validity, DEFAULT_VALIDITY);
        assert!(parsed.questions.contains_key("es"), "languages folded to lower case");
        for (document, problem) in [
            (r#"{"channels": [], "questions": {"es": "x"}}"#, "\"en\""),
            (r#"{"channels": [], "questions": {"en": " "}}"#, "empty"),
            (
                r#"{"channels": [], "questions": {"en": "x"}, "validity_hours": 0}"#,
                "validity_hours",
            ),
            (
                r#"{"channels": [], "questions": {"en": "x"}, "page_url": "http://x.example/"}"#,
                "page_url",
            ),
            (
                r#"{"channels": ["pigeon"], "questions": {"en": "x"}}"#,
                "survey settings",
            ),
            (
                r#"{"channels": [], "questions": {"en": "x"}, "colour": "red"}"#,
                "survey settings",
            ),
        ] {
            let error = parse_settings(document).unwrap_err();
            assert!(error.contains(problem), "{document}: {error}");
        }
    }

    #[test]
    fn one_survey_per_resolution() {
        let conversation =
            ConversationId::opened_by(&InteractionId::try_from(format!("ix_{}", "a".repeat(32))).unwrap());
        let first = survey_id(&conversation, now());
        assert_eq!(
            first,
            survey_id(&conversation, now()),
            "the same resolution: the same survey"
        );
        assert_ne!(
            first,
            survey_id(&conversation, now() + TimeDelta::hours(2)),
            "resolved again after a reopen"
        );
        assert!(
            FeedbackToken {
                survey: first,
                expires_at: now()
            }
            .sign(KEY)
            .starts_with("sv_")
        );
    }
}
