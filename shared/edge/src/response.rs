//! The one mapping from a connector's verdict to an HTTP answer, and the publish-then-acknowledge
//! step: a provider gets its 2xx only after every interaction of its request is queued (or known
//! never to fit on the queue, which a retry would not change).

use std::collections::BTreeMap;

use lambda_http::http::{StatusCode, header::CONTENT_TYPE};
use lambda_http::{Body, Response};
use serde_json::json;
use throughline_model::{ErrorCode, Interaction, InteractionUpdate, QueueMessage, StatusReport, WatermarkReport};
use throughline_queue::{Dropped, InteractionPublisher};

use crate::metrics;

/// Why a request was refused. Messages name the problem and never quote the request's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Missing or wrong signature. `status` is 401 or 403, as the provider expects.
    BadSignature {
        /// 401 or 403.
        status: StatusCode,
        /// What is wrong with the signature, as the caller is told.
        reason: &'static str,
    },
    /// The body or a parameter is not what the provider sends.
    Malformed {
        /// What is wrong, as the caller is told; never the request's content.
        problem: String,
    },
    /// The body is not of the media type the webhook takes (415).
    UnsupportedMediaType {
        /// The media type it takes.
        expected: &'static str,
    },
    /// The webhook does not take this method (405).
    MethodNotAllowed {
        /// The methods it takes, as the `Allow` header lists them (`POST, GET`).
        allowed: &'static str,
    },
    /// No webhook at this path.
    NotFound,
}

impl Rejection {
    /// `Malformed`, saying `problem`.
    pub fn malformed(problem: impl Into<String>) -> Self {
        Rejection::Malformed {
            problem: problem.into(),
        }
    }

    /// The HTTP answer (`error_response`).
    pub fn into_response(self) -> Response<Body> {
        error_response(&self)
    }
}

impl ErrorCode for Rejection {
    /// Also the `RejectedRequests` metric's reason dimension.
    fn code(&self) -> &'static str {
        match self {
            Rejection::BadSignature { .. } => "bad_signature",
            Rejection::Malformed { .. } => "malformed_request",
            Rejection::UnsupportedMediaType { .. } => "unsupported_media_type",
            Rejection::MethodNotAllowed { .. } => "method_not_allowed",
            Rejection::NotFound => "not_found",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Rejection::BadSignature { status, .. } => *status,
            Rejection::Malformed { .. } => StatusCode::BAD_REQUEST,
            Rejection::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::NotFound => StatusCode::NOT_FOUND,
        }
    }

    fn allowed_methods(&self) -> Option<&str> {
        match self {
            Rejection::MethodNotAllowed { allowed } => Some(allowed),
            _ => None,
        }
    }

    fn message(&self) -> String {
        match self {
            Rejection::BadSignature { reason, .. } => (*reason).to_owned(),
            Rejection::Malformed { problem } => problem.clone(),
            Rejection::UnsupportedMediaType { expected } => format!("expected a body of type {expected}"),
            Rejection::MethodNotAllowed { allowed } => format!("method not allowed; use {allowed}"),
            Rejection::NotFound => "no webhook at this path".to_owned(),
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

/// The one mapping from an error to an HTTP answer: its status, `{"error": {"code", "message"}}`
/// and, for a 405, `Allow`. Server errors are logged (codes and operations only).
pub fn error_response(error: &dyn ErrorCode) -> Response<Body> {
    let status = error.status();
    if status.is_server_error() {
        tracing::error!(code = error.code(), %error, "request failed");
    }
    let mut response = json_error(status, error.code(), &error.message());
    if let Some(value) = error.allowed_methods().and_then(|allowed| allowed.parse().ok()) {
        response.headers_mut().insert("allow", value);
    }
    response
}

/// `{"error": {"code": ..., "message": ...}}` with the given status.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = json!({ "error": { "code": code, "message": message } }).to_string();
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("static response parts are valid")
}

/// A handshake's answer (X's CRC, Meta's challenge): 200 with `body`, or the rejection's answer.
pub fn handshake_response(result: Result<String, Rejection>, content_type: &str) -> Response<Body> {
    match result {
        Ok(body) => Response::builder()
            .status(StatusCode::OK)
            .header(CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .expect("static response parts are valid"),
        Err(rejection) => rejection.into_response(),
    }
}

/// `200` with no body: the acknowledgement providers that ignore the body get.
pub fn empty_ok() -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::Empty)
        .expect("static response parts are valid")
}

/// The reason code of an event that could not be parsed (see `Accepted::malformed_event`).
pub const MALFORMED_EVENT: &str = "malformed_event";

/// What a connector made of a verified request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accepted {
    /// New interactions, to queue.
    pub interactions: Vec<Interaction>,
    /// Changes to interactions sent before (deletions).
    pub updates: Vec<InteractionUpdate>,
    /// Statuses the provider reported for messages it was asked to send.
    pub statuses: Vec<StatusReport>,
    /// Watermarks the provider reported for customers (everything sent before a time).
    pub watermarks: Vec<WatermarkReport>,
    /// Reason codes of events acknowledged but not recorded (e.g. `status_callback`).
    pub ignored: Vec<&'static str>,
}

impl Accepted {
    /// These interactions and nothing else.
    pub fn interactions(interactions: Vec<Interaction>) -> Self {
        Self {
            interactions,
            ..Self::default()
        }
    }

    /// One event acknowledged but not recorded, for this reason code.
    pub fn ignored(reason: &'static str) -> Self {
        Self {
            ignored: vec![reason],
            ..Self::default()
        }
    }

    /// One event of the delivery cannot be parsed: it is acknowledged with the rest and counted
    /// as `malformed_event`, because refusing the delivery would make the provider resend the
    /// same bytes until it gives up on every event in them. `at` locates it in the delivery
    /// (`entry[0].messaging[3]`); `problem` says what is wrong and must not quote its content.
    pub fn malformed_event(&mut self, connector: &str, at: &str, problem: &str) {
        tracing::warn!(connector, at, problem, "malformed event acknowledged and ignored");
        self.ignored.push(MALFORMED_EVENT);
    }
}

/// Each reason once, with how many times it occurs, in reason order.
fn tally<'a>(reasons: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, u64> {
    let mut counts = BTreeMap::new();
    for reason in reasons {
        *counts.entry(reason).or_insert(0) += 1;
    }
    counts
}

/// Logs and counts events acknowledged but not recorded: one line and one metric per reason,
/// however many events a delivery holds (a Meta POST may carry 1000 read receipts).
pub fn report_ignored<'a>(connector: &str, reasons: impl IntoIterator<Item = &'a str>) {
    for (reason, count) in tally(reasons) {
        tracing::info!(connector, reason, count, "events acknowledged and ignored");
        metrics::count(connector, metrics::IGNORED_EVENTS, reason, count);
    }
}

/// Publishes what was accepted and answers: the connector's acknowledgement once every
/// interaction is queued or can never be (too large, refused by SQS as the sender's fault:
/// acknowledged and counted as ignored, since a retry would be refused the same way), 503 when
/// the queue fails otherwise (the provider retries), the rejection's answer otherwise. Logs
/// carry codes, counts and interaction ids only.
pub async fn respond(
    connector: &str,
    verdict: Result<Accepted, Rejection>,
    publisher: &InteractionPublisher,
    acknowledgement: impl FnOnce() -> Response<Body>,
) -> Response<Body> {
    let accepted = match verdict {
        Ok(accepted) => accepted,
        Err(rejection) => {
            tracing::warn!(
                connector,
                code = rejection.code(),
                status = rejection.status().as_u16(),
                "request rejected"
            );
            metrics::count(connector, metrics::REJECTED_REQUESTS, rejection.code(), 1);
            return rejection.into_response();
        }
    };
    let mut ignored = accepted.ignored;
    let ids: Vec<String> = accepted
        .interactions
        .iter()
        .map(|i| i.id.to_string())
        .chain(accepted.updates.iter().map(|u| u.interaction_id.to_string()))
        .chain(accepted.statuses.iter().map(|s| s.interaction_id.to_string()))
        // A watermark names a customer, whose handle is personal data: logged as what it is.
        .chain(accepted.watermarks.iter().map(|w| format!("watermark:{}", w.status)))
        .collect();
    let messages: Vec<QueueMessage> = accepted
        .interactions
        .into_iter()
        .map(QueueMessage::from)
        .chain(accepted.updates.into_iter().map(QueueMessage::from))
        .chain(accepted.statuses.into_iter().map(QueueMessage::from))
        .chain(accepted.watermarks.into_iter().map(QueueMessage::from))
        .collect();
    if !messages.is_empty() {
        let published = match publisher.publish(&messages).await {
            Ok(published) => published,
            Err(error) => {
                tracing::error!(connector, %error, "could not queue interactions; answering 503 so the provider retries");
                return error_response(&error);
            }
        };
        for (reason, dropped) in by_reason(&published.dropped, &ids) {
            tracing::warn!(connector, reason, count = dropped.len(), ids = ?dropped, "interactions SQS can never take were dropped");
        }
        ignored.extend(published.dropped.iter().map(|d| d.reason.code()));
        // `dropped` is in message order, so a binary search finds a message's entry.
        let queued: Vec<&str> = ids
            .iter()
            .enumerate()
            .filter(|(index, _)| published.dropped.binary_search_by_key(index, |d| d.index).is_err())
            .map(|(_, id)| id.as_str())
            .collect();
        tracing::info!(connector, count = queued.len(), ids = ?queued, "interactions queued");
        metrics::count(
            connector,
            metrics::PUBLISHED_INTERACTIONS,
            "queued",
            queued.len() as u64,
        );
    }
    report_ignored(connector, ignored);
    acknowledgement()
}

/// The ids of the dropped messages, grouped by reason code.
fn by_reason<'a>(dropped: &[Dropped], ids: &'a [String]) -> BTreeMap<&'static str, Vec<&'a str>> {
    let mut groups: BTreeMap<&'static str, Vec<&'a str>> = BTreeMap::new();
    for d in dropped {
        groups
            .entry(d.reason.code())
            .or_default()
            .extend(ids.get(d.index).map(String::as_str));
    }
    groups
}

#[cfg(test)]
mod tests {
    //! Pure tests only. `respond`'s publishing is exercised against the moto server through the
    //! real SDK in the end-to-end tests: `tests/facebook_pipeline.rs`
    //! `an_interaction_too_large_for_sqs_is_dropped_and_the_rest_queued_and_acknowledged` covers
    //! the drop path (200, the rest queued and recorded; the drop is counted as ignored under
    //! `DropReason::code`, which is tested purely in `throughline_queue`), and every
    //! `tests/*_pipeline.rs` the queued path. moto refuses an entry as the sender's fault only for
    //! an invalid `DelaySeconds`, which `InteractionPublisher` never sends, so `rejected_by_queue`
    //! is covered by `throughline_queue`'s pure `refusals` test; in `respond` it takes the same
    //! `dropped` path as `too_large`.
    use super::*;

    #[test]
    fn ignored_events_are_reported_once_per_reason_with_their_count() {
        let counts = tally(["read", "delivery", "read", MALFORMED_EVENT, "read"]);
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            vec![("delivery", 1), (MALFORMED_EVENT, 1), ("read", 3)]
        );
        assert!(tally([]).is_empty());

        let mut accepted = Accepted::ignored("status");
        accepted.malformed_event("facebook", "entry[0].messaging[1]", "missing field `id`");
        assert_eq!(accepted.ignored, vec!["status", "malformed_event"]);
    }

    #[test]
    fn dropped_messages_are_grouped_by_reason_with_their_ids() {
        use throughline_queue::DropReason;
        let ids: Vec<String> = ["ix_a", "ix_b", "ix_c"].map(String::from).to_vec();
        let dropped = [
            Dropped {
                index: 0,
                reason: DropReason::TooLarge { bytes: 300_000 },
            },
            Dropped {
                index: 1,
                reason: DropReason::RejectedByQueue {
                    code: "InvalidMessageContents".into(),
                },
            },
            Dropped {
                index: 2,
                reason: DropReason::TooLarge { bytes: 300_000 },
            },
        ];
        assert_eq!(
            by_reason(&dropped, &ids).into_iter().collect::<Vec<_>>(),
            vec![("rejected_by_queue", vec!["ix_b"]), ("too_large", vec!["ix_a", "ix_c"])]
        );
        assert!(by_reason(&[], &ids).is_empty());
    }

    fn body_json(r: Response<Body>) -> serde_json::Value {
        serde_json::from_slice(r.body().as_ref()).unwrap()
    }

    #[test]
    fn rejections_map_to_status_and_json() {
        let r = Rejection::malformed("parameter From is missing").into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let v = body_json(r);
        assert_eq!(v["error"]["code"], "malformed_request");
        assert_eq!(v["error"]["message"], "parameter From is missing");

        let r = Rejection::BadSignature {
            status: StatusCode::FORBIDDEN,
            reason: "signature does not match",
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(body_json(r)["error"]["code"], "bad_signature");

        let r = Rejection::MethodNotAllowed { allowed: "POST" }.into_response();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()["allow"], "POST");
    }
}
