//! Recognising one call seen by several sensors.
//!
//! A request can pass a CDN, then a load balancer, then a gateway, and each
//! of them logs it. `events` keeps every sighting with its sensor; the views
//! count the call once. Two sightings are the same call when they come from
//! different sensors and either share a request id or trace id within
//! [`DedupeConfig::id_window`], or share client IP, method and path with
//! times no further apart than [`DedupeConfig::match_window`].
//!
//! The first sighting to arrive counts and later ones are marked duplicate,
//! so the number of calls does not depend on which sensor's log arrives
//! first, as long as the sightings of one call arrive within the last
//! [`DedupeConfig::max_entries`] / 2 sightings of each other. The index
//! keeps two generations of that many sightings each and drops the older
//! one when the newer fills, which bounds its memory (under 100 bytes per
//! sighting) whatever the time span of the input: a sensor's whole day of
//! logs followed by another sensor's day is deduplicated while the day holds
//! fewer sightings than half the limit.
//!
//! A generation is a list of sightings in arrival order, and its hash index
//! is built only once sightings from a second sensor are remembered. A store
//! fed by one sensor, the usual case, therefore only appends to a list,
//! which keeps this step cheap next to parsing.
//!
//! NOTE: the index lives in memory, in one process. After a restart it is
//! rebuilt from the replayed WAL only, so a second sensor's sighting that
//! arrives just after a restart, while the first one was already flushed,
//! counts again; and two separate `apitrail import --data-dir` runs do not
//! see each other's sightings.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;

use crate::sketch::hash_value;

/// Settings of cross-sensor deduplication; windows in microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupeConfig {
    /// Sightings with the same request or trace id this close in time are one call; 0 disables.
    pub id_window: i64,
    /// Sightings with the same client, method and path this close in time are one call; 0 disables.
    pub match_window: i64,
    /// Sightings remembered at most, oldest arrival forgotten first.
    pub max_entries: usize,
}

impl Default for DedupeConfig {
    fn default() -> Self {
        DedupeConfig {
            id_window: 60_000_000,
            match_window: 1_000_000,
            max_entries: 1_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sighting {
    sensor: u64,
    time: i64,
}

/// The remembered sightings of one key, oldest first. Most keys are seen
/// once, and holding that sighting inline spares an allocation per key.
#[derive(Debug)]
enum Sightings {
    One(Sighting),
    Many(Vec<Sighting>),
}

impl Sightings {
    fn iter(&self) -> std::slice::Iter<'_, Sighting> {
        match self {
            Sightings::One(sighting) => std::slice::from_ref(sighting).iter(),
            Sightings::Many(list) => list.iter(),
        }
    }

    fn push(&mut self, sighting: Sighting) {
        match self {
            Sightings::One(first) => *self = Sightings::Many(vec![*first, sighting]),
            Sightings::Many(list) => list.push(sighting),
        }
    }
}

/// Hash map keyed by hashes that are already well mixed.
type KeyMap<V> = std::collections::HashMap<u64, V, foldhash::fast::RandomState>;

/// Sightings remembered in one generation.
#[derive(Debug, Default)]
struct Generation {
    /// Every sighting with its key, in arrival order.
    arrivals: Vec<(u64, Sighting)>,
    /// `arrivals` by key; built when first needed, then kept up to date.
    by_key: Option<KeyMap<Sightings>>,
    /// Hashes of the sensors in `arrivals`; almost always one or two.
    sensors: Vec<u64>,
}

impl Generation {
    fn remember(&mut self, key: u64, sighting: Sighting) {
        self.arrivals.push((key, sighting));
        if let Some(by_key) = &mut self.by_key {
            add_sighting(by_key, key, sighting);
        }
        if !self.sensors.contains(&sighting.sensor) {
            self.sensors.push(sighting.sensor);
        }
    }

    fn by_key(&mut self) -> &KeyMap<Sightings> {
        self.by_key.get_or_insert_with(|| {
            let mut by_key =
                KeyMap::with_capacity_and_hasher(self.arrivals.len(), Default::default());
            for &(key, sighting) in &self.arrivals {
                add_sighting(&mut by_key, key, sighting);
            }
            by_key
        })
    }

    fn has_sensor_other_than(&self, sensor: u64) -> bool {
        self.sensors.iter().any(|&s| s != sensor)
    }
}

fn add_sighting(by_key: &mut KeyMap<Sightings>, key: u64, sighting: Sighting) {
    match by_key.entry(key) {
        std::collections::hash_map::Entry::Occupied(mut entry) => entry.get_mut().push(sighting),
        std::collections::hash_map::Entry::Vacant(entry) => {
            entry.insert(Sightings::One(sighting));
        }
    }
}

/// Recent sightings in two generations: `current` fills, then replaces `previous`.
#[derive(Debug, Default)]
pub struct SightingIndex {
    config: DedupeConfig,
    current: Generation,
    previous: Generation,
}

impl SightingIndex {
    pub fn new(config: DedupeConfig) -> Self {
        SightingIndex {
            config,
            ..SightingIndex::default()
        }
    }

    /// Records the sightings of `batch` and returns, per row, whether it repeats an earlier one.
    pub fn mark(&mut self, batch: &RecordBatch) -> Vec<bool> {
        let mut duplicate = vec![false; batch.num_rows()];
        if self.config.id_window == 0 && self.config.match_window == 0 {
            return duplicate;
        }
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
        };
        let (Some(time), Some(sensor), Some(request_id), Some(trace_id)) = (
            batch
                .column_by_name("time")
                .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>()),
            text("sensor"),
            text("request_id"),
            text("trace_id"),
        ) else {
            return duplicate;
        };
        let (Some(client_ip), Some(method), Some(path)) =
            (text("client_ip"), text("method"), text("path"))
        else {
            return duplicate;
        };

        // Consecutive rows nearly always share their sensor, so its hash is
        // computed again only when the name changes.
        let mut sensor_name = None;
        let mut sensor_hash = 0;
        for (row, is_duplicate) in duplicate.iter_mut().enumerate() {
            let time = time.value(row);
            let name = get(sensor, row).unwrap_or("");
            if sensor_name != Some(name) {
                sensor_name = Some(name);
                sensor_hash = hash_value(name.as_bytes());
            }
            let sighting = Sighting {
                sensor: sensor_hash,
                time,
            };
            let mut keys = [None, None];
            if self.config.id_window > 0 {
                keys[0] = get(request_id, row)
                    .or_else(|| get(trace_id, row))
                    .map(|id| (key_hash(&[b"id", id.as_bytes()]), self.config.id_window));
            }
            if self.config.match_window > 0
                && let (Some(ip), Some(method), Some(path)) =
                    (get(client_ip, row), get(method, row), get(path, row))
            {
                let key = key_hash(&[b"call", ip.as_bytes(), method.as_bytes(), path.as_bytes()]);
                keys[1] = Some((key, self.config.match_window));
            }
            *is_duplicate = keys
                .iter()
                .flatten()
                .any(|&(key, window)| self.seen_elsewhere(key, sighting, window));
            for (key, _) in keys.into_iter().flatten() {
                self.remember(key, sighting);
            }
        }
        duplicate
    }

    fn seen_elsewhere(&mut self, key: u64, sighting: Sighting, window: i64) -> bool {
        let matches = |sightings: &Sightings| {
            sightings
                .iter()
                .any(|e| e.sensor != sighting.sensor && (e.time - sighting.time).abs() <= window)
        };
        // Only another sensor's sightings can match, so a generation with
        // none needs no lookup, and no index.
        [&mut self.current, &mut self.previous]
            .into_iter()
            .filter(|generation| generation.has_sensor_other_than(sighting.sensor))
            .any(|generation| generation.by_key().get(&key).is_some_and(matches))
    }

    fn remember(&mut self, key: u64, sighting: Sighting) {
        self.current.remember(key, sighting);
        if self.current.arrivals.len() >= self.generation_size() {
            self.previous = std::mem::take(&mut self.current);
        }
    }

    fn generation_size(&self) -> usize {
        (self.config.max_entries / 2).max(1)
    }

    /// Number of sightings remembered.
    pub fn len(&self) -> usize {
        self.current.arrivals.len() + self.previous.arrivals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn get(array: &arrow::array::StringArray, row: usize) -> Option<&str> {
    array.is_valid(row).then(|| array.value(row))
}

fn key_hash(parts: &[&[u8]]) -> u64 {
    let mut hasher = twox_hash::XxHash3_64::default();
    for part in parts {
        std::hash::Hasher::write(&mut hasher, part);
        std::hash::Hasher::write(&mut hasher, &[0]);
    }
    std::hash::Hasher::finish(&hasher)
}

#[cfg(test)]
mod tests {
    use super::*;

    use apitrail_ingest::{Event, EventBatchBuilder};

    fn sighting(sensor: &str, millis: i64, request_id: Option<&str>) -> Event {
        let mut event = Event::new("clf", millis * 1_000);
        event.sensor = Some(sensor.to_string());
        event.request_id = request_id.map(str::to_string);
        event.client_ip = Some("198.51.100.7".to_string());
        event.method = Some("GET".to_string());
        event.path = Some("/v1/orders/1".to_string());
        event
    }

    fn mark(index: &mut SightingIndex, events: &[Event]) -> Vec<bool> {
        let mut builder = EventBatchBuilder::new();
        for event in events {
            builder.push(event);
        }
        index.mark(&builder.finish())
    }

    #[test]
    fn same_sensor_never_duplicate() {
        let mut index = SightingIndex::new(DedupeConfig::default());
        let marks = mark(
            &mut index,
            &[sighting("lb", 0, None), sighting("lb", 10, None)],
        );
        assert_eq!(
            marks,
            vec![false, false],
            "two calls through one sensor are two calls"
        );
    }

    #[test]
    fn chain_of_sensors_counts_once() {
        let mut index = SightingIndex::new(DedupeConfig::default());
        let marks = mark(
            &mut index,
            &[
                sighting("cdn", 0, None),
                sighting("lb", 40, None),
                sighting("gw", 90, None),
            ],
        );
        assert_eq!(marks, vec![false, true, true]);
    }

    #[test]
    fn match_window_bounds() {
        let mut index = SightingIndex::new(DedupeConfig::default());
        let marks = mark(
            &mut index,
            &[sighting("cdn", 0, None), sighting("lb", 1_500, None)],
        );
        assert_eq!(
            marks,
            vec![false, false],
            "1.5 s apart is beyond the 1 s window"
        );
    }

    #[test]
    fn request_id_across_batches() {
        let mut index = SightingIndex::new(DedupeConfig::default());
        let mut first = sighting("cdn", 0, Some("req-1"));
        first.client_ip = Some("203.0.113.1".to_string());
        assert_eq!(mark(&mut index, &[first]), vec![false]);
        let later = sighting("gw", 30_000, Some("req-1"));
        assert_eq!(
            mark(&mut index, &[later]),
            vec![true],
            "same id 30 s later from another sensor"
        );
    }

    #[test]
    fn out_of_order_arrival() {
        let mut index = SightingIndex::new(DedupeConfig::default());
        assert_eq!(mark(&mut index, &[sighting("gw", 500, None)]), vec![false]);
        assert_eq!(
            mark(&mut index, &[sighting("cdn", 0, None)]),
            vec![true],
            "the later arrival is the duplicate"
        );
    }

    #[test]
    fn disabled_marks_nothing() {
        let mut index = SightingIndex::new(DedupeConfig {
            id_window: 0,
            match_window: 0,
            ..DedupeConfig::default()
        });
        let marks = mark(
            &mut index,
            &[sighting("cdn", 0, Some("r")), sighting("lb", 0, Some("r"))],
        );
        assert_eq!(marks, vec![false, false]);
    }

    #[test]
    fn repeated_polls_count_once() {
        // A health check polled every second for a minute, logged by two sensors.
        let mut index = SightingIndex::new(DedupeConfig::default());
        let polls = |sensor: &str| -> Vec<Event> {
            (0..60)
                .map(|second| sighting(sensor, second * 1_000, None))
                .collect()
        };
        let first = mark(&mut index, &polls("cdn"));
        assert!(first.iter().all(|d| !d), "one sensor's polls are all calls");
        let second = mark(&mut index, &polls("lb"));
        assert!(
            second.iter().all(|d| *d),
            "every poll of the second sensor repeats one"
        );
    }

    #[test]
    fn whole_logs_in_turn() {
        // The whole hour of one sensor arrives before the other's.
        let mut index = SightingIndex::new(DedupeConfig::default());
        let hour = |sensor: &str| -> Vec<Event> {
            (0..3_600)
                .map(|second| {
                    let mut event = sighting(sensor, second * 1_000, None);
                    event.path = Some(format!("/v1/orders/{second}"));
                    event
                })
                .collect()
        };
        mark(&mut index, &hour("cdn"));
        let marks = mark(&mut index, &hour("lb"));
        assert_eq!(
            marks.iter().filter(|d| **d).count(),
            3_600,
            "every call of the hour seen twice"
        );
    }

    #[test]
    fn second_sensor_in_older_generation() {
        let mut index = SightingIndex::new(DedupeConfig {
            max_entries: 200,
            ..DedupeConfig::default()
        });
        // Each call has two keys (its id and its client+method+path), so the
        // 60 calls fill one generation of 100 sightings and start the next.
        let calls = |sensor: &str, range: std::ops::Range<i64>| -> Vec<Event> {
            range
                .map(|i| {
                    let mut event = sighting(sensor, i * 10_000, Some(&format!("r{i}")));
                    event.path = Some(format!("/p/{i}"));
                    event
                })
                .collect()
        };
        mark(&mut index, &calls("cdn", 0..60));
        assert_eq!(index.len(), 120);
        assert_eq!(
            mark(&mut index, &calls("lb", 0..3)),
            vec![true; 3],
            "the first calls are in the older generation, not yet forgotten"
        );
        mark(&mut index, &calls("cdn", 60..200));
        assert_eq!(
            mark(&mut index, &calls("lb", 1..2)),
            vec![false],
            "two generations later the first calls are forgotten"
        );
        assert_eq!(
            mark(&mut index, &calls("lb", 199..200)),
            vec![true],
            "the newest calls are remembered"
        );
    }

    #[test]
    fn index_bounded() {
        let mut index = SightingIndex::new(DedupeConfig {
            max_entries: 100,
            ..DedupeConfig::default()
        });
        let events: Vec<Event> = (0..1_000)
            .map(|i| {
                let mut event = sighting("lb", i, Some(&format!("r{i}")));
                event.path = Some(format!("/p/{i}"));
                event
            })
            .collect();
        mark(&mut index, &events);
        assert!(index.len() <= 100, "index holds {} sightings", index.len());
    }
}
