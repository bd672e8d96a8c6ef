//! The one error vocabulary. Every error Throughline answers with (a webhook's rejection, the
//! API's refusals, the store's and the queue's failures) says what it is the same three ways, and
//! `throughline_edge::error_response` is the one place that turns that into an HTTP answer.

/// An error as it is answered.
pub trait ErrorCode: std::fmt::Display {
    /// A stable machine-readable code: the API's `error.code`, a metric's reason dimension.
    fn code(&self) -> &'static str;
    /// The HTTP status the error is answered with.
    fn status(&self) -> http::StatusCode;
    /// What the caller is told. Never personal data nor stored values (`Display`, which may
    /// name ids and operations, is for logs).
    fn message(&self) -> String;
    /// For a 405: the methods the resource allows (the `Allow` header).
    fn allowed_methods(&self) -> Option<&str> {
        None
    }
}
