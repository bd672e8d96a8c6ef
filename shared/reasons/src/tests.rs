use super::*;

fn taxonomy() -> Taxonomy {
    Taxonomy::from_json(
        r#"{"codes": [
            {"code": "billing/refund", "name": "Refund", "aliases": ["billing/refunds"],
             "rules": [{"keywords": ["refund", "money back", "remboursement", "返金"]},
                       {"patterns": ["\\brembours(e|é)s?\\b"], "channels": ["email"]}]},
            {"code": "delivery/late", "name": "Late delivery",
             "rules": [{"keywords": ["where is my order", "not arrived", "¿dónde está mi pedido"]}]},
            {"code": "account", "name": "Account"}
        ]}"#,
    )
    .unwrap()
}

fn codes(text: &str, channel: Channel) -> Vec<String> {
    taxonomy()
        .suggest(text, channel)
        .into_iter()
        .map(|s| s.code.to_string())
        .collect()
}

#[test]
fn phrases_match_without_case_or_accents_on_word_boundaries() {
    assert_eq!(codes("I want a REFUND please", Channel::Sms), ["billing/refund"]);
    assert_eq!(
        codes("Is this refundable?", Channel::Sms),
        Vec::<String>::new(),
        "a word boundary"
    );
    assert_eq!(codes("Demande de REMBOURSEMENT", Channel::Email), ["billing/refund"]);
    assert_eq!(
        codes("Hola, ¿DONDE esta mi pedido?", Channel::Whatsapp),
        ["delivery/late"]
    );
    assert_eq!(
        codes("Where is my order? I want my money back.", Channel::Sms),
        ["billing/refund", "delivery/late"],
        "the taxonomy's order"
    );
}

#[test]
fn scripts_without_spaces_match_inside_words() {
    let found = taxonomy().suggest("注文の返金をお願いします", Channel::Messenger);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].matched, Matched::Keyword("返金".into()));
}

#[test]
fn patterns_match_folded_text_and_rules_keep_to_their_channels() {
    let email = taxonomy().suggest("Je veux être REMBOURSÉ", Channel::Email);
    assert_eq!(
        email,
        [Suggestion {
            code: ReasonCode::parse("billing/refund").unwrap(),
            rule: 1,
            matched: Matched::Pattern("\\brembours(e|é)s?\\b".into()),
        }]
    );
    assert!(taxonomy().suggest("Je veux être REMBOURSÉ", Channel::Sms).is_empty());
}

#[test]
fn codes_and_aliases_resolve_and_nothing_else_does() {
    let t = taxonomy();
    assert_eq!(t.resolve("billing/refunds").unwrap().code.as_str(), "billing/refund");
    assert_eq!(t.resolve("account").unwrap().name, "Account");
    assert!(t.resolve("billing").is_none() && t.resolve("nope").is_none());
}

#[test]
fn a_document_that_cannot_be_used_names_the_problem() {
    let cases = [
        (r#"{"codes": [{"code": "Billing", "name": "x"}]}"#, "Billing: "),
        (
            r#"{"codes": [{"code": "a", "name": "x"}, {"code": "b", "name": "y", "aliases": ["a"]}]}"#,
            "a is defined twice",
        ),
        (
            r#"{"codes": [{"code": "a", "name": "x", "rules": [{}]}]}"#,
            "a: a rule needs",
        ),
        (
            r#"{"codes": [{"code": "a", "name": "x", "rules": [{"patterns": ["("]}]}]}"#,
            "a: pattern 0",
        ),
        (r#"{"codes": [{"code": "a/b/c/d/e", "name": "x"}]}"#, "at most 4 levels"),
        (r#"{"codes": "no"}"#, "not a taxonomy document"),
    ];
    for (document, expected) in cases {
        let error = Taxonomy::from_json(document).unwrap_err().to_string();
        assert!(error.contains(expected), "{document}: {error}");
    }
}

#[test]
fn folding_drops_case_accents_and_compatibility_forms() {
    assert_eq!(fold("Ça COÛTE 12 € — ﬁn"), "ca coute 12 € — fin");
    assert_eq!(fold("İSTANBUL"), "istanbul");
    assert_eq!(fold("Ⓐ"), "a");
}

proptest::proptest! {
    /// No text makes the matcher panic, and folding twice is folding once.
    #[test]
    fn any_text_is_matched_without_panic(text in "\\PC{0,200}") {
        let t = taxonomy();
        let found = t.suggest(&text, Channel::Email);
        proptest::prop_assert!(found.len() <= t.reasons().len());
        proptest::prop_assert_eq!(fold(&fold(&text)), fold(&text));
    }
}
