//! A provider's HTTP request as the verification and normalization code sees it: the raw bytes
//! of the body (signatures are computed over them) and the URL as the provider called it.

use lambda_http::http::{HeaderMap, Method};

#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub method: Method,
    pub headers: HeaderMap,
    /// Scheme, host, path and raw (undecoded) query, as the provider called them.
    pub url: String,
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// Takes a Lambda HTTP event (Function URL / HTTP API payload 2.0; `lambda_http` has already
    /// decoded a base64 body). `public_url` is the URL the provider is configured to call when the
    /// function sits behind a custom domain or proxy; the request's raw query is appended to it.
    pub fn from_lambda(req: lambda_http::Request, public_url: Option<&str>) -> Self {
        let (parts, body) = req.into_parts();
        let query = parts.uri.query().filter(|q| !q.is_empty());
        let url = match (public_url, query) {
            (Some(base), Some(q)) if !base.contains('?') => format!("{base}?{q}"),
            (Some(base), _) => base.to_owned(),
            (None, _) => parts.uri.to_string(),
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
