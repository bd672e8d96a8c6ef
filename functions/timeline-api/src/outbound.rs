//! Replies: `POST /customers/{id}/messages` and its retry. Where a reply goes (`route_reply`,
//! pure: the customer's latest inbound message, or the one named), what it is
//! (`plan_reply`, pure: the `OutboundMessage` and its timeline entry), and the shell that checks
//! the channel's rules against the timeline, records the reply, and queues its send job.
//!
//! Order, so that nothing half-done is shown as sent: the key is remembered (a conditional
//! put: of two requests racing with one key, one goes on), the rules are checked (a refusal
//! forgets the key again), the reply is recorded on the timeline as `queued`, then its job is
//! queued. 202 means both happened; if the queue is unreachable the answer is 503, the entry
//! stays `queued`, and the same request again queues it (the sender's claim makes a second job
//! for one attempt harmless).

use chrono::{DateTime, Utc};
use lambda_http::Request;
use serde::Serialize;
use throughline_model::{
    Attachment, AttachmentSource, Channel, CustomerId, Delivery, DeliveryStatus, Direction, EmailThreading, Handle,
    Interaction, InteractionId, NewInteraction, OutboundContent, OutboundMessage, ProviderMessageId, RecipientState,
    SendJob, SendRefusal, check_content, check_window,
};
use throughline_store::{Recorded, Remembered, TimelineFilter, TimelineStore};

use crate::request::{MessageBody, body, idempotency_key};
use crate::views::{OutboundView, Routing, TimelineEntryView};
use crate::{ApiError, Caller, TimelineApi};

/// How far back the timeline is searched for the message a reply answers and the customer's
/// last message to an endpoint (the reply window): entries, newest first.
pub const SEARCH_DEPTH: usize = 1_000;

throughline_model::wire_enum! {
    /// Why a reply goes where it goes (the answer's `routing.reason`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
    pub enum RoutingReason {
        /// The message named by `in_reply_to`.
        InReplyTo = "in_reply_to",
        /// The customer's latest message from the `to` identifier on the `channel` asked for.
        Requested = "requested",
        /// The customer's latest message in the conversation named.
        LatestInConversation = "latest_in_conversation",
        /// The customer's latest message anywhere.
        Latest = "latest",
    }
}

/// What the reply answers: a customer's inbound message, and why that one.
#[derive(Debug, Clone)]
pub(crate) struct Answered {
    pub interaction: Interaction,
    pub reason: RoutingReason,
}

/// The timeline search a reply's route needs: which entries qualify.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RouteSearch {
    /// One message, by id.
    Named(InteractionId),
    /// The latest inbound message matching the filter (and, when `to` is set, from that handle).
    Latest {
        filter: TimelineFilter,
        to: Option<Handle>,
        reason: RoutingReason,
    },
}

/// Where to look for what a reply answers, from its body (pure).
pub(crate) fn route_reply(body: &MessageBody) -> Result<RouteSearch, ApiError> {
    if let Some(id) = &body.in_reply_to {
        return Ok(RouteSearch::Named(id.clone()));
    }
    let inbound = TimelineFilter {
        direction: Some(Direction::Inbound),
        ..TimelineFilter::default()
    };
    match (&body.channel, &body.to) {
        (Some(channel), Some(to)) => {
            let to = Handle::parse_key(to).map_err(|e| ApiError::bad("invalid_body", format!("to: {e}")))?;
            Ok(RouteSearch::Latest {
                filter: TimelineFilter {
                    channel: Some(*channel),
                    ..inbound
                },
                to: Some(to),
                reason: RoutingReason::Requested,
            })
        }
        (None, None) => Ok(match &body.conversation_id {
            Some(conversation) => RouteSearch::Latest {
                filter: TimelineFilter {
                    conversation: Some(conversation.clone()),
                    ..inbound
                },
                to: None,
                reason: RoutingReason::LatestInConversation,
            },
            None => RouteSearch::Latest {
                filter: inbound,
                to: None,
                reason: RoutingReason::Latest,
            },
        }),
        _ => Err(ApiError::bad("invalid_body", "channel and to go together")),
    }
}

/// The reply as the sender sends it, and its entry on the timeline (pure): from the endpoint
/// the customer wrote to, to the handle they wrote from, on that channel and provider.
pub(crate) fn plan_reply(
    body: &MessageBody,
    answered: &Interaction,
    id: InteractionId,
    customer: &CustomerId,
    author: &str,
    now: DateTime<Utc>,
) -> Result<(SendJob, Interaction), SendRefusal> {
    let content = match &body.whatsapp_template {
        Some(template) => OutboundContent::WhatsappTemplate(template.clone()),
        None => OutboundContent::Message {
            text: body.text.clone(),
            attachments: body.attachments.clone(),
        },
    };
    check_content(answered.channel, answered.provider, &content)?;
    if body.messenger_tag.is_some() && !matches!(answered.channel, Channel::Messenger | Channel::Instagram) {
        return Err(SendRefusal::UnsupportedContent(
            "messenger_tag is only for Messenger and Instagram",
        ));
    }
    let email = (answered.channel == Channel::Email).then(|| email_threading(answered));
    let message = OutboundMessage {
        channel: answered.channel,
        provider: answered.provider,
        from: answered.business_endpoint.clone(),
        to: answered.customer.clone(),
        content,
        // The channel's own reply (Telegram, WhatsApp context) to the message answered.
        reply_to: (answered.channel != Channel::Email).then(|| answered.provider_message_id.clone()),
        email: email.clone(),
        messenger_tag: body.messenger_tag,
        survey: None,
    };
    let mut entry = outbound_entry(&message, answered, id, author, now);
    entry.thread.in_reply_to = Some(answered.provider_message_id.to_string());
    Ok((first_job(&entry, customer, message), entry))
}

/// The send job of an entry's first attempt.
pub(crate) fn first_job(entry: &Interaction, customer: &CustomerId, message: OutboundMessage) -> SendJob {
    SendJob {
        schema_version: throughline_model::SEND_JOB_VERSION,
        interaction_id: entry.id.clone(),
        customer_id: customer.clone(),
        attempt: 1,
        message,
    }
}

/// The timeline entry of a message the company sends after a customer's message `answered` (a
/// reply, a survey) as it is queued: on the message's channel, from its endpoint to its handle,
/// with its text, files and template, in `answered`'s conversation (and, for mail, its thread
/// and the message's subject), `author`, and `queued` for its first attempt (pure).
pub(crate) fn outbound_entry(
    message: &OutboundMessage,
    answered: &Interaction,
    id: InteractionId,
    author: &str,
    now: DateTime<Utc>,
) -> Interaction {
    let mut entry = Interaction::new(NewInteraction {
        channel: message.channel,
        provider: message.provider,
        direction: Direction::Outbound,
        customer: message.to.clone(),
        business_endpoint: message.from.clone(),
        // No provider id until it is sent (then `delivery.provider_message_id`).
        provider_message_id: ProviderMessageId::parse(id.as_str()).expect("an interaction id is a valid message id"),
        occurred_at: now,
        received_at: now,
    });
    entry.id = id;
    entry.text = message.content.text().map(str::to_owned);
    entry.attachments = message
        .content
        .attachments()
        .iter()
        .map(|a| Attachment {
            source: AttachmentSource::Url { url: a.url.clone() },
            content_type: a.content_type.clone(),
            size_bytes: None,
            file_name: a.file_name.clone(),
            content_id: None,
            inline: false,
        })
        .collect();
    if let OutboundContent::WhatsappTemplate(template) = &message.content {
        entry
            .attributes
            .insert("whatsapp_template".into(), template.name.clone());
    }
    if let Some(email) = &message.email {
        entry.subject = email.subject.clone();
        // In the answered mail's thread, so in its conversation.
        entry.thread.provider_thread_id = answered.thread.provider_thread_id.clone();
    }
    // In the conversation of the message it answers (the writer's rule honours it).
    entry.conversation_id = answered.conversation_id.clone();
    entry.author = Some(author.to_owned());
    entry.delivery = Some(Delivery::queued(1, now));
    entry
}

/// A mail reply's subject and thread headers: `Re: ` + the customer's subject, `In-Reply-To`
/// their Message-ID, `References` the thread's ids then theirs.
pub(crate) fn email_threading(answered: &Interaction) -> EmailThreading {
    let subject = answered.subject.as_deref().unwrap_or_default().trim();
    let subject = if subject.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("re:")) {
        subject.to_owned()
    } else {
        format!("Re: {subject}").trim_end().to_owned()
    };
    let bracketed = |id: &str| format!("<{id}>");
    let mut references: Vec<String> = answered.thread.references.iter().map(|r| bracketed(r)).collect();
    let id = bracketed(answered.provider_message_id.as_str());
    if !references.contains(&id) {
        references.push(id.clone());
    }
    EmailThreading {
        subject: Some(subject),
        in_reply_to: Some(id),
        references,
    }
}

/// The newest inbound entries of the group matching `filter` and `accept`, newest first, at most
/// `SEARCH_DEPTH` entries looked at; `None` if none.
pub(crate) async fn latest_inbound(
    store: &TimelineStore,
    customer: &CustomerId,
    filter: &TimelineFilter,
    accept: impl Fn(&Interaction) -> bool,
) -> Result<Option<Interaction>, ApiError> {
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    while seen < SEARCH_DEPTH {
        let page = store
            .timeline(customer, throughline_store::MAX_PAGE_SIZE, cursor.as_deref(), filter)
            .await?;
        seen += page.entries.len().max(1);
        if let Some(found) = page.entries.into_iter().map(|e| e.interaction).find(|i| accept(i)) {
            return Ok(Some(found));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(None)
}

/// What the reply answers, found on the group's timeline.
async fn find_answered(
    store: &TimelineStore,
    customer: &CustomerId,
    search: RouteSearch,
) -> Result<Answered, ApiError> {
    match search {
        RouteSearch::Named(id) => {
            let found = store.entry(&id).await?;
            let root = store.resolve_root(customer).await?;
            match found {
                Some((owner, interaction))
                    if interaction.direction == Direction::Inbound && store.resolve_root(&owner).await? == root =>
                {
                    Ok(Answered {
                        interaction,
                        reason: RoutingReason::InReplyTo,
                    })
                }
                _ => Err(ApiError::NoRoute(
                    "in_reply_to names no message from this customer on their timeline".into(),
                )),
            }
        }
        RouteSearch::Latest { filter, to, reason } => {
            let found = latest_inbound(store, customer, &filter, |i| {
                to.as_ref().is_none_or(|to| i.customer == *to)
            })
            .await?;
            found
                .map(|interaction| Answered { interaction, reason })
                .ok_or_else(|| {
                    ApiError::NoRoute(match reason {
                        RoutingReason::Requested => {
                            "the customer never wrote from that identifier on that channel: no endpoint to answer from"
                                .into()
                        }
                        _ => "the customer has no message to answer".into(),
                    })
                })
        }
    }
}

/// The customer's last message to the reply's endpoint from its handle (the reply window).
async fn last_inbound_to_endpoint(
    store: &TimelineStore,
    customer: &CustomerId,
    message: &OutboundMessage,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let filter = TimelineFilter {
        channel: Some(message.channel),
        direction: Some(Direction::Inbound),
        ..TimelineFilter::default()
    };
    let found = latest_inbound(store, customer, &filter, |i| {
        i.customer == message.to && i.business_endpoint == message.from
    })
    .await?;
    Ok(found.map(|i| i.occurred_at))
}

/// Checks the channel's rules that need the timeline, and that the endpoint has credentials.
async fn check_rules(
    api: &TimelineApi,
    customer: &CustomerId,
    answered: &Answered,
    job: &SendJob,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let message = &job.message;
    // The customer's latest message from `to` to this endpoint: the latest message overall, or
    // the latest from `to` on its channel, is that one (the route's search found it already).
    let last_inbound = || async {
        match answered.reason {
            RoutingReason::Latest | RoutingReason::Requested => Ok(Some(answered.interaction.occurred_at)),
            RoutingReason::InReplyTo | RoutingReason::LatestInConversation => {
                last_inbound_to_endpoint(&api.store, customer, message).await
            }
        }
    };
    if matches!(
        message.channel,
        Channel::Whatsapp | Channel::Messenger | Channel::Instagram
    ) {
        check_window(message, last_inbound().await?, now, api.credentials.human_agent_enabled)?;
    }
    let recipient = (message.channel, &message.from, &message.to);
    if let Some(refusal) = recipient_refusal(&api.store, recipient, last_inbound).await? {
        return Err(refusal.into());
    }
    // The sender's own builder, run dry: credentials for this endpoint, content it can send.
    throughline_sender::prepare(job, &api.credentials, &throughline_sender::ProviderApis::default(), now)?;
    Ok(())
}

/// What the recipient's own state refuses of a message on `channel` from `from` to `to`: an
/// SMS to a number that sent STOP to this sender, a mail to an address that bounced or
/// complained after the customer's last mail to it (`last_inbound`, read only when the address
/// has such a state).
pub(crate) async fn recipient_refusal<Last>(
    store: &TimelineStore,
    (channel, from, to): (Channel, &Handle, &Handle),
    last_inbound: impl FnOnce() -> Last,
) -> Result<Option<SendRefusal>, ApiError>
where
    Last: std::future::Future<Output = Result<Option<DateTime<Utc>>, ApiError>>,
{
    Ok(match channel {
        Channel::Email => match store.recipient_state(to).await? {
            Some((state, at)) if last_inbound().await?.is_none_or(|last| last < at) => Some(match state {
                RecipientState::Undeliverable => SendRefusal::RecipientUndeliverable,
                RecipientState::OptedOut => SendRefusal::RecipientOptedOut,
            }),
            _ => None,
        },
        Channel::Sms if store.sms_opted_out(to, from).await? => Some(SendRefusal::RecipientOptedOut),
        _ => None,
    })
}

/// `POST /customers/{id}/messages`.
pub(crate) async fn send_message(
    api: &TimelineApi,
    request: &Request,
    customer: &CustomerId,
    caller: &Caller,
) -> Result<OutboundView, ApiError> {
    let key = idempotency_key(request)?;
    let body: MessageBody = body(request)?;
    let now = Utc::now();
    let id = InteractionId::outbound(customer, &key);
    let hash = request_fingerprint(request);
    let store = &api.store;
    // Refuse an unknown or erased customer before remembering anything for it.
    store.resolve_root(customer).await?;
    match store.remember_request(customer, &key, &hash, now).await? {
        Remembered::Reused => return Err(ApiError::IdempotencyKeyReused),
        Remembered::Same => {
            if let Some((owner, entry)) = store.entry(&id).await? {
                return answer_again(api, owner, entry).await;
            }
        }
        Remembered::New => {}
    }
    let planned = async {
        let answered = find_answered(store, customer, route_reply(&body)?).await?;
        let (job, entry) = plan_reply(&body, &answered.interaction, id, customer, &caller.arn, now)?;
        check_rules(api, customer, &answered, &job, now).await?;
        Ok::<_, ApiError>((answered, job, entry))
    }
    .await;
    let (answered, job, entry) = match planned {
        Ok(planned) => planned,
        Err(refusal) => {
            // Refused before anything was recorded: the key may be used for the corrected request.
            store.forget_request(customer, &key, &hash).await?;
            return Err(refusal);
        }
    };
    let recorded = store.record_outbound(&entry, &job).await?;
    let (owner, entry) = match recorded {
        // Recorded now: the entry is the one planned, in the conversation the writer's rule gave.
        Recorded::New {
            customer,
            conversation,
            observed,
        } => {
            if let Some(answer) = observed.answered.filter(|a| a.first) {
                let channel = observed.conversation_channel.unwrap_or(entry.channel);
                throughline_edge::metrics::first_response("timeline-api", channel.as_str(), answer.waited);
            }
            let mut entry = entry;
            entry.conversation_id = Some(conversation);
            (customer, entry)
        }
        Recorded::Erased => {
            return Err(throughline_store::StoreError::CustomerErased(customer.to_string()).into());
        }
        // Recorded by a request racing this one: answer what it recorded.
        Recorded::Duplicate { customer: owner } | Recorded::Collision { customer: owner } => {
            store.entry(&entry.id).await?.unwrap_or((owner, entry))
        }
    };
    queue(api, &job).await?;
    Ok(OutboundView {
        message: TimelineEntryView::new(owner, entry),
        routing: Some(Routing {
            channel: job.message.channel,
            to: job.message.to.key(),
            from: job.message.from.key(),
            reason: answered.reason,
            answered_interaction_id: answered.interaction.id,
        }),
    })
}

/// The same request again: the same message. Still `queued`: its job is queued again (the
/// first try may have found the queue down).
async fn answer_again(api: &TimelineApi, owner: CustomerId, entry: Interaction) -> Result<OutboundView, ApiError> {
    if let Some(delivery) = entry.delivery.as_ref().filter(|d| d.status == DeliveryStatus::Queued)
        && let Some(mut job) = api.store.send_job(&entry.id).await?
    {
        // The attempt that is queued now (a retry's, if an agent retried it).
        job.attempt = delivery.attempt;
        queue(api, &job).await?;
    }
    Ok(OutboundView::unrouted(owner, entry))
}

/// `POST /customers/{id}/messages/{interaction_id}/retry`.
pub(crate) async fn retry_message(
    api: &TimelineApi,
    customer: &CustomerId,
    reply: &InteractionId,
) -> Result<OutboundView, ApiError> {
    let (job, owner, entry) = api.store.retry_send(customer, reply, Utc::now()).await?;
    queue(api, &job).await?;
    Ok(OutboundView::unrouted(owner, entry))
}

pub(crate) async fn queue(api: &TimelineApi, job: &SendJob) -> Result<(), ApiError> {
    match api.outbound.publish(std::slice::from_ref(job)).await {
        Ok(published) if published.dropped.is_empty() => Ok(()),
        Ok(_) => Err(ApiError::QueueUnavailable),
        Err(error) => {
            tracing::error!(%error, interaction = %job.interaction_id, "could not queue a send job");
            Err(ApiError::QueueUnavailable)
        }
    }
}

/// What makes two requests with one key the same request: the body as JSON (key order and
/// spacing aside).
fn request_fingerprint(request: &Request) -> String {
    let bytes = request.body().as_ref();
    let canonical = serde_json::from_slice::<serde_json::Value>(bytes)
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_else(|_| bytes.to_vec());
    throughline_store::request_hash(&canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use throughline_model::{ConversationId, EmailAddress, Provider};

    fn body(json: serde_json::Value) -> MessageBody {
        serde_json::from_value(json).unwrap()
    }

    fn at() -> DateTime<Utc> {
        throughline_testkit::sample_day_at(10, 0)
    }

    fn mail(subject: &str) -> Interaction {
        let address = |a: &str| Handle::Email {
            address: EmailAddress::parse(a).unwrap(),
        };
        let mut mail = Interaction::new(NewInteraction {
            channel: Channel::Email,
            provider: Provider::Mailgun,
            direction: Direction::Inbound,
            customer: address("ada@example.com"),
            business_endpoint: address("support@mg.acme.example"),
            provider_message_id: ProviderMessageId::parse("ada-2@mail.example.com").unwrap(),
            occurred_at: at(),
            received_at: at(),
        });
        mail.subject = Some(subject.into());
        mail.thread.references = vec!["ada-1@mail.example.com".into()];
        mail.thread.provider_thread_id = Some("email:thread".into());
        mail
    }

    #[test]
    fn a_reply_is_routed_by_what_its_body_names() {
        let id = format!("ix_{}", "a".repeat(32));
        assert!(matches!(
            route_reply(&body(json!({ "text": "x", "in_reply_to": id }))).unwrap(),
            RouteSearch::Named(named) if named.as_str() == id
        ));
        let RouteSearch::Latest { filter, to, reason } = route_reply(&body(
            json!({ "text": "x", "channel": "sms", "to": "phone:+14155550100" }),
        ))
        .unwrap() else {
            panic!("not a search");
        };
        assert_eq!(
            (filter.channel, filter.direction, reason),
            (Some(Channel::Sms), Some(Direction::Inbound), RoutingReason::Requested)
        );
        assert_eq!(to.map(|h| h.key()).as_deref(), Some("phone:+14155550100"));
        let conversation = format!("cv_{}", "b".repeat(32));
        let RouteSearch::Latest { filter, reason, .. } =
            route_reply(&body(json!({ "text": "x", "conversation_id": conversation }))).unwrap()
        else {
            panic!("not a search");
        };
        assert_eq!(
            filter.conversation,
            Some(ConversationId::try_from(conversation).unwrap())
        );
        assert_eq!(reason, RoutingReason::LatestInConversation);
        assert!(matches!(
            route_reply(&body(json!({ "text": "x" }))).unwrap(),
            RouteSearch::Latest {
                reason: RoutingReason::Latest,
                to: None,
                ..
            }
        ));
        for half in [
            json!({ "text": "x", "channel": "sms" }),
            json!({ "text": "x", "to": "phone:+14155550100" }),
        ] {
            assert!(matches!(
                route_reply(&body(half)),
                Err(ApiError::BadRequest {
                    code: "invalid_body",
                    ..
                })
            ));
        }
        let bad_to = route_reply(&body(json!({ "text": "x", "channel": "sms", "to": "phone:12" })));
        assert!(matches!(
            bad_to,
            Err(ApiError::BadRequest {
                code: "invalid_body",
                ..
            })
        ));
    }

    #[test]
    fn an_email_reply_threads_under_the_customers_mail_and_is_recorded_queued() {
        let customer = CustomerId::generate();
        let id = InteractionId::try_from(format!("ix_{}", "c".repeat(32))).unwrap();
        let answered = mail("Order A-1001");
        let (job, entry) = plan_reply(
            &body(json!({ "text": "It ships today." })),
            &answered,
            id.clone(),
            &customer,
            "agent",
            at(),
        )
        .unwrap();
        let email = job.message.email.clone().unwrap();
        assert_eq!(email.subject.as_deref(), Some("Re: Order A-1001"));
        assert_eq!(email.in_reply_to.as_deref(), Some("<ada-2@mail.example.com>"));
        assert_eq!(
            email.references,
            ["<ada-1@mail.example.com>", "<ada-2@mail.example.com>"]
        );
        assert_eq!(job.message.from, answered.business_endpoint);
        assert_eq!(job.message.to, answered.customer);
        assert_eq!(job.message.reply_to, None, "mail threads by its headers");
        assert_eq!(
            (job.attempt, &job.interaction_id, &job.customer_id),
            (1, &id, &customer)
        );
        assert_eq!(entry.id, id);
        assert_eq!(entry.direction, Direction::Outbound);
        assert_eq!(entry.thread.provider_thread_id.as_deref(), Some("email:thread"));
        assert_eq!(entry.subject.as_deref(), Some("Re: Order A-1001"));
        assert_eq!(entry.author.as_deref(), Some("agent"));
        assert_eq!(
            entry.delivery.as_ref().map(|d| (d.status, d.attempt)),
            Some((DeliveryStatus::Queued, 1))
        );
        // An answer to an answer keeps its subject.
        assert_eq!(
            email_threading(&mail("RE: Order A-1001")).subject.as_deref(),
            Some("RE: Order A-1001")
        );
    }

    #[test]
    fn what_the_channel_cannot_carry_is_refused_before_anything_is_planned() {
        let customer = CustomerId::generate();
        let id = InteractionId::try_from(format!("ix_{}", "d".repeat(32))).unwrap();
        let answered = mail("Order");
        let plan = |json| plan_reply(&body(json), &answered, id.clone(), &customer, "agent", at());
        for (json, code) in [
            (
                json!({ "text": "x", "messenger_tag": "HUMAN_AGENT" }),
                "unsupported_content",
            ),
            (
                json!({ "whatsapp_template": { "name": "t", "language": "en" } }),
                "unsupported_content",
            ),
            (json!({ "text": " " }), "unsupported_content"),
        ] {
            assert_eq!(plan(json.clone()).unwrap_err().code(), code, "{json}");
        }
    }
}
