//! The merge forest: which customers are one person. Pure: the store loads the profiles
//! involved, asks this module what a merge or an unmerge changes, and writes exactly that in one
//! transaction.
//!
//! Every customer is a node. An active merge is an edge from the merged customer (the source
//! group's root at the time) to the survivor (the target group's root). Edges form a forest; a
//! tree is one person, its root the survivor whose id the API shows. Each node caches its root
//! (`root`), so resolving any member is one read. Timeline entries never move: they stay in the
//! partition of the customer that recorded them, and a group's timeline is the merge of its
//! members' partitions. Hence an unmerge, which only cuts an edge, gives both sides back exactly
//! the timelines they had.

use std::collections::{BTreeMap, BTreeSet};

use throughline_model::{CustomerId, MergeId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// The survivor this customer was merged into, and by which merge.
    pub parent: Option<(CustomerId, MergeId)>,
    /// Cached: the root of this node's tree.
    pub root: CustomerId,
}

/// The nodes a merge or unmerge touches: whole groups, as loaded from their profiles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Forest {
    nodes: BTreeMap<CustomerId, Node>,
}

/// One node's new place after an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeChange {
    pub customer: CustomerId,
    pub parent: Option<(CustomerId, MergeId)>,
    pub root: CustomerId,
}

/// What an operation changes: the nodes whose root or parent changed, and every root whose
/// member set changed (with the new set; empty when it is no longer a root or has no members).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub changes: Vec<NodeChange>,
    pub members: BTreeMap<CustomerId, BTreeSet<CustomerId>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("the customers are already one customer")]
    AlreadyMerged,
    #[error("customer {0} is not loaded")]
    Unknown(CustomerId),
    #[error("merge {0} is not active")]
    NotMerged(MergeId),
}

impl Forest {
    pub(crate) fn insert(&mut self, customer: CustomerId, node: Node) {
        self.nodes.insert(customer, node);
    }

    pub(crate) fn node(&self, customer: &CustomerId) -> Option<&Node> {
        self.nodes.get(customer)
    }

    /// Every customer in the forest (the property tests walk them all).
    #[cfg(test)]
    pub(crate) fn customers(&self) -> impl Iterator<Item = &CustomerId> {
        self.nodes.keys()
    }

    /// The root, found by walking parents (the cached `root` is what this must equal).
    pub(crate) fn walk_to_root(&self, customer: &CustomerId) -> Result<CustomerId, GraphError> {
        let mut current = customer.clone();
        for _ in 0..=self.nodes.len() {
            match &self.get(&current)?.parent {
                Some((parent, _)) => current = parent.clone(),
                None => return Ok(current),
            }
        }
        unreachable!("parents form a forest: no path is longer than the number of nodes")
    }

    /// Every customer whose root is `root`, the root included.
    pub(crate) fn group(&self, root: &CustomerId) -> BTreeSet<CustomerId> {
        self.nodes
            .iter()
            .filter(|(_, n)| &n.root == root)
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// The members of `root`'s group, the root excluded: what the root's profile stores.
    pub(crate) fn members(&self, root: &CustomerId) -> BTreeSet<CustomerId> {
        let mut group = self.group(root);
        group.remove(root);
        group
    }

    fn get(&self, customer: &CustomerId) -> Result<&Node, GraphError> {
        self.nodes
            .get(customer)
            .ok_or_else(|| GraphError::Unknown(customer.clone()))
    }

    /// Merges the group of `source` into the group of `target`: the source's root gets the
    /// target's root as parent; the target's root survives.
    pub(crate) fn merge(
        &mut self,
        source: &CustomerId,
        target: &CustomerId,
        merge: MergeId,
    ) -> Result<Plan, GraphError> {
        let (source_root, target_root) = (self.get(source)?.root.clone(), self.get(target)?.root.clone());
        if source_root == target_root {
            return Err(GraphError::AlreadyMerged);
        }
        let before = self.clone();
        self.nodes.get_mut(&source_root).expect("loaded").parent = Some((target_root, merge));
        Ok(self.recompute(&before))
    }

    /// Undoes `merge`: cuts its edge, so the merged customer and everything merged into it
    /// before become a group of their own again.
    pub(crate) fn unmerge(&mut self, merge: &MergeId) -> Result<Plan, GraphError> {
        let child = self
            .nodes
            .iter()
            .find(|(_, n)| n.parent.as_ref().is_some_and(|(_, m)| m == merge))
            .map(|(c, _)| c.clone())
            .ok_or_else(|| GraphError::NotMerged(merge.clone()))?;
        let before = self.clone();
        self.nodes.get_mut(&child).expect("found").parent = None;
        Ok(self.recompute(&before))
    }

    /// Re-derives every cached root from the parents and reports what differs from `before`.
    fn recompute(&mut self, before: &Forest) -> Plan {
        let roots: Vec<(CustomerId, CustomerId)> = self
            .nodes
            .keys()
            .map(|c| (c.clone(), self.walk_to_root(c).expect("every parent is loaded")))
            .collect();
        for (customer, root) in roots {
            self.nodes.get_mut(&customer).expect("loaded").root = root;
        }
        let changes: Vec<NodeChange> = self
            .nodes
            .iter()
            .filter(|(c, n)| before.nodes.get(*c) != Some(*n))
            .map(|(c, n)| NodeChange {
                customer: c.clone(),
                parent: n.parent.clone(),
                root: n.root.clone(),
            })
            .collect();
        let affected_roots: BTreeSet<CustomerId> = self
            .nodes
            .iter()
            .filter(|(c, _)| changes.iter().any(|ch| &ch.customer == *c))
            .flat_map(|(c, n)| [n.root.clone(), before.nodes[c].root.clone()])
            .collect();
        let members = affected_roots
            .into_iter()
            .map(|root| {
                let members = if self.nodes[&root].root == root {
                    self.members(&root)
                } else {
                    BTreeSet::new()
                };
                (root, members)
            })
            .collect();
        Plan { changes, members }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id(n: usize) -> CustomerId {
        CustomerId::parse(&format!("cus_{n:026}")).unwrap()
    }

    fn mg(n: usize) -> MergeId {
        MergeId::parse(&format!("mg_{n:026}")).unwrap()
    }

    fn singletons(n: usize) -> Forest {
        let mut forest = Forest::default();
        for i in 0..n {
            forest.insert(
                id(i),
                Node {
                    parent: None,
                    root: id(i),
                },
            );
        }
        forest
    }

    #[test]
    fn a_chain_of_merges_resolves_to_one_survivor_and_unmerge_splits_it_back() {
        let mut forest = singletons(3);
        forest.merge(&id(0), &id(1), mg(1)).unwrap();
        let plan = forest.merge(&id(1), &id(2), mg(2)).unwrap();
        // The chain 0 → 1 → 2: both earlier customers now resolve to 2.
        assert_eq!(forest.node(&id(0)).unwrap().root, id(2));
        assert_eq!(plan.members[&id(2)], BTreeSet::from([id(0), id(1)]));
        assert_eq!(plan.members[&id(1)], BTreeSet::new(), "1 is no longer a root");
        assert_eq!(forest.merge(&id(0), &id(2), mg(3)), Err(GraphError::AlreadyMerged));

        // Undo the first merge while the second stands: 0 leaves, 1 stays with 2.
        let plan = forest.unmerge(&mg(1)).unwrap();
        assert_eq!(forest.node(&id(0)).unwrap().root, id(0));
        assert_eq!(forest.node(&id(1)).unwrap().root, id(2));
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.members[&id(2)], BTreeSet::from([id(1)]));
        assert_eq!(forest.unmerge(&mg(1)), Err(GraphError::NotMerged(mg(1))));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Merge(usize, usize),
        /// Unmerge the k-th active merge (modulo their number).
        Unmerge(usize),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                (0..8usize, 0..8usize).prop_map(|(a, b)| Op::Merge(a, b)),
                (0..8usize).prop_map(Op::Unmerge),
            ],
            0..40,
        )
    }

    /// Each customer's own timeline: entries never move, whatever merges happen.
    fn group_timeline(forest: &Forest, root: &CustomerId) -> BTreeSet<(CustomerId, usize)> {
        forest
            .group(root)
            .into_iter()
            .flat_map(|c| (0..3).map(move |k| (c.clone(), k)))
            .collect()
    }

    proptest! {
        /// After any sequence of merges and unmerges: cached roots equal walked roots, the
        /// groups partition the customers, every group's timeline is exactly its members'
        /// entries, and undoing a merge at once restores the forest exactly.
        #[test]
        fn merge_and_unmerge_keep_the_ledger_invariants(ops in ops()) {
            let mut forest = singletons(8);
            let mut active: Vec<MergeId> = Vec::new();
            for (step, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Merge(a, b) => {
                        let before = forest.clone();
                        let merge = mg(step);
                        match forest.merge(&id(a), &id(b), merge.clone()) {
                            Ok(plan) => {
                                prop_assert!(!plan.changes.is_empty());
                                // Undo at once: exactly the forest before.
                                let mut undone = forest.clone();
                                undone.unmerge(&merge).unwrap();
                                prop_assert_eq!(&undone, &before);
                                active.push(merge);
                            }
                            Err(GraphError::AlreadyMerged) => {
                                prop_assert_eq!(before.node(&id(a)).unwrap().root.clone(), before.node(&id(b)).unwrap().root.clone());
                                prop_assert_eq!(&forest, &before, "a refused merge changes nothing");
                            }
                            Err(e) => prop_assert!(false, "{e}"),
                        }
                    }
                    Op::Unmerge(k) if !active.is_empty() => {
                        let merge = active.remove(k % active.len());
                        forest.unmerge(&merge).unwrap();
                    }
                    Op::Unmerge(_) => {}
                }
                let mut seen = BTreeSet::new();
                for customer in forest.customers() {
                    let root = forest.walk_to_root(customer).unwrap();
                    prop_assert_eq!(&forest.node(customer).unwrap().root, &root);
                    prop_assert!(forest.node(&root).unwrap().parent.is_none());
                    if customer == &root {
                        let timeline = group_timeline(&forest, &root);
                        for entry in &timeline {
                            prop_assert!(seen.insert(entry.clone()), "an entry in two timelines");
                        }
                    }
                }
                prop_assert_eq!(seen.len(), 8 * 3, "every entry on exactly one timeline");
                prop_assert_eq!(
                    forest.customers().filter(|c| forest.node(c).unwrap().parent.is_some()).count(),
                    active.len(),
                    "one edge per active merge"
                );
            }
            // Unmerging everything gives every customer back alone.
            for merge in active.iter().rev() {
                forest.unmerge(merge).unwrap();
            }
            prop_assert_eq!(forest, singletons(8));
        }
    }
}
