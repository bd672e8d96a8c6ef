//! The timeline API: what agents' desktops and back-office systems read and do. `route` (pure)
//! turns a method and path into a `Route`; `handle` runs it against the `TimelineStore` and
//! answers JSON; every refusal is an `ApiError` (the store's errors among them), answered by
//! `throughline_edge::error_response`, the one mapping from errors to HTTP. The contract is
//! `functions/timeline-api/openapi.yaml`; a test holds the two together.

mod error;
mod outbound;
mod request;
mod routes;
pub mod views;

#[cfg(test)]
mod tests;

pub use error::{ApiError, BAD_REQUEST_CODES};
pub use outbound::{RoutingReason, SEARCH_DEPTH};
pub use request::{Caller, MAX_REASON_BYTES, caller};
pub use routes::{ROUTES, Route, RouteBuilder, TimelineQuery, route, timeline_query};

use lambda_http::http::{StatusCode, header::CONTENT_TYPE};
use lambda_http::{Body, Request, Response};
use request::{ErasureBody, JoinBody, MergeBody, Reason, ReasonBody, SplitBody, body};
use routes::{param, query_pairs};
use serde_json::Value;
use throughline_edge::{ConfigError, config, json_error};
use throughline_model::{ErasureStep, Handle, QueueMessage};
use throughline_queue::InteractionPublisher;
use throughline_store::{Actor, MergeRequest, TimelineStore};
use views::{ExportView, LedgerEntryView, LedgerList, SplitResult, SuggestionList, TimelinePageView};

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
}

impl TimelineApi {
    /// Reads `TIMELINE_TABLE_NAME`, `SUPPRESSION_KEY` (or `SUPPRESSION_KEY_PARAMETER`),
    /// `INTERACTIONS_QUEUE_URL`, `OUTBOUND_QUEUE_URL`, `SEND_CREDENTIALS` (or
    /// `SEND_CREDENTIALS_PARAMETER`) and the optional `TIMELINE_API_ALLOW_UNSIGNED` (`true` only on
    /// the local stack).
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let table = config::required_env("TIMELINE_TABLE_NAME")?;
        let suppression_key = config::load_secret(aws, "SUPPRESSION_KEY").await?;
        Ok(Self {
            store: TimelineStore::deployed(aws, table, suppression_key.expose()),
            publisher: InteractionPublisher::from_env(aws)?,
            outbound: InteractionPublisher::from_env_var(aws, throughline_queue::OUTBOUND_QUEUE_URL_VAR)?,
            credentials: throughline_sender::Credentials::from_document(
                &config::load_secret(aws, "SEND_CREDENTIALS").await?,
            )?,
            erasure_budget: DEFAULT_ERASURE_BUDGET,
            allow_unsigned: config::optional_env("TIMELINE_API_ALLOW_UNSIGNED").as_deref() == Some("true"),
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
    let result: Result<Response<Body>, ApiError> = async {
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
    }
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

fn to_value(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("responses serialize")
}

fn ledger_entry(entry: throughline_store::LedgerEntry) -> Value {
    to_value(LedgerEntryView::from(entry))
}
