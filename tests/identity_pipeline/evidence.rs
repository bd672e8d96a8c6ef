//! Which customer an interaction belongs to: verified evidence links channels and joins
//! customers, a claim only suggests, concurrent first contacts make one customer.

use super::*;

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
    spoofed.sender_check = Some(throughline_model::SenderCheck::Unverified);
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
    let (status, profile) = ApiClient(&timeline_api).find("email:ada@example.com").await;
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
                format!("web_chat_user:{}:user-1042", secrets::TEST_CHAT_SITE),
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
    let (_, ledger) = ApiClient(&timeline_api).ledger(&ada).await;
    let merge = &ledger["entries"][0];
    assert_eq!(merge["action"], "merge");
    assert_eq!(merge["actor"], throughline_store::VERIFIED_EVIDENCE_ACTOR);
    assert_eq!(merge["identifiers"], json!(["email:ada@example.com"]));

    // Grace's unchecked address stays her own and is listed as a claim.
    let (_, grace_profile) = ApiClient(&timeline_api).profile(&grace).await;
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
    let (_, grace_profile) = ApiClient(&timeline_api).profile(&grace).await;
    assert_eq!(grace_profile["identifiers"][0]["evidence"], "verified");

    // The same person's SMS → email → chat within 24 h is one conversation.
    let (_, page) = ApiClient(&timeline_api).timeline(&ada, "").await;
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
    let (_, list) = ApiClient(&timeline_api).suggestions(&ada).await;
    let suggestions = list["suggestions"].as_array().unwrap();
    assert_eq!(suggestions.len(), 1);
    let suggestion = &suggestions[0];
    assert_eq!(suggestion["claimant"], claimant.to_string());
    assert_eq!(suggestion["owner"], ada.to_string());
    assert_eq!(suggestion["identifier"], "email:ada@example.com");
    assert_eq!(suggestion["status"], "open");
    let (_, claimant_profile) = ApiClient(&timeline_api).profile(&claimant).await;
    assert!(identifiers(&claimant_profile).contains(&("email:ada@example.com".into(), "claimed".into(), false)));
    let (_, ada_page) = ApiClient(&timeline_api).timeline(&ada, "").await;
    assert_eq!(
        ada_page["entries"].as_array().unwrap().len(),
        1,
        "nothing of the claimant's on Ada's timeline"
    );

    // An agent accepts it (from the claimant's side, as the suggestion is on both): merged.
    let id = suggestion["suggestion_id"].as_str().unwrap();
    let (status, entry) = ApiClient(&timeline_api)
        .accept(&claimant, &id, Some("confirmed in the chat"))
        .await;
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["action"], "merge");
    assert_eq!(entry["actor"], AGENT_ARN);
    assert_eq!(entry["reason"], "confirmed in the chat");
    assert_eq!(entry["suggestion_id"], id);
    let (_, ada_page) = ApiClient(&timeline_api).timeline(&claimant, "").await;
    assert_eq!(ada_page["customer_id"], ada.to_string(), "the claimant resolves to Ada");
    assert_eq!(ada_page["entries"].as_array().unwrap().len(), 2);
    let (status, again) = ApiClient(&timeline_api).reject(&ada, &id, None).await;
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
    let (_, list) = ApiClient(&timeline_api).suggestions(&stranger).await;
    let id = list["suggestions"][0]["suggestion_id"].as_str().unwrap().to_owned();
    let (status, rejected) = ApiClient(&timeline_api).reject(&stranger, &id, None).await;
    assert_eq!(
        (status, rejected["action"].as_str()),
        (200, Some("suggestion_rejected"))
    );
    let (_, stranger_profile) = ApiClient(&timeline_api).profile(&stranger).await;
    assert_eq!(stranger_profile["customer_id"], stranger.to_string());
    assert_eq!(stranger_profile["members"], json!([]));
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
