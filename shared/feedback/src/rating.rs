//! What a customer's answer to a survey rates. A message is a rating only when it is nothing
//! else: `5`, `5/5`, `5 stars`, `⭐⭐⭐⭐`, `five`, `cinco!`, a survey button's payload
//! (`CSAT_4`); "5 minutes late" or "I have 2 questions" are ordinary messages, and the survey
//! stays open.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// A rating from 1 (worst) to 5 (best).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rating(u8);

impl Rating {
    /// `n` from 1 to 5.
    pub fn new(n: u8) -> Option<Self> {
        (1..=5).contains(&n).then_some(Self(n))
    }

    pub fn value(self) -> u8 {
        self.0
    }
}

/// The payload prefix of the survey's quick-reply and button options (WhatsApp, Messenger,
/// Telegram): `CSAT_1` … `CSAT_5`.
pub const PAYLOAD_PREFIX: &str = "CSAT_";

/// The words for 1..5 per language (the locale's language part), folded (lower case, no
/// accents). English is always understood.
const WORDS: [(&str, [&[&str]; 5]); 6] = [
    ("en", [&["one"], &["two"], &["three"], &["four"], &["five"]]),
    ("es", [&["uno", "una"], &["dos"], &["tres"], &["cuatro"], &["cinco"]]),
    ("fr", [&["un", "une"], &["deux"], &["trois"], &["quatre"], &["cinq"]]),
    ("de", [&["eins"], &["zwei"], &["drei"], &["vier"], &["funf", "fuenf"]]),
    (
        "pt",
        [&["um", "uma"], &["dois", "duas"], &["tres"], &["quatro"], &["cinco"]],
    ),
    ("it", [&["uno"], &["due"], &["tre"], &["quattro"], &["cinque"]]),
];

/// Words that may stand beside a rating without making it something else ("5 stars",
/// "cinq étoiles", "4 out of 5" is handled as a fraction).
const ALONGSIDE: [&str; 8] = [
    "star",
    "stars",
    "estrella",
    "estrellas",
    "etoile",
    "etoiles",
    "stern",
    "sterne",
];

/// Lower case, accents removed, everything but letters, digits and stars as spaces.
fn fold(text: &str) -> String {
    text.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() || c == '/' { c } else { ' ' })
        .collect()
}

/// The rating a message's text (or a button's payload) gives, in the customer's `locale`
/// (`es-MX`, `fr`; `None`: English only). Pure.
pub fn parse_rating(text: &str, locale: Option<&str>) -> Option<Rating> {
    let trimmed = text.trim();
    if let Some(n) = trimmed.strip_prefix(PAYLOAD_PREFIX) {
        return n.parse().ok().and_then(Rating::new);
    }
    if let Some(stars) = star_count(trimmed) {
        return Rating::new(stars);
    }
    let folded = fold(trimmed);
    let words: Vec<&str> = folded.split_whitespace().filter(|w| !ALONGSIDE.contains(w)).collect();
    let [word] = words.as_slice() else {
        return None;
    };
    // `4/5`: out of five only.
    if let Some((n, of)) = word.split_once('/') {
        return (of == "5").then(|| n.parse().ok()).flatten().and_then(Rating::new);
    }
    if let Ok(n) = word.parse::<u8>() {
        return Rating::new(n);
    }
    let language = locale
        .and_then(|l| l.split(['-', '_']).next())
        .map(str::to_ascii_lowercase);
    WORDS
        .iter()
        .filter(|(lang, _)| *lang == "en" || language.as_deref() == Some(*lang))
        .find_map(|(_, numbers)| numbers.iter().position(|forms| forms.contains(word)))
        .and_then(|i| Rating::new(u8::try_from(i + 1).ok()?))
}

/// A message of only stars (`⭐`, `★`, `☆` counted as empty, emoji variation selectors
/// ignored): the number of full stars.
fn star_count(text: &str) -> Option<u8> {
    let mut full = 0u8;
    let mut any = false;
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        match c {
            '⭐' | '★' | '🌟' => {
                full = full.saturating_add(1);
                any = true;
            }
            '☆' => any = true,
            '\u{fe0f}' | '\u{fe0e}' => {}
            _ => return None,
        }
    }
    any.then_some(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rated(text: &str, locale: Option<&str>) -> Option<u8> {
        parse_rating(text, locale).map(Rating::value)
    }

    #[test]
    fn digits_stars_fractions_words_and_payloads_are_ratings() {
        for (text, locale, expected) in [
            ("5", None, 5),
            (" 4. ", None, 4),
            ("5!", None, 5),
            ("3/5", None, 3),
            ("5 stars", None, 5),
            ("⭐⭐⭐⭐", None, 4),
            ("⭐️⭐️⭐️", None, 3),
            ("★★☆☆☆", None, 2),
            ("Five", None, 5),
            ("cinco", Some("es-MX"), 5),
            ("¡Cuatro estrellas!", Some("es"), 4),
            ("cinq étoiles", Some("fr-FR"), 5),
            ("fünf", Some("de"), 5),
            ("três", Some("pt-BR"), 3),
            ("two", Some("fr"), 2),
            ("CSAT_1", None, 1),
        ] {
            assert_eq!(rated(text, locale), Some(expected), "{text:?} in {locale:?}");
        }
    }

    #[test]
    fn ordinary_messages_are_not_ratings() {
        for (text, locale) in [
            ("5 minutes late", None),
            ("I have 2 questions", None),
            ("6", None),
            ("0", None),
            ("4/10", None),
            ("thanks!", None),
            ("", None),
            ("⭐ great", None),
            ("cinco", None),
            ("cinco", Some("fr")),
            ("CSAT_9", None),
            ("one more thing", None),
            ("☆☆☆☆☆", None),
        ] {
            assert_eq!(rated(text, locale), None, "{text:?} in {locale:?}");
        }
    }

    proptest::proptest! {
        /// No text panics, and a rating is always 1 to 5.
        #[test]
        fn any_text_is_a_rating_from_one_to_five_or_none(text in "\\PC{0,40}", locale in proptest::option::of("[a-z]{2}(-[A-Z]{2})?")) {
            if let Some(rating) = parse_rating(&text, locale.as_deref()) {
                proptest::prop_assert!((1..=5).contains(&rating.value()));
            }
        }
    }
}
