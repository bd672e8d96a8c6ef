//! Data-subject requests: export holds everything, erasure is for good (and resumable).

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn export_holds_everything_and_erasure_survives_redelivery() {
    let stack = start_stack().await;
    let store = stack.store();
    let timeline_api = timeline_api(&stack);
    let sms = interaction(Channel::Sms, phone("+14155550133"), "SMe1", at(0));
    let chat = verified_chat(
        "user-133",
        "wm-e2",
        at(3),
        &[phone("+14155550133"), email("erin@example.com")],
    );
    let customer = record(&store, &sms).await;
    record(&store, &chat).await;
    let mut claim = interaction(Channel::Chat, chat_user("v-e"), "wm-e3", at(4));
    claim.identities = vec![Identity {
        handle: email("erin@example.com"),
        evidence: Evidence::Claimed,
        source: EvidenceSource::PrechatForm,
    }];
    let claimant = record(&store, &claim).await;
    let other = record(
        &store,
        &interaction(Channel::X, platform_user(Platform::X, None, "133"), "x-e4", at(5)),
    )
    .await;
    ApiClient(&timeline_api)
        .merge(&customer, &other, Some("ticket 4711"))
        .await;

    let (status, export) = ApiClient(&timeline_api).export(&customer, None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = export["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "newest first, every member's: {ids:?}");
    assert_eq!(ids[2], sms.id.as_str());
    assert!(export.get("next_cursor").is_none(), "one page holds them all");
    assert_eq!(export["profile"]["identifiers"].as_array().unwrap().len(), 4);
    assert_eq!(export["suggestions"].as_array().unwrap().len(), 1);
    assert_eq!(export["ledger"].as_array().unwrap().len(), 1);
    // The X customer's conversation came with the merge: two conversations, each entry in one.
    let conversations: BTreeSet<&str> = export["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversation_id"].as_str().unwrap())
        .collect();
    let used: BTreeSet<&str> = export["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["conversation_id"].as_str().unwrap())
        .collect();
    assert_eq!((conversations.len(), &conversations), (2, &used));
    assert_eq!(export["interactions"][1]["text"], "message wm-e2");

    // Erase: everything of the group goes; the claimant keeps only their own message.
    let (status, erasure) = ApiClient(&timeline_api).erase(&customer, "request DSR-1").await;
    assert_eq!(status, 200, "{erasure}");
    assert_eq!(
        (erasure["interactions"].as_u64(), erasure["identifiers"].as_u64()),
        (Some(3), Some(4))
    );
    for path in [format!("/customers/{customer}"), format!("/customers/{other}/timeline")] {
        let (status, error) = ApiClient(&timeline_api).raw("GET", &path, None).await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (404, Some("customer_erased"))
        );
    }
    let (status, _) = ApiClient(&timeline_api).find("phone:+14155550133").await;
    assert_eq!(status, 404, "the identifier no longer leads anywhere");
    let (_, claimant_suggestions) = ApiClient(&timeline_api).suggestions(&claimant).await;
    assert_eq!(claimant_suggestions["suggestions"], json!([]));

    // The ledger keeps the facts, without identifiers or reasons.
    let redacted = store.ledger_entries_of(&other).await.unwrap();
    assert!(
        redacted
            .iter()
            .any(|e| e.action == throughline_store::LedgerAction::Merge
                && e.redacted
                && e.identifiers.is_empty()
                && e.reason.is_none())
    );
    assert!(
        redacted
            .iter()
            .any(|e| e.action == throughline_store::LedgerAction::Erase)
    );

    // A provider retry and an SQS redelivery of an erased interaction stay erased.
    assert_eq!(store.record(&sms).await.unwrap(), Recorded::Erased);
    let queue = stack.interactions_queue().url.clone();
    throughline_queue::InteractionPublisher::new(stack.sqs(), &queue)
        .publish::<throughline_model::QueueMessage>(&[sms.clone().into(), chat.clone().into()])
        .await
        .unwrap();
    drain(&stack.writer_mapping(Some(1)), &store).await;
    assert_eq!(
        depth(&stack, &stack.dead_letter_queue().url).await,
        0,
        "dropped, not failed"
    );
    assert_eq!(
        store.customer_for(&phone("+14155550133"), true).await.unwrap(),
        None,
        "not resurrected"
    );
    assert_eq!(store.all_customers().await.unwrap(), vec![claimant]);
    // An edit arriving late for an erased message changes nothing either.
    let edit = throughline_model::InteractionUpdate::edited(chat.id.clone(), Some("new".into()), at(9));
    assert_eq!(store.apply(&edit).await.unwrap(), throughline_store::Applied::Erased);
    // A message sent before the erasure but still in flight (never recorded) is dropped too;
    // one sent after it is a new contact: a new customer, with nothing of the old one.
    let in_flight = interaction(Channel::Sms, phone("+14155550133"), "SMe9", at(6));
    assert_eq!(store.record(&in_flight).await.unwrap(), Recorded::Erased);
    let fresh = interaction(
        Channel::Sms,
        phone("+14155550133"),
        "SMe10",
        Utc::now() + TimeDelta::seconds(1),
    );
    let newcomer = record(&store, &fresh).await;
    assert_ne!(newcomer, customer);
    assert_eq!(own_timeline(&store, &newcomer).await.len(), 1);
    // Erasing again finishes an interrupted erasure; here there is nothing left.
    let (status, again) = ApiClient(&timeline_api).erase(&customer, "request DSR-1").await;
    assert_eq!(status, StatusCode::OK.as_u16(), "{again}");
    assert_eq!(
        (again["interactions"].as_u64(), again["identifiers"].as_u64()),
        (Some(0), Some(0))
    );
}

/// A customer with 5,000 interactions: the request erases what fits its budget and answers
/// 202; the writer's erasure steps finish the rest, page by page, and nothing of the customer
/// remains: no entry, no identifier, no route, every marker erased.
#[tokio::test(flavor = "multi_thread")]
async fn a_customer_with_5000_entries_is_erased_over_several_steps() {
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    let stack = start_stack().await;
    let store = stack.store();
    let customer = record(
        &store,
        &interaction(Channel::Sms, phone("+14155550188"), "SMbig0", at(0)),
    )
    .await;
    record(
        &store,
        &verified_chat(
            "user-188",
            "wm-big1",
            at(1),
            &[phone("+14155550188"), email("big@example.com")],
        ),
    )
    .await;

    // Years of history, written the way the writer writes it (entry + marker), in bulk.
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.aws);
    let table = stack.table_name().to_owned();
    let mut items = Vec::new();
    for n in 0..5000 {
        let mut old = interaction(
            Channel::Sms,
            phone("+14155550188"),
            &format!("SMbig-{n}"),
            at(-60 * 24 * 365 * 3 + n),
        );
        old.conversation_id =
            Some(throughline_model::ConversationId::try_from(format!("cv_{}", "ab".repeat(16))).unwrap());
        if n % 250 == 0 {
            // Some are mails whose raw MIME is kept in S3.
            old.raw_object = Some(throughline_model::StoredObject {
                bucket: stack.mail_bucket().to_owned(),
                key: format!("raw/ses/big-{n}.eml"),
            });
        }
        let sk = format!("TL#{}#{}", old.occurred_at.timestamp_millis(), old.id);
        let mut entry: std::collections::HashMap<String, AttributeValue> = serde_dynamo::to_item(&old).unwrap();
        entry.insert("pk".into(), AttributeValue::S(format!("CUSTOMER#{customer}")));
        entry.insert("sk".into(), AttributeValue::S(sk.clone()));
        let marker = std::collections::HashMap::from([
            ("pk".to_owned(), AttributeValue::S(format!("INTERACTION#{}", old.id))),
            ("sk".to_owned(), AttributeValue::S("INTERACTION".into())),
            ("customer_id".to_owned(), AttributeValue::S(customer.to_string())),
            ("timeline_sk".to_owned(), AttributeValue::S(sk)),
            (
                "conversation_id".to_owned(),
                AttributeValue::S(format!("cv_{}", "ab".repeat(16))),
            ),
        ]);
        items.push(entry);
        items.push(marker);
    }
    for chunk in items.chunks(25) {
        let requests = chunk
            .iter()
            .map(|item| {
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item.clone())).build().unwrap())
                    .build()
            })
            .collect();
        let output = dynamodb
            .batch_write_item()
            .request_items(&table, requests)
            .send()
            .await
            .unwrap();
        assert!(output.unprocessed_items.is_none_or(|u| u.is_empty()));
    }

    // Their raw mail, in the versioned bucket: some rewritten (two versions), some deleted
    // once (a delete marker over the old version); and another customer's mail.
    let s3 = stack::s3_client(&stack.aws);
    let put = |key: String| {
        let s3 = s3.clone();
        let bucket = stack.mail_bucket().to_owned();
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(b"From: big@example.com\r\n\r\nhello".to_vec().into())
                .send()
                .await
                .unwrap();
        }
    };
    for n in (0..5000).step_by(250) {
        put(format!("raw/ses/big-{n}.eml")).await;
        match n % 750 {
            0 => put(format!("raw/ses/big-{n}.eml")).await,
            250 => {
                s3.delete_object()
                    .bucket(stack.mail_bucket())
                    .key(format!("raw/ses/big-{n}.eml"))
                    .send()
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
    put("raw/ses/big-0.eml.someone-else".into()).await;

    let mut timeline_api = timeline_api(&stack);
    timeline_api.erasure_budget = std::time::Duration::from_millis(300);
    let (status, first) = ApiClient(&timeline_api).erase(&customer, "request DSR-5000").await;
    assert_eq!((status, first["complete"].as_bool()), (202, Some(false)), "{first}");
    let (_, state) = ApiClient(&timeline_api).erasure_status(&customer).await;
    assert_eq!(state["complete"], false);

    // The writer's steps, each a bounded amount of work, until none is queued any more.
    let mapping = stack.writer_mapping(Some(30));
    let mut steps = 0;
    while mapping.backlog().await.unwrap() > 0 {
        poll_writer(&mapping, &store).await;
        steps += 1;
        assert!(steps < 200, "the erasure does not finish");
    }
    assert!(steps > 1, "the rest took several steps ({steps})");
    let (_, state) = ApiClient(&timeline_api).erasure_status(&customer).await;
    assert_eq!(state["complete"], true, "{state}");
    assert_eq!(depth(&stack, &stack.dead_letter_queue().url).await, 0);

    // Nothing of the customer is left but the tombstone; every marker remembers the erasure.
    let partition = dynamodb
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("CUSTOMER#{customer}")))
        .send()
        .await
        .unwrap();
    let left: Vec<String> = partition
        .items
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    assert_eq!(left, vec!["PROFILE".to_owned()]);
    let versions = s3
        .list_object_versions()
        .bucket(stack.mail_bucket())
        .prefix("raw/ses/big-")
        .send()
        .await
        .unwrap();
    let kept: Vec<&str> = versions
        .versions()
        .iter()
        .filter_map(|v| v.key())
        .chain(versions.delete_markers().iter().filter_map(|m| m.key()))
        .collect();
    assert_eq!(
        kept,
        ["raw/ses/big-0.eml.someone-else"],
        "only the other customer's mail is left"
    );
    let mut unerased = 0;
    let mut markers = 0;
    let mut start = None;
    loop {
        let page = dynamodb
            .scan()
            .table_name(&table)
            .filter_expression("begins_with(pk, :m)")
            .expression_attribute_values(":m", AttributeValue::S("INTERACTION#".into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items.unwrap_or_default() {
            markers += 1;
            if !item.contains_key("erased_at") {
                unerased += 1;
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    assert_eq!((markers, unerased), (5002, 0));
    for handle in [phone("+14155550188"), email("big@example.com")] {
        assert_eq!(
            store.customer_for(&handle, true).await.unwrap(),
            None,
            "{}",
            handle.key()
        );
    }
    let (status, _) = ApiClient(&timeline_api).profile(&customer).await;
    assert_eq!(status, 404);
}
