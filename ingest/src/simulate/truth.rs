//! The ground truth: one JSON line per injected scenario.
//!
//! The truth names each scenario's consumer exactly as apitrail stores it
//! for the written format, so a detector's findings can be joined on it.
//! Counts and consumers come from the calls actually written, which a
//! [`TruthTally`] observes, so a scenario whose calls fell outside the
//! simulated period or whose app made no matching calls shows it in its
//! `events` count.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::encode::{consumer_of, ip_text};
use super::scenario::{Injection, Params};
use super::traffic::SimEvent;
use super::world::World;
use crate::format::Format;

/// One line of the truth file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthRecord {
    /// Snake_case name of the scenario.
    pub scenario: &'static str,
    /// The consumer that carries most of the scenario's calls, as apitrail stores it.
    pub consumer: String,
    /// Every consumer that carries some of the scenario's calls, sorted.
    /// More than one only for `aws_alb`, whose consumers are client addresses.
    pub consumers: Vec<String>,
    /// Start of the scenario's window, RFC 3339 UTC.
    pub start: String,
    /// End of the window (exclusive), RFC 3339 UTC.
    pub end: String,
    /// Partner id, such as `p07`.
    pub partner: String,
    pub partner_name: String,
    /// Name of the app whose credential the calls carry.
    pub app: String,
    /// Format the events were written in.
    pub format: &'static str,
    /// Number of calls the scenario added or changed.
    pub events: u64,
    /// Time of the first of those calls, RFC 3339 UTC, absent without calls.
    /// A detector cannot see a scenario before it, and it may come well after
    /// `start`: credential stuffing waits for its first burst.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_event: Option<String>,
    /// Time of the last of those calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event: Option<String>,
    pub params: Params,
}

/// Counts the written calls of each scenario by consumer.
#[derive(Debug, Clone, Default)]
pub struct TruthTally {
    consumers: Vec<BTreeMap<String, u64>>,
    /// Earliest and latest call time of each scenario, in milliseconds.
    spans: Vec<Option<(i64, i64)>>,
}

impl TruthTally {
    pub fn new(scenarios: usize) -> Self {
        TruthTally {
            consumers: vec![BTreeMap::new(); scenarios],
            spans: vec![None; scenarios],
        }
    }

    /// Counts one written call, when a scenario made or changed it.
    pub fn observe(&mut self, world: &World, format: Format, event: &SimEvent) {
        let Some(label) = event.label else {
            return;
        };
        if let Some(counts) = self.consumers.get_mut(label) {
            *counts.entry(consumer_of(world, format, event)).or_default() += 1;
        }
        if let Some(span) = self.spans.get_mut(label) {
            let time = event.time_ms;
            *span = Some(match *span {
                Some((first, last)) => (first.min(time), last.max(time)),
                None => (time, time),
            });
        }
    }

    /// Builds the truth records of the planned scenarios.
    pub fn records(
        &self,
        world: &World,
        format: Format,
        injections: &[Injection],
    ) -> Vec<TruthRecord> {
        injections
            .iter()
            .enumerate()
            .map(|(label, injection)| {
                let counts = self.consumers.get(label);
                let span = self.spans.get(label).copied().flatten();
                record(world, format, injection, counts, span)
            })
            .collect()
    }
}

fn record(
    world: &World,
    format: Format,
    injection: &Injection,
    counts: Option<&BTreeMap<String, u64>>,
    span: Option<(i64, i64)>,
) -> TruthRecord {
    let empty = BTreeMap::new();
    let counts = counts.unwrap_or(&empty);
    let mut consumer = None;
    let mut most = 0;
    for (name, count) in counts {
        if *count > most {
            most = *count;
            consumer = Some(name.clone());
        }
    }
    let consumer = consumer.unwrap_or_else(|| planned_consumer(world, format, injection));
    let mut consumers: Vec<String> = counts.keys().cloned().collect();
    if consumers.is_empty() {
        consumers.push(consumer.clone());
    }
    let partner = world.partners.get(injection.partner);
    let app = world.apps.get(injection.app);
    TruthRecord {
        scenario: injection.kind.name(),
        consumer,
        consumers,
        start: time_text(injection.start_ms),
        end: time_text(injection.end_ms),
        partner: partner.map(|p| p.id.clone()).unwrap_or_default(),
        partner_name: partner.map(|p| p.name.clone()).unwrap_or_default(),
        app: app.map(|a| a.name.clone()).unwrap_or_default(),
        format: format.name(),
        events: counts.values().sum(),
        first_event: span.map(|(first, _)| time_text(first)),
        last_event: span.map(|(_, last)| time_text(last)),
        params: injection.params.clone(),
    }
}

/// Returns the consumer a scenario without written calls would have had.
fn planned_consumer(world: &World, format: Format, injection: &Injection) -> String {
    if let Some(event) = injection.events.first() {
        return consumer_of(world, format, event);
    }
    let app = world.apps.get(injection.app);
    match format {
        Format::AwsApiGateway => app.map(|app| app.api_key_id.clone()),
        Format::Kong => app.map(|app| app.kong_consumer_id.clone()),
        Format::Otlp => app.map(|app| app.name.clone()),
        _ => app.and_then(|app| app.ips.first().map(|ip| ip_text(*ip))),
    }
    .unwrap_or_default()
}

/// RFC 3339 UTC, with milliseconds only when the time has some.
fn time_text(ms: i64) -> String {
    if ms.rem_euclid(1000) == 0 {
        super::clock::rfc3339_seconds(ms)
    } else {
        let mut text = String::new();
        super::clock::push_rfc3339_millis(&mut text, ms);
        text
    }
}

/// Writes truth records as JSON lines.
pub fn write_truth(records: &[TruthRecord], out: &mut dyn Write) -> io::Result<()> {
    for record in records {
        serde_json::to_writer(&mut *out, record).map_err(io::Error::other)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
