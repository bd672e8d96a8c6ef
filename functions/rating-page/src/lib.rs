//! The rating page email and web chat surveys link to (`GET /feedback/{token}`): the link's
//! signature checked first (a forged one costs no read), then the survey's `SURVEY#` item read
//! for where it went, then, on a click, the answer queued as a `feedback` interaction from that
//! customer, which the writer records like any other (the latest rating counts). `page` is the
//! pure core; `handle` the shell.

pub mod page;

use chrono::Utc;
use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use throughline_edge::{ConfigError, ErrorCode, WebhookRequest, config};
use throughline_feedback::signing_keys;
use throughline_model::QueueMessage;
use throughline_queue::InteractionPublisher;
use throughline_store::TimelineStore;

use crate::page::{Language, Page, PageError, PageRequest, check_token, form_id, parse_request, render, render_error};

/// The metric dimension and log field of this function.
pub const CONNECTOR: &str = "rating_page";

#[derive(Debug, Clone)]
pub struct RatingPage {
    pub store: TimelineStore,
    pub publisher: InteractionPublisher,
    /// The feedback keys: the first signs (the API), all verify.
    pub keys: Vec<Vec<u8>>,
}

impl RatingPage {
    /// Reads `TIMELINE_TABLE_NAME` (the `SURVEY#` items only), `INTERACTIONS_QUEUE_URL` and
    /// `FEEDBACK_KEY` (or `FEEDBACK_KEY_PARAMETER`).
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            store: TimelineStore::new(
                aws_sdk_dynamodb::Client::new(aws),
                config::required_env("TIMELINE_TABLE_NAME")?,
            ),
            publisher: InteractionPublisher::from_env(aws)?,
            keys: signing_keys(config::load_secret(aws, "FEEDBACK_KEY").await?.expose())
                .map_err(ConfigError::Invalid)?,
        })
    }
}

/// The Lambda handler: the question on GET, the answer recorded on POST; a browser gets every
/// refusal as a page, any other client as the one JSON error.
pub async fn handle(req: Request, page: &RatingPage) -> Response<Body> {
    let request = WebhookRequest::from_lambda(req, None);
    let browser = request.header("accept").is_some_and(|a| a.contains("text/html"));
    let accept_language = request.header("accept-language").map(str::to_owned);
    let refuse = |error: PageError, locale: Option<&str>| {
        tracing::warn!(
            connector = CONNECTOR,
            code = error.code(),
            status = error.status().as_u16(),
            "request refused"
        );
        throughline_edge::metrics::count(CONNECTOR, throughline_edge::metrics::REJECTED_REQUESTS, error.code(), 1);
        if !browser {
            return throughline_edge::error_response(&error);
        }
        let language = Language::choose(locale, accept_language.as_deref());
        let mut response = html(error.status(), render_error(&error, language));
        if let Some(allow) = error.allowed_methods().and_then(|a| HeaderValue::from_str(a).ok()) {
            response.headers_mut().insert("allow", allow);
        }
        response
    };
    let asked = match parse_request(
        &request.method,
        request.path(),
        request.media_type().as_deref(),
        &request.body,
    ) {
        Ok(asked) => asked,
        Err(error) => return refuse(error, None),
    };
    let now = Utc::now();
    let token = match check_token(asked.token(), &page.keys, now) {
        Ok(token) => token,
        Err(error) => return refuse(error, None),
    };
    let survey = match page.store.linked_survey(&token.survey).await {
        Ok(Some(survey)) => survey,
        Ok(None) => return refuse(PageError::Closed, None),
        Err(error) => {
            tracing::error!(connector = CONNECTOR, %error, "the survey could not be read");
            return refuse(PageError::Unavailable, None);
        }
    };
    let language = Language::choose(survey.locale.as_deref(), accept_language.as_deref());
    let shown = match asked {
        PageRequest::Show { .. } => Page::Question {
            language,
            form: form_id(),
        },
        PageRequest::Answer { answer, .. } => {
            let interaction = survey.answer(answer.rating, answer.remark.as_deref(), &answer.form, now);
            let id = interaction.id.to_string();
            match page
                .publisher
                .publish(&[QueueMessage::Interaction(Box::new(interaction))])
                .await
            {
                Ok(published) if published.dropped.is_empty() => {
                    tracing::info!(connector = CONNECTOR, interaction = %id, "answer queued");
                }
                Ok(_) => {
                    tracing::error!(connector = CONNECTOR, interaction = %id, "the queue refused the answer");
                    return refuse(PageError::Unavailable, survey.locale.as_deref());
                }
                Err(error) => {
                    tracing::error!(connector = CONNECTOR, interaction = %id, %error, "the answer could not be queued");
                    return refuse(PageError::Unavailable, survey.locale.as_deref());
                }
            }
            Page::Thanks {
                language,
                rating: answer.rating,
                remarked: answer.remark.is_some(),
                form: answer.form,
            }
        }
    };
    // HEAD: the same answer without its body.
    let body = if request.method == Method::HEAD {
        String::new()
    } else {
        render(&shown)
    };
    html(StatusCode::OK, body)
}

/// An HTML answer with the page's headers: the CSP, never cached or framed, and no referrer
/// (the link is a capability: it must not leak to another site).
fn html(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        .header("content-security-policy", page::content_security_policy())
        .header(CACHE_CONTROL, "no-store")
        .header("referrer-policy", "no-referrer")
        .header("x-content-type-options", "nosniff")
        .header("x-frame-options", "DENY")
        .body(Body::from(body))
        .expect("static response parts are valid")
}
