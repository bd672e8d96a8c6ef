//! The company's own attributes of a customer (from its CRM: `lifetime_value`, `plan`), on an
//! item of their own in the group root's partition (`ATTRIBUTES`), never on the profile that
//! every interaction rewrites. Setting them is a ledger fact naming the keys (not the values),
//! and evaluates the company's segments on them (`segments`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use throughline_segments::{Attributes, Segment, attributes_json, memberships, parse_attributes};

use crate::items::{Expr, key_item, keys, optional_string_attr, string_value, time_attr, tx_delete, tx_put};
use crate::ledger::{LedgerAction, LedgerEntry, ledger_writes};
use crate::segments::{membership_changes, membership_item};
use crate::{Actor, CustomerId, StoreError, TimelineStore};

/// A customer's company attributes as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyAttributes {
    /// The group's root (they are kept there).
    pub customer_id: CustomerId,
    /// Every attribute.
    pub attributes: Attributes,
    /// When they were last set; none when never.
    pub updated_at: Option<DateTime<Utc>>,
}

impl TimelineStore {
    /// A customer's (group's) company attributes.
    pub async fn attributes(&self, customer: &CustomerId) -> Result<CompanyAttributes, StoreError> {
        let group = self.load_group(customer, false).await?;
        let root = group.root.customer;
        let item = self.get(keys::attributes(&root), false).await?;
        let attributes = match item.as_ref().and_then(|i| optional_string_attr(i, "values")) {
            Some(values) => {
                let json: serde_json::Value =
                    serde_json::from_str(&values).map_err(|e| StoreError::Corrupt(format!("attributes: {e}")))?;
                parse_attributes(&json).map_err(|e| StoreError::Corrupt(format!("attributes: {e}")))?
            }
            None => Attributes::new(),
        };
        let updated_at = match &item {
            Some(item) => time_attr(item, "updated_at")?,
            None => None,
        };
        Ok(CompanyAttributes {
            customer_id: root,
            attributes,
            updated_at,
        })
    }

    /// Replaces a customer's (group's) company attributes with `attributes`, with the ledger
    /// fact and the group's memberships of `segments` (joined where a condition now holds, left
    /// where none does any more, or the segment is no longer defined), in one transaction. The
    /// segments the group is in after it are returned with the attributes.
    pub async fn set_attributes(
        &self,
        customer: &CustomerId,
        attributes: &Attributes,
        actor: &Actor,
        segments: &[Segment],
    ) -> Result<(CompanyAttributes, LedgerEntry, Vec<String>), StoreError> {
        let group = self.load_group(customer, false).await?;
        let now = Utc::now();
        // Segments read the company's attributes and the calculated ones (which win a clash:
        // the store keeps them, nobody sets them).
        let mut evaluated = attributes.clone();
        evaluated.extend(group.root.calculated.attributes(now));
        let root = group.root.customer;
        let held: BTreeSet<String> = self
            .memberships_of(&root)
            .await?
            .into_iter()
            .map(|m| m.segment)
            .collect();
        let members = memberships(segments, &evaluated);
        let (joined, left) = membership_changes(&held, &members);
        let mut item = key_item(keys::attributes(&root));
        item.insert("values".into(), string_value(attributes_json(attributes).to_string()));
        item.insert("updated_at".into(), string_value(crate::items::millis(now)));
        let mut entry = LedgerEntry::new(LedgerAction::AttributesSet, actor);
        entry.attribute_keys = attributes.keys().cloned().collect();
        let mut writes = vec![tx_put(&self.table, item, None, Expr::new())?];
        writes.extend(ledger_writes(&self.table, &entry, [&root])?);
        for segment in joined {
            let item = membership_item(&root, segment, now);
            writes.push(tx_put(&self.table, item, None, Expr::new())?);
        }
        for segment in left {
            writes.push(tx_delete(&self.table, keys::segment_membership(&root, segment))?);
        }
        if !self.transact(writes).await? {
            return Err(StoreError::Contention("setting attributes"));
        }
        Ok((
            CompanyAttributes {
                customer_id: root,
                attributes: attributes.clone(),
                updated_at: Some(now),
            },
            entry,
            members.into_iter().map(str::to_owned).collect(),
        ))
    }
}
