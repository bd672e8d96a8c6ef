//! Segment memberships: one item per segment a group is in, in its root's partition
//! (`SEGMENT#<name>`, carrying `segment` and `since`), so the profile reads them with its own
//! partition and the sparse `SegmentIndex` lists a segment's members in one paged Query, never a
//! scan. Written with the attributes they are evaluated on (`set_attributes`): a membership
//! changes only when an attribute changes. Deleted with the customer (they are in its partition).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

use crate::items::{Item, keys, string_attr, string_value, time_attr};
use crate::{CustomerId, MAX_PAGE_SIZE, StoreError, TimelineStore, dynamo};

/// The index of segment members.
pub(crate) const SEGMENT_INDEX: &str = "SegmentIndex";

/// A group's membership of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMembership {
    /// The segment's name.
    pub segment: String,
    /// When the group joined it (it stays the same while the group stays in).
    pub since: Option<DateTime<Utc>>,
}

/// A segment's member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMember {
    /// The group's root.
    pub customer_id: CustomerId,
    /// When it joined.
    pub since: Option<DateTime<Utc>>,
}

/// One page of a segment's members, in customer id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPage {
    /// At most the page's size.
    pub members: Vec<SegmentMember>,
    /// Where the next page starts; none after the last.
    pub next_cursor: Option<String>,
}

/// What joining and leaving segments writes: `(joined, left)` from the memberships held and
/// those the attributes now give. Pure.
pub(crate) fn membership_changes<'a>(
    held: &'a BTreeSet<String>,
    now: &'a BTreeSet<&'a str>,
) -> (Vec<&'a str>, Vec<&'a str>) {
    let joined = now.iter().copied().filter(|s| !held.contains(*s)).collect();
    let left = held.iter().map(String::as_str).filter(|s| !now.contains(s)).collect();
    (joined, left)
}

/// A membership item.
pub(crate) fn membership_item(root: &CustomerId, segment: &str, since: DateTime<Utc>) -> Item {
    let mut item = crate::items::key_item(keys::segment_membership(root, segment));
    item.insert("segment".into(), string_value(segment));
    item.insert("since".into(), string_value(crate::items::millis(since)));
    item
}

fn member(item: &Item) -> Result<SegmentMember, StoreError> {
    let pk = string_attr(item, "pk")?;
    let customer_id = pk
        .strip_prefix(keys::CUSTOMER_PREFIX)
        .and_then(CustomerId::parse)
        .ok_or_else(|| StoreError::Corrupt("segment member".into()))?;
    Ok(SegmentMember {
        customer_id,
        since: time_attr(item, "since")?,
    })
}

impl TimelineStore {
    /// The segments the group of `root` (a group's root: a conversation's `customer_id`, a
    /// profile's) is in.
    pub async fn memberships_of(&self, root: &CustomerId) -> Result<Vec<SegmentMembership>, StoreError> {
        self.query_prefix(&keys::customer_pk(root), keys::SEGMENT_PREFIX, true)
            .await?
            .iter()
            .map(|item| {
                let sk = string_attr(item, "sk")?;
                Ok(SegmentMembership {
                    segment: sk.trim_start_matches(keys::SEGMENT_PREFIX).to_owned(),
                    since: time_attr(item, "since")?,
                })
            })
            .collect()
    }

    /// One page of `segment`'s members: one Query of the sparse `SegmentIndex`.
    pub async fn segment_members(
        &self,
        segment: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SegmentPage, StoreError> {
        let start = cursor.map(|c| decode_cursor(c, segment)).transpose()?;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(SEGMENT_INDEX)
            .key_condition_expression("#segment = :segment")
            .expression_attribute_names("#segment", "segment")
            .expression_attribute_values(":segment", string_value(segment))
            .limit(i32::try_from(limit.clamp(1, MAX_PAGE_SIZE)).unwrap_or(1))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(dynamo("Query"))?;
        let members = output.items().iter().map(member).collect::<Result<_, _>>()?;
        let next_cursor = match &output.last_evaluated_key {
            Some(key) => Some(URL_SAFE_NO_PAD.encode(string_attr(key, "pk")?)),
            None => None,
        };
        Ok(SegmentPage { members, next_cursor })
    }
}

/// The index position a cursor names: base64url of the last member's `pk`.
fn decode_cursor(cursor: &str, segment: &str) -> Result<Item, StoreError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let pk = String::from_utf8(bytes).map_err(|_| StoreError::BadCursor)?;
    let customer = pk
        .strip_prefix(keys::CUSTOMER_PREFIX)
        .and_then(CustomerId::parse)
        .ok_or(StoreError::BadCursor)?;
    let mut key = crate::items::key_item(keys::segment_membership(&customer, segment));
    key.insert("segment".into(), string_value(segment));
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joining_and_leaving_are_the_differences() {
        let held: BTreeSet<String> = ["high_value".to_owned(), "gone".to_owned()].into();
        let now: BTreeSet<&str> = ["high_value", "enterprise"].into();
        assert_eq!(membership_changes(&held, &now), (vec!["enterprise"], vec!["gone"]));
        assert_eq!(membership_changes(&BTreeSet::new(), &BTreeSet::new()), (vec![], vec![]));
    }

    #[test]
    fn cursors_name_a_member_of_the_segment_and_nothing_else() {
        let customer = CustomerId::generate();
        let cursor = URL_SAFE_NO_PAD.encode(keys::customer_pk(&customer));
        let key = decode_cursor(&cursor, "high_value").unwrap();
        assert_eq!(string_attr(&key, "sk").unwrap(), "SEGMENT#high_value");
        assert_eq!(string_attr(&key, "segment").unwrap(), "high_value");
        for bad in ["", "!!", &URL_SAFE_NO_PAD.encode("HANDLE#phone:+1")] {
            assert!(
                matches!(decode_cursor(bad, "high_value"), Err(StoreError::BadCursor)),
                "{bad}"
            );
        }
    }
}
