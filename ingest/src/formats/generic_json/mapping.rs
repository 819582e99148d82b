//! The field mapping of the generic `json` format: its TOML form, its
//! validation, and the lookup table the parser uses.
//!
//! [`JsonMappingConfig`] is the mapping as written in the configuration.
//! [`JsonMapping::new`] validates it and compiles every field path once, so
//! the parser only looks up each flattened key of a record in a hash map.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::time::{TimeFormat, TimeSpec, Unit, Zone};

/// The target of a mapping entry: a canonical column, or `url` or `request`,
/// which are split into several columns.
///
/// The order of the variants is the order entries are applied in, so the
/// parts of `request` and `url` come first and an entry for one of their
/// columns replaces what they gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Target {
    Request,
    Url,
    Time,
    Sensor,
    RequestId,
    TraceId,
    Method,
    Scheme,
    Host,
    HttpVersion,
    Path,
    Query,
    Status,
    DurationMs,
    RequestBytes,
    ResponseBytes,
    ClientIp,
    ClientPort,
    ForwardedFor,
    UserAgent,
    Referer,
    Consumer,
    ConsumerKind,
    AuthScheme,
    Upstream,
    UpstreamStatus,
}

impl Target {
    const ALL: [Target; 26] = [
        Target::Time,
        Target::Sensor,
        Target::RequestId,
        Target::TraceId,
        Target::Method,
        Target::Scheme,
        Target::Host,
        Target::HttpVersion,
        Target::Path,
        Target::Query,
        Target::Status,
        Target::DurationMs,
        Target::RequestBytes,
        Target::ResponseBytes,
        Target::ClientIp,
        Target::ClientPort,
        Target::ForwardedFor,
        Target::UserAgent,
        Target::Referer,
        Target::Consumer,
        Target::ConsumerKind,
        Target::AuthScheme,
        Target::Upstream,
        Target::UpstreamStatus,
        Target::Url,
        Target::Request,
    ];

    /// Returns the name of the entry in `fields`, which is the column name for a column.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Target::Request => "request",
            Target::Url => "url",
            Target::Time => "time",
            Target::Sensor => "sensor",
            Target::RequestId => "request_id",
            Target::TraceId => "trace_id",
            Target::Method => "method",
            Target::Scheme => "scheme",
            Target::Host => "host",
            Target::HttpVersion => "http_version",
            Target::Path => "path",
            Target::Query => "query",
            Target::Status => "status",
            Target::DurationMs => "duration_ms",
            Target::RequestBytes => "request_bytes",
            Target::ResponseBytes => "response_bytes",
            Target::ClientIp => "client_ip",
            Target::ClientPort => "client_port",
            Target::ForwardedFor => "forwarded_for",
            Target::UserAgent => "user_agent",
            Target::Referer => "referer",
            Target::Consumer => "consumer",
            Target::ConsumerKind => "consumer_kind",
            Target::AuthScheme => "auth_scheme",
            Target::Upstream => "upstream",
            Target::UpstreamStatus => "upstream_status",
        }
    }

    fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|target| target.name() == name)
    }
}

/// Columns of the canonical event that apitrail derives, so a mapping cannot fill them.
const DERIVED_COLUMNS: [(&str, &str); 4] = [
    ("day", "it is derived from time"),
    ("source", "it is always \"json\""),
    ("endpoint", "apitrail templates it from path"),
    (
        "malformed",
        "it is set when a request entry holds no valid HTTP request line",
    ),
];

/// A mapping as written in the configuration, under `[[ingest.json_mappings]]`.
///
/// ```toml
/// name = "datadog"
/// sensor = "datadog-export"
/// attributes = ["service", "content.tags"]
/// strip_prefix = "content.attributes."
///
/// [fields]
/// time = { path = "content.timestamp", format = "rfc3339" }
/// url = "content.attributes.http.url"
/// status = "content.attributes.http.status_code"
/// duration_ms = { path = "content.attributes.duration", unit = "ns" }
/// request_id = ["content.attributes.http.request_id", "id"]
/// ```
///
/// Unknown keys are rejected. See [`JsonMapping::new`] for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonMappingConfig {
    /// Name that an input selects the mapping by; unique among the mappings.
    pub name: String,
    /// Entries by column name (or `url`, `request`); `time` is required.
    pub fields: BTreeMap<String, FieldConfig>,
    /// Selection of the fields without an entry that become attributes; all of them by default.
    #[serde(default)]
    pub attributes: AttributeSelection,
    /// Prefix removed from the start of attribute names that have it.
    #[serde(default)]
    pub strip_prefix: Option<String>,
    /// Sensor label of every event whose record has no `sensor` field and
    /// whose input names no sensor.
    #[serde(default)]
    pub sensor: Option<String>,
}

/// One entry of `fields`: where a column's value is in the record, and how to read it.
///
/// In TOML it is a path (`"http.method"`), a list of paths tried in order
/// (`["requestId", "id"]`), or a table with `path` and the options
/// `format` and `time_zone` (for `time`) or `unit` (for `duration_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldConfig {
    /// Paths tried in order. The first that has a value is used.
    pub paths: Vec<String>,
    /// Time format of a `time` entry; `rfc3339` when absent.
    pub format: Option<String>,
    /// Zone of `time` values written without a UTC offset; UTC when absent.
    pub time_zone: Option<String>,
    /// Unit of a `duration_ms` entry (`s`, `ms`, `us`, `ns`); `ms` when absent.
    pub unit: Option<String>,
}

impl FieldConfig {
    /// Creates an entry that reads one path.
    pub fn path(path: &str) -> Self {
        FieldConfig {
            paths: vec![path.to_string()],
            ..FieldConfig::default()
        }
    }
}

/// Selection of the fields without a mapping entry that are kept as attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AttributeSelection {
    /// Every field (`attributes = "all"`, the default).
    #[default]
    All,
    /// No field (`attributes = "none"`).
    None,
    /// The listed fields, by flattened name; a name also selects every field
    /// nested under it (`attributes = ["service", "http.headers"]`).
    Only(Vec<String>),
}

impl AttributeSelection {
    /// Returns whether the field with this flattened name is kept.
    pub(crate) fn includes(&self, key: &str) -> bool {
        match self {
            AttributeSelection::All => true,
            AttributeSelection::None => false,
            AttributeSelection::Only(names) => names.iter().any(|name| {
                key.strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            }),
        }
    }
}

/// Error of [`JsonMapping::new`]: the mapping, the entry as a TOML key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("json mapping {mapping:?}, {entry}: {problem}")]
pub struct JsonMappingError {
    pub mapping: String,
    /// TOML key of the entry, such as `fields.time` or `strip_prefix`.
    pub entry: String,
    pub problem: String,
}

/// A validated mapping, ready for the `json` parser.
///
/// Deserializing one validates it, so a configuration with a bad mapping
/// fails to load with a [`JsonMappingError`] message.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "JsonMappingConfig")]
pub struct JsonMapping {
    config: JsonMappingConfig,
    /// Entries in the order they are applied (see [`Target`]).
    pub(crate) entries: Vec<Entry>,
    /// The uses of each flattened record key by the entries' paths.
    pub(crate) lookup: HashMap<String, Vec<PathUse>, foldhash::fast::RandomState>,
}

impl PartialEq for JsonMapping {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

/// One compiled entry of `fields`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) target: Target,
    pub(crate) paths: Vec<FieldPath>,
    pub(crate) conversion: Conversion,
}

/// Conversion of an entry's value, besides the column's own type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Conversion {
    Plain,
    Time(TimeSpec),
    Duration(Unit),
}

/// Position of one path of an entry: `entries[entry].paths[priority]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathUse {
    pub(crate) entry: usize,
    pub(crate) priority: usize,
}

/// A compiled field path.
///
/// The part before the first array index is matched against the record's
/// flattened keys, so `a.b.c` finds `{"a":{"b":{"c":1}}}`, `{"a.b":{"c":1}}`
/// and `{"a.b.c":1}` alike. After an index, the steps walk into the element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldPath {
    /// The path as written in the mapping, for reject reasons.
    pub(crate) text: String,
    /// Flattened key of the value, or of the array that the first index selects from.
    pub(crate) key: String,
    pub(crate) steps: Vec<Step>,
}

/// A step into a value after the first array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Index(usize),
    /// Dotted name of a member, matched like a flattened key inside the element.
    Name(String),
}

impl TryFrom<JsonMappingConfig> for JsonMapping {
    type Error = JsonMappingError;

    fn try_from(config: JsonMappingConfig) -> Result<Self, Self::Error> {
        JsonMapping::new(config)
    }
}

impl JsonMapping {
    /// Validates a mapping and compiles its paths.
    ///
    /// # Errors
    ///
    /// The first problem found, naming the mapping and the entry. Problems
    /// are an empty name, no `time` entry, or an unknown or derived column.
    /// An invalid path, time format, time zone or unit is one too, and so is
    /// an option on an entry it does not apply to. So is an empty
    /// `strip_prefix`, `sensor` or attribute name.
    pub fn new(config: JsonMappingConfig) -> Result<JsonMapping, JsonMappingError> {
        let error = |entry: &str, problem: String| JsonMappingError {
            mapping: config.name.clone(),
            entry: entry.to_string(),
            problem,
        };
        if config.name.trim().is_empty() || config.name.trim() != config.name {
            return Err(error(
                "name",
                "the name must be non-empty and have no surrounding whitespace".to_string(),
            ));
        }
        check_options(&config).map_err(|(entry, problem)| error(entry, problem))?;

        let mut entries = Vec::with_capacity(config.fields.len());
        for (column, field) in &config.fields {
            let entry = compile_entry(column, field)
                .map_err(|problem| error(&format!("fields.{column}"), problem))?;
            entries.push(entry);
        }
        if !entries.iter().any(|entry| entry.target == Target::Time) {
            return Err(error(
                "fields.time",
                "the mapping has no time entry: name the field that holds the request time, such as time = { path = \"timestamp\", format = \"rfc3339\" }".to_string(),
            ));
        }
        entries.sort_by_key(|entry| entry.target);

        let mut lookup: HashMap<String, Vec<PathUse>, _> = HashMap::default();
        for (entry_index, entry) in entries.iter().enumerate() {
            for (priority, path) in entry.paths.iter().enumerate() {
                lookup.entry(path.key.clone()).or_default().push(PathUse {
                    entry: entry_index,
                    priority,
                });
            }
        }
        Ok(JsonMapping {
            config,
            entries,
            lookup,
        })
    }

    /// Name that an input selects the mapping by.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Returns the mapping as it was configured.
    pub fn config(&self) -> &JsonMappingConfig {
        &self.config
    }

    /// Checks that no two mappings share a name.
    ///
    /// # Errors
    ///
    /// The first name that a later mapping repeats.
    pub fn check_unique_names(mappings: &[JsonMapping]) -> Result<(), JsonMappingError> {
        for (index, mapping) in mappings.iter().enumerate() {
            if mappings[..index].iter().any(|m| m.name() == mapping.name()) {
                return Err(JsonMappingError {
                    mapping: mapping.name().to_string(),
                    entry: "name".to_string(),
                    problem: "another json mapping has the same name; give each mapping its own"
                        .to_string(),
                });
            }
        }
        Ok(())
    }
}

/// Checks the options outside `fields`, returning the offending key and the problem.
fn check_options(config: &JsonMappingConfig) -> Result<(), (&'static str, String)> {
    if config.strip_prefix.as_deref() == Some("") {
        return Err((
            "strip_prefix",
            "the prefix is empty: remove the option or name a prefix such as \"attributes.\""
                .to_string(),
        ));
    }
    if config
        .sensor
        .as_deref()
        .is_some_and(|sensor| sensor.trim().is_empty())
    {
        return Err((
            "sensor",
            "the sensor label is empty: remove the option or name the sensor".to_string(),
        ));
    }
    if let AttributeSelection::Only(names) = &config.attributes
        && let Some(name) = names
            .iter()
            .find(|name| name.is_empty() || name.trim() != name.as_str())
    {
        return Err((
            "attributes",
            format!(
                "invalid field name {name:?}: names must be non-empty and have no surrounding whitespace"
            ),
        ));
    }
    Ok(())
}

/// Compiles one `fields` entry, returning the problem without the mapping and entry names.
fn compile_entry(column: &str, field: &FieldConfig) -> Result<Entry, String> {
    let target = Target::from_name(column).ok_or_else(|| unknown_column(column))?;
    if field.paths.is_empty() {
        return Err("the entry lists no path: name at least one field".to_string());
    }
    let paths = field
        .paths
        .iter()
        .map(|path| parse_path(path).map_err(|problem| format!("invalid path {path:?}: {problem}")))
        .collect::<Result<Vec<_>, _>>()?;
    let conversion = compile_conversion(target, field)?;
    Ok(Entry {
        target,
        paths,
        conversion,
    })
}

fn unknown_column(column: &str) -> String {
    if let Some((_, reason)) = DERIVED_COLUMNS.iter().find(|(name, _)| *name == column) {
        return format!("the column {column} cannot be mapped because {reason}");
    }
    let names: Vec<&str> = Target::ALL.iter().map(|target| target.name()).collect();
    format!(
        "unknown column {column:?}; the entries a mapping can have are {}",
        names.join(", ")
    )
}

/// Reads `format`, `time_zone` and `unit`, checking that each applies to the entry.
fn compile_conversion(target: Target, field: &FieldConfig) -> Result<Conversion, String> {
    let name = target.name();
    if target != Target::Time && (field.format.is_some() || field.time_zone.is_some()) {
        return Err(format!(
            "`format` and `time_zone` apply only to the time entry, not to {name}"
        ));
    }
    if target != Target::DurationMs && field.unit.is_some() {
        return Err(format!(
            "`unit` applies only to the duration_ms entry, not to {name}"
        ));
    }
    match target {
        Target::Time => {
            let format = TimeFormat::parse(field.format.as_deref().unwrap_or("rfc3339"))?;
            let zone = match &field.time_zone {
                None => Zone::UTC,
                Some(_) if !format.uses_zone() => {
                    return Err(
                        "`time_zone` does not apply to epoch formats, which count from 1970-01-01T00:00:00Z"
                            .to_string(),
                    );
                }
                Some(text) => Zone::parse(text).ok_or_else(|| {
                    format!(
                        "unknown time zone {text:?}: use an IANA name such as \"Europe/Berlin\" or an offset such as \"+02:00\""
                    )
                })?,
            };
            Ok(Conversion::Time(TimeSpec { format, zone }))
        }
        Target::DurationMs => {
            let unit = field.unit.as_deref().unwrap_or("ms");
            Unit::from_duration_name(unit)
                .map(Conversion::Duration)
                .ok_or_else(|| format!("unknown duration unit {unit:?}: use s, ms, us or ns"))
        }
        _ => Ok(Conversion::Plain),
    }
}

/// Parses a field path: names joined by `.`, `["quoted name"]` for a name
/// with `.`, `[`, `]` or `"` in it (`\"` and `\\` escape inside the quotes),
/// and `[N]` for element N of an array, counted from 0.
pub(crate) fn parse_path(text: &str) -> Result<FieldPath, String> {
    let mut builder = PathBuilder::default();
    let mut chars = text.chars().peekable();
    let mut name = String::new();
    // A name must come next: at the start and after a dot.
    let mut expect_name = true;

    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if expect_name {
                    return Err("a name is empty: remove the extra dot".to_string());
                }
                if !name.is_empty() {
                    builder.push_name(std::mem::take(&mut name));
                }
                expect_name = true;
            }
            '[' => {
                if !name.is_empty() {
                    builder.push_name(std::mem::take(&mut name));
                } else if expect_name && !builder.is_empty() {
                    return Err("a dot is followed by [: write a[0] or a[\"b\"]".to_string());
                }
                read_bracket(&mut chars, &mut builder)?;
                if !matches!(chars.peek(), None | Some('.' | '[')) {
                    return Err("a ] must be followed by a dot, a [ or the end".to_string());
                }
                expect_name = false;
            }
            ']' => return Err("a ] has no matching [".to_string()),
            _ => {
                name.push(c);
                expect_name = false;
            }
        }
    }
    if expect_name {
        return Err(if builder.is_empty() {
            "the path is empty".to_string()
        } else {
            "the path ends with a dot".to_string()
        });
    }
    if !name.is_empty() {
        builder.push_name(name);
    }
    Ok(FieldPath {
        text: text.to_string(),
        key: builder.key,
        steps: builder.steps,
    })
}

/// Reads the inside of `[...]` after the `[`, up to and including the `]`.
fn read_bracket(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    builder: &mut PathBuilder,
) -> Result<(), String> {
    if chars.peek() == Some(&'"') {
        chars.next();
        let mut quoted = String::new();
        loop {
            match chars.next() {
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some(escaped @ ('"' | '\\')) => quoted.push(escaped),
                    _ => {
                        return Err(
                            "only \\\" and \\\\ may be escaped in a quoted name".to_string()
                        );
                    }
                },
                Some(c) => quoted.push(c),
                None => return Err("a quoted name has no closing quote".to_string()),
            }
        }
        if quoted.is_empty() {
            return Err("a quoted name is empty".to_string());
        }
        builder.push_name(quoted);
    } else {
        let mut digits = String::new();
        while let Some(&c) = chars.peek().filter(|c| c.is_ascii_digit()) {
            digits.push(c);
            chars.next();
        }
        let index = digits.parse::<usize>().map_err(|_| {
            "a [ must hold an array index such as [0] or a quoted name such as [\"a.b\"]"
                .to_string()
        })?;
        builder.push_index(index)?;
    }
    match chars.next() {
        Some(']') => Ok(()),
        _ => Err("a [ has no matching ]".to_string()),
    }
}

#[derive(Default)]
struct PathBuilder {
    key: String,
    steps: Vec<Step>,
}

impl PathBuilder {
    fn is_empty(&self) -> bool {
        self.key.is_empty()
    }

    fn push_name(&mut self, name: String) {
        if self.steps.is_empty() {
            if !self.key.is_empty() {
                self.key.push('.');
            }
            self.key.push_str(&name);
            return;
        }
        match self.steps.last_mut() {
            Some(Step::Name(last)) => {
                last.push('.');
                last.push_str(&name);
            }
            _ => self.steps.push(Step::Name(name)),
        }
    }

    fn push_index(&mut self, index: usize) -> Result<(), String> {
        if self.key.is_empty() {
            return Err(
                "the path starts with an array index, but a record is an object: start with a field name"
                    .to_string(),
            );
        }
        self.steps.push(Step::Index(index));
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Deserialization of the flexible TOML forms

impl<'de> Deserialize<'de> for FieldConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldConfigVisitor)
    }
}

struct FieldConfigVisitor;

impl<'de> Visitor<'de> for FieldConfigVisitor {
    type Value = FieldConfig;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a field path, a list of field paths, or a table with `path`")
    }

    fn visit_str<E: de::Error>(self, path: &str) -> Result<Self::Value, E> {
        Ok(FieldConfig::path(path))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let paths = Vec::<String>::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(FieldConfig {
            paths,
            ..FieldConfig::default()
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FieldTable {
            path: PathList,
            format: Option<String>,
            time_zone: Option<String>,
            unit: Option<String>,
        }

        let table = FieldTable::deserialize(MapAccessDeserializer::new(map))?;
        Ok(FieldConfig {
            paths: table.path.0,
            format: table.format,
            time_zone: table.time_zone,
            unit: table.unit,
        })
    }
}

/// The `path` of an entry table: one path or a list.
struct PathList(Vec<String>);

impl<'de> Deserialize<'de> for PathList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match FieldConfig::deserialize(deserializer)? {
            FieldConfig {
                paths,
                format: None,
                time_zone: None,
                unit: None,
            } => Ok(PathList(paths)),
            _ => Err(de::Error::custom(
                "`path` must be a field path or a list of field paths",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for AttributeSelection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AttributeSelectionVisitor)
    }
}

struct AttributeSelectionVisitor;

impl<'de> Visitor<'de> for AttributeSelectionVisitor {
    type Value = AttributeSelection;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("\"all\", \"none\" or a list of field names")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        match value {
            "all" => Ok(AttributeSelection::All),
            "none" => Ok(AttributeSelection::None),
            other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Vec::<String>::deserialize(SeqAccessDeserializer::new(seq)).map(AttributeSelection::Only)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> FieldPath {
        parse_path(text).unwrap_or_else(|problem| panic!("{text:?}: {problem}"))
    }

    fn names(steps: &[&str]) -> Vec<Step> {
        steps
            .iter()
            .map(|step| match step.parse() {
                Ok(index) => Step::Index(index),
                Err(_) => Step::Name(step.to_string()),
            })
            .collect()
    }

    fn from_toml(text: &str) -> Result<JsonMapping, String> {
        toml::from_str::<JsonMapping>(text).map_err(|error| error.message().to_string())
    }

    #[test]
    fn path_forms() {
        let cases: [(&str, &str, &[&str]); 8] = [
            ("status", "status", &[]),
            ("http.request.method", "http.request.method", &[]),
            (
                r#"labels["app.kubernetes.io/name"]"#,
                "labels.app.kubernetes.io/name",
                &[],
            ),
            (r#"["odd[key]"].x"#, "odd[key].x", &[]),
            (
                "headers.x-forwarded-for[0]",
                "headers.x-forwarded-for",
                &["0"],
            ),
            ("entries[2].request.url", "entries", &["2", "request.url"]),
            ("matrix[1][0]", "matrix", &["1", "0"]),
            (r#"a[0]["b.c"].d"#, "a", &["0", "b.c.d"]),
        ];
        for (text, key, steps) in cases {
            let parsed = path(text);
            assert_eq!(parsed.key, key, "{text}");
            assert_eq!(parsed.steps, names(steps), "{text}");
            assert_eq!(parsed.text, text);
        }
        assert_eq!(path(r#"["say \"hi\""]"#).key, r#"say "hi""#);
    }

    #[test]
    fn path_errors() {
        let cases = [
            ("", "the path is empty"),
            ("a..b", "a name is empty: remove the extra dot"),
            (".a", "a name is empty: remove the extra dot"),
            ("a.", "the path ends with a dot"),
            ("[0].a", "the path starts with an array index"),
            ("a.[0]", "a dot is followed by ["),
            ("a[x]", "a [ must hold an array index"),
            ("a[0", "a [ has no matching ]"),
            ("a]", "a ] has no matching ["),
            ("a[0]b", "a ] must be followed by a dot, a [ or the end"),
            (r#"a["b"#, "a quoted name has no closing quote"),
            (r#"a[""]"#, "a quoted name is empty"),
            (r#"a["\n"]"#, "only \\\" and \\\\ may be escaped"),
            ("a[99999999999999999999999]", "a [ must hold an array index"),
        ];
        for (text, expected) in cases {
            let problem = parse_path(text).expect_err(text);
            assert!(problem.starts_with(expected), "{text:?}: {problem}");
        }
    }

    #[test]
    fn toml_with_every_entry_form() {
        let mapping = from_toml(
            r#"
            name = "gateway"
            sensor = "edge-1"
            attributes = ["service", "http.headers"]
            strip_prefix = "http."

            [fields]
            time = { path = "ts", format = "epoch_ms" }
            method = "http.method"
            request_id = ["request.id", "id"]
            duration_ms = { path = ["took", "elapsed"], unit = "us" }
            "#,
        )
        .unwrap();
        assert_eq!(mapping.name(), "gateway");
        let config = mapping.config();
        assert_eq!(config.sensor.as_deref(), Some("edge-1"));
        assert_eq!(config.strip_prefix.as_deref(), Some("http."));
        assert_eq!(
            config.attributes,
            AttributeSelection::Only(vec!["service".into(), "http.headers".into()])
        );
        assert_eq!(config.fields["method"], FieldConfig::path("http.method"));
        assert_eq!(config.fields["request_id"].paths, ["request.id", "id"]);
        assert_eq!(config.fields["duration_ms"].paths, ["took", "elapsed"]);
        assert_eq!(config.fields["duration_ms"].unit.as_deref(), Some("us"));

        let targets: Vec<Target> = mapping.entries.iter().map(|entry| entry.target).collect();
        assert_eq!(
            targets,
            [
                Target::Time,
                Target::RequestId,
                Target::Method,
                Target::DurationMs
            ]
        );
        assert_eq!(
            mapping.lookup["id"],
            [PathUse {
                entry: 1,
                priority: 1
            }]
        );
    }

    #[test]
    fn toml_defaults() {
        let mapping = from_toml("name = \"m\"\nfields.time = \"timestamp\"").unwrap();
        assert_eq!(mapping.config().attributes, AttributeSelection::All);
        assert_eq!(mapping.config().strip_prefix, None);
        assert_eq!(
            mapping.entries[0].conversion,
            Conversion::Time(TimeSpec {
                format: TimeFormat::Rfc3339,
                zone: Zone::UTC
            })
        );
        let none = from_toml("name = \"m\"\nattributes = \"none\"\nfields.time = \"t\"").unwrap();
        assert_eq!(none.config().attributes, AttributeSelection::None);
    }

    #[test]
    fn toml_list_of_mappings() {
        #[derive(Deserialize)]
        struct Ingest {
            json_mappings: Vec<JsonMapping>,
        }
        #[derive(Deserialize)]
        struct Config {
            ingest: Ingest,
        }

        let config: Config = toml::from_str(
            r#"
            [[ingest.json_mappings]]
            name = "a"
            fields.time = "t"

            [[ingest.json_mappings]]
            name = "b"
            fields = { time = { path = "ts", format = "epoch_s" }, status = "code" }
            "#,
        )
        .unwrap();
        let mappings = config.ingest.json_mappings;
        assert_eq!(mappings.len(), 2);
        assert_eq!(mappings[1].name(), "b");
        assert_eq!(JsonMapping::check_unique_names(&mappings), Ok(()));
        let twice = [mappings[0].clone(), mappings[0].clone()];
        assert_eq!(
            JsonMapping::check_unique_names(&twice)
                .unwrap_err()
                .to_string(),
            "json mapping \"a\", name: another json mapping has the same name; give each mapping its own"
        );
    }

    #[test]
    fn bad_mappings_name_the_mapping_and_entry() {
        let cases = [
            (
                "name = \"m\"\nfields.status = \"code\"",
                "json mapping \"m\", fields.time: the mapping has no time entry",
            ),
            (
                "name = \"m\"\nfields.time = \"t\"\nfields.stauts = \"code\"",
                "json mapping \"m\", fields.stauts: unknown column \"stauts\"; the entries a mapping can have are time, sensor,",
            ),
            (
                "name = \"m\"\nfields.time = \"t\"\nfields.endpoint = \"route\"",
                "json mapping \"m\", fields.endpoint: the column endpoint cannot be mapped because apitrail templates it from path",
            ),
            (
                "name = \"m\"\nfields.time = \"t\"\nfields.day = \"d\"",
                "json mapping \"m\", fields.day: the column day cannot be mapped because it is derived from time",
            ),
            (
                "name = \"m\"\nfields.time = \"t\"\nfields.method = \"http..method\"",
                "json mapping \"m\", fields.method: invalid path \"http..method\": a name is empty",
            ),
            (
                "name = \"m\"\nfields.time = \"t\"\nfields.method = []",
                "json mapping \"m\", fields.method: the entry lists no path",
            ),
            (
                "name = \"m\"\nfields.time = { path = \"t\", format = \"epoch\" }",
                "json mapping \"m\", fields.time: unknown time format \"epoch\"",
            ),
            (
                "name = \"m\"\nfields.time = { path = \"t\", format = \"%Y-%m-%d %Q\" }",
                "json mapping \"m\", fields.time: invalid strftime pattern",
            ),
            (
                "name = \"m\"\nfields.time = { path = \"t\", time_zone = \"Mars/Base\" }",
                "json mapping \"m\", fields.time: unknown time zone \"Mars/Base\"",
            ),
            (
                "name = \"m\"\nfields.time = { path = \"t\", format = \"epoch_s\", time_zone = \"UTC\" }",
                "json mapping \"m\", fields.time: `time_zone` does not apply to epoch formats",
            ),
            (
                "name = \"m\"\nfields.time = \"t\"\nfields.duration_ms = { path = \"d\", unit = \"min\" }",
                "json mapping \"m\", fields.duration_ms: unknown duration unit \"min\": use s, ms, us or ns",
            ),
            (
                "name = \"m\"\nfields.time = { path = \"t\", unit = \"s\" }",
                "json mapping \"m\", fields.time: `unit` applies only to the duration_ms entry, not to time",
            ),
            (
                "name = \"m\"\nfields.time = \"t\"\nfields.status = { path = \"s\", format = \"clf\" }",
                "json mapping \"m\", fields.status: `format` and `time_zone` apply only to the time entry",
            ),
            (
                "name = \" \"\nfields.time = \"t\"",
                "json mapping \" \", name: the name must be non-empty",
            ),
            (
                "name = \"m\"\nstrip_prefix = \"\"\nfields.time = \"t\"",
                "json mapping \"m\", strip_prefix: the prefix is empty",
            ),
            (
                "name = \"m\"\nsensor = \"\"\nfields.time = \"t\"",
                "json mapping \"m\", sensor: the sensor label is empty",
            ),
            (
                "name = \"m\"\nattributes = [\"ok\", \"\"]\nfields.time = \"t\"",
                "json mapping \"m\", attributes: invalid field name \"\"",
            ),
        ];
        for (toml, expected) in cases {
            let message = from_toml(toml).expect_err(toml);
            assert!(
                message.starts_with(expected),
                "for {toml:?}\n expected {expected:?}\n got {message:?}"
            );
        }
    }

    #[test]
    fn bad_toml_shapes() {
        let cases = [
            (
                "name = \"m\"\nfields.time = 5",
                "invalid type: integer `5`, expected a field path",
            ),
            (
                "name = \"m\"\nattributes = \"some\"\nfields.time = \"t\"",
                "invalid value: string \"some\", expected \"all\", \"none\" or a list of field names",
            ),
            (
                "name = \"m\"\nfields.time = { paths = \"t\" }",
                "unknown field `paths`",
            ),
            ("name = \"m\"\nfield.time = \"t\"", "unknown field `field`"),
            ("fields.time = \"t\"", "missing field `name`"),
        ];
        for (toml, expected) in cases {
            let message = from_toml(toml).expect_err(toml);
            assert!(
                message.contains(expected),
                "for {toml:?}\n expected {expected:?}\n got {message:?}"
            );
        }
    }

    #[test]
    fn attribute_selection() {
        let only = AttributeSelection::Only(vec!["http.headers".into(), "service".into()]);
        assert!(only.includes("service"));
        assert!(only.includes("http.headers.accept"));
        assert!(!only.includes("http.headersx"));
        assert!(!only.includes("services"));
        assert!(AttributeSelection::All.includes("x"));
        assert!(!AttributeSelection::None.includes("x"));
    }
}
