//! Twilio verify + normalize, the whole pure core of the SMS function, on realistic requests.
//! Run: `cargo bench -p throughline-sms`.

use criterion::{Criterion, criterion_group, criterion_main};
use lambda_http::http::{HeaderMap, Method};
use std::hint::black_box;
use throughline_edge::{Secret, WebhookRequest};
use throughline_sms::signature::{SIGNATURE_HEADER, Signed, compute};
use throughline_sms::{TwilioConfig, accept};

const TOKEN: &str = "bench-auth-token";
const URL: &str = "https://sms.throughline.example/";

fn signed(params: &[(&str, &str)]) -> WebhookRequest {
    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&owned)
        .finish();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
    headers.insert(
        SIGNATURE_HEADER,
        compute(TOKEN, URL, Signed::Form(&owned)).parse().unwrap(),
    );
    WebhookRequest {
        method: Method::POST,
        headers,
        url: URL.into(),
        body: body.into_bytes(),
    }
}

fn bench(c: &mut Criterion) {
    let config = TwilioConfig {
        auth_token: Secret::new(TOKEN),
    };
    let sms = signed(&[
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", "SM8f1e9c6a2b7d4e0f9a3c5b1d7e2f4a60"),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94105"),
        ("SmsSid", "SM8f1e9c6a2b7d4e0f9a3c5b1d7e2f4a60"),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", "Hi, my order #1042 hasn't arrived yet. Can you check?"),
        ("FromCountry", "US"),
        ("To", "+14155550199"),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", "SM8f1e9c6a2b7d4e0f9a3c5b1d7e2f4a60"),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("From", "+14155550100"),
        ("ApiVersion", "2010-04-01"),
    ]);
    let mms = signed(&[
        ("MessageSid", "MM2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c01"),
        ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
        ("From", "+14155550100"),
        ("To", "+14155550199"),
        ("Body", "The box is damaged (photos attached)"),
        ("NumMedia", "2"),
        (
            "MediaUrl0",
            "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM2/Media/ME1",
        ),
        ("MediaContentType0", "image/jpeg"),
        (
            "MediaUrl1",
            "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM2/Media/ME2",
        ),
        ("MediaContentType1", "image/png"),
    ]);
    let now = chrono::Utc::now();
    c.bench_function("twilio_verify_normalize_sms", |b| {
        b.iter(|| accept(black_box(&sms), &config, now).unwrap())
    });
    c.bench_function("twilio_verify_normalize_mms", |b| {
        b.iter(|| accept(black_box(&mms), &config, now).unwrap())
    });
    let mut forged = sms.clone();
    forged
        .headers
        .insert(SIGNATURE_HEADER, "bm90LXRoZS1yaWdodC1zaWduYXR1cmU=".parse().unwrap());
    c.bench_function("twilio_reject_bad_signature", |b| {
        b.iter(|| accept(black_box(&forged), &config, now).unwrap_err())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
