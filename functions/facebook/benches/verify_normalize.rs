//! Meta verify + normalize, the whole pure core of the Facebook function, on the sample events:
//! a one-message POST and the 50-message batch. Run: `cargo bench -p throughline-facebook`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use throughline_edge::{Secret, WebhookRequest};
use throughline_facebook::{MetaConfig, accept};

fn sample(name: &str) -> WebhookRequest {
    let path = format!("{}/../../events/facebook/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    WebhookRequest::from_lambda(lambda_http::request::from_str(&text).unwrap(), None)
}

fn bench(c: &mut Criterion) {
    let config = MetaConfig {
        app_secrets: vec![Secret::new("throughline-test-meta-app-secret")],
        verify_token: Secret::new("unused"),
    };
    let now = chrono::Utc::now();
    let mut group = c.benchmark_group("meta_verify_normalize");
    for (name, file, messages) in [
        ("messenger_1", "03-messenger-text.json", 1),
        ("whatsapp_1", "13-whatsapp-image-caption.json", 1),
        ("messenger_batch_50", "17-batch-50-messages.json", 50),
    ] {
        let request = sample(file);
        assert_eq!(accept(&request, &config, now).unwrap().interactions.len(), messages);
        group.throughput(Throughput::Elements(messages as u64));
        group.bench_function(name, |b| b.iter(|| accept(black_box(&request), &config, now)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
