//! Why a request is not served, and how each refusal is answered.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use throughline_edge::{ErrorCode, error_response};
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
