//! The one signature helper every connector uses: HMAC over the raw bytes a provider sent,
//! compared in constant time. Providers differ only in the algorithm, the message they sign and
//! the text encoding of the result, so those are the parameters.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64_URL};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Digest as _;
use subtle::ConstantTimeEq;

/// The HMAC a provider signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Twilio.
    HmacSha1,
    /// Meta, X, Mailgun, Zendesk-style webhooks.
    HmacSha256,
}

/// How a provider writes a MAC as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Standard base64 with padding (Twilio, X, the chat webhook).
    Base64,
    /// URL-safe base64 without padding (JWT signatures).
    Base64Url,
    /// Lower-case hex (Meta, Mailgun). Decoding accepts either case.
    Hex,
}

/// HMAC of the concatenation of `parts` (no separators: providers define their own).
pub fn hmac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::HmacSha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        Algorithm::HmacSha256 => run::<Hmac<sha2::Sha256>>(key, parts),
    }
}

/// Encodes a MAC the way a provider writes it in its header.
pub fn encode(encoding: Encoding, mac: &[u8]) -> String {
    match encoding {
        Encoding::Base64 => BASE64.encode(mac),
        Encoding::Base64Url => BASE64_URL.encode(mac),
        Encoding::Hex => mac.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// `base64(HMAC-SHA256(secret, timestamp + "." + body))`: the Throughline chat scheme. A site
/// signs what it delivers to the chat webhook with it; the sender signs what it delivers to the
/// site's backend the same way.
pub fn chat_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mac = hmac(
        Algorithm::HmacSha256,
        secret.as_bytes(),
        &[timestamp.as_bytes(), b".", body],
    );
    encode(Encoding::Base64, &mac)
}

/// Does the signature a request carries (`provided`, as text) equal the MAC we computed?
/// The provided text is decoded first and the bytes compared in constant time, so neither the
/// length of a common prefix nor the text's case leaks through timing.
pub fn matches(encoding: Encoding, provided: &str, computed_mac: &[u8]) -> bool {
    let decoded = match encoding {
        Encoding::Base64 => BASE64.decode(provided.trim()).ok(),
        Encoding::Base64Url => BASE64_URL.decode(provided.trim()).ok(),
        Encoding::Hex => decode_hex(provided.trim()),
    };
    match decoded {
        Some(bytes) => bytes.ct_eq(computed_mac).into(),
        None => false,
    }
}

/// Does `provided` match the MAC of `parts` under any of `secrets` (the current one and those
/// still accepted while rotating)? Every secret is tried (no early exit), so timing does not
/// reveal which one matched.
pub fn matches_any(
    algorithm: Algorithm,
    encoding: Encoding,
    secrets: &[crate::Secret],
    parts: &[&[u8]],
    provided: &str,
) -> bool {
    secrets.iter().fold(false, |found, secret| {
        let mac = hmac(algorithm, secret.expose().as_bytes(), parts);
        matches(encoding, provided, &mac) | found
    })
}

/// Constant-time equality of two shared secrets given as text (Telegram-style secret tokens).
pub fn secrets_equal(provided: &str, expected: &str) -> bool {
    // Hash first so the comparison time does not depend on where the lengths differ.
    let a = sha2::Sha256::digest(provided.as_bytes());
    let b = sha2::Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

/// SHA-256 of a body.
pub fn sha256(body: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(body).into()
}

/// Lower-case hex SHA-256 of a body (Twilio's `bodySHA256`).
pub fn sha256_hex(body: &[u8]) -> String {
    encode(Encoding::Hex, &sha256(body))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_accepted_secret_matches_and_no_other() {
        let secrets = [crate::Secret::new("old"), crate::Secret::new("new")];
        let by = |key: &str| {
            encode(
                Encoding::Hex,
                &hmac(Algorithm::HmacSha256, key.as_bytes(), &[b"a", b"b"]),
            )
        };
        let matching = |provided: &str| matches_any(Algorithm::HmacSha256, Encoding::Hex, &secrets, &[b"ab"], provided);
        assert!(matching(&by("old")));
        assert!(matching(&by("new")));
        assert!(!matching(&by("other")));
        assert!(!matches_any(
            Algorithm::HmacSha256,
            Encoding::Hex,
            &[],
            &[b"ab"],
            &by("new")
        ));
    }

    // Published vectors from ../shared/reference/providers.md.
    #[test]
    fn meta_vector() {
        let mac = hmac(Algorithm::HmacSha256, b"TEST_APP_SECRET", &[b"test"]);
        assert_eq!(
            format!("sha256={}", encode(Encoding::Hex, &mac)),
            "sha256=0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221"
        );
    }

    #[test]
    fn x_vector() {
        let mac = hmac(Algorithm::HmacSha256, b"test", &[b"test=1&other_test=2"]);
        assert_eq!(
            encode(Encoding::Base64, &mac),
            "25Cu3iwbbiqBTwQRzcKJZwisjf736V2Q8UaTlkfLSoc="
        );
    }

    #[test]
    fn mailgun_vector_with_parts() {
        let mac = hmac(
            Algorithm::HmacSha256,
            b"key-3ax6xnjp29jd6fds4gc373sgvjxteol0",
            &[b"1403645220", b"5egbgr1vjgqxtrnp65xfznchgdccwh5d6i09vijqi3whgowmn6"],
        );
        assert!(matches(
            Encoding::Hex,
            "9cfc5c41582e51246e73c88d34db3af0a3a2692a76fbab81492842f000256d33",
            &mac
        ));
        assert!(matches(
            Encoding::Hex,
            "9CFC5C41582E51246E73C88D34DB3AF0A3A2692A76FBAB81492842F000256D33",
            &mac
        ));
    }

    #[test]
    fn zendesk_vector_timestamp_then_body() {
        // The secret is used as literal key bytes, not base64-decoded.
        let mac = hmac(
            Algorithm::HmacSha256,
            b"dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==",
            &[b"2021-03-25T05:09:27Z", br#"{"event":"ticket.updated","id":123}"#],
        );
        assert!(matches(
            Encoding::Base64,
            "S/RDdU2ERmj7LHDDoWJ2onPYH+t7/f2+LTM4dL7UiLM=",
            &mac
        ));
    }

    #[test]
    fn base64url_round_trips_without_padding() {
        let mac = hmac(Algorithm::HmacSha256, b"k", &[b"m"]);
        let text = encode(Encoding::Base64Url, &mac);
        assert!(!text.contains(['=', '+', '/']));
        assert!(matches(Encoding::Base64Url, &text, &mac));
        assert!(!matches(Encoding::Base64, &text.replace('_', "!"), &mac));
    }

    #[test]
    fn mismatches_and_garbage_are_rejected() {
        let mac = hmac(Algorithm::HmacSha1, b"12345", &[b"x"]);
        let good = encode(Encoding::Base64, &mac);
        assert!(matches(Encoding::Base64, &good, &mac));
        assert!(!matches(Encoding::Base64, "", &mac));
        assert!(!matches(Encoding::Base64, "not base64!!", &mac));
        assert!(!matches(Encoding::Base64, &good[..good.len() - 4], &mac));
        assert!(!matches(Encoding::Hex, "abc", &mac));
        assert!(!matches(Encoding::Hex, "zz", &mac));
        let other = hmac(Algorithm::HmacSha1, b"54321", &[b"x"]);
        assert!(!matches(Encoding::Base64, &good, &other));
    }

    #[test]
    fn secrets_equal_is_exact() {
        assert!(secrets_equal("s3cret", "s3cret"));
        assert!(!secrets_equal("s3cret", "s3cret "));
        assert!(!secrets_equal("", "s3cret"));
    }

    #[test]
    fn body_hash() {
        assert_eq!(
            sha256_hex(br#"{"property": "value", "boolean": true}"#),
            "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
    }
}
