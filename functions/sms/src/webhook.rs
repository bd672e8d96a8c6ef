//! The Twilio messaging webhook as a pure function: a request and the auth token in, the
//! interactions to queue (or the reason to refuse) out. No network, no clock: the caller passes
//! the time the request arrived.

use chrono::{DateTime, Utc};
use lambda_http::http::{Method, StatusCode};
use throughline_edge::{Accepted, Rejection, Secret, WebhookRequest, signature::sha256_hex};
use throughline_model::{
    Attachment, AttachmentSource, Channel, DeliveryError, Direction, E164, Handle, Interaction, InteractionId,
    NewInteraction, Provider, ProviderMessageId, ShortCode, StatusEvent, StatusReport,
};

use crate::signature::{self, SIGNATURE_HEADER, Signed};

/// Twilio sends at most ten media items per message.
const MAX_MEDIA: usize = 10;
/// Largest body parsed. A messaging webhook is a few KiB (a body of at most 1600 characters,
/// ten media URLs, a few dozen short parameters); anything bigger is refused before any parsing,
/// so an oversized request costs neither the parse nor the signature's sort.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
const FORM: &str = "application/x-www-form-urlencoded";
/// The source of the statuses Twilio's callbacks report.
pub const STATUS_SOURCE: &str = "twilio_status_callback";

#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub auth_token: Secret,
}

/// The decoded parameters of one Twilio messaging webhook, in the order received.
#[derive(Debug, Clone)]
pub struct TwilioSmsWebhook {
    params: Vec<(String, String)>,
}

impl TwilioSmsWebhook {
    pub fn from_params(params: Vec<(String, String)>) -> Self {
        Self { params }
    }

    /// The first value of a parameter, if present.
    fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn get_non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    fn require(&self, name: &str) -> Result<&str, Rejection> {
        self.get_non_empty(name)
            .ok_or_else(|| Rejection::malformed(format!("parameter {name} is missing")))
    }

    /// Status callbacks report on outbound messages; they carry `MessageStatus`.
    pub fn is_status_callback(&self) -> bool {
        self.get("MessageStatus").is_some()
    }

    /// The status this callback reports, or `None` for one the status machine has no state
    /// for (`queued`, `accepted`, `sending`, `scheduled`…: steps before `sent`). `From` is the
    /// company's number the reply went out from, so the report names the interaction id the
    /// sender made an alias of the reply. Twilio's callback has no time of the change: it
    /// happened when it reached us.
    pub fn to_status(&self, received_at: DateTime<Utc>) -> Result<Option<StatusReport>, Rejection> {
        let Some(status) = throughline_model::provider_errors::twilio_status(self.require("MessageStatus")?) else {
            return Ok(None);
        };
        let sid = self
            .get_non_empty("MessageSid")
            .or_else(|| self.get_non_empty("SmsSid"))
            .ok_or_else(|| Rejection::malformed("parameter MessageSid is missing"))?;
        let sid =
            ProviderMessageId::parse(sid).map_err(|e| Rejection::malformed(format!("parameter MessageSid: {e}")))?;
        let (_, endpoint) = parse_address("From", self.require("From")?)?;
        let error = match self.get_non_empty("ErrorCode") {
            Some(code) => {
                let code = code
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| Rejection::malformed("parameter ErrorCode is not a number"))?;
                Some(DeliveryError {
                    code: code.to_string(),
                    reason: throughline_model::provider_errors::twilio(code),
                })
            }
            None => None,
        };
        Ok(Some(StatusReport {
            interaction_id: InteractionId::derive(Provider::Twilio, &endpoint, &sid),
            event: StatusEvent {
                status,
                at: received_at,
                source: STATUS_SOURCE.into(),
                // A code comes with failures only; a `delivered` callback never carries one.
                error: error.filter(|_| status.is_failure()),
            },
            recipient: None,
        }))
    }

    /// The interaction this inbound message is.
    pub fn to_interaction(&self, received_at: DateTime<Utc>) -> Result<Interaction, Rejection> {
        let sid = self
            .get_non_empty("MessageSid")
            .or_else(|| self.get_non_empty("SmsSid"));
        let sid = sid.ok_or_else(|| Rejection::malformed("parameter MessageSid is missing"))?;
        let provider_message_id =
            ProviderMessageId::parse(sid).map_err(|e| Rejection::malformed(format!("parameter MessageSid: {e}")))?;
        let (from_whatsapp, customer) = parse_address("From", self.require("From")?)?;
        let (to_whatsapp, business_endpoint) = parse_address("To", self.require("To")?)?;
        if from_whatsapp != to_whatsapp {
            return Err(Rejection::malformed(
                "parameters From and To must both be WhatsApp addresses or neither",
            ));
        }

        let mut interaction = Interaction::new(NewInteraction {
            channel: if from_whatsapp { Channel::Whatsapp } else { Channel::Sms },
            provider: Provider::Twilio,
            direction: Direction::Inbound,
            customer,
            business_endpoint,
            provider_message_id,
            // Twilio's webhook carries no send time: the message happened when it reached us.
            occurred_at: received_at,
            received_at,
        });
        interaction.text = self.get_non_empty("Body").map(str::to_owned);
        interaction.customer_display_name = self.get_non_empty("ProfileName").map(str::to_owned);
        interaction.attachments = self.attachments()?;
        interaction.thread.in_reply_to = self.get_non_empty("OriginalRepliedMessageSid").map(str::to_owned);
        for (param, attribute) in [
            ("AccountSid", "account_sid"),
            ("MessagingServiceSid", "messaging_service_sid"),
            ("NumSegments", "num_segments"),
            ("FromCountry", "from_country"),
            ("WaId", "wa_id"),
            ("ButtonText", "button_text"),
            ("ButtonPayload", "button_payload"),
            ("Latitude", "latitude"),
            ("Longitude", "longitude"),
        ] {
            if let Some(value) = self.get_non_empty(param) {
                interaction.attributes.insert(attribute.to_owned(), value.to_owned());
            }
        }
        Ok(interaction)
    }

    fn attachments(&self) -> Result<Vec<Attachment>, Rejection> {
        let count = match self.get_non_empty("NumMedia") {
            None => 0,
            Some(n) => n
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_MEDIA)
                .ok_or_else(|| {
                    Rejection::malformed(format!("parameter NumMedia must be a number from 0 to {MAX_MEDIA}"))
                })?,
        };
        (0..count)
            .map(|i| {
                let url = self.require(&format!("MediaUrl{i}"))?;
                Ok(Attachment {
                    source: AttachmentSource::Url { url: url.to_owned() },
                    content_type: self.get_non_empty(&format!("MediaContentType{i}")).map(str::to_owned),
                    size_bytes: None,
                    file_name: None,
                    content_id: None,
                    inline: false,
                })
            })
            .collect()
    }
}

/// `+14155550100`, `whatsapp:+14155550100` or a short code; returns (is WhatsApp, handle).
fn parse_address(param: &str, value: &str) -> Result<(bool, Handle), Rejection> {
    let (whatsapp, number) = match value.trim().strip_prefix("whatsapp:") {
        Some(rest) => (true, rest),
        None => (false, value.trim()),
    };
    if let Ok(number) = E164::parse(number) {
        return Ok((whatsapp, Handle::Phone { number }));
    }
    if !whatsapp && let Ok(code) = ShortCode::parse(number) {
        return Ok((false, Handle::ShortCode { code }));
    }
    Err(Rejection::malformed(format!(
        "parameter {param} is not an E.164 phone number or short code"
    )))
}

/// Verifies and normalizes one request.
pub fn accept(req: &WebhookRequest, config: &TwilioConfig, received_at: DateTime<Utc>) -> Result<Accepted, Rejection> {
    if req.method != Method::POST && req.method != Method::GET {
        return Err(Rejection::MethodNotAllowed { allowed: "POST, GET" });
    }
    if req.body.len() > MAX_BODY_BYTES {
        return Err(Rejection::malformed("body is larger than 64 KiB"));
    }
    let provided = req.header(SIGNATURE_HEADER).ok_or(Rejection::BadSignature {
        status: StatusCode::FORBIDDEN,
        reason: "missing X-Twilio-Signature header",
    })?;

    let body_hash = signature::body_sha256_param(&req.url);
    let form_params: Vec<(String, String)>;
    let signed = if req.method == Method::GET || body_hash.is_some() {
        Signed::UrlOnly
    } else {
        form_params = form_urlencoded::parse(&req.body).into_owned().collect();
        Signed::Form(&form_params)
    };
    if !signature::verify(config.auth_token.expose(), &req.url, signed, provided) {
        return Err(Rejection::BadSignature {
            status: StatusCode::FORBIDDEN,
            reason: "X-Twilio-Signature does not match this request",
        });
    }
    if let Some(expected) = body_hash {
        // The signature covers the URL, and through bodySHA256 the body.
        if !throughline_edge::signature::secrets_equal(&sha256_hex(&req.body), &expected.to_ascii_lowercase()) {
            return Err(Rejection::BadSignature {
                status: StatusCode::FORBIDDEN,
                reason: "body does not match the bodySHA256 in the signed URL",
            });
        }
        // JSON-bodied webhooks are not messaging webhooks: verified, acknowledged, not recorded.
        return Ok(Accepted::ignored("json_event"));
    }

    let params = match signed {
        Signed::Form(params) => {
            if req.method == Method::POST && req.media_type().as_deref() != Some(FORM) {
                return Err(Rejection::UnsupportedMediaType { expected: FORM });
            }
            params.to_vec()
        }
        Signed::UrlOnly => form_urlencoded::parse(req.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
    };
    let webhook = TwilioSmsWebhook::from_params(params);
    if webhook.is_status_callback() {
        return Ok(match webhook.to_status(received_at)? {
            Some(report) => Accepted {
                statuses: vec![report],
                ..Accepted::default()
            },
            None => Accepted::ignored("status_interim"),
        });
    }
    Ok(Accepted::interactions(vec![webhook.to_interaction(received_at)?]))
}

/// The answer Twilio expects when there is nothing to send back: an empty TwiML document
/// (an empty body is logged by Twilio as error 11200).
pub const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderMap;
    use throughline_edge::ErrorCode;
    use throughline_model::DeliveryStatus;

    const TOKEN: &str = "test-auth-token";
    const URL: &str = "https://hooks.example.com/twilio/sms";

    fn now() -> DateTime<Utc> {
        throughline_testkit::sample_day_at(10, 0)
    }

    fn config() -> TwilioConfig {
        TwilioConfig {
            auth_token: Secret::new(TOKEN),
        }
    }

    fn signed_post(params: &[(&str, &str)]) -> WebhookRequest {
        let owned: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&owned)
            .finish();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", FORM.parse().unwrap());
        headers.insert(
            SIGNATURE_HEADER,
            signature::compute(TOKEN, URL, Signed::Form(&owned)).parse().unwrap(),
        );
        WebhookRequest {
            method: Method::POST,
            headers,
            url: URL.into(),
            body: body.into_bytes(),
        }
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("MessageSid", "SM11111111111111111111111111111111"),
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("From", "+14155550100"),
            ("To", "+14155550199"),
            ("Body", "Hello, my order #123 has not arrived"),
            ("NumMedia", "0"),
            ("SmsStatus", "received"),
        ]
    }

    #[test]
    fn inbound_sms_becomes_one_interaction() {
        let accepted = accept(&signed_post(&base()), &config(), now()).unwrap();
        assert!(accepted.ignored.is_empty());
        let [i] = accepted.interactions.as_slice() else {
            panic!("one interaction expected")
        };
        assert_eq!(i.channel, Channel::Sms);
        assert_eq!(i.direction, Direction::Inbound);
        assert_eq!(i.customer.key(), "phone:+14155550100");
        assert_eq!(i.business_endpoint.key(), "phone:+14155550199");
        assert_eq!(i.text.as_deref(), Some("Hello, my order #123 has not arrived"));
        assert_eq!(i.occurred_at, now());
        assert_eq!(i.attributes["account_sid"], "AC00000000000000000000000000000000");
        assert!(i.attachments.is_empty());
    }

    #[test]
    fn mms_media_become_attachments() {
        let mut p = base();
        p.retain(|(k, _)| *k != "NumMedia");
        p.extend([
            ("NumMedia", "2"),
            (
                "MediaUrl0",
                "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
            ),
            ("MediaContentType0", "image/jpeg"),
            (
                "MediaUrl1",
                "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME2",
            ),
            ("MediaContentType1", "application/pdf"),
        ]);
        let i = accept(&signed_post(&p), &config(), now())
            .unwrap()
            .interactions
            .remove(0);
        assert_eq!(i.attachments.len(), 2);
        assert_eq!(i.attachments[1].content_type.as_deref(), Some("application/pdf"));
        assert!(matches!(&i.attachments[0].source, AttachmentSource::Url { url } if url.ends_with("/ME1")));
    }

    #[test]
    fn whatsapp_via_twilio() {
        let mut p = base();
        p.retain(|(k, _)| !matches!(*k, "From" | "To"));
        p.extend([
            ("From", "whatsapp:+14155550100"),
            ("To", "whatsapp:+14155550199"),
            ("ProfileName", "Ada"),
            ("WaId", "14155550100"),
        ]);
        let i = accept(&signed_post(&p), &config(), now())
            .unwrap()
            .interactions
            .remove(0);
        assert_eq!(i.channel, Channel::Whatsapp);
        assert_eq!(
            i.customer.key(),
            "phone:+14155550100",
            "same handle as the customer's SMS number"
        );
        assert_eq!(i.customer_display_name.as_deref(), Some("Ada"));
    }

    #[test]
    fn a_status_callback_reports_the_status_of_the_message_its_sid_names() {
        let callback = |status: &str, extra: &[(&'static str, &'static str)]| {
            let mut p = vec![
                ("MessageSid", "SM2"),
                ("MessageStatus", status),
                ("From", "whatsapp:+14155550199"),
                ("To", "whatsapp:+14155550100"),
            ];
            p.extend_from_slice(extra);
            accept(&signed_post(&p), &config(), now()).unwrap()
        };
        let delivered = callback("delivered", &[]);
        assert!(delivered.interactions.is_empty());
        let [report] = delivered.statuses.as_slice() else {
            panic!("one status: {:?}", delivered.statuses)
        };
        // The id the sender aliases: Twilio, the company's number it was sent from, the sid.
        let endpoint = Handle::Phone {
            number: E164::parse("+14155550199").unwrap(),
        };
        assert_eq!(
            report.interaction_id,
            InteractionId::derive(Provider::Twilio, &endpoint, &ProviderMessageId::parse("SM2").unwrap())
        );
        assert_eq!(
            (
                report.event.status,
                report.event.at,
                report.event.source.as_str(),
                &report.event.error
            ),
            (DeliveryStatus::Delivered, now(), STATUS_SOURCE, &None)
        );
        let undelivered = callback("undelivered", &[("ErrorCode", "30003"), ("ErrorMessage", "x")]);
        let error = undelivered.statuses[0].event.error.clone().unwrap();
        assert_eq!(error.code, "30003");
        assert!(error.reason.contains("unreachable"), "{}", error.reason);
        assert_eq!(callback("read", &[]).statuses[0].event.status, DeliveryStatus::Read);
        assert_eq!(
            callback("canceled", &[]).statuses[0].event.status,
            DeliveryStatus::Failed
        );
        // Steps before `sent` have no state of their own.
        for interim in ["queued", "accepted", "sending", "scheduled"] {
            let accepted = callback(interim, &[]);
            assert!(accepted.statuses.is_empty(), "{interim}");
            assert_eq!(accepted.ignored, vec!["status_interim"]);
        }
        // Malformed: 400, naming the parameter.
        let p = [
            ("MessageSid", "SM2"),
            ("MessageStatus", "failed"),
            ("ErrorCode", "abc"),
            ("From", "+14155550199"),
        ];
        let err = accept(&signed_post(&p), &config(), now()).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(err.to_string().contains("ErrorCode"), "{err}");
        let p = [("MessageSid", "SM2"), ("MessageStatus", "sent")];
        assert!(
            accept(&signed_post(&p), &config(), now())
                .unwrap_err()
                .to_string()
                .contains("From")
        );
    }

    #[test]
    fn bad_or_missing_signature_is_403() {
        let mut req = signed_post(&base());
        req.body.extend_from_slice(b"&Extra=1");
        let err = accept(&req, &config(), now()).unwrap_err();
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        req.headers.remove(SIGNATURE_HEADER);
        assert_eq!(
            accept(&req, &config(), now()).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        let other = TwilioConfig {
            auth_token: Secret::new("another-token"),
        };
        assert_eq!(
            accept(&signed_post(&base()), &other, now()).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn malformed_messages_are_400_naming_the_problem() {
        let cases: [(&str, Option<&str>, &str); 5] = [
            ("From", None, "parameter From is missing"),
            ("From", Some("not-a-number"), "parameter From is not an E.164"),
            ("MessageSid", None, "parameter MessageSid is missing"),
            ("NumMedia", Some("99"), "parameter NumMedia must be a number"),
            ("NumMedia", Some("1"), "parameter MediaUrl0 is missing"),
        ];
        for (name, value, expected) in cases {
            let mut p = base();
            p.retain(|(k, _)| *k != name);
            if let Some(v) = value {
                p.push((name, v));
            }
            let err = accept(&signed_post(&p), &config(), now()).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{name}");
            assert!(err.message().starts_with(expected), "{name}: {}", err.message());
        }
    }

    #[test]
    fn get_webhooks_sign_and_carry_params_in_the_url() {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(base())
            .finish();
        let url = format!("{URL}?{query}");
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE_HEADER,
            signature::compute(TOKEN, &url, Signed::UrlOnly).parse().unwrap(),
        );
        let req = WebhookRequest {
            method: Method::GET,
            headers,
            url,
            body: Vec::new(),
        };
        let i = accept(&req, &config(), now()).unwrap().interactions.remove(0);
        assert_eq!(i.text.as_deref(), Some("Hello, my order #123 has not arrived"));
    }

    #[test]
    fn json_bodies_verify_against_body_sha256() {
        let body = br#"{"property": "value", "boolean": true}"#.to_vec();
        let url = format!("{URL}?bodySHA256={}", sha256_hex(&body));
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE_HEADER,
            signature::compute(TOKEN, &url, Signed::UrlOnly).parse().unwrap(),
        );
        let mut req = WebhookRequest {
            method: Method::POST,
            headers,
            url,
            body,
        };
        assert_eq!(accept(&req, &config(), now()).unwrap().ignored, vec!["json_event"]);
        req.body.push(b' ');
        assert_eq!(
            accept(&req, &config(), now()).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn wrong_method_and_media_type() {
        let mut req = signed_post(&base());
        req.headers.insert("content-type", "text/plain".parse().unwrap());
        assert_eq!(
            accept(&req, &config(), now()).unwrap_err().status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        req.method = Method::PUT;
        assert_eq!(
            accept(&req, &config(), now()).unwrap_err().status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn a_body_over_64_kib_is_400_before_it_is_parsed() {
        let mut p = base();
        let filler = "x".repeat(MAX_BODY_BYTES);
        p.push(("Padding", &filler));
        // Validly signed, so only its size can refuse it.
        let req = signed_post(&p);
        assert!(req.body.len() > MAX_BODY_BYTES);
        let err = accept(&req, &config(), now()).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.message(), "body is larger than 64 KiB");

        let mut just_fits = base();
        let margin = signed_post(&base()).body.len() + "&Padding=".len();
        let filler = "x".repeat(MAX_BODY_BYTES - margin);
        just_fits.push(("Padding", &filler));
        let req = signed_post(&just_fits);
        assert_eq!(req.body.len(), MAX_BODY_BYTES);
        assert!(accept(&req, &config(), now()).is_ok());
    }

    #[test]
    fn retries_get_the_same_interaction_id() {
        let a = accept(&signed_post(&base()), &config(), now())
            .unwrap()
            .interactions
            .remove(0);
        let later = now() + chrono::Duration::minutes(5);
        let b = accept(&signed_post(&base()), &config(), later)
            .unwrap()
            .interactions
            .remove(0);
        assert_eq!(a.id, b.id);
    }

    proptest::proptest! {
        /// Any signed form body, however odd, gets an answer: never a panic.
        #[test]
        fn any_signed_params_get_an_answer(params in proptest::collection::vec(
            (proptest::sample::select(vec!["From", "To", "MessageSid", "Body", "NumMedia", "MediaUrl0",
                "MediaContentType0", "MessageStatus", "ProfileName", "x"]), ".{0,40}"), 0..12)) {
            let _ = accept(&signed_post(&params.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()), &config(), now());
        }

        #[test]
        fn any_body_bytes_get_an_answer(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let mut req = signed_post(&base());
            req.body = body;
            let _ = accept(&req, &config(), now());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut req = signed_post(&base());
        for body in [
            &b""[..],
            b"%",
            b"\xff\xfe=\x00",
            b"&&&==&",
            b"NumMedia=18446744073709551616",
        ] {
            req.body = body.to_vec();
            let _ = accept(&req, &config(), now());
        }
    }
}
