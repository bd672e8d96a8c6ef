//! The one HTTP call per attempt, and what its failure modes mean for a send.
//!
//! A call that never reached the provider (no connection) is safe to try again. A call that
//! may have reached it but gave no answer (a timeout after connecting, a connection dropped
//! mid-answer) is ambiguous: the provider may have sent the message, and Twilio, Meta, Telegram
//! and X take no idempotency key, so it is `unknown` and never re-sent by itself.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::{ProviderRequest, ProviderResponse};

/// How one call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    /// The provider answered (any status).
    Answered(ProviderResponse),
    /// The request never left: no connection could be made. Another try is safe.
    NotSent(&'static str),
    /// The request may have been received, but no answer came. Never re-sent automatically.
    Unknown(&'static str),
}

/// Provider APIs over HTTPS (and plain HTTP, which only the local stubs use).
#[derive(Clone)]
pub struct ProviderClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderClient")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ProviderClient {
    /// A client whose calls give up after `timeout` (connection included).
    pub fn new(timeout: Duration) -> Result<Self, std::io::Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        // Shorter than the whole call, so a provider that cannot be reached is told apart (not
        // sent: safe to retry) from one that took the request and did not answer in time.
        http.set_connect_timeout(Some(timeout / 3));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            timeout,
        })
    }

    /// Makes the call, once.
    pub async fn call(&self, request: &ProviderRequest) -> CallResult {
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let Ok(http_request) = builder.body(Full::new(Bytes::from(request.body.clone()))) else {
            return CallResult::NotSent("the request could not be built (a bad URL or header)");
        };
        let exchange = async {
            let response = self.client.request(http_request).await.map_err(|e| {
                if e.is_connect() {
                    CallResult::NotSent("could not connect to the provider")
                } else {
                    CallResult::Unknown("the connection failed after the request was sent")
                }
            })?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|_| CallResult::Unknown("the provider's answer was cut off"))?
                .to_bytes()
                .to_vec();
            Ok::<_, CallResult>(ProviderResponse { status, headers, body })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(response)) => CallResult::Answered(response),
            Ok(Err(result)) => result,
            // Connected (the connect timeout is shorter), so the request may have been written.
            Err(_) => CallResult::Unknown("no answer from the provider in time"),
        }
    }
}
