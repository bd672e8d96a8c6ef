//! Which customer an interaction belongs to: the identity graph at ingestion time.
//!
//! - A handle item (`HANDLE#<key>`) says which customer owns an identifier, and with what
//!   evidence. Only owned identifiers route interactions; each owned identifier also has an
//!   `ID#<key>` item in its customer's partition (the profile lists them).
//! - Verified evidence links: an unknown handle joins the customer that owns one of its verified
//!   identifiers, provided that customer's own evidence for it is verified too; when the
//!   verified identifiers belong to several customers (SMS Ada and email Ada, before her
//!   logged-in chat vouched for both), those customers are merged, and the ledger says so.
//! - Claims never link. A claimed identifier is listed on the claimant's profile (`ID#`, not
//!   owned) and, when another customer owns it, becomes a link suggestion for an agent.

use chrono::Utc;
use throughline_model::{Evidence, Handle, IdentifierSource, Interaction, InteractionId, SuggestionId};

use crate::items::{
    Expr, Item, ProfileItem, id_attr, key_item, keys, millis, optional_string_attr, string_value, to_json, tx_put,
};
use crate::merges::MergeRequest;
use crate::suggestions::{LinkSuggestion, SuggestionStatus};
use crate::{Actor, CustomerId, StoreError, TimelineStore, written};

/// The ledger's actor for merges that verified evidence made during ingestion.
pub const VERIFIED_EVIDENCE_ACTOR: &str = "throughline:verified-evidence";

/// An identifier as it arrives with an interaction.
#[derive(Debug, Clone, Copy)]
struct Identifier<'a> {
    handle: &'a Handle,
    evidence: Evidence,
    /// Where the evidence comes from: the provider (`twilio`, `ses`…) for the interaction's own
    /// handle, the evidence source (`company_identity_token`, `prechat_form`) for the others.
    source: IdentifierSource,
}

impl<'a> Identifier<'a> {
    /// The handle an interaction came in on, with the channel's evidence.
    fn primary(interaction: &'a Interaction) -> Self {
        Identifier {
            handle: &interaction.customer,
            evidence: interaction.customer_evidence(),
            source: IdentifierSource::Provider(interaction.provider),
        }
    }
}

/// Who owns an identifier, and how well that customer's claim to it is backed.
#[derive(Debug, Clone)]
struct Owner {
    customer: CustomerId,
    evidence: Evidence,
    /// The root of its group when the handle was last used, if it was a member then (a hint:
    /// recording checks it against the root's member list).
    root: Option<CustomerId>,
}

pub(crate) fn parse_evidence(item: &Item) -> Evidence {
    match optional_string_attr(item, "evidence").as_deref() {
        Some("claimed") => Evidence::Claimed,
        // Handles written before evidence was recorded came from carriers and platforms.
        _ => Evidence::Verified,
    }
}

/// A new customer's profile: its own root, at version 0.
fn new_profile(customer: &CustomerId, primary: Identifier, now: &str) -> Item {
    let mut profile = key_item(keys::profile(customer));
    profile.insert("customer_id".into(), string_value(customer.as_str()));
    profile.insert("root".into(), string_value(customer.as_str()));
    profile.insert("version".into(), crate::items::number_value(0));
    profile.insert("created_at".into(), string_value(now));
    profile.insert("first_handle".into(), string_value(primary.handle.key()));
    profile
}

/// `ID#` item: an identifier on a customer's profile.
fn identifier_item(customer: &CustomerId, identifier: Identifier, owned: bool, now: &str) -> Item {
    let mut item = key_item(keys::identifier(customer, &identifier.handle.key()));
    item.insert("identifier".into(), string_value(identifier.handle.key()));
    item.insert("evidence".into(), string_value(identifier.evidence.as_str()));
    item.insert("source".into(), string_value(identifier.source.as_str()));
    item.insert("owned".into(), aws_sdk_dynamodb::types::AttributeValue::Bool(owned));
    item.insert("first_seen_at".into(), string_value(now));
    item
}

fn handle_item(customer: &CustomerId, identifier: Identifier, now: &str) -> Item {
    let mut item = key_item(keys::handle(identifier.handle));
    item.insert("customer_id".into(), string_value(customer.as_str()));
    item.insert("evidence".into(), string_value(identifier.evidence.as_str()));
    item.insert("created_at".into(), string_value(now));
    item
}

/// The customer an interaction belongs to; with its profile when this resolution created it
/// (so recording need not read back what was just written).
pub(crate) struct Resolved {
    pub customer: CustomerId,
    pub created: Option<ProfileItem>,
    /// The handle item's hint of the customer's group root (see `Owner::root`).
    pub root_hint: Option<CustomerId>,
}

impl Resolved {
    fn known(customer: CustomerId) -> Self {
        Self {
            customer,
            created: None,
            root_hint: None,
        }
    }
}

impl TimelineStore {
    /// The customer an interaction belongs to (the owner of its handle), creating or linking
    /// as the evidence allows, and recording its claims. `None`: its handle belongs to a
    /// customer erased after this interaction was received (a delivery still in flight).
    pub(crate) async fn resolve_interaction_customer(
        &self,
        interaction: &Interaction,
    ) -> Result<Option<Resolved>, StoreError> {
        let primary = Identifier::primary(interaction);
        let mut verified: Vec<Identifier> = Vec::new();
        for identity in &interaction.identities {
            let duplicate =
                identity.handle == interaction.customer || verified.iter().any(|v| v.handle == &identity.handle);
            if identity.evidence == Evidence::Verified && !duplicate {
                verified.push(Identifier {
                    handle: &identity.handle,
                    evidence: Evidence::Verified,
                    source: IdentifierSource::Evidence(identity.source),
                });
            }
        }
        let Some(mut resolved) = self.resolve(primary, &verified, interaction).await? else {
            return Ok(None);
        };
        let customer = resolved.customer.clone();
        for identity in interaction
            .identities
            .iter()
            .filter(|i| i.evidence == Evidence::Claimed)
        {
            let claim = Identifier {
                handle: &identity.handle,
                evidence: Evidence::Claimed,
                source: IdentifierSource::Evidence(identity.source),
            };
            self.note_claim(&customer, claim, &interaction.id).await?;
            // What was just written may no longer be the profile as created.
            resolved.created = None;
        }
        Ok(Some(resolved))
    }

    /// Race-safe: every handle item is written only if absent, so two writers that see a new
    /// handle at once cannot give it two customers; the loser re-reads and adopts the winner's.
    async fn resolve(
        &self,
        primary: Identifier<'_>,
        verified: &[Identifier<'_>],
        received: &Interaction,
    ) -> Result<Option<Resolved>, StoreError> {
        let interaction = &received.id;
        let mut consistent = false;
        for _ in 0..3 {
            let own = self.owner(primary.handle, consistent).await?;
            if own.is_none()
                && let Some(erased_at) = self.suppressed_since(primary.handle).await?
                && received.occurred_at.min(received.received_at) <= erased_at
            {
                return Ok(None);
            }
            if let Some(own) = own.as_ref().filter(|_| verified.is_empty()) {
                if own.evidence == Evidence::Claimed && primary.evidence == Evidence::Verified {
                    self.upgrade_evidence(&own.customer, primary).await?;
                }
                return Ok(Some(Resolved {
                    root_hint: own.root.clone(),
                    ..Resolved::known(own.customer.clone())
                }));
            }
            // Verified identifiers: customers that own one on verified evidence are this
            // person (joined); one owned on a mere claim gets a suggestion; unknown ones are
            // attached.
            let mut vouched: Vec<(CustomerId, Identifier)> = Vec::new();
            let mut unknown: Vec<Identifier> = Vec::new();
            let mut suggested: Vec<(CustomerId, Identifier)> = Vec::new();
            for &identifier in verified {
                match self.owner(identifier.handle, consistent).await? {
                    Some(owner) if owner.evidence == Evidence::Verified => {
                        if !vouched.iter().any(|(c, _)| c == &owner.customer) {
                            vouched.push((owner.customer, identifier));
                        }
                    }
                    Some(owner) => suggested.push((owner.customer, identifier)),
                    None => unknown.push(identifier),
                }
            }
            let verified_here = primary.evidence == Evidence::Verified;
            let customer = match own {
                Some(own) => {
                    if own.evidence == Evidence::Claimed || !verified_here {
                        suggested.append(&mut vouched);
                    }
                    own.customer
                }
                None if verified_here && !vouched.is_empty() => {
                    let first = vouched[0].0.clone();
                    self.attach(primary, &first).await?
                }
                None => {
                    suggested.append(&mut vouched);
                    match self.create_customer(primary, &unknown).await? {
                        Some((customer, profile)) => {
                            let created = suggested.is_empty().then_some(profile);
                            for (other, identifier) in suggested {
                                self.suggest(&customer, &other, identifier, interaction).await?;
                            }
                            return Ok(Some(Resolved {
                                created,
                                ..Resolved::known(customer)
                            }));
                        }
                        None => {
                            // Another writer created one of these handles first: read again.
                            consistent = true;
                            continue;
                        }
                    }
                }
            };
            for identifier in unknown {
                self.attach(identifier, &customer).await?;
            }
            for (other, identifier) in vouched.into_iter().filter(|(c, _)| c != &customer) {
                self.join_on_evidence(&customer, &other, identifier, interaction)
                    .await?;
            }
            for (other, identifier) in suggested {
                self.suggest(&customer, &other, identifier, interaction).await?;
            }
            return Ok(Some(Resolved::known(customer)));
        }
        Err(StoreError::Contention("customer resolution"))
    }

    /// Two customers that hold identifiers this interaction verifies (a company-signed token
    /// vouching for a phone and an email, each verified by its own channel) are one person:
    /// merged, with the ledger naming the evidence. A merge too large for one transaction
    /// becomes a suggestion instead.
    async fn join_on_evidence(
        &self,
        customer: &CustomerId,
        other: &CustomerId,
        identifier: Identifier<'_>,
        interaction: &InteractionId,
    ) -> Result<(), StoreError> {
        if self.root_of(customer).await? == self.root_of(other).await? {
            return Ok(());
        }
        let request = MergeRequest {
            source: other.clone(),
            target: customer.clone(),
            actor: Actor {
                who: VERIFIED_EVIDENCE_ACTOR.into(),
                principal_id: None,
                reason: Some(format!(
                    "interaction {interaction} verifies identifiers of both customers"
                )),
            },
        };
        match self.merge(&request).await {
            Ok(_) => Ok(()),
            Err(StoreError::AlreadyMerged) => Ok(()),
            // Not mergeable (too large for one transaction, say): an agent decides.
            Err(e) if e.is_conflict() => self.suggest(customer, other, identifier, interaction).await,
            Err(e) => Err(e),
        }
    }

    /// Creates a customer owning `primary` and `more` and returns it with the profile it
    /// wrote; `None` when one of the handles got a customer meanwhile. With one identifier (a
    /// first message from a number, an address, an account): three single conditional writes,
    /// the handle first (its claim decides a race; a writer stopped after it leaves a handle
    /// whose customer has no profile yet, which `complete_customer` finishes on the
    /// redelivery). With more, one transaction: they are owned together or not at all.
    async fn create_customer(
        &self,
        primary: Identifier<'_>,
        more: &[Identifier<'_>],
    ) -> Result<Option<(CustomerId, ProfileItem)>, StoreError> {
        let customer = CustomerId::generate();
        let now = millis(Utc::now());
        let absent = Some("attribute_not_exists(pk)");
        if more.is_empty() {
            let handle = tx_put(&self.table, handle_item(&customer, primary, &now), absent, Expr::new())?;
            if !self.write_one(handle).await? {
                return Ok(None);
            }
            let created = self.complete_customer(&customer, primary, &now).await?;
            return Ok(Some((customer, created)));
        }
        let profile = new_profile(&customer, primary, &now);
        let created = ProfileItem::from_item(&profile)?;
        let mut writes = vec![tx_put(&self.table, profile, absent, Expr::new())?];
        for &identifier in std::iter::once(&primary).chain(more) {
            writes.push(tx_put(
                &self.table,
                handle_item(&customer, identifier, &now),
                absent,
                Expr::new(),
            )?);
            writes.push(tx_put(
                &self.table,
                identifier_item(&customer, identifier, true, &now),
                None,
                Expr::new(),
            )?);
        }
        Ok(self.transact(writes).await?.then_some((customer, created)))
    }

    /// The `ID#` item and profile of a customer created owning `primary` alone, each only if
    /// absent: the rest of its creation after its handle (also when the writer that claimed
    /// the handle stopped there).
    async fn complete_customer(
        &self,
        customer: &CustomerId,
        primary: Identifier<'_>,
        now: &str,
    ) -> Result<ProfileItem, StoreError> {
        // The profile last: once it is visible, the customer is whole.
        let absent = Some("attribute_not_exists(pk)");
        let identifier = identifier_item(customer, primary, true, now);
        self.write_one(tx_put(&self.table, identifier, absent, Expr::new())?)
            .await?;
        let profile = new_profile(customer, primary, now);
        let created = ProfileItem::from_item(&profile)?;
        self.write_one(tx_put(&self.table, profile, absent, Expr::new())?)
            .await?;
        Ok(created)
    }

    /// An interaction's handle routes to `customer`, which has no profile (read consistently):
    /// its creation stopped after the handle. Finishes it, if the handle still routes there.
    pub(crate) async fn finish_creation(
        &self,
        interaction: &Interaction,
        customer: &CustomerId,
    ) -> Result<(), StoreError> {
        let primary = Identifier::primary(interaction);
        if self
            .owner(primary.handle, true)
            .await?
            .is_some_and(|o| &o.customer == customer)
        {
            tracing::warn!(customer_id = %customer, "finishing a customer whose creation stopped after its handle");
            self.complete_customer(customer, primary, &millis(Utc::now())).await?;
        }
        Ok(())
    }

    /// Gives `identifier` to `customer` unless it has a customer already; returns the
    /// identifier's customer either way.
    async fn attach(&self, identifier: Identifier<'_>, customer: &CustomerId) -> Result<CustomerId, StoreError> {
        let now = millis(Utc::now());
        let writes = vec![
            tx_put(
                &self.table,
                handle_item(customer, identifier, &now),
                Some("attribute_not_exists(pk)"),
                Expr::new(),
            )?,
            tx_put(
                &self.table,
                identifier_item(customer, identifier, true, &now),
                None,
                Expr::new(),
            )?,
        ];
        if self.transact(writes).await? {
            return Ok(customer.clone());
        }
        self.owner(identifier.handle, true)
            .await?
            .map(|o| o.customer)
            .ok_or(StoreError::Contention("attaching an identifier"))
    }

    /// The owner's evidence for an identifier was a claim (an unchecked email sender); this
    /// interaction verifies it.
    async fn upgrade_evidence(&self, customer: &CustomerId, identifier: Identifier<'_>) -> Result<(), StoreError> {
        for key in [
            keys::handle(identifier.handle),
            keys::identifier(customer, &identifier.handle.key()),
        ] {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_item(key)))
                .update_expression("SET evidence = :verified, #source = :source")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#source", "source")
                .expression_attribute_values(":verified", string_value("verified"))
                .expression_attribute_values(":source", string_value(identifier.source.as_str()))
                .send()
                .await;
            written("UpdateItem", result)?;
        }
        Ok(())
    }

    /// A claimed identifier: listed on the claimant's profile; a suggestion when another
    /// customer owns it.
    async fn note_claim(
        &self,
        claimant: &CustomerId,
        claim: Identifier<'_>,
        interaction: &InteractionId,
    ) -> Result<(), StoreError> {
        self.put_new(identifier_item(claimant, claim, false, &millis(Utc::now())))
            .await?;
        if let Some(owner) = self.owner(claim.handle, false).await? {
            self.suggest(claimant, &owner.customer, claim, interaction).await?;
        }
        Ok(())
    }

    /// Records "`claimant` may be `owner`" in both customers' partitions, once, unless they are
    /// one customer already.
    async fn suggest(
        &self,
        claimant: &CustomerId,
        owner: &CustomerId,
        identifier: Identifier<'_>,
        interaction: &InteractionId,
    ) -> Result<(), StoreError> {
        if claimant == owner || self.root_of(claimant).await? == self.root_of(owner).await? {
            return Ok(());
        }
        let suggestion = LinkSuggestion {
            suggestion_id: SuggestionId::derive(claimant, owner, &identifier.handle.key()),
            claimant: claimant.clone(),
            owner: owner.clone(),
            identifier: identifier.handle.key(),
            evidence: identifier.evidence,
            source: identifier.source,
            interaction_id: interaction.to_string(),
            status: SuggestionStatus::Open,
            created_at: Utc::now(),
            decided_at: None,
            decided_by: None,
            merge_id: None,
        };
        for customer in [claimant, owner] {
            let mut item = key_item(keys::suggestion(customer, &suggestion.suggestion_id));
            item.insert("suggestion".into(), to_json(&suggestion));
            item.insert("status".into(), string_value(SuggestionStatus::Open.as_str()));
            self.put_new(item).await?;
        }
        tracing::info!(suggestion_id = %suggestion.suggestion_id, %claimant, %owner, "link suggested");
        Ok(())
    }

    async fn owner(&self, handle: &Handle, consistent: bool) -> Result<Option<Owner>, StoreError> {
        match self.get(keys::handle(handle), consistent).await? {
            Some(item) => Ok(Some(Owner {
                customer: id_attr::<CustomerId>(&item, "customer_id")?,
                evidence: parse_evidence(&item),
                root: optional_string_attr(&item, "root").and_then(|r| CustomerId::parse(&r)),
            })),
            None => Ok(None),
        }
    }

    /// Notes on a handle's item the root of its owner's group, so that recording the next
    /// interaction on it reads that root directly (only while the handle is still the owner's).
    pub(crate) async fn hint_root(
        &self,
        handle: &Handle,
        owner: &CustomerId,
        root: &CustomerId,
    ) -> Result<(), StoreError> {
        let hint = crate::items::tx_update(
            &self.table,
            keys::handle(handle),
            "SET #root = :root",
            Some("customer_id = :owner"),
            Expr::new()
                .name("#root", "root")
                .value(":root", string_value(root.as_str()))
                .value(":owner", string_value(owner.as_str())),
        )?;
        self.write_one(hint).await.map(drop)
    }

    /// The customer that owns a handle (not its group's root), if any.
    pub async fn customer_for(&self, handle: &Handle, consistent: bool) -> Result<Option<CustomerId>, StoreError> {
        Ok(self.owner(handle, consistent).await?.map(|o| o.customer))
    }

    /// The root of a customer's group (itself when not merged).
    pub(crate) async fn root_of(&self, customer: &CustomerId) -> Result<CustomerId, StoreError> {
        Ok(self
            .profile_item(customer, false)
            .await?
            .map(|p| p.root)
            .unwrap_or_else(|| customer.clone()))
    }
}
