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
