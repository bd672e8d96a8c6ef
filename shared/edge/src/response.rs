//! The one mapping from a connector's verdict to an HTTP answer, and the publish-then-acknowledge
//! step: a provider gets its 2xx only after every interaction of its request is queued.

use lambda_http::http::{StatusCode, header::CONTENT_TYPE};
use lambda_http::{Body, Response};
use serde_json::json;
use throughline_model::{Interaction, InteractionUpdate, QueueMessage};
use throughline_queue::InteractionPublisher;

use crate::metrics;

/// Why a request was refused. Messages name the problem and never quote the request's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Missing or wrong signature. `status` is 401 or 403, as the provider expects.
    BadSignature {
        status: StatusCode,
        reason: &'static str,
    },
    /// The body or a parameter is not what the provider sends.
    Malformed {
        problem: String,
    },
    UnsupportedMediaType {
        expected: &'static str,
    },
    MethodNotAllowed {
        allowed: &'static str,
    },
    /// No webhook at this path.
    NotFound,
}

impl Rejection {
    pub fn malformed(problem: impl Into<String>) -> Self {
        Rejection::Malformed {
            problem: problem.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::BadSignature { status, .. } => *status,
            Rejection::Malformed { .. } => StatusCode::BAD_REQUEST,
            Rejection::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::NotFound => StatusCode::NOT_FOUND,
        }
    }

    /// A stable machine-readable code, also the metric's reason dimension.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::BadSignature { .. } => "bad_signature",
            Rejection::Malformed { .. } => "malformed_request",
            Rejection::UnsupportedMediaType { .. } => "unsupported_media_type",
            Rejection::MethodNotAllowed { .. } => "method_not_allowed",
            Rejection::NotFound => "not_found",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Rejection::BadSignature { reason, .. } => (*reason).to_owned(),
            Rejection::Malformed { problem } => problem.clone(),
            Rejection::UnsupportedMediaType { expected } => format!("expected a body of type {expected}"),
            Rejection::MethodNotAllowed { allowed } => format!("method not allowed; use {allowed}"),
            Rejection::NotFound => "no webhook at this path".to_owned(),
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let mut response = json_error(self.status(), self.code(), &self.message());
        if let Rejection::MethodNotAllowed { allowed } = self {
            response
                .headers_mut()
                .insert("allow", allowed.parse().expect("static header value"));
        }
        response
    }
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

/// What a connector made of a verified request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accepted {
    pub interactions: Vec<Interaction>,
    /// Changes to interactions sent before (deletions).
    pub updates: Vec<InteractionUpdate>,
    /// Reason codes of events acknowledged but not recorded (e.g. `status_callback`).
    pub ignored: Vec<&'static str>,
}

impl Accepted {
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
}

/// Publishes what was accepted and answers: the connector's acknowledgement only once every
/// interaction is queued, 503 when the queue fails (the provider retries), the rejection's
/// answer otherwise. Logs carry codes and counts only.
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
    for reason in &accepted.ignored {
        tracing::info!(connector, reason, "event acknowledged and ignored");
        metrics::count(connector, metrics::IGNORED_EVENTS, reason, 1);
    }
    let ids: Vec<String> = accepted
        .interactions
        .iter()
        .map(|i| i.id.to_string())
        .chain(accepted.updates.iter().map(|u| u.interaction_id.to_string()))
        .collect();
    let messages: Vec<QueueMessage> = accepted
        .interactions
        .into_iter()
        .map(QueueMessage::from)
        .chain(accepted.updates.into_iter().map(QueueMessage::from))
        .collect();
    if !messages.is_empty() {
        if let Err(error) = publisher.publish(&messages).await {
            tracing::error!(connector, %error, "could not queue interactions; answering 503 so the provider retries");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_unavailable",
                "the interactions could not be queued; retry later",
            );
        }
        tracing::info!(connector, count = ids.len(), ?ids, "interactions queued");
        metrics::count(connector, metrics::PUBLISHED_INTERACTIONS, "queued", ids.len() as u64);
    }
    acknowledgement()
}

#[cfg(test)]
mod tests {
    use super::*;

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
