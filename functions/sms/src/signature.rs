//! `X-Twilio-Signature`, computed exactly as Twilio does: base64 HMAC-SHA1, keyed with the
//! account's auth token, over the URL Twilio requested followed by every POST parameter
//! (sorted by name, then value; name and value concatenated with no separators). JSON-bodied
//! webhooks instead carry `bodySHA256` in the URL: the signature covers the URL and the body
//! must hash to that value.

use throughline_edge::signature::{self, Algorithm, Encoding};

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// What a signature covers.
#[derive(Debug, Clone, Copy)]
pub enum Signed<'a> {
    /// Form-encoded POST: the URL plus these decoded parameters.
    Form(&'a [(String, String)]),
    /// GET, or a JSON body whose hash is in the URL: the URL alone.
    UrlOnly,
}

/// The string Twilio signs, for one candidate URL.
pub fn signing_input(url: &str, signed: Signed<'_>) -> Vec<u8> {
    let mut input = url.as_bytes().to_vec();
    if let Signed::Form(params) = signed {
        let mut sorted: Vec<&(String, String)> = params.iter().collect();
        sorted.sort();
        for (name, value) in sorted {
            input.extend_from_slice(name.as_bytes());
            input.extend_from_slice(value.as_bytes());
        }
    }
    input
}

pub fn compute(auth_token: &str, url: &str, signed: Signed<'_>) -> String {
    let mac = signature::hmac(
        Algorithm::HmacSha1,
        auth_token.as_bytes(),
        &[&signing_input(url, signed)],
    );
    signature::encode(Encoding::Base64, &mac)
}

/// True when `provided` is Twilio's signature for this request under any spelling of the URL
/// Twilio may have signed (with or without the default port, never with userinfo or fragment).
pub fn verify(auth_token: &str, url: &str, signed: Signed<'_>, provided: &str) -> bool {
    // Evaluate every candidate (no early exit) so timing does not reveal which one matched.
    candidate_urls(url).iter().fold(false, |found, candidate| {
        let mac = signature::hmac(
            Algorithm::HmacSha1,
            auth_token.as_bytes(),
            &[&signing_input(candidate, signed)],
        );
        signature::matches(Encoding::Base64, provided, &mac) | found
    })
}

/// The URL without userinfo and fragment, then the same with the default port toggled.
pub fn candidate_urls(url: &str) -> Vec<String> {
    let without_fragment = url.split('#').next().unwrap_or(url);
    let Some((scheme, rest)) = without_fragment.split_once("://") else {
        return vec![without_fragment.to_owned()];
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return vec![format!("{scheme}://{host_port}{tail}")],
    };
    let (host, port) = split_port(host_port);
    let with_port = format!("{scheme}://{host}:{default_port}{tail}");
    let without_port = format!("{scheme}://{host}{tail}");
    match port {
        Some(p) if p == default_port => vec![with_port, without_port],
        Some(_) => vec![format!("{scheme}://{host_port}{tail}")],
        None => vec![without_port, with_port],
    }
}

/// Splits `host:port`, leaving IPv6 literals (`[::1]`) intact.
fn split_port(host_port: &str) -> (&str, Option<&str>) {
    match host_port.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':') => {
            (host, Some(port))
        }
        _ => (host_port, None),
    }
}

/// The `bodySHA256` query parameter, when the URL has one.
pub fn body_sha256_param(url: &str) -> Option<String> {
    let query = url.split('#').next()?.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    // Published vectors, ../shared/reference/providers.md (token 12345).
    #[test]
    fn docs_vector() {
        let params = pairs(&[
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+14158675310"),
            ("Caller", "+14158675310"),
            ("CallSid", "CA1234567890ABCDE"),
        ]);
        let url = "https://example.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            compute("12345", url, Signed::Form(&params)),
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        );
        assert!(verify(
            "12345",
            url,
            Signed::Form(&params),
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        ));
    }

    fn sdk_params() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ])
    }

    #[test]
    fn sdk_vectors_with_and_without_default_port() {
        let params = sdk_params();
        let plain = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(
            compute("12345", plain, Signed::Form(&params)),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_eq!(
            compute("12345", with_port, Signed::Form(&params)),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        // Whichever spelling we reconstructed, both of Twilio's are accepted.
        for url in [plain, with_port] {
            assert!(verify(
                "12345",
                url,
                Signed::Form(&params),
                "RSOYDt4T1cUTdK1PDd93/VVr8B8="
            ));
            assert!(verify(
                "12345",
                url,
                Signed::Form(&params),
                "kvajT1Ptam85bY51eRf/AJRuM3w="
            ));
        }
    }

    #[test]
    fn multi_valued_params_vector() {
        let params = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(verify(
            "12345",
            url,
            Signed::Form(&params),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        ));
    }

    #[test]
    fn json_body_vector() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = throughline_edge::signature::sha256_hex(body);
        assert_eq!(hash, "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620");
        let url = format!("https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256={hash}");
        assert_eq!(body_sha256_param(&url).as_deref(), Some(hash.as_str()));
        assert!(verify("12345", &url, Signed::UrlOnly, "a9nBmqA0ju/hNViExpshrM61xv4="));
    }

    #[test]
    fn userinfo_and_fragment_are_not_signed() {
        let params = sdk_params();
        let url = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2#rc=2";
        assert!(verify(
            "12345",
            url,
            Signed::Form(&params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn wrong_token_param_or_url_fails() {
        let params = sdk_params();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(!verify("54321", url, Signed::Form(&params), good));
        assert!(!verify(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            Signed::Form(&params),
            good
        ));
        let mut tampered = params.clone();
        tampered[1].1 = "9999".into();
        assert!(!verify("12345", url, Signed::Form(&tampered), good));
        assert!(!verify("12345", url, Signed::UrlOnly, good));
        assert!(!verify("12345", url, Signed::Form(&params), ""));
    }

    #[test]
    fn candidate_urls_cover_ports_and_odd_inputs() {
        assert_eq!(candidate_urls("http://h/p"), vec!["http://h/p", "http://h:80/p"]);
        assert_eq!(candidate_urls("https://h:8443/p"), vec!["https://h:8443/p"]);
        assert_eq!(candidate_urls("https://h"), vec!["https://h", "https://h:443"]);
        assert_eq!(
            candidate_urls("https://[::1]:443/x"),
            vec!["https://[::1]:443/x", "https://[::1]/x"]
        );
        assert_eq!(candidate_urls("not a url"), vec!["not a url"]);
    }
}
