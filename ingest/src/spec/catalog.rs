//! The versioned collection of API descriptions that endpoint statuses are computed from.
//!
//! A [`SpecCatalog`] keeps, for every spec name, the revisions loaded in load
//! order. A revision is one loaded document, with its load time and content
//! checksum. The word revision avoids a clash with `info.version`, the version
//! label the API gives itself, which each revision also records.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::error::SpecError;
use super::matching::{
    DocumentedOperation, HostPattern, MatchIndex, SpecMatch, SpecStatus, ZombieReason,
    operation_key,
};
use super::parse::{ApiSpec, SpecOperation, parse_spec};
use super::path::{Template, collapse_slashes};

/// Version of the layout [`SpecCatalog`] is serialized in.
pub const CATALOG_FORMAT_VERSION: u32 = 1;

/// Maximum length of a spec name in bytes.
const MAX_SPEC_NAME_BYTES: usize = 128;

/// One loaded document of a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecRevision {
    /// Checksum of the document's content, such as the one [`content_checksum`] returns.
    pub checksum: String,
    /// Load time in microseconds since the Unix epoch, UTC.
    pub loaded_at_micros: i64,
    pub spec: ApiSpec,
}

/// What [`SpecCatalog::load`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadKind {
    /// The name was new: the spec now has its first revision.
    New,
    /// The content differed from the latest revision and was added as a new revision.
    Updated,
    /// The content had the checksum of the latest revision, so nothing was added.
    Unchanged,
}

impl LoadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadKind::New => "new",
            LoadKind::Updated => "updated",
            LoadKind::Unchanged => "unchanged",
        }
    }
}

/// Result of loading a document into the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadOutcome {
    pub kind: LoadKind,
    /// 1-based number of the latest revision after the load.
    pub revision: usize,
    /// Operations in the latest revision.
    pub operations: usize,
    /// Deprecated operations in the latest revision.
    pub deprecated_operations: usize,
    /// Operations of the latest revision that the previous revision did not have.
    pub added_operations: usize,
    /// Operations of the previous revision that the latest revision does not have.
    pub removed_operations: usize,
}

/// Error of loading into or deserializing a [`SpecCatalog`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "invalid spec name {name:?}: use 1 to 128 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    InvalidName { name: String },

    #[error("invalid checksum for spec {spec:?}: the checksum must not be empty")]
    EmptyChecksum { spec: String },

    #[error("invalid operation {position} ({method} {path}) of spec {spec:?}: {reason}")]
    InvalidOperation {
        spec: String,
        /// 0-based position in `ApiSpec::operations`.
        position: usize,
        method: String,
        path: String,
        reason: String,
    },

    #[error(transparent)]
    Document(#[from] SpecError),

    #[error(
        "unsupported catalog format version {found}; this build reads version {CATALOG_FORMAT_VERSION}"
    )]
    UnsupportedFormatVersion { found: u32 },

    #[error("invalid catalog: {message}")]
    InvalidCatalog { message: String },
}

/// API descriptions by name, each with its revisions, and an index to match endpoints.
///
/// Serializes as `{"format_version": 1, "specs": [{"name", "revisions": [...]}]}`.
/// Deserializing checks the format version, names and operations, and rebuilds
/// the index.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "StoredCatalog")]
pub struct SpecCatalog {
    /// Revisions in load order. Every list has at least one revision.
    specs: BTreeMap<String, Vec<SpecRevision>>,
    index: MatchIndex,
}

impl PartialEq for SpecCatalog {
    fn eq(&self, other: &Self) -> bool {
        self.specs == other.specs
    }
}

impl SpecCatalog {
    pub fn new() -> SpecCatalog {
        SpecCatalog::default()
    }

    /// Adds `spec` as the latest revision of `name`, unless `checksum` equals
    /// the checksum of the latest revision.
    ///
    /// Content equal to an older revision is added again as the latest, since
    /// loading it rolls the spec back. Methods are stored in uppercase, hosts
    /// in lowercase and paths with repeated slashes collapsed. An operation
    /// whose method, host or path is invalid rejects the whole load.
    pub fn load(
        &mut self,
        name: &str,
        mut spec: ApiSpec,
        checksum: String,
        loaded_at_micros: i64,
    ) -> Result<LoadOutcome, CatalogError> {
        validate_name(name)?;
        if checksum.trim().is_empty() {
            return Err(CatalogError::EmptyChecksum {
                spec: name.to_string(),
            });
        }
        normalise_operations(name, &mut spec.operations)?;

        let revisions = self.specs.entry(name.to_string()).or_default();
        if let Some(latest) = revisions.last()
            && latest.checksum == checksum
        {
            return Ok(LoadOutcome {
                kind: LoadKind::Unchanged,
                revision: revisions.len(),
                operations: latest.spec.operations.len(),
                deprecated_operations: count_deprecated(&latest.spec),
                added_operations: 0,
                removed_operations: 0,
            });
        }

        let previous: HashSet<_> = revisions
            .last()
            .map(|latest| latest.spec.operations.iter().map(operation_key).collect())
            .unwrap_or_default();
        let current: HashSet<_> = spec.operations.iter().map(operation_key).collect();
        let outcome = LoadOutcome {
            kind: if revisions.is_empty() {
                LoadKind::New
            } else {
                LoadKind::Updated
            },
            revision: revisions.len() + 1,
            operations: spec.operations.len(),
            deprecated_operations: count_deprecated(&spec),
            added_operations: current.difference(&previous).count(),
            removed_operations: previous.difference(&current).count(),
        };

        // NOTE: revisions are never pruned, because the removed status needs
        // the operations of earlier revisions. A spec reloaded with changes
        // every day grows the catalog by one revision a day.
        revisions.push(SpecRevision {
            checksum,
            loaded_at_micros,
            spec,
        });
        self.index = MatchIndex::build(&self.specs);
        Ok(outcome)
    }

    /// Parses a document and loads it under `name` with [`content_checksum`] of its bytes.
    pub fn load_document(
        &mut self,
        name: &str,
        bytes: &[u8],
        loaded_at_micros: i64,
    ) -> Result<LoadOutcome, CatalogError> {
        validate_name(name)?;
        let spec = parse_spec(bytes)?;
        self.load(name, spec, content_checksum(bytes), loaded_at_micros)
    }

    /// Removes a spec with all its revisions and returns whether it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        let existed = self.specs.remove(name).is_some();
        if existed {
            self.index = MatchIndex::build(&self.specs);
        }
        existed
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Returns the spec names in ascending order.
    pub fn spec_names(&self) -> impl Iterator<Item = &str> {
        self.specs.keys().map(String::as_str)
    }

    /// Returns the revisions of a spec, oldest first.
    pub fn revisions(&self, name: &str) -> Option<&[SpecRevision]> {
        self.specs.get(name).map(Vec::as_slice)
    }

    /// Returns the status of an endpoint that receives traffic.
    ///
    /// `endpoint` is an apitrail template (`/v1/users/{id}`) or a concrete,
    /// percent-decoded path (`/v1/users/42`). Repeated slashes in it are
    /// collapsed, a trailing slash is kept. Every spec is searched:
    ///
    /// 1. A documented segment `{name}` matches any one non-empty segment,
    ///    literal segments match exactly (case-sensitive), and mixed segments
    ///    such as `{name}.json` match by their literal parts.
    /// 2. The method is compared case-insensitively. A `HEAD` request matches
    ///    only a documented `head` operation.
    /// 3. An operation with a host matches only that host, case-insensitively.
    ///    Ports are compared only when both name one. An operation without a
    ///    host matches any host. A request without a host matches every
    ///    operation, preferring those without a host.
    /// 4. Among the matches of the latest revisions, the most specific template
    ///    wins (`/users/me` over `/users/{id}`), then the closer host, then a
    ///    non-deprecated operation, then the smaller spec name and path.
    ///
    /// A match that is deprecated is a zombie with reason `deprecated`. When
    /// the latest revisions have no match, the operations that earlier
    /// revisions had and the latest does not are searched the same way. A
    /// match there is a zombie with reason `removed`. Otherwise the endpoint
    /// is a shadow.
    pub fn status_of(&self, host: Option<&str>, method: &str, endpoint: &str) -> SpecMatch {
        let Some(found) = self.index.find(host, method, endpoint) else {
            return SpecMatch::shadow();
        };

        let (status, reason) = if found.removed {
            (SpecStatus::Zombie, Some(ZombieReason::Removed))
        } else if found.operation.deprecated {
            (SpecStatus::Zombie, Some(ZombieReason::Deprecated))
        } else {
            (SpecStatus::Documented, None)
        };
        SpecMatch {
            status,
            reason,
            operation: Some(found.operation.clone()),
        }
    }

    /// Returns every operation of the latest revision of every spec, ordered
    /// by spec name, then as the revision lists them.
    pub fn documented_operations(&self) -> Vec<DocumentedOperation> {
        self.index.latest().cloned().collect()
    }

    /// Returns the templates of the latest revisions grouped by host, sorted
    /// and without duplicates. The `None` group is served on any host.
    pub fn path_templates_by_host(&self) -> BTreeMap<Option<String>, Vec<String>> {
        let mut grouped: BTreeMap<Option<String>, BTreeSet<&str>> = BTreeMap::new();
        for operation in self.index.latest() {
            grouped
                .entry(operation.host.clone())
                .or_default()
                .insert(&operation.path);
        }
        grouped
            .into_iter()
            .map(|(host, paths)| (host, paths.into_iter().map(str::to_string).collect()))
            .collect()
    }

    /// Returns the templates of the latest revisions that apply to requests
    /// for `host`, by the host rule of [`SpecCatalog::status_of`], sorted and
    /// without duplicates.
    pub fn path_templates_for_host(&self, host: Option<&str>) -> Vec<String> {
        let paths: BTreeSet<&str> = self
            .index
            .latest_for_host(host)
            .map(|operation| operation.path.as_str())
            .collect();
        paths.into_iter().map(str::to_string).collect()
    }

    /// Serializes the catalog as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .expect("a catalog has only string keys and no floats, which JSON always represents")
    }

    /// Reads a catalog that [`SpecCatalog::to_json`] or serde wrote.
    ///
    /// Unlike deserializing with serde, which can only report a message, this
    /// returns [`CatalogError::UnsupportedFormatVersion`] for another format.
    pub fn from_json(bytes: &[u8]) -> Result<SpecCatalog, CatalogError> {
        let stored: StoredCatalog =
            serde_json::from_slice(bytes).map_err(|error| CatalogError::InvalidCatalog {
                message: error.to_string(),
            })?;
        SpecCatalog::try_from(stored)
    }
}

/// Returns `sha256:` and the lowercase hex SHA-256 of a document's bytes.
pub fn content_checksum(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn count_deprecated(spec: &ApiSpec) -> usize {
    spec.operations
        .iter()
        .filter(|operation| operation.deprecated)
        .count()
}

fn validate_name(name: &str) -> Result<(), CatalogError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_SPEC_NAME_BYTES
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(CatalogError::InvalidName {
            name: name.to_string(),
        })
    }
}

/// Checks every operation and brings it to the stored form.
fn normalise_operations(spec: &str, operations: &mut [SpecOperation]) -> Result<(), CatalogError> {
    for (position, operation) in operations.iter_mut().enumerate() {
        normalise_operation(operation).map_err(|reason| CatalogError::InvalidOperation {
            spec: spec.to_string(),
            position,
            method: operation.method.clone(),
            path: operation.path.clone(),
            reason,
        })?;
    }
    Ok(())
}

fn normalise_operation(operation: &mut SpecOperation) -> Result<(), String> {
    let method = operation.method.trim();
    // An HTTP method is a token (RFC 9110, section 9.1).
    let method_valid = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !method_valid {
        return Err(format!("method {method:?} is not an HTTP method name"));
    }
    operation.method = method.to_ascii_uppercase();

    if let Some(host) = &operation.host {
        operation.host = Some(HostPattern::parse(host)?.render());
    }

    let path = collapse_slashes(&operation.path);
    Template::parse(&path)?;
    operation.path = path;
    Ok(())
}

impl Serialize for SpecCatalog {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let stored = StoredCatalogRef {
            format_version: CATALOG_FORMAT_VERSION,
            specs: self
                .specs
                .iter()
                .map(|(name, revisions)| StoredSpecRef { name, revisions })
                .collect(),
        };
        stored.serialize(serializer)
    }
}

#[derive(Serialize)]
struct StoredCatalogRef<'a> {
    format_version: u32,
    specs: Vec<StoredSpecRef<'a>>,
}

#[derive(Serialize)]
struct StoredSpecRef<'a> {
    name: &'a str,
    revisions: &'a [SpecRevision],
}

/// The serialized catalog. `specs` is read only after the format version is
/// checked, so a catalog of another format gets a version error rather than
/// an error about a field.
#[derive(Deserialize)]
struct StoredCatalog {
    format_version: u32,
    specs: serde_json::Value,
}

#[derive(Deserialize)]
struct StoredSpec {
    name: String,
    revisions: Vec<SpecRevision>,
}

impl TryFrom<StoredCatalog> for SpecCatalog {
    type Error = CatalogError;

    fn try_from(stored: StoredCatalog) -> Result<Self, Self::Error> {
        if stored.format_version != CATALOG_FORMAT_VERSION {
            return Err(CatalogError::UnsupportedFormatVersion {
                found: stored.format_version,
            });
        }
        let stored_specs: Vec<StoredSpec> =
            serde_json::from_value(stored.specs).map_err(|error| CatalogError::InvalidCatalog {
                message: format!("specs: {error}"),
            })?;

        let mut specs = BTreeMap::new();
        for StoredSpec {
            name,
            mut revisions,
        } in stored_specs
        {
            validate_name(&name)?;
            if revisions.is_empty() {
                return Err(CatalogError::InvalidCatalog {
                    message: format!("spec {name:?} has no revisions"),
                });
            }
            for revision in &mut revisions {
                normalise_operations(&name, &mut revision.spec.operations)?;
            }
            if specs.insert(name.clone(), revisions).is_some() {
                return Err(CatalogError::InvalidCatalog {
                    message: format!("spec {name:?} appears twice"),
                });
            }
        }

        let index = MatchIndex::build(&specs);
        Ok(SpecCatalog { specs, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(host: Option<&str>, method: &str, path: &str, deprecated: bool) -> SpecOperation {
        SpecOperation {
            host: host.map(str::to_string),
            method: method.to_string(),
            path: path.to_string(),
            deprecated,
        }
    }

    fn spec(version: &str, operations: Vec<SpecOperation>) -> ApiSpec {
        ApiSpec {
            openapi_version: "3.1.0".to_string(),
            title: Some("Test".to_string()),
            version: Some(version.to_string()),
            operations,
        }
    }

    #[test]
    fn load_normalises_operations() {
        let mut catalog = SpecCatalog::new();
        let operations = vec![operation(
            Some("API.Example.com:8080"),
            "get",
            "/a//b/",
            false,
        )];
        catalog
            .load("svc", spec("1", operations), "c1".into(), 1)
            .expect("valid operation");
        let stored = &catalog.revisions("svc").expect("stored")[0].spec.operations[0];
        assert_eq!(stored.method, "GET", "method in uppercase");
        assert_eq!(
            stored.host.as_deref(),
            Some("api.example.com:8080"),
            "host in lowercase"
        );
        assert_eq!(
            stored.path, "/a/b/",
            "repeated slashes collapsed, trailing kept"
        );
    }

    #[test]
    fn load_rejects_invalid_input() {
        let mut catalog = SpecCatalog::new();
        for name in [
            "",
            "-orders",
            "orders api",
            "bestellungen/v2",
            &"x".repeat(129),
        ] {
            let error = catalog
                .load(name, spec("1", Vec::new()), "c1".into(), 1)
                .expect_err(name);
            assert_eq!(
                error,
                CatalogError::InvalidName {
                    name: name.to_string()
                },
                "name {name:?}"
            );
        }

        let error = catalog
            .load("svc", spec("1", Vec::new()), " ".into(), 1)
            .expect_err("blank checksum");
        assert_eq!(error, CatalogError::EmptyChecksum { spec: "svc".into() });

        let cases = [
            (
                operation(None, "GE T", "/a", false),
                "method \"GE T\" is not an HTTP method name",
            ),
            (
                operation(None, "GET", "a", false),
                "path \"a\" must start with '/'",
            ),
            (
                operation(None, "GET", "/a/{b", false),
                "has a '{' without a closing '}'",
            ),
            (
                operation(Some("a b"), "GET", "/a", false),
                "is not a host name",
            ),
            (
                operation(Some("::1"), "GET", "/a", false),
                "without brackets",
            ),
        ];
        for (bad, expected) in cases {
            let operations = vec![operation(None, "GET", "/ok", false), bad.clone()];
            let error = catalog
                .load("svc", spec("1", operations), "c1".into(), 1)
                .expect_err(&bad.path);
            let CatalogError::InvalidOperation {
                position, reason, ..
            } = &error
            else {
                panic!("expected an invalid operation, found {error:?}");
            };
            assert_eq!(*position, 1, "position of {bad:?}");
            assert!(reason.contains(expected), "reason {reason:?} for {bad:?}");
        }
        assert!(catalog.is_empty(), "rejected loads store nothing");
    }

    #[test]
    fn documented_beats_deprecated_elsewhere() {
        let mut catalog = SpecCatalog::new();
        let old = vec![operation(None, "GET", "/reports/{id}", true)];
        let new = vec![operation(None, "GET", "/reports/{reportId}", false)];
        catalog
            .load("a-legacy", spec("1", old), "c1".into(), 1)
            .expect("loads");
        catalog
            .load("b-current", spec("1", new), "c2".into(), 2)
            .expect("loads");
        let found = catalog.status_of(Some("x.example.com"), "GET", "/reports/7");
        assert_eq!(found.status, SpecStatus::Documented, "status");
        assert_eq!(found.spec(), Some("b-current"), "the non-deprecated spec");
    }

    #[test]
    fn removed_but_documented_elsewhere() {
        let mut catalog = SpecCatalog::new();
        let with_export = vec![operation(None, "GET", "/export", false)];
        catalog
            .load("a", spec("1", with_export.clone()), "c1".into(), 1)
            .expect("loads");
        catalog
            .load("a", spec("2", Vec::new()), "c2".into(), 2)
            .expect("loads");
        let found = catalog.status_of(None, "GET", "/export");
        assert_eq!(found.reason, Some(ZombieReason::Removed), "removed from a");

        catalog
            .load("b", spec("1", with_export), "c3".into(), 3)
            .expect("loads");
        let found = catalog.status_of(None, "GET", "/export");
        assert_eq!(found.status, SpecStatus::Documented, "b documents it");
        assert_eq!(found.spec(), Some("b"), "spec");
    }

    #[test]
    fn remove_drops_spec() {
        let mut catalog = SpecCatalog::new();
        let operations = vec![operation(None, "GET", "/a", false)];
        catalog
            .load("svc", spec("1", operations), "c1".into(), 1)
            .expect("loads");
        assert!(catalog.remove("svc"), "existing spec");
        assert!(!catalog.remove("svc"), "already removed");
        let found = catalog.status_of(None, "GET", "/a");
        assert_eq!(found.status, SpecStatus::Shadow, "index forgets it");
    }

    #[test]
    fn from_json_checks_format() {
        let error = SpecCatalog::from_json(br#"{"format_version": 2, "specs": {"new": "layout"}}"#)
            .expect_err("format 2");
        assert_eq!(error, CatalogError::UnsupportedFormatVersion { found: 2 });
        assert_eq!(
            error.to_string(),
            "unsupported catalog format version 2; this build reads version 1"
        );

        let error = SpecCatalog::from_json(b"{\"specs\": []}").expect_err("no version");
        assert!(
            error.to_string().contains("missing field `format_version`"),
            "error {error}"
        );
    }

    #[test]
    fn from_json_checks_content() {
        let revision = r#"{"checksum": "c1", "loaded_at_micros": 1, "spec": {"openapi_version": "3.1.0", "title": null, "version": null, "operations": [{"host": null, "method": "GET", "path": "/a", "deprecated": false}]}}"#;
        let cases = [
            (
                r#"{"format_version": 1, "specs": [{"name": "a", "revisions": []}]}"#.to_string(),
                "invalid catalog: spec \"a\" has no revisions",
            ),
            (
                format!(
                    r#"{{"format_version": 1, "specs": [{{"name": "a", "revisions": [{revision}]}}, {{"name": "a", "revisions": [{revision}]}}]}}"#
                ),
                "invalid catalog: spec \"a\" appears twice",
            ),
            (
                format!(
                    r#"{{"format_version": 1, "specs": [{{"name": "a b", "revisions": [{revision}]}}]}}"#
                ),
                "invalid spec name \"a b\"",
            ),
            (
                format!(
                    r#"{{"format_version": 1, "specs": [{{"name": "a", "revisions": [{}]}}]}}"#,
                    revision.replace("/a", "a")
                ),
                "invalid operation 0 (GET a) of spec \"a\": path \"a\" must start with '/'",
            ),
            (
                r#"{"format_version": 1, "specs": [{"name": "a"}]}"#.to_string(),
                "invalid catalog: specs: missing field `revisions`",
            ),
        ];
        for (json, expected) in cases {
            let error = SpecCatalog::from_json(json.as_bytes()).expect_err(&json);
            assert!(
                error.to_string().starts_with(expected),
                "error {error}, expected {expected:?}"
            );
        }
    }

    #[test]
    fn checksum_format() {
        assert_eq!(
            content_checksum(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
