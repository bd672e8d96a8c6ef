//! Webhook → SQS → writer → DynamoDB timeline, with the real handlers against the moto emulator
//! over HTTP, resources created from infra/template.yaml.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_http::http::StatusCode;
use throughline_e2e::*;
use throughline_model::Channel;
use throughline_store::{Recorded, TimelineStore};

#[tokio::test(flavor = "multi_thread")]
async fn sample_webhooks_become_one_timeline_per_customer() {
    let stack = start_stack().await;
    let function = sms_function(&stack);
    let queue = stack.interactions_queue().url.clone();

    for event in [
        "sms/01-inbound-sms.json",
        "sms/02-inbound-mms.json",
        "sms/03-whatsapp-inbound.json",
    ] {
        let response = send(&function, event).await;
        assert_eq!(response.status(), StatusCode::OK, "{event}: {}", body_text(&response));
        assert_eq!(response.headers()["content-type"], "text/xml");
        assert!(body_text(&response).ends_with("<Response/>"));
    }
    let response = send(&function, "sms/04-second-customer-sms.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(depth(&stack, &queue).await, 4);

    // A status callback is queued as a status report (of a message this stack never sent:
    // it stays pending); refused: bad signature, malformed.
    assert_eq!(
        send(&function, "sms/05-status-callback.json").await.status(),
        StatusCode::OK
    );
    assert_eq!(depth(&stack, &queue).await, 5);
    let forged = send(&function, "sms/06-bad-signature.json").await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let malformed = send(&function, "sms/07-malformed-missing-from.json").await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let error: serde_json::Value = serde_json::from_str(&body_text(&malformed)).unwrap();
    assert_eq!(error["error"]["message"], "parameter From is missing");
    assert_eq!(depth(&stack, &queue).await, 5, "nothing queued for refused requests");

    let store = stack.store();
    drain(&stack.writer_mapping(Some(1)), &store).await;

    let ada = timeline_of(&store, &phone("+14155550100")).await;
    let channels: Vec<Channel> = ada.iter().map(|i| i.channel).collect();
    assert_eq!(
        channels.len(),
        3,
        "SMS, MMS and WhatsApp from one number are one customer"
    );
    assert!(channels.contains(&Channel::Whatsapp) && channels.contains(&Channel::Sms));
    assert!(
        ada.windows(2).all(|w| w[0].occurred_at >= w[1].occurred_at),
        "newest first"
    );
    let mms = ada
        .iter()
        .find(|i| i.attachments.len() == 2)
        .expect("the MMS with its two media");
    assert_eq!(mms.attachments[0].content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        ada.iter().find_map(|i| i.customer_display_name.clone()).as_deref(),
        Some("Ada Lovelace")
    );

    let grace = timeline_of(&store, &phone("+442071838750")).await;
    assert_eq!(grace.len(), 1);
    assert_eq!(grace[0].text.as_deref(), Some("Hello, do you ship to London?"));
    assert_eq!(store.all_customers().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn resent_webhooks_and_redeliveries_never_duplicate() {
    let stack = start_stack().await;
    let function = sms_function(&stack);
    let store = stack.store();
    let mapping = stack.writer_mapping(Some(1));

    // Twilio re-sends the same message (a later arrival time, the same MessageSid).
    for _ in 0..2 {
        assert_eq!(
            send(&function, "sms/01-inbound-sms.json").await.status(),
            StatusCode::OK
        );
    }
    drain(&mapping, &store).await;
    assert_eq!(timeline_of(&store, &phone("+14155550100")).await.len(), 1);

    // SQS redelivers a message already processed (the writer's delete was lost).
    let entry = timeline_of(&store, &phone("+14155550100")).await.remove(0);
    function
        .publisher
        .publish::<throughline_model::QueueMessage>(&[entry.clone().into(), entry.clone().into()])
        .await
        .unwrap();
    drain(&mapping, &store).await;
    assert_eq!(timeline_of(&store, &phone("+14155550100")).await.len(), 1);
    assert!(matches!(
        store.record(&entry).await.unwrap(),
        Recorded::Duplicate { .. }
    ));

    // Another handle's message under the same id (a forged or broken id): counted, never
    // recorded, and the first one stays as it was.
    let mut impostor = entry.clone();
    impostor.customer = phone("+14155550166");
    impostor.text = Some("someone else's words".into());
    assert!(matches!(
        store.record(&impostor).await.unwrap(),
        Recorded::Collision { .. }
    ));
    assert_eq!(store.customer_for(&phone("+14155550166"), true).await.unwrap(), None);
    let kept = timeline_of(&store, &phone("+14155550100")).await;
    assert_eq!((kept.len(), &kept[0].text), (1, &entry.text));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_message_fails_alone_and_ends_in_the_dead_letter_queue() {
    let stack = start_stack().await;
    let function = sms_function(&stack);
    let store = stack.store();
    let queue = stack.interactions_queue().url.clone();
    let dlq = stack.dead_letter_queue().url.clone();

    send(&function, "sms/01-inbound-sms.json").await;
    stack
        .sqs()
        .send_message()
        .queue_url(&queue)
        .message_body("{\"not\": \"an interaction\"}")
        .send()
        .await
        .unwrap();
    send(&function, "sms/04-second-customer-sms.json").await;

    let mapping = stack.writer_mapping(Some(1));
    let first = poll_writer(&mapping, &store).await;
    assert_eq!(
        (first.received, first.deleted, first.failed),
        (3, 2, 1),
        "only the poison message fails"
    );
    assert_eq!(store.all_customers().await.unwrap().len(), 2);

    // Redelivered after the visibility timeout until maxReceiveCount, then moved by SQS to the DLQ.
    let (_, max_receives) = stack.interactions_queue().redrive.clone().unwrap();
    let mut polls = 0;
    while depth(&stack, &dlq).await == 0 {
        polls += 1;
        assert!(polls <= 4 * max_receives, "poison message never reached the DLQ");
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        poll_writer(&mapping, &store).await;
    }
    assert_eq!(depth(&stack, &queue).await, 0);
    let moved = stack
        .sqs()
        .receive_message()
        .queue_url(&dlq)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(
        moved[0].body.as_deref(),
        Some("{\"not\": \"an interaction\"}"),
        "kept intact for inspection"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn when_dynamodb_fails_every_message_stays_queued_until_it_is_back() {
    let stack = start_stack().await;
    let function = sms_function(&stack);
    send(&function, "sms/01-inbound-sms.json").await;
    send(&function, "sms/02-inbound-mms.json").await;

    let unavailable = TimelineStore::new(aws_sdk_dynamodb::Client::new(&stack.aws), "NoSuchTable");
    let mapping = stack.writer_mapping(Some(1));
    let outcome = poll_writer(&mapping, &unavailable).await;
    assert_eq!((outcome.received, outcome.deleted, outcome.failed), (2, 0, 2));

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let store = stack.store();
    drain(&mapping, &store).await;
    assert_eq!(timeline_of(&store, &phone("+14155550100")).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_first_messages_from_a_new_handle_make_one_customer() {
    let stack = start_stack().await;
    let store = stack.store();
    let template = throughline_sms::accept(
        &throughline_edge::WebhookRequest::from_lambda(sample_request("sms/01-inbound-sms.json"), None),
        &sms_function(&stack).twilio,
        chrono::Utc::now(),
    )
    .unwrap()
    .interactions
    .remove(0);

    // Eight different messages from one new number, written at the same moment.
    let writes = (0..8).map(|n| {
        let mut interaction = template.clone();
        let sid = throughline_model::ProviderMessageId::parse(&format!("SMconcurrent{n}")).unwrap();
        interaction.id =
            throughline_model::InteractionId::derive(interaction.provider, &interaction.business_endpoint, &sid);
        interaction.provider_message_id = sid;
        let store = store.clone();
        tokio::spawn(async move { store.record(&interaction).await.unwrap() })
    });
    let mut customers = Vec::new();
    for write in writes.collect::<Vec<_>>() {
        customers.push(write.await.unwrap().customer().unwrap().clone());
    }
    customers.dedup();
    assert_eq!(customers.len(), 1, "all writers agree on one customer");
    assert_eq!(store.all_customers().await.unwrap(), customers);
    assert_eq!(timeline_of(&store, &phone("+14155550100")).await.len(), 8);
}

/// The store's exactly-once argument rests on DynamoDB's serializable transactions. The local
/// emulator must give them too: a cancelled transaction never undoes a write that another
/// request committed meanwhile (moto as installed restores a copy of the whole table, so one
/// of these writes went missing in most runs; `tools/moto_server.py`).
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_transaction_never_undoes_a_concurrent_write() {
    use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
    let stack = start_stack().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.aws);
    let table = stack.table_name().to_owned();
    let key = |pk: String| {
        std::collections::HashMap::from([
            ("pk".to_owned(), AttributeValue::S(pk)),
            ("sk".to_owned(), AttributeValue::S("ISOLATION".into())),
        ])
    };
    // Some filler, so that moto's copy of the table (as installed) takes long enough for
    // requests to overlap it.
    for chunk in 0..80 {
        let requests = (0..25).map(|i| {
            let put = aws_sdk_dynamodb::types::PutRequest::builder()
                .set_item(Some(key(format!("FILLER#{chunk}-{i}"))))
                .build()
                .unwrap();
            aws_sdk_dynamodb::types::WriteRequest::builder()
                .put_request(put)
                .build()
        });
        dynamodb
            .batch_write_item()
            .request_items(&table, requests.collect())
            .send()
            .await
            .unwrap();
    }
    let writes = (0..60).map(|n| {
        let (dynamodb, table) = (dynamodb.clone(), table.clone());
        let put = Put::builder()
            .table_name(&table)
            .set_item(Some(key(format!("ISOLATION#{n}"))))
            .build()
            .unwrap();
        // Every odd transaction is cancelled by a condition on an item that does not exist.
        let check = ConditionCheck::builder()
            .table_name(&table)
            .set_key(Some(key("ISOLATION#missing".into())))
            .condition_expression(if n % 2 == 0 {
                "attribute_not_exists(pk)"
            } else {
                "attribute_exists(pk)"
            })
            .build()
            .unwrap();
        tokio::spawn(async move {
            dynamodb
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put).build())
                .transact_items(TransactWriteItem::builder().condition_check(check).build())
                .send()
                .await
                .is_ok()
        })
    });
    let mut committed = Vec::new();
    for (n, write) in writes.collect::<Vec<_>>().into_iter().enumerate() {
        if write.await.unwrap() {
            committed.push(n);
        }
    }
    assert_eq!(
        committed,
        (0..60).step_by(2).collect::<Vec<_>>(),
        "exactly the even ones commit"
    );
    for n in committed {
        let item = dynamodb
            .get_item()
            .table_name(&table)
            .set_key(Some(key(format!("ISOLATION#{n}"))))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        assert!(item.item.is_some(), "committed transaction {n} was undone");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_queue_fails_the_webhook_answers_503_and_nothing_is_acknowledged() {
    let stack = start_stack().await;
    let missing = format!("{}/123456789012/NoSuchQueue", stack.moto.endpoint());
    let function = sms_function_for_queue(&stack, &missing);
    let response = send(&function, "sms/01-inbound-sms.json").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let error: serde_json::Value = serde_json::from_str(&body_text(&response)).unwrap();
    assert_eq!(error["error"]["code"], "queue_unavailable");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sample_sqs_event_reports_its_poison_record() {
    let stack = start_stack().await;
    let store = stack.store();
    let text = std::fs::read_to_string(event_path("timeline-writer/sqs-batch.json")).unwrap();
    let event: SqsEvent = serde_json::from_str(&text).unwrap();
    let poison = event.records[1].message_id.clone().unwrap();
    let response = throughline_timeline_writer::handle(event, &writer(&stack)).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec![poison.as_str()]);
    assert_eq!(timeline_of(&store, &phone("+14155550100")).await.len(), 1);
}

/// Entries SQS fails on its side (the emulator made to fail the next ones) are sent again
/// within the same publish, so a passing fault costs the provider no retry: every message is
/// queued exactly once. Failing more sends of an entry than the publisher makes fails the
/// publish (the webhook answers 5xx and the provider retries), with nothing half-acknowledged.
#[tokio::test(flavor = "multi_thread")]
async fn entries_sqs_fails_on_its_side_are_sent_again_and_queued_once() {
    use throughline_model::QueueMessage;
    let stack = start_stack().await;
    let queue = stack.interactions_queue().clone();
    let publisher = throughline_queue::InteractionPublisher::new(stack.sqs(), &queue.url);
    let faults = format!("{}/_throughline/sqs-entry-faults", stack.moto.endpoint());
    let http = reqwest::Client::new();
    let fail_next = |count: usize| {
        let (http, faults, name) = (http.clone(), faults.clone(), queue.name.clone());
        async move {
            let set = http
                .post(&faults)
                .query(&[("queue", name.as_str()), ("count", &count.to_string())])
                .send()
                .await
                .unwrap();
            assert!(set.status().is_success());
        }
    };
    let unused = || {
        let (http, faults, name) = (http.clone(), faults.clone(), queue.name.clone());
        async move {
            let left: std::collections::BTreeMap<String, u64> =
                http.get(&faults).send().await.unwrap().json().await.unwrap();
            // The emulator lists every queue faults were set for: a missing one means it
            // never took the request, and the test must not pass on that.
            *left
                .get(&name)
                .unwrap_or_else(|| panic!("the emulator has no entry faults for {name}: {left:?}"))
        }
    };
    let messages = |prefix: &str, count: usize| -> Vec<QueueMessage> {
        (0..count)
            .map(|n| {
                QueueMessage::from(interaction(
                    Channel::Sms,
                    phone("+14155550177"),
                    &format!("SM{prefix}{n}"),
                    chrono::Utc::now(),
                ))
            })
            .collect()
    };

    // Three entries of the first batch fail once: sent again, all twelve queued, once each.
    fail_next(3).await;
    let published = publisher.publish(&messages("retried", 12)).await.unwrap();
    assert_eq!((published.queued, published.dropped.len()), (12, 0));
    assert_eq!(unused().await, 0, "the faults were met");
    assert_eq!(depth(&stack, &queue.url).await, 12);

    // One message whose every send fails: the publish fails, and nothing is queued for it.
    fail_next(10).await;
    let error = publisher.publish(&messages("refused", 1)).await.unwrap_err();
    assert!(error.to_string().contains("InternalError"), "{error}");
    assert_eq!(unused().await, 10 - 3, "three sends in all, then the publish gave up");
    assert_eq!(depth(&stack, &queue.url).await, 12);
}

/// Lets `allowed` writes through, then fails that write and every request after it: the
/// writer's process stopping there (a timeout, a crash), with nothing of it sent afterwards.
#[derive(Debug, Clone)]
struct StopAfter {
    allowed: usize,
    writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl aws_sdk_dynamodb::config::Intercept for StopAfter {
    fn name(&self) -> &'static str {
        "stop-after"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        use aws_sdk_dynamodb::operation::{
            batch_write_item::BatchWriteItemInput, delete_item::DeleteItemInput, put_item::PutItemInput,
            transact_write_items::TransactWriteItemsInput, update_item::UpdateItemInput,
        };
        use std::sync::atomic::Ordering;
        if self.stopped.load(Ordering::SeqCst) {
            return Err("the writer stopped".into());
        }
        let input = context.input();
        let write = input.downcast_ref::<PutItemInput>().is_some()
            || input.downcast_ref::<UpdateItemInput>().is_some()
            || input.downcast_ref::<DeleteItemInput>().is_some()
            || input.downcast_ref::<BatchWriteItemInput>().is_some()
            || input.downcast_ref::<TransactWriteItemsInput>().is_some();
        if write && self.writes.fetch_add(1, Ordering::SeqCst) >= self.allowed {
            self.stopped.store(true, Ordering::SeqCst);
            return Err("the writer stopped before this write".into());
        }
        Ok(())
    }
}

/// The store as a writer that stops after `allowed` writes would run it.
fn stopping_store(stack: &stack::LocalStack, allowed: usize) -> TimelineStore {
    let config = aws_sdk_dynamodb::config::Builder::from(&stack.aws)
        .interceptor(StopAfter {
            allowed,
            writes: Default::default(),
            stopped: Default::default(),
        })
        .build();
    TimelineStore::new(aws_sdk_dynamodb::Client::from_conf(config), stack.table_name())
        .with_suppression_key(throughline_testkit::secrets::TEST_SUPPRESSION_KEY)
}

/// A writer can stop between any two of an interaction's writes (they are not one transaction);
/// the redelivery finishes it: one entry, counted once, in the conversation it opened, and a
/// further delivery is a duplicate. Here the interaction opens a conversation, so it writes all
/// three (marker, carrying its predecessor's record; entry; commit); once the stopped
/// writer is simply redelivered, once after another interaction of the customer was recorded
/// in between (the commit then moves to the root's next version).
#[tokio::test(flavor = "multi_thread")]
async fn a_writer_stopped_after_any_write_is_finished_by_its_redelivery_exactly_once() {
    let stack = start_stack().await;
    let store = stack.store();
    let day = chrono::Utc::now() - chrono::TimeDelta::days(30);
    for interleaved in [false, true] {
        // Until a writer is let through every write: every stop on the way was finished.
        let mut completed = false;
        for allowed in 0..8 {
            if completed {
                break;
            }
            let ada = phone(&format!("+1415555{}{allowed:03}", u8::from(interleaved) + 6));
            let message = |n: u32, days: i64| {
                interaction(
                    Channel::Sms,
                    ada.clone(),
                    &format!("SMstop{interleaved}{allowed}-{n}"),
                    day + chrono::TimeDelta::days(days) + chrono::TimeDelta::minutes(n.into()),
                )
            };
            let (first, opening, later) = (message(1, 0), message(2, 3), message(3, 3));
            let Recorded::New { conversation: old, .. } = store.record(&first).await.unwrap() else {
                panic!("first is new");
            };
            completed = match stopping_store(&stack, allowed).record(&opening).await {
                Ok(_) => true,
                Err(throughline_store::StoreError::Dynamo { .. }) => false,
                Err(other) => panic!("stopped after {allowed} writes: {other:?}"),
            };
            let mut expected = vec![first.id.clone(), opening.id.clone()];
            if interleaved {
                store.record(&later).await.unwrap();
                expected.push(later.id.clone());
            }
            let finished = store.record(&opening).await.unwrap();
            assert!(
                matches!(
                    (&finished, completed),
                    (Recorded::New { .. }, false) | (Recorded::Duplicate { .. }, true)
                ),
                "after {allowed} writes: {finished:?}"
            );
            assert!(matches!(
                store.record(&opening).await.unwrap(),
                Recorded::Duplicate { .. }
            ));

            let timeline = timeline_of(&store, &ada).await;
            let mut ids: Vec<_> = timeline.iter().map(|i| i.id.clone()).collect();
            ids.sort();
            expected.sort();
            assert_eq!(
                ids, expected,
                "each once (interleaved {interleaved}, after {allowed} writes)"
            );
            let profile = store.find_customer(&ada).await.unwrap();
            assert_eq!(
                profile.counts.get("sms"),
                Some(&(expected.len() as u64)),
                "counted once each"
            );
            let conversation_of = |id: &throughline_model::InteractionId| {
                timeline
                    .iter()
                    .find(|i| &i.id == id)
                    .and_then(|i| i.conversation_id.clone())
                    .unwrap()
            };
            assert_eq!(conversation_of(&first.id), old);
            let opened = conversation_of(&opening.id);
            assert_ne!(opened, old, "three days later: a conversation of its own");
            // Every entry's conversation is one the customer's state knows, and the open one is
            // the latest.
            let export = store.export(&profile.customer_id, None).await.unwrap();
            let known: Vec<_> = export.conversations.iter().map(|c| c.id.clone()).collect();
            for entry in &timeline {
                assert!(known.contains(entry.conversation_id.as_ref().unwrap()), "{known:?}");
            }
            let open = profile.open_conversation.unwrap().id;
            assert_eq!(
                open,
                conversation_of(
                    expected
                        .iter()
                        .max_by_key(|id| { timeline.iter().find(|i| &i.id == *id).map(|i| i.occurred_at) })
                        .unwrap()
                )
            );
            if !interleaved {
                assert_eq!(open, opened);
            }
        }
        assert!(completed, "a writer let through every write records it");
    }
}

/// The same for a first message from a new number: its customer is created in single writes
/// too (the handle, its profile, its identifier), and the redelivery of a writer stopped after
/// any of them (or of the recording's) finishes the customer and its one entry.
#[tokio::test(flavor = "multi_thread")]
async fn a_writer_stopped_while_creating_a_customer_is_finished_by_its_redelivery() {
    let stack = start_stack().await;
    let store = stack.store();
    let at = chrono::Utc::now() - chrono::TimeDelta::days(1);
    let mut completed = false;
    for allowed in 0..10 {
        if completed {
            break;
        }
        let newcomer = phone(&format!("+1415555080{allowed}"));
        let first = interaction(Channel::Sms, newcomer.clone(), &format!("SMnew{allowed}"), at);
        completed = match stopping_store(&stack, allowed).record(&first).await {
            Ok(_) => true,
            Err(throughline_store::StoreError::Dynamo { .. }) => false,
            Err(other) => panic!("stopped after {allowed} writes: {other:?}"),
        };
        let finished = store.record(&first).await.unwrap();
        assert_eq!(
            matches!(finished, Recorded::Duplicate { .. }),
            completed,
            "{finished:?}"
        );
        assert!(matches!(
            store.record(&first).await.unwrap(),
            Recorded::Duplicate { .. }
        ));
        let profile = store.find_customer(&newcomer).await.unwrap();
        assert_eq!(profile.counts.get("sms"), Some(&1), "after {allowed} writes");
        assert_eq!(
            profile
                .identifiers
                .iter()
                .map(|i| i.identifier.as_str())
                .collect::<Vec<_>>(),
            [newcomer.key()],
            "after {allowed} writes"
        );
        let timeline = timeline_of(&store, &newcomer).await;
        assert_eq!(timeline.len(), 1);
        assert_eq!(
            profile.open_conversation.unwrap().id,
            timeline[0].conversation_id.clone().unwrap()
        );
    }
    assert!(completed, "a writer let through every write records it");
}

/// A conversation that retired when the next one opened is kept on that one's marker, not
/// rewritten into the history item; a late delivery from its time still finds it (through the
/// chain of markers back from the open conversation), and so does an export.
#[tokio::test(flavor = "multi_thread")]
async fn a_late_delivery_rejoins_a_conversation_retired_onto_a_marker() {
    let stack = start_stack().await;
    let store = stack.store();
    let ada = phone("+14155550777");
    let day = chrono::Utc::now() - chrono::TimeDelta::days(40);
    let message =
        |id: &str, hours: i64| interaction(Channel::Sms, ada.clone(), id, day + chrono::TimeDelta::hours(hours));
    let mut conversations = Vec::new();
    for (n, hours) in [0, 72, 144, 216].into_iter().enumerate() {
        match store.record(&message(&format!("SMchain{n}"), hours)).await.unwrap() {
            Recorded::New { conversation, .. } => conversations.push(conversation),
            other => panic!("{other:?}"),
        }
    }
    let distinct: std::collections::BTreeSet<_> = conversations.iter().collect();
    assert_eq!(distinct.len(), 4, "three days apart: four conversations");
    // Delivered now, sent an hour after the first: the first conversation's.
    let Recorded::New { conversation: late, .. } = store.record(&message("SMchain-late", 1)).await.unwrap() else {
        panic!("new");
    };
    assert_eq!(late, conversations[0]);
    let Recorded::New {
        conversation: second, ..
    } = store.record(&message("SMchain-late2", 75)).await.unwrap()
    else {
        panic!("new");
    };
    assert_eq!(second, conversations[1]);
    let customer = store.customer_for(&ada, true).await.unwrap().unwrap();
    let export = store.export(&customer, None).await.unwrap();
    let mut exported: Vec<_> = export.conversations.iter().map(|c| c.id.clone()).collect();
    exported.sort();
    let mut expected = conversations.clone();
    expected.sort();
    assert_eq!(exported, expected);
    assert_eq!(export.profile.open_conversation.unwrap().id, conversations[3]);
}

/// A writer lane's memory of its customer (`Lane`) is only a guess: when another writer
/// recorded an interaction of that customer in between, or merged it, the lane's next commit
/// fails its condition and is made again from what is stored; nothing is counted twice or lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_lane_that_remembers_a_root_since_changed_records_against_the_root_as_it_is() {
    let stack = start_stack().await;
    let store = stack.store();
    let (ada, grace) = (phone("+14155550781"), phone("+14155550782"));
    let at = chrono::Utc::now() - chrono::TimeDelta::days(2);
    let message = |handle: &throughline_model::Handle, id: &str, minutes: i64| {
        interaction(
            Channel::Sms,
            handle.clone(),
            id,
            at + chrono::TimeDelta::minutes(minutes),
        )
    };
    let mut lane = throughline_store::Lane::default();
    store.record_in(&message(&ada, "SMlane1", 0), &mut lane).await.unwrap();
    // Another writer, meanwhile: one more of Ada's, then Ada merged into Grace.
    store.record(&message(&ada, "SMlane2", 1)).await.unwrap();
    let grace_id = match store.record(&message(&grace, "SMlane3", 2)).await.unwrap() {
        Recorded::New { customer, .. } => customer,
        other => panic!("{other:?}"),
    };
    let ada_id = store.customer_for(&ada, true).await.unwrap().unwrap();
    store
        .merge(&throughline_store::MergeRequest {
            source: ada_id.clone(),
            target: grace_id.clone(),
            actor: throughline_store::Actor {
                who: "test".into(),
                principal_id: None,
                reason: None,
            },
        })
        .await
        .unwrap();
    // The lane remembers Ada as her own root, at a version long gone.
    store.record_in(&message(&ada, "SMlane4", 3), &mut lane).await.unwrap();
    store.record_in(&message(&ada, "SMlane5", 4), &mut lane).await.unwrap();
    let profile = store.customer_profile(&grace_id).await.unwrap();
    assert_eq!(profile.members, [ada_id]);
    assert_eq!(profile.counts.get("sms"), Some(&5), "each once, in the group");
    assert_eq!(timeline_of(&store, &ada).await.len(), 5, "the group's timeline");
}
