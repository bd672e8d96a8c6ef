//! One customer across channels, against the moto emulator: verified evidence links, claims
//! suggest, merges and unmerges are exact, conversations span channels, the timeline API pages
//! stably, and data-subject requests export everything and erase for good. Every API answer is
//! checked against `functions/timeline-api/openapi.yaml` (see `support::api`).

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use throughline_e2e::*;
use throughline_model::{Channel, Evidence, EvidenceSource, Identity, Interaction, Platform};
use throughline_store::{CustomerId, Recorded, TimelineStore};

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn chat_user(id: &str) -> throughline_model::Handle {
    platform_user(Platform::WebChatUser, Some(stack::TEST_CHAT_SITE), id)
}

async fn record(store: &TimelineStore, interaction: &Interaction) -> CustomerId {
    match store.record(interaction).await.unwrap() {
        Recorded::New { customer, .. } | Recorded::Duplicate { customer } => customer,
        Recorded::Erased => panic!("unexpectedly erased"),
        Recorded::Collision { .. } => panic!("unexpectedly a dedupe collision"),
    }
}

/// The ids of a customer's whole timeline through the API, newest first, following cursors.
async fn timeline_ids(api_: &throughline_timeline_api::TimelineApi, customer: &str, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("/customers/{customer}/timeline?{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = api(api_, "GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        ids.extend(
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
    panic!("timeline did not end");
}

fn identifiers(profile: &Value) -> BTreeSet<(String, String, bool)> {
    profile["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["identifier"].as_str().unwrap().to_owned(),
                i["evidence"].as_str().unwrap().to_owned(),
                i["owned"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn verified_evidence_links_channels_and_a_token_joins_two_known_customers() {
    let stack = start_stack().await;
    let store = stack.store();
    let timeline_api = timeline_api(&stack);
    let ada_phone = phone("+14155550100");
    let ada_email = email("ada@example.com");

    // SMS, then WhatsApp from the same number: the carrier-delivered number is one identifier.
    let sms = record(&store, &interaction(Channel::Sms, ada_phone.clone(), "SM1", at(0))).await;
    let whatsapp = record(
        &store,
        &interaction(Channel::Whatsapp, ada_phone.clone(), "wamid.1", at(5)),
    )
    .await;
    assert_eq!(sms, whatsapp);
    // Email with DKIM and DMARC passed: a verified address, but nothing yet says it is Ada's.
    let mail = record(
        &store,
        &interaction(Channel::Email, ada_email.clone(), "m1@mail.example", at(10)),
    )
    .await;
    assert_ne!(mail, sms);
    // A mail whose sender nobody checked is a claim: it names its own customer and proves nothing.
    let mut spoofed = interaction(Channel::Email, email("grace@example.com"), "m2@mail.example", at(11));
    spoofed.attributes.remove("sender_verified");
    let grace = record(&store, &spoofed).await;

    // Ada logs in on the website: the company's token vouches for her phone and email. Both
    // owners hold them on verified evidence: they are one person, merged by the evidence.
    let chat = record(
        &store,
        &verified_chat("user-1042", "wm-1", at(20), &[ada_phone.clone(), ada_email.clone()]),
    )
    .await;
    assert_eq!(chat, sms, "the chat user joins the first vouched customer");
    let (status, profile) = api(
        &timeline_api,
        "GET",
        "/customers?identifier=email%3Aada%40example.com",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let ada = profile["customer_id"].as_str().unwrap().to_owned();
    assert_eq!(ada, sms.to_string(), "the token's customer survives");
    assert_eq!(profile["members"], json!([mail.to_string()]));
    assert_eq!(
        identifiers(&profile),
        BTreeSet::from([
            ("phone:+14155550100".into(), "verified".into(), true),
            ("email:ada@example.com".into(), "verified".into(), true),
            (
                format!("web_chat_user:{}:user-1042", stack::TEST_CHAT_SITE),
                "verified".into(),
                true
            ),
        ])
    );
    assert_eq!(
        profile["counts"],
        json!({"chat": 1, "email": 1, "sms": 1, "whatsapp": 1})
    );
    assert_eq!(profile["interaction_count"], 4);
    assert_eq!(profile["first_seen_at"], "2026-11-20T09:00:00Z");
    assert_eq!(profile["last_seen_at"], "2026-11-20T09:20:00Z");
    let (_, ledger) = api(&timeline_api, "GET", &format!("/customers/{ada}/ledger"), None).await;
    let merge = &ledger["entries"][0];
    assert_eq!(merge["action"], "merge");
    assert_eq!(merge["actor"], throughline_store::VERIFIED_EVIDENCE_ACTOR);
    assert_eq!(merge["identifiers"], json!(["email:ada@example.com"]));

    // Grace's unchecked address stays her own and is listed as a claim.
    let (_, grace_profile) = api(&timeline_api, "GET", &format!("/customers/{grace}"), None).await;
    assert_eq!(
        identifiers(&grace_profile),
        BTreeSet::from([("email:grace@example.com".into(), "claimed".into(), true)])
    );
    // Once a checked mail comes from that address, the evidence is upgraded.
    record(
        &store,
        &interaction(Channel::Email, email("grace@example.com"), "m3@mail.example", at(30)),
    )
    .await;
    let (_, grace_profile) = api(&timeline_api, "GET", &format!("/customers/{grace}"), None).await;
    assert_eq!(grace_profile["identifiers"][0]["evidence"], "verified");

    // The same person's SMS → email → chat within 24 h is one conversation.
    let (_, page) = api(&timeline_api, "GET", &format!("/customers/{ada}/timeline"), None).await;
    let conversations: BTreeSet<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["conversation_id"].as_str().unwrap())
        .collect();
    assert_eq!(page["entries"].as_array().unwrap().len(), 4);
    assert_eq!(
        conversations.len(),
        2,
        "the email came before the link: its own conversation until then"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_never_links_it_suggests_and_an_agent_decides() {
    let stack = start_stack().await;
    let store = stack.store();
    let timeline_api = timeline_api(&stack);
    let ada = record(
        &store,
        &verified_chat("user-1042", "wm-1", at(0), &[email("ada@example.com")]),
    )
    .await;

    // Someone types Ada's address into a pre-chat form: their own customer, and a suggestion.
    let mut prechat = interaction(Channel::Chat, chat_user("v-40f7b1"), "wm-2", at(5));
    prechat.identities = vec![Identity {
        handle: email("ada@example.com"),
        evidence: Evidence::Claimed,
        source: EvidenceSource::PrechatForm,
    }];
    let claimant = record(&store, &prechat).await;
    assert_ne!(claimant, ada);
    // The redelivery makes no second suggestion.
    record(&store, &prechat).await;
    let (_, list) = api(&timeline_api, "GET", &format!("/customers/{ada}/suggestions"), None).await;
    let suggestions = list["suggestions"].as_array().unwrap();
    assert_eq!(suggestions.len(), 1);
    let suggestion = &suggestions[0];
    assert_eq!(suggestion["claimant"], claimant.to_string());
    assert_eq!(suggestion["owner"], ada.to_string());
    assert_eq!(suggestion["identifier"], "email:ada@example.com");
    assert_eq!(suggestion["status"], "open");
    let (_, claimant_profile) = api(&timeline_api, "GET", &format!("/customers/{claimant}"), None).await;
    assert!(identifiers(&claimant_profile).contains(&("email:ada@example.com".into(), "claimed".into(), false)));
    let (_, ada_page) = api(&timeline_api, "GET", &format!("/customers/{ada}/timeline"), None).await;
    assert_eq!(
        ada_page["entries"].as_array().unwrap().len(),
        1,
        "nothing of the claimant's on Ada's timeline"
    );

    // An agent accepts it (from the claimant's side, as the suggestion is on both): merged.
    let id = suggestion["suggestion_id"].as_str().unwrap();
    let (status, entry) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{claimant}/suggestions/{id}/accept"),
        Some(json!({"reason": "confirmed in the chat"})),
    )
    .await;
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["action"], "merge");
    assert_eq!(entry["actor"], AGENT_ARN);
    assert_eq!(entry["reason"], "confirmed in the chat");
    assert_eq!(entry["suggestion_id"], id);
    let (_, ada_page) = api(&timeline_api, "GET", &format!("/customers/{claimant}/timeline"), None).await;
    assert_eq!(ada_page["customer_id"], ada.to_string(), "the claimant resolves to Ada");
    assert_eq!(ada_page["entries"].as_array().unwrap().len(), 2);
    let (status, again) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{ada}/suggestions/{id}/reject"),
        None,
    )
    .await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("suggestion_decided"))
    );

    // Another claim, rejected: no merge, the decision kept.
    let mut other = interaction(Channel::Chat, chat_user("v-77"), "wm-3", at(9));
    other.identities = vec![Identity {
        handle: email("ada@example.com"),
        evidence: Evidence::Claimed,
        source: EvidenceSource::PrechatForm,
    }];
    let stranger = record(&store, &other).await;
    let (_, list) = api(
        &timeline_api,
        "GET",
        &format!("/customers/{stranger}/suggestions"),
        None,
    )
    .await;
    let id = list["suggestions"][0]["suggestion_id"].as_str().unwrap().to_owned();
    let (status, rejected) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{stranger}/suggestions/{id}/reject"),
        None,
    )
    .await;
    assert_eq!(
        (status, rejected["action"].as_str()),
        (200, Some("suggestion_rejected"))
    );
    let (_, stranger_profile) = api(&timeline_api, "GET", &format!("/customers/{stranger}"), None).await;
    assert_eq!(stranger_profile["customer_id"], stranger.to_string());
    assert_eq!(stranger_profile["members"], json!([]));
}

/// Both customers' own timelines, entry by entry.
async fn own_timeline(store: &TimelineStore, customer: &CustomerId) -> Vec<throughline_store::TimelineEntry> {
    store
        .timeline(customer, 100, None, &Default::default())
        .await
        .unwrap()
        .entries
}

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
    let (status, first) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{b}/merge"),
        Some(json!({"source_customer_id": a, "reason": "same person"})),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{c}/merge"),
        Some(json!({"source_customer_id": a})),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second["source"],
        b.to_string(),
        "merging a member merges its whole group"
    );
    let (status, already) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{a}/merge"),
        Some(json!({"source_customer_id": c})),
    )
    .await;
    assert_eq!(
        (status, already["error"]["code"].as_str()),
        (409, Some("already_merged"))
    );
    for member in [&a, &b, &c] {
        let (_, profile) = api(&timeline_api, "GET", &format!("/customers/{member}"), None).await;
        assert_eq!(profile["customer_id"], c.to_string());
    }
    let merged = own_timeline(&store, &a).await;
    assert_eq!(merged.len(), 4);
    assert!(
        merged
            .windows(2)
            .all(|w| w[0].interaction.occurred_at >= w[1].interaction.occurred_at)
    );
    let (_, filtered) = api(
        &timeline_api,
        "GET",
        &format!("/customers/{c}/timeline?channel=sms"),
        None,
    )
    .await;
    assert_eq!(filtered["entries"].as_array().unwrap().len(), 2);

    // Undo the first merge while the second stands: a alone again, b still with c.
    let (status, undone) = api(
        &timeline_api,
        "POST",
        &format!("/merges/{}/unmerge", first["merge_id"].as_str().unwrap()),
        Some(json!({"reason": "different people"})),
    )
    .await;
    assert_eq!((status, undone["action"].as_str()), (200, Some("unmerge")));
    assert_eq!(
        own_timeline(&store, &a).await,
        before_a,
        "a's timeline exactly as before"
    );
    assert_eq!(own_timeline(&store, &c).await.len(), 2);
    let (status, twice) = api(
        &timeline_api,
        "POST",
        &format!("/merges/{}/unmerge", first["merge_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!((status, twice["error"]["code"].as_str()), (409, Some("not_merged")));
    api(
        &timeline_api,
        "POST",
        &format!("/merges/{}/unmerge", second["merge_id"].as_str().unwrap()),
        None,
    )
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
    let (_, ledger) = api(&timeline_api, "GET", &format!("/customers/{b}/ledger"), None).await;
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
async fn concurrent_first_contacts_on_two_channels_for_one_verified_person_make_one_customer() {
    let stack = start_stack().await;
    let store = stack.store();
    for round in 0..6 {
        let number = format!("+1415555{:04}", 2000 + round);
        let user = format!("user-{round}");
        // The first SMS from a new number and the first logged-in chat vouching for it, at once.
        let sms = interaction(Channel::Sms, phone(&number), &format!("SMc{round}"), at(round));
        let chat = verified_chat(&user, &format!("wmc{round}"), at(round), &[phone(&number)]);
        let (s1, s2) = (store.clone(), store.clone());
        let (by_sms, by_chat) = tokio::join!(
            tokio::spawn(async move { record(&s1, &sms).await }),
            tokio::spawn(async move { record(&s2, &chat).await })
        );
        let (by_sms, by_chat) = (by_sms.unwrap(), by_chat.unwrap());
        assert_eq!(
            store.resolve_root(&by_sms).await.unwrap(),
            store.resolve_root(&by_chat).await.unwrap(),
            "round {round}: one person, one customer"
        );
        let profile = store.customer_profile(&by_chat).await.unwrap();
        assert_eq!(profile.interaction_count, 2, "round {round}");
        assert_eq!(profile.identifiers.len(), 2, "round {round}: {:?}", profile.identifiers);
    }
    assert_eq!(store.all_customers().await.unwrap().len(), 6);
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
    let (_, merge) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{phone_owner}/merge"),
        Some(json!({"source_customer_id": messenger_owner})),
    )
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
        let (status, page) = api(&timeline_api, "GET", &path, None).await;
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
            api(
                &timeline_api,
                "POST",
                &format!("/merges/{}/unmerge", merge["merge_id"].as_str().unwrap()),
                None,
            )
            .await;
            api(
                &timeline_api,
                "POST",
                &format!("/customers/{phone_owner}/merge"),
                Some(json!({"source_customer_id": messenger_owner})),
            )
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
    let (status, error) = api(
        &timeline_api,
        "GET",
        &format!("/customers/{phone_owner}/timeline?cursor=bm90LWEtY3Vyc29y"),
        None,
    )
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
    let (status, _) = api(
        &timeline_api,
        "GET",
        &format!("/customers/{phone_owner}/timeline?limit=101"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, error) = api(&timeline_api, "GET", "/customers/cus_00000000000000000000000000", None).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("customer_not_found"))
    );
}

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
    let (_, page) = api(&timeline_api, "GET", &format!("/customers/{customer}/timeline"), None).await;
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
    let (_, profile) = api(&timeline_api, "GET", &format!("/customers/{customer}"), None).await;
    assert_eq!(profile["open_conversation"]["id"], second);

    // Split the first conversation at the WhatsApp message, then join everything back.
    let (status, split) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{customer}/conversations/{first}/split"),
        Some(json!({"at_interaction_id": items[1].id})),
    )
    .await;
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
    let (status, nothing) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{customer}/conversations/{first}/split"),
        Some(json!({"at_interaction_id": items[0].id})),
    )
    .await;
    assert_eq!(
        (status, nothing["error"]["code"].as_str()),
        (409, Some("nothing_to_split"))
    );
    let (status, joined) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{customer}/conversations/join"),
        Some(json!({"conversation_ids": [first, new, second]})),
    )
    .await;
    assert_eq!((status, joined["action"].as_str()), (200, Some("conversation_join")));
    assert_eq!(
        timeline_ids(&timeline_api, customer.as_str(), &format!("conversation={first}"))
            .await
            .len(),
        4
    );
    let (status, bad) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{customer}/conversations/join"),
        Some(json!({"conversation_ids": [first], "extra": 1})),
    )
    .await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_body")));
}

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
    api(
        &timeline_api,
        "POST",
        &format!("/customers/{customer}/merge"),
        Some(json!({"source_customer_id": other, "reason": "ticket 4711"})),
    )
    .await;

    let (status, export) = api(&timeline_api, "GET", &format!("/customers/{customer}/export"), None).await;
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
        .map(|c| c["id"].as_str().unwrap())
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
    let (status, erasure) = api(
        &timeline_api,
        "DELETE",
        &format!("/customers/{customer}"),
        Some(json!({"reason": "request DSR-1"})),
    )
    .await;
    assert_eq!(status, 200, "{erasure}");
    assert_eq!(
        (erasure["interactions"].as_u64(), erasure["identifiers"].as_u64()),
        (Some(3), Some(4))
    );
    for path in [format!("/customers/{customer}"), format!("/customers/{other}/timeline")] {
        let (status, error) = api(&timeline_api, "GET", &path, None).await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (404, Some("customer_erased"))
        );
    }
    let (status, _) = api(
        &timeline_api,
        "GET",
        "/customers?identifier=phone%3A%2B14155550133",
        None,
    )
    .await;
    assert_eq!(status, 404, "the identifier no longer leads anywhere");
    let (_, claimant_suggestions) = api(
        &timeline_api,
        "GET",
        &format!("/customers/{claimant}/suggestions"),
        None,
    )
    .await;
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
        .publish(&[sms.clone().into(), chat.clone().into()])
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
    let (status, again) = api(
        &timeline_api,
        "DELETE",
        &format!("/customers/{customer}"),
        Some(json!({"reason": "request DSR-1"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK.as_u16(), "{again}");
    assert_eq!(
        (again["interactions"].as_u64(), again["identifiers"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn the_openapi_document_describes_exactly_the_served_routes() {
    let documented = openapi::Spec::load().operations();
    let mut served: Vec<(String, String)> = throughline_timeline_api::ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
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
    let (status, split) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{customer}/conversations/{conversation}/split"),
        Some(json!({"at_interaction_id": second.id})),
    )
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

#[tokio::test(flavor = "multi_thread")]
async fn the_api_refuses_unsigned_calls_overlong_reasons_and_erasure_without_a_reason() {
    let stack = start_stack().await;
    let store = stack.store();
    let timeline_api = timeline_api(&stack);
    let customer = record(&store, &interaction(Channel::Sms, phone("+14155550177"), "SMr1", at(0))).await;
    let other = record(&store, &interaction(Channel::Sms, phone("+14155550178"), "SMr2", at(1))).await;

    // Without an IAM caller in the context: 401, nothing served.
    let mut event = api_event("GET", &format!("/customers/{customer}"), None);
    event["requestContext"].as_object_mut().unwrap().remove("authorizer");
    let response = throughline_timeline_api::handle(
        lambda_http::request::from_str(&event.to_string()).unwrap(),
        &timeline_api,
    )
    .await;
    assert_eq!(response.status(), 401);
    let error: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(error["error"]["code"], "unauthenticated");

    // A reason over 1 KiB is the caller's mistake (400), not the store's (503); nothing merged.
    let (status, error) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{customer}/merge"),
        Some(json!({"source_customer_id": other, "reason": "x".repeat(1025)})),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("invalid_body")),
        "{error}"
    );
    let (_, profile) = api(&timeline_api, "GET", &format!("/customers/{other}"), None).await;
    assert_eq!(profile["customer_id"], other.to_string());

    // Erasure needs a reason, and the ledger names the caller's principal id.
    let (status, error) = api(&timeline_api, "DELETE", &format!("/customers/{customer}"), None).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("invalid_body")),
        "{error}"
    );
    let (status, merge) = api(
        &timeline_api,
        "POST",
        &format!("/customers/{customer}/merge"),
        Some(json!({"source_customer_id": other, "reason": "x".repeat(1024)})),
    )
    .await;
    assert_eq!(status, 200, "{merge}");
    assert_eq!(merge["actor"], AGENT_ARN);
    assert_eq!(merge["actor_principal_id"], "AIDAEXAMPLE");
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
    let (status, first) = api(
        &timeline_api,
        "DELETE",
        &format!("/customers/{customer}"),
        Some(json!({"reason": "request DSR-5000"})),
    )
    .await;
    assert_eq!((status, first["complete"].as_bool()), (202, Some(false)), "{first}");
    let (_, state) = api(&timeline_api, "GET", &format!("/customers/{customer}/erasure"), None).await;
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
    let (_, state) = api(&timeline_api, "GET", &format!("/customers/{customer}/erasure"), None).await;
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
    let (status, _) = api(&timeline_api, "GET", &format!("/customers/{customer}"), None).await;
    assert_eq!(status, 404);
}
