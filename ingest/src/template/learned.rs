//! The learning templater: per-host learned state, pins, splits and documented templates.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::config::{TemplaterConfig, TemplaterError};
use super::patterns::{Duplicates, PinIndex, SplitIndex, SplitPositions, TemplateIndex};
use super::segment::{mix, stable_hash};
use super::tree::{
    Combine, Limits, Node, NodeBudget, Observation, merge_nodes, observe_path, template_with_tree,
};

/// Version of the JSON written by [`Templater::to_json`].
///
/// [`Templater::from_json`] rejects every other version, because the learned
/// tree and its hashes may mean something else in another version.
pub const FORMAT_VERSION: u32 = 1;

/// The endpoint of a path and the values of its parameter segments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Templated {
    /// The templated path, such as `/v1/tenants/{name}/users/{id}`.
    pub endpoint: String,
    /// One value per placeholder of `endpoint`, from left to right, such as
    /// `["acme", "42"]`. A typed value with a kept extension gives its stem
    /// (`123` for `123.json`). A segment that was already a placeholder gives
    /// the placeholder text, because its value is unknown.
    pub parameters: Vec<String>,
}

/// Templates documented for one host, with the revision that orders replacements across stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Documented {
    revision: u64,
    templates: Vec<String>,
    #[serde(skip)]
    index: TemplateIndex,
}

impl Documented {
    fn fingerprint(&self) -> u64 {
        let mut hash = mix(self.revision);
        for template in &self.templates {
            hash = mix(hash ^ stable_hash(1, template.as_bytes()));
        }
        hash
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostState {
    root: Node,
    /// Nodes below the root, kept equal to `root.descendants()`.
    #[serde(skip)]
    node_count: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    documented: Option<Documented>,
}

impl HostState {
    /// Merges another store's state of the same host.
    fn merge(&mut self, other: &HostState, limits: &Limits) {
        let remaining = limits.max_nodes.saturating_sub(self.node_count);
        merge_nodes(
            &mut self.root,
            &other.root,
            Combine::Max,
            limits,
            &mut NodeBudget::Remaining(remaining),
        );
        // Subtrees copied from the other state keep its set sizes, which may
        // exceed this configuration's.
        self.root.normalise(limits, 0);
        self.node_count = self.root.descendants();

        // The later revision wins, and the fingerprint breaks ties, so both
        // stores keep the same documented templates whatever the merge order.
        if let Some(theirs) = &other.documented {
            let newer = match &self.documented {
                None => true,
                Some(ours) => {
                    (theirs.revision, theirs.fingerprint()) > (ours.revision, ours.fingerprint())
                }
            };
            if newer {
                self.documented = Some(theirs.clone());
            }
        }
    }

    fn fingerprint(&self) -> u64 {
        let documented = self.documented.as_ref().map_or(0, Documented::fingerprint);
        mix(self.root.fingerprint() ^ documented.rotate_left(29))
    }
}

/// A path templater that learns per host and per path position.
///
/// - Typed values (integers, UUIDs, hex and random ids, dates, emails,
///   tokens) become placeholders at once, by the rules of [`template_path`](super::template_path).
/// - Any other segment becomes `{name}` once its position has received
///   [`TemplaterConfig::min_distinct_values`] distinct values from
///   [`TemplaterConfig::min_distinct_consumers`] consumers. Literals that
///   received a large share of the calls by then keep their own endpoint.
/// - Pinned templates, then documented templates of the host, win over what
///   is learned. Split prefixes are never learned.
///
/// [`observe`](Self::observe) learns from one call and
/// [`template`](Self::template) returns the endpoint of a path or of an
/// endpoint templated earlier. Both expect a path decoded by
/// [`percent_decode_path`](crate::text::percent_decode_path), which keeps
/// `%2F` encoded, so an encoded slash stays inside its segment.
///
/// Stores share what they learned with [`merge`](Self::merge), and save it
/// with [`to_json`](Self::to_json).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Snapshot")]
pub struct Templater {
    config: TemplaterConfig,
    limits: Limits,
    pins: PinIndex,
    splits: SplitIndex,
    /// Learned state by lowercased host name. The empty key is for calls without a host.
    hosts: HashMap<Box<str>, HostState>,
    generation: u64,
}

impl Default for Templater {
    fn default() -> Self {
        let config = TemplaterConfig::default();
        Templater {
            limits: limits_of(&config),
            config,
            pins: PinIndex::default(),
            splits: SplitIndex::default(),
            hosts: HashMap::new(),
            generation: 0,
        }
    }
}

fn limits_of(config: &TemplaterConfig) -> Limits {
    Limits {
        min_values: config.min_distinct_values,
        min_consumers: config.min_distinct_consumers,
        literal_share: config.min_literal_share,
        max_nodes: config.max_nodes_per_host,
    }
}

/// Returns the key of a host: ASCII-lowercased, and empty for a call without a host.
///
/// Allocates only for a host name with uppercase letters.
fn host_key(host: Option<&str>) -> Cow<'_, str> {
    let host = host.unwrap_or_default();
    if host.bytes().any(|byte| byte.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

impl Templater {
    /// Creates a templater with nothing learned.
    ///
    /// Fails when a threshold is out of range or a pinned or split entry cannot be parsed.
    pub fn new(config: TemplaterConfig) -> Result<Self, TemplaterError> {
        config.validate_numbers()?;
        let pins = PinIndex::build(&config.pinned)?;
        let splits = SplitIndex::build(&config.split)?;
        Ok(Templater {
            limits: limits_of(&config),
            config,
            pins,
            splits,
            hosts: HashMap::new(),
            generation: 0,
        })
    }

    pub fn config(&self) -> &TemplaterConfig {
        &self.config
    }

    /// Replaces the configuration and keeps what was learned.
    ///
    /// New thresholds apply to positions not yet learned. A position learned
    /// earlier stays learned, but a new split prefix covering it keeps its
    /// segments literal. On error, the templater is unchanged.
    pub fn set_config(&mut self, config: TemplaterConfig) -> Result<(), TemplaterError> {
        config.validate_numbers()?;
        let pins = PinIndex::build(&config.pinned)?;
        let splits = SplitIndex::build(&config.split)?;
        if config == self.config {
            return Ok(());
        }

        self.limits = limits_of(&config);
        self.config = config;
        self.pins = pins;
        self.splits = splits;
        for state in self.hosts.values_mut() {
            state.root.normalise(&self.limits, 0);
            state.node_count = state.root.descendants();
        }
        self.generation += 1;
        Ok(())
    }

    /// Learns from one call to `path` on `host` by `consumer`.
    ///
    /// Only paths that start with `/` are learned. Paths that match a pinned
    /// or documented template are not learned, because those templates always
    /// win. A call without a consumer counts as one unknown consumer.
    ///
    /// Allocates only when the call adds a node, a host, or has a host name
    /// with uppercase letters or a segment with a lowercase `%xx` escape.
    pub fn observe(&mut self, host: Option<&str>, path: &str, consumer: Option<&str>) {
        if !path.starts_with('/') {
            return;
        }
        let host = host_key(host);
        if self.pins.matches(&host, path) {
            return;
        }

        let split = if self.splits.is_empty() {
            SplitPositions::default()
        } else {
            self.splits.positions(&host, path)
        };
        let mut observation = Observation::new(consumer, split);

        // One hash lookup for a known host; the borrow ends with the early return.
        if let Some(state) = self.hosts.get_mut(&*host) {
            if observe_host(state, path, &mut observation, &self.limits) {
                self.generation += 1;
            }
            return;
        }
        // NOTE: hosts are admitted first come, first served. A client that sends
        // many made-up Host values can fill max_hosts before real hosts arrive,
        // and those then get the fixed rules only.
        if self.hosts.len() >= self.config.max_hosts {
            return;
        }
        let state = self.hosts.entry(host.into()).or_default();
        if observe_host(state, path, &mut observation, &self.limits) {
            self.generation += 1;
        }
    }

    /// Returns the current endpoint of `path` on `host`, with its parameter values.
    ///
    /// The first of these that applies gives the endpoint:
    /// 1. the most specific pinned template that matches,
    /// 2. the most specific documented template of the host that matches,
    /// 3. the learned positions of the host, with the fixed rules for the rest.
    ///
    /// `path` may also be an endpoint returned earlier: its placeholders stay
    /// as they are unless their position is now learned, and its literals at
    /// positions learned since become `{name}`. An empty path gives `/`.
    /// Repeated and trailing slashes are kept.
    ///
    /// Allocates the returned strings, plus a copy of a segment that has a
    /// lowercase `%xx` escape.
    pub fn template(&self, host: Option<&str>, path: &str) -> Templated {
        if path.is_empty() {
            return Templated {
                endpoint: "/".to_string(),
                parameters: Vec::new(),
            };
        }
        let host = host_key(host);
        if let Some(templated) = self.pins.match_path(&host, path) {
            return templated;
        }

        let state = self.hosts.get(&*host);
        if let Some(documented) = state.and_then(|state| state.documented.as_ref())
            && let Some(templated) = documented.index.match_path(path)
        {
            return templated;
        }

        let split = if self.splits.is_empty() {
            SplitPositions::default()
        } else {
            self.splits.positions(&host, path)
        };
        let root = state
            .filter(|_| path.starts_with('/'))
            .map(|state| &state.root);
        template_with_tree(root, path, split)
    }

    /// Replaces the documented templates of `host`, such as those of an OpenAPI document.
    ///
    /// Each template must start with `/` and already contain the base path
    /// of its service (`/svc-a/v1/users/{userId}`), so that two services on
    /// one host stay apart. Parameter names are kept as written, and when two
    /// templates match the same paths the first one wins. An empty list removes
    /// the host's documented templates. A host with documented templates
    /// counts towards `max_hosts` but is kept even beyond it.
    ///
    /// On error, nothing changes and the error names the invalid template.
    pub fn set_documented(
        &mut self,
        host: Option<&str>,
        templates: &[String],
    ) -> Result<(), TemplaterError> {
        let index = TemplateIndex::build(
            templates.iter().map(String::as_str),
            "documented",
            Duplicates::KeepFirst,
        )?;
        let state = self.hosts.entry(host_key(host).into()).or_default();
        let revision = state
            .documented
            .as_ref()
            .map_or(0, |documented| documented.revision)
            + 1;
        state.documented = Some(Documented {
            revision,
            templates: templates.to_vec(),
            index,
        });
        self.generation += 1;
        Ok(())
    }

    /// Adds what another store learned.
    ///
    /// Value and consumer sets combine by union, so a position is learned
    /// after the merge when learning from both stores' calls would learn it.
    /// Call counts combine by maximum, so merging the same state twice changes
    /// nothing. The counts only decide which literals keep their own endpoint
    /// beside a parameter, and with merged counts that decision is an estimate.
    /// Documented templates of a host come from the store that set them last.
    /// The other store's configuration is ignored.
    pub fn merge(&mut self, other: &Templater) {
        let before = self.fingerprint();
        for (host, theirs) in &other.hosts {
            if let Some(ours) = self.hosts.get_mut(host) {
                ours.merge(theirs, &self.limits);
                continue;
            }
            if self.hosts.len() >= self.config.max_hosts && theirs.documented.is_none() {
                continue;
            }
            let mut ours = HostState::default();
            ours.merge(theirs, &self.limits);
            self.hosts.insert(host.clone(), ours);
        }
        if self.fingerprint() != before {
            self.generation += 1;
        }
    }

    /// Counter that changes whenever a template may have changed: a position
    /// learned, a kept literal folded back, a merge, documented templates or
    /// the configuration replaced. Cached results are valid while it is unchanged.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Templates of the learned positions of `host`, sorted, such as `/v1/tenants/{name}`.
    pub fn learned_positions(&self, host: Option<&str>) -> Vec<String> {
        let mut positions = Vec::new();
        if let Some(state) = self.hosts.get(&*host_key(host)) {
            state
                .root
                .collect_learned(&mut String::new(), &mut positions);
        }
        positions.sort();
        positions
    }

    /// Number of hosts with a learned or documented state.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// Number of path positions tracked for `host`.
    pub fn node_count(&self, host: Option<&str>) -> usize {
        self.hosts
            .get(&*host_key(host))
            .map_or(0, |state| state.node_count)
    }

    /// Serialises the configuration and the learned state, with [`FORMAT_VERSION`].
    pub fn to_json(&self) -> String {
        // serde_json fails only on a map key that is not a string or on a
        // failing Serialize impl, and the state has neither.
        serde_json::to_string(self).expect("templater state always serialises to JSON")
    }

    /// Loads a state written by [`to_json`](Self::to_json), on this or another store.
    ///
    /// Fails on invalid JSON, a missing or other format version, an invalid
    /// configuration or an invalid documented template.
    pub fn from_json(text: &str) -> Result<Self, TemplaterError> {
        #[derive(Deserialize)]
        struct VersionProbe {
            format_version: Option<serde_json::Value>,
        }

        let probe: VersionProbe = serde_json::from_str(text)
            .map_err(|error| TemplaterError::InvalidState(error.to_string()))?;
        let version = match probe.format_version {
            None => {
                return Err(TemplaterError::InvalidState(
                    "missing field `format_version`".to_string(),
                ));
            }
            Some(value) => value.as_u64().ok_or_else(|| {
                TemplaterError::InvalidState(format!(
                    "field `format_version` is {value}, not a non-negative integer"
                ))
            })?,
        };
        if version != u64::from(FORMAT_VERSION) {
            return Err(TemplaterError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }

        let snapshot: Snapshot = serde_json::from_str(text)
            .map_err(|error| TemplaterError::InvalidState(error.to_string()))?;
        Templater::try_from(snapshot)
    }

    fn fingerprint(&self) -> u64 {
        self.hosts
            .iter()
            .map(|(host, state)| mix(stable_hash(2, host.as_bytes()) ^ state.fingerprint()))
            .fold(0, u64::wrapping_add)
    }
}

/// Records one call on a host unless a documented template matches; returns true if a template changed.
fn observe_host(
    state: &mut HostState,
    path: &str,
    observation: &mut Observation<'_>,
    limits: &Limits,
) -> bool {
    if let Some(documented) = &state.documented
        && documented.index.matches(path)
    {
        return false;
    }
    let outcome = observe_path(
        &mut state.root,
        path,
        observation,
        limits,
        &mut state.node_count,
    );
    outcome.changed_templates
}

/// The serialised form, written from references so that saving copies nothing.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    format_version: u32,
    generation: u64,
    config: &'a TemplaterConfig,
    hosts: &'a HashMap<Box<str>, HostState>,
}

impl Serialize for Templater {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SnapshotRef {
            format_version: FORMAT_VERSION,
            generation: self.generation,
            config: &self.config,
            hosts: &self.hosts,
        }
        .serialize(serializer)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Snapshot {
    format_version: u64,
    #[serde(default)]
    generation: u64,
    config: TemplaterConfig,
    #[serde(default)]
    hosts: HashMap<String, HostState>,
}

impl TryFrom<Snapshot> for Templater {
    type Error = TemplaterError;

    /// Checks the version and configuration, rebuilds the indexes that are
    /// not saved, and restores the tree invariants that a hand-edited file may break.
    fn try_from(snapshot: Snapshot) -> Result<Self, Self::Error> {
        if snapshot.format_version != u64::from(FORMAT_VERSION) {
            return Err(TemplaterError::UnsupportedVersion {
                found: snapshot.format_version,
                supported: FORMAT_VERSION,
            });
        }

        let mut templater = Templater::new(snapshot.config)?;
        templater.generation = snapshot.generation;
        for (host, mut state) in snapshot.hosts {
            if let Some(documented) = &mut state.documented {
                documented.index = TemplateIndex::build(
                    documented.templates.iter().map(String::as_str),
                    "documented",
                    Duplicates::KeepFirst,
                )?;
            }
            state.root.normalise(&templater.limits, 0);
            state.node_count = state.root.descendants();

            let key = host.to_ascii_lowercase();
            match templater.hosts.get_mut(key.as_str()) {
                Some(existing) => existing.merge(&state, &templater.limits),
                None => {
                    templater.hosts.insert(key.into(), state);
                }
            }
        }
        Ok(templater)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::template::template_path;

    const HOST: Option<&str> = Some("api.example.com");

    fn config(min_values: usize, min_consumers: usize) -> TemplaterConfig {
        TemplaterConfig {
            min_distinct_values: min_values,
            min_distinct_consumers: min_consumers,
            ..TemplaterConfig::default()
        }
    }

    fn with_config(config: TemplaterConfig) -> Templater {
        Templater::new(config).expect("the test configuration is valid")
    }

    fn endpoint(templater: &Templater, path: &str) -> String {
        templater.template(HOST, path).endpoint
    }

    /// Returns a distinct lowercase name per index that no fixed rule templates:
    /// the index in base 12, one word per digit (`birch`, `birch-amber`, ...).
    fn name(index: usize) -> String {
        const WORDS: [&str; 12] = [
            "amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "heron", "iris",
            "juniper", "kestrel", "lumen",
        ];
        let mut words = vec![WORDS[index % WORDS.len()]];
        let mut rest = index / WORDS.len();
        while rest > 0 {
            words.push(WORDS[rest % WORDS.len()]);
            rest /= WORDS.len();
        }
        words.reverse();
        words.join("-")
    }

    /// Observes `pattern` with `{}` replaced by `count` distinct names, from consumers in turn.
    fn observe_names(templater: &mut Templater, pattern: &str, count: usize, consumers: &[&str]) {
        for index in 0..count {
            let path = pattern.replace("{}", &name(index));
            templater.observe(HOST, &path, Some(consumers[index % consumers.len()]));
        }
    }

    #[test]
    fn typed_values_templated_at_once() {
        let templater = Templater::default();
        let cases = [
            ("/v1/orders/42", "/v1/orders/{id}", "42"),
            (
                "/items/550e8400-e29b-41d4-a716-446655440000",
                "/items/{uuid}",
                "550e8400-e29b-41d4-a716-446655440000",
            ),
            (
                "/docs/507f1f77bcf86cd799439011",
                "/docs/{hex}",
                "507f1f77bcf86cd799439011",
            ),
            (
                "/events/01ARZ3NDEKTSV4RRFFQ69G5FAV",
                "/events/{id}",
                "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            ),
            (
                "/share/V1StGXR8_Z5jdHi6B-myT",
                "/share/{id}",
                "V1StGXR8_Z5jdHi6B-myT",
            ),
            ("/t/t_0t3vs8kq2r", "/t/{id}", "t_0t3vs8kq2r"),
            (
                "/v1/customers/cus_9s6XKzkNRiz8i3",
                "/v1/customers/{id}",
                "cus_9s6XKzkNRiz8i3",
            ),
            ("/reports/2024-01-31", "/reports/{date}", "2024-01-31"),
            (
                "/users/a.b@example.com",
                "/users/{email}",
                "a.b@example.com",
            ),
            (
                "/verify/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.dozjgNryP4J3jVmNHl0w5N",
                "/verify/{token}",
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.dozjgNryP4J3jVmNHl0w5N",
            ),
            (
                "/keys/h1:0123456789abcdef0123456789abcdef",
                "/keys/{token}",
                "h1:0123456789abcdef0123456789abcdef",
            ),
            ("/orders/123.json", "/orders/{id}.json", "123"),
        ];
        for (path, expected, value) in cases {
            let templated = templater.template(HOST, path);
            assert_eq!(templated.endpoint, expected, "endpoint of {path:?}");
            assert_eq!(
                templated.parameters,
                vec![value.to_string()],
                "parameters of {path:?}"
            );
        }
    }

    #[test]
    fn empty_state_matches_rules() {
        let templater = Templater::default();
        let paths = [
            "",
            "/",
            "//",
            "*",
            "users/42",
            "/users//42/",
            "/v1/users/me",
            "/apis/v2beta1/pods",
            "/.well-known/openid-configuration",
            "/files/3J98t1WpEZ73CNmQviecrnyi.pdf",
            "/straße/münchen",
        ];
        for path in paths {
            assert_eq!(
                endpoint(&templater, path),
                template_path(path),
                "path {path:?}"
            );
        }
    }

    #[test]
    fn names_learned_at_thresholds() {
        let mut templater = with_config(config(20, 2));
        observe_names(&mut templater, "/v1/tenants/{}/users", 19, &["a", "b"]);
        assert_eq!(
            endpoint(&templater, "/v1/tenants/amber/users"),
            "/v1/tenants/amber/users",
            "19 values are below the threshold of 20"
        );
        assert_eq!(templater.generation(), 0, "nothing learned yet");

        observe_names(&mut templater, "/v1/tenants/{}/users", 20, &["a", "b"]);
        assert_eq!(
            endpoint(&templater, "/v1/tenants/amber/users"),
            "/v1/tenants/{name}/users"
        );
        assert_eq!(
            endpoint(&templater, "/v1/tenants/never-seen/users"),
            "/v1/tenants/{name}/users",
            "a new value at a learned position"
        );
        assert_eq!(
            templater.learned_positions(HOST),
            vec!["/v1/tenants/{name}".to_string()]
        );
        assert_eq!(templater.generation(), 1, "learning changes the generation");
    }

    #[test]
    fn one_consumer_never_learns() {
        let mut templater = with_config(config(20, 2));
        observe_names(&mut templater, "/v1/tenants/{}/users", 100, &["crawler"]);
        assert_eq!(
            endpoint(&templater, "/v1/tenants/amber/users"),
            "/v1/tenants/amber/users"
        );
        assert!(
            templater.learned_positions(HOST).is_empty(),
            "no position learned"
        );
    }

    #[test]
    fn calls_without_consumer_count_once() {
        let mut templater = with_config(config(20, 2));
        for index in 0..40 {
            templater.observe(HOST, &format!("/a/{}", name(index)), None);
        }
        assert!(
            templater.learned_positions(HOST).is_empty(),
            "calls without a consumer are one unknown consumer"
        );
        templater.observe(HOST, "/a/extra", Some("known"));
        assert_eq!(
            templater.learned_positions(HOST),
            vec!["/a/{name}".to_string()]
        );
    }

    #[test]
    fn versions_and_words_stay_literal() {
        let mut templater = Templater::default();
        let paths = [
            "/api/v1/users",
            "/api/v2beta1/users",
            "/api/v1/order-items",
            "/api/v1/users/me",
            "/api/v1.2/payment-methods",
            "/api/v1/users/settings",
        ];
        for round in 0..200 {
            for path in paths {
                templater.observe(HOST, path, Some(&format!("consumer-{}", round % 7)));
            }
        }
        for path in paths {
            assert_eq!(endpoint(&templater, path), path, "path {path:?}");
        }
        assert!(
            templater.learned_positions(HOST).is_empty(),
            "few values per position"
        );
    }

    #[test]
    fn frequent_literal_keeps_endpoint() {
        let mut templater = with_config(config(20, 2));
        for index in 0..19 {
            for _ in 0..2 {
                templater.observe(HOST, "/v1/users/me", Some("app"));
            }
            templater.observe(HOST, &format!("/v1/users/{}", name(index)), Some("admin"));
        }
        templater.observe(HOST, &format!("/v1/users/{}", name(19)), Some("admin"));

        assert_eq!(
            templater.learned_positions(HOST),
            vec!["/v1/users/{name}".to_string()]
        );
        assert_eq!(
            endpoint(&templater, "/v1/users/me"),
            "/v1/users/me",
            "me has 2/3 of the calls"
        );
        assert_eq!(endpoint(&templater, "/v1/users/amber"), "/v1/users/{name}");
        assert_eq!(
            endpoint(&templater, "/v1/users/someone-new"),
            "/v1/users/{name}"
        );
    }

    #[test]
    fn rare_kept_literal_folds_back() {
        let mut templater = with_config(config(20, 2));
        for index in 0..20 {
            templater.observe(HOST, "/v1/users/me", Some("app"));
            templater.observe(HOST, &format!("/v1/users/{}", name(index)), Some("admin"));
        }
        assert_eq!(
            endpoint(&templater, "/v1/users/me"),
            "/v1/users/me",
            "kept at learning"
        );
        let generation = templater.generation();

        // 1,000 more calls to other users bring me below 5% of the calls.
        for index in 0..1000 {
            templater.observe(HOST, &format!("/v1/users/{}", name(index)), Some("admin"));
        }
        assert_eq!(endpoint(&templater, "/v1/users/me"), "/v1/users/{name}");
        assert!(
            templater.generation() > generation,
            "folding back changes the generation"
        );
    }

    #[test]
    fn literal_suffixes_stay_apart() {
        let mut templater = with_config(config(20, 2));
        assert_eq!(
            endpoint(&templater, "/faq/12/feedback"),
            "/faq/{id}/feedback"
        );
        assert_eq!(endpoint(&templater, "/faq/12/related"), "/faq/{id}/related");

        observe_names(&mut templater, "/faq/{}/feedback", 20, &["a", "b"]);
        observe_names(&mut templater, "/faq/{}/related", 20, &["a", "b"]);
        assert_eq!(
            endpoint(&templater, "/faq/how-to/feedback"),
            "/faq/{name}/feedback"
        );
        assert_eq!(
            endpoint(&templater, "/faq/how-to/related"),
            "/faq/{name}/related"
        );
    }

    #[test]
    fn escape_case_gives_one_endpoint() {
        let mut templater = with_config(config(20, 2));
        assert_eq!(endpoint(&templater, "/files/a%2fb"), "/files/a%2Fb");
        assert_eq!(endpoint(&templater, "/files/a%2Fb"), "/files/a%2Fb");
        assert_eq!(
            endpoint(&templater, "/files/a%2Fb/meta"),
            "/files/a%2Fb/meta",
            "an encoded slash does not split the segment"
        );

        for index in 0..19 {
            let path = format!("/files/dir%2F{}", name(index));
            templater.observe(HOST, &path, Some(["a", "b"][index % 2]));
        }
        templater.observe(HOST, "/files/dir%2famber", Some("a"));
        assert!(
            templater.learned_positions(HOST).is_empty(),
            "dir%2famber and dir%2Famber are one value, so there are 19"
        );
    }

    #[test]
    fn documented_literals_match_decoded_paths() {
        let mut templater = Templater::default();
        templater
            .set_documented(HOST, &["/docs/caf%C3%A9/{page}".to_string()])
            .expect("valid template");
        assert_eq!(
            endpoint(&templater, "/docs/café/intro"),
            "/docs/caf%C3%A9/{page}"
        );
    }

    #[test]
    fn pinned_template_wins() {
        let mut config = config(20, 2);
        config.pinned = vec![
            "/v1/files/{name}".to_string(),
            "other.example.com/v1/blobs/{blob}".to_string(),
        ];
        let mut templater = with_config(config);
        templater
            .set_documented(HOST, &["/v1/files/{fileId}".to_string()])
            .expect("valid template");

        let templated = templater.template(HOST, "/v1/files/42");
        assert_eq!(
            templated.endpoint, "/v1/files/{name}",
            "the pin beats the rules and the spec"
        );
        assert_eq!(templated.parameters, vec!["42".to_string()]);
        assert_eq!(
            endpoint(&templater, "/v1/files/report.pdf"),
            "/v1/files/{name}"
        );
        assert_eq!(
            templater
                .template(Some("other.example.com"), "/v1/blobs/x")
                .endpoint,
            "/v1/blobs/{blob}"
        );
        assert_eq!(
            endpoint(&templater, "/v1/blobs/x"),
            "/v1/blobs/x",
            "a host pin applies to its host only"
        );

        let nodes = templater.node_count(HOST);
        observe_names(&mut templater, "/v1/files/{}", 50, &["a", "b"]);
        assert_eq!(
            templater.node_count(HOST),
            nodes,
            "pinned paths are not learned"
        );
    }

    #[test]
    fn split_prefix_stays_literal() {
        let mut config = config(20, 2);
        config.split = vec!["/v1/refunds".to_string()];
        let mut templater = with_config(config);
        observe_names(&mut templater, "/v1/{}/list", 30, &["a", "b"]);
        templater.observe(HOST, "/v1/refunds/list", Some("a"));

        assert_eq!(
            templater.learned_positions(HOST),
            vec!["/v1/{name}".to_string()]
        );
        assert_eq!(endpoint(&templater, "/v1/amber/list"), "/v1/{name}/list");
        assert_eq!(endpoint(&templater, "/v1/refunds/list"), "/v1/refunds/list");
        assert_eq!(
            endpoint(&templater, "/v1/refunds/re_3MtwBwLkdIwHu7ix"),
            "/v1/refunds/{id}",
            "typed values after a split prefix are still templated"
        );
    }

    #[test]
    fn split_wildcard_never_learns() {
        let mut config = config(20, 2);
        config.split = vec!["/v1/*".to_string()];
        let mut templater = with_config(config);
        observe_names(&mut templater, "/v1/{}", 60, &["a", "b"]);
        assert!(
            templater.learned_positions(HOST).is_empty(),
            "the position after /v1 is split"
        );
        assert_eq!(endpoint(&templater, "/v1/amber"), "/v1/amber");
        assert_eq!(endpoint(&templater, "/v1/42"), "/v1/{id}");
    }

    #[test]
    fn split_added_after_learning() {
        let mut templater = with_config(config(20, 2));
        observe_names(&mut templater, "/v1/{}/items", 20, &["a", "b"]);
        observe_names(&mut templater, "/v1/amber/items/{}", 20, &["a", "b"]);
        assert_eq!(
            endpoint(&templater, "/v1/birch/items/x"),
            "/v1/{name}/items/{name}"
        );
        let generation = templater.generation();

        let mut config = templater.config().clone();
        config.split = vec!["/v1/*".to_string()];
        templater.set_config(config).expect("valid split");
        assert_eq!(
            endpoint(&templater, "/v1/birch/items/x"),
            "/v1/birch/items/{name}",
            "the split keeps the segment literal and deeper learning still applies"
        );
        assert!(
            templater.generation() > generation,
            "a new configuration changes the generation"
        );
    }

    #[test]
    fn documented_template_wins() {
        let mut templater = with_config(config(20, 2));
        let documented = [
            "/svc-a/v1/users/{userId}".to_string(),
            "/svc-a/v1/users/me".to_string(),
            "/svc-b/v1/users/{id}/avatar.{format}".to_string(),
        ];
        templater
            .set_documented(HOST, &documented)
            .expect("valid templates");

        let templated = templater.template(HOST, "/svc-a/v1/users/42");
        assert_eq!(templated.endpoint, "/svc-a/v1/users/{userId}");
        assert_eq!(templated.parameters, vec!["42".to_string()]);
        assert_eq!(
            endpoint(&templater, "/svc-a/v1/users/me"),
            "/svc-a/v1/users/me"
        );

        let templated = templater.template(HOST, "/svc-b/v1/users/7/avatar.png");
        assert_eq!(templated.endpoint, "/svc-b/v1/users/{id}/avatar.{format}");
        assert_eq!(
            templated.parameters,
            vec!["7".to_string(), "png".to_string()]
        );
        assert_eq!(
            endpoint(&templater, "/svc-b/v1/users/7"),
            "/svc-b/v1/users/{id}",
            "an undocumented path of the second service gets the rules"
        );
        assert_eq!(
            templater
                .template(Some("other.example.com"), "/svc-a/v1/users/42")
                .endpoint,
            "/svc-a/v1/users/{id}",
            "documented templates apply to their host only"
        );
    }

    #[test]
    fn documented_paths_not_learned() {
        let mut templater = with_config(config(20, 2));
        templater
            .set_documented(HOST, &["/v1/tenants/{tenant}".to_string()])
            .expect("valid template");
        observe_names(&mut templater, "/v1/tenants/{}", 40, &["a", "b"]);
        assert!(
            templater.learned_positions(HOST).is_empty(),
            "documented paths are skipped"
        );
        assert_eq!(templater.node_count(HOST), 0);
    }

    #[test]
    fn documented_replaced_and_cleared() {
        let mut templater = Templater::default();
        templater
            .set_documented(HOST, &["/v1/users/{userId}".to_string()])
            .expect("valid template");
        templater
            .set_documented(HOST, &["/v1/users/{uid}".to_string()])
            .expect("valid template");
        assert_eq!(endpoint(&templater, "/v1/users/x"), "/v1/users/{uid}");
        templater
            .set_documented(HOST, &[])
            .expect("an empty list is valid");
        assert_eq!(endpoint(&templater, "/v1/users/x"), "/v1/users/x");
    }

    #[test]
    fn invalid_documented_rejected() {
        let mut templater = Templater::default();
        templater
            .set_documented(HOST, &["/v1/users/{userId}".to_string()])
            .expect("valid template");
        let error = templater
            .set_documented(
                HOST,
                &["/v1/ok".to_string(), "/v1/users/{userId".to_string()],
            )
            .expect_err("an unclosed brace is invalid");
        let message = error.to_string();
        assert!(message.contains("documented"), "{message}");
        assert!(message.contains("/v1/users/{userId"), "{message}");
        assert!(message.contains("closing"), "{message}");
        assert_eq!(
            endpoint(&templater, "/v1/users/x"),
            "/v1/users/{userId}",
            "a failed replacement keeps the previous templates"
        );
    }

    #[test]
    fn earlier_endpoints_retemplated() {
        let mut templater = with_config(config(20, 2));
        templater.observe(HOST, "/v1/tenants/acme/users", Some("a"));
        assert_eq!(
            endpoint(&templater, "/v1/tenants/acme/users"),
            "/v1/tenants/acme/users"
        );

        observe_names(&mut templater, "/v1/tenants/{}/users", 20, &["a", "b"]);
        let cases = [
            ("/v1/tenants/acme/users", "/v1/tenants/{name}/users"),
            ("/v1/tenants/{name}/users", "/v1/tenants/{name}/users"),
            ("/v1/tenants/{id}/users", "/v1/tenants/{name}/users"),
            ("/v1/orders/{id}", "/v1/orders/{id}"),
            ("/v1/orders/{id}.json", "/v1/orders/{id}.json"),
            (
                "/v1/orders/{uuid}/items/{id}",
                "/v1/orders/{uuid}/items/{id}",
            ),
        ];
        for (recorded, expected) in cases {
            assert_eq!(
                endpoint(&templater, recorded),
                expected,
                "recorded {recorded:?}"
            );
        }
    }

    #[test]
    fn parameter_values_in_order() {
        let mut templater = with_config(config(20, 2));
        observe_names(&mut templater, "/v1/tenants/{}/users", 20, &["a", "b"]);
        let templated = templater.template(HOST, "/v1/tenants/acme/users/42/files/123.json");
        assert_eq!(
            templated.endpoint,
            "/v1/tenants/{name}/users/{id}/files/{id}.json"
        );
        assert_eq!(
            templated.parameters,
            vec!["acme".to_string(), "42".to_string(), "123".to_string()]
        );
        let templated = templater.template(HOST, "/v1/tenants/{name}/users");
        assert_eq!(
            templated.parameters,
            vec!["{name}".to_string()],
            "a placeholder gives itself"
        );
    }

    #[test]
    fn value_and_consumer_sets_capped() {
        // Two consumers of the three required, so the position keeps counting values.
        let mut templater = with_config(config(20, 3));
        for index in 0..100 {
            let consumer = format!("c{}", index % 2);
            templater.observe(HOST, &format!("/a/{}", name(index)), Some(&consumer));
        }
        let position = &templater.hosts["api.example.com"].root.children[""].children["a"];
        assert_eq!(
            position.values.len(),
            20,
            "values capped at min_distinct_values"
        );
        assert_eq!(position.consumers.len(), 2);

        // Ten consumers but 19 values, below the 20 required.
        let mut templater = with_config(config(20, 3));
        for index in 0..19 {
            let consumer = format!("c{}", index % 10);
            templater.observe(HOST, &format!("/a/{}", name(index)), Some(&consumer));
        }
        let position = &templater.hosts["api.example.com"].root.children[""].children["a"];
        assert_eq!(position.values.len(), 19);
        assert_eq!(
            position.consumers.len(),
            3,
            "consumers capped at min_distinct_consumers"
        );
    }

    #[test]
    fn host_cap_falls_back_to_rules() {
        let mut config = config(20, 2);
        config.max_hosts = 2;
        let mut templater = with_config(config);
        for host in ["one.example.com", "two.example.com", "three.example.com"] {
            for index in 0..40 {
                let path = format!("/t/{}", name(index));
                templater.observe(Some(host), &path, Some(["a", "b"][index % 2]));
            }
        }
        assert_eq!(templater.host_count(), 2);
        assert_eq!(
            templater
                .template(Some("two.example.com"), "/t/amber")
                .endpoint,
            "/t/{name}"
        );
        let templated = templater.template(Some("three.example.com"), "/t/amber/42");
        assert_eq!(
            templated.endpoint, "/t/amber/{id}",
            "rules only beyond the host cap"
        );
    }

    #[test]
    fn node_cap_falls_back_to_rules() {
        let mut config = config(60, 2);
        config.max_nodes_per_host = 10;
        let mut templater = with_config(config);
        for index in 0..50 {
            templater.observe(HOST, &format!("/n{index}/x"), Some(["a", "b"][index % 2]));
        }
        assert_eq!(templater.node_count(HOST), 10, "nodes stop at the cap");
        assert_eq!(
            endpoint(&templater, "/n45/x/7"),
            "/n45/x/{id}",
            "rules from the first untracked position on"
        );

        // Values past the cap still count, so the position is learned and its nodes fold.
        for index in 50..60 {
            templater.observe(HOST, &format!("/n{index}/x"), Some(["a", "b"][index % 2]));
        }
        assert_eq!(
            templater.learned_positions(HOST),
            vec!["/{name}".to_string()]
        );
        assert_eq!(
            templater.node_count(HOST),
            3,
            "the empty root segment, {{name}} and x"
        );
        assert_eq!(endpoint(&templater, "/n45/x/7"), "/{name}/x/{id}");
    }

    #[test]
    fn host_names_ignore_case() {
        let mut templater = with_config(config(20, 2));
        for index in 0..20 {
            let host = if index % 2 == 0 {
                "API.Example.com"
            } else {
                "api.example.com"
            };
            templater.observe(
                Some(host),
                &format!("/t/{}", name(index)),
                Some(["a", "b"][index % 2]),
            );
        }
        assert_eq!(templater.host_count(), 1);
        assert_eq!(
            templater.template(Some("Api.Example.Com"), "/t/x").endpoint,
            "/t/{name}"
        );
    }

    #[test]
    fn paths_without_slash_not_learned() {
        let mut templater = Templater::default();
        templater.observe(HOST, "*", Some("a"));
        templater.observe(HOST, "users/42", Some("a"));
        templater.observe(HOST, "", Some("a"));
        assert_eq!(templater.host_count(), 0);
        assert_eq!(endpoint(&templater, "*"), "*");
    }

    #[test]
    fn odd_paths_do_not_panic() {
        let mut templater = with_config(config(2, 1));
        let long_segment = "x".repeat(100_000);
        let many_segments = "/a".repeat(10_000);
        let paths = [
            "",
            "*",
            "/",
            "//",
            "///x//",
            "/\u{0}/\u{7f}/\u{fffd}",
            "/%",
            "/%e",
            "/%zz/%2f/%",
            "/{",
            "/}",
            "/{}",
            "/{a}{b}",
            long_segment.as_str(),
            many_segments.as_str(),
        ];
        for path in paths {
            for consumer in [None, Some("a"), Some("b")] {
                templater.observe(HOST, path, consumer);
            }
            let templated = templater.template(HOST, path);
            if !path.is_empty() {
                assert_eq!(
                    templated.endpoint.matches('/').count(),
                    path.matches('/').count(),
                    "slashes of {:?}",
                    &path[..path.len().min(40)]
                );
            }
        }
    }

    #[test]
    fn generation_tracks_changes() {
        let mut templater = with_config(config(20, 2));
        observe_names(&mut templater, "/t/{}", 19, &["a", "b"]);
        assert_eq!(templater.generation(), 0, "observing without learning");
        observe_names(&mut templater, "/t/{}", 20, &["a", "b"]);
        assert_eq!(templater.generation(), 1, "the position is learned");
        observe_names(&mut templater, "/t/{}", 40, &["a", "b"]);
        assert_eq!(
            templater.generation(),
            1,
            "more values at a learned position"
        );

        let copy = templater.clone();
        templater.merge(&copy);
        assert_eq!(templater.generation(), 1, "merging a copy changes nothing");
        templater
            .set_documented(HOST, &["/docs/{page}".to_string()])
            .expect("valid template");
        assert_eq!(templater.generation(), 2, "documented templates changed");
    }

    /// Calls with several learned positions, nested ones among them, from 5 consumers.
    fn mixed_traffic(seed: u64, count: usize) -> Vec<(String, String)> {
        let mut random = seed;
        let mut next = move |bound: usize| {
            random = random.wrapping_add(0x9e37_79b9_7f4a_7c15);
            (mix(random) % bound as u64) as usize
        };
        let mut calls = Vec::with_capacity(count);
        for _ in 0..count {
            let path = match next(10) {
                0 => format!("/v1/users/{}", next(100_000)),
                1 => "/v1/users/me".to_string(),
                2 => format!("/v1/users/{}/orders", next(100_000)),
                3 => format!("/v1/tenants/{}/users", name(next(400))),
                4 => format!("/v1/tenants/{}/settings", name(next(400))),
                5 | 6 => format!(
                    "/repos/{}/{}/issues/{}",
                    name(next(300)),
                    name(next(300)),
                    next(5000)
                ),
                7 => format!("/articles/{}-{}", name(next(150)), name(next(150))),
                8 => "/health".to_string(),
                _ => format!(
                    "/v1/orders/{:08x}-0000-4000-8000-{:012x}",
                    next(1 << 30),
                    next(1 << 40)
                ),
            };
            calls.push((path, format!("consumer-{}", next(5))));
        }
        calls
    }

    fn learn(templater: &mut Templater, calls: &[(String, String)]) {
        for (path, consumer) in calls {
            templater.observe(HOST, path, Some(consumer));
        }
    }

    #[test]
    fn merge_of_halves_equals_all() {
        let mut calls = mixed_traffic(7, 6000);
        // Each half has 30 projects with one board each, below the threshold
        // of 50, so only the union learns the projects and then the boards.
        for index in 0..60 {
            let path = format!(
                "/v1/projects/{}/boards/{}",
                name(1000 + index),
                name(2000 + index)
            );
            calls.push((path, format!("consumer-{}", index % 5)));
        }
        let mut all = Templater::default();
        learn(&mut all, &calls);

        let (even, odd): (Vec<_>, Vec<_>) = calls
            .iter()
            .cloned()
            .enumerate()
            .partition(|(index, _)| index % 2 == 0);
        let even: Vec<_> = even.into_iter().map(|(_, call)| call).collect();
        let odd: Vec<_> = odd.into_iter().map(|(_, call)| call).collect();
        let mut left = Templater::default();
        learn(&mut left, &even);
        let mut right = Templater::default();
        learn(&mut right, &odd);
        let projects = "/v1/projects/{name}".to_string();
        assert!(
            !left.learned_positions(HOST).contains(&projects),
            "one half alone"
        );
        assert!(
            !right.learned_positions(HOST).contains(&projects),
            "other half alone"
        );

        left.merge(&right);
        let expected = vec![
            "/articles/{name}".to_string(),
            "/repos/{name}".to_string(),
            "/repos/{name}/{name}".to_string(),
            projects,
            "/v1/projects/{name}/boards/{name}".to_string(),
            "/v1/tenants/{name}".to_string(),
        ];
        assert_eq!(
            all.learned_positions(HOST),
            expected,
            "learned from all calls"
        );
        assert_eq!(
            left.learned_positions(HOST),
            expected,
            "learned from two merged halves"
        );
        for (path, _) in &calls {
            assert_eq!(endpoint(&left, path), endpoint(&all, path), "path {path:?}");
        }
    }

    #[test]
    fn merge_order_does_not_matter() {
        let calls = mixed_traffic(11, 4000);
        let mut first = Templater::default();
        learn(&mut first, &calls[..1500]);
        let mut second = Templater::default();
        learn(&mut second, &calls[1500..]);

        let mut first_then_second = first.clone();
        first_then_second.merge(&second);
        let mut second_then_first = second.clone();
        second_then_first.merge(&first);
        assert_eq!(
            first_then_second.learned_positions(HOST),
            second_then_first.learned_positions(HOST)
        );
        for (path, _) in &calls {
            assert_eq!(
                endpoint(&first_then_second, path),
                endpoint(&second_then_first, path),
                "path {path:?}"
            );
        }
    }

    #[test]
    fn merge_twice_changes_nothing() {
        let calls = mixed_traffic(3, 3000);
        let mut ours = Templater::default();
        learn(&mut ours, &calls[..1000]);
        let mut theirs = Templater::default();
        learn(&mut theirs, &calls[1000..]);
        theirs
            .set_documented(HOST, &["/docs/{page}".to_string()])
            .expect("valid template");

        ours.merge(&theirs);
        let once: serde_json::Value = serde_json::from_str(&ours.to_json()).expect("valid JSON");
        let generation = ours.generation();
        ours.merge(&theirs);
        let twice: serde_json::Value = serde_json::from_str(&ours.to_json()).expect("valid JSON");
        assert_eq!(once, twice, "the second merge changes no state");
        assert_eq!(
            ours.generation(),
            generation,
            "the second merge keeps the generation"
        );
        assert_eq!(
            endpoint(&ours, "/docs/intro"),
            "/docs/{page}",
            "documented templates merge"
        );
    }

    #[test]
    fn json_round_trip() {
        let config = TemplaterConfig {
            pinned: vec!["/v1/files/{name}".to_string()],
            split: vec!["/v1/refunds".to_string()],
            ..TemplaterConfig::default()
        };
        let mut templater = with_config(config);
        learn(&mut templater, &mixed_traffic(5, 3000));
        templater
            .set_documented(HOST, &["/docs/{page}".to_string()])
            .expect("valid template");

        let json = templater.to_json();
        let loaded = Templater::from_json(&json).expect("the saved state loads");
        let reloaded: serde_json::Value =
            serde_json::from_str(&loaded.to_json()).expect("valid JSON");
        let original: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(
            reloaded, original,
            "saving the loaded state gives the same JSON"
        );
        assert_eq!(original["format_version"], 1);
        assert_eq!(loaded.generation(), templater.generation());
        assert_eq!(loaded.config(), templater.config());
        assert_eq!(loaded.node_count(HOST), templater.node_count(HOST));
        for path in [
            "/v1/files/x",
            "/docs/intro",
            "/repos/a/b/issues/1",
            "/v1/refunds/x",
        ] {
            assert_eq!(
                endpoint(&loaded, path),
                endpoint(&templater, path),
                "path {path:?}"
            );
        }
    }

    #[test]
    fn other_versions_rejected() {
        let mut state: serde_json::Value =
            serde_json::from_str(&Templater::default().to_json()).expect("valid JSON");
        state["format_version"] = 2.into();
        let error = Templater::from_json(&state.to_string()).expect_err("version 2 is unknown");
        assert!(
            matches!(
                error,
                TemplaterError::UnsupportedVersion {
                    found: 2,
                    supported: 1
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("discard the state"), "{error}");

        state
            .as_object_mut()
            .expect("an object")
            .remove("format_version");
        let error = Templater::from_json(&state.to_string()).expect_err("no version");
        assert!(error.to_string().contains("format_version"), "{error}");
    }

    #[test]
    fn invalid_state_rejected() {
        let cases = [
            ("not json", "invalid templater state"),
            ("{\"format_version\": 1}", "config"),
            ("{\"format_version\": \"1\"}", "not a non-negative integer"),
            (
                "{\"format_version\": 1, \"config\": {\"min_distinct_values\": 0}}",
                "min_distinct_values",
            ),
            (
                "{\"format_version\": 1, \"config\": {}, \"hosts\": {\"h\": {\"root\": {}, \
                 \"documented\": {\"revision\": 1, \"templates\": [\"nope\"]}}}}",
                "nope",
            ),
            (
                "{\"format_version\": 1, \"config\": {}, \"extra\": 1}",
                "extra",
            ),
        ];
        for (text, expected) in cases {
            let error = Templater::from_json(text).expect_err(text);
            assert!(
                error.to_string().contains(expected),
                "state {text:?}: {error}"
            );
        }
    }

    #[test]
    fn loading_restores_invariants() {
        let text = "{\"format_version\": 1, \"config\": {\"min_distinct_values\": 3}, \"hosts\": \
                    {\"API.example.com\": {\"root\": {\"children\": {\"\": {\"children\": \
                    {\"a\": {\"values\": [9, 3, 3, 7, 1], \"children\": {\"x\": {}}}}}}}}}}";
        let templater = Templater::from_json(text).expect("valid state");
        let root = &templater.hosts["api.example.com"].root;
        assert_eq!(
            root.children[""].children["a"].values,
            crate::template::tree::HashSet64::from_test(&[1, 3, 7])
        );
        assert_eq!(templater.node_count(HOST), 3);
    }

    #[test]
    fn config_validation_errors() {
        type Change = fn(&mut TemplaterConfig);
        let cases: [(Change, &str); 7] = [
            (
                |config| config.min_distinct_values = 1,
                "min_distinct_values",
            ),
            (
                |config| config.min_distinct_values = 5000,
                "min_distinct_values",
            ),
            (
                |config| config.min_distinct_consumers = 0,
                "min_distinct_consumers",
            ),
            (|config| config.min_literal_share = 0.0, "min_literal_share"),
            (
                |config| config.min_literal_share = f64::NAN,
                "min_literal_share",
            ),
            (|config| config.pinned = vec!["v1/{".to_string()], "pinned"),
            (
                |config| config.split = vec!["/v1/{kind}".to_string()],
                "split",
            ),
        ];
        for (change, expected) in cases {
            let mut config = TemplaterConfig::default();
            change(&mut config);
            let error = Templater::new(config).expect_err(expected);
            assert!(error.to_string().contains(expected), "{error}");
        }
        assert!(
            Templater::new(TemplaterConfig::default()).is_ok(),
            "the default is valid"
        );
    }

    #[test]
    fn failed_set_config_changes_nothing() {
        let mut templater = Templater::default();
        let config = TemplaterConfig {
            pinned: vec!["/ok/{a}".to_string(), "/bad/{".to_string()],
            ..TemplaterConfig::default()
        };
        assert!(templater.set_config(config).is_err(), "an invalid pin");
        assert_eq!(templater.config(), &TemplaterConfig::default());
        assert_eq!(templater.generation(), 0);
    }

    /// Fresh values for each learned position of [`mixed_traffic`].
    fn fresh_paths() -> impl Strategy<Value = Vec<String>> {
        let name = "[a-z][a-z0-9]{2,12}";
        let slug = "[a-z]{3,10}(-[a-z0-9]{3,10}){0,3}";
        (
            name,
            name,
            slug,
            slug,
            0..1_000_000u64,
            "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        )
            .prop_map(|(owner, repo, tenant, article, id, uuid)| {
                vec![
                    format!("/repos/{owner}/{repo}/issues/{id}"),
                    format!("/v1/tenants/{tenant}/users"),
                    format!("/v1/tenants/{tenant}/settings"),
                    format!("/articles/{article}"),
                    format!("/v1/users/{id}/orders"),
                    format!("/v1/orders/{uuid}"),
                ]
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn fresh_values_add_no_endpoint(seed in any::<u64>(), batches in prop::collection::vec(fresh_paths(), 1..8)) {
            let calls = mixed_traffic(seed, 4000);
            let mut templater = Templater::default();
            learn(&mut templater, &calls);
            let learned = templater.learned_positions(HOST);
            for position in ["/articles/{name}", "/repos/{name}", "/repos/{name}/{name}", "/v1/tenants/{name}"] {
                prop_assert!(learned.iter().any(|known| known == position), "{} not learned: {:?}", position, learned);
            }

            let known: BTreeSet<String> = calls.iter().map(|(path, _)| endpoint(&templater, path)).collect();
            for path in batches.iter().flatten() {
                prop_assert!(known.contains(&endpoint(&templater, path)), "new endpoint {} for {}", endpoint(&templater, path), path);
                templater.observe(HOST, path, Some("newcomer"));
                prop_assert!(known.contains(&endpoint(&templater, path)), "new endpoint after observing {}", path);
            }
        }

        #[test]
        fn any_path_keeps_slashes(
            host in proptest::option::of("[A-Za-z.]{0,12}"),
            paths in prop::collection::vec(any::<String>(), 1..20),
            consumer in proptest::option::of("[a-c]"),
        ) {
            let mut templater = Templater::new(config(2, 1)).expect("valid");
            for path in &paths {
                templater.observe(host.as_deref(), path, consumer.as_deref());
                templater.observe(host.as_deref(), &format!("/{path}"), consumer.as_deref());
            }
            for path in &paths {
                let path = format!("/{path}");
                let templated = templater.template(host.as_deref(), &path);
                prop_assert_eq!(templated.endpoint.matches('/').count(), path.matches('/').count());
                let open_brace = '{';
                let placeholders = templated.endpoint.matches(open_brace).count();
                prop_assert!(templated.parameters.len() <= placeholders);
            }
        }
    }
}
