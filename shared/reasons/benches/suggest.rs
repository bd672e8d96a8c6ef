//! The reason matcher on one message against 200 rules (the target: ≤ 20 µs).

use criterion::{Criterion, criterion_group, criterion_main};
use throughline_model::Channel;
use throughline_reasons::Taxonomy;

fn taxonomy_of_200_rules() -> Taxonomy {
    let codes: Vec<serde_json::Value> = (0..100)
        .map(|i| {
            serde_json::json!({
                "code": format!("topic-{}/case-{i}", i % 10),
                "name": format!("Case {i}"),
                "rules": [
                    {"keywords": [format!("keyword{i}"), format!("two words {i}"), format!("remboursé {i}")]},
                    {"patterns": [format!("\\border {i}\\d+\\b")], "channels": ["email"]}
                ]
            })
        })
        .collect();
    Taxonomy::from_json(&serde_json::json!({ "codes": codes }).to_string()).unwrap()
}

fn bench(c: &mut Criterion) {
    let taxonomy = taxonomy_of_200_rules();
    let message = "Bonjour, je n'ai toujours pas reçu ma commande 1042 et j'aimerais être \
                   remboursé 57 si elle n'arrive pas cette semaine. Where is my order? Merci, Ada. \
                   PS: the tracking page says order 571234 was delivered, but it was not.";
    c.bench_function("suggest_200_rules_one_message", |b| {
        b.iter(|| taxonomy.suggest(std::hint::black_box(message), Channel::Email))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
