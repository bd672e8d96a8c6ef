use proptest::prelude::*;
use serde_json::{Value as Json, json};

use super::*;

fn attributes(json: Json) -> Attributes {
    json.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), Value::from_json(v).unwrap()))
        .collect()
}

fn segment(condition: Json) -> Segment {
    parse_segments(&json!([{"name": "s", "condition": condition}]).to_string())
        .unwrap()
        .remove(0)
}

#[test]
fn high_value_customers_are_those_worth_a_thousand_or_more() {
    let high_value = parse_segments(
        r#"[{"name": "high_value", "priority": true,
             "condition": {"attr": "lifetime_value", "op": ">=", "value": 1000}}]"#,
    )
    .unwrap()
    .remove(0);
    assert!(high_value.priority);
    assert!(high_value.condition.holds(&attributes(json!({"lifetime_value": 1000}))));
    assert!(
        !high_value
            .condition
            .holds(&attributes(json!({"lifetime_value": 999.5})))
    );
    assert!(
        !high_value.condition.holds(&attributes(json!({})),),
        "unknown is not a match"
    );
    assert!(
        !high_value
            .condition
            .holds(&attributes(json!({"lifetime_value": "1000"}))),
        "a string is not a number"
    );
    assert_eq!(high_value.condition.reads(), BTreeSet::from(["lifetime_value"]));
}

#[test]
fn and_or_in_not_dates_and_windows() {
    let loyal = segment(json!({"all": [
        {"any": [{"attr": "plan", "in": ["gold", "platinum"]}, {"attr": "conversations_30d", "op": ">=", "value": 3}]},
        {"not": {"attr": "churned", "op": "==", "value": true}},
        {"attr": "first_seen", "op": "<", "value": "2026-01-01"}
    ]}));
    let ada = |extra: Json| {
        let mut base = json!({"plan": "gold", "churned": false, "first_seen": "2025-06-01"});
        base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        attributes(base)
    };
    assert!(loyal.condition.holds(&ada(json!({}))));
    assert!(!loyal.condition.holds(&ada(json!({"churned": true}))));
    assert!(
        !loyal.condition.holds(&ada(json!({"first_seen": "2026-03-01"}))),
        "dates compare as dates"
    );
    assert!(
        loyal
            .condition
            .holds(&ada(json!({"plan": "free", "conversations_30d": 3})))
    );
    assert!(
        !loyal
            .condition
            .holds(&ada(json!({"plan": "free", "conversations_30d": 2})))
    );
    assert_eq!(
        loyal.condition.reads(),
        BTreeSet::from(["churned", "conversations_30d", "first_seen", "plan"])
    );
    let not_free = segment(json!({"attr": "plan", "op": "!=", "value": "free"}));
    assert!(not_free.condition.holds(&attributes(json!({"plan": "gold"}))));
    assert!(
        !not_free.condition.holds(&attributes(json!({}))),
        "missing is not different"
    );
}

#[test]
fn bad_definitions_are_refused_naming_the_segment_and_the_part() {
    for (document, expected) in [
        (
            r#"[{"name": "Big Spenders", "condition": {"attr": "x", "exists": true}}]"#,
            "segment names",
        ),
        (
            r#"[{"name": "a", "condition": {"attr": "x", "exists": true}}, {"name": "a", "condition": {"attr": "x", "exists": true}}]"#,
            "defined twice",
        ),
        (
            r#"[{"name": "a", "condition": {"attr": "x", "op": "~", "value": 1}}]"#,
            "`op` is one of",
        ),
        (r#"[{"name": "a", "condition": {"all": []}}]"#, "at least one"),
        (
            r#"[{"name": "a", "condition": {"attr": "Bad-Name", "exists": true}}]"#,
            "attribute names",
        ),
        (
            r#"[{"name": "a", "condition": {"attr": "x", "op": "==", "value": [1]}}]"#,
            "values are",
        ),
        (
            r#"[{"name": "a", "condition": {"attr": "x", "op": "==", "value": 1, "extra": 2}}]"#,
            "a condition is one of",
        ),
        (r#"{"name": "a"}"#, "not valid JSON"),
    ] {
        let error = parse_segments(document).unwrap_err().to_string();
        assert!(error.contains(expected), "{document}: {error}");
    }
    let deep = (0..10).fold(json!({"attr": "x", "exists": true}), |c, _| json!({"not": c}));
    let error = parse_segments(&json!([{"name": "a", "condition": deep}]).to_string()).unwrap_err();
    assert!(error.to_string().contains("nest"), "{error}");
}

/// The definition of the semantics, written the plainest way, on the JSON itself: what the
/// parsed conditions must agree with.
fn naive(condition: &Json, attributes: &serde_json::Map<String, Json>) -> bool {
    let is_date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok();
    // (kind, number, text) of a JSON value: kinds must match to compare.
    let key = |v: &Json| -> (u8, f64, String) {
        match v {
            Json::Number(n) => (0, n.as_f64().unwrap(), String::new()),
            Json::String(s) if is_date(s) => (1, 0.0, s.clone()),
            Json::String(s) => (2, 0.0, s.clone()),
            Json::Bool(b) => (3, f64::from(u8::from(*b)), String::new()),
            _ => unreachable!(),
        }
    };
    let object = condition.as_object().unwrap();
    if let Some(all) = object.get("all") {
        return all.as_array().unwrap().iter().all(|c| naive(c, attributes));
    }
    if let Some(any) = object.get("any") {
        return any.as_array().unwrap().iter().any(|c| naive(c, attributes));
    }
    if let Some(inner) = object.get("not") {
        return !naive(inner, attributes);
    }
    let Some(actual) = attributes.get(object["attr"].as_str().unwrap()) else {
        return false;
    };
    if object.contains_key("exists") {
        return true;
    }
    let (kind, number, text) = key(actual);
    let equal = |w: &Json| {
        let (k, n, t) = key(w);
        k == kind && n == number && t == text
    };
    if let Some(values) = object.get("in") {
        return values.as_array().unwrap().iter().any(equal);
    }
    let expected = &object["value"];
    let (k, n, t) = key(expected);
    if k != kind {
        return false;
    }
    let op = object["op"].as_str().unwrap();
    if kind == 3 {
        return match op {
            "==" => n == number,
            "!=" => n != number,
            "<=" | ">=" => n == number,
            _ => false,
        };
    }
    let ordering = if kind == 0 {
        number.partial_cmp(&n).unwrap()
    } else {
        text.cmp(&t)
    };
    match op {
        "==" => ordering.is_eq(),
        "!=" => ordering.is_ne(),
        "<" => ordering.is_lt(),
        "<=" => ordering.is_le(),
        ">" => ordering.is_gt(),
        _ => ordering.is_ge(),
    }
}

const NAMES: [&str; 4] = ["ltv", "plan", "seen", "vip"];

fn a_value() -> impl Strategy<Value = Json> {
    prop_oneof![
        (0i64..5).prop_map(|n| json!(n * 500)),
        prop::sample::select(vec!["free", "gold", "platinum"]).prop_map(|s| json!(s)),
        prop::sample::select(vec!["2025-06-01", "2026-01-01", "2026-11-24"]).prop_map(|s| json!(s)),
        any::<bool>().prop_map(|b| json!(b)),
    ]
}

fn a_condition() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        (
            prop::sample::select(NAMES.to_vec()),
            prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]),
            a_value()
        )
            .prop_map(|(attr, op, value)| json!({"attr": attr, "op": op, "value": value})),
        (
            prop::sample::select(NAMES.to_vec()),
            prop::collection::vec(a_value(), 1..3)
        )
            .prop_map(|(attr, values)| json!({"attr": attr, "in": values})),
        prop::sample::select(NAMES.to_vec()).prop_map(|attr| json!({"attr": attr, "exists": true})),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(|all| json!({"all": all})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|any| json!({"any": any})),
            inner.prop_map(|c| json!({"not": c})),
        ]
    })
}

fn some_attributes() -> impl Strategy<Value = serde_json::Map<String, Json>> {
    prop::collection::btree_map(prop::sample::select(NAMES.to_vec()), a_value(), 0..4)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

proptest! {
    /// The parsed condition agrees with the plain reading of its JSON on any attributes.
    #[test]
    fn evaluation_agrees_with_the_naive_evaluator(condition in a_condition(), attrs in some_attributes()) {
        let parsed = segment(condition.clone());
        let typed = attributes(Json::Object(attrs.clone()));
        prop_assert_eq!(parsed.condition.holds(&typed), naive(&condition, &attrs));
    }

    /// Changing an attribute the condition does not read never changes its result.
    #[test]
    fn only_the_attributes_it_reads_matter(condition in a_condition(), attrs in some_attributes(), other in a_value()) {
        let parsed = segment(condition);
        let typed = attributes(Json::Object(attrs));
        let before = parsed.condition.holds(&typed);
        let reads = parsed.condition.reads();
        for name in NAMES.iter().filter(|n| !reads.contains(*n)) {
            let mut changed = typed.clone();
            changed.insert((*name).to_owned(), Value::from_json(&other).unwrap());
            prop_assert_eq!(parsed.condition.holds(&changed), before);
            changed.remove(*name);
            prop_assert_eq!(parsed.condition.holds(&changed), before);
        }
    }
}

#[test]
fn company_attributes_are_typed_and_limited() {
    let parsed =
        parse_attributes(&json!({"lifetime_value": 1200.5, "plan": "gold", "vip": true, "renews_on": "2027-01-31"}))
            .unwrap();
    assert_eq!(parsed["lifetime_value"], Value::Number(1200.5));
    assert_eq!(
        parsed["renews_on"],
        Value::Date(NaiveDate::from_ymd_opt(2027, 1, 31).unwrap())
    );
    assert_eq!(
        parse_attributes(&attributes_json(&parsed)).unwrap(),
        parsed,
        "round trip"
    );
    assert_eq!(parse_attributes(&json!([1])), Err(AttributeError::NotAnObject));
    assert_eq!(
        parse_attributes(&json!({"Plan": "gold"})),
        Err(AttributeError::BadKey("Plan".into()))
    );
    assert_eq!(
        parse_attributes(&json!({"plan": null})),
        Err(AttributeError::BadValue("plan".into()))
    );
    assert_eq!(
        parse_attributes(&json!({"plan": {"tier": 1}})),
        Err(AttributeError::BadValue("plan".into()))
    );
    let many: serde_json::Map<String, Json> = (0..51).map(|n| (format!("k{n}"), json!(n))).collect();
    assert_eq!(parse_attributes(&Json::Object(many)), Err(AttributeError::TooMany));
    assert_eq!(
        parse_attributes(&json!({"notes": "x".repeat(4100)})),
        Err(AttributeError::TooLarge)
    );
    let message = AttributeError::BadValue("plan".into()).to_string();
    assert!(!message.contains("gold"), "never the value: {message}");
}

#[test]
fn a_customer_is_in_the_segments_whose_condition_holds_and_at_most_fifty_are_defined() {
    let segments = parse_segments(include_str!("../../../infra/segments.example.json")).unwrap();
    let ada = attributes(json!({"lifetime_value": 1500, "plan": "free"}));
    assert_eq!(memberships(&segments, &ada), BTreeSet::from(["high_value"]));
    let grace = attributes(json!({"lifetime_value": 200, "plan": "platinum"}));
    assert_eq!(memberships(&segments, &grace), BTreeSet::from(["enterprise"]));
    assert!(memberships(&segments, &Attributes::new()).is_empty());
    assert!(segments.iter().find(|s| s.name == "high_value").unwrap().priority);
    let many: Vec<Json> = (0..=MAX_SEGMENTS)
        .map(|n| json!({"name": format!("s{n}"), "condition": {"attr": "x", "exists": true}}))
        .collect();
    let error = parse_segment_settings(&Json::Array(many).to_string()).unwrap_err();
    assert!(error.contains("s50") && error.contains("at most 50"), "{error}");
}
