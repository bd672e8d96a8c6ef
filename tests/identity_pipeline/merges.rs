//! Merges and unmerges are exact, and cursors stay stable across them.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn merge_then_unmerge_restores_both_timelines_exactly_and_chains_resolve_to_one_survivor() {
    let stack = start_stack().await;
    let store = stack.store();
    let timeline_api = timeline_api(&stack);
    let a = record(&store, &interaction(Channel::Sms, phone("+14155550101"), "SMa1", at(0))).await;
    record(
        &store,
        &interaction(Channel::Sms, phone("+14155550101"), "SMa2", at(100)),
    )
    .await;
    let b = record(
        &store,
        &interaction(
            Channel::Messenger,
            platform_user(Platform::Messenger, Some("1234"), "psid-b"),
            "mid.b1",
            at(50),
        ),
    )
    .await;
    let c = record(
        &store,
        &interaction(Channel::X, platform_user(Platform::X, None, "2244"), "x-c1", at(75)),
    )
    .await;
    let (before_a, before_b, before_c) = (
        own_timeline(&store, &a).await,
        own_timeline(&store, &b).await,
        own_timeline(&store, &c).await,
    );

    // a into b, then b into c: a chain; every id resolves to c, the survivor.
    let (status, first) = ApiClient(&timeline_api).merge(&b, &a, Some("same person")).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = ApiClient(&timeline_api).merge(&c, &a, None).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second["source"],
        b.to_string(),
        "merging a member merges its whole group"
    );
    let (status, already) = ApiClient(&timeline_api).merge(&a, &c, None).await;
    assert_eq!(
        (status, already["error"]["code"].as_str()),
        (409, Some("already_merged"))
    );
    for member in [&a, &b, &c] {
        let (_, profile) = ApiClient(&timeline_api).profile(&member).await;
        assert_eq!(profile["customer_id"], c.to_string());
    }
    let merged = own_timeline(&store, &a).await;
    assert_eq!(merged.len(), 4);
    assert!(
        merged
            .windows(2)
            .all(|w| w[0].interaction.occurred_at >= w[1].interaction.occurred_at)
    );
    let (_, filtered) = ApiClient(&timeline_api).timeline(&c, "channel=sms").await;
    assert_eq!(filtered["entries"].as_array().unwrap().len(), 2);

    // Undo the first merge while the second stands: a alone again, b still with c.
    let (status, undone) = ApiClient(&timeline_api)
        .unmerge(first["merge_id"].as_str().unwrap(), Some("different people"))
        .await;
    assert_eq!((status, undone["action"].as_str()), (200, Some("unmerge")));
    assert_eq!(
        own_timeline(&store, &a).await,
        before_a,
        "a's timeline exactly as before"
    );
    assert_eq!(own_timeline(&store, &c).await.len(), 2);
    let (status, twice) = ApiClient(&timeline_api)
        .unmerge(first["merge_id"].as_str().unwrap(), None)
        .await;
    assert_eq!((status, twice["error"]["code"].as_str()), (409, Some("not_merged")));
    ApiClient(&timeline_api)
        .unmerge(second["merge_id"].as_str().unwrap(), None)
        .await;
    assert_eq!(own_timeline(&store, &b).await, before_b);
    assert_eq!(own_timeline(&store, &c).await, before_c);
    // While merged, b's group continued a's conversations; unmerged, it gave them back: b's next
    // message continues b's own conversation, not a's (more recent) one.
    let later = record(
        &store,
        &interaction(
            Channel::Messenger,
            platform_user(Platform::Messenger, Some("1234"), "psid-b"),
            "mid.b2",
            at(110),
        ),
    )
    .await;
    assert_eq!(later, b);
    let b_now = own_timeline(&store, &b).await;
    assert_eq!(
        b_now[0].interaction.conversation_id,
        before_b[0].interaction.conversation_id
    );
    assert_ne!(
        b_now[0].interaction.conversation_id,
        before_a[0].interaction.conversation_id
    );

    // The ledger keeps every step: two merges, two unmerges, with who and why.
    let (_, ledger) = ApiClient(&timeline_api).ledger(&b).await;
    let actions: Vec<&str> = ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unmerge", "unmerge", "merge", "merge"]);
    assert_eq!(ledger["entries"][3]["reason"], "same person");
    assert_eq!(ledger["entries"][3]["identifiers"], json!(["phone:+14155550101"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn cursors_stay_stable_while_interactions_arrive_and_across_merge_and_unmerge() {
    let stack = start_stack().await;
    let store = stack.store();
    let timeline_api = timeline_api(&stack);
    let sms_number = phone("+14155550111");
    let messenger = platform_user(Platform::Messenger, Some("1234"), "psid-stable");
    let mut expected = Vec::new();
    for i in 0..30 {
        let (channel, handle) = if i % 3 == 0 {
            (Channel::Messenger, messenger.clone())
        } else {
            (Channel::Sms, sms_number.clone())
        };
        let item = interaction(channel, handle, &format!("m-{i:02}"), at(i * 7));
        expected.push(item.id.to_string());
        record(&store, &item).await;
    }
    let phone_owner = store.customer_for(&sms_number, true).await.unwrap().unwrap();
    let messenger_owner = store.customer_for(&messenger, true).await.unwrap().unwrap();
    let (_, merge) = ApiClient(&timeline_api)
        .merge(&phone_owner, &messenger_owner, None)
        .await;
    expected.reverse();

    // Page through 7 at a time; between pages new messages arrive (newer than everything).
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page_number in 0.. {
        let mut path = format!("/customers/{phone_owner}/timeline?limit=7");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = ApiClient(&timeline_api).raw("GET", &path, None).await;
        assert_eq!(status, 200);
        let entries = page["entries"].as_array().unwrap();
        assert!(entries.len() <= 7);
        seen.extend(entries.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        let late = interaction(
            Channel::Sms,
            sms_number.clone(),
            &format!("late-{page_number}"),
            at(10_000 + page_number),
        );
        record(&store, &late).await;
        if page_number == 2 {
            // An unmerge and a re-merge mid-way change which partitions are read, not the cursor.
            ApiClient(&timeline_api)
                .unmerge(merge["merge_id"].as_str().unwrap(), None)
                .await;
            ApiClient(&timeline_api)
                .merge(&phone_owner, &messenger_owner, None)
                .await;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen, expected,
        "every entry exactly once, newest first, none of the late ones"
    );

    // A cursor that is not one is a 400 with its code.
    let (status, error) = ApiClient(&timeline_api)
        .timeline(&phone_owner, "cursor=bm90LWEtY3Vyc29y")
        .await;
    assert_eq!((status, error["error"]["code"].as_str()), (400, Some("bad_cursor")));
    // Filters: direction, time range (inclusive), and a page size over the limit.
    let window = timeline_ids(
        &timeline_api,
        phone_owner.as_str(),
        "from=2026-11-20T09:07:00Z&to=2026-11-20T09:21:00Z&direction=inbound",
    )
    .await;
    assert_eq!(window, expected[expected.len() - 4..expected.len() - 1].to_vec());
    assert!(
        timeline_ids(&timeline_api, phone_owner.as_str(), "direction=outbound")
            .await
            .is_empty()
    );
    let (status, _) = ApiClient(&timeline_api).timeline(&phone_owner, "limit=101").await;
    assert_eq!(status, 400);
    let (status, error) = ApiClient(&timeline_api)
        .raw("GET", "/customers/cus_00000000000000000000000000", None)
        .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("customer_not_found"))
    );
}
