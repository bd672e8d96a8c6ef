//! The timeline API as the tests call it: one method per operation (a row of `ROUTES`), each
//! building its path and body as a caller would, and every answer checked against
//! `functions/timeline-api/openapi.yaml` (`openapi::Spec`). `raw` sends what the tests make
//! malformed on purpose.

use std::fmt::Display;

use serde::Serialize;
use serde_json::{Value, json};
use throughline_timeline_api::TimelineApi;

/// A caller of the API in-process, as the agent of `support::api_event`.
#[derive(Clone, Copy)]
pub struct ApiClient<'a>(pub &'a TimelineApi);

/// `{"reason": …}` when there is one; no body otherwise.
fn reason_body(reason: Option<&str>) -> Option<Value> {
    reason.map(|reason| json!({ "reason": reason }))
}

impl ApiClient<'_> {
    /// The status and JSON body of any request, checked against the OpenAPI document.
    pub async fn raw(&self, method: &str, path_and_query: &str, body: Option<Value>) -> (u16, Value) {
        self.raw_with(method, path_and_query, body, &[]).await
    }

    /// `raw`, with these request headers too.
    pub async fn raw_with(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut event = super::api_event(method, path_and_query, body.as_ref());
        for (name, value) in headers {
            event["headers"][*name] = json!(value);
        }
        let request = lambda_http::request::from_str(&event.to_string()).expect("a valid HTTP API event");
        let response = throughline_timeline_api::handle(request, self.0).await;
        let status = response.status().as_u16();
        let json: Value = serde_json::from_slice(response.body().as_ref()).unwrap_or_else(|e| {
            panic!(
                "{method} {path_and_query}: not JSON ({e}): {}",
                super::body_text(&response)
            )
        });
        super::openapi::Spec::load()
            .check_response(method, path_and_query, status, &json)
            .unwrap_or_else(|errors| {
                panic!(
                    "{method} {path_and_query} → {status} does not match openapi.yaml:\n{}\n{json:#}",
                    errors.join("\n")
                )
            });
        (status, json)
    }

    /// `GET /customers?identifier=` an identifier key (`email:ada@example.com`).
    pub async fn find(&self, identifier: &str) -> (u16, Value) {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("identifier", identifier)
            .finish();
        self.raw("GET", &format!("/customers?{query}"), None).await
    }

    /// `GET /customers/{customer_id}`.
    pub async fn profile(&self, customer: impl Display) -> (u16, Value) {
        self.raw("GET", &format!("/customers/{customer}"), None).await
    }

    /// `GET /customers/{customer_id}/timeline`, with a query string (`""` for none).
    pub async fn timeline(&self, customer: impl Display, query: &str) -> (u16, Value) {
        let path = format!("/customers/{customer}/timeline");
        let path = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        self.raw("GET", &path, None).await
    }

    /// `GET /customers/{customer_id}/suggestions`.
    pub async fn suggestions(&self, customer: impl Display) -> (u16, Value) {
        self.raw("GET", &format!("/customers/{customer}/suggestions"), None)
            .await
    }

    /// `POST /customers/{customer_id}/suggestions/{suggestion_id}/accept`.
    pub async fn accept(&self, customer: impl Display, suggestion: impl Display, reason: Option<&str>) -> (u16, Value) {
        let path = format!("/customers/{customer}/suggestions/{suggestion}/accept");
        self.raw("POST", &path, reason_body(reason)).await
    }

    /// `POST /customers/{customer_id}/suggestions/{suggestion_id}/reject`.
    pub async fn reject(&self, customer: impl Display, suggestion: impl Display, reason: Option<&str>) -> (u16, Value) {
        let path = format!("/customers/{customer}/suggestions/{suggestion}/reject");
        self.raw("POST", &path, reason_body(reason)).await
    }

    /// `POST /customers/{customer_id}/merge`: `source` joins `target`'s group.
    pub async fn merge(&self, target: impl Display, source: impl Serialize, reason: Option<&str>) -> (u16, Value) {
        let mut body = json!({ "source_customer_id": source });
        if let Some(reason) = reason {
            body["reason"] = reason.into();
        }
        self.raw("POST", &format!("/customers/{target}/merge"), Some(body))
            .await
    }

    /// `POST /merges/{merge_id}/unmerge`.
    pub async fn unmerge(&self, merge: impl Display, reason: Option<&str>) -> (u16, Value) {
        self.raw("POST", &format!("/merges/{merge}/unmerge"), reason_body(reason))
            .await
    }

    /// `GET /customers/{customer_id}/ledger`.
    pub async fn ledger(&self, customer: impl Display) -> (u16, Value) {
        self.raw("GET", &format!("/customers/{customer}/ledger"), None).await
    }

    /// `POST /customers/{customer_id}/conversations/{conversation_id}/split` at an interaction.
    pub async fn split(
        &self,
        customer: impl Display,
        conversation: impl Display,
        at_interaction: impl Serialize,
    ) -> (u16, Value) {
        let path = format!("/customers/{customer}/conversations/{conversation}/split");
        self.raw("POST", &path, Some(json!({ "at_interaction_id": at_interaction })))
            .await
    }

    /// `POST /customers/{customer_id}/conversations/join`.
    pub async fn join(&self, customer: impl Display, conversations: impl Serialize) -> (u16, Value) {
        let path = format!("/customers/{customer}/conversations/join");
        self.raw("POST", &path, Some(json!({ "conversation_ids": conversations })))
            .await
    }

    /// `GET /customers/{customer_id}/export`, a page at `cursor`.
    pub async fn export(&self, customer: impl Display, cursor: Option<&str>) -> (u16, Value) {
        let path = match cursor {
            Some(cursor) => format!("/customers/{customer}/export?cursor={cursor}"),
            None => format!("/customers/{customer}/export"),
        };
        self.raw("GET", &path, None).await
    }

    /// `DELETE /customers/{customer_id}`, for the reason given.
    pub async fn erase(&self, customer: impl Display, reason: &str) -> (u16, Value) {
        self.raw("DELETE", &format!("/customers/{customer}"), reason_body(Some(reason)))
            .await
    }

    /// `GET /customers/{customer_id}/erasure`.
    pub async fn erasure_status(&self, customer: impl Display) -> (u16, Value) {
        self.raw("GET", &format!("/customers/{customer}/erasure"), None).await
    }

    /// `POST /customers/{customer_id}/messages` with an `Idempotency-Key`.
    pub async fn send_message(&self, customer: impl Display, key: &str, body: Value) -> (u16, Value) {
        self.raw_with(
            "POST",
            &format!("/customers/{customer}/messages"),
            Some(body),
            &[("idempotency-key", key)],
        )
        .await
    }

    /// `POST /customers/{customer_id}/messages/{interaction_id}/retry`.
    pub async fn retry_message(&self, customer: impl Display, interaction: impl Display) -> (u16, Value) {
        self.raw(
            "POST",
            &format!("/customers/{customer}/messages/{interaction}/retry"),
            None,
        )
        .await
    }

    /// `GET /customers/{customer_id}/conversations`.
    pub async fn conversations(&self, customer: impl Display) -> (u16, Value) {
        self.raw("GET", &format!("/customers/{customer}/conversations"), None)
            .await
    }

    /// `GET /conversations?status=open` with more query parameters (`channel=sms&limit=2`).
    pub async fn queue(&self, query: &str) -> (u16, Value) {
        let path = match query {
            "" => "/conversations?status=open".to_owned(),
            query => format!("/conversations?status=open&{query}"),
        };
        self.raw("GET", &path, None).await
    }

    /// `GET /conversations/{conversation_id}`.
    pub async fn conversation(&self, conversation: impl Display) -> (u16, Value) {
        self.raw("GET", &format!("/conversations/{conversation}"), None).await
    }

    /// `POST /conversations/{conversation_id}/resolve`, confirming these reasons.
    pub async fn resolve(&self, conversation: impl Display, reasons: &[&str]) -> (u16, Value) {
        let body = (!reasons.is_empty()).then(|| json!({ "reasons": reasons }));
        self.raw("POST", &format!("/conversations/{conversation}/resolve"), body)
            .await
    }

    /// `POST /conversations/{conversation_id}/reopen`.
    pub async fn reopen(&self, conversation: impl Display) -> (u16, Value) {
        self.raw("POST", &format!("/conversations/{conversation}/reopen"), None)
            .await
    }

    /// `POST /conversations/{conversation_id}/assign` (`None`: to nobody).
    pub async fn assign(&self, conversation: impl Display, assignee: Option<&str>) -> (u16, Value) {
        self.raw(
            "POST",
            &format!("/conversations/{conversation}/assign"),
            Some(json!({ "assignee": assignee })),
        )
        .await
    }

    /// `PUT /conversations/{conversation_id}/reasons`.
    pub async fn set_reasons(&self, conversation: impl Display, reasons: &[&str]) -> (u16, Value) {
        self.raw(
            "PUT",
            &format!("/conversations/{conversation}/reasons"),
            Some(json!({ "reasons": reasons })),
        )
        .await
    }

    /// `GET /customers/{customer_id}/attributes`.
    pub async fn attributes(&self, customer: impl Display) -> (u16, Value) {
        self.raw("GET", &format!("/customers/{customer}/attributes"), None)
            .await
    }

    /// `PUT /customers/{customer_id}/attributes`.
    pub async fn set_attributes(&self, customer: impl Display, attributes: Value) -> (u16, Value) {
        self.raw(
            "PUT",
            &format!("/customers/{customer}/attributes"),
            Some(json!({ "attributes": attributes })),
        )
        .await
    }
}
