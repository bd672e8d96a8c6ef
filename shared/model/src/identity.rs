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
        Verified = "verified",
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
        TokenUnsupportedAlgorithm = "identity_token_unsupported_algorithm",
        TokenUnsupportedCriticalHeader = "identity_token_unsupported_critical_header",
        TokenBadSignature = "identity_token_bad_signature",
        TokenExpired = "identity_token_expired",
        TokenNotYetValid = "identity_token_not_yet_valid",
        TokenIssuedInTheFuture = "identity_token_issued_in_the_future",
        TokenLifetimeTooLong = "identity_token_lifetime_too_long",
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
    Provider(Provider),
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
    pub handle: Handle,
    pub evidence: Evidence,
    pub source: EvidenceSource,
}
