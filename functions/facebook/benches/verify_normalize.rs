//! Meta verify + normalize, the whole pure core of the Facebook function, on the sample events:
//! a one-message POST and the 50-message batch. Run: `cargo bench -p throughline-facebook`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use throughline_edge::{Secret, WebhookRequest};
use throughline_facebook::{MetaConfig, accept};

fn sample(name: &str) -> WebhookRequest {
    WebhookRequest::from_lambda(
        throughline_testkit::events::lambda_request(&format!("facebook/{name}")),
        None,
    )
}

fn bench(c: &mut Criterion) {
    let config = MetaConfig {
        app_secrets: vec![Secret::new(throughline_testkit::secrets::TEST_META_APP_SECRET)],
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
