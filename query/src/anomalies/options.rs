//! The finding kinds and the options string of `anomalies()`.

use std::collections::BTreeSet;
use std::fmt;

use datafusion::common::{Result, plan_err};

/// The kind of a finding. The names are the values of the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    VolumeSpike,
    OffHours,
    NewNetwork,
    NewUserAgent,
    NewEndpoint,
    UnusualMethod,
    AuthFailures,
    ErrorRate,
    ObjectEnumeration,
    DataHarvesting,
    BytesOut,
    NewConsumer,
}

impl Kind {
    pub(crate) const ALL: [Kind; 12] = [
        Kind::VolumeSpike,
        Kind::OffHours,
        Kind::NewNetwork,
        Kind::NewUserAgent,
        Kind::NewEndpoint,
        Kind::UnusualMethod,
        Kind::AuthFailures,
        Kind::ErrorRate,
        Kind::ObjectEnumeration,
        Kind::DataHarvesting,
        Kind::BytesOut,
        Kind::NewConsumer,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::VolumeSpike => "volume_spike",
            Kind::OffHours => "off_hours",
            Kind::NewNetwork => "new_network",
            Kind::NewUserAgent => "new_user_agent",
            Kind::NewEndpoint => "new_endpoint",
            Kind::UnusualMethod => "unusual_method",
            Kind::AuthFailures => "auth_failures",
            Kind::ErrorRate => "error_rate",
            Kind::ObjectEnumeration => "object_enumeration",
            Kind::DataHarvesting => "data_harvesting",
            Kind::BytesOut => "bytes_out",
            Kind::NewConsumer => "new_consumer",
        }
    }

    fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Thresholds and windows of the detectors; every field can be set in the options string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    /// Weeks before the analysis window that form the baseline.
    pub baseline_weeks: u32,
    /// Days of history a consumer needs before the window to be scored at all.
    pub min_history_days: u32,
    /// Kinds to report.
    pub kinds: BTreeSet<Kind>,
    /// Runs whose highest score is below this are left out.
    pub min_score: f64,
    /// Robust z-score a count must reach above its baseline.
    pub z: f64,
    /// `volume_spike`: calls at least this many times the baseline median...
    pub spike_ratio: f64,
    /// ...and at least this many calls in the hour.
    pub spike_min_calls: i64,
    /// `off_hours`: an hour is quiet when no earlier week had more calls in it than this
    /// share of the consumer's busiest hour of the week...
    pub quiet_share: f64,
    /// ...and a quiet hour is flagged from this many calls.
    pub off_hours_min_calls: i64,
    /// `auth_failures`: fewest 401 responses in an hour.
    pub auth_min_failures: i64,
    /// `error_rate`: fewest client errors in an hour...
    pub error_min: i64,
    /// ...and the rise of their share over the baseline share, as a fraction.
    pub error_share_rise: f64,
    /// `object_enumeration`: fewest distinct objects of one endpoint in an hour...
    pub enumeration_min_objects: i64,
    /// ...and the share of consecutive ids among them.
    pub sequential_min_ratio: f64,
    /// `data_harvesting`: distinct objects of 24 hours at least this many times the baseline median...
    pub harvest_ratio: f64,
    /// ...and at least this many more...
    pub harvest_min_objects: i64,
    /// ...with this robust z-score, lower than `z` because the ratio, the
    /// margin and the largest baseline week already guard it.
    pub harvest_z: f64,
    /// `bytes_out`: response bytes per call over 24 or 6 hours at least this many times the baseline...
    pub bytes_ratio: f64,
    /// ...plus this many times the relative spread of a mean of that many calls,
    /// from the spread of single calls' bytes in the baseline...
    pub bytes_noise_z: f64,
    /// ...over at least this many calls...
    pub bytes_min_calls: i64,
    /// ...in this many consecutive hours before the first is flagged.
    pub bytes_min_hours: usize,
    /// `unusual_method`: fewest calls with the method in an hour.
    pub method_min_calls: i64,
    /// `new_endpoint`: fewest calls to endpoints new to the consumer in an hour.
    pub endpoint_min_calls: i64,
    /// `new_consumer`: fewest calls in an hour of a consumer first seen in the window.
    pub new_consumer_min_calls: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            baseline_weeks: 4,
            min_history_days: 7,
            kinds: Kind::ALL.into_iter().collect(),
            min_score: 0.0,
            z: 6.0,
            spike_ratio: 3.0,
            spike_min_calls: 50,
            quiet_share: 0.05,
            off_hours_min_calls: 10,
            auth_min_failures: 20,
            error_min: 20,
            error_share_rise: 0.2,
            enumeration_min_objects: 100,
            sequential_min_ratio: 0.5,
            harvest_ratio: 1.5,
            harvest_min_objects: 30,
            harvest_z: 3.0,
            bytes_ratio: 1.15,
            bytes_noise_z: 3.0,
            bytes_min_calls: 20,
            bytes_min_hours: 6,
            method_min_calls: 10,
            endpoint_min_calls: 5,
            new_consumer_min_calls: 10,
        }
    }
}

impl Options {
    /// Parses `name=value` pairs separated by commas, over the defaults.
    ///
    /// `kinds` takes kind names separated by `|`. Unknown names, malformed
    /// numbers and values out of range are errors that name the option.
    pub(crate) fn parse(text: &str) -> Result<Options> {
        let mut options = Options::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, value)) = pair.split_once('=') else {
                return plan_err!(
                    "anomalies: option {pair:?} is not name=value; options are \
                     comma-separated, such as 'z=5, spike_ratio=4'"
                );
            };
            options.set(name.trim(), value.trim())?;
        }
        Ok(options)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<()> {
        match name {
            "baseline_weeks" => self.baseline_weeks = whole(name, value, 1, 52)? as u32,
            "min_history_days" => self.min_history_days = whole(name, value, 0, 364)? as u32,
            "kinds" => {
                let mut kinds = BTreeSet::new();
                for kind in value.split('|').map(str::trim) {
                    match Kind::parse(kind) {
                        Some(kind) => {
                            kinds.insert(kind);
                        }
                        None => {
                            let known: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                            return plan_err!(
                                "anomalies: unknown kind {kind:?} in kinds; known kinds: {}",
                                known.join(", ")
                            );
                        }
                    }
                }
                self.kinds = kinds;
            }
            "min_score" => self.min_score = number(name, value, 0.0)?,
            "z" => self.z = number(name, value, 0.0)?,
            "spike_ratio" => self.spike_ratio = number(name, value, 1.0)?,
            "spike_min_calls" => self.spike_min_calls = whole(name, value, 1, i64::MAX)?,
            "quiet_share" => self.quiet_share = fraction(name, value)?,
            "off_hours_min_calls" => self.off_hours_min_calls = whole(name, value, 1, i64::MAX)?,
            "auth_min_failures" => self.auth_min_failures = whole(name, value, 1, i64::MAX)?,
            "error_min" => self.error_min = whole(name, value, 1, i64::MAX)?,
            "error_share_rise" => self.error_share_rise = fraction(name, value)?,
            "enumeration_min_objects" => {
                self.enumeration_min_objects = whole(name, value, 2, i64::MAX)?
            }
            "sequential_min_ratio" => self.sequential_min_ratio = fraction(name, value)?,
            "harvest_ratio" => self.harvest_ratio = number(name, value, 1.0)?,
            "harvest_min_objects" => self.harvest_min_objects = whole(name, value, 1, i64::MAX)?,
            "harvest_z" => self.harvest_z = number(name, value, 0.0)?,
            "bytes_ratio" => self.bytes_ratio = number(name, value, 1.0)?,
            "bytes_noise_z" => self.bytes_noise_z = number(name, value, 0.0)?,
            "bytes_min_calls" => self.bytes_min_calls = whole(name, value, 1, i64::MAX)?,
            "bytes_min_hours" => self.bytes_min_hours = whole(name, value, 1, 168)? as usize,
            "method_min_calls" => self.method_min_calls = whole(name, value, 1, i64::MAX)?,
            "new_consumer_min_calls" => {
                self.new_consumer_min_calls = whole(name, value, 1, i64::MAX)?
            }
            "endpoint_min_calls" => self.endpoint_min_calls = whole(name, value, 1, i64::MAX)?,
            _ => {
                return plan_err!(
                    "anomalies: unknown option {name:?}; docs/functions.md lists the options"
                );
            }
        }
        Ok(())
    }
}

fn whole(name: &str, value: &str, min: i64, max: i64) -> Result<i64> {
    match value.parse::<i64>() {
        Ok(parsed) if (min..=max).contains(&parsed) => Ok(parsed),
        Ok(parsed) => plan_err!("anomalies: {name} must be from {min} to {max}, got {parsed}"),
        Err(_) => plan_err!("anomalies: {name} must be a whole number, got {value:?}"),
    }
}

fn number(name: &str, value: &str, min: f64) -> Result<f64> {
    match value.parse::<f64>() {
        Ok(parsed) if parsed.is_finite() && parsed >= min => Ok(parsed),
        Ok(parsed) => {
            plan_err!("anomalies: {name} must be a finite number of at least {min}, got {parsed}")
        }
        Err(_) => plan_err!("anomalies: {name} must be a number, got {value:?}"),
    }
}

fn fraction(name: &str, value: &str) -> Result<f64> {
    let parsed = number(name, value, 0.0)?;
    if parsed > 1.0 {
        return plan_err!("anomalies: {name} must be from 0 to 1, got {parsed}");
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_gives_the_defaults() {
        assert_eq!(Options::parse("").expect("parse"), Options::default());
        assert_eq!(Options::parse(" , ").expect("parse"), Options::default());
    }

    #[test]
    fn pairs_override_defaults() {
        let options = Options::parse("z=4.5, spike_ratio = 2, kinds=volume_spike|new_network")
            .expect("parse");
        assert_eq!(options.z, 4.5);
        assert_eq!(options.spike_ratio, 2.0);
        assert_eq!(
            options.kinds,
            BTreeSet::from([Kind::VolumeSpike, Kind::NewNetwork])
        );
    }

    #[test]
    fn errors_name_the_option() {
        for (text, expected) in [
            ("z", "not name=value"),
            ("zz=1", "unknown option \"zz\""),
            ("z=abc", "z must be a number"),
            ("quiet_share=2", "quiet_share must be from 0 to 1"),
            ("baseline_weeks=0", "baseline_weeks must be from 1 to 52"),
            ("kinds=volume", "unknown kind \"volume\""),
            (
                "spike_ratio=NaN",
                "spike_ratio must be a finite number of at least 1",
            ),
            (
                "bytes_noise_z=inf",
                "bytes_noise_z must be a finite number of at least 0, got inf",
            ),
        ] {
            let error = Options::parse(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
