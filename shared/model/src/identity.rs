//! Identifiers that came with an interaction, and how far each can be trusted.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Handle;

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

/// An identifier of the customer beyond `Interaction::customer`, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Identity {
    pub handle: Handle,
    pub evidence: Evidence,
    pub source: EvidenceSource,
}
