//! The reference a rating page is reached by (`GET /feedback/{token}`): the survey and when the
//! link expires, signed with the company's feedback key (HMAC-SHA256 through the one signature
//! helper, compared in constant time). It names no person: only the survey's id. The same link
//! may be used again until it expires (the customer may change their rating: the latest counts).

use chrono::{DateTime, Utc};
use throughline_edge::signature::{Algorithm, Encoding, encode, hmac, matches};

/// What a feedback link refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackToken {
    /// The survey: `sv_` and hex digits (never anything about the customer).
    pub survey: String,
    /// After this the link is refused.
    pub expires_at: DateTime<Utc>,
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token this function makes.
    Malformed,
    /// Its signature is not one of the keys' (altered, or made by someone else).
    Forged,
    /// Signed, but past its time.
    Expired,
}

/// What the MAC covers: a domain tag (a MAC made for another purpose with the same key is never
/// a feedback token), the survey and the expiry.
fn mac(key: &[u8], survey: &str, expires: i64) -> Vec<u8> {
    hmac(
        Algorithm::HmacSha256,
        key,
        &[
            b"throughline-feedback\0",
            survey.as_bytes(),
            b".",
            expires.to_string().as_bytes(),
        ],
    )
}

/// The shortest key `signing_keys` takes.
pub const MIN_KEY_BYTES: usize = 16;

/// The keys of a `FEEDBACK_KEY` value: one key, or several separated by commas while rotating
/// (the first signs, all verify); each at least `MIN_KEY_BYTES` long.
pub fn signing_keys(value: &str) -> Result<Vec<Vec<u8>>, String> {
    let keys: Vec<Vec<u8>> = value.split(',').map(|k| k.trim().as_bytes().to_vec()).collect();
    if keys.iter().any(|k| k.len() < MIN_KEY_BYTES) {
        return Err(format!("FEEDBACK_KEY: each key needs at least {MIN_KEY_BYTES} bytes"));
    }
    Ok(keys)
}

/// Is `survey` a survey's id as `survey_id` makes them (`sv_` and hex digits)?
pub fn is_survey_id(survey: &str) -> bool {
    survey
        .strip_prefix("sv_")
        .is_some_and(|hex| !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl FeedbackToken {
    /// The token for this survey and expiry, signed with `key`: `<survey>.<expiry, unix
    /// seconds>.<base64url MAC>` (URL-safe as it is).
    pub fn sign(&self, key: &[u8]) -> String {
        let expires = self.expires_at.timestamp();
        let signature = encode(Encoding::Base64Url, &mac(key, &self.survey, expires));
        format!("{}.{expires}.{signature}", self.survey)
    }

    /// The survey a token refers to, if one of `keys` (the current key and those still
    /// accepted while rotating) signed it and it has not expired at `now`. Every key is tried.
    pub fn verify(token: &str, keys: &[&[u8]], now: DateTime<Utc>) -> Result<Self, TokenError> {
        let mut parts = token.split('.');
        let (Some(survey), Some(expires), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if !is_survey_id(survey) {
            return Err(TokenError::Malformed);
        }
        let expires: i64 = expires.parse().map_err(|_| TokenError::Malformed)?;
        let expires_at = DateTime::from_timestamp(expires, 0).ok_or(TokenError::Malformed)?;
        let signed = keys.iter().fold(false, |found, key| {
            matches(Encoding::Base64Url, signature, &mac(key, survey, expires)) | found
        });
        if !signed {
            return Err(TokenError::Forged);
        }
        if now > expires_at {
            return Err(TokenError::Expired);
        }
        Ok(Self {
            survey: survey.to_owned(),
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    const KEY: &[u8] = b"throughline-test-feedback-key";
    const OLD_KEY: &[u8] = b"throughline-test-feedback-key-before-rotation";

    fn token(survey: &str) -> (FeedbackToken, DateTime<Utc>) {
        let now = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        (
            FeedbackToken {
                survey: survey.into(),
                expires_at: now + TimeDelta::hours(24),
            },
            now,
        )
    }

    #[test]
    fn a_signed_token_verifies_again_and_again_until_it_expires() {
        let (feedback, now) = token("sv_0a1b2c");
        let signed = feedback.sign(KEY);
        assert!(!signed.contains(['+', '/', '=']), "URL-safe: {signed}");
        assert_eq!(FeedbackToken::verify(&signed, &[KEY], now), Ok(feedback.clone()));
        // Used again (the customer changes their rating): still the same survey.
        assert_eq!(
            FeedbackToken::verify(&signed, &[KEY], now + TimeDelta::hours(23)),
            Ok(feedback.clone())
        );
        assert_eq!(
            FeedbackToken::verify(&signed, &[KEY], now + TimeDelta::hours(25)),
            Err(TokenError::Expired)
        );
        // Signed with the key being rotated out: accepted while both are configured.
        assert_eq!(
            FeedbackToken::verify(&feedback.sign(OLD_KEY), &[KEY, OLD_KEY], now),
            Ok(feedback)
        );
    }

    #[test]
    fn forged_altered_other_survey_and_garbage_tokens_are_refused() {
        let (feedback, now) = token("sv_0a1b2c");
        let signed = feedback.sign(KEY);
        assert_eq!(
            FeedbackToken::verify(&signed, &[b"another key"], now),
            Err(TokenError::Forged)
        );
        // Another survey's id on this signature.
        let other = signed.replacen("sv_0a1b2c", "sv_0a1b2d", 1);
        assert_eq!(FeedbackToken::verify(&other, &[KEY], now), Err(TokenError::Forged));
        // A later expiry on this signature.
        let later = signed.replacen(
            &feedback.expires_at.timestamp().to_string(),
            &(feedback.expires_at.timestamp() + 86_400).to_string(),
            1,
        );
        assert_eq!(FeedbackToken::verify(&later, &[KEY], now), Err(TokenError::Forged));
        for garbage in [
            "",
            "sv_0a1b2c",
            "sv_0a1b2c.1.2.3",
            "ada@example.com.1795086400.xyz",
            "sv_.1.x",
            "sv_zz.1.x",
            "sv_0a.soon.x",
        ] {
            assert_eq!(
                FeedbackToken::verify(garbage, &[KEY], now),
                Err(TokenError::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    fn keys_are_comma_separated_and_long_enough() {
        assert_eq!(
            signing_keys("0123456789abcdef, fedcba9876543210fedcba").unwrap(),
            vec![b"0123456789abcdef".to_vec(), b"fedcba9876543210fedcba".to_vec()]
        );
        for short in ["", "short", "0123456789abcdef,", "0123456789abcdef,tiny"] {
            assert!(signing_keys(short).is_err(), "{short:?}");
        }
    }

    proptest::proptest! {
        /// No string panics the verifier, and none but a signed one verifies.
        #[test]
        fn arbitrary_strings_never_verify(text in "\\PC{0,120}") {
            let (_, now) = token("sv_00");
            proptest::prop_assert!(FeedbackToken::verify(&text, &[KEY], now).is_err());
        }
    }
}
