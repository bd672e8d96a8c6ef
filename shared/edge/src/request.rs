//! A provider's HTTP request as the verification and normalization code sees it: the raw bytes
//! of the body (signatures are computed over them) and the URL as the provider called it.

use lambda_http::http::{HeaderMap, Method};

/// One webhook request: its method, headers, URL and the body's raw bytes.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// The HTTP method.
    pub method: Method,
    /// The request's headers, as received.
    pub headers: HeaderMap,
    /// Scheme, host, path and raw (undecoded) query, as the provider called them.
    pub url: String,
    /// The body's bytes as the provider sent and signed them (a base64 event body decoded).
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// Takes a Lambda HTTP event (Function URL / HTTP API payload 2.0; `lambda_http` has already
    /// decoded a base64 body). The URL is `public_url` when the provider is configured to call
    /// the function through a custom domain or proxy, else `https://` and the domain the event's
    /// request context reports; the request's raw query is appended. Never the `Host` or
    /// `X-Forwarded-*` headers (lambda_http builds its URI from them): anyone can set those, so a
    /// URL-signed request (Twilio) signed for another URL would verify. An event with a context
    /// but no domain gets the bare path, which no provider's signature of an absolute URL matches.
    pub fn from_lambda(req: lambda_http::Request, public_url: Option<&str>) -> Self {
        use lambda_http::RequestExt;
        use lambda_http::request::RequestContext;
        let reported_domain = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => Some(
                context
                    .domain_name
                    .as_deref()
                    .map(str::trim)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            _ => None,
        };
        let (parts, body) = req.into_parts();
        let path = parts.uri.path();
        let base = match (public_url, reported_domain) {
            (Some(base), _) => base.to_owned(),
            (None, Some(domain)) if !domain.is_empty() => format!("https://{domain}{path}"),
            (None, Some(_)) => {
                tracing::warn!("the event names no domain to verify a signed URL against: configure the public URL");
                path.to_owned()
            }
            // Not a Lambda event (a request built in code): its URI is all there is.
            (None, None) => {
                let mut uri = parts.uri.to_string();
                uri.truncate(uri.find('?').unwrap_or(uri.len()));
                uri
            }
        };
        let url = match parts.uri.query().filter(|q| !q.is_empty()) {
            Some(q) if !base.contains('?') => format!("{base}?{q}"),
            _ => base,
        };
        Self {
            method: parts.method,
            headers: parts.headers,
            url,
            body: body.to_vec(),
        }
    }

    /// A header's value, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The raw query string (without `?` and without any `#fragment`).
    pub fn query(&self) -> Option<&str> {
        let after = self.url.split_once('?')?.1;
        Some(after.split('#').next().unwrap_or(after)).filter(|q| !q.is_empty())
    }

    /// The path of the URL (`/` when it has none).
    pub fn path(&self) -> &str {
        let after_scheme = self.url.split_once("://").map_or(self.url.as_str(), |(_, rest)| rest);
        let path_and_more = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
        let end = path_and_more.find(['?', '#']).unwrap_or(path_and_more.len());
        &path_and_more[..end]
    }

    /// The media type of the body, lower-cased, without parameters.
    pub fn media_type(&self) -> Option<String> {
        let ct = self.header("content-type")?;
        Some(ct.split(';').next().unwrap_or(ct).trim().to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> lambda_http::Request {
        lambda_http::http::Request::builder()
            .method("POST")
            .uri(uri)
            .header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
            .body(lambda_http::Body::from("a=1"))
            .unwrap()
    }

    #[test]
    fn url_from_the_event_or_the_configured_public_url() {
        let r = WebhookRequest::from_lambda(request("https://abc.lambda-url.eu-west-1.on.aws/sms?x=1%202"), None);
        assert_eq!(r.url, "https://abc.lambda-url.eu-west-1.on.aws/sms?x=1%202");
        assert_eq!(r.query(), Some("x=1%202"));
        assert_eq!(r.path(), "/sms");
        assert_eq!(r.body, b"a=1");
        assert_eq!(r.media_type().as_deref(), Some("application/x-www-form-urlencoded"));

        let r = WebhookRequest::from_lambda(request("https://abc/sms?x=1"), Some("https://hooks.example.com/twilio"));
        assert_eq!(r.url, "https://hooks.example.com/twilio?x=1");
        let r = WebhookRequest::from_lambda(request("https://abc/sms"), Some("https://hooks.example.com/twilio"));
        assert_eq!(r.url, "https://hooks.example.com/twilio");
        assert_eq!(r.query(), None);
        assert_eq!(r.path(), "/twilio");
        let r = WebhookRequest::from_lambda(request("https://abc?x=1"), None);
        assert_eq!(r.path(), "/");
    }
}
