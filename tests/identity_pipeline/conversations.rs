//! Conversations span channels; agents split and join them; edits change only the text.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn conversations_span_channels_and_agents_split_and_join_them() {
    let stack = start_stack().await;
    let store = stack.store();
    let timeline_api = timeline_api(&stack);
    let ada = phone("+14155550122");
    let token_chat = verified_chat("user-77", "wm-77", at(60), std::slice::from_ref(&ada));
    let items = [
        interaction(Channel::Sms, ada.clone(), "SMv1", at(0)),
        interaction(Channel::Whatsapp, ada.clone(), "wamid.v2", at(30)),
        token_chat,
        // Two days later: a new conversation.
        interaction(Channel::Sms, ada.clone(), "SMv4", at(60 * 48)),
    ];
    let mut customer = None;
    for item in &items {
        customer = Some(record(&store, item).await);
    }
    let customer = customer.unwrap();
    let (_, page) = ApiClient(&timeline_api).timeline(&customer, "").await;
    let by_id = |id: &str| -> String {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .unwrap()["conversation_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = by_id(items[0].id.as_str());
    assert_eq!(by_id(items[1].id.as_str()), first);
    assert_eq!(
        by_id(items[2].id.as_str()),
        first,
        "chat continues the SMS/WhatsApp conversation"
    );
    let second = by_id(items[3].id.as_str());
    assert_ne!(second, first);
    let (_, profile) = ApiClient(&timeline_api).profile(&customer).await;
    assert_eq!(profile["open_conversation"]["id"], second);

    // Split the first conversation at the WhatsApp message, then join everything back.
    let (status, split) = ApiClient(&timeline_api).split(&customer, &first, &items[1].id).await;
    assert_eq!(status, 200, "{split}");
    let new = split["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(
        timeline_ids(&timeline_api, customer.as_str(), &format!("conversation={first}")).await,
        vec![items[0].id.to_string()]
    );
    assert_eq!(
        timeline_ids(&timeline_api, customer.as_str(), &format!("conversation={new}")).await,
        vec![items[2].id.to_string(), items[1].id.to_string()]
    );
    let (status, nothing) = ApiClient(&timeline_api).split(&customer, &first, &items[0].id).await;
    assert_eq!(
        (status, nothing["error"]["code"].as_str()),
        (409, Some("nothing_to_split"))
    );
    let (status, joined) = ApiClient(&timeline_api)
        .join(&customer, json!([first, new, second]))
        .await;
    assert_eq!((status, joined["action"].as_str()), (200, Some("conversation_join")));
    assert_eq!(
        timeline_ids(&timeline_api, customer.as_str(), &format!("conversation={first}"))
            .await
            .len(),
        4
    );
    let (status, bad) = ApiClient(&timeline_api)
        .raw(
            "POST",
            &format!("/customers/{customer}/conversations/join"),
            Some(json!({"conversation_ids": [first], "extra": 1})),
        )
        .await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_body")));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_changes_only_the_text_and_keeps_a_deletion_and_a_relabel() {
    let stack = start_stack().await;
    let store = stack.store();
    let timeline_api = timeline_api(&stack);
    let handle = platform_user(Platform::Telegram, None, "777");
    let first = interaction(Channel::Telegram, handle.clone(), "777:1", at(0));
    let second = interaction(Channel::Telegram, handle.clone(), "777:2", at(1));
    let customer = record(&store, &first).await;
    record(&store, &second).await;
    let conversation = own_timeline(&store, &customer).await[0]
        .interaction
        .conversation_id
        .clone()
        .unwrap();
    // An agent splits at the second message; the customer deletes it, then edits it.
    let (status, split) = ApiClient(&timeline_api)
        .split(&customer, &conversation, &second.id)
        .await;
    assert_eq!(status, 200, "{split}");
    let deleted = throughline_model::InteractionUpdate::deleted(second.id.clone(), at(2));
    store.apply(&deleted).await.unwrap();
    let edited = throughline_model::InteractionUpdate::edited(second.id.clone(), Some("edited text".into()), at(3));
    store.apply(&edited).await.unwrap();
    let entry = own_timeline(&store, &customer).await.remove(0).interaction;
    assert_eq!(entry.id, second.id);
    assert_eq!(entry.text.as_deref(), Some("edited text"));
    assert_eq!(entry.original_text.as_deref(), Some("message 777:2"));
    assert_eq!(entry.deleted_at, Some(at(2)), "the deletion stays");
    assert_eq!(
        entry.conversation_id.map(|c| c.to_string()).as_deref(),
        split["conversation_id"].as_str(),
        "the relabel stays"
    );
}
