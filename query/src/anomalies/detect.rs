//! The detectors: each hour of the analysis window against the consumer's own past.
//!
//! Every detector looks at one consumer at a time and compares an hour of
//! the window (or the 24 or 6 hours that end with it) with the same quantity
//! in the baseline, the hours before the window. Counts that follow a weekly
//! rhythm, distinct objects among them, are compared with the same hours of
//! the week in each baseline week (`h - 168 k`). Bytes per call, which do not
//! follow the week, are compared with the same hours of each baseline day
//! (`h - 24 k`).
//! Sets (networks, user agents, endpoints, methods) are compared with
//! everything the consumer used in the baseline.
//!
//! A count is scored with a robust z-score, `(x - median) / scale`. The
//! scale is `1.4826 * MAD`, but never below the Poisson noise `sqrt(median)`
//! and 1, so a consumer whose hours are all alike does not turn a small rise
//! into a large score. A detector flags an hour only when
//! the score reaches `z` and the rise is also large in absolute terms and
//! relative to the largest baseline value, since four weeks give only four
//! values per hour of the week.
//!
//! Two detectors need facts the views do not keep and read the `events`
//! table for their candidates only: whether the object ids an endpoint read
//! in an hour were consecutive (`object_enumeration`), and which user agent
//! strings were new (`new_user_agent`). [`Detection`] returns those
//! candidates as [`Lookup`]s; the caller runs them and calls
//! [`Detection::finish`].
//!
//! NOTE: hours of the week are counted in UTC (`h - 168 k`), not in the
//! consumer's time zone as `consumer_baselines` does, so in the week after a
//! daylight-saving change a consumer's day is one hour off its baseline.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use apitrail_storage::sketch::DistinctSketch;
use apitrail_storage::views::partial::MAX_NETWORKS;

use super::options::{Kind, Options};
use super::series::{
    Activity, ConsumerSeries, EndpointHour, EndpointKey, HOURS_PER_WEEK, MICROS_PER_HOUR,
};
use crate::baselines::median_in_place;

/// One flagged hour, before consecutive hours are merged into a finding.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Flag {
    pub hour: usize,
    pub consumer: String,
    pub key: Option<EndpointKey>,
    pub kind: Kind,
    pub score: f64,
    pub observed: f64,
    pub expected: f64,
    pub explanation: String,
}

/// A finding: consecutive flagged hours of one consumer, endpoint and kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub bucket_start: i64,
    pub bucket_end: i64,
    pub consumer: String,
    pub key: Option<EndpointKey>,
    pub kind: Kind,
    pub score: f64,
    pub observed: f64,
    pub expected: f64,
    pub explanation: String,
}

/// A question for the `events` table about one consumer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lookup {
    /// Share of consecutive ids among the distinct object ids of `key` in `hour`.
    Sequential {
        consumer: String,
        key: EndpointKey,
        hour: usize,
    },
    /// The user agent strings of the consumer in the baseline and in each window hour.
    UserAgents { consumer: String },
}

/// The result of a [`Lookup`] from the `events` table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// `None` when fewer than two numeric ids were found.
    Sequential { ratio: Option<f64>, ids: usize },
    /// User agents with calls before the window, and per window hour the calls of each agent.
    UserAgents {
        baseline: BTreeSet<String>,
        window: BTreeMap<usize, BTreeMap<String, i64>>,
    },
}

/// A flag that waits for the result of its lookup.
#[derive(Debug, Clone)]
struct Pending {
    flag: Flag,
    lookup: usize,
}

/// Detection over one [`Activity`]: the flags found from the views and the lookups still open.
pub(crate) struct Detection<'a> {
    activity: &'a Activity,
    options: &'a Options,
    flags: Vec<Flag>,
    pending: Vec<Pending>,
    lookups: Vec<Lookup>,
    /// Hours in which a consumer used a network it had not used before the window.
    new_network_hours: HashSet<(String, usize)>,
}

/// Median, median absolute deviation and largest value of a baseline sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    pub median: f64,
    pub mad: f64,
    pub max: f64,
    pub len: usize,
}

impl Sample {
    pub(crate) fn of(values: &[f64]) -> Option<Sample> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        let median = median_in_place(&mut sorted);
        let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
        let mad = median_in_place(&mut deviations);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Sample {
            median,
            mad,
            max,
            len: values.len(),
        })
    }

    /// Robust z-score of a count: the scale never falls below Poisson noise.
    pub(crate) fn count_score(&self, observed: f64) -> f64 {
        let scale = (1.4826 * self.mad).max(self.median.max(1.0).sqrt());
        (observed - self.median) / scale
    }

    /// Robust z-score of a mean, whose scale never falls below `floor_share` of the median.
    pub(crate) fn mean_score(&self, observed: f64, floor_share: f64) -> f64 {
        let scale = (1.4826 * self.mad)
            .max(self.median.abs() * floor_share)
            .max(f64::MIN_POSITIVE);
        (observed - self.median) / scale
    }
}

/// Calls with one method on one endpoint, and whether the consumer never used the method.
type MethodCalls<'a> = (&'a EndpointKey, i64, bool);

/// Methods that change state.
const WRITE_METHODS: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

/// Endpoint series that span the baseline and the window, indexed densely by hour.
struct Dense {
    calls: Vec<i64>,
    bytes_out: Vec<i64>,
}

impl Dense {
    fn of(hours: usize, series: &BTreeMap<usize, EndpointHour>) -> Dense {
        let mut dense = Dense {
            calls: vec![0; hours],
            bytes_out: vec![0; hours],
        };
        for (&hour, cell) in series {
            if hour < hours {
                dense.calls[hour] = cell.counts.calls;
                dense.bytes_out[hour] = cell.counts.bytes_out;
            }
        }
        dense
    }

    /// Sum over the 24 hours that end with `hour`.
    fn day(values: &[i64], hour: usize) -> i64 {
        Self::sum(values, hour, 24)
    }

    /// Sum over the `hours` hours that end with `hour`.
    fn sum(values: &[i64], hour: usize, hours: usize) -> i64 {
        values[(hour + 1).saturating_sub(hours)..=hour].iter().sum()
    }

    /// Coefficient of variation of the response bytes of one call, estimated
    /// from the hours in `hours`, or `None` without calls or bytes there.
    ///
    /// The views keep only sums of bytes, so the spread of single calls is
    /// recovered from the hourly means. The mean of an hour of `c` calls has
    /// the per-call variance over `c` as its variance. So `c` times the
    /// squared deviation of that mean from the overall mean estimates the
    /// per-call variance, and the estimate is the average over the hours.
    fn bytes_per_call_cv(&self, hours: std::ops::Range<usize>) -> Option<f64> {
        let hours = hours.start.min(self.calls.len())..hours.end.min(self.calls.len());
        let calls: i64 = self.calls[hours.clone()].iter().sum();
        let bytes: i64 = self.bytes_out[hours.clone()].iter().sum();
        if calls == 0 || bytes <= 0 {
            return None;
        }
        let mean = bytes as f64 / calls as f64;
        let (mut sum, mut count) = (0.0, 0usize);
        for hour in hours {
            let calls = self.calls[hour];
            if calls > 0 {
                let deviation = self.bytes_out[hour] as f64 / calls as f64 - mean;
                sum += calls as f64 * deviation * deviation;
                count += 1;
            }
        }
        Some((sum / count as f64).sqrt() / mean)
    }
}

impl<'a> Detection<'a> {
    /// Runs every detector that needs only the views.
    pub(crate) fn run(activity: &'a Activity, options: &'a Options) -> Detection<'a> {
        let mut detection = Detection {
            activity,
            options,
            flags: Vec::new(),
            pending: Vec::new(),
            lookups: Vec::new(),
            new_network_hours: HashSet::new(),
        };
        let known_endpoints = detection.endpoints_known_to_anyone();
        let known_networks = detection.networks_known_to_anyone();
        let history_hours = options.min_history_days as usize * 24;
        for (consumer, series) in &activity.consumers {
            let Some(first) = series.first_hour() else {
                continue;
            };
            if first >= activity.range.split {
                detection.new_consumer(consumer, series, &known_networks);
                continue;
            }
            if first + history_hours > activity.range.split {
                continue;
            }
            let mut scorer = ConsumerScorer {
                detection: &mut detection,
                consumer,
                series,
                first,
            };
            scorer.hourly_counts();
            scorer.networks();
            scorer.user_agents();
            scorer.endpoints(&known_endpoints);
            scorer.objects_and_bytes();
        }
        detection
    }

    /// Returns the lookups the caller must run before [`Self::finish`], in order.
    pub(crate) fn lookups(&self) -> &[Lookup] {
        &self.lookups
    }

    /// Applies the lookup results (one per lookup, in order) and merges flags into findings.
    pub(crate) fn finish(mut self, answers: &[Answer]) -> Vec<Finding> {
        let pending = std::mem::take(&mut self.pending);
        for Pending { mut flag, lookup } in pending {
            let (Some(question), Some(answer)) = (self.lookups.get(lookup), answers.get(lookup))
            else {
                continue;
            };
            match (question, answer) {
                (Lookup::Sequential { .. }, Answer::Sequential { ratio, ids }) => {
                    let Some(ratio) = ratio else { continue };
                    if *ratio < self.options.sequential_min_ratio {
                        continue;
                    }
                    flag.explanation = flag.explanation.replacen(
                        "{sequential}",
                        &format!("{:.0}% of the {ids} numeric ids consecutive", ratio * 100.0),
                        1,
                    );
                    self.flags.push(flag);
                }
                (Lookup::UserAgents { .. }, Answer::UserAgents { baseline, window }) => {
                    if let Some(flag) = self.confirm_user_agent(flag, baseline, window) {
                        self.flags.push(flag);
                    }
                }
                _ => {}
            }
        }
        merge_runs(
            self.flags,
            self.activity.range.start,
            self.options.min_score,
        )
    }

    /// Keeps a new-user-agent flag when a string in its hour is new and not an upgrade.
    ///
    /// A new version of a product the consumer already used (same text
    /// before the first `/`), from networks it already used, is an upgrade
    /// and not reported.
    fn confirm_user_agent(
        &self,
        mut flag: Flag,
        baseline: &BTreeSet<String>,
        window: &BTreeMap<usize, BTreeMap<String, i64>>,
    ) -> Option<Flag> {
        let agents = window.get(&flag.hour)?;
        let products: HashSet<&str> = baseline.iter().map(|agent| product(agent)).collect();
        let new_network = self
            .new_network_hours
            .contains(&(flag.consumer.clone(), flag.hour));
        let new: Vec<(&String, &i64)> = agents
            .iter()
            .filter(|(agent, _)| !baseline.contains(*agent))
            .filter(|(agent, _)| new_network || !products.contains(product(agent)))
            .collect();
        if new.is_empty() {
            return None;
        }
        let calls: i64 = new.iter().map(|(_, calls)| **calls).sum();
        let (top, top_calls) = new.iter().max_by_key(|(_, calls)| **calls)?;
        flag.observed = calls as f64;
        flag.score = if new_network { 10.0 } else { 7.0 };
        let others = match new.len() {
            1 => String::new(),
            n => format!(" and {} other new user agents", n - 1),
        };
        flag.explanation = format!(
            "{} sent {top_calls} calls with the user agent {:?}{others} in the hour from {}, \
             none of which it sent in its baseline{}",
            flag.consumer,
            shorten(top, 80),
            hour_text(self.activity.range.hour_start(flag.hour)),
            if new_network {
                ", in the same hour as calls from a new network"
            } else {
                ""
            },
        );
        Some(flag)
    }

    /// Networks that any consumer called from in the baseline.
    fn networks_known_to_anyone(&self) -> HashSet<String> {
        let split = self.activity.range.split;
        self.activity
            .consumers
            .values()
            .flat_map(|series| series.hours.range(..split))
            .flat_map(|(_, hour)| hour.networks.iter().cloned())
            .collect()
    }

    /// `new_consumer`: a consumer first seen in the window, calling from networks
    /// no consumer used in the baseline.
    ///
    /// Where consumers are client addresses (load balancer logs carry no
    /// credential), a leaked credential or a stuffing run shows up this way.
    /// A new consumer from a known network is a new address of a known
    /// client, and is not reported.
    fn new_consumer(
        &mut self,
        consumer: &str,
        series: &ConsumerSeries,
        known_networks: &HashSet<String>,
    ) {
        if known_networks.is_empty() {
            return;
        }
        for (&hour, cell) in &series.hours {
            if cell.counts.calls < self.options.new_consumer_min_calls
                || cell.networks.is_empty()
                || cell
                    .networks
                    .iter()
                    .any(|network| known_networks.contains(network))
            {
                continue;
            }
            let networks: Vec<&str> = cell.networks.iter().take(3).map(String::as_str).collect();
            let explanation = format!(
                "{consumer}, first seen in the window, made {} calls in the hour from {} from {}, \
                 a network no consumer used in the baseline, {} of them answered 401 or 403",
                cell.counts.calls,
                hour_text(self.activity.range.hour_start(hour)),
                networks.join(", "),
                cell.counts.status_401 + cell.counts.status_403,
            );
            self.flag(Flag {
                hour,
                consumer: consumer.to_string(),
                key: None,
                kind: Kind::NewConsumer,
                score: 8.0,
                observed: cell.counts.calls as f64,
                expected: 0.0,
                explanation,
            });
        }
    }

    /// `(host, endpoint)` pairs that any consumer called in the baseline.
    fn endpoints_known_to_anyone(&self) -> HashSet<(Option<String>, Option<String>)> {
        let split = self.activity.range.split;
        let mut known = HashSet::new();
        for series in self.activity.consumers.values() {
            for (key, hours) in &series.endpoints {
                if hours.keys().next().is_some_and(|&hour| hour < split) {
                    known.insert((key.host.clone(), key.endpoint.clone()));
                }
            }
        }
        known
    }

    fn flag(&mut self, flag: Flag) {
        if self.options.kinds.contains(&flag.kind) {
            self.flags.push(flag);
        }
    }

    fn ask(&mut self, flag: Flag, lookup: Lookup) {
        if !self.options.kinds.contains(&flag.kind) {
            return;
        }
        let index = match self.lookups.iter().position(|known| *known == lookup) {
            Some(index) => index,
            None => {
                self.lookups.push(lookup);
                self.lookups.len() - 1
            }
        };
        self.pending.push(Pending {
            flag,
            lookup: index,
        });
    }
}

/// The detectors of one consumer.
struct ConsumerScorer<'d, 'a> {
    detection: &'d mut Detection<'a>,
    consumer: &'a str,
    series: &'a ConsumerSeries,
    /// The consumer's first hour with calls in the range.
    first: usize,
}

impl ConsumerScorer<'_, '_> {
    fn split(&self) -> usize {
        self.detection.activity.range.split
    }

    fn hours(&self) -> usize {
        self.detection.activity.range.hours
    }

    fn options(&self) -> &Options {
        self.detection.options
    }

    fn hour_start(&self, hour: usize) -> i64 {
        self.detection.activity.range.hour_start(hour)
    }

    /// Baseline hours at the same hour of the week as `hour`, from the consumer's first hour.
    fn same_hour_of_week(&self, hour: usize) -> Vec<usize> {
        let week = HOURS_PER_WEEK as usize;
        (1..)
            .map_while(|k: usize| hour.checked_sub(k * week))
            .skip_while(|&earlier| earlier >= self.split())
            .take_while(|&earlier| earlier >= self.first)
            .collect()
    }

    /// Baseline hours at the same hour of the day as `hour` whose 24 hours lie in the baseline.
    fn same_hour_of_day(&self, hour: usize) -> Vec<usize> {
        (1..)
            .map_while(|k: usize| hour.checked_sub(k * 24))
            .skip_while(|&earlier| earlier >= self.split())
            .take_while(|&earlier| earlier >= self.first + 23)
            .collect()
    }

    fn window(&self) -> std::ops::Range<usize> {
        self.split()..self.hours()
    }

    fn flag(
        &mut self,
        hour: usize,
        key: Option<&EndpointKey>,
        kind: Kind,
        values: Scored,
        explanation: String,
    ) {
        let flag = Flag {
            hour,
            consumer: self.consumer.to_string(),
            key: key.cloned(),
            kind,
            score: values.score,
            observed: values.observed,
            expected: values.expected,
            explanation,
        };
        self.detection.flag(flag);
    }

    /// `volume_spike`, `off_hours`, `auth_failures` and `error_rate` from the consumer's hourly counts.
    fn hourly_counts(&mut self) {
        let series = self.series;
        let counts = |hour: usize| {
            series
                .hours
                .get(&hour)
                .map(|h| h.counts)
                .unwrap_or_default()
        };
        let options = self.options().clone();

        // The busiest hour of the week: the largest median over the hours of the week.
        let mut busiest: f64 = 0.0;
        for offset in 0..HOURS_PER_WEEK as usize {
            let hour = self.split() + offset;
            let values: Vec<f64> = self
                .same_hour_of_week(hour)
                .into_iter()
                .map(|h| counts(h).calls as f64)
                .collect();
            if let Some(sample) = Sample::of(&values) {
                busiest = busiest.max(sample.median);
            }
        }

        // Baseline share of client errors over every baseline hour.
        let (mut baseline_calls, mut baseline_errors) = (0i64, 0i64);
        for (_, hour) in series.hours.range(self.first..self.split()) {
            baseline_calls += hour.counts.calls;
            baseline_errors += hour.counts.client_errors();
        }
        let error_share = if baseline_calls > 0 {
            baseline_errors as f64 / baseline_calls as f64
        } else {
            0.0
        };

        for hour in self.window() {
            let now = counts(hour);
            if now.calls == 0 {
                continue;
            }
            let earlier = self.same_hour_of_week(hour);
            let calls: Vec<f64> = earlier.iter().map(|&h| counts(h).calls as f64).collect();
            let failures: Vec<f64> = earlier
                .iter()
                .map(|&h| counts(h).status_401 as f64)
                .collect();
            let (Some(calls_sample), Some(failure_sample)) =
                (Sample::of(&calls), Sample::of(&failures))
            else {
                continue;
            };
            let when = hour_text(self.hour_start(hour));
            let weeks = calls_sample.len;
            let observed = now.calls as f64;
            let score = calls_sample.count_score(observed);

            if now.calls >= options.spike_min_calls
                && observed >= options.spike_ratio * calls_sample.median.max(1.0)
                && observed >= 2.0 * calls_sample.max
                && score >= options.z
            {
                let explanation = format!(
                    "{} made {} calls in the hour from {when}, against a median of {} and at most {} \
                     in that hour of the week over the previous {weeks} weeks",
                    self.consumer, now.calls, calls_sample.median, calls_sample.max,
                );
                self.flag(
                    hour,
                    None,
                    Kind::VolumeSpike,
                    Scored::new(score, observed, calls_sample.median),
                    explanation,
                );
            }

            let quiet = calls_sample.max <= options.quiet_share * busiest;
            if quiet
                && busiest > 0.0
                && now.calls >= options.off_hours_min_calls
                && observed >= 4.0 * calls_sample.max.max(1.0)
                && score >= options.z
            {
                let explanation = format!(
                    "{} made {} calls ({} of responses) in the hour from {when}, an hour of the week \
                     in which it made at most {} calls in each of the previous {weeks} weeks, \
                     against {} in its busiest hours",
                    self.consumer,
                    now.calls,
                    bytes_text(now.bytes_out),
                    calls_sample.max,
                    busiest,
                );
                self.flag(
                    hour,
                    None,
                    Kind::OffHours,
                    Scored::new(score, observed, calls_sample.median),
                    explanation,
                );
            }

            let failures = now.status_401 as f64;
            let failure_score = failure_sample.count_score(failures);
            if now.status_401 >= options.auth_min_failures
                && failures >= 3.0 * failure_sample.median.max(1.0)
                && failures > failure_sample.max
                && failure_score >= options.z
            {
                let key = self.main_endpoint(hour, |c| c.status_401);
                let explanation = format!(
                    "{} received {} authentication failures (401) in the hour from {when}{}, \
                     against a median of {} and at most {} in the same hour of the previous {weeks} weeks",
                    self.consumer,
                    now.status_401,
                    on_endpoint(key.as_ref()),
                    failure_sample.median,
                    failure_sample.max,
                );
                self.flag(
                    hour,
                    key.as_ref(),
                    Kind::AuthFailures,
                    Scored::new(failure_score, failures, failure_sample.median),
                    explanation,
                );
            }

            let errors = now.client_errors();
            let share = errors as f64 / observed;
            let variance = observed * error_share * (1.0 - error_share) + 1.0;
            let error_score = (errors as f64 - observed * error_share) / variance.sqrt();
            if errors >= options.error_min
                && share >= error_share + options.error_share_rise
                && error_score >= options.z
            {
                let key = self.main_endpoint(hour, |c| c.client_errors());
                let explanation = format!(
                    "{:.0}% of the {} calls of {} in the hour from {when} failed with a client error \
                     ({} with 403, {} with 404){}, against {:.1}% over its baseline",
                    share * 100.0,
                    now.calls,
                    self.consumer,
                    now.status_403,
                    now.status_404,
                    on_endpoint(key.as_ref()),
                    error_share * 100.0,
                );
                self.flag(
                    hour,
                    key.as_ref(),
                    Kind::ErrorRate,
                    Scored::new(error_score, share, error_share),
                    explanation,
                );
            }
        }
    }

    /// Returns the endpoint that carries at least 80 % of a count in `hour`, if one does.
    fn main_endpoint(
        &self,
        hour: usize,
        count: impl Fn(&super::series::Counts) -> i64,
    ) -> Option<EndpointKey> {
        let mut total = 0;
        let mut top: Option<(&EndpointKey, i64)> = None;
        for (key, hours) in &self.series.endpoints {
            let Some(cell) = hours.get(&hour) else {
                continue;
            };
            let value = count(&cell.counts);
            total += value;
            if top.is_none_or(|(_, best)| value > best) {
                top = Some((key, value));
            }
        }
        let (key, value) = top?;
        (total > 0 && value as f64 >= 0.8 * total as f64).then(|| key.clone())
    }

    /// `new_network`: networks the consumer had not used before the window.
    fn networks(&mut self) {
        let split = self.split();
        let baseline: BTreeSet<&String> = self
            .series
            .hours
            .range(..split)
            .flat_map(|(_, hour)| &hour.networks)
            .collect();
        // A views row keeps at most MAX_NETWORKS networks, so a longer list is incomplete.
        if baseline.is_empty() || baseline.len() >= MAX_NETWORKS {
            return;
        }
        for (&hour, cell) in self.series.hours.range(split..) {
            let new: Vec<&String> = cell
                .networks
                .iter()
                .filter(|network| !baseline.contains(network))
                .collect();
            if new.is_empty() {
                continue;
            }
            self.detection
                .new_network_hours
                .insert((self.consumer.to_string(), hour));
            let shown: Vec<&str> = new.iter().take(3).map(|n| n.as_str()).collect();
            let explanation = format!(
                "{} made calls from {} in the hour from {}, {} it had not used in its baseline of \
                 {} networks",
                self.consumer,
                shown.join(", "),
                hour_text(self.hour_start(hour)),
                if new.len() == 1 {
                    "a network"
                } else {
                    "networks"
                },
                baseline.len(),
            );
            self.flag(
                hour,
                None,
                Kind::NewNetwork,
                Scored::new(8.0, new.len() as f64, 0.0),
                explanation,
            );
        }
    }

    /// `new_user_agent` candidates: user agent hashes the consumer had not sent before.
    fn user_agents(&mut self) {
        let split = self.split();
        let mut baseline = DistinctSketch::new();
        for (_, hour) in self.series.hours.range(..split) {
            baseline.merge(&hour.user_agents);
        }
        let DistinctSketch::Sparse(known) = &baseline else {
            // Past 128 user agents the sketch no longer keeps them.
            return;
        };
        if known.is_empty() {
            return;
        }
        let mut candidates = Vec::new();
        for (&hour, cell) in self.series.hours.range(split..) {
            let new = match &cell.user_agents {
                DistinctSketch::Sparse(hashes) => hashes
                    .iter()
                    .filter(|hash| known.binary_search(hash).is_err())
                    .count(),
                DistinctSketch::Dense(_) => 0,
            };
            if new > 0 {
                candidates.push(hour);
            }
        }
        if candidates.is_empty() {
            return;
        }
        let lookup = Lookup::UserAgents {
            consumer: self.consumer.to_string(),
        };
        for hour in candidates {
            let flag = Flag {
                hour,
                consumer: self.consumer.to_string(),
                key: None,
                kind: Kind::NewUserAgent,
                score: 0.0,
                observed: 0.0,
                expected: 0.0,
                explanation: String::new(),
            };
            self.detection.ask(flag, lookup.clone());
        }
    }

    /// `new_endpoint` and `unusual_method`: endpoints and methods new to the consumer.
    fn endpoints(&mut self, known_to_anyone: &HashSet<(Option<String>, Option<String>)>) {
        let split = self.split();
        let options = self.options().clone();
        let used_before = |hours: &BTreeMap<usize, EndpointHour>| {
            hours.keys().next().is_some_and(|&hour| hour < split)
        };
        let mut paths: HashSet<(&Option<String>, &Option<String>)> = HashSet::new();
        let mut methods: HashSet<&str> = HashSet::new();
        for (key, hours) in &self.series.endpoints {
            if used_before(hours) {
                paths.insert((&key.host, &key.endpoint));
                methods.extend(key.method.as_deref());
            }
        }
        if paths.is_empty() {
            return;
        }
        // Per window hour: calls to new paths, and calls per unusual method.
        let mut new_paths: BTreeMap<usize, Vec<(&EndpointKey, &EndpointHour, bool)>> =
            BTreeMap::new();
        let mut unusual: BTreeMap<(usize, &str), Vec<MethodCalls<'_>>> = BTreeMap::new();
        for (key, hours) in &self.series.endpoints {
            if key.endpoint.is_none() || used_before(hours) {
                continue;
            }
            let path_is_new = !paths.contains(&(&key.host, &key.endpoint));
            let unknown = !known_to_anyone.contains(&(key.host.clone(), key.endpoint.clone()));
            for (&hour, cell) in hours.range(split..) {
                if path_is_new {
                    new_paths
                        .entry(hour)
                        .or_default()
                        .push((key, cell, unknown));
                }
                let Some(method) = key.method.as_deref() else {
                    continue;
                };
                let method_is_new = !methods.contains(method);
                let write_on_known_path = !path_is_new && WRITE_METHODS.contains(&method);
                if method_is_new || write_on_known_path {
                    unusual.entry((hour, method)).or_default().push((
                        key,
                        cell.counts.calls,
                        method_is_new,
                    ));
                }
            }
        }
        for (hour, endpoints) in new_paths {
            let calls: i64 = endpoints.iter().map(|(_, cell, _)| cell.counts.calls).sum();
            let distinct: BTreeSet<(&Option<String>, &Option<String>)> = endpoints
                .iter()
                .map(|(key, _, _)| (&key.host, &key.endpoint))
                .collect();
            let unknown: BTreeSet<(&Option<String>, &Option<String>)> = endpoints
                .iter()
                .filter(|(_, _, unknown)| *unknown)
                .map(|(key, _, _)| (&key.host, &key.endpoint))
                .collect();
            let unknown = unknown.len();
            if calls < options.endpoint_min_calls
                || (unknown == 0 && distinct.len() < 3 && calls < 20)
            {
                continue;
            }
            let not_found: i64 = endpoints
                .iter()
                .map(|(_, cell, _)| cell.counts.status_404)
                .sum();
            let mut shown: Vec<&(&EndpointKey, &EndpointHour, bool)> = endpoints.iter().collect();
            shown.sort_by_key(|(_, cell, _)| std::cmp::Reverse(cell.counts.calls));
            let names: Vec<String> = shown
                .iter()
                .take(3)
                .map(|(key, _, _)| endpoint_text(key))
                .collect();
            let key = (endpoints.len() == 1).then(|| endpoints[0].0);
            let explanation = format!(
                "{} made {calls} calls to {} endpoints it had never called before ({}{}) in the hour \
                 from {}, {} of them unknown to every consumer, {:.0}% answered 404",
                self.consumer,
                distinct.len(),
                names.join(", "),
                if distinct.len() > 3 { ", ..." } else { "" },
                hour_text(self.hour_start(hour)),
                unknown,
                not_found as f64 * 100.0 / calls.max(1) as f64,
            );
            let score = if unknown > 0 { 9.0 } else { 6.0 };
            self.flag(
                hour,
                key,
                Kind::NewEndpoint,
                Scored::new(score, calls as f64, 0.0),
                explanation,
            );
        }
        for ((hour, method), endpoints) in unusual {
            let calls: i64 = endpoints.iter().map(|(_, calls, _)| calls).sum();
            if calls < options.method_min_calls {
                continue;
            }
            let method_is_new = endpoints.iter().any(|(_, _, new)| *new);
            let key = (endpoints.len() == 1).then(|| endpoints[0].0);
            let explanation = if method_is_new {
                format!(
                    "{} made {calls} {method} calls{} in the hour from {}, a method it never used in its baseline",
                    self.consumer,
                    on_endpoint(key),
                    hour_text(self.hour_start(hour)),
                )
            } else {
                format!(
                    "{} made {calls} {method} calls{} in the hour from {}, on endpoints it had only read before",
                    self.consumer,
                    on_endpoint(key),
                    hour_text(self.hour_start(hour)),
                )
            };
            let score = if method_is_new { 9.0 } else { 7.0 };
            self.flag(
                hour,
                key,
                Kind::UnusualMethod,
                Scored::new(score, calls as f64, 0.0),
                explanation,
            );
        }
    }

    /// `object_enumeration` candidates, `data_harvesting` and `bytes_out`, per endpoint.
    fn objects_and_bytes(&mut self) {
        let options = self.options().clone();
        let hours = self.hours();
        let mut consumer_calls = vec![0; hours];
        for (&hour, cell) in &self.series.hours {
            if hour < hours {
                consumer_calls[hour] = cell.counts.calls;
            }
        }
        for (key, series) in &self.series.endpoints {
            let dense = Dense::of(hours, series);
            let objects = |hour: usize| {
                series
                    .get(&hour)
                    .map_or(0, |cell| cell.object_ids.estimate())
            };
            let mut unions: HashMap<usize, u64> = HashMap::new();
            let mut day_objects = |hour: usize| -> u64 {
                *unions.entry(hour).or_insert_with(|| {
                    let mut union = DistinctSketch::new();
                    for (_, cell) in series.range(hour.saturating_sub(23)..=hour) {
                        union.merge(&cell.object_ids);
                    }
                    union.estimate()
                })
            };
            let reads = matches!(key.method.as_deref(), Some("GET" | "HEAD"));
            // How much the bytes of single calls vary before the window: a mean of
            // calls whose sizes vary widely needs a larger rise to mean anything.
            let bytes_cv = dense.bytes_per_call_cv(self.first..self.split());
            let mut bytes_run = 0;
            for hour in self.window() {
                if dense.calls[hour] == 0 && Dense::day(&dense.calls, hour) == 0 {
                    bytes_run = 0;
                    continue;
                }
                let when = hour_text(self.hour_start(hour));

                // object_enumeration: far more distinct objects in one hour than ever in that hour.
                // A sketch estimate above 128 values can exceed the calls that read them.
                let now = (objects(hour) as f64).min(dense.calls[hour] as f64);
                if now >= options.enumeration_min_objects as f64 {
                    let earlier: Vec<f64> = self
                        .same_hour_of_week(hour)
                        .into_iter()
                        .map(|h| objects(h) as f64)
                        .collect();
                    if let Some(sample) = Sample::of(&earlier)
                        && now >= 3.0 * sample.max.max(1.0)
                    {
                        let cell = &series[&hour];
                        let explanation = format!(
                            "{} read about {now} distinct objects through {} in the hour from {when}, \
                             {{sequential}}, against at most {} in the same hour of the previous {} weeks; \
                             {} answers were 403 and {} were 404",
                            self.consumer,
                            endpoint_text(key),
                            sample.max,
                            sample.len,
                            cell.counts.status_403,
                            cell.counts.status_404,
                        );
                        let flag = Flag {
                            hour,
                            consumer: self.consumer.to_string(),
                            key: Some(key.clone()),
                            kind: Kind::ObjectEnumeration,
                            score: sample.count_score(now),
                            observed: now,
                            expected: sample.median,
                            explanation,
                        };
                        let lookup = Lookup::Sequential {
                            consumer: self.consumer.to_string(),
                            key: key.clone(),
                            hour,
                        };
                        self.detection.ask(flag, lookup);
                    }
                }

                // data_harvesting: the distinct objects of an endpoint over 24 hours,
                // against the same 24 hours of earlier weeks, by two rules (either flags):
                // - count: more objects than any earlier week, by `harvest_ratio` times the
                //   median and by the consumer's own growth, since a partner that grows
                //   reads more of everything;
                // - share: objects per call of the whole consumer above 1.5 times its
                //   largest earlier share, which also finds reads hidden in a quiet week.
                let calls_day = Dense::day(&dense.calls, hour) as f64;
                let consumer_day = Dense::day(&consumer_calls, hour) as f64;
                let earlier_weeks: Vec<usize> = self
                    .same_hour_of_week(hour)
                    .into_iter()
                    .filter(|&h| h >= self.first + 23 && Dense::day(&consumer_calls, h) > 0)
                    .collect();
                if reads
                    && earlier_weeks.len() >= 2
                    && consumer_day > 0.0
                    && calls_day >= options.harvest_min_objects as f64
                {
                    let now = (day_objects(hour) as f64).min(calls_day);
                    let counts: Vec<f64> = earlier_weeks
                        .iter()
                        .map(|&h| day_objects(h) as f64)
                        .collect();
                    let shares: Vec<f64> = earlier_weeks
                        .iter()
                        .zip(&counts)
                        .map(|(&h, &objects)| objects / Dense::day(&consumer_calls, h) as f64)
                        .collect();
                    let consumers: Vec<f64> = earlier_weeks
                        .iter()
                        .map(|&h| Dense::day(&consumer_calls, h) as f64)
                        .collect();
                    if let (Some(count), Some(share), Some(volume)) = (
                        Sample::of(&counts),
                        Sample::of(&shares),
                        Sample::of(&consumers),
                    ) {
                        let growth = (consumer_day / volume.median.max(1.0)).max(1.0);
                        let count_score = count.count_score(now);
                        let by_count = now
                            >= options.harvest_ratio * growth * count.median.max(1.0)
                            && now - count.median >= options.harvest_min_objects as f64
                            && now > count.max
                            && count_score >= options.z;
                        let expected = share.median * consumer_day;
                        // Scored in objects; the scale is at least Poisson noise of the expected count.
                        let share_scale = (1.4826 * share.mad * consumer_day)
                            .max(0.05 * expected)
                            .max(expected.max(1.0).sqrt());
                        let share_score = (now - expected) / share_scale;
                        let now_share = now / consumer_day;
                        let by_share = now >= options.harvest_ratio * expected.max(1.0)
                            && now - expected >= options.harvest_min_objects as f64
                            && now_share > 1.5 * share.max
                            && share_score >= options.harvest_z;
                        if by_count || by_share {
                            let explanation = format!(
                                "{} read about {now} distinct objects through {} in the 24 hours to {}, \
                                 against a median of {} and at most {} in the same 24 hours of the \
                                 previous {} weeks, {:.2} per call of all its calls against at most {:.2} \
                                 before, while its calls overall changed by a factor of {:.1}",
                                self.consumer,
                                endpoint_text(key),
                                hour_text(self.hour_start(hour + 1)),
                                count.median,
                                count.max,
                                count.len,
                                now_share,
                                share.max,
                                consumer_day / volume.median.max(1.0),
                            );
                            let (score, expected) =
                                if by_share && (!by_count || share_score > count_score) {
                                    (share_score, expected)
                                } else {
                                    (count_score, count.median)
                                };
                            self.flag(
                                hour,
                                Some(key),
                                Kind::DataHarvesting,
                                Scored::new(score, now, expected),
                                explanation,
                            );
                        }
                    }
                }
                let earlier_days = self.same_hour_of_day(hour);
                if earlier_days.len() < 14 {
                    bytes_run = 0;
                    continue;
                }

                // bytes_out: response bytes per call over the last 24 hours, or the last
                // 6 (which shows a steady rise sooner), above every baseline day's same hours.
                let mut best: Option<BytesRise> = None;
                for window in [24, 6] {
                    let calls = Dense::sum(&dense.calls, hour, window) as f64;
                    if calls < options.bytes_min_calls as f64 {
                        continue;
                    }
                    let per_call = Dense::sum(&dense.bytes_out, hour, window) as f64 / calls;
                    let earlier: Vec<f64> = earlier_days
                        .iter()
                        .filter_map(|&h| {
                            let calls = Dense::sum(&dense.calls, h, window);
                            (calls * 2 >= options.bytes_min_calls).then(|| {
                                Dense::sum(&dense.bytes_out, h, window) as f64 / calls as f64
                            })
                        })
                        .collect();
                    let Some(sample) = Sample::of(&earlier).filter(|_| earlier.len() >= 14) else {
                        continue;
                    };
                    let score = sample.mean_score(per_call, 0.02);
                    // The mean of `calls` calls varies by cv / sqrt(calls) of itself, so
                    // the bar rises by `bytes_noise_z` of those.
                    let noise = bytes_cv.unwrap_or(1.0) / calls.sqrt();
                    let ratio = options.bytes_ratio + options.bytes_noise_z * noise;
                    let above = per_call >= ratio * sample.median
                        && per_call > sample.max
                        && score >= options.z;
                    if above && best.as_ref().is_none_or(|b| score > b.score) {
                        best = Some(BytesRise {
                            window,
                            calls,
                            per_call,
                            sample,
                            score,
                        });
                    }
                }
                bytes_run = if best.is_some() { bytes_run + 1 } else { 0 };
                // A few large responses can lift a mean for some hours, so only a
                // rise that lasts `bytes_min_hours` is flagged.
                if let Some(rise) = best
                    && bytes_run >= options.bytes_min_hours
                {
                    let explanation = format!(
                        "{} received {} per call from {} over the {} hours to {} ({} calls), \
                         {:.2} times its median of {} per call in the same hours of the previous {} days",
                        self.consumer,
                        bytes_text(rise.per_call as i64),
                        endpoint_text(key),
                        rise.window,
                        hour_text(self.hour_start(hour + 1)),
                        rise.calls,
                        rise.per_call / rise.sample.median.max(1.0),
                        bytes_text(rise.sample.median as i64),
                        rise.sample.len,
                    );
                    self.flag(
                        hour,
                        Some(key),
                        Kind::BytesOut,
                        Scored::new(rise.score, rise.per_call, rise.sample.median),
                        explanation,
                    );
                }
            }
        }
    }
}

/// A rise of response bytes per call over one trailing window.
struct BytesRise {
    window: usize,
    calls: f64,
    per_call: f64,
    sample: Sample,
    score: f64,
}

/// Score, observed and expected value of a flag.
struct Scored {
    score: f64,
    observed: f64,
    expected: f64,
}

impl Scored {
    fn new(score: f64, observed: f64, expected: f64) -> Self {
        Scored {
            score,
            observed,
            expected,
        }
    }
}

/// Merges consecutive flagged hours of one consumer, endpoint and kind into findings.
///
/// A finding takes its score, values and explanation from its highest-scoring hour.
fn merge_runs(mut flags: Vec<Flag>, range_start: i64, min_score: f64) -> Vec<Finding> {
    flags.sort_by(|a, b| {
        (&a.consumer, a.kind, &a.key, a.hour).cmp(&(&b.consumer, b.kind, &b.key, b.hour))
    });
    let mut runs: Vec<(usize, usize, Flag)> = Vec::new();
    for flag in flags {
        if let Some((_, last, best)) = runs.last_mut()
            && best.consumer == flag.consumer
            && best.kind == flag.kind
            && best.key == flag.key
            && *last + 1 >= flag.hour
        {
            *last = flag.hour;
            if flag.score > best.score {
                *best = flag;
            }
            continue;
        }
        runs.push((flag.hour, flag.hour, flag));
    }
    let mut findings: Vec<Finding> = runs
        .into_iter()
        .filter(|(_, _, best)| best.score >= min_score)
        .map(|(first, last, best)| {
            let explanation = match last - first {
                0 => format!("{}.", best.explanation),
                more => format!(
                    "{}; the highest of {} consecutive hours flagged.",
                    best.explanation,
                    more + 1
                ),
            };
            Finding {
                bucket_start: range_start + first as i64 * MICROS_PER_HOUR,
                bucket_end: range_start + (last as i64 + 1) * MICROS_PER_HOUR,
                consumer: best.consumer,
                key: best.key,
                kind: best.kind,
                score: best.score,
                observed: best.observed,
                expected: best.expected,
                explanation,
            }
        })
        .collect();
    findings.sort_by(|a, b| {
        (a.bucket_start, &a.consumer, a.kind).cmp(&(b.bucket_start, &b.consumer, b.kind))
    });
    findings
}

/// Text of a user agent before its first `/`, the product without its version.
fn product(agent: &str) -> &str {
    agent.split('/').next().unwrap_or(agent).trim()
}

fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

pub(crate) fn hour_text(micros: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(time) => time.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => format!("{micros} µs"),
    }
}

pub(crate) fn bytes_text(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes.abs() < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = "bytes";
    for next in UNITS {
        if value.abs() < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

pub(crate) fn endpoint_text(key: &EndpointKey) -> String {
    format!(
        "{} {}",
        key.method.as_deref().unwrap_or("-"),
        key.endpoint.as_deref().unwrap_or("-")
    )
}

fn on_endpoint(key: Option<&EndpointKey>) -> String {
    match key {
        Some(key) => format!(" on {}", endpoint_text(key)),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(hour: usize, kind: Kind, score: f64) -> Flag {
        Flag {
            hour,
            consumer: "c".to_string(),
            key: None,
            kind,
            score,
            observed: score,
            expected: 0.0,
            explanation: format!("hour {hour}"),
        }
    }

    #[test]
    fn consecutive_hours_merge_and_gaps_split() {
        let flags = vec![
            flag(5, Kind::VolumeSpike, 7.0),
            flag(3, Kind::VolumeSpike, 6.0),
            flag(4, Kind::VolumeSpike, 9.0),
            flag(8, Kind::VolumeSpike, 6.5),
            flag(4, Kind::NewNetwork, 8.0),
        ];
        let findings = merge_runs(flags, 0, 0.0);
        let runs: Vec<(i64, i64, Kind, f64)> = findings
            .iter()
            .map(|f| {
                (
                    f.bucket_start / MICROS_PER_HOUR,
                    f.bucket_end / MICROS_PER_HOUR,
                    f.kind,
                    f.score,
                )
            })
            .collect();
        assert_eq!(
            runs,
            vec![
                (3, 6, Kind::VolumeSpike, 9.0),
                (4, 5, Kind::NewNetwork, 8.0),
                (8, 9, Kind::VolumeSpike, 6.5),
            ]
        );
        assert_eq!(
            findings[0].explanation,
            "hour 4; the highest of 3 consecutive hours flagged."
        );
        assert_eq!(findings[1].explanation, "hour 4.");
    }

    fn hour_with(calls: i64, network: &str) -> super::super::series::ConsumerHour {
        let mut hour = super::super::series::ConsumerHour::default();
        hour.counts.calls = calls;
        hour.networks.insert(network.to_string());
        hour
    }

    #[test]
    fn new_consumer_needs_an_unknown_network() {
        let range =
            super::super::series::Range::new(400 * MICROS_PER_HOUR, 424 * MICROS_PER_HOUR, 400)
                .expect("a range");
        let mut activity = Activity {
            range,
            consumers: std::collections::BTreeMap::new(),
        };
        let mut known = ConsumerSeries::default();
        for hour in 0..400 {
            known.hours.insert(hour, hour_with(5, "198.18.1.0/24"));
        }
        activity.consumers.insert("known".into(), known);
        for (name, calls, network) in [
            ("stranger", 20, "203.0.113.0/24"),
            ("neighbour", 20, "198.18.1.0/24"),
            ("quiet", 5, "203.0.113.0/24"),
        ] {
            let mut series = ConsumerSeries::default();
            series.hours.insert(405, hour_with(calls, network));
            activity.consumers.insert(name.into(), series);
        }
        let options = Options::default();
        let findings = Detection::run(&activity, &options).finish(&[]);
        let new: Vec<&str> = findings
            .iter()
            .filter(|f| f.kind == Kind::NewConsumer)
            .map(|f| f.consumer.as_str())
            .collect();
        assert_eq!(new, vec!["stranger"], "{findings:#?}");
        assert_eq!(findings[0].bucket_start, 405 * MICROS_PER_HOUR);
    }

    #[test]
    fn min_score_drops_weak_runs() {
        let findings = merge_runs(vec![flag(1, Kind::OffHours, 5.0)], 0, 6.0);
        assert!(findings.is_empty());
    }

    #[test]
    fn bytes_cv_from_hourly_means() {
        // Two hours of 4 calls with means of 1,000 and 3,000 bytes: the overall mean is
        // 2,000, and 4 x 1,000^2 per hour gives a per-call deviation of 2,000.
        let dense = Dense {
            calls: vec![0, 4, 4, 0, 50],
            bytes_out: vec![0, 4_000, 12_000, 0, 5_000_000],
        };
        let cv = dense.bytes_per_call_cv(0..4).expect("hours with bytes");
        assert!((cv - 1.0).abs() < 1e-9, "cv {cv}, expected 1.0");
        let steady = Dense {
            calls: vec![10, 20],
            bytes_out: vec![10_000, 20_000],
        };
        assert_eq!(steady.bytes_per_call_cv(0..2), Some(0.0));
        assert_eq!(
            dense.bytes_per_call_cv(0..1),
            None,
            "an hour without calls says nothing"
        );
        assert_eq!(
            dense.bytes_per_call_cv(3..9).map(|cv| cv == 0.0),
            Some(true)
        );
    }

    #[test]
    fn sample_statistics_and_scores() {
        let sample = Sample::of(&[10.0, 12.0, 8.0, 30.0]).expect("a sample");
        assert_eq!(sample.median, 11.0);
        assert_eq!(sample.mad, 2.0);
        assert_eq!(sample.max, 30.0);
        // 1.4826 * MAD = 2.97 is below sqrt(11) = 3.32, so the Poisson floor is the scale.
        let expected = (44.0 - 11.0) / 11f64.sqrt();
        assert!((sample.count_score(44.0) - expected).abs() < 1e-9);
        assert!(Sample::of(&[]).is_none());
        // Identical values: the scale falls back to Poisson noise, not zero.
        let flat = Sample::of(&[4.0; 4]).expect("a sample");
        assert_eq!(flat.count_score(10.0), 3.0);
        assert!((flat.mean_score(4.4, 0.02) - 5.0).abs() < 1e-9);
    }

    #[test]
    fn upgrades_keep_their_product() {
        assert_eq!(product("acme-sdk/2.4.0 (linux)"), "acme-sdk");
        assert_eq!(product("curl"), "curl");
        assert_eq!(shorten("abcdef", 3), "abc...");
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(bytes_text(999), "999 bytes");
        assert_eq!(bytes_text(61_500_000), "61.5 MB");
    }
}
