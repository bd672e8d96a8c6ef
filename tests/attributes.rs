//! Company attributes end to end: set through the API on a customer's group, typed, replaced as
//! a whole, refused with the key or limit named, a ledger fact that names keys and never values.

use chrono::Utc;
use serde_json::json;

use crate::lifecycle::says;

use crate::outbound::outbound;

#[tokio::test(flavor = "multi_thread")]
async fn company_attributes_are_set_typed_on_the_group_and_a_ledger_fact_names_their_keys() {
    let o = outbound().await;
    let customer = o.customer_wrote(&says("Hello", "SMattr1", Utc::now())).await;
    let (status, none) = o.client().attributes(&customer).await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(none["attributes"], json!({}));
    let (status, set) = o
        .client()
        .set_attributes(
            &customer,
            json!({"lifetime_value": 1250, "plan": "gold", "vip": true, "renews_on": "2027-01-31"}),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["ledger_entry"]["action"], "attributes_set");
    assert_eq!(
        set["ledger_entry"]["attribute_keys"],
        json!(["lifetime_value", "plan", "renews_on", "vip"])
    );
    assert!(
        !set["ledger_entry"].to_string().contains("gold"),
        "values stay off the ledger"
    );
    let (_, read) = o.client().attributes(&customer).await;
    assert_eq!(read["attributes"]["lifetime_value"], json!(1250.0));
    assert_eq!(read["attributes"]["renews_on"], "2027-01-31");
    // Replaced, not merged.
    o.client().set_attributes(&customer, json!({"plan": "free"})).await;
    let (_, replaced) = o.client().attributes(&customer).await;
    assert_eq!(replaced["attributes"], json!({"plan": "free"}));
    for (bad, names) in [
        (json!({"Plan": "gold"}), "Plan"),
        (json!({"plan": null}), "plan"),
        (json!([1, 2]), "object"),
    ] {
        let (status, error) = o.client().set_attributes(&customer, bad).await;
        assert_eq!((status, error["error"]["code"].as_str()), (400, Some("invalid_body")));
        assert!(error["error"]["message"].as_str().unwrap().contains(names), "{error}");
    }
    // Erased with the customer: the API says so and the item is gone from the table.
    let (status, erased) = o.client().erase(&customer, "privacy request PR-7").await;
    assert!(status == 200 || status == 202, "{erased}");
    let (status, gone) = o.client().attributes(&customer).await;
    assert_eq!((status, gone["error"]["code"].as_str()), (404, Some("customer_erased")));
    let item = aws_sdk_dynamodb::Client::new(&o.stack.aws)
        .get_item()
        .table_name(o.stack.table_name())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CUSTOMER#{customer}")),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("ATTRIBUTES".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(item.item().is_none(), "the attributes item outlived the erasure");
}

impl crate::outbound::Outbound {
    /// The API with the stack's segment definitions (from SSM, as deployed).
    async fn with_segments(mut self) -> Self {
        let segments = self
            .stack_document("SegmentsParameterName", throughline_segments::parse_segment_settings)
            .await;
        self.api.segments = Some(std::sync::Arc::new(segments));
        self
    }

    /// Every customer id of a segment, page by page (`limit` a page).
    async fn segment(&self, name: &str, limit: usize) -> Vec<String> {
        let (mut customers, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let after = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let (status, page) = self
                .client()
                .raw("GET", &format!("/segments/{name}/customers?limit={limit}{after}"), None)
                .await;
            assert_eq!(status, 200, "{page}");
            let listed = page["customers"].as_array().unwrap();
            assert!(listed.len() <= limit, "{page}");
            customers.extend(listed.iter().map(|c| c["customer_id"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return customers,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crm_attribute_puts_ada_in_high_value_which_lists_her_and_makes_her_conversation_priority() {
    let o = outbound().await.with_segments().await;
    let ada = o
        .customer_wrote(&says("Where is my order?", "SMseg1", Utc::now()))
        .await;
    let mut from_bob = says("Hello", "SMseg2", Utc::now());
    from_bob.customer = throughline_e2e::phone("+14155550111");
    let bob = o.customer_wrote(&from_bob).await;
    let (_, conversations) = o.client().conversations(&ada).await;
    let conversation = conversations["conversations"][0]["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(o.segment("high_value", 10).await.is_empty());

    // Her CRM says she is worth 1500: she joins high_value (and only it).
    let (status, set) = o.client().set_attributes(&ada, json!({"lifetime_value": 1500})).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["segments"], json!(["high_value"]));
    let (_, set) = o
        .client()
        .set_attributes(&bob, json!({"lifetime_value": 5000, "plan": "enterprise"}))
        .await;
    assert_eq!(set["segments"], json!(["enterprise", "high_value"]));
    let mut both = vec![ada.to_string(), bob.to_string()];
    both.sort();
    assert_eq!(o.segment("high_value", 1).await, both, "one a page, both listed once");
    assert_eq!(o.segment("enterprise", 10).await, vec![bob.to_string()]);
    let (_, profile) = o.client().profile(&ada).await;
    assert_eq!(profile["segments"], json!(["high_value"]), "{profile:#}");
    assert_eq!(
        (
            &profile["calculated"]["interactions_30d"],
            &profile["calculated"]["conversations_30d"],
            &profile["calculated"]["last_channel"]
        ),
        (&json!(1.0), &json!(1.0), &json!("sms")),
        "{profile:#}"
    );
    let (_, open) = o.client().conversation(&conversation).await;
    assert_eq!(open["priority"], "high", "{open:#}");
    let (_, listed) = o.client().conversations(&ada).await;
    assert_eq!(listed["conversations"][0]["priority"], "high");

    // Worth less now: she leaves it, and her conversation is ordinary again.
    let (_, set) = o.client().set_attributes(&ada, json!({"lifetime_value": 500})).await;
    assert_eq!(set["segments"], json!([]));
    assert_eq!(o.segment("high_value", 10).await, vec![bob.to_string()]);
    let (_, open) = o.client().conversation(&conversation).await;
    assert!(open.get("priority").is_none(), "{open:#}");

    // Two more messages: her calculated `interactions_30d` reaches 3, and with her attributes
    // set again she is `frequent`.
    for (n, id) in ["SMseg3", "SMseg4"].into_iter().enumerate() {
        o.customer_wrote(&says(
            "Any news?",
            id,
            Utc::now() + chrono::TimeDelta::seconds(n as i64 + 1),
        ))
        .await;
    }
    let (_, set) = o.client().set_attributes(&ada, json!({"lifetime_value": 500})).await;
    assert_eq!(set["segments"], json!(["frequent"]), "{set}");
    assert_eq!(o.segment("frequent", 10).await, vec![ada.to_string()]);

    // A segment nobody configured, a name no segment can have.
    let (status, unknown) = o.client().raw("GET", "/segments/vip/customers", None).await;
    assert_eq!((status, unknown["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, bad) = o.client().raw("GET", "/segments/High-Value/customers", None).await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );

    // Erased, Bob leaves every segment with the rest of his data.
    let (status, erased) = o.client().erase(&bob, "privacy request PR-8").await;
    assert!(status == 200 || status == 202, "{erased}");
    assert!(o.segment("high_value", 10).await.is_empty());
    assert!(o.segment("enterprise", 10).await.is_empty());
}
