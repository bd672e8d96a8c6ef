//! The routes: one table of method, path template and how the parameters make the `Route`,
//! and the pure matching of a request against it; the timeline's query parameters.

use lambda_http::http::Method;
use throughline_model::{
    Channel, ConversationId, CustomerId, DeliveryStatus, Direction, InteractionId, MergeId, SuggestionId,
};
use throughline_service::rollup::ReportFilter;
use throughline_store::{QueueFilter, TimelineFilter};

use crate::{ApiError, DEFAULT_PAGE_SIZE};

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
    SendMessage(CustomerId),
    RetryMessage(CustomerId, InteractionId),
    CustomerConversations(CustomerId),
    Queue,
    Conversation(ConversationId),
    ResolveConversation(ConversationId),
    ReopenConversation(ConversationId),
    AssignConversation(ConversationId),
    SetReasons(ConversationId),
    ReportSummary,
    ReportDaily,
    Attributes(CustomerId),
    SetAttributes(CustomerId),
    SegmentMembers(String),
}

/// How a route's path parameters (in template order) make its `Route`.
pub type RouteBuilder = fn(&[&str]) -> Result<Route, ApiError>;

/// Every route: its method, its path template as the OpenAPI document writes it, and how its
/// parameters make the `Route`. The one table: `route` matches requests against it, and the
/// OpenAPI test compares it with the document.
pub const ROUTES: [(&str, &str, RouteBuilder); 28] = [
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
        |p| Ok(Route::SplitConversation(customer(p[0])?, conversation_id(p[1])?)),
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
    ("POST", "/customers/{customer_id}/messages", |p| {
        Ok(Route::SendMessage(customer(p[0])?))
    }),
    (
        "POST",
        "/customers/{customer_id}/messages/{interaction_id}/retry",
        |p| {
            let interaction = InteractionId::try_from(p[1].to_owned())
                .map_err(|_| ApiError::bad("invalid_interaction_id", "an interaction id is 'ix_' and 32 hex digits"))?;
            Ok(Route::RetryMessage(customer(p[0])?, interaction))
        },
    ),
    ("GET", "/customers/{customer_id}/conversations", |p| {
        Ok(Route::CustomerConversations(customer(p[0])?))
    }),
    ("GET", "/conversations", |_| Ok(Route::Queue)),
    ("GET", "/conversations/{conversation_id}", |p| {
        Ok(Route::Conversation(conversation_id(p[0])?))
    }),
    ("POST", "/conversations/{conversation_id}/resolve", |p| {
        Ok(Route::ResolveConversation(conversation_id(p[0])?))
    }),
    ("POST", "/conversations/{conversation_id}/reopen", |p| {
        Ok(Route::ReopenConversation(conversation_id(p[0])?))
    }),
    ("POST", "/conversations/{conversation_id}/assign", |p| {
        Ok(Route::AssignConversation(conversation_id(p[0])?))
    }),
    ("PUT", "/conversations/{conversation_id}/reasons", |p| {
        Ok(Route::SetReasons(conversation_id(p[0])?))
    }),
    ("GET", "/reports/summary", |_| Ok(Route::ReportSummary)),
    ("GET", "/reports/daily", |_| Ok(Route::ReportDaily)),
    ("GET", "/customers/{customer_id}/attributes", |p| {
        Ok(Route::Attributes(customer(p[0])?))
    }),
    ("PUT", "/customers/{customer_id}/attributes", |p| {
        Ok(Route::SetAttributes(customer(p[0])?))
    }),
    ("GET", "/segments/{segment}/customers", |p| {
        if !throughline_segments::valid_name(p[0]) {
            return Err(ApiError::bad("invalid_parameter", "segment names are [a-z0-9_]{1,64}"));
        }
        Ok(Route::SegmentMembers(p[0].to_owned()))
    }),
];

pub(crate) fn conversation_id(segment: &str) -> Result<ConversationId, ApiError> {
    ConversationId::try_from(segment.to_owned()).map_err(|e| ApiError::bad("invalid_conversation_id", e.to_string()))
}

pub(crate) fn suggestion_id(segment: &str) -> Result<SuggestionId, ApiError> {
    SuggestionId::try_from(segment.to_owned()).map_err(|_| {
        ApiError::bad(
            "invalid_suggestion_id",
            "not a valid id: expected 'sg_' and 32 characters",
        )
    })
}

pub(crate) fn merge_id(segment: &str) -> Result<MergeId, ApiError> {
    MergeId::parse(segment)
        .ok_or_else(|| ApiError::bad("invalid_merge_id", "not a valid id: expected 'mg_' and 26 characters"))
}

pub(crate) fn customer(segment: &str) -> Result<CustomerId, ApiError> {
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
pub(crate) fn path_parameters<'a>(template: &str, segments: &[&'a str]) -> Option<Vec<&'a str>> {
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
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

pub(crate) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A timeline request's page size, cursor and filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineQuery {
    pub limit: usize,
    pub cursor: Option<String>,
    pub filter: TimelineFilter,
}

/// A page's `limit`: 1 to 100, `DEFAULT_PAGE_SIZE` when absent.
fn page_limit(pairs: &[(String, String)]) -> Result<usize, ApiError> {
    match param(pairs, "limit") {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (1..=throughline_store::MAX_PAGE_SIZE).contains(&n) => Ok(n),
            _ => Err(ApiError::bad(
                "invalid_parameter",
                "limit must be a number from 1 to 100",
            )),
        },
    }
}

fn channel_param(pairs: &[(String, String)]) -> Result<Option<Channel>, ApiError> {
    param(pairs, "channel")
        .map(|c| Channel::parse(c).ok_or_else(|| ApiError::bad("invalid_parameter", "channel is not a known channel")))
        .transpose()
}

/// The queue's page size, cursor and filters (`GET /conversations`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueQuery {
    pub(crate) limit: usize,
    pub(crate) cursor: Option<String>,
    pub(crate) filter: QueueFilter,
}

pub(crate) fn queue_query(query: Option<&str>) -> Result<QueueQuery, ApiError> {
    let pairs = query_pairs(query);
    match param(&pairs, "status") {
        None | Some("open") => {}
        Some(_) => {
            return Err(ApiError::bad(
                "invalid_parameter",
                "status must be open: the queue lists open conversations (a customer's conversations of any status are at /customers/{customer_id}/conversations)",
            ));
        }
    }
    Ok(QueueQuery {
        limit: page_limit(&pairs)?,
        cursor: param(&pairs, "cursor").map(str::to_owned),
        filter: QueueFilter {
            channel: channel_param(&pairs)?,
            assignee: param(&pairs, "assignee").map(str::to_owned),
        },
    })
}

/// A page of a listing by cursor: its size and where it starts.
pub(crate) fn page_query(query: Option<&str>) -> Result<(usize, Option<String>), ApiError> {
    let pairs = query_pairs(query);
    Ok((page_limit(&pairs)?, param(&pairs, "cursor").map(str::to_owned)))
}

/// A report's days (UTC dates, both included) and filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportQuery {
    pub(crate) from: chrono::NaiveDate,
    pub(crate) to: chrono::NaiveDate,
    pub(crate) filter: ReportFilter,
}

/// The days a report covers by default: the last 7, today included.
pub(crate) const DEFAULT_REPORT_DAYS: i64 = 7;

pub(crate) fn report_query(query: Option<&str>, today: chrono::NaiveDate) -> Result<ReportQuery, ApiError> {
    let pairs = query_pairs(query);
    let day = |name: &str| -> Result<Option<chrono::NaiveDate>, ApiError> {
        param(&pairs, name)
            .map(|d| {
                chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| ApiError::bad("invalid_parameter", format!("{name} must be a date (YYYY-MM-DD)")))
            })
            .transpose()
    };
    let to = day("to")?.unwrap_or(today);
    let from = day("from")?.unwrap_or(to - chrono::TimeDelta::days(DEFAULT_REPORT_DAYS - 1));
    if from > to {
        return Err(ApiError::bad("invalid_parameter", "from must not be after to"));
    }
    if (to - from).num_days() >= throughline_store::MAX_REPORT_DAYS {
        return Err(ApiError::bad(
            "invalid_parameter",
            format!("a report covers at most {} days", throughline_store::MAX_REPORT_DAYS),
        ));
    }
    let business_hours = match param(&pairs, "business_hours") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::bad(
                "invalid_parameter",
                "business_hours must be true or false",
            ));
        }
    };
    Ok(ReportQuery {
        from,
        to,
        filter: ReportFilter {
            channel: channel_param(&pairs)?,
            reason: param(&pairs, "reason").map(str::to_owned),
            assignee: param(&pairs, "assignee").map(str::to_owned),
            business_hours,
        },
    })
}

pub fn timeline_query(query: Option<&str>) -> Result<TimelineQuery, ApiError> {
    let pairs = query_pairs(query);
    let limit = page_limit(&pairs)?;
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
        channel: channel_param(&pairs)?,
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
        status: param(&pairs, "status")
            .map(|s| {
                DeliveryStatus::parse(s).ok_or_else(|| {
                    ApiError::bad(
                        "invalid_parameter",
                        "status must be a delivery status (queued, sent, delivered, read, failed, undelivered, unknown)",
                    )
                })
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
