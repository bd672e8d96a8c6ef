//! The timeline API: what agents' desktops and back-office systems read and do. `route` (pure)
//! turns a method and path into a `Route`; `handle` runs it against the `TimelineStore` and
//! answers JSON; every refusal is an `ApiError` (the store's errors among them), answered by
//! `throughline_edge::error_response`, the one mapping from errors to HTTP. The contract is
//! `functions/timeline-api/openapi.yaml`; a test holds the two together.

pub mod views;

use lambda_http::http::{Method, StatusCode, header::CONTENT_TYPE};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::Value;
use throughline_edge::{ConfigError, ErrorCode, config, error_response, json_error};
use throughline_model::{
    Channel, ConversationId, CustomerId, Direction, ErasureStep, Handle, InteractionId, MergeId, QueueMessage,
    SuggestionId,
};
use throughline_queue::InteractionPublisher;
use throughline_store::{Actor, MergeRequest, StoreError, TimelineFilter, TimelineStore};
use views::{ExportView, LedgerEntryView, LedgerList, SplitResult, SuggestionList, TimelinePageView};

/// The default page size of a timeline.
pub const DEFAULT_PAGE_SIZE: usize = 50;

/// Everything the API needs: built by `main`, or by tests against the local stack.
#[derive(Debug, Clone)]
pub struct TimelineApi {
    pub store: TimelineStore,
    /// Where an erasure that one request cannot finish goes on (the writer takes it up).
    pub publisher: InteractionPublisher,
    /// How long one request works on an erasure before handing the rest to the writer.
    pub erasure_budget: std::time::Duration,
    /// Serve requests that carry no IAM caller (`TIMELINE_API_ALLOW_UNSIGNED=true`): only the
    /// local stack, whose Function URL has no authorizer in front of it. Deployed, API Gateway's
    /// IAM authorizer always names the caller, so a request without one came some other way.
    pub allow_unsigned: bool,
}

impl TimelineApi {
    /// Reads `TIMELINE_TABLE_NAME`, `SUPPRESSION_KEY` (or `SUPPRESSION_KEY_PARAMETER`),
    /// `INTERACTIONS_QUEUE_URL` and the optional `TIMELINE_API_ALLOW_UNSIGNED` (`true` only on
    /// the local stack).
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let table = config::required_env("TIMELINE_TABLE_NAME")?;
        let suppression_key = config::load_secret(aws, "SUPPRESSION_KEY").await?;
        Ok(Self {
            store: TimelineStore::deployed(aws, table, suppression_key.expose()),
            publisher: InteractionPublisher::from_env(aws)?,
            erasure_budget: DEFAULT_ERASURE_BUDGET,
            allow_unsigned: config::optional_env("TIMELINE_API_ALLOW_UNSIGNED").as_deref() == Some("true"),
        })
    }
}

/// How long a request works on an erasure (API Gateway answers 503 after 29 s).
pub const DEFAULT_ERASURE_BUDGET: std::time::Duration = std::time::Duration::from_secs(15);

/// The longest `reason` an agent may give (bytes): it is stored on ledger entries.
pub const MAX_REASON_BYTES: usize = 1024;

/// One operation of the API, with its path parameters parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    FindCustomer,
    Profile(CustomerId),
    Timeline(CustomerId),
    Suggestions(CustomerId),
    AcceptSuggestion(CustomerId, SuggestionId),
    RejectSuggestion(CustomerId, SuggestionId),
    Merge(CustomerId),
    Unmerge(MergeId),
    Ledger(CustomerId),
    SplitConversation(CustomerId, ConversationId),
    JoinConversations(CustomerId),
    Export(CustomerId),
    Erase(CustomerId),
    ErasureStatus(CustomerId),
}

/// How a route's path parameters (in template order) make its `Route`.
pub type RouteBuilder = fn(&[&str]) -> Result<Route, ApiError>;

/// Every route: its method, its path template as the OpenAPI document writes it, and how its
/// parameters make the `Route`. The one table: `route` matches requests against it, and the
/// OpenAPI test compares it with the document.
pub const ROUTES: [(&str, &str, RouteBuilder); 14] = [
    ("GET", "/customers", |_| Ok(Route::FindCustomer)),
    ("GET", "/customers/{customer_id}", |p| {
        Ok(Route::Profile(customer(p[0])?))
    }),
    ("DELETE", "/customers/{customer_id}", |p| {
        Ok(Route::Erase(customer(p[0])?))
    }),
    ("GET", "/customers/{customer_id}/timeline", |p| {
        Ok(Route::Timeline(customer(p[0])?))
    }),
    ("GET", "/customers/{customer_id}/suggestions", |p| {
        Ok(Route::Suggestions(customer(p[0])?))
    }),
    (
        "POST",
        "/customers/{customer_id}/suggestions/{suggestion_id}/accept",
        |p| Ok(Route::AcceptSuggestion(customer(p[0])?, suggestion_id(p[1])?)),
    ),
    (
        "POST",
        "/customers/{customer_id}/suggestions/{suggestion_id}/reject",
        |p| Ok(Route::RejectSuggestion(customer(p[0])?, suggestion_id(p[1])?)),
    ),
    ("POST", "/customers/{customer_id}/merge", |p| {
        Ok(Route::Merge(customer(p[0])?))
    }),
    ("POST", "/merges/{merge_id}/unmerge", |p| {
        Ok(Route::Unmerge(merge_id(p[0])?))
    }),
    ("GET", "/customers/{customer_id}/ledger", |p| {
        Ok(Route::Ledger(customer(p[0])?))
    }),
    (
        "POST",
        "/customers/{customer_id}/conversations/{conversation_id}/split",
        |p| {
            let conversation = ConversationId::try_from(p[1].to_owned())
                .map_err(|e| ApiError::bad("invalid_conversation_id", e.to_string()))?;
            Ok(Route::SplitConversation(customer(p[0])?, conversation))
        },
    ),
    ("POST", "/customers/{customer_id}/conversations/join", |p| {
        Ok(Route::JoinConversations(customer(p[0])?))
    }),
    ("GET", "/customers/{customer_id}/export", |p| {
        Ok(Route::Export(customer(p[0])?))
    }),
    ("GET", "/customers/{customer_id}/erasure", |p| {
        Ok(Route::ErasureStatus(customer(p[0])?))
    }),
];

/// Why a request is not served: refused before the store is asked anything, or the store's
/// own answer (`From<StoreError>`, so handlers use `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No IAM caller in the request context (and unsigned requests are not allowed).
    Unauthenticated,
    NotFound,
    /// The methods the path allows, for the `Allow` header.
    MethodNotAllowed(String),
    BadRequest {
        code: &'static str,
        message: String,
    },
    Store(StoreError),
}

/// The codes of `ApiError::BadRequest`: which part of the request is not valid.
pub const BAD_REQUEST_CODES: [&str; 6] = [
    "invalid_customer_id",
    "invalid_conversation_id",
    "invalid_suggestion_id",
    "invalid_merge_id",
    "invalid_parameter",
    "invalid_body",
];

impl ApiError {
    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(BAD_REQUEST_CODES.contains(&code), "{code} is not in BAD_REQUEST_CODES");
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    fn into_response(self) -> Response<Body> {
        error_response(&self)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::Store(error)
    }
}

impl ErrorCode for ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::BadRequest { code, .. } => code,
            ApiError::Store(error) => error.code(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Store(error) => error.status(),
        }
    }

    fn allowed_methods(&self) -> Option<&str> {
        match self {
            ApiError::MethodNotAllowed(allowed) => Some(allowed),
            _ => None,
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Unauthenticated => "no IAM caller: call the API through its IAM-authorized endpoint".into(),
            ApiError::NotFound => "no such route".into(),
            ApiError::MethodNotAllowed(allowed) => format!("method not allowed; use {allowed}"),
            ApiError::BadRequest { message, .. } => message.clone(),
            ApiError::Store(error) => error.message(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The store's Display names the operation that failed: for the log.
            ApiError::Store(error) => error.fmt(f),
            _ => write!(f, "{}: {}", self.code(), self.message()),
        }
    }
}

fn suggestion_id(segment: &str) -> Result<SuggestionId, ApiError> {
    SuggestionId::try_from(segment.to_owned()).map_err(|_| {
        ApiError::bad(
            "invalid_suggestion_id",
            "not a valid id: expected 'sg_' and 32 characters",
        )
    })
}

fn merge_id(segment: &str) -> Result<MergeId, ApiError> {
    MergeId::parse(segment)
        .ok_or_else(|| ApiError::bad("invalid_merge_id", "not a valid id: expected 'mg_' and 26 characters"))
}

fn customer(segment: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(segment)
        .ok_or_else(|| ApiError::bad("invalid_customer_id", "a customer id is 'cus_' and a lowercase ULID"))
}

/// The route of a method and path (a trailing slash is ignored).
pub fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // The path decides first, then the method (405 naming what the path allows), then the
    // parameters' values.
    let mut allowed: Vec<&str> = Vec::new();
    for (route_method, template, build) in ROUTES {
        let Some(parameters) = path_parameters(template, &segments) else {
            continue;
        };
        if method.as_str() == route_method {
            return build(&parameters);
        }
        allowed.push(route_method);
    }
    if allowed.is_empty() {
        Err(ApiError::NotFound)
    } else {
        Err(ApiError::MethodNotAllowed(allowed.join(", ")))
    }
}

/// The values of a template's `{parameters}` if `segments` is a path of that template.
fn path_parameters<'a>(template: &str, segments: &[&'a str]) -> Option<Vec<&'a str>> {
    let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut parameters = Vec::new();
    for (part, segment) in parts.iter().zip(segments) {
        if part.starts_with('{') {
            parameters.push(*segment);
        } else if part != segment {
            return None;
        }
    }
    Some(parameters)
}

/// The query parameters, decoded (`application/x-www-form-urlencoded`, as browsers and
/// API Gateway send them).
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A timeline request's page size, cursor and filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineQuery {
    pub limit: usize,
    pub cursor: Option<String>,
    pub filter: TimelineFilter,
}

pub fn timeline_query(query: Option<&str>) -> Result<TimelineQuery, ApiError> {
    let pairs = query_pairs(query);
    let limit = match param(&pairs, "limit") {
        None => DEFAULT_PAGE_SIZE,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (1..=throughline_store::MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                return Err(ApiError::bad(
                    "invalid_parameter",
                    "limit must be a number from 1 to 100",
                ));
            }
        },
    };
    let time = |name: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
        param(&pairs, name)
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .map(|t| t.to_utc())
                    .map_err(|_| ApiError::bad("invalid_parameter", format!("{name} must be an RFC 3339 time")))
            })
            .transpose()
    };
    let filter = TimelineFilter {
        channel: param(&pairs, "channel")
            .map(|c| {
                Channel::parse(c).ok_or_else(|| ApiError::bad("invalid_parameter", "channel is not a known channel"))
            })
            .transpose()?,
        direction: param(&pairs, "direction")
            .map(|d| match d {
                "inbound" => Ok(Direction::Inbound),
                "outbound" => Ok(Direction::Outbound),
                _ => Err(ApiError::bad(
                    "invalid_parameter",
                    "direction must be inbound or outbound",
                )),
            })
            .transpose()?,
        conversation: param(&pairs, "conversation")
            .map(|c| {
                ConversationId::try_from(c.to_owned()).map_err(|e| ApiError::bad("invalid_parameter", e.to_string()))
            })
            .transpose()?,
        from: time("from")?,
        to: time("to")?,
    };
    Ok(TimelineQuery {
        limit,
        cursor: param(&pairs, "cursor").map(str::to_owned),
        filter,
    })
}

fn json_ok(value: &impl serde::Serialize) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_string(value).expect("responses serialize")))
        .expect("static response parts are valid")
}

/// Who is calling, as API Gateway's IAM authorizer authenticated them: the principal's ARN
/// and its unique id. An assumed role's ARN ends in a session name the caller chose; the
/// principal id (`AROA…:<session>`) names the role itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub arn: String,
    pub principal_id: Option<String>,
}

impl Caller {
    /// The caller of an unsigned request on the local stack.
    fn unsigned() -> Self {
        Caller {
            arn: "unauthenticated".into(),
            principal_id: None,
        }
    }
}

/// The IAM caller of a request, if its context names one.
pub fn caller(request: &Request) -> Option<Caller> {
    use lambda_http::request::RequestContext;
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            let iam = context.authorizer.as_ref()?.iam.as_ref()?;
            Some(Caller {
                arn: iam.user_arn.clone().filter(|a| !a.is_empty())?,
                principal_id: iam
                    .user_id
                    .clone()
                    .or_else(|| iam.caller_id.clone())
                    .filter(|p| !p.is_empty()),
            })
        }
        _ => None,
    }
}

/// A free-text reason for a change, at most `MAX_REASON_BYTES`: stored on ledger entries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
struct Reason(String);

impl TryFrom<String> for Reason {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if text.len() > MAX_REASON_BYTES {
            return Err(format!("reason is longer than {MAX_REASON_BYTES} bytes"));
        }
        Ok(Reason(text))
    }
}

impl From<Reason> for String {
    fn from(reason: Reason) -> Self {
        reason.0
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: Option<Reason>,
}

/// Erasure is irreversible: the privacy officer says why (a ticket, a request reference).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErasureBody {
    reason: Reason,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    source_customer_id: CustomerId,
    #[serde(default)]
    reason: Option<Reason>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitBody {
    at_interaction_id: InteractionId,
    #[serde(default)]
    reason: Option<Reason>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    conversation_ids: Vec<ConversationId>,
    #[serde(default)]
    reason: Option<Reason>,
}

/// The request body as `T`; an empty body is `{}`.
fn body<T: serde::de::DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let bytes = request.body().as_ref();
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        // serde's message names the field and the rule, never the value's content.
        ApiError::bad(
            "invalid_body",
            format!(
                "body is not valid: {}",
                e.to_string().split(" at line").next().unwrap_or("")
            ),
        )
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    const ADA: &str = "cus_01jb2k8z7m3q4r5s6t7v8w9x0y";

    #[test]
    fn routes_parse_their_parameters_and_refuse_the_rest() {
        assert_eq!(route(&Method::GET, "/customers"), Ok(Route::FindCustomer));
        let ada = CustomerId::parse(ADA).unwrap();
        assert_eq!(
            route(&Method::GET, &format!("/customers/{ADA}/")),
            Ok(Route::Profile(ada.clone()))
        );
        assert_eq!(
            route(&Method::DELETE, &format!("/customers/{ADA}")),
            Ok(Route::Erase(ada.clone()))
        );
        let merge = MergeId::parse(&format!("mg_{}", "0".repeat(26))).unwrap();
        assert_eq!(
            route(&Method::POST, &format!("/merges/{merge}/unmerge")),
            Ok(Route::Unmerge(merge))
        );
        assert!(matches!(
            route(&Method::POST, "/merges/mg_1/unmerge"),
            Err(ApiError::BadRequest {
                code: "invalid_merge_id",
                ..
            })
        ));
        assert!(matches!(
            route(&Method::POST, &format!("/customers/{ADA}/suggestions/sg_x/accept")),
            Err(ApiError::BadRequest {
                code: "invalid_suggestion_id",
                ..
            })
        ));
        assert_eq!(
            route(&Method::POST, &format!("/customers/{ADA}/timeline")),
            Err(ApiError::MethodNotAllowed("GET".into()))
        );
        assert_eq!(route(&Method::GET, "/nothing/here"), Err(ApiError::NotFound));
        assert!(matches!(
            route(&Method::GET, "/customers/ada"),
            Err(ApiError::BadRequest {
                code: "invalid_customer_id",
                ..
            })
        ));
        assert!(matches!(
            route(&Method::POST, &format!("/customers/{ADA}/conversations/cv_x/split")),
            Err(ApiError::BadRequest {
                code: "invalid_conversation_id",
                ..
            })
        ));
    }

    /// One of every store error. The match has no wildcard: a new variant does not compile
    /// until it is added here, and so to the comparison with openapi.yaml below.
    fn every_store_error() -> Vec<StoreError> {
        let all = vec![
            StoreError::Dynamo {
                operation: "GetItem",
                message: "m".into(),
            },
            StoreError::ObjectStore {
                operation: "DeleteObject",
                message: "m".into(),
            },
            StoreError::Unconfigured("x"),
            StoreError::Corrupt("x".into()),
            StoreError::BadCursor,
            StoreError::CustomerNotFound("x".into()),
            StoreError::CustomerErased("x".into()),
            StoreError::NotFound("x".into()),
            StoreError::AlreadyMerged,
            StoreError::NotMerged("x".into()),
            StoreError::GroupTooLarge { items: 101, limit: 100 },
            StoreError::SuggestionDecided("x".into()),
            StoreError::NothingToSplit,
            StoreError::NothingToJoin,
            StoreError::Contention("x"),
        ];
        for error in &all {
            match error {
                StoreError::Dynamo { .. }
                | StoreError::ObjectStore { .. }
                | StoreError::Unconfigured(_)
                | StoreError::Corrupt(_)
                | StoreError::BadCursor
                | StoreError::CustomerNotFound(_)
                | StoreError::CustomerErased(_)
                | StoreError::NotFound(_)
                | StoreError::AlreadyMerged
                | StoreError::NotMerged(_)
                | StoreError::GroupTooLarge { .. }
                | StoreError::SuggestionDecided(_)
                | StoreError::NothingToSplit
                | StoreError::NothingToJoin
                | StoreError::Contention(_) => {}
            }
        }
        all
    }

    #[test]
    fn the_error_codes_are_exactly_the_ones_openapi_documents() {
        let spec: serde_yaml_ng::Value = serde_yaml_ng::from_str(include_str!("../openapi.yaml")).unwrap();
        let documented: std::collections::BTreeSet<String> =
            spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
                .as_sequence()
                .expect("Error.error.code has an enum")
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect();
        let mut answered: Vec<ApiError> = vec![
            ApiError::Unauthenticated,
            ApiError::NotFound,
            ApiError::MethodNotAllowed("GET".into()),
        ];
        answered.extend(BAD_REQUEST_CODES.iter().map(|code| ApiError::bad(code, "m")));
        answered.extend(every_store_error().into_iter().map(ApiError::from));
        let codes: std::collections::BTreeSet<String> = answered.iter().map(|e| e.code().to_owned()).collect();
        assert_eq!(codes, documented);
        // And each is answered as the one mapping says.
        for error in &answered {
            let response = error.clone().into_response();
            let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
            assert_eq!(response.status(), error.status());
            assert_eq!(body["error"]["code"], error.code());
        }
    }

    #[test]
    fn the_string_enums_openapi_lists_are_exactly_the_models() {
        use throughline_model::{Evidence, EvidenceSource, IdentifierSource, Provider, SenderCheck};
        use throughline_store::{LedgerAction, SuggestionStatus};
        let spec: serde_yaml_ng::Value = serde_yaml_ng::from_str(include_str!("../openapi.yaml")).unwrap();
        let documented = |name: &str| -> Vec<String> {
            spec["components"]["schemas"][name]["enum"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{name} has an enum"))
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        let names = |all: &[&str]| all.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(documented("Channel"), names(&Channel::ALL.map(Channel::as_str)));
        assert_eq!(documented("Provider"), names(&Provider::ALL.map(Provider::as_str)));
        assert_eq!(documented("Direction"), names(&Direction::ALL.map(Direction::as_str)));
        assert_eq!(documented("Evidence"), names(&Evidence::ALL.map(Evidence::as_str)));
        assert_eq!(
            documented("EvidenceSource"),
            names(&EvidenceSource::ALL.map(EvidenceSource::as_str))
        );
        assert_eq!(
            documented("SenderCheck"),
            names(&SenderCheck::ALL.map(SenderCheck::as_str))
        );
        let sources: Vec<&str> = Provider::ALL
            .map(|p| IdentifierSource::Provider(p).as_str())
            .into_iter()
            .chain(EvidenceSource::ALL.map(|e| IdentifierSource::Evidence(e).as_str()))
            .collect();
        assert_eq!(documented("IdentifierSource"), names(&sources));
        assert_eq!(
            documented("SuggestionStatus"),
            names(&SuggestionStatus::ALL.map(SuggestionStatus::as_str))
        );
        assert_eq!(
            documented("LedgerAction"),
            names(&LedgerAction::ALL.map(LedgerAction::as_str))
        );
    }

    #[test]
    fn every_listed_route_is_served() {
        for (method, template, _) in ROUTES {
            let path = template
                .replace("{customer_id}", ADA)
                .replace("{suggestion_id}", &format!("sg_{}", "a".repeat(32)))
                .replace("{merge_id}", &format!("mg_{}", "0".repeat(26)))
                .replace("{conversation_id}", &format!("cv_{}", "a".repeat(32)));
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            assert!(route(&method, &path).is_ok(), "{method} {path}");
        }
    }

    #[test]
    fn timeline_queries_parse_filters_and_refuse_bad_values() {
        let q = timeline_query(Some(
            "limit=20&channel=whatsapp&direction=inbound&from=2026-11-24T00%3A00%3A00Z&cursor=abc",
        ))
        .unwrap();
        assert_eq!(q.limit, 20);
        assert_eq!(q.filter.channel, Some(Channel::Whatsapp));
        assert_eq!(q.filter.direction, Some(Direction::Inbound));
        assert_eq!(q.filter.from.unwrap().to_rfc3339(), "2026-11-24T00:00:00+00:00");
        assert_eq!(q.cursor.as_deref(), Some("abc"));
        assert_eq!(timeline_query(None).unwrap().limit, DEFAULT_PAGE_SIZE);
        for bad in [
            "limit=0",
            "limit=101",
            "limit=x",
            "channel=fax",
            "direction=up",
            "from=yesterday",
            "conversation=cv_1",
        ] {
            assert!(timeline_query(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_sample_events_route_and_name_their_iam_caller() {
        let dir = throughline_testkit::events::event_path("timeline-api");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let request = lambda_http::request::from_str(&text).unwrap();
            assert!(
                route(request.method(), request.uri().path()).is_ok(),
                "{}",
                request.uri()
            );
            assert_eq!(
                caller(&request),
                Some(Caller {
                    arn: "arn:aws:sts::123456789012:assumed-role/ThroughlineAgents/grace".into(),
                    principal_id: Some("AROAEXAMPLE:grace".into()),
                })
            );
            seen += 1;
        }
        assert_eq!(seen, 4);
        let unsigned = lambda_http::http::Request::builder()
            .uri("https://x/customers")
            .body(Body::Empty)
            .unwrap();
        assert_eq!(
            caller(&unsigned),
            None,
            "no IAM caller: refused unless the stack is local"
        );
    }

    #[test]
    fn percent_decoding() {
        let pairs = query_pairs(Some("a=phone%3A%2B14155550100&b=a+b&c=100%&d=%zz"));
        let decoded: Vec<&str> = pairs.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(decoded, ["phone:+14155550100", "a b", "100%", "%zz"]);
    }

    #[test]
    fn store_errors_map_to_stable_codes() {
        let status_and_code = |e: StoreError| {
            let r = ApiError::from(e).into_response();
            let v: Value = serde_json::from_slice(r.body().as_ref()).unwrap();
            (r.status().as_u16(), v["error"]["code"].as_str().unwrap().to_owned())
        };
        assert_eq!(status_and_code(StoreError::BadCursor), (400, "bad_cursor".into()));
        assert_eq!(
            status_and_code(StoreError::CustomerNotFound("x".into())),
            (404, "customer_not_found".into())
        );
        assert_eq!(
            status_and_code(StoreError::CustomerErased("x".into())),
            (404, "customer_erased".into())
        );
        assert_eq!(
            status_and_code(StoreError::AlreadyMerged),
            (409, "already_merged".into())
        );
        assert_eq!(
            status_and_code(StoreError::Contention("x")),
            (503, "store_unavailable".into())
        );
        assert_eq!(
            status_and_code(StoreError::ObjectStore {
                operation: "DeleteObject",
                message: "m".into()
            }),
            (503, "store_unavailable".into())
        );
        assert_eq!(status_and_code(StoreError::Unconfigured("x")), (500, "internal".into()));
    }
}
