//! Why a request is not served, and how each refusal is answered.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use throughline_edge::{ErrorCode, error_response};
use throughline_model::SendRefusal;
use throughline_store::StoreError;

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
    /// The channel's rules refuse the reply (422, the refusal's code).
    Refused(SendRefusal),
    /// Nothing to answer, or no endpoint to answer from (422 `no_route`): why.
    NoRoute(String),
    /// The `Idempotency-Key` came with another request before (409).
    IdempotencyKeyReused,
    /// The outbound queue did not take the send job (503).
    QueueUnavailable,
}

/// The codes of `ApiError::BadRequest`: which part of the request is not valid.
pub const BAD_REQUEST_CODES: [&str; 9] = [
    "invalid_customer_id",
    "invalid_conversation_id",
    "invalid_suggestion_id",
    "invalid_merge_id",
    "invalid_interaction_id",
    "invalid_parameter",
    "invalid_body",
    "invalid_header",
    "unknown_reason",
];

impl ApiError {
    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(BAD_REQUEST_CODES.contains(&code), "{code} is not in BAD_REQUEST_CODES");
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn into_response(self) -> Response<Body> {
        error_response(&self)
    }
}

impl From<SendRefusal> for ApiError {
    fn from(refusal: SendRefusal) -> Self {
        ApiError::Refused(refusal)
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
            ApiError::Refused(refusal) => refusal.code(),
            ApiError::NoRoute(_) => "no_route",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::QueueUnavailable => "queue_unavailable",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Store(error) => error.status(),
            ApiError::Refused(_) | ApiError::NoRoute(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::IdempotencyKeyReused => StatusCode::CONFLICT,
            ApiError::QueueUnavailable => StatusCode::SERVICE_UNAVAILABLE,
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
            // Names the channel, limits and times: never the text.
            ApiError::Refused(refusal) => refusal.to_string(),
            ApiError::NoRoute(why) => why.clone(),
            ApiError::IdempotencyKeyReused => {
                "this Idempotency-Key was used for another request; use a new key for a new message".into()
            }
            ApiError::QueueUnavailable => {
                "the message is on the timeline as queued but could not be queued for sending; send the same request again"
                    .into()
            }
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
