//! Matching observed endpoints against documented operations.
//!
//! The index keeps two tables: the operations of the latest revision of every
//! spec, and the operations that earlier revisions had and the latest one no
//! longer has. Each table groups its operations by method, segment count and
//! literal first segment, so a lookup only tries templates that could match.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::catalog::SpecRevision;
use super::parse::{ApiSpec, SpecOperation};
use super::path::{Segment, Template, comparison_key, endpoint_segments};
use super::server::split_host_port;
use crate::text;

/// Relation of an endpoint to the API descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecStatus {
    /// Receives traffic and is documented, not deprecated, in the latest revision.
    Documented,
    /// Receives traffic and no spec documents it.
    Shadow,
    /// Receives traffic although deprecated, or removed from the latest revision.
    Zombie,
    /// Documented without traffic. [`SpecCatalog::status_of`](super::SpecCatalog::status_of)
    /// never returns it. The caller assigns it to documented operations that no
    /// endpoint matched.
    Orphan,
}

impl SpecStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SpecStatus::Documented => "documented",
            SpecStatus::Shadow => "shadow",
            SpecStatus::Zombie => "zombie",
            SpecStatus::Orphan => "orphan",
        }
    }
}

impl fmt::Display for SpecStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an endpoint is a zombie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZombieReason {
    /// The latest revision documents the operation as deprecated.
    Deprecated,
    /// An earlier revision documented the operation and the latest does not.
    Removed,
}

impl ZombieReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ZombieReason::Deprecated => "deprecated",
            ZombieReason::Removed => "removed",
        }
    }
}

impl fmt::Display for ZombieReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operation of a loaded spec revision, named by spec and revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentedOperation {
    /// Name the spec was loaded under.
    pub spec: String,
    /// 1-based number of the revision among the revisions of the spec.
    pub revision: usize,
    /// `info.version` of that revision.
    pub version: Option<String>,
    pub host: Option<String>,
    pub method: String,
    /// Documented path template, such as `/svc-a/users/{userId}`.
    pub path: String,
    pub deprecated: bool,
}

/// Status of one endpoint, with the operation that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecMatch {
    pub status: SpecStatus,
    /// Set when `status` is [`SpecStatus::Zombie`].
    pub reason: Option<ZombieReason>,
    /// The matched operation, or `None` for a shadow endpoint. For a removed
    /// operation, it comes from the last revision that documented it.
    pub operation: Option<DocumentedOperation>,
}

impl SpecMatch {
    pub fn shadow() -> SpecMatch {
        SpecMatch {
            status: SpecStatus::Shadow,
            reason: None,
            operation: None,
        }
    }

    /// Returns the name of the spec that documents the endpoint.
    pub fn spec(&self) -> Option<&str> {
        self.operation
            .as_ref()
            .map(|operation| operation.spec.as_str())
    }

    /// Returns the documented path template that matched.
    pub fn documented_path(&self) -> Option<&str> {
        self.operation
            .as_ref()
            .map(|operation| operation.path.as_str())
    }
}

/// A host an operation is served on, as the index compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostPattern {
    /// Lowercase, without the brackets of an IPv6 address.
    name: String,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses `name`, `name:port`, `[v6]` or `[v6]:port`.
    pub(super) fn parse(host: &str) -> Result<HostPattern, String> {
        let (name, port, _) =
            split_host_port(host).map_err(|reason| format!("host {host:?} {reason}"))?;
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let valid = !name.is_empty()
            && !name
                .bytes()
                .any(|b| b.is_ascii_whitespace() || matches!(b, b'/' | b'{' | b'}' | b'\\'));
        if !valid {
            return Err(format!(
                "host {host:?} is not a host name with an optional port"
            ));
        }
        Ok(HostPattern { name, port })
    }

    /// Writes the host in the form operations store it: lowercase, IPv6 in brackets.
    pub(super) fn render(&self) -> String {
        let name = if self.name.contains(':') {
            format!("[{}]", self.name)
        } else {
            self.name.clone()
        };
        match self.port {
            Some(port) => format!("{name}:{port}"),
            None => name,
        }
    }
}

/// The host of an observed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RequestHost {
    name: String,
    port: Option<u16>,
}

impl RequestHost {
    pub(super) fn parse(host: &str) -> RequestHost {
        let (name, port) = text::split_host_port(host.trim());
        RequestHost {
            name: name.trim_end_matches('.').to_ascii_lowercase(),
            port,
        }
    }
}

/// Rates how well an operation's host fits a request's host, higher being closer.
///
/// apitrail's parsers store the port apart from the host (in attribute
/// `port`), so a request host usually has none. Ports are therefore compared
/// only when both sides name one. A request without a host can be any host,
/// so it fits every operation, and host-less operations first.
fn host_fit(operation: Option<&HostPattern>, request: Option<&RequestHost>) -> Option<u8> {
    match (operation, request) {
        (None, _) => Some(1),
        (Some(_), None) => Some(0),
        (Some(operation), Some(request)) => {
            if operation.name != request.name {
                return None;
            }
            match (operation.port, request.port) {
                (Some(documented), Some(requested)) if documented != requested => None,
                (Some(_), Some(_)) => Some(3),
                _ => Some(2),
            }
        }
    }
}

/// One operation in a table of the index.
#[derive(Debug, Clone)]
pub(super) struct IndexedOperation {
    pub(super) documented: DocumentedOperation,
    host: Option<HostPattern>,
    template: Template,
}

impl IndexedOperation {
    /// Returns `None` for an operation whose path or host does not parse,
    /// which the catalog rejects before it stores the operation.
    fn new(
        spec: &str,
        revision: usize,
        revision_spec: &ApiSpec,
        operation: &SpecOperation,
    ) -> Option<Self> {
        let template = Template::parse(&operation.path).ok()?;
        let host = match operation.host.as_deref() {
            Some(host) => Some(HostPattern::parse(host).ok()?),
            None => None,
        };
        Some(IndexedOperation {
            documented: DocumentedOperation {
                spec: spec.to_string(),
                revision: revision + 1,
                version: revision_spec.version.clone(),
                host: operation.host.clone(),
                method: operation.method.clone(),
                path: operation.path.clone(),
                deprecated: operation.deprecated,
            },
            host,
            template,
        })
    }

    /// Orders two matches: the more specific template, then the closer host,
    /// then not deprecated, then the smaller spec name and path, so that the
    /// result does not depend on load order.
    fn compare(&self, fit: u8, other: &IndexedOperation, other_fit: u8) -> Ordering {
        let (own, others) = (&self.documented, &other.documented);
        self.template
            .compare_specificity(&other.template)
            .then(fit.cmp(&other_fit))
            .then(others.deprecated.cmp(&own.deprecated))
            .then(others.spec.cmp(&own.spec))
            .then(others.path.cmp(&own.path))
    }
}

/// Operations grouped by uppercase method, then by segment count, then by
/// the literal first segment of their template.
#[derive(Debug, Clone, Default)]
struct OperationTable {
    operations: Vec<IndexedOperation>,
    buckets: HashMap<String, HashMap<usize, Bucket>>,
}

/// Positions in [`OperationTable::operations`] of the templates of one method
/// and segment count. Splitting on the first segment pays off because every
/// template under a base path such as `/svc-a` starts with the same literal.
#[derive(Debug, Clone, Default)]
struct Bucket {
    by_first_literal: HashMap<String, Vec<usize>>,
    /// Templates whose first segment is a parameter or a mixed segment.
    other: Vec<usize>,
}

impl OperationTable {
    fn push(&mut self, operation: IndexedOperation) {
        let segments = &operation.template.segments;
        let bucket = self
            .buckets
            .entry(operation.documented.method.to_ascii_uppercase())
            .or_default()
            .entry(segments.len())
            .or_default();
        let positions = match segments.first() {
            Some(Segment::Literal(first)) => {
                bucket.by_first_literal.entry(first.clone()).or_default()
            }
            _ => &mut bucket.other,
        };
        positions.push(self.operations.len());
        self.operations.push(operation);
    }

    fn best(
        &self,
        method: &str,
        segments: &[&str],
        host: Option<&RequestHost>,
    ) -> Option<&IndexedOperation> {
        let bucket = self.buckets.get(method)?.get(&segments.len())?;
        let same_first = segments
            .first()
            .and_then(|first| bucket.by_first_literal.get(*first))
            .map_or(&[][..], Vec::as_slice);

        let mut best: Option<(&IndexedOperation, u8)> = None;
        for &position in same_first.iter().chain(&bucket.other) {
            let candidate = &self.operations[position];
            let Some(fit) = host_fit(candidate.host.as_ref(), host) else {
                continue;
            };
            if !candidate.template.matches(segments) {
                continue;
            }
            let better = best.is_none_or(|(current, current_fit)| {
                candidate.compare(fit, current, current_fit) == Ordering::Greater
            });
            if better {
                best = Some((candidate, fit));
            }
        }
        best.map(|(operation, _)| operation)
    }
}

/// The result of a lookup: the operation and whether it was removed.
pub(super) struct Found<'a> {
    pub(super) operation: &'a DocumentedOperation,
    pub(super) removed: bool,
}

/// Lookup structure over every spec of a catalog, rebuilt when a spec changes.
#[derive(Debug, Clone, Default)]
pub(super) struct MatchIndex {
    latest: OperationTable,
    removed: OperationTable,
}

impl MatchIndex {
    pub(super) fn build(specs: &BTreeMap<String, Vec<SpecRevision>>) -> MatchIndex {
        let mut index = MatchIndex::default();
        for (name, revisions) in specs {
            let Some(latest_position) = revisions.len().checked_sub(1) else {
                continue;
            };

            let latest = &revisions[latest_position].spec;
            let mut seen: HashSet<OperationKey> = HashSet::new();
            for operation in &latest.operations {
                seen.insert(operation_key(operation));
                if let Some(indexed) =
                    IndexedOperation::new(name, latest_position, latest, operation)
                {
                    index.latest.push(indexed);
                }
            }

            // Newest first, so a removed operation names the last revision that had it.
            for position in (0..latest_position).rev() {
                let earlier = &revisions[position].spec;
                for operation in &earlier.operations {
                    if !seen.insert(operation_key(operation)) {
                        continue;
                    }
                    if let Some(indexed) = IndexedOperation::new(name, position, earlier, operation)
                    {
                        index.removed.push(indexed);
                    }
                }
            }
        }
        index
    }

    /// Finds the best documented operation for an endpoint: among the latest
    /// revisions first, then among removed operations.
    pub(super) fn find(
        &self,
        host: Option<&str>,
        method: &str,
        endpoint: &str,
    ) -> Option<Found<'_>> {
        let segments = endpoint_segments(endpoint)?;
        let method = method.trim().to_ascii_uppercase();
        let host = host.map(RequestHost::parse);

        if let Some(operation) = self.latest.best(&method, &segments, host.as_ref()) {
            return Some(Found {
                operation: &operation.documented,
                removed: false,
            });
        }
        self.removed
            .best(&method, &segments, host.as_ref())
            .map(|operation| Found {
                operation: &operation.documented,
                removed: true,
            })
    }

    /// Returns the operations of the latest revisions.
    pub(super) fn latest(&self) -> impl Iterator<Item = &DocumentedOperation> {
        self.latest
            .operations
            .iter()
            .map(|operation| &operation.documented)
    }

    /// Returns the operations of the latest revisions whose host fits `host`,
    /// by the rule of [`MatchIndex::find`].
    pub(super) fn latest_for_host(
        &self,
        host: Option<&str>,
    ) -> impl Iterator<Item = &DocumentedOperation> {
        let host = host.map(RequestHost::parse);
        self.latest
            .operations
            .iter()
            .filter(move |operation| host_fit(operation.host.as_ref(), host.as_ref()).is_some())
            .map(|operation| &operation.documented)
    }
}

/// Identity of an operation across revisions: host, method and template
/// without parameter names, so renaming `{id}` to `{userId}` removes nothing.
pub(super) type OperationKey = (Option<String>, String, String);

pub(super) fn operation_key(operation: &SpecOperation) -> OperationKey {
    (
        operation.host.clone(),
        operation.method.clone(),
        comparison_key(&operation.path),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(host: &str) -> HostPattern {
        HostPattern::parse(host).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn host_pattern_round_trips() {
        let cases = [
            ("API.example.com", "api.example.com"),
            ("api.example.com.:8443", "api.example.com:8443"),
            ("[2001:DB8::1]:8080", "[2001:db8::1]:8080"),
            ("[::1]", "[::1]"),
        ];
        for (host, expected) in cases {
            assert_eq!(pattern(host).render(), expected, "host {host:?}");
        }
    }

    #[test]
    fn host_fit_cases() {
        let named = pattern("api.example.com");
        let with_port = pattern("api.example.com:8443");
        let request = |host: &str| RequestHost::parse(host);
        let cases = [
            (None, None, Some(1), "no host on either side"),
            (
                None,
                Some(request("x.example.com")),
                Some(1),
                "operation on any host",
            ),
            (Some(&named), None, Some(0), "request without a host"),
            (
                Some(&named),
                Some(request("API.example.com")),
                Some(2),
                "same name",
            ),
            (
                Some(&named),
                Some(request("api.example.com:9000")),
                Some(2),
                "port ignored",
            ),
            (
                Some(&with_port),
                Some(request("api.example.com:8443")),
                Some(3),
                "same port",
            ),
            (
                Some(&with_port),
                Some(request("api.example.com")),
                Some(2),
                "request without port",
            ),
            (
                Some(&with_port),
                Some(request("api.example.com:9000")),
                None,
                "other port",
            ),
            (
                Some(&named),
                Some(request("www.example.com")),
                None,
                "other name",
            ),
        ];
        for (operation, request, expected, case) in cases {
            assert_eq!(host_fit(operation, request.as_ref()), expected, "{case}");
        }
    }

    #[test]
    fn status_names() {
        let statuses = [
            (SpecStatus::Documented, "documented"),
            (SpecStatus::Shadow, "shadow"),
            (SpecStatus::Zombie, "zombie"),
            (SpecStatus::Orphan, "orphan"),
        ];
        for (status, name) in statuses {
            assert_eq!(status.as_str(), name, "as_str of {status:?}");
            let json = serde_json::to_string(&status).expect("serializes");
            assert_eq!(json, format!("\"{name}\""), "JSON of {status:?}");
        }
        assert_eq!(ZombieReason::Removed.to_string(), "removed", "reason");
    }
}
