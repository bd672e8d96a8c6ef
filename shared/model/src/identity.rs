//! Identifiers that came with an interaction, and how far each can be trusted.

use crate::Handle;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How much an identifier that came with an interaction can be trusted. Only verified
/// identifiers can attach an interaction to an existing customer; a claim is recorded and no more
/// (anyone can type someone else's email address into a form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    Verified,
    Claimed,
}

impl Evidence {
    /// The wire name (`verified`, `claimed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Verified => "verified",
            Evidence::Claimed => "claimed",
        }
    }
}

/// Where an identifier's evidence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceSource {
    /// A token the company's own backend signed for a logged-in user (chat identity token).
    CompanyIdentityToken,
    /// Typed by the visitor into a pre-chat form: a claim.
    PrechatForm,
}

impl EvidenceSource {
    /// The wire name (`company_identity_token`, `prechat_form`).
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceSource::CompanyIdentityToken => "company_identity_token",
            EvidenceSource::PrechatForm => "prechat_form",
        }
    }
}

/// An identifier of the customer beyond `Interaction::customer`, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Identity {
    pub handle: Handle,
    pub evidence: Evidence,
    pub source: EvidenceSource,
}
