//! A labelled simulator of B2B API traffic, for measuring anomaly detection.
//!
//! [`Simulation::new`] draws a world from a seed. It has dozens of partners
//! of sizes spanning two orders of magnitude, each with one to three apps
//! (one credential each). A partner has a time zone with its daylight
//! saving rule and holidays, a daily and weekly rhythm, and an endpoint mix
//! from the catalogue of a B2B API (orders, invoices, customers, products,
//! shipments, search, tokens, exports, webhooks). It owns blocks of object
//! ids and /24 networks, and its apps send SDK user agents. Ordinary noise comes with it: retries after 429
//! and 5xx, error bursts after deploys, holiday lulls, one partner whose
//! volume doubles in week 3 and stays there, and SDK upgrades that change
//! user agents. Then it plans the scenarios of abuse ([`ScenarioKind`])
//! on partners and windows of the seed's choosing, or the caller's.
//!
//! [`Simulation::write`] writes the calls in time order in one of the
//! formats apitrail parses ([`encode::SUPPORTED_FORMATS`]), and returns the
//! ground truth ([`TruthRecord`]): per scenario, the consumer exactly as
//! apitrail stores it for that format, the window, and the parameters.
//!
//! The same options give the same bytes on every platform: the random
//! numbers come from a generator written here ([`rng`]), time zones from
//! rules written here instead of the tz database, and nothing depends on
//! hash-map order. The only I/O is through the writer the caller passes.
//!
//! - [`world`]: partners, apps and the shared noise.
//! - [`traffic`]: the ordinary calls of one app in one hour.
//! - [`scenario`]: planning and building the injected abuse.
//! - [`encode`]: the output formats.
//! - [`truth`]: the ground-truth records.
//! - [`catalog`], [`clock`], [`rng`]: the API, calendar rules and random numbers.

pub mod catalog;
pub mod clock;
pub mod encode;
pub mod rng;
pub mod scenario;
pub mod traffic;
pub mod truth;
pub mod world;

#[cfg(test)]
mod tests;

use std::io::{self, Write};

pub use catalog::{CATALOG, Endpoint};
pub use encode::{Encoder, SUPPORTED_FORMATS, consumer_of};
pub use scenario::{Injection, ParamValue, Params, ScenarioKind, ScenarioSpec};
pub use traffic::SimEvent;
pub use truth::{TruthRecord, TruthTally, write_truth};
pub use world::{App, MAX_PARTNERS, Partner, World};

use crate::format::Format;
use clock::{DAY_MS, HOUR_MS};
use scenario::Modifier;

/// Error of a simulation: invalid options, or a failed write.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("invalid simulation option: {0}")]
    InvalidOption(String),
    #[error("unknown scenario {0:?}; known scenarios: {names}", names = ScenarioKind::names())]
    UnknownScenario(String),
    #[error("invalid scenario: {0}")]
    InvalidScenario(String),
    #[error(
        "the simulator does not write format {0}; it writes aws_apigateway, kong, otlp and aws_alb"
    )]
    UnsupportedFormat(Format),
    #[error("{0}")]
    TooLarge(&'static str),
    #[error("writing the simulated events failed")]
    Write(#[source] io::Error),
}

/// First day of a simulation when none is given: Monday 7 April 2025.
pub const DEFAULT_START: (i64, u32, u32) = (2025, 4, 7);
/// Maximum length of a simulation, in weeks.
pub const MAX_WEEKS: u32 = 52;
/// Largest volume multiplier.
pub const MAX_SCALE: f64 = 100.0;
/// Largest number of injected scenarios.
pub const MAX_SCENARIOS: usize = 64;
/// Range of start years, within which every parser reads the times.
const START_YEARS: std::ops::RangeInclusive<i64> = 2000..=2098;

/// Selection of the scenarios to inject.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ScenarioSelection {
    /// Each scenario once, on different partners, at times the seed picks.
    #[default]
    Default,
    /// No scenarios: ordinary traffic only.
    None,
    List(Vec<ScenarioSpec>),
}

impl ScenarioSelection {
    fn specs(&self) -> Vec<ScenarioSpec> {
        match self {
            ScenarioSelection::Default => ScenarioKind::ALL.map(ScenarioSpec::new).to_vec(),
            ScenarioSelection::None => Vec::new(),
            ScenarioSelection::List(specs) => specs.clone(),
        }
    }
}

/// Options of a simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationOptions {
    pub seed: u64,
    /// First day, as (year, month, day); the simulation starts at 00:00 UTC.
    pub start: (i64, u32, u32),
    pub weeks: u32,
    pub partners: usize,
    /// Multiplier of every partner's volume; scenarios keep their size,
    /// except the volume spike, which multiplies the app's own volume.
    pub scale: f64,
    pub scenarios: ScenarioSelection,
}

impl Default for SimulationOptions {
    fn default() -> Self {
        SimulationOptions {
            seed: 1,
            start: DEFAULT_START,
            weeks: 5,
            partners: 30,
            scale: 1.0,
            scenarios: ScenarioSelection::Default,
        }
    }
}

impl SimulationOptions {
    /// Checks the options and returns the start in milliseconds since the epoch.
    fn validate(&self) -> Result<i64, SimulateError> {
        let invalid = |message: String| Err(SimulateError::InvalidOption(message));
        if self.partners == 0 || self.partners > MAX_PARTNERS {
            return invalid(format!(
                "partners must be from 1 to {MAX_PARTNERS}, got {}: a simulation needs at least one partner to send traffic",
                self.partners
            ));
        }
        if self.weeks == 0 || self.weeks > MAX_WEEKS {
            return invalid(format!(
                "weeks must be from 1 to {MAX_WEEKS}, got {}",
                self.weeks
            ));
        }
        if !self.scale.is_finite() || self.scale <= 0.0 || self.scale > MAX_SCALE {
            return invalid(format!(
                "scale must be above 0 and at most {MAX_SCALE}, got {}",
                self.scale
            ));
        }
        let (year, month, day) = self.start;
        let valid_date = START_YEARS.contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && clock::civil_from_days(clock::days_from_civil(year, month, day))
                == (year, month, day);
        if !valid_date {
            return invalid(format!(
                "start {year:04}-{month:02}-{day:02} is not a valid date from {} to {}",
                START_YEARS.start(),
                START_YEARS.end()
            ));
        }
        if let ScenarioSelection::List(specs) = &self.scenarios
            && specs.len() > MAX_SCENARIOS
        {
            return invalid(format!(
                "at most {MAX_SCENARIOS} scenarios can be injected, got {}",
                specs.len()
            ));
        }
        Ok(clock::days_from_civil(year, month, day) * DAY_MS)
    }
}

/// A planned simulation: the world and the scenarios, before any call is drawn.
#[derive(Debug, Clone)]
pub struct Simulation {
    world: World,
    injections: Vec<Injection>,
    /// Modifiers by app index, with the scenario label they mark calls with.
    modifiers: Vec<Vec<(usize, Modifier)>>,
    /// Calls the scenarios add, sorted by time.
    scheduled: Vec<SimEvent>,
}

/// How far writing has come, reported once per simulated day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Simulated days finished.
    pub days_done: u32,
    pub days: u32,
    pub events: u64,
    pub bytes: u64,
}

/// Counts and ground truth of what [`Simulation::write`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub events: u64,
    /// Records written: lines, which for OTLP hold several events.
    pub records: u64,
    pub bytes: u64,
    pub truth: Vec<TruthRecord>,
}

impl Simulation {
    /// Draws the world and plans the scenarios.
    pub fn new(options: &SimulationOptions) -> Result<Self, SimulateError> {
        let start_ms = options.validate()?;
        let mut world = World::build(world::WorldShape {
            seed: options.seed,
            start_ms,
            weeks: options.weeks,
            partners: options.partners,
            scale: options.scale,
        })?;
        let injections = scenario::plan(&mut world, &options.scenarios.specs())?;

        let mut modifiers = vec![Vec::new(); world.apps.len()];
        let mut scheduled = Vec::new();
        for (label, injection) in injections.iter().enumerate() {
            if let Some(modifier) = &injection.modifier
                && let Some(list) = modifiers.get_mut(modifier.app)
            {
                list.push((label, modifier.clone()));
            }
            scheduled.extend(injection.events.iter().cloned());
        }
        scheduled.sort_by_key(|event| event.time_ms);
        Ok(Simulation {
            world,
            injections,
            modifiers,
            scheduled,
        })
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn injections(&self) -> &[Injection] {
        &self.injections
    }

    /// Returns every call of the simulation in time order, drawn hour by hour.
    pub fn events(&self) -> EventStream<'_> {
        EventStream {
            simulation: self,
            hour_ms: self.world.start_ms,
            ready: Vec::new().into_iter(),
            pending: Vec::new(),
            cursor: 0,
        }
    }

    /// Writes every call in `format` and returns the counts and the truth.
    ///
    /// `progress` is called after each simulated day. The caller buffers
    /// `out`; every record is one `write_all`.
    pub fn write(
        &self,
        format: Format,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Summary, SimulateError> {
        let mut encoder = Encoder::new(format, &self.world)?;
        let mut counter = CountingWriter {
            inner: out,
            bytes: 0,
        };
        let mut tally = TruthTally::new(self.injections.len());
        let days = ((self.world.end_ms - self.world.start_ms) / DAY_MS) as u32;
        let mut events = 0u64;
        let mut records = 0u64;
        let mut next_day_ms = self.world.start_ms + DAY_MS;
        let mut days_done = 0;
        for event in self.events() {
            while event.time_ms >= next_day_ms {
                days_done += 1;
                next_day_ms += DAY_MS;
                progress(Progress {
                    days_done,
                    days,
                    events,
                    bytes: counter.bytes,
                });
            }
            tally.observe(&self.world, format, &event);
            records += encoder
                .write(&event, &mut counter)
                .map_err(SimulateError::Write)?;
            events += 1;
        }
        records += encoder.finish(&mut counter).map_err(SimulateError::Write)?;
        counter.flush().map_err(SimulateError::Write)?;
        progress(Progress {
            days_done: days,
            days,
            events,
            bytes: counter.bytes,
        });
        Ok(Summary {
            events,
            records,
            bytes: counter.bytes,
            truth: tally.records(&self.world, format, &self.injections),
        })
    }
}

/// Counts the bytes written through it.
struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    bytes: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The calls of a simulation in time order; see [`Simulation::events`].
pub struct EventStream<'a> {
    simulation: &'a Simulation,
    /// Start of the next hour to draw.
    hour_ms: i64,
    ready: std::vec::IntoIter<SimEvent>,
    /// Follow-up calls that belong to a later hour.
    pending: Vec<SimEvent>,
    /// Next scenario call in `scheduled`.
    cursor: usize,
}

impl EventStream<'_> {
    /// Draws the next hour: ordinary calls, scenario changes and calls,
    /// and earlier follow-ups that fall in it, sorted by time.
    fn draw_hour(&mut self) {
        let simulation = self.simulation;
        let world = &simulation.world;
        let hour_end = self.hour_ms + HOUR_MS;
        let mut events = Vec::new();
        for app in 0..world.apps.len() {
            let first = events.len();
            traffic::app_hour(world, app, self.hour_ms, &mut events);
            for (label, modifier) in simulation.modifiers.get(app).into_iter().flatten() {
                for event in &mut events[first..] {
                    modifier.apply(*label, event);
                }
            }
        }
        while let Some(event) = simulation.scheduled.get(self.cursor) {
            if event.time_ms >= hour_end {
                break;
            }
            events.push(event.clone());
            self.cursor += 1;
        }
        events.append(&mut self.pending);

        let (mut now, later): (Vec<SimEvent>, Vec<SimEvent>) = events
            .into_iter()
            .partition(|event| event.time_ms < hour_end);
        self.pending = later
            .into_iter()
            .filter(|event| event.time_ms < world.end_ms)
            .collect();
        now.sort_by_key(|event| event.time_ms);
        self.ready = now.into_iter();
        self.hour_ms = hour_end;
    }
}

impl Iterator for EventStream<'_> {
    type Item = SimEvent;

    fn next(&mut self) -> Option<SimEvent> {
        loop {
            if let Some(event) = self.ready.next() {
                return Some(event);
            }
            if self.hour_ms >= self.simulation.world.end_ms {
                return None;
            }
            self.draw_hour();
        }
    }
}
