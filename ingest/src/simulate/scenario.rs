//! Injected abuse: the scenarios, where and when they run, and their calls.
//!
//! Planning happens before any traffic is drawn. Each scenario gets a
//! partner, one of its apps, a window and parameters, and the calls it
//! adds are built at once and kept sorted (a few thousand per scenario).
//! `low_and_slow_exfiltration` adds no calls: it changes the app's own
//! calls to one endpoint as they are drawn, through a [`Modifier`].
//!
//! By default scenarios run in the attack period: the last 7 days of a
//! simulation of two weeks or more, else its last four days, so every
//! hour of the week has history before it.

use std::fmt;
use std::str::FromStr;

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::SimulateError;
use super::catalog::{
    Action, CATALOG, CATCH_ALL_ROUTE, PROBE_PATHS, Resource, endpoint_id, render_path,
};
use super::clock::{DAY_MS, HOUR_MS, rfc3339_seconds};
use super::rng::Rng;
use super::traffic::{
    CallOptions, Caller, SimEvent, build_event, default_page_size, emit_call, request_bits,
    usual_caller,
};
use super::world::{PRODUCT_COUNT, Rhythm, World, stream};

/// A kind of injected abuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScenarioKind {
    /// A partner reads more distinct objects each day than it ever did,
    /// sweeping the product catalogue or its customers in random order with
    /// its usual host and client. A detector should find the distinct ids per day
    /// of one consumer and endpoint climb day after day, far above its
    /// history, while each call looks ordinary.
    DataHarvesting,
    /// A script walks object ids upwards from the partner's newest ones, a
    /// few seconds apart, skipping one id now and then. The first ids are
    /// its own (200); past them come ids not created yet (404) and other
    /// partners' ids (403). A detector should find mostly consecutive ids from one
    /// consumer and a 403/404 share that rises through the window.
    ObjectEnumeration,
    /// Someone else uses an app's credential from a new /24 network with a
    /// user agent the app never sent, around the clock for a day and a
    /// half, while the app goes on as usual. The calls page deep through
    /// customers and orders. A detector should find, for one consumer, a second
    /// network and client at the same time as the usual ones.
    LeakedKey,
    /// Bursts of a few hundred token requests within minutes, mostly 401,
    /// some 429 and a few successes, from rotating addresses in two or
    /// three new networks, carrying one app's API key. A detector should find the
    /// consumer's 401 count on `/v1/auth/token` far above its history.
    CredentialStuffing,
    /// Bulk exports (start, polls, multi-megabyte downloads) from 01:00 or
    /// 02:00 of the partner's local time for one to three hours on two nights, from a partner
    /// that works office hours. A detector should find export calls and response
    /// bytes in hours of the week where the consumer's baseline is near zero.
    OffHoursExport,
    /// An app's normal mix at five to ten times its usual volume for one to
    /// two hours of a working day. A detector should find one consumer's calls per
    /// hour far above the same hour of the week in earlier weeks.
    VolumeSpike,
    /// Calls to paths the API does not document (`/admin`, `/internal/...`,
    /// `/v0/...`, `/debug/...`, `/actuator/...`), mostly 404, some 403, for
    /// half an hour to an hour from the app's usual host. A detector should find
    /// shadow endpoints and a 404 share far above the consumer's baseline.
    EndpointProbing,
    /// A partner that only ever reads sends a few hundred DELETEs of its
    /// orders or PUTs of its customers within an hour. A detector should find
    /// methods the consumer never used, in bulk.
    UnusualMethod,
    /// The page size of one list endpoint, and with it the response bytes,
    /// creep up over six days, from the usual size to three to five times
    /// it, while the number of calls stays the same. A detector should find the
    /// consumer's mean response bytes on that endpoint rise day after day.
    LowAndSlowExfiltration,
}

impl ScenarioKind {
    /// Every scenario, in the order the default plan injects them.
    pub const ALL: [ScenarioKind; 9] = [
        ScenarioKind::DataHarvesting,
        ScenarioKind::ObjectEnumeration,
        ScenarioKind::LeakedKey,
        ScenarioKind::CredentialStuffing,
        ScenarioKind::OffHoursExport,
        ScenarioKind::VolumeSpike,
        ScenarioKind::EndpointProbing,
        ScenarioKind::UnusualMethod,
        ScenarioKind::LowAndSlowExfiltration,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::DataHarvesting => "data_harvesting",
            ScenarioKind::ObjectEnumeration => "object_enumeration",
            ScenarioKind::LeakedKey => "leaked_key",
            ScenarioKind::CredentialStuffing => "credential_stuffing",
            ScenarioKind::OffHoursExport => "off_hours_export",
            ScenarioKind::VolumeSpike => "volume_spike",
            ScenarioKind::EndpointProbing => "endpoint_probing",
            ScenarioKind::UnusualMethod => "unusual_method",
            ScenarioKind::LowAndSlowExfiltration => "low_and_slow_exfiltration",
        }
    }

    /// Returns the names of every scenario, comma-separated, for messages and help.
    pub fn names() -> String {
        ScenarioKind::ALL.map(ScenarioKind::name).join(", ")
    }
}

impl fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScenarioKind {
    type Err = SimulateError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ScenarioKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| SimulateError::UnknownScenario(name.to_string()))
    }
}

/// One scenario to inject, with an optional partner and start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioSpec {
    pub kind: ScenarioKind,
    /// Partner id (`p07`), name or slug; chosen from the seed when `None`.
    pub partner: Option<String>,
    /// Start of the window in milliseconds since the epoch, UTC; chosen
    /// from the seed in the attack period when `None`.
    pub start_ms: Option<i64>,
}

impl ScenarioSpec {
    pub fn new(kind: ScenarioKind) -> Self {
        ScenarioSpec {
            kind,
            partner: None,
            start_ms: None,
        }
    }
}

impl FromStr for ScenarioSpec {
    type Err = SimulateError;

    /// Parses `NAME[:partner=ID][:start=RFC3339]`, such as
    /// `volume_spike:partner=p07:start=2025-05-06T10:00:00Z`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.trim().split(':');
        let name = parts.next().unwrap_or_default();
        let mut spec = ScenarioSpec::new(name.parse()?);
        let rest: Vec<&str> = parts.collect();
        // A start time contains colons, so the parts after `start=` are joined back.
        let mut index = 0;
        while index < rest.len() {
            let part = rest[index];
            if let Some(partner) = part.strip_prefix("partner=") {
                spec.partner = Some(partner.to_string());
                index += 1;
            } else if let Some(first) = part.strip_prefix("start=") {
                let mut time = first.to_string();
                index += 1;
                while index < rest.len() && !rest[index].contains('=') {
                    time.push(':');
                    time.push_str(rest[index]);
                    index += 1;
                }
                let micros = crate::text::parse_iso8601(&time).ok_or_else(|| {
                    SimulateError::InvalidScenario(format!(
                        "invalid start {time:?} in {text:?}: expected an RFC 3339 time such as 2025-05-06T10:00:00Z"
                    ))
                })?;
                spec.start_ms = Some(micros.div_euclid(1000));
            } else {
                return Err(SimulateError::InvalidScenario(format!(
                    "unknown part {part:?} in {text:?}: expected partner=ID or start=TIME"
                )));
            }
        }
        Ok(spec)
    }
}

/// A parameter value of an injected scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Integer(i64),
    Number(f64),
    Text(String),
    List(Vec<String>),
}

impl Serialize for ParamValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ParamValue::Integer(value) => serializer.serialize_i64(*value),
            ParamValue::Number(value) => serializer.serialize_f64(*value),
            ParamValue::Text(value) => serializer.serialize_str(value),
            ParamValue::List(values) => values.serialize(serializer),
        }
    }
}

/// The parameters of an injected scenario, in a fixed order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(pub Vec<(&'static str, ParamValue)>);

impl Params {
    fn int(&mut self, name: &'static str, value: impl TryInto<i64>) -> &mut Self {
        self.0.push((
            name,
            ParamValue::Integer(value.try_into().unwrap_or(i64::MAX)),
        ));
        self
    }

    fn number(&mut self, name: &'static str, value: f64) -> &mut Self {
        // Two decimals keep the truth file readable; the value used is the rounded one.
        self.0.push((name, ParamValue::Number(round2(value))));
        self
    }

    fn text(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        self.0.push((name, ParamValue::Text(value.into())));
        self
    }

    fn list(&mut self, name: &'static str, values: Vec<String>) -> &mut Self {
        self.0.push((name, ParamValue::List(values)));
        self
    }

    /// Value of a parameter by name.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }
}

impl Serialize for Params {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// A change to an app's own calls, applied as they are drawn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Modifier {
    pub app: usize,
    pub endpoint: usize,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Factor of page size and response bytes at the end of the window.
    pub end_factor: f64,
}

impl Modifier {
    /// Grows the page size and response of a matching call and labels it.
    pub(crate) fn apply(&self, label: usize, event: &mut SimEvent) {
        let matches = event.app == self.app
            && event.endpoint == Some(self.endpoint)
            && event.label.is_none()
            && (self.start_ms..self.end_ms).contains(&event.time_ms);
        if !matches {
            return;
        }
        let span = (self.end_ms - self.start_ms).max(1) as f64;
        let progress = (event.time_ms - self.start_ms) as f64 / span;
        let factor = 1.0 + (self.end_factor - 1.0) * progress;
        if let Some(endpoint) = CATALOG.get(self.endpoint)
            && endpoint.action == Action::List
        {
            let size = (f64::from(default_page_size(endpoint.resource)) * factor).round() as u32;
            event.query = Some(set_page_size(event.query.as_deref(), size));
        }
        event.response_bytes = (event.response_bytes as f64 * factor).round() as u64;
        event.label = Some(label);
    }
}

/// Replaces or adds `page_size` in a query string.
fn set_page_size(query: Option<&str>, size: u32) -> String {
    let mut pairs: Vec<String> = query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("page_size="))
        .map(str::to_string)
        .collect();
    pairs.push(format!("page_size={size}"));
    pairs.join("&")
}

/// One planned scenario.
#[derive(Debug, Clone)]
pub struct Injection {
    pub kind: ScenarioKind,
    pub partner: usize,
    /// The app whose credential the scenario's calls carry.
    pub app: usize,
    pub start_ms: i64,
    pub end_ms: i64,
    pub params: Params,
    /// Calls the scenario adds, sorted by time.
    pub(crate) events: Vec<SimEvent>,
    pub(crate) modifier: Option<Modifier>,
}

/// Everything a scenario builder needs.
struct Context<'a> {
    world: &'a World,
    label: usize,
    partner: usize,
    app: usize,
    start_ms: i64,
    end_ms: i64,
    rng: Rng,
}

impl Context<'_> {
    /// Finishes a scenario. The window grows to cover retries and export
    /// follow-ups that fall after its planned end, but not past the end of
    /// the simulation, where calls are dropped.
    fn injection(self, kind: ScenarioKind, params: Params, events: Vec<SimEvent>) -> Injection {
        let mut events = events;
        events.retain(|event| {
            event.time_ms >= self.world.start_ms && event.time_ms < self.world.end_ms
        });
        events.sort_by_key(|event| event.time_ms);
        let last = events.last().map_or(self.end_ms, |event| event.time_ms + 1);
        Injection {
            kind,
            partner: self.partner,
            app: self.app,
            start_ms: self.start_ms,
            end_ms: last.max(self.end_ms).min(self.world.end_ms),
            params,
            events,
            modifier: None,
        }
    }

    /// Returns the app's first address and user agent, as a script on one of its hosts sends them.
    fn script_caller(&self, time: i64) -> Caller {
        let mut caller = usual_caller(self.world, self.app, time, &mut Rng::new(0));
        if let Some(app) = self.world.apps.get(self.app) {
            caller.ip = app.ips.first().copied().unwrap_or(caller.ip);
            let upgraded = app.sdk_upgrade_ms.is_some_and(|upgrade| time >= upgrade);
            if let Some(agent) = app.user_agents.first() {
                caller.user_agent = if upgraded {
                    agent.after_upgrade.clone()
                } else {
                    agent.before_upgrade.clone()
                };
            }
        }
        caller
    }

    fn options(&self) -> CallOptions {
        CallOptions {
            follow_ups: true,
            label: Some(self.label),
        }
    }
}

/// Default length of each scenario's window, in milliseconds.
fn default_duration(kind: ScenarioKind, rng: &mut Rng, attack_days: i64) -> i64 {
    let minutes = |low: i64, high: i64, rng: &mut Rng| rng.between(low, high) * 60_000;
    match kind {
        ScenarioKind::DataHarvesting => attack_days.clamp(1, 5) * DAY_MS,
        ScenarioKind::ObjectEnumeration => minutes(120, 240, rng),
        ScenarioKind::LeakedKey => minutes(30 * 60, 42 * 60, rng),
        ScenarioKind::CredentialStuffing => minutes(180, 300, rng),
        ScenarioKind::OffHoursExport => DAY_MS + 3 * HOUR_MS,
        ScenarioKind::VolumeSpike => minutes(60, 120, rng),
        ScenarioKind::EndpointProbing => minutes(30, 60, rng),
        ScenarioKind::UnusualMethod => minutes(45, 90, rng),
        ScenarioKind::LowAndSlowExfiltration => attack_days.clamp(1, 6) * DAY_MS,
    }
}

/// Local hours at which a scenario may start, and whether only on working days.
fn start_hours(kind: ScenarioKind) -> (u32, u32, bool) {
    match kind {
        ScenarioKind::DataHarvesting | ScenarioKind::LowAndSlowExfiltration => (0, 0, false),
        ScenarioKind::ObjectEnumeration | ScenarioKind::VolumeSpike => (10, 15, true),
        ScenarioKind::EndpointProbing | ScenarioKind::UnusualMethod => (9, 16, true),
        ScenarioKind::OffHoursExport => (1, 2, true),
        ScenarioKind::LeakedKey | ScenarioKind::CredentialStuffing => (0, 23, false),
    }
}

/// First millisecond of the attack period.
pub(crate) fn attack_period_start(world: &World) -> i64 {
    let days = (world.end_ms - world.start_ms) / DAY_MS;
    let first_day = if days >= 14 { days - 7 } else { days * 3 / 7 };
    world.start_ms + first_day * DAY_MS
}

/// Plans every scenario of the list.
pub(crate) fn plan(
    world: &mut World,
    specs: &[ScenarioSpec],
) -> Result<Vec<Injection>, SimulateError> {
    let mut rng = Rng::stream(world.seed, &[stream::PLAN]);
    let mut used = vec![false; world.partners.len()];
    if let Some(growth) = world.growth
        && let Some(flag) = used.get_mut(growth.partner)
    {
        *flag = true;
    }
    // Named partners are taken first, then scenarios with the narrowest
    // needs choose, so that a scenario late in the list still finds a fit.
    let mut partners: Vec<Option<usize>> = vec![None; specs.len()];
    for (label, spec) in specs.iter().enumerate() {
        if let Some(name) = &spec.partner {
            let partner = resolve_partner(world, name)?;
            partners[label] = Some(partner);
            if let Some(flag) = used.get_mut(partner) {
                *flag = true;
            }
        }
    }
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&label| choice_priority(specs[label].kind));
    for label in order {
        if partners[label].is_none() {
            let partner = choose_partner(world, specs[label].kind, &used, &mut rng);
            partners[label] = Some(partner);
            if let Some(flag) = used.get_mut(partner) {
                *flag = true;
            }
        }
    }

    let mut injections = Vec::with_capacity(specs.len());
    for (label, spec) in specs.iter().enumerate() {
        let partner = partners[label].unwrap_or(0);
        let app = choose_app(world, spec.kind, partner);
        let mut scenario_rng = Rng::stream(
            world.seed,
            &[stream::SCENARIO, label as u64, spec.kind as u64],
        );
        let period_start = attack_period_start(world);
        let attack_days = ((world.end_ms - period_start) / DAY_MS).max(1);
        let duration = default_duration(spec.kind, &mut scenario_rng, attack_days);
        let start_ms = match spec.start_ms {
            Some(start) => check_start(world, spec.kind, start)?,
            None => pick_start(world, partner, spec.kind, duration, &mut scenario_rng),
        };
        let end_ms = (start_ms + duration).min(world.end_ms);
        let injection = build(
            world,
            spec.kind,
            label,
            partner,
            app,
            start_ms,
            end_ms,
            scenario_rng,
        )?;
        injections.push(injection);
    }
    Ok(injections)
}

/// Order in which scenarios choose partners: the fewest partners fit the first.
fn choice_priority(kind: ScenarioKind) -> u8 {
    match kind {
        ScenarioKind::UnusualMethod => 0,
        ScenarioKind::OffHoursExport => 1,
        ScenarioKind::LowAndSlowExfiltration => 2,
        ScenarioKind::DataHarvesting => 3,
        ScenarioKind::ObjectEnumeration => 4,
        ScenarioKind::CredentialStuffing => 5,
        ScenarioKind::VolumeSpike => 6,
        ScenarioKind::LeakedKey => 7,
        ScenarioKind::EndpointProbing => 8,
    }
}

fn check_start(world: &World, kind: ScenarioKind, start: i64) -> Result<i64, SimulateError> {
    if start < world.start_ms || start >= world.end_ms {
        return Err(SimulateError::InvalidScenario(format!(
            "the start {} of {kind} is outside the simulated period {} to {}",
            rfc3339_seconds(start),
            rfc3339_seconds(world.start_ms),
            rfc3339_seconds(world.end_ms)
        )));
    }
    Ok(start)
}

fn resolve_partner(world: &World, name: &str) -> Result<usize, SimulateError> {
    world
        .partners
        .iter()
        .position(|partner| {
            partner.id.eq_ignore_ascii_case(name)
                || partner.slug.eq_ignore_ascii_case(name)
                || partner.name.eq_ignore_ascii_case(name)
        })
        .ok_or_else(|| {
            SimulateError::InvalidScenario(format!(
                "unknown partner {name:?}: expected an id from p01 to p{:02}, or a partner name",
                world.partners.len()
            ))
        })
}

/// Rates how well a partner suits a scenario: 2 fits, 1 will do, 0 is a poor fit.
fn suitability(world: &World, kind: ScenarioKind, partner: usize) -> u8 {
    let Some(partner_data) = world.partners.get(partner) else {
        return 0;
    };
    let apps: Vec<&super::world::App> = partner_data
        .apps
        .iter()
        .filter_map(|app| world.apps.get(*app))
        .collect();
    let uses = |names: &[&str]| {
        apps.iter().any(|app| {
            names
                .iter()
                .filter_map(|name| endpoint_id(name))
                .any(|endpoint| app.weight_of(endpoint) > 0.0)
        })
    };
    let fits = match kind {
        ScenarioKind::DataHarvesting => uses(&["product_get", "customer_get"]),
        ScenarioKind::ObjectEnumeration => uses(&["order_get", "invoice_get"]),
        ScenarioKind::LeakedKey | ScenarioKind::VolumeSpike => partner_data.peak_rate >= 30.0,
        ScenarioKind::CredentialStuffing => uses(&["auth_token"]),
        ScenarioKind::OffHoursExport => apps
            .iter()
            .all(|app| app.rhythm == Rhythm::BusinessHours && app.batch.is_none()),
        ScenarioKind::EndpointProbing => true,
        ScenarioKind::UnusualMethod => apps.iter().all(|app| !app.writes()),
        ScenarioKind::LowAndSlowExfiltration => {
            // A creep shows only over enough calls: about 20 list calls a
            // day, taking a working day as 8 hours at the busiest rate.
            let lists = [
                "customers_list",
                "invoices_list",
                "orders_list",
                "products_list",
            ];
            apps.iter().any(|app| {
                let share: f64 = lists
                    .iter()
                    .filter_map(|name| endpoint_id(name))
                    .map(|endpoint| app.share_of(endpoint))
                    .sum();
                partner_data.peak_rate * app.share * share * world.scale * 8.0 >= 20.0
            })
        }
    };
    let acceptable = match kind {
        ScenarioKind::OffHoursExport => {
            let exports_at_night = apps.iter().any(|app| {
                app.batch.as_ref().is_some_and(|batch| {
                    batch
                        .mix
                        .iter()
                        .any(|(endpoint, _)| Some(*endpoint) == endpoint_id("report_export_start"))
                })
            });
            let office_hours = apps
                .first()
                .is_some_and(|app| app.rhythm == Rhythm::BusinessHours);
            office_hours && !exports_at_night
        }
        ScenarioKind::LowAndSlowExfiltration => uses(&[
            "customers_list",
            "invoices_list",
            "orders_list",
            "products_list",
        ]),
        _ => true,
    };
    if fits {
        2
    } else if acceptable {
        1
    } else {
        0
    }
}

/// Picks an unused partner that suits the scenario, at random among the best.
fn choose_partner(world: &World, kind: ScenarioKind, used: &[bool], rng: &mut Rng) -> usize {
    let mut candidates: Vec<(bool, u8, u64, usize)> = (0..world.partners.len())
        .map(|partner| {
            let is_used = used.get(partner).copied().unwrap_or(false);
            (
                is_used,
                suitability(world, kind, partner),
                rng.next_u64(),
                partner,
            )
        })
        .collect();
    candidates.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    candidates.first().map_or(0, |candidate| candidate.3)
}

/// Picks the partner's app that fits the scenario best.
fn choose_app(world: &World, kind: ScenarioKind, partner: usize) -> usize {
    let Some(partner_data) = world.partners.get(partner) else {
        return 0;
    };
    let score = |app: usize| -> f64 {
        let Some(app_data) = world.apps.get(app) else {
            return 0.0;
        };
        let share = |names: &[&str]| -> f64 {
            names
                .iter()
                .filter_map(|name| endpoint_id(name))
                .map(|endpoint| app_data.share_of(endpoint))
                .sum()
        };
        match kind {
            ScenarioKind::DataHarvesting => share(&["product_get", "customer_get"]),
            ScenarioKind::ObjectEnumeration => share(&["order_get", "invoice_get"]),
            ScenarioKind::LowAndSlowExfiltration => {
                share(&[
                    "customers_list",
                    "invoices_list",
                    "orders_list",
                    "products_list",
                ]) * app_data.share
            }
            _ => app_data.share,
        }
    };
    let mut best = partner_data.apps.first().copied().unwrap_or(0);
    for &app in &partner_data.apps {
        if score(app) > score(best) {
            best = app;
        }
    }
    best
}

/// Picks a start in the attack period at one of the scenario's local hours,
/// on a working day when it needs one, so that its window ends in time.
fn pick_start(
    world: &World,
    partner: usize,
    kind: ScenarioKind,
    duration: i64,
    rng: &mut Rng,
) -> i64 {
    let period_start = attack_period_start(world);
    let latest = (world.end_ms - duration).max(period_start);
    let Some(zone) = world.partners.get(partner).map(|partner| partner.zone) else {
        return period_start;
    };
    let (first_hour, last_hour, working_days) = start_hours(kind);
    let first_day = zone.local(period_start).day;
    let last_day = zone.local(world.end_ms).day;
    for require_working_day in [working_days, false] {
        let mut candidates = Vec::new();
        for day in first_day..=last_day {
            for hour in first_hour..=last_hour {
                let start = zone.utc_of_local(day, hour);
                if start < period_start || start > latest {
                    continue;
                }
                if require_working_day && zone.local(start).is_day_off() {
                    continue;
                }
                candidates.push(start);
            }
        }
        if let Some(start) = rng.pick(&candidates) {
            return *start;
        }
    }
    latest.min(world.end_ms - 1).max(world.start_ms)
}

#[expect(
    clippy::too_many_arguments,
    reason = "the planned placement of one scenario"
)]
fn build(
    world: &mut World,
    kind: ScenarioKind,
    label: usize,
    partner: usize,
    app: usize,
    start_ms: i64,
    end_ms: i64,
    mut rng: Rng,
) -> Result<Injection, SimulateError> {
    // Attackers' networks come from the pool before the world is shared.
    let networks = match kind {
        ScenarioKind::LeakedKey => vec![world.take_spare_network()?],
        ScenarioKind::CredentialStuffing => {
            let count = 2 + rng.index(2);
            let mut networks = Vec::with_capacity(count);
            for _ in 0..count {
                networks.push(world.take_spare_network()?);
            }
            networks
        }
        _ => Vec::new(),
    };
    let context = Context {
        world: &*world,
        label,
        partner,
        app,
        start_ms,
        end_ms,
        rng,
    };
    Ok(match kind {
        ScenarioKind::DataHarvesting => data_harvesting(context),
        ScenarioKind::ObjectEnumeration => object_enumeration(context),
        ScenarioKind::LeakedKey => leaked_key(context, &networks),
        ScenarioKind::CredentialStuffing => credential_stuffing(context, &networks),
        ScenarioKind::OffHoursExport => off_hours_export(context),
        ScenarioKind::VolumeSpike => volume_spike(context),
        ScenarioKind::EndpointProbing => endpoint_probing(context),
        ScenarioKind::UnusualMethod => unusual_method(context),
        ScenarioKind::LowAndSlowExfiltration => low_and_slow(context),
    })
}

/// Splits `count` calls over the hours of a day in proportion to the
/// app's expected rate, and returns a random time for each.
fn spread_over_day(context: &mut Context<'_>, day_start: i64, count: u64) -> Vec<i64> {
    let weights: Vec<f64> = (0..24)
        .map(|hour| {
            context
                .world
                .expected_rate(context.app, day_start + hour * HOUR_MS)
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut times = Vec::with_capacity(count as usize);
    let mut cumulative = 0.0;
    let mut placed = 0u64;
    for (hour, weight) in weights.iter().enumerate() {
        cumulative += if total > 0.0 { *weight } else { 1.0 };
        let share = if total > 0.0 {
            cumulative / total
        } else {
            cumulative / 24.0
        };
        let until = ((count as f64 * share).round() as u64).min(count);
        let hour_start = day_start + hour as i64 * HOUR_MS;
        for _ in placed..until {
            times.push(hour_start + context.rng.below(HOUR_MS as u64) as i64);
        }
        placed = placed.max(until);
    }
    times
}

fn data_harvesting(mut context: Context<'_>) -> Injection {
    let world = context.world;
    let app = world.apps.get(context.app);
    let product_share = app.map_or(0.0, |app| {
        endpoint_id("product_get").map_or(0.0, |e| app.share_of(e))
    });
    let customer_share = app.map_or(0.0, |app| {
        endpoint_id("customer_get").map_or(0.0, |e| app.share_of(e))
    });
    let resource = if product_share >= customer_share {
        Resource::Product
    } else {
        Resource::Customer
    };
    let endpoint_name = match resource {
        Resource::Product => "product_get",
        _ => "customer_get",
    };
    let endpoint = endpoint_id(endpoint_name).unwrap_or(0);

    // Ids the partner does not usually read, in random order.
    let mut candidates: Vec<u64> = match (resource, world.partners.get(context.partner)) {
        (Resource::Product, Some(partner)) => (partner.products.count..PRODUCT_COUNT)
            .map(|position| partner.products.product(position))
            .collect(),
        (_, Some(partner)) => match partner.block(Resource::Customer) {
            Some(block) => {
                let existing = block.existing(world.progress(context.start_ms));
                (block.first..block.first + existing).collect()
            }
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    context.rng.shuffle(&mut candidates);

    let days = ((context.end_ms - context.start_ms) / DAY_MS).max(1);
    let daily_volume: f64 = (0..24)
        .map(|hour| world.expected_rate(context.app, context.start_ms + hour * HOUR_MS))
        .sum();
    let first_day = (0.15 * daily_volume).max(40.0).round();
    let growth = round2(context.rng.uniform(1.3, 1.5));

    let mut events = Vec::new();
    let mut next = 0usize;
    let mut day_count = first_day;
    for day in 0..days {
        let day_start = context.start_ms + day * DAY_MS;
        let count =
            (day_count.round() as u64).min((candidates.len() - next.min(candidates.len())) as u64);
        for time in spread_over_day(&mut context, day_start, count) {
            let Some(id) = candidates.get(next).copied() else {
                break;
            };
            next += 1;
            let caller = context.script_caller(time);
            let status = if context.rng.chance(0.03) { 404 } else { 200 };
            if let Some(definition) = CATALOG.get(endpoint) {
                let path = render_path(definition.route, id);
                events.push(build_event(
                    &caller,
                    endpoint,
                    definition,
                    time,
                    path,
                    None,
                    status,
                    &mut context.rng,
                    Some(context.label),
                ));
            }
        }
        day_count *= growth;
    }

    let mut params = Params::default();
    params
        .text("resource", resource.name())
        .text("endpoint", endpoint_name)
        .int("days", days)
        .int("first_day_objects", first_day as i64)
        .number("daily_growth", growth)
        .int("distinct_objects", next as i64);
    context.injection(ScenarioKind::DataHarvesting, params, events)
}

/// Returns the status of a read of an object: 200 for the partner's own
/// existing ids, 403 for another partner's existing ids, else 404.
fn enumeration_status(
    world: &World,
    partner: usize,
    resource: Resource,
    id: u64,
    time: i64,
) -> u16 {
    let progress = world.progress(time);
    for (index, candidate) in world.partners.iter().enumerate() {
        let Some(block) = candidate.block(resource) else {
            continue;
        };
        if !block.contains(id) {
            continue;
        }
        if id - block.first >= block.existing(progress) {
            return 404;
        }
        return if index == partner { 200 } else { 403 };
    }
    404
}

fn object_enumeration(mut context: Context<'_>) -> Injection {
    let world = context.world;
    let app = world.apps.get(context.app);
    let order_share = app.map_or(0.0, |app| {
        endpoint_id("order_get").map_or(0.0, |e| app.share_of(e))
    });
    let invoice_share = app.map_or(0.0, |app| {
        endpoint_id("invoice_get").map_or(0.0, |e| app.share_of(e))
    });
    let (resource, endpoint_name) = if invoice_share > order_share {
        (Resource::Invoice, "invoice_get")
    } else {
        (Resource::Order, "order_get")
    };
    let endpoint = endpoint_id(endpoint_name).unwrap_or(0);
    let interval = context.rng.between(2_500, 6_000);
    let calls = ((context.end_ms - context.start_ms) / interval).max(1) as u64;
    let skip_every = context.rng.between(7, 15) as u64;
    let block = world
        .partners
        .get(context.partner)
        .and_then(|partner| partner.block(resource));
    let first_id = match block {
        Some(block) => {
            let existing = block.existing(world.progress(context.start_ms));
            block.first + existing - (calls / 5).clamp(1, existing)
        }
        None => 1,
    };

    let mut events = Vec::with_capacity(calls as usize);
    let mut last_id = first_id;
    for step in 0..calls {
        let id = first_id + step + step / skip_every;
        last_id = id;
        let time = context.start_ms
            + step as i64 * interval
            + context.rng.below(interval as u64 / 3) as i64;
        let status = enumeration_status(world, context.partner, resource, id, time);
        let caller = context.script_caller(time);
        if let Some(definition) = CATALOG.get(endpoint) {
            let path = render_path(definition.route, id);
            events.push(build_event(
                &caller,
                endpoint,
                definition,
                time,
                path,
                None,
                status,
                &mut context.rng,
                Some(context.label),
            ));
        }
    }

    let mut params = Params::default();
    params
        .text("resource", resource.name())
        .text("endpoint", endpoint_name)
        .int("first_id", first_id)
        .int("last_id", last_id)
        .int("interval_ms", interval)
        .int("calls", calls)
        .int("skip_every", skip_every);
    context.injection(ScenarioKind::ObjectEnumeration, params, events)
}

/// User agents of attackers' tools; none is in the partners' client list.
const ATTACKER_AGENTS: [&str; 5] = [
    "python-requests/2.32.3",
    "Go-http-client/2.0",
    "curl/8.7.1",
    "PostmanRuntime/7.37.3",
    "python-httpx/0.27.0",
];

/// User agents that credential stuffing rotates through.
const STUFFING_AGENTS: [&str; 5] = [
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "okhttp/4.9.3",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "curl/8.4.0",
];

fn network_text(network: [u8; 3]) -> String {
    format!("{}.{}.{}.0/24", network[0], network[1], network[2])
}

fn ip_text(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

fn hosts_in(rng: &mut Rng, network: [u8; 3], count: usize) -> Vec<[u8; 4]> {
    let mut ips: Vec<[u8; 4]> = Vec::with_capacity(count);
    while ips.len() < count {
        let ip = [network[0], network[1], network[2], 2 + rng.below(250) as u8];
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

/// Appends a list call with an explicit page, as a tool that walks every page sends it.
fn list_call(
    context: &mut Context<'_>,
    caller: &Caller,
    endpoint: usize,
    time: i64,
    page: u64,
    out: &mut Vec<SimEvent>,
) {
    let Some(definition) = CATALOG.get(endpoint) else {
        return;
    };
    let page_size = default_page_size(definition.resource);
    let query = format!("page={page}&page_size={page_size}");
    let status = if context.rng.chance(0.01) { 400 } else { 200 };
    out.push(build_event(
        caller,
        endpoint,
        definition,
        time,
        definition.route.to_string(),
        Some(query),
        status,
        &mut context.rng,
        Some(context.label),
    ));
}

fn leaked_key(mut context: Context<'_>, networks: &[[u8; 3]]) -> Injection {
    let world = context.world;
    let network = networks.first().copied().unwrap_or([198, 19, 255]);
    let host_count = 1 + context.rng.index(2);
    let ips = hosts_in(&mut context.rng, network, host_count);
    let own_agents: Vec<String> = world
        .apps
        .get(context.app)
        .map(|app| {
            app.user_agents
                .iter()
                .flat_map(|agent| [agent.before_upgrade.clone(), agent.after_upgrade.clone()])
                .collect()
        })
        .unwrap_or_default();
    let candidates: Vec<&str> = ATTACKER_AGENTS
        .iter()
        .copied()
        .filter(|agent| !own_agents.iter().any(|own| own == agent))
        .collect();
    let user_agent = context
        .rng
        .pick(&candidates)
        .copied()
        .unwrap_or(ATTACKER_AGENTS[0])
        .to_string();
    let rate = context.rng.uniform(12.0, 40.0).round();
    let mix: Vec<(usize, f64)> = [
        ("customers_list", 30.0),
        ("customer_get", 30.0),
        ("orders_list", 15.0),
        ("invoices_list", 10.0),
        ("invoice_pdf", 5.0),
        ("report_export_start", 2.0),
    ]
    .iter()
    .filter_map(|(name, weight)| endpoint_id(name).map(|id| (id, *weight)))
    .collect();
    let weights: Vec<f64> = mix.iter().map(|(_, weight)| *weight).collect();

    let mut events = Vec::new();
    let mut page = 1u64;
    let mut hour = context.start_ms;
    while hour < context.end_ms {
        let span = (context.end_ms - hour).min(HOUR_MS);
        let calls = context.rng.poisson(rate * span as f64 / HOUR_MS as f64);
        for _ in 0..calls {
            let time = hour + context.rng.below(span as u64) as i64;
            let ip = context.rng.pick(&ips).copied().unwrap_or([198, 19, 255, 2]);
            let caller = Caller {
                app: context.app,
                ip,
                user_agent: user_agent.clone(),
            };
            let Some(&(endpoint, _)) = mix.get(context.rng.weighted(&weights)) else {
                continue;
            };
            let is_list = CATALOG
                .get(endpoint)
                .is_some_and(|e| e.action == Action::List);
            if is_list {
                list_call(&mut context, &caller, endpoint, time, page, &mut events);
                page += 1;
            } else {
                let options = context.options();
                emit_call(
                    world,
                    &caller,
                    endpoint,
                    time,
                    &mut context.rng,
                    options,
                    &mut events,
                );
            }
        }
        hour += HOUR_MS;
    }

    let mut params = Params::default();
    params
        .text("network", network_text(network))
        .list("ips", ips.iter().map(|ip| ip_text(*ip)).collect())
        .text("user_agent", user_agent)
        .number("calls_per_hour", rate);
    context.injection(ScenarioKind::LeakedKey, params, events)
}

fn credential_stuffing(mut context: Context<'_>, networks: &[[u8; 3]]) -> Injection {
    let mut ips = Vec::new();
    for network in networks {
        let count = 4 + context.rng.index(5);
        ips.extend(hosts_in(&mut context.rng, *network, count));
    }
    let token = endpoint_id("auth_token").unwrap_or(0);
    let bursts = 4 + context.rng.below(4);
    let window = (context.end_ms - context.start_ms).max(HOUR_MS);
    let mut burst_starts: Vec<i64> = (0..bursts)
        .map(|_| context.start_ms + context.rng.below((window - 10 * 60_000).max(1) as u64) as i64)
        .collect();
    burst_starts.sort_unstable();

    let mut events = Vec::new();
    let mut successes = 0u64;
    for burst_start in &burst_starts {
        let size = context.rng.between(150, 450);
        let length = context.rng.between(2, 6) * 60_000;
        for call in 0..size {
            let time = burst_start + call * length / size + context.rng.below(400) as i64;
            let r = context.rng.unit();
            let status = if r < 0.9 {
                401
            } else if r < 0.96 {
                429
            } else if r < 0.985 {
                200
            } else {
                400
            };
            if status == 200 {
                successes += 1;
            }
            let caller = Caller {
                app: context.app,
                ip: context.rng.pick(&ips).copied().unwrap_or([198, 19, 255, 3]),
                user_agent: STUFFING_AGENTS[context.rng.index(STUFFING_AGENTS.len())].to_string(),
            };
            if let Some(definition) = CATALOG.get(token) {
                events.push(build_event(
                    &caller,
                    token,
                    definition,
                    time,
                    definition.route.to_string(),
                    None,
                    status,
                    &mut context.rng,
                    Some(context.label),
                ));
            }
        }
    }

    let mut params = Params::default();
    params
        .text("endpoint", "auth_token")
        .int("bursts", bursts)
        .int("calls", events.len())
        .int("successes", successes)
        .list(
            "networks",
            networks.iter().map(|n| network_text(*n)).collect(),
        )
        .int("addresses", ips.len());
    context.injection(ScenarioKind::CredentialStuffing, params, events)
}

fn off_hours_export(mut context: Context<'_>) -> Injection {
    let (Some(start_endpoint), Some(status_endpoint), Some(download_endpoint)) = (
        endpoint_id("report_export_start"),
        endpoint_id("report_status"),
        endpoint_id("report_download"),
    ) else {
        return context.injection(ScenarioKind::OffHoursExport, Params::default(), Vec::new());
    };
    let nights = 2;
    let mut events = Vec::new();
    let mut jobs_total = 0u64;
    let mut download_bytes = 0u64;
    for night in 0..nights {
        let night_start = context.start_ms + night * DAY_MS;
        let jobs = context.rng.between(6, 14);
        let mut time = night_start;
        for _ in 0..jobs {
            if time >= context.end_ms {
                break;
            }
            jobs_total += 1;
            let caller = context.script_caller(time);
            let report = 800_000 + context.rng.below(900_000);
            push_call(
                &mut context,
                &caller,
                start_endpoint,
                time,
                None,
                202,
                &mut events,
            );
            if let Some(event) = events.last_mut() {
                event.request_bytes = context.rng.between(300, 600) as u64;
            }
            let mut poll = time;
            for _ in 0..context.rng.between(2, 5) {
                poll += context.rng.between(20_000, 40_000);
                push_call(
                    &mut context,
                    &caller,
                    status_endpoint,
                    poll,
                    Some(report),
                    200,
                    &mut events,
                );
            }
            poll += context.rng.between(1_000, 5_000);
            push_call(
                &mut context,
                &caller,
                download_endpoint,
                poll,
                Some(report),
                200,
                &mut events,
            );
            if let Some(event) = events.last_mut() {
                let bytes = context.rng.log_normal(30_000_000.0, 0.6).round() as u64;
                event.response_bytes = bytes;
                // About 20 MB/s.
                event.latency_ms = (bytes / 20_000).clamp(500, 120_000) as u32;
                download_bytes += bytes;
            }
            time += context.rng.between(8, 15) * 60_000;
        }
    }
    let local_hour = context
        .world
        .local(context.partner, context.start_ms)
        .map_or(0, |local| local.hour);
    let mut params = Params::default();
    params
        .int("nights", nights)
        .int("local_start_hour", local_hour)
        .int("jobs", jobs_total)
        .int("download_bytes", download_bytes);
    context.injection(ScenarioKind::OffHoursExport, params, events)
}

/// Appends one call with a fixed status, to a report id when given.
fn push_call(
    context: &mut Context<'_>,
    caller: &Caller,
    endpoint: usize,
    time: i64,
    id: Option<u64>,
    status: u16,
    out: &mut Vec<SimEvent>,
) {
    let Some(definition) = CATALOG.get(endpoint) else {
        return;
    };
    let path = match id {
        Some(id) => render_path(definition.route, id),
        None => definition.route.to_string(),
    };
    out.push(build_event(
        caller,
        endpoint,
        definition,
        time,
        path,
        None,
        status,
        &mut context.rng,
        Some(context.label),
    ));
}

/// Smallest hourly rate a spike multiplies, so a quiet app's spike still shows.
const SPIKE_FLOOR_PER_HOUR: f64 = 20.0;

fn volume_spike(mut context: Context<'_>) -> Injection {
    let world = context.world;
    let multiplier = (context.rng.uniform(5.0, 10.0) * 2.0).round() / 2.0;
    let baseline = world.expected_rate(
        context.app,
        context.start_ms - context.start_ms.rem_euclid(HOUR_MS),
    );
    let Some(app) = world.apps.get(context.app) else {
        return context.injection(ScenarioKind::VolumeSpike, Params::default(), Vec::new());
    };
    let weights: Vec<f64> = app.mix.iter().map(|(_, weight)| *weight).collect();
    let mut events = Vec::new();
    let mut segment = context.start_ms;
    while segment < context.end_ms {
        let hour_start = segment - segment.rem_euclid(HOUR_MS);
        let segment_end = (hour_start + HOUR_MS).min(context.end_ms);
        let expected = world
            .expected_rate(context.app, hour_start)
            .max(SPIKE_FLOOR_PER_HOUR);
        let fraction = (segment_end - segment) as f64 / HOUR_MS as f64;
        let calls = context
            .rng
            .poisson((multiplier - 1.0) * expected * fraction);
        for _ in 0..calls {
            let time = segment + context.rng.below((segment_end - segment).max(1) as u64) as i64;
            let Some(&(endpoint, _)) = app.mix.get(context.rng.weighted(&weights)) else {
                continue;
            };
            let caller = usual_caller(world, context.app, time, &mut context.rng);
            let options = context.options();
            emit_call(
                world,
                &caller,
                endpoint,
                time,
                &mut context.rng,
                options,
                &mut events,
            );
        }
        segment = segment_end;
    }
    let mut params = Params::default();
    params
        .number("multiplier", multiplier)
        .number("baseline_calls_per_hour", baseline)
        .int(
            "duration_minutes",
            (context.end_ms - context.start_ms) / 60_000,
        )
        .int("added_calls", events.len());
    context.injection(ScenarioKind::VolumeSpike, params, events)
}

fn endpoint_probing(mut context: Context<'_>) -> Injection {
    let calls = context.rng.between(120, 300) as usize;
    let mut order: Vec<usize> = (0..PROBE_PATHS.len()).collect();
    context.rng.shuffle(&mut order);
    let window = (context.end_ms - context.start_ms).max(1) as u64;
    let mut times: Vec<i64> = (0..calls)
        .map(|_| context.start_ms + context.rng.below(window) as i64)
        .collect();
    times.sort_unstable();

    let mut events = Vec::with_capacity(calls);
    let mut distinct: Vec<&str> = Vec::new();
    for (call, time) in times.into_iter().enumerate() {
        // Walks the list, then comes back to a random earlier path now and then.
        let position = if call < order.len() || context.rng.chance(0.5) {
            order[call % order.len()]
        } else {
            order[context.rng.index(order.len())]
        };
        let (template, listed_status) = PROBE_PATHS[position];
        if !distinct.contains(&template) {
            distinct.push(template);
        }
        let method = if context.rng.chance(0.1) {
            "POST"
        } else {
            "GET"
        };
        let status = if method == "POST" && listed_status == 200 {
            405
        } else {
            listed_status
        };
        let response_bytes = match (template, status) {
            ("/openapi.json", 200) => context.rng.log_normal(48_000.0, 0.05).round() as u64,
            (_, 200) => 15,
            _ => context.rng.log_normal(130.0, 0.2).round() as u64,
        };
        let caller = context.script_caller(time);
        events.push(SimEvent {
            time_ms: time,
            app: context.app,
            client_ip: caller.ip,
            client_port: 1024 + context.rng.below(64_000) as u16,
            user_agent: caller.user_agent,
            method,
            path: render_path(template, 1 + context.rng.below(99_999)),
            query: None,
            route: CATCH_ALL_ROUTE,
            endpoint: None,
            status,
            request_bytes: 0,
            response_bytes,
            latency_ms: context
                .rng
                .log_normal(12.0, 0.4)
                .round()
                .clamp(1.0, 10_000.0) as u32,
            request_id: request_bits(&mut context.rng),
            label: Some(context.label),
        });
    }
    let mut params = Params::default();
    params
        .int("calls", calls)
        .int("distinct_paths", distinct.len())
        .list(
            "paths",
            distinct.iter().map(|path| path.to_string()).collect(),
        );
    context.injection(ScenarioKind::EndpointProbing, params, events)
}

fn unusual_method(mut context: Context<'_>) -> Injection {
    let world = context.world;
    let (endpoint_name, resource) = if context.rng.chance(0.5) {
        ("order_delete", Resource::Order)
    } else {
        ("customer_update", Resource::Customer)
    };
    let endpoint = endpoint_id(endpoint_name).unwrap_or(0);
    let Some(definition) = CATALOG.get(endpoint) else {
        return context.injection(ScenarioKind::UnusualMethod, Params::default(), Vec::new());
    };
    let calls = context.rng.between(150, 400);
    let mut ids: Vec<u64> = match world
        .partners
        .get(context.partner)
        .and_then(|p| p.block(resource))
    {
        Some(block) => {
            let existing = block.existing(world.progress(context.start_ms));
            (block.first..block.first + existing).collect()
        }
        None => (1..=calls as u64).collect(),
    };
    context.rng.shuffle(&mut ids);
    let interval = ((context.end_ms - context.start_ms) / calls.max(1)).max(1);

    let mut events = Vec::with_capacity(calls as usize);
    for call in 0..calls {
        let time =
            context.start_ms + call * interval + context.rng.below(interval as u64 / 2 + 1) as i64;
        let r = context.rng.unit();
        let status = match definition.method {
            "DELETE" if r < 0.85 => 204,
            "DELETE" if r < 0.93 => 404,
            "DELETE" if r < 0.98 => 409,
            "DELETE" => 403,
            _ if r < 0.88 => 200,
            _ if r < 0.94 => 422,
            _ if r < 0.98 => 404,
            _ => 409,
        };
        let id = ids.get(call as usize).copied().unwrap_or(1);
        let caller = context.script_caller(time);
        let path = render_path(definition.route, id);
        events.push(build_event(
            &caller,
            endpoint,
            definition,
            time,
            path,
            None,
            status,
            &mut context.rng,
            Some(context.label),
        ));
    }
    let writes_before = world.partners.get(context.partner).is_some_and(|partner| {
        partner
            .apps
            .iter()
            .any(|app| world.apps.get(*app).is_some_and(|app| app.writes()))
    });
    let mut params = Params::default();
    params
        .text("method", definition.method)
        .text("endpoint", endpoint_name)
        .int("calls", calls)
        .text(
            "partner_wrote_before",
            if writes_before { "yes" } else { "no" },
        );
    context.injection(ScenarioKind::UnusualMethod, params, events)
}

fn low_and_slow(mut context: Context<'_>) -> Injection {
    let world = context.world;
    let lists = [
        "customers_list",
        "invoices_list",
        "orders_list",
        "products_list",
    ];
    let app = world.apps.get(context.app);
    let mut endpoint_name = lists[0];
    let mut best = -1.0;
    for name in lists {
        let share = app.map_or(0.0, |app| {
            endpoint_id(name).map_or(0.0, |e| app.share_of(e))
        });
        if share > best {
            best = share;
            endpoint_name = name;
        }
    }
    if best <= 0.0 {
        // An app without list calls: its heaviest GET endpoint grows instead.
        if let Some(app) = app
            && let Some((endpoint, _)) = app
                .mix
                .iter()
                .filter(|(e, _)| CATALOG.get(*e).is_some_and(|e| e.method == "GET"))
                .max_by(|a, b| a.1.total_cmp(&b.1))
            && let Some(definition) = CATALOG.get(*endpoint)
        {
            endpoint_name = definition.name;
        }
    }

    let endpoint = endpoint_id(endpoint_name).unwrap_or(0);
    let end_factor = round2(context.rng.uniform(3.0, 5.0));
    let page_size = CATALOG
        .get(endpoint)
        .map_or(50, |e| default_page_size(e.resource));
    let mut params = Params::default();
    params
        .text("endpoint", endpoint_name)
        .int("days", (context.end_ms - context.start_ms) / DAY_MS)
        .number("end_factor", end_factor);
    if CATALOG
        .get(endpoint)
        .is_some_and(|e| e.action == Action::List)
    {
        params.int("start_page_size", page_size).int(
            "end_page_size",
            (f64::from(page_size) * end_factor).round() as i64,
        );
    }

    let modifier = Modifier {
        app: context.app,
        endpoint,
        start_ms: context.start_ms,
        end_ms: context.end_ms,
        end_factor,
    };
    let mut injection = context.injection(ScenarioKind::LowAndSlowExfiltration, params, Vec::new());
    injection.modifier = Some(modifier);
    injection
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_round_trip() {
        for kind in ScenarioKind::ALL {
            assert_eq!(kind.name().parse::<ScenarioKind>().ok(), Some(kind));
        }
        assert!("nothing".parse::<ScenarioKind>().is_err());
    }

    #[test]
    fn scenario_spec_parses_parts() {
        let spec: ScenarioSpec = "volume_spike:partner=p07:start=2025-05-06T10:00:00Z"
            .parse()
            .expect("a valid spec");
        assert_eq!(spec.kind, ScenarioKind::VolumeSpike);
        assert_eq!(spec.partner.as_deref(), Some("p07"));
        assert_eq!(spec.start_ms, Some(1_746_525_600_000));
        let spec: ScenarioSpec = "leaked_key:start=2025-05-06T10:00:00Z:partner=p02"
            .parse()
            .expect("parts in any order");
        assert_eq!(spec.partner.as_deref(), Some("p02"));
        assert!(
            "leaked_key:start=yesterday"
                .parse::<ScenarioSpec>()
                .is_err()
        );
        assert!("leaked_key:color=red".parse::<ScenarioSpec>().is_err());
    }

    #[test]
    fn page_size_replaced() {
        assert_eq!(
            set_page_size(Some("page=2&page_size=50"), 120),
            "page=2&page_size=120"
        );
        assert_eq!(set_page_size(None, 80), "page_size=80");
    }
}
