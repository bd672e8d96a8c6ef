//! The timeline API: what agents' desktops and back-office systems read and do. `route` (pure)
//! turns a method and path into a `Route`; `handle` runs it against the `TimelineStore` and
//! answers JSON; every refusal is an `ApiError` (the store's errors among them), answered by
//! `throughline_edge::error_response`, the one mapping from errors to HTTP. The contract is
//! `functions/timeline-api/openapi.yaml`; a test holds the two together.

mod error;
mod outbound;
mod request;
mod routes;
mod survey;
pub mod views;

#[cfg(test)]
mod tests;

pub use error::{ApiError, BAD_REQUEST_CODES};
pub use outbound::{RoutingReason, SEARCH_DEPTH};
pub use request::{Caller, MAX_REASON_BYTES, caller};
pub use routes::{ROUTES, Route, RouteBuilder, TimelineQuery, route, timeline_query};
pub use survey::{SURVEY_AUTHOR, Surveys};

use lambda_http::http::{StatusCode, header::CONTENT_TYPE};
use lambda_http::{Body, Request, Response};
use std::sync::Arc;

use request::{
    AssignBody, AttributesBody, ErasureBody, JoinBody, MergeBody, Reason, ReasonBody, ReasonsBody, ResolveBody,
    SplitBody, body,
};
use routes::{page_query, param, query_pairs, queue_query};
use serde_json::Value;
use throughline_edge::config::Reloading;
use throughline_edge::{ConfigError, config, json_error};
use throughline_model::{ConversationId, ErasureStep, Handle, QueueMessage};
use throughline_queue::InteractionPublisher;
use throughline_reasons::{ReloadingTaxonomy, Taxonomy};
use throughline_segments::{Segment, parse_segment_settings};
use throughline_service::hours::BusinessHours;
use throughline_service::rollup::summarize;
use throughline_store::{Actor, ConversationChange, MergeRequest, TimelineStore};
use views::{
    AttributesChangeResult, AttributesView, ConversationChangeResult, ConversationList, ConversationView, ExportView,
    LedgerEntryView, LedgerList, QueuePageView, ReportDailyView, ReportDayView, ReportNumbers, ReportRead,
    ReportSummaryView, SegmentMembersView, SplitResult, SuggestionList, TimelinePageView,
};

/// The default page size of a timeline.
pub const DEFAULT_PAGE_SIZE: usize = 50;

/// Everything the API needs: built by `main`, or by tests against the local stack.
#[derive(Debug, Clone)]
pub struct TimelineApi {
    pub store: TimelineStore,
    /// Where an erasure that one request cannot finish goes on (the writer takes it up).
    pub publisher: InteractionPublisher,
    /// The outbound queue: replies' send jobs, for the sender.
    pub outbound: InteractionPublisher,
    /// The sender's credentials document: which endpoints can send, and whether Messenger's
    /// `HUMAN_AGENT` tag is enabled, checked before a reply is queued.
    pub credentials: throughline_sender::Credentials,
    /// How long one request works on an erasure before handing the rest to the writer.
    pub erasure_budget: std::time::Duration,
    /// Serve requests that carry no IAM caller (`TIMELINE_API_ALLOW_UNSIGNED=true`): only the
    /// local stack, whose Function URL has no authorizer in front of it. Deployed, API Gateway's
    /// IAM authorizer always names the caller, so a request without one came some other way.
    pub allow_unsigned: bool,
    /// Reasons for contact: the taxonomy and whether resolving needs one.
    pub reasons: ReasonSettings,
    /// Satisfaction surveys after resolutions (`None`: none are sent).
    pub surveys: Option<Surveys>,
    /// The company's segment definitions (`SEGMENTS`, or the SSM parameter
    /// `SEGMENTS_PARAMETER` names; read again every minute); `None`: no segments.
    pub segments: Option<Arc<Reloading<Vec<Segment>>>>,
}

/// The segments as configured now (none without `SEGMENTS`).
async fn segment_definitions(api: &TimelineApi) -> Arc<Vec<Segment>> {
    match &api.segments {
        Some(segments) => segments.current().await,
        None => Arc::new(Vec::new()),
    }
}

/// Whether the group of `root` (a conversation's customer: always a root) is in a segment
/// marked `priority`: its conversations are then `priority: high`. One Query, and none without
/// a priority segment.
async fn priority(api: &TimelineApi, root: &throughline_model::CustomerId) -> Result<bool, ApiError> {
    let segments = segment_definitions(api).await;
    if !segments.iter().any(|s| s.priority) {
        return Ok(false);
    }
    let memberships = api.store.memberships_of(root).await?;
    Ok(memberships
        .iter()
        .any(|m| segments.iter().any(|s| s.priority && s.name == m.segment)))
}

/// How the API treats reasons for contact.
#[derive(Debug, Clone, Default)]
pub struct ReasonSettings {
    /// The company's taxonomy (`REASONS_TAXONOMY`, or the SSM parameter
    /// `REASONS_TAXONOMY_PARAMETER` names), read again every `RELOAD_EVERY`; `None`: no
    /// taxonomy, so no code is known and every code given is a `400`.
    pub taxonomy: Option<ReloadingTaxonomy>,
    /// Resolving a conversation needs a confirmed reason (`REASON_REQUIRED_ON_RESOLVE=true`):
    /// `422 reason_required` otherwise.
    pub required: bool,
}

impl ReasonSettings {
    /// Reads `REASONS_TAXONOMY` (or `REASONS_TAXONOMY_PARAMETER`) and
    /// `REASON_REQUIRED_ON_RESOLVE`.
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let taxonomy = throughline_reasons::from_env(aws).await?;
        Ok(Self {
            taxonomy,
            required: config::optional_env("REASON_REQUIRED_ON_RESOLVE").as_deref() == Some("true"),
        })
    }

    async fn taxonomy(&self) -> Option<Arc<Taxonomy>> {
        match &self.taxonomy {
            Some(reloading) => Some(reloading.current().await),
            None => None,
        }
    }

    /// The taxonomy's current codes for the codes (or aliases) given, each once; `400
    /// unknown_reason` for one the taxonomy does not know.
    async fn codes(&self, given: &[String]) -> Result<Vec<String>, ApiError> {
        let taxonomy = self.taxonomy().await;
        let mut codes: Vec<String> = Vec::new();
        for (index, code) in given.iter().enumerate() {
            let known = taxonomy.as_deref().and_then(|t| t.resolve(code)).ok_or_else(|| {
                ApiError::bad(
                    "unknown_reason",
                    format!("reasons[{index}] is not a code of the taxonomy"),
                )
            })?;
            let code = known.code.as_str().to_owned();
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        Ok(codes)
    }
}

impl TimelineApi {
    /// Reads `TIMELINE_TABLE_NAME`, `SUPPRESSION_KEY` (or `SUPPRESSION_KEY_PARAMETER`),
    /// `INTERACTIONS_QUEUE_URL`, `OUTBOUND_QUEUE_URL`, `SEND_CREDENTIALS` (or
    /// `SEND_CREDENTIALS_PARAMETER`), the reasons' and surveys' settings, and the optional
    /// `TIMELINE_API_ALLOW_UNSIGNED` (`true` only on the local stack).
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let table = config::required_env("TIMELINE_TABLE_NAME")?;
        let suppression_key = config::load_secret(aws, "SUPPRESSION_KEY").await?;
        Ok(Self {
            store: TimelineStore::deployed(aws, table, suppression_key.expose())
                .with_business_hours(BusinessHours::from_env().map_err(ConfigError::Invalid)?),
            publisher: InteractionPublisher::from_env(aws)?,
            outbound: InteractionPublisher::from_env_var(aws, throughline_queue::OUTBOUND_QUEUE_URL_VAR)?,
            credentials: throughline_sender::Credentials::from_document(
                &config::load_secret(aws, "SEND_CREDENTIALS").await?,
            )?,
            erasure_budget: DEFAULT_ERASURE_BUDGET,
            allow_unsigned: config::optional_env("TIMELINE_API_ALLOW_UNSIGNED").as_deref() == Some("true"),
            reasons: ReasonSettings::from_env(aws).await?,
            surveys: Surveys::from_env(aws).await?,
            segments: Reloading::from_env(aws, "SEGMENTS", parse_segment_settings, survey::RELOAD_EVERY)
                .await?
                .map(Arc::new),
        })
    }
}

/// How long a request works on an erasure (API Gateway answers 503 after 29 s).
pub const DEFAULT_ERASURE_BUDGET: std::time::Duration = std::time::Duration::from_secs(15);

fn json_ok(value: &impl serde::Serialize) -> Response<Body> {
    json_with(StatusCode::OK, value)
}

fn json_with(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_string(value).expect("responses serialize")))
        .expect("static response parts are valid")
}

/// Serves one request.
pub async fn handle(request: Request, api: &TimelineApi) -> Response<Body> {
    let route = match route(request.method(), request.uri().path()) {
        Ok(route) => route,
        Err(error) => return error.into_response(),
    };
    let caller = match caller(&request) {
        Some(caller) => caller,
        None if api.allow_unsigned => Caller::unsigned(),
        None => return ApiError::Unauthenticated.into_response(),
    };
    let actor = |reason: Option<Reason>| Actor {
        who: caller.arn.clone(),
        principal_id: caller.principal_id.clone(),
        reason: reason.map(String::from),
    };
    let store = &api.store;
    // Boxed: every route's future is a variant of this one, and a request's future stays small.
    let result: Result<Response<Body>, ApiError> = Box::pin(async {
        let value = match route {
            Route::FindCustomer => {
                let pairs = query_pairs(request.uri().query());
                let key = param(&pairs, "identifier")
                    .ok_or_else(|| ApiError::bad("invalid_parameter", "identifier is required"))?;
                let handle = Handle::parse_key(key).map_err(|e| ApiError::bad("invalid_parameter", e.to_string()))?;
                store.find_customer(&handle).await.map(to_value)
            }
            Route::Profile(id) => store.customer_profile(&id).await.map(to_value),
            Route::Timeline(id) => {
                let query = timeline_query(request.uri().query())?;
                store
                    .timeline(&id, query.limit, query.cursor.as_deref(), &query.filter)
                    .await
                    .map(|page| to_value(TimelinePageView::from(page)))
            }
            Route::Suggestions(id) => store.suggestions(&id).await.map(|suggestions| {
                to_value(SuggestionList {
                    suggestions: suggestions.into_iter().map(Into::into).collect(),
                })
            }),
            Route::AcceptSuggestion(id, suggestion) => {
                let ReasonBody { reason } = body(&request)?;
                store
                    .accept_suggestion(&id, &suggestion, &actor(reason))
                    .await
                    .map(ledger_entry)
            }
            Route::RejectSuggestion(id, suggestion) => {
                let ReasonBody { reason } = body(&request)?;
                store
                    .reject_suggestion(&id, &suggestion, &actor(reason))
                    .await
                    .map(ledger_entry)
            }
            Route::Merge(target) => {
                let MergeBody {
                    source_customer_id,
                    reason,
                } = body(&request)?;
                store
                    .merge(&MergeRequest {
                        source: source_customer_id,
                        target,
                        actor: actor(reason),
                    })
                    .await
                    .map(ledger_entry)
            }
            Route::Unmerge(merge) => {
                let ReasonBody { reason } = body(&request)?;
                store.unmerge(&merge, &actor(reason)).await.map(ledger_entry)
            }
            Route::Ledger(id) => store.ledger(&id).await.map(|entries| {
                to_value(LedgerList {
                    entries: entries.into_iter().map(Into::into).collect(),
                })
            }),
            Route::SplitConversation(id, conversation) => {
                let SplitBody {
                    at_interaction_id,
                    reason,
                } = body(&request)?;
                store
                    .split_conversation(&id, &conversation, &at_interaction_id, &actor(reason))
                    .await
                    .map(|(conversation_id, entry)| {
                        to_value(SplitResult {
                            conversation_id,
                            ledger_entry: entry.into(),
                        })
                    })
            }
            Route::JoinConversations(id) => {
                let JoinBody {
                    conversation_ids,
                    reason,
                } = body(&request)?;
                if conversation_ids.len() < 2 {
                    return Err(ApiError::bad(
                        "invalid_body",
                        "conversation_ids needs at least two conversations",
                    ));
                }
                store
                    .join_conversations(&id, &conversation_ids, &actor(reason))
                    .await
                    .map(ledger_entry)
            }
            Route::Export(id) => {
                let pairs = query_pairs(request.uri().query());
                store
                    .export(&id, param(&pairs, "cursor"))
                    .await
                    .map(|export| to_value(ExportView::from(export)))
            }
            Route::ErasureStatus(id) => store.erasure_status(&id).await.map(to_value),
            Route::SendMessage(id) => {
                // Boxed: its searches of the timeline would make every request's future large.
                let sent = Box::pin(outbound::send_message(api, &request, &id, &caller)).await?;
                return Ok(json_with(StatusCode::ACCEPTED, &sent));
            }
            Route::RetryMessage(id, reply) => {
                let retried = Box::pin(outbound::retry_message(api, &id, &reply)).await?;
                return Ok(json_with(StatusCode::ACCEPTED, &retried));
            }
            Route::CustomerConversations(id) => {
                let taxonomy = api.reasons.taxonomy().await;
                let (customer_id, conversations) = store.customer_conversations(&id).await?;
                let priority = priority(api, &customer_id).await?;
                Ok(to_value(ConversationList {
                    customer_id,
                    conversations: conversations
                        .into_iter()
                        .map(|c| {
                            ConversationView::from(c)
                                .named_by(taxonomy.as_deref())
                                .with_priority(priority)
                        })
                        .collect(),
                }))
            }
            Route::Queue => {
                let query = queue_query(request.uri().query())?;
                store
                    .open_queue(&query.filter, query.limit, query.cursor.as_deref())
                    .await
                    .map(|page| to_value(QueuePageView::from(page)))
            }
            Route::Conversation(id) => {
                let taxonomy = api.reasons.taxonomy().await;
                let conversation = store.conversation(&id).await?;
                let priority = priority(api, &conversation.customer_id).await?;
                Ok(to_value(
                    ConversationView::from(conversation)
                        .named_by(taxonomy.as_deref())
                        .with_priority(priority),
                ))
            }
            Route::ResolveConversation(id) => {
                let ResolveBody { reasons, reason } = body(&request)?;
                let change = ConversationChange::Resolve {
                    reasons: api.reasons.codes(&reasons).await?,
                    reason_required: api.reasons.required,
                };
                return Box::pin(change_conversation(api, &id, &change, &actor(reason))).await;
            }
            Route::ReopenConversation(id) => {
                let ReasonBody { reason } = body(&request)?;
                return Box::pin(change_conversation(
                    api,
                    &id,
                    &ConversationChange::Reopen,
                    &actor(reason),
                ))
                .await;
            }
            Route::AssignConversation(id) => {
                let AssignBody { assignee, reason } = body(&request)?;
                let change = ConversationChange::Assign(assignee.map(String::from));
                return Box::pin(change_conversation(api, &id, &change, &actor(reason))).await;
            }
            Route::SetReasons(id) => {
                let ReasonsBody { reasons, reason } = body(&request)?;
                let change = ConversationChange::Reasons(api.reasons.codes(&reasons).await?);
                return Box::pin(change_conversation(api, &id, &change, &actor(reason))).await;
            }
            Route::Attributes(id) => store
                .attributes(&id)
                .await
                .map(|stored| to_value(AttributesView::from(stored))),
            Route::SetAttributes(id) => {
                let AttributesBody { attributes, reason } = body(&request)?;
                let attributes = throughline_segments::parse_attributes(&attributes)
                    .map_err(|e| ApiError::bad("invalid_body", e.to_string()))?;
                let segments = segment_definitions(api).await;
                store
                    .set_attributes(&id, &attributes, &actor(reason), &segments)
                    .await
                    .map(|(stored, entry, segments)| {
                        to_value(AttributesChangeResult {
                            attributes: stored.into(),
                            ledger_entry: entry.into(),
                            segments,
                        })
                    })
            }
            Route::SegmentMembers(name) => {
                if !segment_definitions(api).await.iter().any(|s| s.name == name) {
                    return Err(ApiError::Store(throughline_store::StoreError::NotFound(format!(
                        "segment {name}"
                    ))));
                }
                let (limit, cursor) = page_query(request.uri().query())?;
                store
                    .segment_members(&name, limit, cursor.as_deref())
                    .await
                    .map(|page| to_value(SegmentMembersView::of(name, page)))
            }
            Route::ReportSummary => return Box::pin(report(api, request.uri().query(), false)).await,
            Route::ReportDaily => return Box::pin(report(api, request.uri().query(), true)).await,
            Route::Erase(id) => {
                let ErasureBody { reason } = body(&request)?;
                let deadline = std::time::Instant::now() + api.erasure_budget;
                let erasure = store.erase(&id, &actor(Some(reason)), deadline).await?;
                return Ok(if erasure.complete {
                    json_ok(&erasure)
                } else {
                    continue_erasure(api, &erasure).await
                });
            }
        }?;
        Ok(json_ok(&value))
    })
    .await;
    result.unwrap_or_else(ApiError::into_response)
}

/// An erasure this request did not finish: the writer continues it (202, the status at
/// `Location`). If the step cannot be queued, the tombstones stand and asking again continues.
async fn continue_erasure(api: &TimelineApi, erasure: &throughline_store::Erasure) -> Response<Body> {
    let step = QueueMessage::Erasure(ErasureStep {
        customer_id: erasure.customer_id.clone(),
    });
    match api.publisher.publish(&[step]).await {
        Ok(_) => {
            let mut response = json_ok(erasure);
            *response.status_mut() = StatusCode::ACCEPTED;
            let location = format!("/customers/{}/erasure", erasure.customer_id);
            if let Ok(value) = location.parse() {
                response
                    .headers_mut()
                    .insert(lambda_http::http::header::LOCATION, value);
            }
            response
        }
        Err(error) => {
            tracing::error!(%error, "could not queue the rest of an erasure");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the erasure started and could not be handed on; ask again to continue it",
            )
        }
    }
}

/// A report from the rollups: one Query per day of the range.
async fn report(api: &TimelineApi, query: Option<&str>, daily: bool) -> Result<Response<Body>, ApiError> {
    let mut query = routes::report_query(query, chrono::Utc::now().date_naive())?;
    let taxonomy = api.reasons.taxonomy().await;
    // A reason named by an alias reports under its current code.
    if let (Some(reason), Some(taxonomy)) = (&query.filter.reason, taxonomy.as_deref())
        && let Some(known) = taxonomy.resolve(reason)
    {
        query.filter.reason = Some(known.code.as_str().to_owned());
    }
    let throughline_store::RollupRead { cells, read_units } = api.store.rollup_cells(query.from, query.to).await?;
    let read = ReportRead {
        days: usize::try_from((query.to - query.from).num_days() + 1).unwrap_or(0),
        items: cells.len(),
        read_units,
    };
    let numbers = |day: Option<chrono::NaiveDate>| {
        let of_day = cells
            .iter()
            .filter(|(d, _, _)| day.is_none_or(|day| *d == day))
            .map(|(_, sk, adds)| (sk.as_str(), adds));
        ReportNumbers::of(summarize(of_day, &query.filter), taxonomy.as_deref())
    };
    Ok(if daily {
        json_ok(&ReportDailyView {
            from: query.from,
            to: query.to,
            business_hours: query.filter.business_hours,
            days: query
                .from
                .iter_days()
                .take_while(|d| *d <= query.to)
                .map(|day| ReportDayView {
                    day,
                    numbers: numbers(Some(day)),
                })
                .collect(),
            read,
        })
    } else {
        json_ok(&ReportSummaryView {
            from: query.from,
            to: query.to,
            business_hours: query.filter.business_hours,
            numbers: numbers(None),
            read,
        })
    })
}

/// An agent's change to a conversation: the conversation as it is now and the ledger fact.
async fn change_conversation(
    api: &TimelineApi,
    conversation: &ConversationId,
    change: &ConversationChange,
    actor: &Actor,
) -> Result<Response<Body>, ApiError> {
    let changed = api.store.change_conversation(conversation, change, actor).await?;
    if changed.resolution.is_some() {
        let reasons = &changed.entry.reason_codes;
        for reason in reasons
            .iter()
            .map(String::as_str)
            .chain(reasons.is_empty().then_some("none"))
        {
            throughline_edge::metrics::count(
                "timeline-api",
                throughline_edge::metrics::CONVERSATIONS_RESOLVED,
                reason,
                1,
            );
        }
    }
    let survey = match (&api.surveys, &changed.resolution) {
        (Some(surveys), Some(resolution)) => {
            Some(Box::pin(survey::after_resolution(api, surveys, &changed, resolution)).await)
        }
        _ => None,
    };
    let taxonomy = api.reasons.taxonomy().await;
    Ok(json_ok(&ConversationChangeResult {
        conversation: ConversationView::from(changed.conversation).named_by(taxonomy.as_deref()),
        ledger_entry: changed.entry.into(),
        survey,
    }))
}

fn to_value(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("responses serialize")
}

fn ledger_entry(entry: throughline_store::LedgerEntry) -> Value {
    to_value(LedgerEntryView::from(entry))
}
