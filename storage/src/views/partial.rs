//! Partial aggregates of events: the rows of the views table.
//!
//! [`ViewPartials::from_events`] folds a batch of events into one row per
//! key, at two grains:
//!
//! - `hour`: per hour bucket, consumer, host, method and endpoint; the
//!   source of `consumer_activity` and the baselines.
//! - `all`: the same key without the hour; the source of `endpoints` and
//!   `consumers`, so those views read a number of rows that grows with the
//!   keys, not with time.
//!
//! Partials built from events hold only their hour rows, and the `all` rows
//! are derived from them when the partials are written out
//! ([`ViewPartials::to_record_batch`]). Deriving them once per flush rather
//! than once per appended batch halves the rows that ingest builds, clones
//! and merges.
//!
//! Every column merges: counts and sums add, first and last seen take the
//! minimum and maximum, sketches merge, the auth-scheme mask is OR-ed and
//! network lists are unioned up to [`MAX_NETWORKS`]. Merging the partials of
//! two batches gives the partials of both batches.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, Int32Builder, Int64Builder, ListBuilder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{
    DataType, Field, Float64Type, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType,
};

use crate::sketch::{DistinctSketch, QuantileSketch};

/// Hash map with a fast hasher: the keys are built from the caller's own data
/// inside one process, so flooding resistance buys nothing here.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// Networks kept per row; a consumer seen from more is listed with the first ones in text order.
pub const MAX_NETWORKS: usize = 32;

/// Name of the grain partition column and its two values.
pub const GRAIN_COLUMN: &str = "grain";
pub const GRAIN_HOUR: &str = "hour";
pub const GRAIN_ALL: &str = "all";

/// Bits of the `auth_schemes` mask, in the order of [`AUTH_SCHEMES`].
pub const AUTH_SCHEMES: [&str; 6] = ["none", "basic", "bearer", "api_key", "mtls", "other"];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let count = |name: &str| Field::new(name, DataType::Int64, false);
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let binary = |name: &str| Field::new(name, DataType::Binary, false);
    Arc::new(Schema::new(vec![
        Field::new("bucket", timestamp.clone(), true),
        text("consumer"),
        text("consumer_kind"),
        text("host"),
        text("method"),
        text("endpoint"),
        Field::new("first_seen", timestamp.clone(), false),
        Field::new("last_seen", timestamp, false),
        count("calls"),
        count("duplicate_sightings"),
        count("status_2xx"),
        count("status_3xx"),
        count("status_4xx"),
        count("status_5xx"),
        count("status_other"),
        count("status_401"),
        count("status_403"),
        count("status_404"),
        count("status_429"),
        count("bytes_in"),
        count("bytes_out"),
        binary("latency_ms"),
        binary("client_ips"),
        binary("user_agents"),
        binary("object_ids"),
        Field::new("auth_schemes", DataType::Int32, false),
        Field::new(
            "networks",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        Field::new(GRAIN_COLUMN, DataType::Utf8, false),
    ]))
});

/// Arrow schema of the views table.
pub fn partials_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Rows of the views table that cannot be read back as partials.
#[derive(Debug, thiserror::Error)]
pub enum PartialsError {
    #[error("the views table has no column {0}")]
    MissingColumn(String),
    #[error("column {0} of the views table has an unexpected type")]
    Cast(String, #[source] arrow::error::ArrowError),
    #[error(transparent)]
    Sketch(#[from] crate::sketch::SketchError),
}

/// Key of one partial row; `bucket` is `None` at the `all` grain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartialKey {
    pub bucket: Option<i64>,
    pub consumer: Option<String>,
    pub consumer_kind: Option<String>,
    pub host: Option<String>,
    pub method: Option<String>,
    pub endpoint: Option<String>,
}

/// Mergeable aggregates of the calls under one key.
#[derive(Debug, Clone)]
pub struct PartialRow {
    pub first_seen: i64,
    pub last_seen: i64,
    pub calls: i64,
    pub duplicate_sightings: i64,
    /// 2xx, 3xx, 4xx, 5xx, other (1xx, unknown or out of range).
    pub status_classes: [i64; 5],
    /// 401, 403, 404 and 429, the statuses the detectors look at.
    pub status_watch: [i64; 4],
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub latency_ms: QuantileSketch,
    pub client_ips: DistinctSketch,
    pub user_agents: DistinctSketch,
    pub object_ids: DistinctSketch,
    pub auth_schemes: i32,
    pub networks: BTreeSet<String>,
}

impl PartialRow {
    fn new(time: i64) -> Self {
        PartialRow {
            first_seen: time,
            last_seen: time,
            calls: 0,
            duplicate_sightings: 0,
            status_classes: [0; 5],
            status_watch: [0; 4],
            bytes_in: 0,
            bytes_out: 0,
            latency_ms: QuantileSketch::new(),
            client_ips: DistinctSketch::new(),
            user_agents: DistinctSketch::new(),
            object_ids: DistinctSketch::new(),
            auth_schemes: 0,
            networks: BTreeSet::new(),
        }
    }

    pub fn merge(&mut self, other: &PartialRow) {
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.calls += other.calls;
        self.duplicate_sightings += other.duplicate_sightings;
        for (mine, theirs) in self.status_classes.iter_mut().zip(other.status_classes) {
            *mine += theirs;
        }
        for (mine, theirs) in self.status_watch.iter_mut().zip(other.status_watch) {
            *mine += theirs;
        }
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.latency_ms.merge(&other.latency_ms);
        self.client_ips.merge(&other.client_ips);
        self.user_agents.merge(&other.user_agents);
        self.object_ids.merge(&other.object_ids);
        self.auth_schemes |= other.auth_schemes;
        for network in &other.networks {
            add_network(&mut self.networks, network);
        }
    }
}

/// The key of the `all` row that an hour row adds to.
fn all_grain_key(key: &PartialKey) -> PartialKey {
    PartialKey {
        bucket: None,
        ..key.clone()
    }
}

/// Sums hour rows into `all` rows; rows that already have no bucket are skipped.
fn all_grain_of(rows: &HashMap<PartialKey, PartialRow>) -> HashMap<PartialKey, PartialRow> {
    let mut all: HashMap<PartialKey, PartialRow> = HashMap::default();
    for (key, row) in rows {
        if key.bucket.is_none() {
            continue;
        }
        let all_key = all_grain_key(key);
        match all.get_mut(&all_key) {
            Some(existing) => existing.merge(row),
            None => {
                all.insert(all_key, row.clone());
            }
        }
    }
    all
}

fn add_network(networks: &mut BTreeSet<String>, network: &str) {
    if networks.contains(network) {
        return;
    }
    networks.insert(network.to_string());
    if networks.len() > MAX_NETWORKS {
        networks.pop_last();
    }
}

/// Partial rows of both grains, keyed for merging.
#[derive(Debug, Clone, Default)]
pub struct ViewPartials {
    rows: HashMap<PartialKey, PartialRow>,
    /// True when `rows` holds only hour rows and the `all` grain is their
    /// sum, derived on output; false when `rows` holds both grains as read.
    all_implied: bool,
}

/// Column views of an event batch, looked up by name once per batch.
struct EventColumns<'a> {
    time: &'a arrow::array::PrimitiveArray<TimestampMicrosecondType>,
    consumer: &'a arrow::array::StringArray,
    consumer_kind: &'a arrow::array::StringArray,
    host: &'a arrow::array::StringArray,
    method: &'a arrow::array::StringArray,
    endpoint: &'a arrow::array::StringArray,
    path: &'a arrow::array::StringArray,
    status: &'a arrow::array::PrimitiveArray<Int32Type>,
    duration_ms: &'a arrow::array::PrimitiveArray<Float64Type>,
    request_bytes: &'a arrow::array::PrimitiveArray<Int64Type>,
    response_bytes: &'a arrow::array::PrimitiveArray<Int64Type>,
    client_ip: &'a arrow::array::StringArray,
    user_agent: &'a arrow::array::StringArray,
    auth_scheme: &'a arrow::array::StringArray,
}

impl<'a> EventColumns<'a> {
    fn of(batch: &'a RecordBatch) -> Option<Self> {
        let text = |name: &str| batch.column_by_name(name)?.as_string_opt::<i32>();
        Some(EventColumns {
            time: batch
                .column_by_name("time")?
                .as_primitive_opt::<TimestampMicrosecondType>()?,
            consumer: text("consumer")?,
            consumer_kind: text("consumer_kind")?,
            host: text("host")?,
            method: text("method")?,
            endpoint: text("endpoint")?,
            path: text("path")?,
            status: batch.column_by_name("status")?.as_primitive_opt()?,
            duration_ms: batch.column_by_name("duration_ms")?.as_primitive_opt()?,
            request_bytes: batch.column_by_name("request_bytes")?.as_primitive_opt()?,
            response_bytes: batch.column_by_name("response_bytes")?.as_primitive_opt()?,
            client_ip: text("client_ip")?,
            user_agent: text("user_agent")?,
            auth_scheme: text("auth_scheme")?,
        })
    }
}

fn value(array: &arrow::array::StringArray, row: usize) -> Option<&str> {
    array.is_valid(row).then(|| array.value(row))
}

impl ViewPartials {
    /// Aggregates the events of `batch`, skipping the rows that `duplicate` marks.
    ///
    /// `duplicate[i]` is true when row `i` is another sensor's sighting of a
    /// call already counted; such rows only add to `duplicate_sightings`.
    /// Panics if `batch` does not have the event schema, which every batch
    /// in the store has by construction.
    pub fn from_events(batch: &RecordBatch, duplicate: &[bool]) -> Self {
        let columns = EventColumns::of(batch).expect("a store batch has the event schema");

        // Rows are grouped under keys borrowed from the batch, and owned
        // keys are built once per distinct key: allocating them per event
        // was most of the cost of this step.
        type BorrowedKey<'b> = (
            i64,
            Option<&'b str>,
            Option<&'b str>,
            Option<&'b str>,
            Option<&'b str>,
            Option<&'b str>,
        );
        let mut groups: HashMap<BorrowedKey<'_>, PartialRow> = HashMap::default();
        let mut scratch = String::new();
        for row in 0..batch.num_rows() {
            let time = columns.time.value(row);
            let key = (
                time.div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR,
                value(columns.consumer, row),
                value(columns.consumer_kind, row),
                value(columns.host, row),
                value(columns.method, row),
                value(columns.endpoint, row),
            );
            let is_duplicate = duplicate.get(row).copied().unwrap_or(false);
            let hour_row = groups.entry(key).or_insert_with(|| PartialRow::new(time));
            add_event(hour_row, &columns, row, time, is_duplicate, &mut scratch);
        }

        let mut rows = HashMap::with_capacity_and_hasher(groups.len(), Default::default());
        let owned = |text: Option<&str>| text.map(str::to_string);
        for ((bucket, consumer, consumer_kind, host, method, endpoint), row) in groups {
            let key = PartialKey {
                bucket: Some(bucket),
                consumer: owned(consumer),
                consumer_kind: owned(consumer_kind),
                host: owned(host),
                method: owned(method),
                endpoint: owned(endpoint),
            };
            rows.insert(key, row);
        }
        ViewPartials {
            rows,
            all_implied: true,
        }
    }

    fn add_row(&mut self, key: PartialKey, row: &PartialRow) {
        match self.rows.get_mut(&key) {
            Some(existing) => existing.merge(row),
            None => {
                self.rows.insert(key, row.clone());
            }
        }
    }

    /// Adds every row of `other`.
    pub fn merge(&mut self, other: &ViewPartials) {
        if self.rows.is_empty() {
            self.all_implied = other.all_implied;
        }
        if self.all_implied && !other.all_implied {
            self.derive_all_grain();
        }
        for (key, row) in &other.rows {
            self.add_row(key.clone(), row);
            if !self.all_implied && other.all_implied {
                self.add_row(all_grain_key(key), row);
            }
        }
    }

    /// Adds the `all` rows to `rows`, once, so both grains are explicit.
    fn derive_all_grain(&mut self) {
        if !self.all_implied {
            return;
        }
        self.all_implied = false;
        let all = all_grain_of(&self.rows);
        for (key, row) in all {
            self.add_row(key, &row);
        }
    }

    /// Drops the hour rows whose bucket starts before `first_micros`; returns how many.
    ///
    /// Rows of the `all` grain have no bucket and stay, so the endpoint and
    /// consumer totals still count the dropped hours.
    pub fn drop_buckets_before(&mut self, first_micros: i64) -> usize {
        let before = self.rows.len();
        self.rows
            .retain(|key, _| key.bucket.is_none_or(|bucket| bucket >= first_micros));
        before - self.rows.len()
    }

    /// Number of rows held; with the `all` grain implied, hour rows only.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows held; with the `all` grain implied (partials built from
    /// events), hour rows only. [`ViewPartials::to_record_batch`] writes both.
    pub fn rows(&self) -> impl Iterator<Item = (&PartialKey, &PartialRow)> {
        self.rows.iter()
    }

    /// Reads rows written by [`ViewPartials::to_record_batch`] back, merging equal keys.
    ///
    /// Columns are found by name and cast to the partials schema, since a
    /// Parquet scan may return strings and binaries as view types.
    pub fn from_record_batch(batch: &RecordBatch) -> Result<Self, PartialsError> {
        let columns = partials_schema()
            .fields()
            .iter()
            .map(|field| {
                let column = batch
                    .column_by_name(field.name())
                    .ok_or_else(|| PartialsError::MissingColumn(field.name().clone()))?;
                if column.data_type() == field.data_type() {
                    Ok(column.clone())
                } else {
                    arrow::compute::cast(column, field.data_type())
                        .map_err(|e| PartialsError::Cast(field.name().clone(), e))
                }
            })
            .collect::<Result<Vec<ArrayRef>, PartialsError>>()?;
        let bucket = columns[0].as_primitive::<TimestampMicrosecondType>();
        let text: Vec<&arrow::array::StringArray> =
            columns[1..6].iter().map(|c| c.as_string::<i32>()).collect();
        let first_seen = columns[6].as_primitive::<TimestampMicrosecondType>();
        let last_seen = columns[7].as_primitive::<TimestampMicrosecondType>();
        let counts: Vec<&arrow::array::PrimitiveArray<Int64Type>> = columns[8..21]
            .iter()
            .map(|c| c.as_primitive::<Int64Type>())
            .collect();
        let sketches: Vec<&arrow::array::BinaryArray> = columns[21..25]
            .iter()
            .map(|c| c.as_binary::<i32>())
            .collect();
        let auth_schemes = columns[25].as_primitive::<Int32Type>();
        let networks = columns[26].as_list::<i32>();

        let mut partials = ViewPartials::default();
        for row in 0..batch.num_rows() {
            let text_at = |i: usize| value(text[i], row).map(str::to_string);
            let key = PartialKey {
                bucket: bucket.is_valid(row).then(|| bucket.value(row)),
                consumer: text_at(0),
                consumer_kind: text_at(1),
                host: text_at(2),
                method: text_at(3),
                endpoint: text_at(4),
            };
            let count = |i: usize| counts[i].value(row);
            let sketch = |i: usize| sketches[i].value(row);
            let mut network_set = BTreeSet::new();
            if networks.is_valid(row) {
                let values = networks.value(row);
                for network in values.as_string::<i32>().iter().flatten() {
                    network_set.insert(network.to_string());
                }
            }
            let partial = PartialRow {
                first_seen: first_seen.value(row),
                last_seen: last_seen.value(row),
                calls: count(0),
                duplicate_sightings: count(1),
                status_classes: [count(2), count(3), count(4), count(5), count(6)],
                status_watch: [count(7), count(8), count(9), count(10)],
                bytes_in: count(11),
                bytes_out: count(12),
                latency_ms: QuantileSketch::from_bytes(sketch(0))?,
                client_ips: DistinctSketch::from_bytes(sketch(1))?,
                user_agents: DistinctSketch::from_bytes(sketch(2))?,
                object_ids: DistinctSketch::from_bytes(sketch(3))?,
                auth_schemes: auth_schemes.value(row),
                networks: network_set,
            };
            partials.add_row(key, &partial);
        }
        Ok(partials)
    }

    /// Builds the rows of both grains as one batch of [`partials_schema`], sorted by key.
    pub fn to_record_batch(&self) -> RecordBatch {
        let derived = if self.all_implied {
            all_grain_of(&self.rows)
        } else {
            HashMap::default()
        };
        let mut keys: Vec<(&PartialKey, &PartialRow)> =
            self.rows.iter().chain(derived.iter()).collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let n = keys.len();
        let mut bucket = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut text: Vec<StringBuilder> = (0..5).map(|_| StringBuilder::new()).collect();
        let mut first_seen = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut last_seen = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut counts: Vec<Int64Builder> = (0..13).map(|_| Int64Builder::new()).collect();
        let mut sketches: Vec<BinaryBuilder> = (0..4).map(|_| BinaryBuilder::new()).collect();
        let mut auth_schemes = Int32Builder::with_capacity(n);
        let mut networks = ListBuilder::new(StringBuilder::new());
        let mut grain = StringBuilder::new();

        for (key, row) in keys {
            bucket.append_option(key.bucket);
            let key_text = [
                &key.consumer,
                &key.consumer_kind,
                &key.host,
                &key.method,
                &key.endpoint,
            ];
            for (builder, value) in text.iter_mut().zip(key_text) {
                builder.append_option(value.as_deref());
            }
            first_seen.append_value(row.first_seen);
            last_seen.append_value(row.last_seen);
            let values = [row.calls, row.duplicate_sightings]
                .into_iter()
                .chain(row.status_classes)
                .chain(row.status_watch)
                .chain([row.bytes_in, row.bytes_out]);
            for (builder, value) in counts.iter_mut().zip(values) {
                builder.append_value(value);
            }
            let encoded = [
                row.latency_ms.to_bytes(),
                row.client_ips.to_bytes(),
                row.user_agents.to_bytes(),
                row.object_ids.to_bytes(),
            ];
            for (builder, bytes) in sketches.iter_mut().zip(encoded) {
                builder.append_value(bytes);
            }
            auth_schemes.append_value(row.auth_schemes);
            for network in &row.networks {
                networks.values().append_value(network);
            }
            networks.append(true);
            grain.append_value(if key.bucket.is_some() {
                GRAIN_HOUR
            } else {
                GRAIN_ALL
            });
        }

        let mut columns: Vec<ArrayRef> = vec![Arc::new(bucket.finish())];
        columns.extend(text.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.push(Arc::new(first_seen.finish()));
        columns.push(Arc::new(last_seen.finish()));
        columns.extend(counts.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.extend(
            sketches
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        columns.push(Arc::new(auth_schemes.finish()));
        columns.push(Arc::new(networks.finish()));
        columns.push(Arc::new(grain.finish()));
        RecordBatch::try_new(partials_schema(), columns)
            .expect("the builders follow the partials schema")
    }
}

fn add_event(
    partial: &mut PartialRow,
    columns: &EventColumns<'_>,
    row: usize,
    time: i64,
    is_duplicate: bool,
    scratch: &mut String,
) {
    partial.first_seen = partial.first_seen.min(time);
    partial.last_seen = partial.last_seen.max(time);
    if is_duplicate {
        partial.duplicate_sightings += 1;
        return;
    }
    partial.calls += 1;

    let status = columns
        .status
        .is_valid(row)
        .then(|| columns.status.value(row));
    let class = match status {
        Some(200..=299) => 0,
        Some(300..=399) => 1,
        Some(400..=499) => 2,
        Some(500..=599) => 3,
        _ => 4,
    };
    partial.status_classes[class] += 1;
    let watched = match status {
        Some(401) => Some(0),
        Some(403) => Some(1),
        Some(404) => Some(2),
        Some(429) => Some(3),
        _ => None,
    };
    if let Some(index) = watched {
        partial.status_watch[index] += 1;
    }

    if columns.request_bytes.is_valid(row) {
        partial.bytes_in += columns.request_bytes.value(row);
    }
    if columns.response_bytes.is_valid(row) {
        partial.bytes_out += columns.response_bytes.value(row);
    }
    if columns.duration_ms.is_valid(row) {
        partial.latency_ms.insert(columns.duration_ms.value(row));
    }
    if let Some(ip) = value(columns.client_ip, row) {
        partial.client_ips.insert(ip.as_bytes());
        if write_network(ip, scratch) {
            add_network(&mut partial.networks, scratch);
        }
    }
    if let Some(agent) = value(columns.user_agent, row) {
        partial.user_agents.insert(agent.as_bytes());
    }
    if let (Some(path), Some(endpoint)) = (value(columns.path, row), value(columns.endpoint, row)) {
        insert_object_ids(&mut partial.object_ids, path, endpoint);
    }
    if let Some(scheme) = value(columns.auth_scheme, row)
        && let Some(bit) = AUTH_SCHEMES.iter().position(|s| *s == scheme)
    {
        partial.auth_schemes |= 1 << bit;
    }
}

/// Returns the network of an address: its /24 for IPv4, its /48 for IPv6.
pub fn network_of(ip: &str) -> Option<String> {
    let mut network = String::new();
    write_network(ip, &mut network).then_some(network)
}

/// Replaces the contents of `out` with the network of `ip`, as [`network_of`]
/// returns it; returns false, leaving `out` empty, when `ip` is not an address.
fn write_network(ip: &str, out: &mut String) -> bool {
    out.clear();
    // Writing to a String cannot fail.
    let _ = match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            write!(out, "{a}.{b}.{c}.0/24")
        }
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            write!(out, "{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        Err(_) => return false,
    };
    true
}

/// Values of the path at the endpoint's parameter segments, prefixed by the parameter.
///
/// `/v1/users/42/orders/7` under `/v1/users/{id}/orders/{id}` gives
/// `{id}=42` and `{id}=7`... keyed with the segment position so that the
/// same number under two parameters counts twice. A segment with a kept
/// extension (`{id}.json`) contributes its stem. Paths whose segment count
/// differs from the endpoint's give nothing.
pub fn object_ids<'a>(path: &'a str, endpoint: &'a str) -> impl Iterator<Item = String> + 'a {
    let aligned = path.split('/').count() == endpoint.split('/').count();
    path.split('/')
        .zip(endpoint.split('/'))
        .enumerate()
        .filter(move |_| aligned)
        .filter_map(|(position, (value, template))| {
            let close = template.find('}')?;
            if !template.starts_with('{') {
                return None;
            }
            let suffix = &template[close + 1..];
            let stem = value.strip_suffix(suffix).unwrap_or(value);
            Some(format!("{position}:{stem}"))
        })
}

/// Adds the hashes of [`object_ids`] to a sketch without building the strings.
fn insert_object_ids(sketch: &mut DistinctSketch, path: &str, endpoint: &str) {
    if path.split('/').count() != endpoint.split('/').count() {
        return;
    }
    for (position, (value, template)) in path.split('/').zip(endpoint.split('/')).enumerate() {
        let (Some(close), true) = (template.find('}'), template.starts_with('{')) else {
            continue;
        };
        let suffix = &template[close + 1..];
        let stem = value.strip_suffix(suffix).unwrap_or(value);
        let mut digits = [0u8; 20];
        let mut hasher = twox_hash::XxHash3_64::default();
        std::hash::Hasher::write(&mut hasher, decimal(position, &mut digits));
        std::hash::Hasher::write(&mut hasher, b":");
        std::hash::Hasher::write(&mut hasher, stem.as_bytes());
        sketch.insert_hash(std::hash::Hasher::finish(&hasher));
    }
}

/// Writes `value` in decimal at the end of `buffer` and returns those digits.
fn decimal(mut value: usize, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buffer[start..];
        }
    }
}

/// Returns the names of the schemes set in an `auth_schemes` mask.
pub fn auth_scheme_names(mask: i32) -> Vec<&'static str> {
    AUTH_SCHEMES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use apitrail_ingest::{Event, EventBatchBuilder};

    fn event(minute: i64, consumer: &str, path: &str, endpoint: &str, status: i32) -> Event {
        let mut event = Event::new("clf", minute * 60_000_000);
        event.consumer = Some(consumer.to_string());
        event.consumer_kind = Some("api_key".to_string());
        event.host = Some("api.example.com".to_string());
        event.method = Some("GET".to_string());
        event.path = Some(path.to_string());
        event.endpoint = Some(endpoint.to_string());
        event.status = Some(status);
        event.duration_ms = Some(minute as f64);
        event.response_bytes = Some(100);
        event.client_ip = Some(format!("198.51.100.{}", minute % 3));
        event.user_agent = Some("curl/8".to_string());
        event.auth_scheme = Some("bearer".to_string());
        event
    }

    fn batch(events: &[Event]) -> RecordBatch {
        let mut builder = EventBatchBuilder::new();
        for event in events {
            builder.push(event);
        }
        builder.finish()
    }

    /// Returns the partials as written to the table and read back, with both grains explicit.
    fn written(partials: &ViewPartials) -> ViewPartials {
        ViewPartials::from_record_batch(&partials.to_record_batch()).expect("reads back")
    }

    fn find<'a>(partials: &'a ViewPartials, bucket: Option<i64>, consumer: &str) -> &'a PartialRow {
        partials
            .rows()
            .find(|(key, _)| key.bucket == bucket && key.consumer.as_deref() == Some(consumer))
            .map(|(_, row)| row)
            .unwrap_or_else(|| panic!("no row for {consumer} at {bucket:?}"))
    }

    #[test]
    fn partials_both_grains() {
        let events = [
            event(1, "a", "/v1/users/1", "/v1/users/{id}", 200),
            event(2, "a", "/v1/users/2", "/v1/users/{id}", 404),
            event(61, "a", "/v1/users/1", "/v1/users/{id}", 500),
            event(3, "b", "/v1/users/9", "/v1/users/{id}", 401),
        ];
        let from_events = ViewPartials::from_events(&batch(&events), &[false; 4]);
        assert_eq!(
            from_events.len(),
            3,
            "partials of events hold their hour rows"
        );
        let partials = written(&from_events);
        assert_eq!(partials.len(), 3 + 2, "3 hour rows and 2 consumer rows");

        let first_hour = find(&partials, Some(0), "a");
        assert_eq!(first_hour.calls, 2);
        assert_eq!(first_hour.status_classes, [1, 0, 1, 0, 0]);
        assert_eq!(first_hour.status_watch, [0, 0, 1, 0]);
        assert_eq!(first_hour.object_ids.estimate(), 2);

        let all = find(&partials, None, "a");
        assert_eq!(all.calls, 3);
        assert_eq!(all.first_seen, 60_000_000);
        assert_eq!(all.last_seen, 61 * 60_000_000);
        assert_eq!(all.bytes_out, 300);
        assert_eq!(all.object_ids.estimate(), 2, "ids 1 and 2");
        assert_eq!(all.latency_ms.count(), 3);
        assert_eq!(
            all.client_ips.estimate(),
            2,
            "minutes 1, 2 and 61 map to .1, .2 and .1"
        );
        assert_eq!(auth_scheme_names(all.auth_schemes), vec!["bearer"]);
        assert_eq!(
            all.networks.iter().collect::<Vec<_>>(),
            vec!["198.51.100.0/24"]
        );
    }

    #[test]
    fn partials_merge_equals_whole() {
        let events: Vec<Event> = (0..200)
            .map(|i| {
                let consumer = ["a", "b", "c"][i % 3];
                event(
                    i as i64,
                    consumer,
                    &format!("/o/{i}"),
                    "/o/{id}",
                    200 + (i as i32 % 4) * 100,
                )
            })
            .collect();
        let whole = ViewPartials::from_events(&batch(&events), &[false; 200]);
        let mut merged = ViewPartials::from_events(&batch(&events[..77]), &[false; 77]);
        merged.merge(&ViewPartials::from_events(
            &batch(&events[77..]),
            &[false; 123],
        ));
        assert_eq!(
            whole.to_record_batch(),
            merged.to_record_batch(),
            "merging partials of two halves must equal the partials of the whole"
        );
    }

    #[test]
    fn merge_implied_and_explicit_grains() {
        let events: Vec<Event> = (0..120)
            .map(|i| event(i, ["a", "b"][i as usize % 2], "/x", "/x", 200))
            .collect();
        let whole = ViewPartials::from_events(&batch(&events), &[false; 120]).to_record_batch();
        let first = ViewPartials::from_events(&batch(&events[..50]), &[false; 50]);
        let second = ViewPartials::from_events(&batch(&events[50..]), &[false; 70]);

        let mut explicit_then_implied = written(&first);
        explicit_then_implied.merge(&second);
        assert_eq!(explicit_then_implied.to_record_batch(), whole);

        let mut implied_then_explicit = first.clone();
        implied_then_explicit.merge(&written(&second));
        assert_eq!(implied_then_explicit.to_record_batch(), whole);

        let mut implied_twice = first;
        implied_twice.merge(&second);
        assert_eq!(implied_twice.to_record_batch(), whole);
    }

    #[test]
    fn duplicates_counted_apart() {
        let events = [
            event(1, "a", "/x", "/x", 200),
            event(1, "a", "/x", "/x", 200),
        ];
        let partials = written(&ViewPartials::from_events(&batch(&events), &[false, true]));
        let all = find(&partials, None, "a");
        assert_eq!(all.calls, 1);
        assert_eq!(all.duplicate_sightings, 1);
    }

    #[test]
    fn object_ids_aligned_only() {
        let ids: Vec<String> = object_ids(
            "/v1/users/42/files/7.json",
            "/v1/users/{id}/files/{id}.json",
        )
        .collect();
        assert_eq!(ids, vec!["3:42", "5:7"]);
        assert_eq!(
            object_ids("/a/b/c", "/a/{id}").count(),
            0,
            "segment counts differ"
        );
    }

    #[test]
    fn object_id_hashes_match_strings() {
        let (path, endpoint) = (
            "/v1/users/42/files/7.json",
            "/v1/users/{id}/files/{id}.json",
        );
        let mut from_strings = DistinctSketch::new();
        for id in object_ids(path, endpoint) {
            from_strings.insert(id.as_bytes());
        }
        let mut streamed = DistinctSketch::new();
        insert_object_ids(&mut streamed, path, endpoint);
        assert_eq!(
            streamed, from_strings,
            "both ways must hash the same ids alike"
        );
    }

    #[test]
    fn networks_by_family() {
        assert_eq!(network_of("203.0.113.9").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(
            network_of("2001:db8:abcd:12::1").as_deref(),
            Some("2001:db8:abcd::/48")
        );
        assert_eq!(network_of("not an ip"), None);
    }

    #[test]
    fn networks_capped() {
        let mut networks = BTreeSet::new();
        for i in 0..100 {
            add_network(&mut networks, &format!("10.0.{i}.0/24"));
        }
        assert_eq!(networks.len(), MAX_NETWORKS);
    }

    #[test]
    fn record_batch_round_trip() {
        let events: Vec<Event> = (0..50)
            .map(|i| {
                event(
                    i,
                    ["a", "b"][i as usize % 2],
                    &format!("/o/{i}"),
                    "/o/{id}",
                    200,
                )
            })
            .collect();
        let partials = ViewPartials::from_events(&batch(&events), &[false; 50]);
        let written = partials.to_record_batch();
        let read = ViewPartials::from_record_batch(&written).expect("reads back");
        assert_eq!(read.to_record_batch(), written);

        let doubled =
            arrow::compute::concat_batches(&partials_schema(), [&written, &written]).unwrap();
        let merged = ViewPartials::from_record_batch(&doubled).expect("reads back");
        assert_eq!(
            merged.len(),
            written.num_rows(),
            "equal keys merge into one row"
        );
        let all_a = merged
            .rows()
            .find(|(k, _)| k.bucket.is_none() && k.consumer.as_deref() == Some("a"))
            .unwrap()
            .1;
        assert_eq!(all_a.calls, 50, "25 calls of a, read twice");
    }

    #[test]
    fn record_batch_matches_schema() {
        let events = [event(1, "a", "/x", "/x", 200)];
        let batch = ViewPartials::from_events(&batch(&events), &[false]).to_record_batch();
        assert_eq!(batch.schema(), partials_schema());
        assert_eq!(batch.num_rows(), 2);
    }
}
