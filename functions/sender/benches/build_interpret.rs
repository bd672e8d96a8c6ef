//! The sender's pure core per provider: a reply's request built, and the provider's success
//! answer read. Run: `cargo bench -p throughline-sender`.

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use throughline_edge::Secret;
use throughline_model::Channel;
use throughline_sender::{Credentials, ProviderApis, ProviderResponse, build_request, interpret_response};
use throughline_testkit::outbound::sample_send_jobs;
use throughline_testkit::secrets::test_send_credentials;

/// Each provider's documented success answer.
fn success(provider: &str, channel: Channel) -> ProviderResponse {
    let (status, body) = match (provider, channel) {
        ("twilio", _) => (
            201,
            json!({"sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f", "status": "queued", "direction": "outbound-api",
                   "error_code": null, "num_segments": "1", "num_media": "0", "price": null}),
        ),
        ("graph", Channel::Whatsapp) => (
            200,
            json!({"messaging_product": "whatsapp", "contacts": [{"input": "14155550100", "wa_id": "14155550100"}],
                   "messages": [{"id": "wamid.HBgLMTQxNTU1NTAxMDAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}]}),
        ),
        ("graph", _) => (
            200,
            json!({"recipient_id": "6010000000000042", "message_id": "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM"}),
        ),
        ("telegram", _) => (
            200,
            json!({"ok": true, "result": {"message_id": 43, "chat": {"id": 111222333, "type": "private"}, "date": 1778328000, "text": "hi"}}),
        ),
        ("x", _) => (
            201,
            json!({"data": {"dm_conversation_id": "1-2", "dm_event_id": "1582838223456789012"}}),
        ),
        ("mailgun", _) => (
            200,
            json!({"id": "<20260509120000.1.ABCDEF@mg.acme.example>", "message": "Queued. Thank you."}),
        ),
        _ => (202, json!({})),
    };
    ProviderResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn bench(c: &mut Criterion) {
    let credentials = Credentials::from_document(&Secret::new(test_send_credentials("https://stub.example"))).unwrap();
    let apis = ProviderApis::default();
    let now = Utc::now();
    for (provider, job) in sample_send_jobs() {
        let response = success(provider, job.message.channel);
        let name = format!("build+interpret/{provider}/{}", job.message.channel);
        c.bench_function(&name, |b| {
            b.iter(|| {
                let request = build_request(black_box(&job), &credentials, &apis, now).unwrap();
                black_box(request);
                interpret_response(black_box(&job), black_box(&response), now)
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
