//! Identifiers that came with an interaction, and how far each can be trusted.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Handle, Provider};

wire_enum! {
    /// How much an identifier that came with an interaction can be trusted. Only verified
    /// identifiers can attach an interaction to an existing customer; a claim is recorded and no more
    /// (anyone can type someone else's email address into a form).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum Evidence {
        /// The channel or the company vouches for it (a carrier's number, a checked token).
        Verified = "verified",
        /// Only the sender's word (an unchecked email From, a pre-chat form).
        Claimed = "claimed",
    }
}

wire_enum! {
    /// Where an identifier's evidence comes from.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum EvidenceSource {
        /// A token the company's own backend signed for a logged-in user (chat identity token).
        CompanyIdentityToken = "company_identity_token",
        /// Typed by the visitor into a pre-chat form: a claim.
        PrechatForm = "prechat_form",
    }
}

wire_enum! {
    /// What a channel's own check of the sender said, where the channel has one beyond the
    /// provider's word: email's DKIM and DMARC verdicts, a chat site's identity token. It
    /// decides evidence (`Interaction::customer_evidence`), so it is a field, not an attribute.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum SenderCheck {
        /// Email: DKIM and DMARC both pass for the From domain. Chat: the identity token verified.
        Verified = "verified",
        /// Email: not both pass, so From is only a claim.
        Unverified = "unverified",
        /// Chat: no identity token came (an anonymous visitor).
        Anonymous = "anonymous",
        /// Chat: an identity token came and was refused, for the reason the name gives.
        TokenMalformed = "identity_token_malformed",
        /// Chat: the token's `alg` is not HS256.
        TokenUnsupportedAlgorithm = "identity_token_unsupported_algorithm",
        /// Chat: the token's header lists `crit` extensions, none of which the verifier understands.
        TokenUnsupportedCriticalHeader = "identity_token_unsupported_critical_header",
        /// Chat: the signature matches none of the site's secrets.
        TokenBadSignature = "identity_token_bad_signature",
        /// Chat: the token's `exp` has passed.
        TokenExpired = "identity_token_expired",
        /// Chat: the token's `nbf` is still ahead.
        TokenNotYetValid = "identity_token_not_yet_valid",
        /// Chat: the token's `iat` is ahead.
        TokenIssuedInTheFuture = "identity_token_issued_in_the_future",
        /// Chat: the token's `exp` is further ahead than the site allows.
        TokenLifetimeTooLong = "identity_token_lifetime_too_long",
        /// Chat: the token's claims do not parse, or `sub`, `email` or `phone` is not a valid value.
        TokenInvalidClaims = "identity_token_invalid_claims",
    }
}

impl SenderCheck {
    /// An identity token came and was refused.
    pub fn is_token_refused(self) -> bool {
        !matches!(
            self,
            SenderCheck::Verified | SenderCheck::Unverified | SenderCheck::Anonymous
        )
    }
}

/// Who gave an identifier: the provider that delivered it as an interaction's customer, or
/// the evidence source of an identity that came with the interaction. Travels as the one's or
/// the other's wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum IdentifierSource {
    /// The provider that delivered the interaction whose customer the identifier is.
    Provider(Provider),
    /// Where an identity that came with the interaction got its evidence.
    Evidence(EvidenceSource),
}

impl IdentifierSource {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierSource::Provider(provider) => provider.as_str(),
            IdentifierSource::Evidence(source) => source.as_str(),
        }
    }

    /// The source with this wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Provider::parse(s)
            .map(IdentifierSource::Provider)
            .or_else(|| EvidenceSource::parse(s).map(IdentifierSource::Evidence))
    }
}

impl std::fmt::Display for IdentifierSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An identifier of the customer beyond `Interaction::customer`, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Identity {
    /// The identifier.
    pub handle: Handle,
    /// How far it can be trusted.
    pub evidence: Evidence,
    /// Where the evidence comes from.
    pub source: EvidenceSource,
}
