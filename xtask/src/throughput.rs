//! `cargo xtask throughput`: how long the writer takes for a batch and the Meta connector for a
//! 1000-message delivery when every AWS call takes a realistic in-region round trip, against the
//! emulator. The emulator answers on loopback in about a millisecond, so each client here is
//! given an HTTP client that waits `DYNAMODB_LATENCY` / `SQS_LATENCY` (asynchronously, as a
//! network would) before every request it sends.
//!
//! The emulator serves DynamoDB requests one at a time (its lock restores DynamoDB's isolation)
//! at a few milliseconds of CPU each, so a concurrent batch's time here has that floor; the
//! command prints it (the same batches with no added latency) next to each figure. For SQS it
//! is worse: moto spends ~37 ms of CPU per 10-message `SendMessageBatch`, so a 1000-message
//! delivery takes seconds against it whatever the connector does. The Meta figure is therefore
//! measured twice: against the emulator, and against `BatchAcceptor`, which answers each
//! `SendMessageBatch` with SQS's success shape after the latency and nothing else, so that what
//! is timed is the connector: its verification, normalization and the 8-at-a-time fan-out.

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use chrono::Utc;
use throughline_edge::Secret;
use throughline_model::{Interaction, QueueMessage};
use throughline_queue::InteractionPublisher;
use throughline_store::TimelineStore;
use throughline_testkit::secrets;
use throughline_timeline_writer::{DEFAULT_ERASURE_BUDGET, Writer};

use crate::Result;
use crate::costs::sms;
use crate::stack::LocalStack;
use crate::venv::Venv;

/// A DynamoDB round trip within a region.
const DYNAMODB_LATENCY: Duration = Duration::from_millis(8);
/// An SQS round trip within a region.
const SQS_LATENCY: Duration = Duration::from_millis(15);
/// Each figure is the median of this many runs.
const RUNS: usize = 7;

/// An HTTP client that waits before handing each request to the real one.
#[derive(Debug, Clone)]
struct Delayed {
    inner: SharedHttpClient,
    latency: Duration,
}

impl HttpClient for Delayed {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(DelayedConnector {
            inner: self.inner.http_connector(settings, components),
            latency: self.latency,
        })
    }
}

#[derive(Debug)]
struct DelayedConnector {
    inner: SharedHttpConnector,
    latency: Duration,
}

impl HttpConnector for DelayedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, latency) = (self.inner.clone(), self.latency);
        HttpConnectorFuture::new(async move {
            tokio::time::sleep(latency).await;
            inner.call(request).await
        })
    }
}

/// The SDK's default HTTPS client (hyper 1, rustls with aws-lc), made to wait first.
fn delayed(latency: Duration) -> Delayed {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let inner = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_https();
    Delayed { inner, latency }
}

/// Answers every `SendMessageBatch` (AWS JSON 1.0) as SQS does when it takes every entry, after
/// `latency`; counts the calls and entries it was sent.
#[derive(Debug, Clone, Default)]
struct BatchAcceptor {
    latency: Duration,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    entries: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl HttpClient for BatchAcceptor {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for BatchAcceptor {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        use std::sync::atomic::Ordering;
        let target = request.headers().get("x-amz-target").unwrap_or_default().to_owned();
        let body: serde_json::Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        let ids: Vec<serde_json::Value> = body["Entries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| serde_json::json!({"Id": e["Id"], "MessageId": format!("stub-{}", e["Id"])}))
            .collect();
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.entries.fetch_add(ids.len(), Ordering::Relaxed);
        let latency = self.latency;
        HttpConnectorFuture::new(async move {
            tokio::time::sleep(latency).await;
            let (status, answer) = if target == "AmazonSQS.SendMessageBatch" {
                (200, serde_json::json!({"Successful": ids, "Failed": []}))
            } else {
                (
                    400,
                    serde_json::json!({"__type": "com.amazonaws.sqs#InvalidAction", "message": target}),
                )
            };
            let mut response = aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(status).expect("a status"),
                aws_smithy_types::body::SdkBody::from(answer.to_string()),
            );
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.0");
            Ok(response)
        })
    }
}

fn batch(interactions: &[Interaction]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = interactions
        .iter()
        .map(|interaction| {
            let mut message = SqsMessage::default();
            message.message_id = Some(format!("msg-{}", interaction.id));
            message.body = Some(QueueMessage::Interaction(Box::new(interaction.clone())).to_json());
            message
        })
        .collect();
    event
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// A signed Meta delivery of `count` Messenger messages from `count` users (run `run` apart).
fn meta_delivery(count: usize, run: usize) -> lambda_http::Request {
    let page = "1060000000000001";
    let messaging: Vec<serde_json::Value> = (0..count)
        .map(|n| {
            serde_json::json!({
                "sender": { "id": format!("7{run:02}{n:013}") },
                "recipient": { "id": page },
                "timestamp": 1_795_520_001_000i64 + n as i64,
                "message": { "mid": format!("m_load_{run}_{n}"), "text": "Where is my order?" }
            })
        })
        .collect();
    let body = serde_json::json!({
        "object": "page",
        "entry": [{ "id": page, "time": 1_795_520_000_000i64, "messaging": messaging }]
    })
    .to_string();
    let mut event = throughline_testkit::events::event_json("facebook/03-messenger-text.json");
    event["headers"]["x-hub-signature-256"] =
        throughline_facebook::webhook::sign(secrets::TEST_META_APP_SECRET, body.as_bytes()).into();
    event["body"] = body.into();
    lambda_http::request::from_str(&event.to_string()).expect("an HTTP event")
}

/// The writer's median times with `latency` added to each DynamoDB call, for known customers:
/// one message; ten for ten customers; ten for one customer; ten for ten customers one batch
/// after another (the writer before lanes). `prefix` keeps each run's phone numbers apart.
async fn writer_times(stack: &LocalStack, latency: Duration, prefix: u32) -> Result<[Duration; 4]> {
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(&stack.aws)
        .http_client(delayed(latency))
        .build();
    let writer = Writer {
        store: TimelineStore::new(aws_sdk_dynamodb::Client::from_conf(dynamodb), stack.table_name())
            .with_suppression_key(secrets::TEST_SUPPRESSION_KEY),
        publisher: InteractionPublisher::new(stack.sqs(), &stack.interactions_queue().url),
        erasure_budget: DEFAULT_ERASURE_BUDGET,
        taxonomy: None,
    };
    let phones: Vec<String> = (0..10).map(|n| format!("+1415{prefix:03}{n:04}")).collect();
    // Known customers: each has one interaction already.
    for (n, phone) in phones.iter().enumerate() {
        writer
            .store
            .record(&sms(phone, &format!("SMwarm{prefix}-{n}"), 0))
            .await?;
    }
    let mut minute = 1;
    let mut next = |from: &str| {
        minute += 1;
        sms(from, &format!("SMt{prefix}-{minute}"), minute)
    };
    let mut samples: [Vec<Duration>; 4] = Default::default();
    let mut failed = 0;
    for _ in 0..RUNS {
        let batches = [
            vec![batch(&[next(&phones[0])])],
            vec![batch(&phones.iter().map(|p| next(p)).collect::<Vec<_>>())],
            vec![batch(&(0..10).map(|_| next(&phones[1])).collect::<Vec<_>>())],
            phones.iter().map(|p| batch(&[next(p)])).collect(),
        ];
        for (events, times) in batches.into_iter().zip(samples.iter_mut()) {
            let started = Instant::now();
            for event in events {
                failed += throughline_timeline_writer::handle(event, &writer)
                    .await
                    .batch_item_failures
                    .len();
            }
            times.push(started.elapsed());
        }
    }
    if failed > 0 {
        return Err(format!("{failed} messages failed").into());
    }
    Ok(samples.map(median))
}

pub async fn run() -> Result<()> {
    let venv = Venv::ensure()?;
    let stack = LocalStack::start(&venv).await?;
    let floor = writer_times(&stack, Duration::ZERO, 100).await?;
    let measured = writer_times(&stack, DYNAMODB_LATENCY, 200).await?;
    let sqs = aws_sdk_sqs::config::Builder::from(&stack.aws)
        .http_client(delayed(SQS_LATENCY))
        .build();
    let sqs = aws_sdk_sqs::Client::from_conf(sqs);
    let queue = stack.interactions_queue().url.clone();
    let meta = throughline_facebook::FacebookFunction {
        meta: throughline_facebook::MetaConfig::from_secrets(&Secret::new(secrets::test_meta_secrets()))?,
        publisher: InteractionPublisher::new(sqs, &queue),
    };
    let (mut meta_times, mut accept_times) = (vec![], vec![]);
    for run in 0..RUNS {
        // The pure part alone: verify and normalize.
        let request = throughline_edge::WebhookRequest::from_lambda(meta_delivery(1000, run), None);
        let started = Instant::now();
        let accepted = throughline_facebook::accept(&request, &meta.meta, Utc::now()).map_err(|r| r.to_string())?;
        accept_times.push(started.elapsed());
        drop(accepted);
        let request = meta_delivery(1000, run);
        let started = Instant::now();
        let response = throughline_facebook::handle(request, &meta).await;
        meta_times.push(started.elapsed());
        if response.status() != 200 {
            return Err(format!("the Meta delivery was answered {}", response.status()).into());
        }
    }

    println!(
        "\nWriter, known customers, median of {RUNS} (the emulator serves DynamoDB one request at a time: \
         the floor is the same batch with no added latency):\n"
    );
    println!("| batch | {} per DynamoDB call | floor (0 ms) |", ms(DYNAMODB_LATENCY));
    println!("| --- | --- | --- |");
    for (n, name) in [
        "1 message",
        "10 messages, 10 customers",
        "10 messages, 1 customer",
        "10 messages, 10 customers, one batch after another (the writer before lanes)",
    ]
    .into_iter()
    .enumerate()
    {
        println!("| {name} | {} | {} |", ms(measured[n]), ms(floor[n]));
    }
    println!(
        "\nMeta connector, one delivery of 1000 Messenger messages, {} per SQS call (median of {RUNS}): {}",
        ms(SQS_LATENCY),
        ms(median(meta_times))
    );
    println!(
        "of which verifying and normalizing it (no network): {}",
        ms(median(accept_times))
    );
    let acceptor = BatchAcceptor {
        latency: SQS_LATENCY,
        ..BatchAcceptor::default()
    };
    let sqs = aws_sdk_sqs::config::Builder::from(&stack.aws)
        .http_client(acceptor.clone())
        .build();
    let meta = throughline_facebook::FacebookFunction {
        publisher: InteractionPublisher::new(aws_sdk_sqs::Client::from_conf(sqs), &queue),
        ..meta
    };
    let mut fan_out = vec![];
    for run in 0..RUNS {
        let request = meta_delivery(1000, RUNS + run);
        let started = Instant::now();
        let response = throughline_facebook::handle(request, &meta).await;
        fan_out.push(started.elapsed());
        if response.status() != 200 {
            return Err(format!("the Meta delivery was answered {}", response.status()).into());
        }
    }
    let (calls, entries) = (
        acceptor.calls.load(std::sync::atomic::Ordering::Relaxed),
        acceptor.entries.load(std::sync::atomic::Ordering::Relaxed),
    );
    println!(
        "the same with SQS answering after {} and doing nothing else ({calls} SendMessageBatch calls, {entries} entries in {RUNS} deliveries): {}",
        ms(SQS_LATENCY),
        ms(median(fan_out))
    );
    Ok(())
}
