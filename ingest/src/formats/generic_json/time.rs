//! Time formats and units of the generic `json` format's mapping.
//!
//! A `time` entry has a format: `rfc3339`, `clf`, an epoch unit (`epoch_s`,
//! `epoch_ms`, `epoch_us`, `epoch_ns`) or a chrono strftime pattern, and an
//! optional time zone for timestamps written without a UTC offset. A
//! `duration_ms` entry has a unit (`s`, `ms`, `us`, `ns`).
//!
//! # Plausible epoch range
//!
//! An epoch number does not say its unit, and a wrong unit still gives a
//! valid date: seconds read as milliseconds land in January 1970, and
//! milliseconds read as seconds land around the year 55,000. So an epoch
//! time must fall in [`PLAUSIBLE_START`] (2000-01-01) to [`PLAUSIBLE_END`]
//! (2100-01-01, exclusive). Outside that range the record is rejected, with
//! the unit that would have put the value inside it when there is one.
//! Each unit's range is less than a factor of 1000 wide, so at most one unit
//! fits. Times that are plausible but later than the present are the
//! driver's future tolerance to catch (see [`crate::parse::FutureTolerance`]).

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::formats::json::Json;
use crate::text::{format_time_micros, parse_clf_time, parse_iso8601, quote_excerpt};

/// Start of the plausible range of epoch times: 2000-01-01T00:00:00Z, in microseconds.
pub const PLAUSIBLE_START: i64 = 946_684_800_000_000;

/// End of the plausible range of epoch times (exclusive): 2100-01-01T00:00:00Z, in microseconds.
pub const PLAUSIBLE_END: i64 = 4_102_444_800_000_000;

/// Maximum number of significant digits kept from an epoch number; later digits are truncated.
const MAX_SIGNIFICANT_DIGITS: usize = 30;

/// Maximum absolute decimal exponent accepted in an epoch number such as `1.7e9`.
const MAX_EXPONENT: i32 = 40;

/// A unit of an epoch time or a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl Unit {
    const ALL: [Unit; 4] = [Unit::Seconds, Unit::Millis, Unit::Micros, Unit::Nanos];

    /// Parses a `duration_ms` unit as written in a mapping.
    pub(crate) fn from_duration_name(name: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|unit| unit.suffix() == name)
    }

    /// Returns the unit's short name: `s`, `ms`, `us` or `ns`.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Millis => "ms",
            Unit::Micros => "us",
            Unit::Nanos => "ns",
        }
    }

    fn epoch_format_name(self) -> &'static str {
        match self {
            Unit::Seconds => "epoch_s",
            Unit::Millis => "epoch_ms",
            Unit::Micros => "epoch_us",
            Unit::Nanos => "epoch_ns",
        }
    }

    fn plural_name(self) -> &'static str {
        match self {
            Unit::Seconds => "seconds",
            Unit::Millis => "milliseconds",
            Unit::Micros => "microseconds",
            Unit::Nanos => "nanoseconds",
        }
    }

    /// Power of ten that turns a value in this unit into microseconds.
    fn micros_exponent(self) -> i32 {
        match self {
            Unit::Seconds => 6,
            Unit::Millis => 3,
            Unit::Micros => 0,
            Unit::Nanos => -3,
        }
    }

    /// Milliseconds in one of this unit.
    fn millis(self) -> f64 {
        match self {
            Unit::Seconds => 1e3,
            Unit::Millis => 1.0,
            Unit::Micros => 1e-3,
            Unit::Nanos => 1e-6,
        }
    }
}

/// The time zone of timestamps written without a UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
    Fixed(FixedOffset),
    Named(Tz),
}

impl Zone {
    pub(crate) const UTC: Zone =
        Zone::Fixed(FixedOffset::east_opt(0).expect("zero is a valid offset"));

    /// Parses an IANA zone name (`Europe/Berlin`, `UTC`) or a fixed offset (`+02:00`, `-0500`).
    pub(crate) fn parse(text: &str) -> Option<Zone> {
        if let Some(sign) = text.chars().next().filter(|c| matches!(c, '+' | '-')) {
            let digits: String = text[1..].chars().filter(|&c| c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i32 = digits[..2].parse().ok()?;
            let minutes: i32 = digits[2..].parse().ok()?;
            if minutes >= 60 {
                return None;
            }
            let seconds = (hours * 60 + minutes) * 60;
            let seconds = if sign == '-' { -seconds } else { seconds };
            return FixedOffset::east_opt(seconds).map(Zone::Fixed);
        }
        text.parse::<Tz>().ok().map(Zone::Named)
    }

    /// Converts a local date and time to microseconds since the epoch, UTC.
    ///
    /// In a daylight-saving fold the earlier instant is taken. A local time
    /// that the zone skips (a spring-forward gap) gives `None`.
    fn to_utc_micros(self, local: &NaiveDateTime) -> Option<i64> {
        let utc = match self {
            Zone::Fixed(offset) => earliest(offset.from_local_datetime(local))?.to_utc(),
            Zone::Named(zone) => earliest(zone.from_local_datetime(local))?.to_utc(),
        };
        Some(utc.timestamp_micros())
    }
}

fn earliest<T: TimeZone>(result: LocalResult<DateTime<T>>) -> Option<DateTime<T>> {
    match result {
        LocalResult::Single(time) => Some(time),
        LocalResult::Ambiguous(earlier, _) => Some(earlier),
        LocalResult::None => None,
    }
}

/// Format of the values of a `time` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TimeFormat {
    /// ISO 8601 text such as `2024-03-05T10:15:30.123+01:00`.
    Rfc3339,
    /// The common log format time, `10/Oct/2000:13:55:36 -0700`.
    Clf,
    /// A number, or numeric text, of the unit since the Unix epoch.
    Epoch(Unit),
    /// A chrono strftime pattern, parsed once when the mapping is built.
    Pattern {
        pattern: String,
        items: Vec<Item<'static>>,
    },
}

impl TimeFormat {
    /// Parses a `format` value of a mapping, explaining what is wrong when it is invalid.
    pub(crate) fn parse(text: &str) -> Result<TimeFormat, String> {
        match text {
            "rfc3339" => return Ok(TimeFormat::Rfc3339),
            "clf" => return Ok(TimeFormat::Clf),
            _ => {}
        }
        if let Some(unit) = Unit::ALL
            .into_iter()
            .find(|unit| unit.epoch_format_name() == text)
        {
            return Ok(TimeFormat::Epoch(unit));
        }
        if !text.contains('%') {
            return Err(format!(
                "unknown time format {text:?}: use rfc3339, clf, epoch_s, epoch_ms, epoch_us, epoch_ns or a strftime pattern such as \"%Y-%m-%d %H:%M:%S\""
            ));
        }
        let items = StrftimeItems::new(text)
            .parse_to_owned()
            .map_err(|_| format!("invalid strftime pattern {text:?}"))?;
        let format = TimeFormat::Pattern {
            pattern: text.to_string(),
            items,
        };
        format.check_pattern_round_trip()?;
        Ok(format)
    }

    /// Checks that a pattern reads back a time it wrote, so that it names a full date and time.
    fn check_pattern_round_trip(&self) -> Result<(), String> {
        let TimeFormat::Pattern { pattern, items } = self else {
            return Ok(());
        };
        let sample = DateTime::from_timestamp(981_173_106, 0)
            .expect("a fixed valid timestamp")
            .fixed_offset();
        let written = sample.format_with_items(items.iter()).to_string();
        match parse_pattern(items, &written, Zone::UTC) {
            Some(_) => Ok(()),
            None => Err(format!(
                "the strftime pattern {pattern:?} does not read back a full date and time: it wrote 2001-02-03T04:05:06Z as {written:?} and could not parse that"
            )),
        }
    }

    /// Returns whether the format's values may lack a UTC offset, so that a time zone applies.
    pub(crate) fn uses_zone(&self) -> bool {
        !matches!(self, TimeFormat::Epoch(_))
    }
}

/// The format and time zone of a `time` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TimeSpec {
    pub(crate) format: TimeFormat,
    /// Zone of timestamps without a UTC offset; UTC unless the mapping sets one.
    pub(crate) zone: Zone,
}

impl TimeSpec {
    /// Reads a time value into microseconds since the epoch, UTC, or explains why it cannot.
    ///
    /// `field` is the record's field name, quoted in the reason.
    pub(crate) fn read(&self, field: &str, value: &Json<'_>) -> Result<i64, String> {
        match &self.format {
            TimeFormat::Epoch(unit) => read_epoch(field, *unit, value),
            format => {
                let Json::String(text) = value else {
                    return Err(format!(
                        "expected a time string in field {field}, found {}",
                        value.kind()
                    ));
                };
                self.read_text(format, text)
                    .ok_or_else(|| invalid_time(field, format, text))
            }
        }
    }

    fn read_text(&self, format: &TimeFormat, text: &str) -> Option<i64> {
        let text = text.trim();
        match format {
            TimeFormat::Rfc3339 if has_iso8601_offset(text) || self.zone == Zone::UTC => {
                parse_iso8601(text)
            }
            TimeFormat::Rfc3339 => self.in_zone(parse_iso8601(text)?),
            TimeFormat::Clf if text.contains(' ') || self.zone == Zone::UTC => parse_clf_time(text),
            TimeFormat::Clf => self.in_zone(parse_clf_time(text)?),
            TimeFormat::Pattern { items, .. } => parse_pattern(items, text, self.zone),
            TimeFormat::Epoch(_) => None,
        }
    }

    /// Reinterprets a time that was read as UTC as a local time of the zone.
    fn in_zone(&self, as_utc: i64) -> Option<i64> {
        let local = DateTime::from_timestamp_micros(as_utc)?.naive_utc();
        self.zone.to_utc_micros(&local)
    }
}

fn invalid_time(field: &str, format: &TimeFormat, text: &str) -> String {
    let expected = match format {
        TimeFormat::Rfc3339 => "an RFC 3339 time such as 2024-03-05T10:15:30Z".to_string(),
        TimeFormat::Clf => "a CLF time such as 10/Oct/2000:13:55:36 -0700".to_string(),
        TimeFormat::Pattern { pattern, .. } => format!("a time matching {pattern:?}"),
        TimeFormat::Epoch(unit) => format!("a number of {}", unit.plural_name()),
    };
    format!(
        "invalid time {} in field {field}: expected {expected}",
        quote_excerpt(text)
    )
}

/// Returns whether ISO 8601 text ends in a UTC offset (`Z`, `+01:00`, `-0500`).
fn has_iso8601_offset(text: &str) -> bool {
    // The offset follows the clock, which starts after `YYYY-MM-DDT`.
    text.get(11..)
        .is_some_and(|clock| clock.contains(['Z', 'z', '+', '-']))
}

/// Parses text with strftime items; a time without an offset or epoch is local to `zone`.
fn parse_pattern(items: &[Item<'static>], text: &str, zone: Zone) -> Option<i64> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, text, items.iter()).ok()?;
    if parsed.offset().is_some() || parsed.timestamp().is_some() {
        return Some(parsed.to_datetime().ok()?.timestamp_micros());
    }
    let local = parsed.to_naive_datetime_with_offset(0).ok()?;
    zone.to_utc_micros(&local)
}

/// Reads an epoch number or numeric string, checking that the unit gives a plausible time.
fn read_epoch(field: &str, unit: Unit, value: &Json<'_>) -> Result<i64, String> {
    let text = match value {
        Json::Number(number) => number.to_string(),
        Json::String(text) => text.trim().to_string(),
        other => {
            return Err(format!(
                "expected an epoch number in field {field}, found {}",
                other.kind()
            ));
        }
    };
    let micros = scale_decimal(&text, unit.micros_exponent())
        .ok_or_else(|| invalid_time(field, &TimeFormat::Epoch(unit), &text))?;
    if (i128::from(PLAUSIBLE_START)..i128::from(PLAUSIBLE_END)).contains(&micros) {
        return Ok(micros as i64);
    }
    Err(implausible_epoch(field, unit, &text, micros))
}

/// Explains an epoch time outside the plausible range, naming the unit that fits the value if any.
fn implausible_epoch(field: &str, unit: Unit, text: &str, micros: i128) -> String {
    let date = describe_micros(micros);
    let fitting = Unit::ALL.into_iter().find(|candidate| {
        let shift = candidate.micros_exponent() - unit.micros_exponent();
        shift_decimal(micros, shift).is_some_and(|scaled| {
            (i128::from(PLAUSIBLE_START)..i128::from(PLAUSIBLE_END)).contains(&scaled)
        })
    });
    let configured = unit.epoch_format_name();
    let advice = match fitting {
        Some(fitting) => format!(
            "the value looks like {} ({}), not {}: set the time format to {}",
            fitting.epoch_format_name(),
            fitting.plural_name(),
            unit.plural_name(),
            fitting.epoch_format_name()
        ),
        None => "no epoch unit puts it in that range".to_string(),
    };
    format!(
        "implausible time {} in field {field}: as {configured} it is {date}, outside 2000-01-01 to 2100-01-01; {advice}",
        quote_excerpt(text)
    )
}

/// Writes microseconds as an RFC 3339 time, or as the year range they fall outside of.
fn describe_micros(micros: i128) -> String {
    match i64::try_from(micros)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
    {
        Some(_) => format_time_micros(micros as i64),
        None if micros < 0 => "before the year -262143".to_string(),
        None => "after the year 262142".to_string(),
    }
}

/// Multiplies a value by `10^shift`, truncating towards zero for negative shifts.
fn shift_decimal(value: i128, shift: i32) -> Option<i128> {
    if shift >= 0 {
        value.checked_mul(10i128.checked_pow(shift.unsigned_abs())?)
    } else {
        Some(match 10i128.checked_pow(shift.unsigned_abs()) {
            Some(divisor) => value / divisor,
            None => 0,
        })
    }
}

/// Parses decimal text (`1535473131.906`, `-5`, `1.7e9`) and multiplies it by `10^exponent`.
///
/// The result is exact up to [`MAX_SIGNIFICANT_DIGITS`] digits, because epoch
/// nanoseconds have 19 digits, more than an `f64` holds. Digits after the
/// point that fall below one unit of the result are truncated.
fn scale_decimal(text: &str, exponent: i32) -> Option<i128> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, power) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, power)) => (mantissa, power.parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    if power.abs() > MAX_EXPONENT {
        return None;
    }
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let is_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !is_digits(whole) || !is_digits(fraction) {
        return None;
    }

    let mut value: i128 = 0;
    let mut significant = 0;
    let mut shift = exponent + power - fraction.len() as i32;
    for digit in whole.bytes().chain(fraction.bytes()) {
        if significant >= MAX_SIGNIFICANT_DIGITS {
            shift += 1;
            continue;
        }
        value = value * 10 + i128::from(digit - b'0');
        if value != 0 {
            significant += 1;
        }
    }
    let scaled = shift_decimal(value, shift)?;
    Some(if negative { -scaled } else { scaled })
}

/// Reads a duration number or numeric string in `unit` into milliseconds.
///
/// A negative value, such as the `-1` that logs write for "not measured",
/// gives `Ok(None)`.
pub(crate) fn read_duration_ms(
    field: &str,
    unit: Unit,
    value: &Json<'_>,
) -> Result<Option<f64>, String> {
    let number = match value {
        Json::Number(number) => number.as_f64(),
        Json::String(text) => text.trim().parse::<f64>().ok(),
        other => {
            return Err(format!(
                "expected a duration number in field {field}, found {}",
                other.kind()
            ));
        }
    };
    let Some(number) = number.filter(|number| number.is_finite()) else {
        let text = value.as_text().unwrap_or_default();
        return Err(format!(
            "invalid duration {} in field {field}: expected a number of {}",
            quote_excerpt(&text),
            unit.plural_name()
        ));
    };
    if number < 0.0 {
        return Ok(None);
    }
    Ok(Some(number * unit.millis()))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn text(value: &str) -> Json<'_> {
        Json::String(Cow::Borrowed(value))
    }

    fn number(text: &str) -> Json<'static> {
        Json::Number(serde_json::from_str(text).expect("a JSON number"))
    }

    fn spec(format: &str) -> TimeSpec {
        TimeSpec {
            format: TimeFormat::parse(format).expect("a valid format"),
            zone: Zone::UTC,
        }
    }

    fn spec_in(format: &str, zone: &str) -> TimeSpec {
        TimeSpec {
            format: TimeFormat::parse(format).expect("a valid format"),
            zone: Zone::parse(zone).expect("a valid zone"),
        }
    }

    /// 2024-03-05T10:15:30Z in microseconds.
    const T: i64 = 1_709_633_730_000_000;

    #[test]
    fn rfc3339_offsets_and_fractions() {
        let rfc = spec("rfc3339");
        assert_eq!(rfc.read("ts", &text("2024-03-05T10:15:30Z")), Ok(T));
        assert_eq!(
            rfc.read("ts", &text("2024-03-05T11:15:30.250+01:00")),
            Ok(T + 250_000)
        );
        assert_eq!(rfc.read("ts", &text("2024-03-05 05:15:30-0500")), Ok(T));
        assert_eq!(
            rfc.read("ts", &text("2024-03-05T10:15:30.123456789Z")),
            Ok(T + 123_456)
        );
        assert_eq!(rfc.read("ts", &text("2024-03-05T10:15:30")), Ok(T));
    }

    #[test]
    fn rfc3339_without_offset_uses_zone() {
        let berlin = spec_in("rfc3339", "Europe/Berlin");
        assert_eq!(berlin.read("ts", &text("2024-03-05T11:15:30")), Ok(T));
        assert_eq!(
            berlin.read("ts", &text("2024-03-05T10:15:30Z")),
            Ok(T),
            "an explicit offset wins over the zone"
        );
        let fixed = spec_in("rfc3339", "-05:00");
        assert_eq!(fixed.read("ts", &text("2024-03-05T05:15:30")), Ok(T));
    }

    #[test]
    fn rfc3339_rejects_other_text() {
        let reason = spec("rfc3339")
            .read("ts", &text("05/03/2024 10:15"))
            .unwrap_err();
        assert_eq!(
            reason,
            r#"invalid time "05/03/2024 10:15" in field ts: expected an RFC 3339 time such as 2024-03-05T10:15:30Z"#
        );
        let reason = spec("rfc3339")
            .read("ts", &number("1709633730"))
            .unwrap_err();
        assert_eq!(reason, "expected a time string in field ts, found a number");
    }

    #[test]
    fn clf_time() {
        let clf = spec("clf");
        assert_eq!(
            clf.read("t", &text("05/Mar/2024:03:15:30 -0700")),
            Ok(T),
            "offset applied"
        );
        let tokyo = spec_in("clf", "Asia/Tokyo");
        assert_eq!(tokyo.read("t", &text("05/Mar/2024:19:15:30")), Ok(T));
        assert!(clf.read("t", &text("2024-03-05T10:15:30Z")).is_err());
    }

    #[test]
    fn epoch_units_numbers_and_strings() {
        let cases = [
            ("epoch_s", "1709633730"),
            ("epoch_ms", "1709633730000"),
            ("epoch_us", "1709633730000000"),
            ("epoch_ns", "1709633730000000000"),
        ];
        for (format, value) in cases {
            assert_eq!(spec(format).read("ts", &number(value)), Ok(T), "{format}");
            assert_eq!(spec(format).read("ts", &text(value)), Ok(T), "{format}");
        }
    }

    #[test]
    fn epoch_fractions_are_exact() {
        assert_eq!(
            spec("epoch_s").read("ts", &text("1709633730.906")),
            Ok(T + 906_000)
        );
        assert_eq!(
            spec("epoch_s").read("ts", &number("1709633730.123456")),
            Ok(T + 123_456)
        );
        assert_eq!(
            spec("epoch_ms").read("ts", &text("1709633730123.456")),
            Ok(T + 123_456)
        );
        assert_eq!(
            spec("epoch_ns").read("ts", &number("1709633730123456789")),
            Ok(T + 123_456),
            "nanoseconds keep microsecond precision, beyond what an f64 holds"
        );
        assert_eq!(spec("epoch_s").read("ts", &text("1.70963373e9")), Ok(T));
        assert_eq!(
            spec("epoch_s").read("ts", &text(" 1709633730 ")),
            Ok(T),
            "surrounding spaces are ignored"
        );
    }

    #[test]
    fn epoch_in_wrong_unit_names_the_fitting_unit() {
        let reason = spec("epoch_ms")
            .read("ts", &number("1709633730"))
            .unwrap_err();
        assert_eq!(
            reason,
            r#"implausible time "1709633730" in field ts: as epoch_ms it is 1970-01-20T18:53:53.730Z, outside 2000-01-01 to 2100-01-01; the value looks like epoch_s (seconds), not milliseconds: set the time format to epoch_s"#
        );
        let reason = spec("epoch_s")
            .read("ts", &number("1709633730000"))
            .unwrap_err();
        assert!(
            reason.contains("as epoch_s it is +56146-02-19T10:20:00Z")
                && reason.contains("looks like epoch_ms (milliseconds), not seconds"),
            "{reason}"
        );
        let reason = spec("epoch_us")
            .read("ts", &text("1709633730000000000"))
            .unwrap_err();
        assert!(reason.contains("looks like epoch_ns"), "{reason}");
        let reason = spec("epoch_ns")
            .read("ts", &text("1709633730000"))
            .unwrap_err();
        assert!(reason.contains("looks like epoch_ms"), "{reason}");
    }

    #[test]
    fn epoch_without_fitting_unit() {
        for value in ["0", "-5", "123", "99999999999999999999999999"] {
            let reason = spec("epoch_s").read("ts", &text(value)).unwrap_err();
            assert!(
                reason.contains("no epoch unit puts it in that range"),
                "{value}: {reason}"
            );
        }
        let reason = spec("epoch_s").read("ts", &text("1e30")).unwrap_err();
        assert!(reason.contains("after the year 262142"), "{reason}");
    }

    #[test]
    fn epoch_rejects_non_numbers() {
        assert_eq!(
            spec("epoch_s").read("ts", &text("soon")).unwrap_err(),
            r#"invalid time "soon" in field ts: expected a number of seconds"#
        );
        for value in ["", ".", "1.2.3", "1e", "0x10", "1e99999"] {
            assert!(
                spec("epoch_ms").read("ts", &text(value)).is_err(),
                "{value:?}"
            );
        }
        assert_eq!(
            spec("epoch_s").read("ts", &Json::Bool(true)).unwrap_err(),
            "expected an epoch number in field ts, found a boolean"
        );
    }

    #[test]
    fn strftime_pattern_in_zone() {
        let splunk = spec("%Y-%m-%d %H:%M:%S%.3f UTC");
        assert_eq!(
            splunk.read("_time", &text("2024-03-05 10:15:30.500 UTC")),
            Ok(T + 500_000)
        );
        let local = spec_in("%d.%m.%Y %H:%M:%S", "Europe/Berlin");
        assert_eq!(local.read("t", &text("05.03.2024 11:15:30")), Ok(T));
        let summer = spec_in("%d.%m.%Y %H:%M:%S", "Europe/Berlin");
        assert_eq!(
            summer.read("t", &text("05.07.2024 12:15:30")),
            Ok(1_720_174_530_000_000),
            "summer time is UTC+2"
        );
        let with_offset = spec_in("%Y%m%dT%H%M%S%z", "Europe/Berlin");
        assert_eq!(
            with_offset.read("t", &text("20240305T101530+0000")),
            Ok(T),
            "the offset in the value wins over the zone"
        );
    }

    #[test]
    fn strftime_daylight_saving_edges() {
        let berlin = spec_in("%Y-%m-%d %H:%M", "Europe/Berlin");
        // 2024-10-27 02:30 happens twice in Berlin; the earlier one is UTC+2.
        assert_eq!(
            berlin.read("t", &text("2024-10-27 02:30")),
            Ok(1_729_989_000_000_000)
        );
        // 2024-03-31 02:30 does not exist in Berlin.
        assert!(berlin.read("t", &text("2024-03-31 02:30")).is_err());
    }

    #[test]
    fn invalid_formats() {
        let reason = TimeFormat::parse("epoch").unwrap_err();
        assert!(
            reason.starts_with("unknown time format \"epoch\""),
            "{reason}"
        );
        let reason = TimeFormat::parse("%Y-%m-%d %Q").unwrap_err();
        assert_eq!(reason, r#"invalid strftime pattern "%Y-%m-%d %Q""#);
        let reason = TimeFormat::parse("%H:%M:%S").unwrap_err();
        assert!(
            reason.contains("does not read back a full date and time"),
            "{reason}"
        );
        assert!(TimeFormat::parse("%s").is_ok(), "epoch seconds pattern");
    }

    #[test]
    fn zones() {
        assert_eq!(Zone::parse("UTC"), Some(Zone::Named(Tz::UTC)));
        assert_eq!(
            Zone::parse("+05:30"),
            Some(Zone::Fixed(FixedOffset::east_opt(19_800).unwrap()))
        );
        assert_eq!(
            Zone::parse("-0800"),
            Some(Zone::Fixed(FixedOffset::west_opt(28_800).unwrap()))
        );
        for invalid in ["Mars/Olympus", "+5", "+05:75", "", "+24:00"] {
            assert_eq!(Zone::parse(invalid), None, "{invalid:?}");
        }
    }

    #[test]
    fn durations_in_each_unit() {
        let cases = [
            (Unit::Seconds, "0.048"),
            (Unit::Millis, "48"),
            (Unit::Micros, "48000"),
            (Unit::Nanos, "48000000"),
        ];
        for (unit, value) in cases {
            let from_number = read_duration_ms("d", unit, &number(value)).unwrap();
            let from_text = read_duration_ms("d", unit, &text(value)).unwrap();
            for read in [from_number, from_text] {
                let millis = read.expect("a duration");
                assert!((millis - 48.0).abs() < 1e-9, "{unit:?}: {millis}");
            }
        }
        assert_eq!(read_duration_ms("d", Unit::Millis, &number("-1")), Ok(None));
        assert_eq!(
            read_duration_ms("d", Unit::Seconds, &text("fast")).unwrap_err(),
            r#"invalid duration "fast" in field d: expected a number of seconds"#
        );
        assert!(read_duration_ms("d", Unit::Seconds, &text("NaN")).is_err());
    }

    #[test]
    fn scale_decimal_forms() {
        assert_eq!(scale_decimal("1.5", 6), Some(1_500_000));
        assert_eq!(scale_decimal("1999", -3), Some(1));
        assert_eq!(scale_decimal("-2.5", 1), Some(-25));
        assert_eq!(scale_decimal("+7", 0), Some(7));
        assert_eq!(scale_decimal(".5", 1), Some(5));
        assert_eq!(scale_decimal("5.", 1), Some(50));
        assert_eq!(scale_decimal("1E3", 0), Some(1000));
        assert_eq!(scale_decimal(&"9".repeat(60), 0), None, "overflow");
    }
}
