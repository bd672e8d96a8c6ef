//! Conversations as agents work them, end to end: customer messages through the queue and the
//! writer (with the taxonomy the template names, read from the emulator's SSM), replies through
//! the API and the sender, agents' changes through the API, and the queue of open work read
//! from its index.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use throughline_e2e::*;
use throughline_model::*;
use throughline_queue::InteractionPublisher;
use throughline_timeline_api::ReasonSettings;

use crate::outbound::{Outbound, customer_message, outbound, sample};

impl Outbound {
    /// The API with the stack's taxonomy (from SSM, as deployed), a reason required to resolve.
    pub(crate) async fn with_reasons(mut self) -> Self {
        self.stack.put_sample_secrets().await.unwrap();
        let name = &self.stack.resources.parameters["ReasonsTaxonomyParameterName"];
        let taxonomy = throughline_reasons::from_parameter(&self.stack.aws, name)
            .await
            .unwrap();
        self.api.reasons = ReasonSettings {
            taxonomy: Some(taxonomy),
            required: true,
        };
        self
    }

    /// A customer message through the interactions queue and the writer (suggesting reasons
    /// with the stack's taxonomy); its customer.
    pub(crate) async fn customer_says(&self, message: &Interaction) -> CustomerId {
        InteractionPublisher::new(self.stack.sqs(), &self.stack.interactions_queue().url)
            .publish(&[QueueMessage::Interaction(Box::new(message.clone()))])
            .await
            .unwrap();
        let mut writer = writer(&self.stack);
        let name = &self.stack.resources.parameters["ReasonsTaxonomyParameterName"];
        writer.taxonomy = Some(
            throughline_reasons::from_parameter(&self.stack.aws, name)
                .await
                .unwrap(),
        );
        let mapping = self.stack.writer_mapping(Some(1));
        while mapping.backlog().await.unwrap() > 0 {
            mapping
                .poll_once(1, |event| async {
                    Ok(throughline_timeline_writer::handle(event, &writer).await)
                })
                .await
                .unwrap();
        }
        let (status, found) = self.client().find(&message.customer.key()).await;
        assert_eq!(status, 200, "{found}");
        CustomerId::parse(found["customer_id"].as_str().unwrap()).unwrap()
    }

    /// The customer's one remembered conversation.
    pub(crate) async fn only_conversation(&self, customer: &CustomerId) -> Value {
        let (status, list) = self.client().conversations(customer).await;
        assert_eq!(status, 200, "{list}");
        let conversations = list["conversations"].as_array().unwrap();
        assert_eq!(conversations.len(), 1, "{list:#}");
        conversations[0].clone()
    }

    /// The conversation ids the queue lists for `query`, in its order.
    async fn queued(&self, query: &str) -> Vec<String> {
        let (status, page) = self.client().queue(query).await;
        assert_eq!(status, 200, "{page}");
        page["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["conversation_id"].as_str().unwrap().to_owned())
            .collect()
    }
}

pub(crate) fn says(text: &str, id: &str, at: DateTime<Utc>) -> Interaction {
    let mut message = customer_message(&sample("twilio", Channel::Sms), id, at);
    message.text = Some(text.into());
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conversation_is_answered_resolved_with_a_reason_reopened_by_the_customer_and_assigned() {
    let o = outbound().await.with_reasons().await;
    let start = Utc::now() - TimeDelta::minutes(30);
    let customer = o
        .customer_says(&says("Where is my order? It has not arrived.", "SMlc1", start))
        .await;
    let conversation = o.only_conversation(&customer).await;
    let id = conversation["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(conversation["status"], "open");
    assert_eq!(conversation["channel"], "sms");
    assert_eq!(conversation["replies"], 0);
    assert_eq!(
        conversation["reasons"],
        json!([{"code": "delivery/late", "name": "Late delivery", "confirmed": false, "rule": "delivery/late:0"}]),
        "suggested by the taxonomy's rule at ingestion"
    );
    let waiting = DateTime::parse_from_rfc3339(conversation["waiting_since"].as_str().unwrap()).unwrap();
    assert_eq!(waiting.timestamp_millis(), start.timestamp_millis());
    assert_eq!(o.queued("").await, std::slice::from_ref(&id));

    // The agent answers: waiting on the customer now, out of the queue.
    let (status, answer) = o
        .client()
        .send_message(&customer, "lc-reply-1", json!({ "text": "It ships today." }))
        .await;
    assert_eq!(status, 202, "{answer}");
    o.drain().await;
    let answered = o.only_conversation(&customer).await;
    assert_eq!(answered["status"], "pending", "{answered:#}");
    assert_eq!(answered["replies"], 1);
    assert!(answered["first_response_at"].is_string() && answered.get("waiting_since").is_none());
    let average = answered["average_reply_seconds"].as_i64().unwrap();
    assert!(
        (1_800..1_900).contains(&average),
        "she waited half an hour: {average} s"
    );
    assert!(o.queued("").await.is_empty());

    // A reason is required: the suggestion alone is not one.
    let (status, refused) = o.client().resolve(&id, &[]).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("reason_required"))
    );
    let (status, refused) = o.client().resolve(&id, &["billing/nothing"]).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("unknown_reason"))
    );
    // An alias confirms the code it was renamed to; the suggestion stays a suggestion.
    let (status, resolved) = o.client().resolve(&id, &["billing/refunds"]).await;
    assert_eq!(status, 200, "{resolved}");
    let now = &resolved["conversation"];
    assert_eq!(now["status"], "resolved");
    assert!(now["resolved_at"].is_string());
    let reasons: Vec<(&str, bool)> = now["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["code"].as_str().unwrap(), r["confirmed"].as_bool().unwrap()))
        .collect();
    assert_eq!(reasons, [("delivery/late", false), ("billing/refund", true)]);
    assert_eq!(resolved["ledger_entry"]["action"], "conversation_resolved");
    assert_eq!(resolved["ledger_entry"]["reason_codes"], json!(["billing/refund"]));
    assert_eq!(resolved["ledger_entry"]["actor"], AGENT_ARN);
    let (status, again) = o.client().resolve(&id, &["billing/refund"]).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("already_resolved"))
    );

    // The customer writes again within the window: the same conversation, reopened.
    o.customer_says(&says(
        "Thanks, but I still need the refund",
        "SMlc2",
        Utc::now() + TimeDelta::seconds(1),
    ))
    .await;
    let reopened = o.only_conversation(&customer).await;
    assert_eq!(reopened["conversation_id"], id.as_str());
    assert_eq!(reopened["status"], "open", "{reopened:#}");
    assert_eq!(reopened["reopens"], 1);
    assert_eq!(o.queued("").await, std::slice::from_ref(&id));
    let (status, refused) = o.client().reopen(&id).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("not_resolved")));

    // Assigned: the queue's filters.
    let (status, assigned) = o.client().assign(&id, Some("agent-ada")).await;
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(assigned["conversation"]["assignee"], "agent-ada");
    assert_eq!(o.queued("assignee=agent-ada").await, std::slice::from_ref(&id));
    assert!(o.queued("assignee=agent-bob").await.is_empty());
    assert_eq!(o.queued("channel=sms").await, std::slice::from_ref(&id));
    assert!(o.queued("channel=email").await.is_empty());
    let (status, unassigned) = o.client().assign(&id, None).await;
    assert_eq!(status, 200, "{unassigned}");
    assert!(unassigned["conversation"].get("assignee").is_none());

    // The agents' changes are ledger facts.
    let (_, ledger) = o.client().ledger(&customer).await;
    let actions: Vec<&str> = ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in ["conversation_resolved", "conversation_assigned"] {
        assert!(actions.contains(&action), "{action}: {ledger:#}");
    }
    // Bad input: a clear 400.
    let (status, bad) = o.client().assign(&id, Some("")).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_body")));
    let (status, bad) = o.client().conversation("cv_nothex").await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_conversation_id"))
    );
    let (status, bad) = o.client().conversation(format!("cv_{}", "0".repeat(32))).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_queue_lists_newest_waiting_first_pages_with_a_stable_cursor_and_a_merge_queues_once() {
    let o = outbound().await;
    let base = Utc::now() - TimeDelta::hours(2);
    let numbers = ["+14155550171", "+14155550172", "+14155550173"];
    let mut customers = Vec::new();
    for (n, number) in numbers.iter().enumerate() {
        let mut message = says("Hello?", &format!("SMq{n}"), base + TimeDelta::minutes(n as i64 * 10));
        message.customer = Handle::Phone {
            number: E164::parse(number).unwrap(),
        };
        customers.push(o.customer_wrote(&message).await);
    }
    let conversation = |customer: &CustomerId| {
        let customer = customer.clone();
        let o = &o;
        async move {
            o.only_conversation(&customer).await["conversation_id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let mut ids = Vec::new();
    for customer in &customers {
        ids.push(conversation(customer).await);
    }
    let (status, first) = o.client().queue("limit=2").await;
    assert_eq!(status, 200, "{first}");
    let page: Vec<&str> = first["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversation_id"].as_str().unwrap())
        .collect();
    assert_eq!(page, [ids[2].as_str(), ids[1].as_str()], "newest waiting first");
    let cursor = first["next_cursor"].as_str().unwrap();
    // A customer who writes meanwhile lands in front of the cursor, not on the next page.
    let mut later = says("Anyone?", "SMq9", Utc::now());
    later.customer = Handle::Phone {
        number: E164::parse("+14155550179").unwrap(),
    };
    o.customer_wrote(&later).await;
    let rest = o.queued(&format!("limit=2&cursor={cursor}")).await;
    assert_eq!(rest, std::slice::from_ref(&ids[0]));
    let (status, bad) = o.client().queue("cursor=bm90IGEgY3Vyc29y").await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("bad_cursor")));
    let (status, bad) = o.client().raw("GET", "/conversations?status=resolved", None).await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );

    // Merged, the group's root holds both conversations: the queue lists its open one once.
    let (status, merged) = o.client().merge(&customers[0], &customers[1], None).await;
    assert_eq!(status, 200, "{merged}");
    let queued = o.queued("").await;
    let of_group: Vec<&String> = queued.iter().filter(|c| ids[..2].contains(c)).collect();
    assert_eq!(of_group.len(), 1, "one entry for the merged customer: {queued:?}");
    // Unmerged, each is back on its own.
    let merge = merged["merge_id"].as_str().unwrap();
    let (status, unmerged) = o.client().unmerge(merge, None).await;
    assert_eq!(status, 200, "{unmerged}");
    let queued = o.queued("").await;
    assert!(ids.iter().all(|id| queued.contains(id)), "{queued:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_day_of_ten_thousand_interactions_reports_from_a_handful_of_items() {
    use throughline_service::Lifecycle;
    use throughline_service::hours::BusinessHours;
    use throughline_service::rollup::{DayAdds, Resolved, interaction_adds, resolution_adds};
    let o = outbound().await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    let start = day.and_hms_opt(8, 0, 0).unwrap().and_utc();
    let channels = [Channel::Sms, Channel::Whatsapp, Channel::Email];
    let sample = sample("twilio", Channel::Sms);
    let mut adds = DayAdds::default();
    // 5,000 conversations of a customer message and an agent reply `n % 30` minutes later.
    for n in 0..5_000i64 {
        let at = start + TimeDelta::seconds(n * 7);
        let mut message = customer_message(&sample, &format!("SMgen{n}"), at);
        message.channel = channels[(n % 3) as usize];
        let mut reply = message.clone();
        reply.direction = Direction::Outbound;
        reply.occurred_at = at + TimeDelta::minutes(n % 30);
        let mut lifecycle = Lifecycle::default();
        for interaction in [&message, &reply] {
            let observed = lifecycle.observe(interaction);
            adds.merge(interaction_adds(interaction, &observed, &BusinessHours::always()));
        }
        if n % 2 == 0 {
            adds.merge(resolution_adds(
                &Resolved {
                    at: reply.occurred_at + TimeDelta::minutes(5),
                    opened_at: at,
                    channel: message.channel,
                    assignee: Some(format!("agent-{}", n % 4)),
                    confirmed: vec![["billing/refund", "delivery/late"][(n % 4 / 2) as usize].to_owned()],
                    suggested: Vec::new(),
                    first_response: Some((at, reply.occurred_at)),
                },
                &BusinessHours::always(),
            ));
        }
    }
    o.stack.store().roll_up(adds).await.unwrap();
    let (status, report) = o
        .client()
        .raw("GET", "/reports/summary?from=2026-11-24&to=2026-11-24", None)
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["conversations_opened"], 5_000);
    assert_eq!(report["inbound_messages"], 5_000);
    assert_eq!(report["outbound_messages"], 5_000);
    assert_eq!(report["conversations_resolved"], 2_500);
    assert_eq!(report["first_response"]["count"], 5_000);
    let median = report["first_response"]["median_seconds"].as_i64().unwrap();
    assert!(
        (600..=900).contains(&median),
        "waits spread over 0..29 min: median {median} s"
    );
    let items = report["read"]["items"].as_u64().unwrap();
    assert!(items <= 20, "read {items} items for 10,000 interactions");
    let (_, by_reason) = o
        .client()
        .raw(
            "GET",
            "/reports/summary?from=2026-11-24&to=2026-11-24&reason=billing/refund&channel=sms",
            None,
        )
        .await;
    assert!(
        by_reason.get("conversations_opened").is_none(),
        "kept per channel only: {by_reason}"
    );
    let expected = (0..5_000)
        .filter(|n| n % 2 == 0 && n % 4 / 2 == 0 && n % 3 == 0)
        .count();
    assert_eq!(by_reason["conversations_resolved"], expected);
    let (_, daily) = o
        .client()
        .raw("GET", "/reports/daily?from=2026-11-23&to=2026-11-25", None)
        .await;
    let days: Vec<u64> = daily["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["conversations_opened"].as_u64().unwrap())
        .collect();
    assert_eq!(days, [0, 5_000, 0]);
    let (status, bad) = o
        .client()
        .raw("GET", "/reports/summary?from=2026-11-25&to=2026-11-24", None)
        .await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
}
