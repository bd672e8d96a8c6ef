//! `cargo xtask costs`: DynamoDB requests and capacity units per ingested interaction, per
//! timeline page and per reply (the API's path, then the sender's), measured on the real store
//! code against the emulator; and the time from an API call to its send job on the queue.
//!
//! An SDK interceptor records every request the store sends (operation, the keys it touches,
//! consistent or not, transactional or not, the bytes a read returned). Capacity units are then
//! computed with DynamoDB's on-demand rules from the sizes of the items involved (read back
//! after the scenario): a read is 4 KB per unit, half for an eventually consistent read; a
//! write is 1 KB per unit; a transactional read or write costs twice. A write is charged for
//! the item's size after it (DynamoDB charges the larger of before and after, which for these
//! growing items is after).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::{
    batch_get_item::BatchGetItemInput, batch_get_item::BatchGetItemOutput, get_item::GetItemInput,
    put_item::PutItemInput, query::QueryInput, query::QueryOutput, transact_write_items::TransactWriteItemsInput,
    update_item::UpdateItemInput,
};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::TimeDelta;
use throughline_model::{
    Channel, E164, Evidence, EvidenceSource, Handle, Identity, Interaction, Platform, PlatformUserId, Provider,
};
use throughline_store::{Actor, MergeRequest, TimelineFilter, TimelineStore};

use crate::Result;
use crate::stack::LocalStack;
use crate::venv::Venv;

type Key = (String, String);
type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone)]
struct Call {
    operation: &'static str,
    /// Items written or read by key.
    keys: Vec<Key>,
    /// Put items are sized from the request itself.
    put_items: Vec<Item>,
    consistent: bool,
    transactional: bool,
    /// Bytes returned by a Query or BatchGetItem (once its answer arrived).
    returned_bytes: Option<usize>,
}

#[derive(Debug, Default, Clone)]
struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
}

fn key_of(item: &Item) -> Option<Key> {
    match (item.get("pk"), item.get("sk")) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => Some((pk.clone(), sk.clone())),
        _ => None,
    }
}

/// DynamoDB's item size: attribute names plus values (numbers approximated by their digits).
fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(items) => items.iter().map(String::len).sum(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| k.len() + value_size(v) + 1).sum::<usize>(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        _ => 0,
    }
}

fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "throughline-costs"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let input = context.input();
        let mut call = Call {
            operation: "other",
            keys: Vec::new(),
            put_items: Vec::new(),
            consistent: false,
            transactional: false,
            returned_bytes: None,
        };
        if let Some(get) = input.downcast_ref::<GetItemInput>() {
            call.operation = "GetItem";
            call.keys.extend(get.key.as_ref().and_then(key_of));
            call.consistent = get.consistent_read == Some(true);
        } else if let Some(put) = input.downcast_ref::<PutItemInput>() {
            call.operation = "PutItem";
            call.put_items.extend(put.item.clone());
        } else if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
            call.operation = "UpdateItem";
            call.keys.extend(update.key.as_ref().and_then(key_of));
        } else if let Some(query) = input.downcast_ref::<QueryInput>() {
            call.operation = "Query";
            call.consistent = query.consistent_read == Some(true);
        } else if let Some(batch) = input.downcast_ref::<BatchGetItemInput>() {
            call.operation = "BatchGetItem";
            call.consistent = batch
                .request_items
                .as_ref()
                .is_some_and(|r| r.values().any(|k| k.consistent_read == Some(true)));
        } else if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
            call.operation = "TransactWriteItems";
            call.transactional = true;
            for item in transaction.transact_items.iter().flatten() {
                if let Some(put) = &item.put {
                    call.put_items.push(put.item.clone());
                } else if let Some(update) = &item.update {
                    call.keys.extend(key_of(&update.key));
                } else if let Some(check) = &item.condition_check {
                    call.keys.extend(key_of(&check.key));
                }
            }
        }
        self.calls.lock().expect("not poisoned").push(call);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        let (operation, returned) = if let Some(query) = output.downcast_ref::<QueryOutput>() {
            ("Query", query.items.iter().flatten().map(item_size).sum())
        } else if let Some(batch) = output.downcast_ref::<BatchGetItemOutput>() {
            (
                "BatchGetItem",
                batch
                    .responses
                    .iter()
                    .flat_map(|r| r.values())
                    .flatten()
                    .map(item_size)
                    .sum(),
            )
        } else {
            return Ok(());
        };
        // Concurrent requests (a group's member Queries) answer in any order: each answer goes
        // to one unanswered call of its operation, so the sum over the scenario is exact.
        let mut calls = self.calls.lock().expect("not poisoned");
        if let Some(call) = calls
            .iter_mut()
            .find(|c| c.operation == operation && c.returned_bytes.is_none())
        {
            call.returned_bytes = Some(returned);
        }
        Ok(())
    }
}

/// Requests and capacity units of one scenario.
#[derive(Debug, Default)]
struct Tally {
    requests: BTreeMap<&'static str, usize>,
    rcu: f64,
    wcu: f64,
}

fn units(bytes: usize, per_unit: usize) -> f64 {
    bytes.div_ceil(per_unit).max(1) as f64
}

impl Tally {
    async fn of(calls: Vec<Call>, reader: &aws_sdk_dynamodb::Client, table: &str) -> Result<Self> {
        let mut sizes: HashMap<Key, usize> = HashMap::new();
        let mut tally = Tally::default();
        for call in calls {
            *tally.requests.entry(call.operation).or_default() += 1;
            let mut key_sizes = Vec::new();
            for key in &call.keys {
                if !sizes.contains_key(key) {
                    let item = reader
                        .get_item()
                        .table_name(table)
                        .key("pk", AttributeValue::S(key.0.clone()))
                        .key("sk", AttributeValue::S(key.1.clone()))
                        .consistent_read(true)
                        .send()
                        .await?
                        .item;
                    sizes.insert(key.clone(), item.as_ref().map_or(0, item_size));
                }
                key_sizes.push(sizes[key]);
            }
            let factor = if call.transactional { 2.0 } else { 1.0 };
            let read_factor = if call.consistent { 1.0 } else { 0.5 };
            match call.operation {
                "GetItem" => tally.rcu += key_sizes.iter().map(|s| units(*s, 4096)).sum::<f64>() * read_factor,
                "Query" | "BatchGetItem" => tally.rcu += units(call.returned_bytes.unwrap_or(0), 4096) * read_factor,
                _ => {
                    let written = call
                        .put_items
                        .iter()
                        .map(item_size)
                        .chain(key_sizes)
                        .map(|s| units(s, 1024))
                        .sum::<f64>();
                    tally.wcu += written * factor;
                }
            }
        }
        Ok(tally)
    }

    fn row(&self, scenario: &str) -> String {
        let requests: Vec<String> = self.requests.iter().map(|(op, n)| format!("{n} {op}")).collect();
        format!(
            "| {scenario} | {} | {} | {:.1} | {:.0} |",
            self.requests.values().sum::<usize>(),
            requests.join(", "),
            self.rcu,
            self.wcu
        )
    }
}

fn phone(n: &str) -> Handle {
    Handle::Phone {
        number: E164::parse(n).expect("valid"),
    }
}

/// An SMS from `from` to the sample business number, `minutes` after the sample day's 09:00.
pub(crate) fn sms(from: &str, id: &str, minutes: i64) -> Interaction {
    let at = throughline_testkit::sample_day_at(9, 0) + TimeDelta::minutes(minutes);
    let mut interaction = throughline_testkit::inbound_sms(from, id, at);
    interaction.text = Some("Hi, my order #1042 hasn't arrived yet. Can you check?".into());
    interaction
}

pub async fn run() -> Result<()> {
    let venv = Venv::ensure()?;
    let stack = LocalStack::start(&venv).await?;
    let recorder = Recorder::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&stack.aws)
        .interceptor(recorder.clone())
        .build();
    let measured = TimelineStore::new(aws_sdk_dynamodb::Client::from_conf(config), stack.table_name())
        .with_suppression_key(throughline_testkit::secrets::TEST_SUPPRESSION_KEY);
    let reader = aws_sdk_dynamodb::Client::new(&stack.aws);
    let table = stack.table_name().to_owned();
    let mut rows = Vec::new();

    macro_rules! scenario {
        ($name:expr, $body:expr) => {{
            recorder.calls.lock().expect("not poisoned").clear();
            let value = $body;
            let calls = std::mem::take(&mut *recorder.calls.lock().expect("not poisoned"));
            rows.push(Tally::of(calls, &reader, &table).await?.row($name));
            value
        }};
    }

    let ada = scenario!(
        "new customer (first SMS from a number)",
        measured.record(&sms("+14155550100", "SM1", 0)).await?
    );
    let ada = ada.customer().cloned().ok_or("recorded")?;
    scenario!(
        "known customer (second SMS)",
        measured.record(&sms("+14155550100", "SM2", 1)).await?
    );
    scenario!(
        "redelivery of that SMS (duplicate)",
        measured.record(&sms("+14155550100", "SM2", 1)).await?
    );
    let mut chat = sms("+14155550100", "wm-1", 2);
    chat.channel = Channel::Chat;
    chat.provider = Provider::WebChat;
    chat.customer = Handle::Platform {
        platform: Platform::WebChatUser,
        scope: Some(PlatformUserId::parse("acme-web").expect("valid")),
        id: PlatformUserId::parse("user-1042").expect("valid"),
    };
    chat.id =
        throughline_model::InteractionId::derive(chat.provider, &chat.business_endpoint, &chat.provider_message_id);
    chat.identities = vec![Identity {
        handle: phone("+14155550100"),
        evidence: Evidence::Verified,
        source: EvidenceSource::CompanyIdentityToken,
    }];
    scenario!(
        "new chat user joining a known customer on a verified token",
        measured.record(&chat).await?
    );

    // Two more customers merged into Ada: then a message from a merged member.
    let grace = measured
        .record(&sms("+14155550111", "SM3", 3))
        .await?
        .customer()
        .cloned()
        .ok_or("recorded")?;
    let third = measured
        .record(&sms("+14155550122", "SM4", 4))
        .await?
        .customer()
        .cloned()
        .ok_or("recorded")?;
    let agent = Actor {
        who: "costs".into(),
        principal_id: None,
        reason: None,
    };
    for source in [&grace, &third] {
        scenario!(
            "merge (a single customer into a group)",
            measured
                .merge(&MergeRequest {
                    source: source.clone(),
                    target: ada.clone(),
                    actor: agent.clone(),
                })
                .await?
        );
    }
    scenario!(
        "merged customer (SMS from a group member)",
        measured.record(&sms("+14155550111", "SM5", 5)).await?
    );
    // Two more: a group of five.
    for from in ["+14155550166", "+14155550177"] {
        let member = measured
            .record(&sms(from, &format!("SMg{from}"), 7))
            .await?
            .customer()
            .cloned()
            .ok_or("recorded")?;
        measured
            .merge(&MergeRequest {
                source: member,
                target: ada.clone(),
                actor: agent.clone(),
            })
            .await?;
    }
    scenario!(
        "group of 5: SMS from its root",
        measured.record(&sms("+14155550100", "SMg1", 8)).await?
    );
    scenario!(
        "group of 5: first SMS from a member since it was merged",
        measured.record(&sms("+14155550177", "SMg2", 9)).await?
    );
    scenario!(
        "group of 5: next SMS from that member",
        measured.record(&sms("+14155550177", "SMg3", 10)).await?
    );

    // Replies: the API's handler and the sender's, on the measured store.
    let (measured_replies, latency) = replies(&venv, &stack, &measured, &recorder).await?;
    for (name, calls) in measured_replies {
        rows.push(Tally::of(calls, &reader, &table).await?.row(name));
    }

    // 60 earlier conversations, three days apart: the state remembers its cap of 50.
    let days = |n: i64| n * 3 * 24 * 60;
    for n in 0..60 {
        measured
            .record(&sms("+14155550144", &format!("SMh{n}"), days(n - 70)))
            .await?;
    }
    scenario!(
        "50 remembered conversations: SMS continuing the open one",
        measured.record(&sms("+14155550144", "SMh-next", days(-11) + 5)).await?
    );
    scenario!(
        "50 remembered conversations: SMS opening a new one",
        measured.record(&sms("+14155550144", "SMh-new", days(-8))).await?
    );

    // 10,000 entries on one customer's timeline, recorded as any other (unmeasured).
    let seeder = TimelineStore::new(aws_sdk_dynamodb::Client::new(&stack.aws), stack.table_name())
        .with_suppression_key(throughline_testkit::secrets::TEST_SUPPRESSION_KEY);
    let long = seeder
        .record(&sms("+14155550155", "SMl-first", -10_000))
        .await?
        .customer()
        .cloned()
        .ok_or("recorded")?;
    // One after another: concurrent writes for one customer contend for its profile's version.
    for n in 1..10_000 {
        seeder
            .record(&sms("+14155550155", &format!("SMl{n}"), n - 10_000))
            .await?;
    }
    scenario!(
        "10,000 entries: SMS",
        measured.record(&sms("+14155550155", "SMl-next", 0)).await?
    );
    scenario!(
        "10,000 entries: timeline page of 50",
        measured.timeline(&long, 50, None, &TimelineFilter::default()).await?
    );

    for n in 0..120 {
        let from = [
            "+14155550100",
            "+14155550111",
            "+14155550122",
            "+14155550166",
            "+14155550177",
        ][n % 5];
        measured.record(&sms(from, &format!("SMp{n}"), 10 + n as i64)).await?;
    }
    let single = measured
        .record(&sms("+14155550133", "SM6", 6))
        .await?
        .customer()
        .cloned()
        .ok_or("recorded")?;
    for n in 0..120 {
        measured
            .record(&sms("+14155550133", &format!("SMq{n}"), 10 + n as i64))
            .await?;
    }
    let all = TimelineFilter::default();
    scenario!(
        "timeline page of 50, one customer",
        measured.timeline(&single, 50, None, &all).await?
    );
    scenario!(
        "timeline page of 50, group of 5 customers",
        measured.timeline(&ada, 50, None, &all).await?
    );
    scenario!(
        "profile by identifier (group of 5)",
        measured.find_customer(&phone("+14155550111")).await?
    );

    // Feedback and segments (issue 18): a survey answer is recorded on the commit the message
    // makes anyway; a segment changes only with the attributes it is evaluated on.
    let root = measured.resolve_root(&ada).await?;
    let late = sms("+14155550100", "SM-before-survey", 600);
    let survey = throughline_feedback::OpenSurvey {
        id: "sv_00c0575".into(),
        conversation_id: throughline_model::ConversationId::opened_by(&late.id),
        channel: Channel::Sms,
        customer: late.customer.key(),
        endpoint: late.business_endpoint.key(),
        locale: None,
        sent_at: late.occurred_at,
        expires_at: late.occurred_at + TimeDelta::hours(24),
        resolved_at: late.occurred_at,
        resolved_channel: Channel::Sms,
        assignee: None,
        reasons: Vec::new(),
        rating: None,
        remarked: false,
    };
    measured.open_survey(&root, &survey, None).await?;
    let mut rating = sms("+14155550100", "SM-rating", 601);
    rating.text = Some("5".into());
    scenario!(
        "a survey answer by SMS (\"5\": feedback, its CSAT cells)",
        measured.record(&rating).await?
    );
    let mut plain = sms("+14155550100", "SM-after-rating", 602);
    plain.text = Some("And another question".into());
    plain.conversation_id = None;
    scenario!(
        "the next message (an ordinary one, survey open)",
        measured.record(&plain).await?
    );
    let segments = throughline_segments::parse_segments(throughline_testkit::secrets::test_segments())?;
    let worth = |value: f64| {
        throughline_segments::Attributes::from([(
            "lifetime_value".to_owned(),
            throughline_segments::Value::Number(value),
        )])
    };
    scenario!(
        "company attributes set, joining a segment",
        measured.set_attributes(&ada, &worth(1500.0), &agent, &segments).await?
    );
    scenario!(
        "company attributes set again, memberships unchanged",
        measured.set_attributes(&ada, &worth(2000.0), &agent, &segments).await?
    );
    scenario!(
        "a segment's members, one page",
        measured.segment_members("high_value", 50, None).await?
    );

    println!("\nDynamoDB per operation (moto; capacity from item sizes, on-demand rules):\n");
    println!("| scenario | requests | by operation | RCU | WCU |");
    println!("| --- | --- | --- | --- | --- |");
    for row in rows {
        println!("{row}");
    }
    let profile = reader
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("CUSTOMER#{ada}")))
        .key("sk", AttributeValue::S("PROFILE".into()))
        .send()
        .await?
        .item
        .map_or(0, |i| item_size(&i));
    println!("\nsize of the group root's profile item after these: {profile} bytes");
    println!("\n{latency}");
    Ok(())
}

/// The timeline API as deployed, on `store`, queueing to the stack's queues; `credentials` the
/// tests' (the provider stub's).
fn timeline_api(
    stack: &LocalStack,
    store: &TimelineStore,
    credentials: &throughline_sender::Credentials,
) -> throughline_timeline_api::TimelineApi {
    let queue = |url: &str| throughline_queue::InteractionPublisher::new(stack.sqs(), url);
    throughline_timeline_api::TimelineApi {
        store: store.clone(),
        publisher: queue(&stack.interactions_queue().url),
        outbound: queue(&stack.outbound_queue().url),
        credentials: credentials.clone(),
        erasure_budget: throughline_timeline_api::DEFAULT_ERASURE_BUDGET,
        allow_unsigned: true,
        reasons: Default::default(),
        surveys: None,
        segments: None,
    }
}

/// `POST /customers/{customer}/messages` as API Gateway hands it to the function.
fn reply_request(customer: &str, key: &str) -> Result<lambda_http::Request> {
    let path = format!("/customers/{customer}/messages");
    let event = serde_json::json!({
        "version": "2.0", "routeKey": "ANY /{proxy+}", "rawPath": path, "rawQueryString": "",
        "headers": { "content-type": "application/json", "idempotency-key": key },
        "requestContext": { "accountId": "123456789012", "apiId": "local", "domainName": "localhost",
            "http": { "method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "costs" },
            "requestId": key, "routeKey": "ANY /{proxy+}", "stage": "$default", "time": "01/Dec/2026:00:00:00 +0000", "timeEpoch": 0 },
        "body": "{\"text\":\"Your replacement ships today.\"}", "isBase64Encoded": false
    });
    Ok(lambda_http::request::from_str(&event.to_string())?)
}

/// A reply through the API and its send by the sender, each step measured; then the time from
/// an API call to its job on the queue, over 100 calls.
async fn replies(
    venv: &Venv,
    stack: &LocalStack,
    measured: &TimelineStore,
    recorder: &Recorder,
) -> Result<(Vec<(&'static str, Vec<Call>)>, String)> {
    use throughline_testkit::secrets::test_send_credentials;
    let stub = crate::providers::ProviderStub::start(venv, test_send_credentials).await?;
    let credentials = throughline_sender::Credentials::from_document(&throughline_edge::Secret::new(
        test_send_credentials(stub.base()),
    ))?;
    let api = timeline_api(stack, measured, &credentials);
    let customer = measured
        .record(&sms("+14155550188", "SMr1", 20))
        .await?
        .customer()
        .cloned()
        .ok_or("recorded")?;
    let mut rows = Vec::new();
    let mut measure = |name: &'static str| {
        rows.push((name, std::mem::take(&mut *recorder.calls.lock().expect("not poisoned"))));
    };
    recorder.calls.lock().expect("not poisoned").clear();
    let answer = throughline_timeline_api::handle(reply_request(customer.as_str(), "reply-1")?, &api).await;
    if answer.status() != 202 {
        return Err(format!("the reply was not taken: {}", answer.status()).into());
    }
    measure("reply through the API (SMS, where the customer wrote; recorded, queued)");
    throughline_timeline_api::handle(reply_request(customer.as_str(), "reply-1")?, &api).await;
    measure("the same request again (same Idempotency-Key)");

    let sender = throughline_sender::Sender {
        store: measured.clone(),
        sqs: stack.sqs(),
        queue_url: stack.outbound_queue().url.clone(),
        transports: throughline_sender::Transports::new(&stack.aws, std::time::Duration::from_secs(5))?,
        credentials,
        apis: throughline_sender::ProviderApis::under(stub.base()),
        retry_base: std::time::Duration::ZERO,
        claim_timeout: throughline_sender::CLAIM_TIMEOUT,
    };
    // One job per delivery, so that each is measured alone.
    let mapping = crate::poller::EventSourceMapping {
        batch_size: 1,
        ..stack.mapping_of(crate::stack::SENDER_BINARY, Some(30))
    };
    // The two jobs the two requests queued, one delivery each.
    recorder.calls.lock().expect("not poisoned").clear();
    mapping
        .poll_once(1, |event| async {
            Ok(throughline_sender::handle(event, &sender).await)
        })
        .await?;
    measure("send it (sender: claim, one provider call, outcome on the entry, alias)");
    mapping
        .poll_once(1, |event| async {
            Ok(throughline_sender::handle(event, &sender).await)
        })
        .await?;
    measure("its job delivered again (claim refused, no call)");
    if stub.requests().await?.len() != 1 {
        return Err("the provider was not called exactly once".into());
    }

    // The provider's status events about it, as the writer applies them.
    let key = throughline_model::IdempotencyKey::parse("reply-1")?;
    let (_, entry) = measured
        .entry(&throughline_model::InteractionId::outbound(&customer, &key))
        .await?
        .ok_or("the reply's entry")?;
    let sid = entry
        .delivery
        .and_then(|d| d.provider_message_id)
        .ok_or("the reply was not sent")?;
    let report = |sid: &throughline_model::ProviderMessageId, status| throughline_model::StatusReport {
        interaction_id: throughline_model::InteractionId::derive(entry.provider, &entry.business_endpoint, sid),
        event: throughline_model::StatusEvent {
            status,
            at: chrono::Utc::now(),
            source: "twilio_status_callback".into(),
            error: None,
        },
        recipient: None,
    };
    let delivered = report(&sid, throughline_model::DeliveryStatus::Delivered);
    recorder.calls.lock().expect("not poisoned").clear();
    measured.observe_status(&delivered).await?;
    measure("a status event on it (delivered: alias, entry, conditional write)");
    measured.observe_status(&delivered).await?;
    measure("the same status event again (nothing written)");
    let early = throughline_model::ProviderMessageId::parse("SMnot0yet0sent")?;
    measured
        .observe_status(&report(&early, throughline_model::DeliveryStatus::Delivered))
        .await?;
    measure("a status event before its send result (kept on the alias-to-be)");
    // A watermark is one conditional write whatever the number of replies it covers.
    let watermark = throughline_model::WatermarkReport {
        customer: throughline_testkit::outbound::sample_send_jobs()
            .into_iter()
            .find(|(_, job)| job.message.channel == throughline_model::Channel::Messenger)
            .map(|(_, job)| job.message.to)
            .ok_or("a Messenger sample")?,
        status: throughline_model::DeliveryStatus::Delivered,
        up_to: chrono::Utc::now(),
    };
    measured.record_watermark(&watermark).await?;
    measure("a Messenger delivery watermark (covering any number of replies)");
    // Two days later, the daily reconciliation of the replies Twilio took that day (this one's
    // callback came above: read, not asked about; the same-key repeat made none).
    let reconciler = throughline_sender::reconcile::Reconciler {
        store: measured.clone(),
        publisher: throughline_queue::InteractionPublisher::new(stack.sqs(), &stack.interactions_queue().url),
        http: throughline_sender::ProviderClient::new(std::time::Duration::from_secs(5))?,
        credentials: sender.credentials.clone(),
        apis: sender.apis.clone(),
    };
    throughline_sender::reconcile::run(&reconciler, chrono::Utc::now().date_naive()).await?;
    measure("reconciling a day with one reply Twilio took (its day's Query, marker, entry)");

    // API call → job queued, 100 replies (each to the customer's latest message).
    let mut millis = Vec::new();
    for n in 0..100 {
        let started = std::time::Instant::now();
        let answer =
            throughline_timeline_api::handle(reply_request(customer.as_str(), &format!("lat-{n}"))?, &api).await;
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
        if answer.status() != 202 {
            return Err(format!("reply {n} was not taken: {}", answer.status()).into());
        }
    }
    recorder.calls.lock().expect("not poisoned").clear();
    millis.sort_by(f64::total_cmp);
    Ok((
        rows,
        format!(
            "API call → reply recorded and its job queued (emulator, 100 calls): median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
            millis[49], millis[89], millis[99]
        ),
    ))
}
