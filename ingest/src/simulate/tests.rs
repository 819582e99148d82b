//! Tests of whole simulations: determinism, rhythm, each scenario where the
//! truth puts it, and every format read back by apitrail's own parsers.

use std::collections::BTreeSet;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};

use super::catalog::{CATALOG, CATCH_ALL_ROUTE, PROBE_PATHS};
use super::clock::{DAY_MS, HOUR_MS};
use super::world::Rhythm;
use super::*;
use crate::identity::IdentityConfig;
use crate::parse::{ParseContext, parse_chunk};
use crate::redact::Redactor;

fn small(seed: u64) -> SimulationOptions {
    SimulationOptions {
        seed,
        weeks: 1,
        partners: 3,
        scale: 0.2,
        ..SimulationOptions::default()
    }
}

fn write_bytes(simulation: &Simulation, format: Format) -> (Vec<u8>, Summary) {
    let mut bytes = Vec::new();
    let summary = simulation
        .write(format, &mut bytes, &mut |_| {})
        .expect("writing to memory succeeds");
    (bytes, summary)
}

fn simulate(options: &SimulationOptions, format: Format) -> (Vec<u8>, Summary) {
    let simulation = Simulation::new(options).expect("valid options");
    write_bytes(&simulation, format)
}

/// The columns of a parsed event that the simulator sets.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    time_micros: i64,
    consumer: Option<String>,
    method: Option<String>,
    path: Option<String>,
    query: Option<String>,
    status: Option<i32>,
    response_bytes: Option<i64>,
    user_agent: Option<String>,
    client_ip: Option<String>,
}

/// Parses output with the format's parser and the default identity rules, as the server does.
fn parse_rows(format: Format, bytes: &[u8]) -> Vec<Row> {
    let redactor = Redactor::new(b"simulate-test-key".to_vec(), 1);
    let identity = IdentityConfig::default();
    let ctx = ParseContext {
        identity: Some(&identity),
        ..ParseContext::new(&redactor)
    };
    let parsed = parse_chunk(format, bytes, 1, &ctx);
    assert_eq!(
        parsed.report.rejected, 0,
        "{format}: the parser rejected simulated lines: {:?}",
        parsed.report.errors
    );
    assert_eq!(parsed.report.skipped, 0, "{format}: skipped records");
    let batch = parsed.batch;
    let text = |name: &str| {
        let column = batch.column_by_name(name).expect("column exists");
        let strings = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8)
            .expect("castable to text");
        let strings = strings.as_string::<i32>().clone();
        (0..strings.len())
            .map(|i| (!strings.is_null(i)).then(|| strings.value(i).to_string()))
            .collect::<Vec<_>>()
    };

    let times = batch
        .column_by_name("time")
        .expect("time column")
        .as_primitive::<TimestampMicrosecondType>()
        .clone();
    let statuses = batch
        .column_by_name("status")
        .expect("status column")
        .as_primitive::<Int32Type>()
        .clone();
    let bytes_column = batch
        .column_by_name("response_bytes")
        .expect("response_bytes column")
        .as_primitive::<Int64Type>()
        .clone();
    let (consumers, methods, paths, queries, agents, ips) = (
        text("consumer"),
        text("method"),
        text("path"),
        text("query"),
        text("user_agent"),
        text("client_ip"),
    );

    (0..batch.num_rows())
        .map(|i| Row {
            time_micros: times.value(i),
            consumer: consumers[i].clone(),
            method: methods[i].clone(),
            path: paths[i].clone(),
            query: queries[i].clone(),
            status: (!statuses.is_null(i)).then(|| statuses.value(i)),
            response_bytes: (!bytes_column.is_null(i)).then(|| bytes_column.value(i)),
            user_agent: agents[i].clone(),
            client_ip: ips[i].clone(),
        })
        .collect()
}

#[test]
fn same_seed_same_bytes() {
    for format in SUPPORTED_FORMATS {
        let (first, _) = simulate(&small(5), format);
        let (second, _) = simulate(&small(5), format);
        assert!(!first.is_empty(), "{format}: nothing written");
        assert!(first == second, "{format}: two runs of seed 5 differ");
    }
}

#[test]
fn different_seed_different_bytes() {
    let (first, _) = simulate(&small(5), Format::AwsApiGateway);
    let (second, _) = simulate(&small(6), Format::AwsApiGateway);
    assert!(first != second);
}

#[test]
fn every_format_parses_back() {
    for seed in [1, 77, u64::MAX] {
        let simulation = Simulation::new(&small(seed)).expect("valid options");
        let events: Vec<SimEvent> = simulation.events().collect();
        for format in SUPPORTED_FORMATS {
            let (bytes, summary) = write_bytes(&simulation, format);
            assert_eq!(summary.events, events.len() as u64, "{format}");
            assert_eq!(summary.bytes, bytes.len() as u64, "{format}");
            let rows = parse_rows(format, &bytes);
            assert_eq!(
                rows.len(),
                events.len(),
                "{format} seed {seed}: event count"
            );
            for (index, (event, row)) in events.iter().zip(&rows).enumerate() {
                let context = format!("{format} seed {seed} event {index}: {event:?}\n{row:?}");
                assert_eq!(row.time_micros, event.time_ms * 1000, "time, {context}");
                let consumer = consumer_of(simulation.world(), format, event);
                assert_eq!(
                    row.consumer.as_deref(),
                    Some(consumer.as_str()),
                    "consumer, {context}"
                );
                assert_eq!(
                    row.path.as_deref(),
                    Some(event.path.as_str()),
                    "path, {context}"
                );
                assert_eq!(
                    row.method.as_deref(),
                    Some(event.method),
                    "method, {context}"
                );
                assert_eq!(
                    row.status,
                    Some(i32::from(event.status)),
                    "status, {context}"
                );
                assert_eq!(
                    row.response_bytes,
                    Some(event.response_bytes as i64),
                    "response bytes, {context}"
                );
                assert_eq!(
                    row.client_ip.as_deref(),
                    Some(encode::ip_text(event.client_ip).as_str()),
                    "client ip, {context}"
                );
                assert_eq!(
                    row.user_agent.as_deref(),
                    Some(event.user_agent.as_str()),
                    "user agent, {context}"
                );
                if format != Format::AwsApiGateway {
                    assert_eq!(row.query, event.query, "query, {context}");
                }
            }
        }
    }
}

#[test]
fn truth_consumers_match_parsed() {
    for format in SUPPORTED_FORMATS {
        let simulation = Simulation::new(&small(3)).expect("valid options");
        let events: Vec<SimEvent> = simulation.events().collect();
        let (bytes, summary) = write_bytes(&simulation, format);
        let rows = parse_rows(format, &bytes);
        assert_eq!(summary.truth.len(), ScenarioKind::ALL.len());
        for (label, truth) in summary.truth.iter().enumerate() {
            // At a fifth of the volume the app may make no calls that
            // low_and_slow_exfiltration could change; every other scenario adds calls.
            if truth.scenario != ScenarioKind::LowAndSlowExfiltration.name() {
                assert!(
                    truth.events > 0,
                    "{format}: {} has no events",
                    truth.scenario
                );
            }
            assert!(truth.consumers.contains(&truth.consumer), "{truth:?}");
            let labelled: Vec<&Row> = events
                .iter()
                .zip(&rows)
                .filter(|(event, _)| event.label == Some(label))
                .map(|(_, row)| row)
                .collect();
            assert_eq!(
                labelled.len() as u64,
                truth.events,
                "{format}: {}",
                truth.scenario
            );
            if labelled.is_empty() {
                continue;
            }
            let parsed: BTreeSet<String> = labelled
                .iter()
                .filter_map(|row| row.consumer.clone())
                .collect();
            let expected: BTreeSet<String> = truth.consumers.iter().cloned().collect();
            assert_eq!(
                parsed, expected,
                "{format}: consumers of {}",
                truth.scenario
            );
            if format != Format::AwsAlb {
                assert_eq!(
                    truth.consumers.len(),
                    1,
                    "{format}: one credential per scenario"
                );
            }
        }
    }
}

#[test]
fn truth_lines_are_json() {
    let (_, summary) = simulate(&small(4), Format::Kong);
    let mut text = Vec::new();
    write_truth(&summary.truth, &mut text).expect("writing to memory");
    let lines: Vec<&str> = std::str::from_utf8(&text).expect("UTF-8").lines().collect();
    assert_eq!(lines.len(), summary.truth.len());
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).expect("one JSON object per line");
        for key in ["consumer", "scenario", "start", "end", "partner", "params"] {
            assert!(value.get(key).is_some(), "missing {key} in {line}");
        }
        let start = crate::text::parse_iso8601(value["start"].as_str().unwrap_or_default());
        let end = crate::text::parse_iso8601(value["end"].as_str().unwrap_or_default());
        assert!(start.is_some(), "{line}");
        assert!(end.is_some(), "{line}");
        assert!(start < end, "{line}");
        let first = crate::text::parse_iso8601(value["first_event"].as_str().unwrap_or_default());
        let last = crate::text::parse_iso8601(value["last_event"].as_str().unwrap_or_default());
        assert!(
            first.is_some() && last.is_some(),
            "a scenario with calls: {line}"
        );
        assert!(start <= first, "the first call is in the window: {line}");
        assert!(first <= last, "{line}");
        assert!(last < end, "the last call is in the window: {line}");
    }
}

/// Counts the events of business-hours apps by local hour and by day kind.
#[test]
fn rhythm_follows_local_business_hours() {
    let options = SimulationOptions {
        seed: 21,
        weeks: 2,
        partners: 8,
        scale: 1.0,
        scenarios: ScenarioSelection::None,
        ..SimulationOptions::default()
    };
    let simulation = Simulation::new(&options).expect("valid options");
    let world = simulation.world();
    let business: Vec<bool> = world
        .apps
        .iter()
        .map(|app| app.rhythm == Rhythm::BusinessHours && app.batch.is_none())
        .collect();
    assert!(
        business.iter().any(|b| *b),
        "the world has a business-hours app"
    );

    let mut by_hour = [0u64; 24];
    let mut working_day_calls = 0u64;
    let mut day_off_calls = 0u64;
    for event in simulation.events() {
        assert_eq!(event.label, None, "no scenarios were asked for");
        if !business[event.app] {
            continue;
        }
        let Some(local) = world.local(world.apps[event.app].partner, event.time_ms) else {
            continue;
        };
        if local.is_day_off() {
            day_off_calls += 1;
        } else {
            working_day_calls += 1;
            by_hour[local.hour as usize] += 1;
        }
    }

    let night: u64 = by_hour[0..6].iter().sum();
    let day: u64 = by_hour[9..15].iter().sum();
    assert!(
        night * 5 < day,
        "night {night} is not far below day {day}: {by_hour:?}"
    );
    // Two weeks have 10 working days and 4 days off (5 where Good Friday is a holiday), so a
    // day off is still far below a working day.
    assert!(
        day_off_calls * 10 < working_day_calls,
        "{day_off_calls} calls on days off are not far below {working_day_calls} on working days"
    );
}

#[test]
fn default_volume_is_millions() {
    // The expected count of ordinary calls, summed from the rates, so the
    // test does not draw two million calls in a debug build.
    let simulation = Simulation::new(&SimulationOptions::default()).expect("defaults are valid");
    let world = simulation.world();
    let mut expected = 0.0;
    let mut hour = world.start_ms;
    while hour < world.end_ms {
        for app in 0..world.apps.len() {
            expected += world.expected_rate(app, hour);
            let app_data = &world.apps[app];
            if let (Some(batch), Some(local)) = (
                &app_data.batch,
                world.local(app_data.partner, hour + HOUR_MS / 2),
            ) && local.hour == batch.local_hour
                && !(batch.weekdays_only && local.is_day_off())
            {
                expected += batch.calls * world.growth_factor(app_data.partner, hour);
            }
        }
        hour += HOUR_MS;
    }
    assert!(
        (1.0e6..3.0e6).contains(&expected),
        "the default simulation expects {expected} calls"
    );
}

/// Runs the default scenarios on a two-week world and returns the calls with the truth.
fn scenario_run(seed: u64) -> (Simulation, Vec<SimEvent>, Vec<TruthRecord>) {
    let options = SimulationOptions {
        seed,
        weeks: 2,
        partners: 10,
        scale: 1.0,
        ..SimulationOptions::default()
    };
    let simulation = Simulation::new(&options).expect("valid options");
    let events: Vec<SimEvent> = simulation.events().collect();
    let mut tally = TruthTally::new(simulation.injections().len());
    for event in &events {
        tally.observe(simulation.world(), Format::AwsApiGateway, event);
    }
    let truth = tally.records(
        simulation.world(),
        Format::AwsApiGateway,
        simulation.injections(),
    );
    (simulation, events, truth)
}

fn truth_of(truth: &[TruthRecord], kind: ScenarioKind) -> &TruthRecord {
    truth
        .iter()
        .find(|record| record.scenario == kind.name())
        .unwrap_or_else(|| panic!("no truth record for {kind}"))
}

fn window(record: &TruthRecord) -> (i64, i64) {
    let start = crate::text::parse_iso8601(&record.start).expect("start is RFC 3339") / 1000;
    let end = crate::text::parse_iso8601(&record.end).expect("end is RFC 3339") / 1000;
    (start, end)
}

fn text_param(record: &TruthRecord, name: &str) -> String {
    match record.params.get(name) {
        Some(ParamValue::Text(text)) => text.clone(),
        other => panic!("parameter {name} of {} is {other:?}", record.scenario),
    }
}

/// Calls of the truth's consumer in apitrail's terms.
fn calls_of<'a>(
    simulation: &Simulation,
    events: &'a [SimEvent],
    record: &TruthRecord,
) -> Vec<&'a SimEvent> {
    events
        .iter()
        .filter(|event| {
            consumer_of(simulation.world(), Format::AwsApiGateway, event) == record.consumer
        })
        .collect()
}

fn route_of(endpoint: &str) -> &'static str {
    CATALOG
        .iter()
        .find(|e| e.name == endpoint)
        .map(|e| e.route)
        .unwrap_or_else(|| panic!("unknown endpoint {endpoint}"))
}

fn id_of(path: &str) -> Option<u64> {
    path.split('/').find_map(|segment| segment.parse().ok())
}

#[test]
fn object_enumeration_visible_in_window() {
    let (simulation, events, truth) = scenario_run(31);
    let record = truth_of(&truth, ScenarioKind::ObjectEnumeration);
    let (start, end) = window(record);
    let route = route_of(&text_param(record, "endpoint"));
    let reads: Vec<&SimEvent> = calls_of(&simulation, &events, record)
        .into_iter()
        .filter(|event| event.route == route)
        .collect();
    let consecutive_share = |calls: &[&SimEvent]| {
        let ids: Vec<u64> = calls.iter().filter_map(|e| id_of(&e.path)).collect();
        let steps = ids
            .windows(2)
            .filter(|pair| matches!(pair[1].wrapping_sub(pair[0]), 1 | 2))
            .count();
        steps as f64 / ids.len().saturating_sub(1).max(1) as f64
    };
    let inside: Vec<&SimEvent> = reads
        .iter()
        .copied()
        .filter(|e| (start..end).contains(&e.time_ms))
        .collect();
    let outside: Vec<&SimEvent> = reads
        .iter()
        .copied()
        .filter(|e| !(start..end).contains(&e.time_ms))
        .collect();
    assert!(inside.len() > 500, "{} reads in the window", inside.len());
    // The app's own reads go on between the enumeration's, breaking some pairs.
    assert!(
        consecutive_share(&inside) > 0.7,
        "ids in the window are mostly consecutive"
    );
    assert!(
        outside.len() > 20,
        "{} ordinary reads outside the window",
        outside.len()
    );
    assert!(
        consecutive_share(&outside) < 0.2,
        "ordinary ids are not consecutive"
    );

    let failing = |calls: &[&SimEvent]| {
        calls
            .iter()
            .filter(|e| matches!(e.status, 403 | 404))
            .count() as f64
            / calls.len().max(1) as f64
    };
    let third = inside.len() / 3;
    let first = failing(&inside[..third]);
    let last = failing(&inside[inside.len() - third..]);
    assert!(
        last > first + 0.3,
        "403/404 share rises from {first} to {last}"
    );
}

#[test]
fn data_harvesting_grows_daily() {
    let (simulation, events, truth) = scenario_run(32);
    let record = truth_of(&truth, ScenarioKind::DataHarvesting);
    let (start, end) = window(record);
    let route = route_of(&text_param(record, "endpoint"));
    let reads: Vec<(i64, u64)> = calls_of(&simulation, &events, record)
        .into_iter()
        .filter(|event| event.route == route)
        .filter_map(|event| id_of(&event.path).map(|id| (event.time_ms, id)))
        .collect();

    // Objects read on a day that the consumer had not read before `since`.
    let new_objects = |since: i64, day_start: i64| {
        let known: BTreeSet<u64> = reads
            .iter()
            .filter(|(time, _)| *time < since)
            .map(|(_, id)| *id)
            .collect();
        let day: BTreeSet<u64> = reads
            .iter()
            .filter(|(time, _)| (day_start..day_start + DAY_MS).contains(time))
            .map(|(_, id)| *id)
            .filter(|id| !known.contains(id))
            .collect();
        day.len()
    };
    let days = (end - start) / DAY_MS;
    let usual = (1..=3)
        .map(|back| new_objects(start - 3 * DAY_MS, start - back * DAY_MS))
        .max()
        .unwrap_or(0);
    let first = new_objects(start, start);
    let last = new_objects(start, start + (days - 1) * DAY_MS);
    assert!(first >= 40, "{first} new objects on the first day");
    assert!(first > usual, "first day {first} against the usual {usual}");
    // The usual new objects (ids created since) come on top of the harvest every day.
    let excess = |count: usize| count.saturating_sub(usual);
    assert!(
        excess(last) > 2 * excess(first),
        "new objects per day grow from {first} to {last} over the usual {usual}"
    );
}

#[test]
fn leaked_key_overlaps_real_traffic() {
    let (simulation, events, truth) = scenario_run(33);
    let record = truth_of(&truth, ScenarioKind::LeakedKey);
    let (start, end) = window(record);
    let agent = text_param(record, "user_agent");
    let network = text_param(record, "network");
    let prefix = network.trim_end_matches("0/24");
    let calls = calls_of(&simulation, &events, record);
    let foreign: Vec<&&SimEvent> = calls.iter().filter(|e| e.user_agent == agent).collect();
    assert!(
        foreign.len() > 100,
        "{} calls with the new user agent",
        foreign.len()
    );
    for event in &foreign {
        assert!(
            (start..end).contains(&event.time_ms),
            "a new-agent call outside the window"
        );
        assert!(
            encode::ip_text(event.client_ip).starts_with(prefix),
            "from {network}"
        );
    }
    let own_in_window = calls
        .iter()
        .filter(|e| e.user_agent != agent && (start..end).contains(&e.time_ms))
        .count();
    assert!(
        own_in_window > 0,
        "the app's own calls go on during the window"
    );
    assert!(
        calls
            .iter()
            .all(|e| e.user_agent != agent || e.label.is_some()),
        "only the scenario uses the new agent"
    );
}

#[test]
fn credential_stuffing_bursts_of_401() {
    let (simulation, events, truth) = scenario_run(34);
    let record = truth_of(&truth, ScenarioKind::CredentialStuffing);
    let (start, end) = window(record);
    let token_401 = |inside: bool| {
        calls_of(&simulation, &events, record)
            .into_iter()
            .filter(|e| e.path == "/v1/auth/token" && e.status == 401)
            .filter(|e| (start..end).contains(&e.time_ms) == inside)
            .count()
    };
    assert!(
        token_401(true) > 400,
        "{} failed logins in the window",
        token_401(true)
    );
    assert!(
        token_401(false) < 20,
        "{} failed logins outside",
        token_401(false)
    );
}

#[test]
fn off_hours_export_at_partner_night() {
    let (simulation, events, truth) = scenario_run(35);
    let record = truth_of(&truth, ScenarioKind::OffHoursExport);
    let (start, end) = window(record);
    let world = simulation.world();
    let partner = world
        .partners
        .iter()
        .position(|p| p.id == record.partner)
        .expect("the truth names a partner");
    let downloads: Vec<&SimEvent> = calls_of(&simulation, &events, record)
        .into_iter()
        .filter(|e| e.route == "/v1/reports/{id}/download")
        .collect();
    let (mut night_inside, mut night_outside) = (0, 0);
    for event in &downloads {
        let hour = world
            .local(partner, event.time_ms)
            .expect("partner exists")
            .hour;
        if !(0..6).contains(&hour) {
            continue;
        }
        if (start..end).contains(&event.time_ms) {
            night_inside += 1;
        } else {
            night_outside += 1;
        }
    }
    assert!(
        night_inside >= 12,
        "{night_inside} night downloads in two nights"
    );
    // An office-hours partner exports at night only by chance, if at all.
    assert!(
        night_outside * 3 < night_inside,
        "{night_outside} night downloads in the other nights"
    );
    let mut labelled_downloads = downloads.iter().filter(|e| e.label.is_some());
    assert!(labelled_downloads.clone().count() >= 12);
    assert!(
        labelled_downloads.all(|e| e.response_bytes > 1_000_000),
        "bulk downloads"
    );
}

#[test]
fn volume_spike_exceeds_last_week() {
    let (simulation, events, truth) = scenario_run(36);
    let record = truth_of(&truth, ScenarioKind::VolumeSpike);
    let (start, end) = window(record);
    let calls = calls_of(&simulation, &events, record);
    let count = |from: i64, to: i64| {
        calls
            .iter()
            .filter(|e| (from..to).contains(&e.time_ms))
            .count()
    };
    let week = 7 * DAY_MS;
    let now = count(start, end);
    let before = count(start - week, end - week);
    assert!(
        now > 3 * before.max(5),
        "{now} calls against {before} a week earlier"
    );
}

#[test]
fn endpoint_probing_hits_undocumented_paths() {
    let (simulation, events, truth) = scenario_run(37);
    let record = truth_of(&truth, ScenarioKind::EndpointProbing);
    let (start, end) = window(record);
    let probes: Vec<&SimEvent> = calls_of(&simulation, &events, record)
        .into_iter()
        .filter(|e| e.route == CATCH_ALL_ROUTE)
        .collect();
    assert!(probes.len() >= 120);
    assert!(probes.iter().all(|e| (start..end).contains(&e.time_ms)));
    let not_found = probes.iter().filter(|e| e.status == 404).count();
    assert!(
        not_found * 2 > probes.len(),
        "{not_found} of {} are 404",
        probes.len()
    );
    let listed = probes.iter().all(|e| {
        PROBE_PATHS.iter().any(|(template, _)| {
            template
                .split('{')
                .next()
                .is_some_and(|head| e.path.starts_with(head))
        })
    });
    assert!(listed);
}

#[test]
fn unusual_method_from_reader() {
    let (simulation, events, truth) = scenario_run(38);
    let record = truth_of(&truth, ScenarioKind::UnusualMethod);
    let (start, end) = window(record);
    let method = text_param(record, "method");
    let calls: Vec<&SimEvent> = calls_of(&simulation, &events, record)
        .into_iter()
        .filter(|e| e.method == method)
        .collect();
    let inside = calls
        .iter()
        .filter(|e| (start..end).contains(&e.time_ms))
        .count();
    assert!(inside >= 150, "{inside} {method} calls in the window");
    if text_param(record, "partner_wrote_before") == "no" {
        assert_eq!(inside, calls.len(), "no {method} outside the window");
    }
}

#[test]
fn low_and_slow_bytes_creep_up() {
    let (simulation, events, truth) = scenario_run(39);
    let record = truth_of(&truth, ScenarioKind::LowAndSlowExfiltration);
    let (start, end) = window(record);
    assert!(
        record.events >= 20,
        "too few changed calls: {}",
        record.events
    );
    let route = route_of(&text_param(record, "endpoint"));
    let mean_bytes = |from: i64, to: i64| {
        let sizes: Vec<u64> = calls_of(&simulation, &events, record)
            .into_iter()
            .filter(|e| e.route == route && e.status == 200 && (from..to).contains(&e.time_ms))
            .map(|e| e.response_bytes)
            .collect();
        sizes.iter().sum::<u64>() as f64 / sizes.len().max(1) as f64
    };
    let before = mean_bytes(start - 3 * DAY_MS, start);
    let first_day = mean_bytes(start, start + DAY_MS);
    let last_day = mean_bytes(end - DAY_MS, end);
    assert!(before > 0.0, "calls before the window");
    assert!(first_day > 0.0, "calls on the first day");
    assert!(
        first_day < before * 1.6,
        "the first day is near the usual size"
    );
    assert!(
        last_day > before * 2.0,
        "mean bytes grow from {before} to {last_day}"
    );
}

#[test]
fn zero_partners_rejected_with_reason() {
    let options = SimulationOptions {
        partners: 0,
        ..SimulationOptions::default()
    };
    let error = Simulation::new(&options).expect_err("zero partners is invalid");
    assert!(
        error.to_string().contains("at least one partner"),
        "{error}"
    );
}

#[test]
fn invalid_options_rejected() {
    let cases = [
        SimulationOptions {
            weeks: 0,
            ..small(1)
        },
        SimulationOptions {
            weeks: MAX_WEEKS + 1,
            ..small(1)
        },
        SimulationOptions {
            partners: MAX_PARTNERS + 1,
            ..small(1)
        },
        SimulationOptions {
            scale: 0.0,
            ..small(1)
        },
        SimulationOptions {
            scale: f64::NAN,
            ..small(1)
        },
        SimulationOptions {
            scale: f64::INFINITY,
            ..small(1)
        },
        SimulationOptions {
            start: (2025, 2, 30),
            ..small(1)
        },
        SimulationOptions {
            start: (1969, 1, 1),
            ..small(1)
        },
        SimulationOptions {
            start: (2025, 13, 1),
            ..small(1)
        },
    ];
    for options in cases {
        assert!(
            matches!(
                Simulation::new(&options),
                Err(SimulateError::InvalidOption(_))
            ),
            "{options:?} is accepted"
        );
    }
}

#[test]
fn scenario_options_checked() {
    let unknown_partner = SimulationOptions {
        scenarios: ScenarioSelection::List(vec![ScenarioSpec {
            partner: Some("p99".to_string()),
            ..ScenarioSpec::new(ScenarioKind::VolumeSpike)
        }]),
        ..small(1)
    };
    let error = Simulation::new(&unknown_partner).expect_err("p99 does not exist");
    assert!(error.to_string().contains("p99"), "{error}");
    let late_start = SimulationOptions {
        scenarios: ScenarioSelection::List(vec![ScenarioSpec {
            start_ms: Some(0),
            ..ScenarioSpec::new(ScenarioKind::VolumeSpike)
        }]),
        ..small(1)
    };
    assert!(Simulation::new(&late_start).is_err());
    let simulation = Simulation::new(&small(1)).expect("valid");
    let mut sink = Vec::new();
    assert!(matches!(
        simulation.write(Format::Clf, &mut sink, &mut |_| {}),
        Err(SimulateError::UnsupportedFormat(Format::Clf))
    ));
}

#[test]
fn explicit_partner_and_start_used() {
    let start = SimulationOptions::default().validate().expect("valid") + 2 * DAY_MS + 10 * HOUR_MS;
    let options = SimulationOptions {
        scenarios: ScenarioSelection::List(vec![ScenarioSpec {
            kind: ScenarioKind::EndpointProbing,
            partner: Some("p02".to_string()),
            start_ms: Some(start),
        }]),
        ..small(8)
    };
    let (_, summary) = simulate(&options, Format::Otlp);
    assert_eq!(summary.truth.len(), 1);
    assert_eq!(summary.truth[0].partner, "p02");
    assert_eq!(window(&summary.truth[0]).0, start);
}

#[test]
fn extremes_do_not_panic() {
    let cases = [
        SimulationOptions {
            seed: u64::MAX,
            ..small(0)
        },
        SimulationOptions {
            seed: 0,
            partners: 1,
            ..small(0)
        },
        SimulationOptions {
            scale: 1e-9,
            ..small(2)
        },
        SimulationOptions {
            start: (2098, 12, 31),
            weeks: 1,
            ..small(2)
        },
        SimulationOptions {
            start: (2000, 2, 29),
            ..small(2)
        },
    ];
    for options in cases {
        let (bytes, summary) = simulate(&options, Format::AwsAlb);
        assert_eq!(summary.bytes, bytes.len() as u64, "{options:?}");
        assert_eq!(summary.truth.len(), ScenarioKind::ALL.len(), "{options:?}");
    }
    let many = SimulationOptions {
        partners: MAX_PARTNERS,
        scenarios: ScenarioSelection::List(vec![
            ScenarioSpec::new(ScenarioKind::CredentialStuffing);
            MAX_SCENARIOS
        ]),
        ..small(1)
    };
    let simulation = Simulation::new(&many).expect("the largest plan fits");
    assert_eq!(simulation.injections().len(), MAX_SCENARIOS);
}

#[test]
fn no_scenarios_no_labels() {
    let options = SimulationOptions {
        scenarios: ScenarioSelection::None,
        ..small(12)
    };
    let simulation = Simulation::new(&options).expect("valid");
    assert!(simulation.events().all(|event| event.label.is_none()));
    let (_, summary) = write_bytes(&simulation, Format::Kong);
    assert!(summary.truth.is_empty());
    assert!(summary.events > 0);
}

#[test]
fn events_in_time_order() {
    let simulation = Simulation::new(&small(13)).expect("valid");
    let world = simulation.world();
    let mut previous = i64::MIN;
    for event in simulation.events() {
        assert!(
            event.time_ms >= previous,
            "out of order at {}",
            event.time_ms
        );
        assert!((world.start_ms..world.end_ms).contains(&event.time_ms));
        previous = event.time_ms;
    }
}
