//! The satisfaction survey after a resolution: where and as what it goes
//! (`throughline_feedback::plan_survey`, pure), then — in this order — opened on the group's
//! root (the writer recognizes answers against it; a survey already open there is not sent
//! again), recorded on the timeline as a message the company sends, and queued for the sender.
//! The resolution stands whatever happens to its survey; the answer says what did.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use throughline_edge::ConfigError;
use throughline_edge::config::{self, Reloading};
use throughline_feedback::survey::{LatestMessage, SurveySettings, SurveySkip, parse_settings, plan_survey, survey_id};
use throughline_feedback::{LinkedSurvey, OpenSurvey, signing_keys};
use throughline_model::{Channel, Direction, ErrorCode, IdempotencyKey, InteractionId};
use throughline_service::Resolution;
use throughline_store::{Changed, Recorded, TimelineFilter};

use crate::outbound::{email_threading, first_job, latest_inbound, outbound_entry, queue, recipient_refusal};
use crate::views::{SurveyOutcome, SurveyStatus};
use crate::{ApiError, TimelineApi};

/// The author of every survey on the timeline.
pub const SURVEY_AUTHOR: &str = "throughline:survey";

/// Surveys as configured: the settings document (`SURVEYS`, or the SSM parameter
/// `SURVEYS_PARAMETER` names; read again every minute) and the rating page's signing keys
/// (`FEEDBACK_KEY`, or `FEEDBACK_KEY_PARAMETER`: one key, or several separated by commas, the
/// first signing).
#[derive(Debug, Clone)]
pub struct Surveys {
    pub settings: Arc<Reloading<SurveySettings>>,
    pub keys: Vec<Vec<u8>>,
}

/// How often the settings document is read again.
pub(crate) const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Surveys {
    /// `None` when `SURVEYS` (and `SURVEYS_PARAMETER`) is not set: no surveys.
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Option<Self>, ConfigError> {
        let Some(settings) = Reloading::from_env(aws, "SURVEYS", parse_settings, RELOAD_EVERY).await? else {
            return Ok(None);
        };
        let keys =
            signing_keys(config::load_secret(aws, "FEEDBACK_KEY").await?.expose()).map_err(ConfigError::Invalid)?;
        Ok(Some(Self {
            settings: Arc::new(settings),
            keys,
        }))
    }
}

fn skipped(reason: SurveySkip) -> &'static str {
    match reason {
        SurveySkip::NotEnabled => "not_enabled",
        SurveySkip::RecipientBlocked => "recipient_blocked",
        SurveySkip::WindowClosed => "window_closed",
        SurveySkip::NotConfigured => "not_configured",
    }
}

/// The survey of the resolution `changed` made (`resolution`), sent if the rules allow.
pub(crate) async fn after_resolution(
    api: &TimelineApi,
    surveys: &Surveys,
    changed: &Changed,
    resolution: &Resolution,
) -> SurveyOutcome {
    let resolved_at = resolution.at;
    let id = survey_id(&changed.conversation.id, resolved_at);
    let outcome = |status, reason: Option<&str>, channel, interaction_id| SurveyOutcome {
        survey_id: id.clone(),
        status,
        reason: reason.map(str::to_owned),
        channel,
        interaction_id,
    };
    match send(api, surveys, changed, &id, resolved_at, Utc::now()).await {
        Ok(Sent::Queued(channel, interaction)) => outcome(SurveyStatus::Queued, None, Some(channel), Some(interaction)),
        Ok(Sent::Not(reason, channel)) => outcome(SurveyStatus::NotSent, Some(reason), channel, None),
        Err(error) => {
            tracing::error!(error = %error, survey = %id, "a survey could not be sent");
            outcome(SurveyStatus::Failed, Some(error.code()), None, None)
        }
    }
}

enum Sent {
    Queued(Channel, InteractionId),
    Not(&'static str, Option<Channel>),
}

async fn send(
    api: &TimelineApi,
    surveys: &Surveys,
    changed: &Changed,
    id: &str,
    resolved_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Sent, ApiError> {
    let conversation = &changed.conversation;
    let root = &conversation.customer_id;
    let store = &api.store;
    let filter = TimelineFilter {
        conversation: Some(conversation.id.clone()),
        direction: Some(Direction::Inbound),
        ..TimelineFilter::default()
    };
    let Some(latest) = Box::pin(latest_inbound(
        store,
        root,
        &filter,
        throughline_service::is_customer_message,
    ))
    .await?
    else {
        return Ok(Sent::Not("no_customer_message", None));
    };
    let locale = latest.attributes.get("locale").cloned();
    let settings = surveys.settings.current().await;
    let recipient = (latest.channel, &latest.business_endpoint, &latest.customer);
    let blocked = recipient_refusal(store, recipient, || async { Ok(Some(latest.occurred_at)) })
        .await?
        .is_some();
    let latest_message = LatestMessage {
        channel: latest.channel,
        provider: latest.provider,
        endpoint: latest.business_endpoint.clone(),
        customer: latest.customer.clone(),
        at: latest.occurred_at,
        locale: locale.clone(),
        blocked,
    };
    let planned = plan_survey(&settings, &latest_message, id, now, &surveys.keys[0]);
    let mut message = match planned {
        Ok(message) => message,
        Err(skip) => return Ok(Sent::Not(skipped(skip), Some(latest.channel))),
    };
    let lifecycle = &conversation.lifecycle;
    let open = OpenSurvey {
        id: id.to_owned(),
        conversation_id: conversation.id.clone(),
        channel: message.channel,
        customer: message.to.key(),
        endpoint: message.from.key(),
        locale,
        sent_at: now,
        expires_at: now + settings.validity,
        resolved_at,
        resolved_channel: lifecycle.channel.unwrap_or(latest.channel),
        assignee: lifecycle.assignee.clone(),
        reasons: conversation
            .reasons
            .iter()
            .filter(|r| r.confirmed)
            .map(|r| r.code.clone())
            .collect(),
        rating: None,
        remarked: false,
    };
    let link = LinkedSurvey::of(&open, &latest_message);
    if !store.open_survey(root, &open, link.as_ref()).await? {
        return Ok(Sent::Not("already_sent", Some(message.channel)));
    }
    let key = IdempotencyKey::parse(&format!("survey:{id}")).expect("a survey id is a valid key");
    let interaction_id = InteractionId::outbound(root, &key);
    if message.channel == Channel::Email {
        // In the customer's thread, under their subject.
        message.email = Some(email_threading(&latest));
    }
    let mut entry = outbound_entry(&message, &latest, interaction_id.clone(), SURVEY_AUTHOR, now);
    entry.attributes.insert("survey".into(), id.to_owned());
    let channel = message.channel;
    let job = first_job(&entry, root, message);
    if let Recorded::New { .. } = Box::pin(store.record_outbound(&entry, &job)).await? {
        store.roll_up_survey_sent(&open).await;
    }
    queue(api, &job).await?;
    Ok(Sent::Queued(channel, interaction_id))
}
