//! What every JSON webhook needs between the verified raw body and its typed events: repairing
//! the one escape serde_json refuses in a whole document, parsing one event on its own, and
//! describing a parse error without quoting the (personal) content it tripped over.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::error::Category;

/// `\uD83D` without its low half (or a low half alone) made valid JSON: replaced by `\uFFFD`.
///
/// serde_json refuses a lone surrogate escape anywhere in a document, so one emoji cut in half
/// by a provider would fail its whole delivery, and the provider would resend the same bytes
/// until it gives up. Call this after the signature check (the signature is over the bytes as
/// sent): it changes nothing in a document serde_json would accept, and borrows when there is
/// nothing to change.
pub fn replace_lone_surrogates(body: &[u8]) -> Cow<'_, [u8]> {
    let mut repaired: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            i += 1;
            continue;
        }
        // Any other escape is two bytes: skipping both keeps an escaped backslash (`\\u...`)
        // from being read as the start of a `\u` escape.
        let Some(unit) = (body.get(i + 1) == Some(&b'u')).then(|| hex4(body, i + 2)).flatten() else {
            i += 2;
            continue;
        };
        let lone = match unit {
            0xD800..=0xDBFF => {
                let paired = body.get(i + 6) == Some(&b'\\')
                    && body.get(i + 7) == Some(&b'u')
                    && hex4(body, i + 8).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low));
                if paired {
                    i += 12;
                    continue;
                }
                true
            }
            0xDC00..=0xDFFF => true,
            _ => false,
        };
        if lone {
            let out = repaired.get_or_insert_with(|| Vec::with_capacity(body.len()));
            out.extend_from_slice(&body[copied..i]);
            out.extend_from_slice(br"\uFFFD");
            copied = i + 6;
        }
        i += 6;
    }
    match repaired {
        None => Cow::Borrowed(body),
        Some(mut out) => {
            out.extend_from_slice(&body[copied..]);
            Cow::Owned(out)
        }
    }
}

/// The code unit of the four hex digits at `at`, if there are four.
fn hex4(body: &[u8], at: usize) -> Option<u16> {
    let digits = std::str::from_utf8(body.get(at..at + 4)?).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(digits, 16).ok()
}

/// One event of a delivery, typed on its own so that its problems stay its own.
pub fn parse_event<T: DeserializeOwned>(event: &Value) -> Result<T, String> {
    T::deserialize(event).map_err(|e| problem(&e))
}

/// A parse error as a log line or an answer may carry it: the kind of problem, the field name
/// when serde gives one (ours, from the struct), the position; never the value.
///
/// serde's messages for data errors quote what they got (`invalid type: string "<the text>",
/// expected i64`), so of those only the expectation (from our types) is kept. Syntax errors are
/// serde_json's fixed messages and carry nothing from the document.
pub fn problem(error: &serde_json::Error) -> String {
    let position = if error.line() > 0 {
        format!(" at line {} column {}", error.line(), error.column())
    } else {
        String::new()
    };
    if error.classify() != Category::Data {
        return error.to_string();
    }
    let message = error.to_string();
    let message = message.strip_suffix(position.as_str()).unwrap_or(&message);
    for prefix in ["missing field `", "duplicate field `"] {
        if let Some((field, _)) = message.strip_prefix(prefix).and_then(|rest| rest.split_once('`')) {
            return format!("{prefix}{field}`{position}");
        }
    }
    match message.rsplit_once(", expected ") {
        Some((_, expected)) => format!("invalid type or value, expected {expected}{position}"),
        None => format!("invalid value{position}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(body: &str) -> String {
        String::from_utf8(replace_lone_surrogates(body.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn lone_surrogate_escapes_become_the_replacement_character() {
        let body = r#"{"text":"cut \ud83d here","b":"\udca9","c":"\uD83D\uD83D\uDE00 end\uDBFF"}"#;
        assert!(
            serde_json::from_str::<Value>(body).is_err(),
            "serde_json refuses it as sent"
        );
        let fixed = repaired(body);
        assert_eq!(
            fixed,
            r#"{"text":"cut \uFFFD here","b":"\uFFFD","c":"\uFFFD\uD83D\uDE00 end\uFFFD"}"#
        );
        let v: Value = serde_json::from_str(&fixed).unwrap();
        assert_eq!(v["text"], "cut \u{FFFD} here");
        assert_eq!(v["c"], "\u{FFFD}😀 end\u{FFFD}");
    }

    #[test]
    fn valid_documents_are_borrowed_unchanged() {
        for body in [
            r#"{"a":"\ud83d\udce6 \u00c7a \\ud83d \\\ud83d\udce6","b":"日本 📦"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"ends with \"#,
            "",
        ] {
            assert!(
                matches!(replace_lone_surrogates(body.as_bytes()), Cow::Borrowed(_)),
                "{body}"
            );
        }
        // An escaped backslash before `ud83d` is text, not an escape; the escape after it is.
        assert_eq!(repaired(r#""\\ud83d\ud83d""#), r#""\\ud83d\uFFFD""#);
        assert_eq!(repaired(r#""\ud83d\u00e9""#), r#""\uFFFD\u00e9""#);
    }

    #[test]
    fn problems_name_fields_and_expectations_never_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Event {
            id: String,
            count: Option<i64>,
        }
        let of = |body: &str| problem(&serde_json::from_str::<Event>(body).unwrap_err());
        let of_value = |v: Value| parse_event::<Event>(&v).unwrap_err();

        assert_eq!(of(r#"{"count":1}"#), "missing field `id` at line 1 column 11");
        assert_eq!(of_value(serde_json::json!({})), "missing field `id`");
        let secret = of(r#"{"id":"x","count":"my secret text"}"#);
        assert!(!secret.contains("secret"), "{secret}");
        assert_eq!(secret, "invalid type or value, expected i64 at line 1 column 34");
        let secret = of_value(serde_json::json!({"id": "x", "count": "my secret text"}));
        assert_eq!(secret, "invalid type or value, expected i64");
        assert!(of("{").starts_with("EOF while parsing"));
        assert!(of(r#"{"id":"secret\x"}"#).starts_with("invalid escape"));
        let lone = of(r#"{"id":"\ud83d"}"#);
        assert!(lone.contains("escape") && lone.contains("column"), "{lone}");
    }
}
