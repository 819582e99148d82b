//! The learned state of one host: a tree of path prefixes.
//!
//! Each node is a path prefix with the statistics of the segment
//! that follows it. The root is the empty prefix, so its children are
//! first segments, which is the empty segment for every path that starts with
//! `/`. A node has one child per distinct next segment: a literal value
//! (`users`), the key of a typed value (`{id}`, `{uuid}.png`) or the empty
//! segment of a repeated or trailing slash. Once the next position is learned
//! as a parameter (`learned`), the node keeps only its kept literals and the
//! empty segment as children. Every other value goes to its `parameter`
//! child, into which the subtrees of the folded values were merged.
//!
//! Merging combines sets of hashes by union, so learning from two halves of
//! the traffic and merging gives the same learned positions as learning from
//! all of it. The exceptions are positions below a literal kept beside a
//! parameter, because call counts decide which literals are kept and their
//! merge is an estimate (see [`Combine`]), and subtrees left out at the node cap.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Templated;
use super::patterns::{SplitAt, SplitPositions};
use super::segment::{
    CONSUMER_SEED, SegmentKind, TypedKey, VALUE_SEED, classify_segment, is_placeholder, mix,
    normalise_escapes, stable_hash, typed_value,
};

/// Placeholder written for a position learned as a parameter.
pub(super) const LEARNED_PLACEHOLDER: &str = "{name}";

/// Positions from this segment index on are never learned, and their segments get the fixed rules.
pub(super) const MAX_LEARNED_DEPTH: usize = 32;

/// Maximum length, in bytes, of a segment stored as a literal child.
///
/// Longer segments still count as values of their position, so a position
/// of long names can be learned, but they add no node.
pub(super) const MAX_SEGMENT_BYTES: usize = 128;

/// Calls at a learned position between two checks of its kept literals' shares.
const DEMOTION_CHECK_INTERVAL: u64 = 256;

/// Thresholds and caps taken from the configuration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) min_values: usize,
    pub(super) min_consumers: usize,
    pub(super) literal_share: f64,
    pub(super) max_nodes: usize,
}

/// The smallest distinct 64-bit hashes seen, at most `capacity` of them, in ascending order.
///
/// Keeping the smallest hashes, not the first ones, makes the union of two
/// sets the same whatever the order of the inputs. While fewer than `capacity`
/// distinct values were seen the set has all of them, so comparing its length
/// with a threshold up to `capacity` is exact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(super) struct HashSet64(Vec<u64>);

impl HashSet64 {
    pub(super) fn insert(&mut self, hash: u64, capacity: usize) {
        let Err(position) = self.0.binary_search(&hash) else {
            return;
        };
        if position >= capacity {
            return;
        }
        self.0.insert(position, hash);
        self.0.truncate(capacity);
    }

    pub(super) fn union(&mut self, other: &HashSet64, capacity: usize) {
        for &hash in &other.0 {
            self.insert(hash, capacity);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[cfg(test)]
    pub(super) fn from_test(hashes: &[u64]) -> Self {
        HashSet64(hashes.to_vec())
    }

    /// Restores the invariants after loading: sorted, distinct and at most `capacity` long.
    pub(super) fn normalise(&mut self, capacity: usize) {
        self.0.sort_unstable();
        self.0.dedup();
        self.0.truncate(capacity);
    }
}

/// A path prefix and the statistics of the segment that follows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct Node {
    /// Calls whose path starts with this prefix.
    #[serde(skip_serializing_if = "is_zero")]
    pub(super) calls: u64,
    /// Calls whose path has a segment after this prefix.
    #[serde(skip_serializing_if = "is_zero")]
    pub(super) continued: u64,
    /// Whether the segment after this prefix is learned as a parameter.
    #[serde(skip_serializing_if = "is_false")]
    pub(super) learned: bool,
    /// Hashes of the literal values seen after this prefix, until the position is learned.
    #[serde(skip_serializing_if = "HashSet64::is_empty")]
    pub(super) values: HashSet64,
    /// Hashes of the consumers that sent those values, until it is learned.
    #[serde(skip_serializing_if = "HashSet64::is_empty")]
    pub(super) consumers: HashSet64,
    /// Children by segment text. The standard SipHash hasher stays, although
    /// a fixed-key hash such as FNV is faster on short keys, because clients
    /// choose the segments and could send many that collide under a fixed key.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub(super) children: HashMap<Box<str>, Node>,
    /// The child for every value that is not kept, once the position is learned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) parameter: Option<Box<Node>>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Rule for combining the call counts of two nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Combine {
    /// The nodes counted different calls, as when one state folds a value into its parameter.
    Sum,
    /// The nodes may have counted the same calls, as when two stores' states merge.
    ///
    /// The maximum keeps a merge commutative and idempotent. It underestimates
    /// the total when the nodes saw different calls, which leaves the shares
    /// that decide kept literals about right when the nodes see similar traffic.
    Max,
}

impl Combine {
    fn apply(self, left: u64, right: u64) -> u64 {
        match self {
            Combine::Sum => left.saturating_add(right),
            Combine::Max => left.max(right),
        }
    }
}

impl Node {
    fn reached_thresholds(&self, limits: &Limits) -> bool {
        self.values.len() >= limits.min_values && self.consumers.len() >= limits.min_consumers
    }

    /// Returns true when a child must keep its own endpoint beside the parameter.
    fn keeps_child(key: &str, child: &Node, continued: u64, share: f64) -> bool {
        key.is_empty() || (!is_placeholder(key) && child.calls as f64 >= share * continued as f64)
    }

    /// Turns the next position into a parameter and folds every child that is not kept.
    fn learn(&mut self, limits: &Limits) {
        self.learned = true;
        self.values = HashSet64::default();
        self.consumers = HashSet64::default();
        let continued = self.continued;
        self.fold_children(limits, |key, child| {
            Node::keeps_child(key, child, continued, limits.literal_share)
        });
    }

    /// Folds kept literals whose share fell below half of the threshold; returns true if any was folded.
    fn demote_rare_literals(&mut self, limits: &Limits) -> bool {
        let continued = self.continued;
        let share = limits.literal_share / 2.0;
        let before = self.children.len();
        self.fold_children(limits, |key, child| {
            Node::keeps_child(key, child, continued, share)
        });
        self.children.len() != before
    }

    /// Moves every child for which `keep` is false into the parameter child.
    fn fold_children(&mut self, limits: &Limits, keep: impl Fn(&str, &Node) -> bool) {
        let folded: Vec<Box<str>> = self
            .children
            .iter()
            .filter(|(key, child)| !keep(key, child))
            .map(|(key, _)| key.clone())
            .collect();
        for key in folded {
            let Some(child) = self.children.remove(&key) else {
                continue;
            };
            match &mut self.parameter {
                Some(parameter) => {
                    merge_nodes(
                        parameter,
                        &child,
                        Combine::Sum,
                        limits,
                        &mut NodeBudget::Unlimited,
                    );
                }
                None => self.parameter = Some(Box::new(child)),
            }
        }
    }

    /// Number of nodes below this one.
    pub(super) fn descendants(&self) -> usize {
        let children: usize = self
            .children
            .values()
            .map(|child| 1 + child.descendants())
            .sum();
        let parameter = self
            .parameter
            .as_ref()
            .map_or(0, |child| 1 + child.descendants());
        children + parameter
    }

    /// Restores the invariants of a loaded node: set order, set sizes and the maximum depth.
    pub(super) fn normalise(&mut self, limits: &Limits, depth: usize) {
        if depth >= MAX_LEARNED_DEPTH {
            self.children.clear();
            self.parameter = None;
            self.learned = false;
        }
        if self.learned {
            self.values = HashSet64::default();
            self.consumers = HashSet64::default();
        } else {
            self.values.normalise(limits.min_values);
            self.consumers.normalise(limits.min_consumers);
        }
        for child in self.children.values_mut() {
            child.normalise(limits, depth + 1);
        }
        if let Some(child) = &mut self.parameter {
            child.normalise(limits, depth + 1);
        }
    }

    /// Hash of everything in the subtree that changes a template: learned
    /// positions, the literals kept beside them, and the nodes leading to them.
    /// Zero when the subtree has nothing learned. Independent of map order.
    pub(super) fn fingerprint(&self) -> u64 {
        let mut hash: u64 = if self.learned { 0x5eed_1ea7 } else { 0 };
        for (key, child) in &self.children {
            let child_hash = child.fingerprint();
            if self.learned || child_hash != 0 {
                let key_hash = stable_hash(0, key.as_bytes());
                hash = hash.wrapping_add(mix(key_hash ^ child_hash.rotate_left(17)));
            }
        }
        if let Some(child) = &self.parameter {
            let child_hash = child.fingerprint();
            if child_hash != 0 {
                hash = hash.wrapping_add(mix(child_hash ^ 0x0070_6172_616d));
            }
        }
        hash
    }

    /// Appends the templates of the learned positions below this node, such as `/v1/tenants/{name}`.
    pub(super) fn collect_learned(&self, prefix: &mut String, output: &mut Vec<String>) {
        if self.learned {
            let length = prefix.len();
            prefix.push_str(LEARNED_PLACEHOLDER);
            output.push(prefix.clone());
            if let Some(child) = &self.parameter {
                prefix.push('/');
                child.collect_learned(prefix, output);
            }
            prefix.truncate(length);
        }
        for (key, child) in &self.children {
            let length = prefix.len();
            prefix.push_str(key);
            prefix.push('/');
            child.collect_learned(prefix, output);
            prefix.truncate(length);
        }
    }
}

/// How many nodes a merge may still add to a host.
pub(super) enum NodeBudget {
    /// Folding moves nodes within one tree, so it never adds any.
    Unlimited,
    Remaining(usize),
}

impl NodeBudget {
    fn take(&mut self, count: usize) -> bool {
        match self {
            NodeBudget::Unlimited => true,
            NodeBudget::Remaining(remaining) if *remaining >= count => {
                *remaining -= count;
                true
            }
            NodeBudget::Remaining(_) => false,
        }
    }
}

/// Merges node `other` into `node`, learning positions whose combined sets reach the thresholds.
///
/// A literal at a learned position stays apart when either side had already
/// kept it there, or when its combined share of calls reaches the threshold.
/// Subtrees that `budget` cannot pay for are left out, but their values still
/// count in the sets of their position.
pub(super) fn merge_nodes(
    node: &mut Node,
    other: &Node,
    combine: Combine,
    limits: &Limits,
    budget: &mut NodeBudget,
) {
    node.calls = combine.apply(node.calls, other.calls);
    node.continued = combine.apply(node.continued, other.continued);
    let was_learned = node.learned;
    let kept_before: Vec<Box<str>> = if was_learned {
        node.children.keys().cloned().collect()
    } else {
        Vec::new()
    };
    if !was_learned && !other.learned {
        node.values.union(&other.values, limits.min_values);
        node.consumers.union(&other.consumers, limits.min_consumers);
    }

    for (key, other_child) in &other.children {
        match node.children.get_mut(key) {
            Some(child) => merge_nodes(child, other_child, combine, limits, budget),
            None => {
                if budget.take(1 + other_child.descendants()) {
                    node.children.insert(key.clone(), other_child.clone());
                }
            }
        }
    }
    if let Some(other_parameter) = &other.parameter {
        match &mut node.parameter {
            Some(parameter) => merge_nodes(parameter, other_parameter, combine, limits, budget),
            None => {
                if budget.take(1 + other_parameter.descendants()) {
                    node.parameter = Some(other_parameter.clone());
                }
            }
        }
    }

    if node.learned || other.learned || node.reached_thresholds(limits) {
        node.learned = true;
        node.values = HashSet64::default();
        node.consumers = HashSet64::default();
        let continued = node.continued;
        node.fold_children(limits, |key, child| {
            let kept_by_a_side = (was_learned && kept_before.iter().any(|kept| **kept == *key))
                || (other.learned && other.children.contains_key(key));
            Node::keeps_child(key, child, continued, limits.literal_share)
                || (kept_by_a_side && !is_placeholder(key))
        });
    }
}

/// One call being recorded.
pub(super) struct Observation<'a> {
    consumer: Option<&'a str>,
    consumer_hash: Option<u64>,
    split: SplitPositions,
}

impl<'a> Observation<'a> {
    pub(super) fn new(consumer: Option<&'a str>, split: SplitPositions) -> Self {
        Observation {
            consumer,
            consumer_hash: None,
            split,
        }
    }

    /// Hashes the consumer once per call, and only when a literal value needs it.
    /// A call without a consumer counts as the one unknown consumer.
    fn consumer_hash(&mut self) -> u64 {
        *self.consumer_hash.get_or_insert_with(|| {
            stable_hash(CONSUMER_SEED, self.consumer.unwrap_or_default().as_bytes())
        })
    }
}

/// Changes made by recording one call.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ObserveOutcome {
    /// A position was learned or a kept literal returned to its parameter.
    pub(super) changed_templates: bool,
    /// Nodes were folded, so the node count must be recomputed.
    pub(super) restructured: bool,
}

struct Walk<'a, 'b> {
    limits: &'a Limits,
    observation: &'a mut Observation<'b>,
    node_count: usize,
    outcome: ObserveOutcome,
}

/// Records the path of one call below `root`; `node_count` is the host's count, kept up to date.
pub(super) fn observe_path(
    root: &mut Node,
    path: &str,
    observation: &mut Observation<'_>,
    limits: &Limits,
    node_count: &mut usize,
) -> ObserveOutcome {
    let mut walk = Walk {
        limits,
        observation,
        node_count: *node_count,
        outcome: ObserveOutcome::default(),
    };
    root.calls = root.calls.saturating_add(1);
    observe_position(root, path.split('/'), 0, &mut walk);

    *node_count = if walk.outcome.restructured {
        root.descendants()
    } else {
        walk.node_count
    };
    walk.outcome
}

/// The child a segment leads to.
enum Route<'k> {
    Child(&'k str),
    Parameter,
}

fn observe_position(
    node: &mut Node,
    mut segments: std::str::Split<'_, char>,
    depth: usize,
    walk: &mut Walk<'_, '_>,
) {
    let Some(raw) = segments.next() else {
        return;
    };
    if depth >= MAX_LEARNED_DEPTH {
        return;
    }
    let segment = normalise_escapes(raw);
    let kind = classify_segment(&segment);
    node.continued = node.continued.saturating_add(1);

    let learnable = walk.observation.split.at(depth) == SplitAt::None;
    if !node.learned && learnable && kind == SegmentKind::Literal {
        node.values.insert(
            stable_hash(VALUE_SEED, segment.as_bytes()),
            walk.limits.min_values,
        );
        let consumer = walk.observation.consumer_hash();
        node.consumers.insert(consumer, walk.limits.min_consumers);
        if node.reached_thresholds(walk.limits) {
            node.learn(walk.limits);
            walk.outcome.changed_templates = true;
            walk.outcome.restructured = true;
        }
    }
    if node.learned
        && node.continued.is_multiple_of(DEMOTION_CHECK_INTERVAL)
        && node.demote_rare_literals(walk.limits)
    {
        walk.outcome.changed_templates = true;
        walk.outcome.restructured = true;
    }

    let typed_key;
    let route = if node.learned {
        match kind {
            SegmentKind::Empty => Route::Child(""),
            SegmentKind::Literal if node.children.contains_key(&*segment) => Route::Child(&segment),
            _ => Route::Parameter,
        }
    } else {
        match kind {
            SegmentKind::Typed(templated) => {
                typed_key = TypedKey::new(&templated);
                Route::Child(typed_key.as_str())
            }
            _ => Route::Child(&segment),
        }
    };

    match route {
        Route::Parameter => {
            if node.parameter.is_none() {
                if walk.node_count >= walk.limits.max_nodes {
                    return;
                }
                walk.node_count += 1;
            }
            let parameter = node.parameter.get_or_insert_with(Box::default);
            descend(parameter, segments, depth, walk);
        }
        Route::Child(key) => {
            // One hash lookup for a known segment: the borrow of `child` ends
            // with the early return, so the insert below compiles without a
            // second lookup on the common path.
            if let Some(child) = node.children.get_mut(key) {
                descend(child, segments, depth, walk);
                return;
            }
            if key.len() > MAX_SEGMENT_BYTES || walk.node_count >= walk.limits.max_nodes {
                return;
            }
            walk.node_count += 1;
            let child = node.children.entry(Box::from(key)).or_default();
            descend(child, segments, depth, walk);
        }
    }
}

fn descend(
    child: &mut Node,
    segments: std::str::Split<'_, char>,
    depth: usize,
    walk: &mut Walk<'_, '_>,
) {
    child.calls = child.calls.saturating_add(1);
    observe_position(child, segments, depth + 1, walk);
}

/// Templates `path` by walking the learned tree, using the fixed rules where the tree has no node.
///
/// A segment that is already a placeholder stays as it is, unless its
/// position is learned, where it becomes [`LEARNED_PLACEHOLDER`]. Its value is
/// the placeholder text, because the object id is no longer known.
pub(super) fn template_with_tree(
    root: Option<&Node>,
    path: &str,
    split: SplitPositions,
) -> Templated {
    let mut endpoint = String::with_capacity(path.len() + 8);
    let mut parameters = Vec::new();
    let mut node = root;

    for (index, raw) in path.split('/').enumerate() {
        if index > 0 {
            endpoint.push('/');
        }
        if index >= MAX_LEARNED_DEPTH {
            node = None;
        }
        let segment = normalise_escapes(raw);
        let kind = classify_segment(&segment);
        let split_at = split.at(index);

        let learned = node.filter(|node| node.learned && split_at == SplitAt::None);
        if let Some(current) = learned {
            match kind {
                SegmentKind::Empty => node = current.children.get(""),
                SegmentKind::Literal if current.children.contains_key(&*segment) => {
                    endpoint.push_str(&segment);
                    node = current.children.get(&*segment);
                }
                _ => {
                    endpoint.push_str(LEARNED_PLACEHOLDER);
                    parameters.push(segment.into_owned());
                    node = current.parameter.as_deref();
                }
            }
            continue;
        }

        // The position is not learned, or a split prefix keeps it literal.
        let next = match kind {
            SegmentKind::Typed(templated) if split_at != SplitAt::Literal => {
                templated.push_to(&mut endpoint);
                parameters.push(typed_value(&segment, &templated).to_string());
                let key = TypedKey::new(&templated);
                node.and_then(|node| node.children.get(key.as_str()))
            }
            SegmentKind::Placeholder => {
                endpoint.push_str(&segment);
                parameters.push(segment.to_string());
                node.and_then(|node| node.children.get(&*segment))
            }
            _ => {
                endpoint.push_str(&segment);
                node.and_then(|node| node.children.get(&*segment))
            }
        };
        // Under a split, a position learned before the split was configured
        // folded its literals into the parameter child, so follow that.
        node = next.or_else(|| {
            node.filter(|node| node.learned)
                .and_then(|node| node.parameter.as_deref())
        });
    }

    Templated {
        endpoint,
        parameters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            min_values: 3,
            min_consumers: 2,
            literal_share: 0.5,
            max_nodes: 1000,
        }
    }

    fn observe(root: &mut Node, path: &str, consumer: &str) -> ObserveOutcome {
        let mut observation = Observation::new(Some(consumer), SplitPositions::default());
        let mut count = root.descendants();
        let outcome = observe_path(root, path, &mut observation, &limits(), &mut count);
        assert_eq!(count, root.descendants(), "node count after {path:?}");
        outcome
    }

    fn endpoint(root: &Node, path: &str) -> String {
        template_with_tree(Some(root), path, SplitPositions::default()).endpoint
    }

    #[test]
    fn hash_set_keeps_smallest() {
        let mut set = HashSet64::default();
        for hash in [50, 10, 40, 10, 30, 20] {
            set.insert(hash, 3);
        }
        assert_eq!(set.0, vec![10, 20, 30]);
    }

    #[test]
    fn hash_set_union_order_free() {
        let mut left = HashSet64(vec![1, 5, 9]);
        let mut right = HashSet64(vec![2, 5, 7]);
        let left_copy = left.clone();
        left.union(&right, 4);
        right.union(&left_copy, 4);
        assert_eq!(left, right);
        assert_eq!(left.0, vec![1, 2, 5, 7]);
    }

    #[test]
    fn hash_set_normalise_restores_order() {
        let mut set = HashSet64(vec![9, 3, 3, 7, 1]);
        set.normalise(3);
        assert_eq!(set.0, vec![1, 3, 7]);
    }

    #[test]
    fn learning_folds_values_into_parameter() {
        let mut root = Node::default();
        observe(&mut root, "/t/alpha/x", "a");
        observe(&mut root, "/t/beta/x", "b");
        assert_eq!(
            endpoint(&root, "/t/beta/x"),
            "/t/beta/x",
            "two values are not enough"
        );
        let outcome = observe(&mut root, "/t/gamma/x", "a");
        assert!(
            outcome.changed_templates,
            "the third value learns the position"
        );
        assert_eq!(endpoint(&root, "/t/alpha/x"), "/t/{name}/x");
        assert_eq!(endpoint(&root, "/t/new/x"), "/t/{name}/x");

        let t = &root.children[""].children["t"];
        assert!(t.learned, "position after /t is learned");
        assert!(t.children.is_empty(), "no value had 30% of the calls");
        let parameter = t.parameter.as_deref().expect("parameter child");
        assert_eq!(parameter.calls, 3, "folding adds the calls");
        assert_eq!(parameter.children["x"].calls, 3);
    }

    #[test]
    fn learning_keeps_frequent_literal() {
        let mut root = Node::default();
        for _ in 0..4 {
            observe(&mut root, "/u/me", "a");
        }
        observe(&mut root, "/u/alpha", "a");
        observe(&mut root, "/u/beta", "b");
        assert_eq!(endpoint(&root, "/u/me"), "/u/me", "me has 4 of 6 calls");
        assert_eq!(endpoint(&root, "/u/beta"), "/u/{name}");
    }

    #[test]
    fn merge_sum_adds_and_learns() {
        let mut left = Node::default();
        observe(&mut left, "/t/alpha", "a");
        observe(&mut left, "/t/beta", "b");
        let mut right = Node::default();
        observe(&mut right, "/t/gamma", "c");

        merge_nodes(
            &mut left,
            &right,
            Combine::Sum,
            &limits(),
            &mut NodeBudget::Unlimited,
        );
        assert_eq!(left.calls, 3);
        assert_eq!(
            endpoint(&left, "/t/delta"),
            "/t/{name}",
            "the union reaches 3 values"
        );
    }

    #[test]
    fn merge_max_is_idempotent() {
        let mut root = Node::default();
        for (path, consumer) in [
            ("/t/a/x", "a"),
            ("/t/b/x", "b"),
            ("/t/c/y", "a"),
            ("/u/1", "a"),
        ] {
            observe(&mut root, path, consumer);
        }
        let copy = root.clone();
        merge_nodes(
            &mut root,
            &copy,
            Combine::Max,
            &limits(),
            &mut NodeBudget::Unlimited,
        );
        assert_eq!(
            serde_json::to_value(&root).expect("serialisable"),
            serde_json::to_value(&copy).expect("serialisable"),
            "merging a copy changes nothing"
        );
    }

    #[test]
    fn merge_budget_limits_nodes() {
        let mut root = Node::default();
        let mut other = Node::default();
        observe(&mut other, "/a/b/c", "a");
        merge_nodes(
            &mut root,
            &other,
            Combine::Max,
            &limits(),
            &mut NodeBudget::Remaining(2),
        );
        assert_eq!(
            root.descendants(),
            0,
            "the subtree of 3 nodes does not fit in 2"
        );
        assert_eq!(root.calls, 1, "counts still merge");
    }

    #[test]
    fn fingerprint_ignores_unlearned_nodes() {
        let mut root = Node::default();
        observe(&mut root, "/a/b", "a");
        assert_eq!(root.fingerprint(), 0);
        for (value, consumer) in [("x", "a"), ("y", "b"), ("z", "a")] {
            observe(&mut root, &format!("/a/{value}"), consumer);
        }
        assert_ne!(
            root.fingerprint(),
            0,
            "a learned position changes the fingerprint"
        );
    }

    #[test]
    fn collect_learned_lists_positions() {
        let mut root = Node::default();
        for (value, consumer) in [("x", "a"), ("y", "b"), ("z", "a")] {
            observe(&mut root, &format!("/a/{value}/list"), consumer);
        }
        let mut learned = Vec::new();
        root.collect_learned(&mut String::new(), &mut learned);
        assert_eq!(learned, vec!["/a/{name}".to_string()]);
    }

    #[test]
    fn depth_limit_stops_learning() {
        let mut root = Node::default();
        let deep = "/x".repeat(MAX_LEARNED_DEPTH + 10);
        observe(&mut root, &deep, "a");
        assert_eq!(
            root.descendants(),
            MAX_LEARNED_DEPTH,
            "one node per learned position"
        );
        assert_eq!(
            endpoint(&root, &format!("{deep}/42")),
            format!("{deep}/{{id}}")
        );
    }
}
