//! Calendar arithmetic, partner time zones and holidays, and time formatting.
//!
//! Time zones are modelled with a standard offset and one of three daylight
//! saving rules (European Union, United States, none) written here, instead
//! of the tz database, so that a new tz release cannot change a simulation.
//! The rules are those in force since 2007 (United States) and 1996 (EU).

/// Milliseconds in one hour.
pub(crate) const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in one day.
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;

const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Date of a count of days since 1970-01-01, as (year, month, day).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day of the week of a count of days since 1970-01-01: 0 is Monday, 6 is Sunday.
pub(crate) fn weekday(days: i64) -> u32 {
    // 1970-01-01 was a Thursday.
    (days + 3).rem_euclid(7) as u32
}

/// Days since 1970-01-01 of the `n`-th (1-based) given weekday of a month.
fn nth_weekday(year: i64, month: u32, target: u32, n: u32) -> i64 {
    let first = days_from_civil(year, month, 1);
    let offset = (i64::from(target) - i64::from(weekday(first))).rem_euclid(7);
    first + offset + 7 * i64::from(n.saturating_sub(1))
}

/// Days since 1970-01-01 of the last given weekday of a month.
fn last_weekday(year: i64, month: u32, target: u32) -> i64 {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let last = days_from_civil(next_year, next_month, 1) - 1;
    last - (i64::from(weekday(last)) - i64::from(target)).rem_euclid(7)
}

/// Days since 1970-01-01 of Easter Sunday (the anonymous Gregorian algorithm).
pub(crate) fn easter(year: i64) -> i64 {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    days_from_civil(year, month as u32, day as u32)
}

const MONDAY: u32 = 0;
const THURSDAY: u32 = 3;
const SUNDAY: u32 = 6;

/// Daylight saving time rule of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DstRule {
    None,
    /// From the last Sunday of March to the last Sunday of October, 01:00 UTC.
    EuropeanUnion,
    /// From the second Sunday of March to the first Sunday of November, 02:00 local time.
    UnitedStates,
}

/// Public holidays a zone's partners observe, beyond 1 January and 25 December.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolidayCalendar {
    /// Good Friday, Easter Monday, 1 May, 26 December.
    ContinentalEurope,
    /// Good Friday, Easter Monday, the May and August bank holidays, 26 December.
    UnitedKingdom,
    /// Memorial Day, 4 July, Labor Day, Thanksgiving.
    UnitedStates,
    /// Only 1 January and 25 December.
    Minimal,
}

/// The local time rules of a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    /// IANA name of the place whose rules this zone follows.
    pub name: &'static str,
    /// Offset from UTC outside daylight saving time, in minutes.
    pub standard_offset_minutes: i32,
    pub dst: DstRule,
    pub holidays: HolidayCalendar,
}

/// Zones that partners are placed in.
pub(crate) const ZONES: [Zone; 10] = [
    Zone {
        name: "America/New_York",
        standard_offset_minutes: -300,
        dst: DstRule::UnitedStates,
        holidays: HolidayCalendar::UnitedStates,
    },
    Zone {
        name: "America/Chicago",
        standard_offset_minutes: -360,
        dst: DstRule::UnitedStates,
        holidays: HolidayCalendar::UnitedStates,
    },
    Zone {
        name: "America/Los_Angeles",
        standard_offset_minutes: -480,
        dst: DstRule::UnitedStates,
        holidays: HolidayCalendar::UnitedStates,
    },
    Zone {
        name: "America/Sao_Paulo",
        standard_offset_minutes: -180,
        dst: DstRule::None,
        holidays: HolidayCalendar::Minimal,
    },
    Zone {
        name: "Europe/London",
        standard_offset_minutes: 0,
        dst: DstRule::EuropeanUnion,
        holidays: HolidayCalendar::UnitedKingdom,
    },
    Zone {
        name: "Europe/Berlin",
        standard_offset_minutes: 60,
        dst: DstRule::EuropeanUnion,
        holidays: HolidayCalendar::ContinentalEurope,
    },
    Zone {
        name: "Europe/Paris",
        standard_offset_minutes: 60,
        dst: DstRule::EuropeanUnion,
        holidays: HolidayCalendar::ContinentalEurope,
    },
    Zone {
        name: "Asia/Kolkata",
        standard_offset_minutes: 330,
        dst: DstRule::None,
        holidays: HolidayCalendar::Minimal,
    },
    Zone {
        name: "Asia/Singapore",
        standard_offset_minutes: 480,
        dst: DstRule::None,
        holidays: HolidayCalendar::Minimal,
    },
    Zone {
        name: "Asia/Tokyo",
        standard_offset_minutes: 540,
        dst: DstRule::None,
        holidays: HolidayCalendar::Minimal,
    },
];

/// A moment in a zone's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocalTime {
    /// Local date as days since 1970-01-01.
    pub day: i64,
    /// Local hour, 0 to 23.
    pub hour: u32,
    /// 0 is Monday, 6 is Sunday.
    pub weekday: u32,
    pub holiday: bool,
}

impl LocalTime {
    /// Returns whether the local day is a Saturday, a Sunday or a holiday.
    pub(crate) fn is_day_off(&self) -> bool {
        self.weekday >= 5 || self.holiday
    }
}

impl Zone {
    /// Offset from UTC at the instant `utc_ms`, in milliseconds.
    pub fn offset_ms(&self, utc_ms: i64) -> i64 {
        let standard = i64::from(self.standard_offset_minutes) * 60_000;
        if self.in_dst(utc_ms, standard) {
            standard + HOUR_MS
        } else {
            standard
        }
    }

    fn in_dst(&self, utc_ms: i64, standard_ms: i64) -> bool {
        let (year, _, _) = civil_from_days(utc_ms.div_euclid(DAY_MS));
        match self.dst {
            DstRule::None => false,
            DstRule::EuropeanUnion => {
                let start = last_weekday(year, 3, SUNDAY) * DAY_MS + HOUR_MS;
                let end = last_weekday(year, 10, SUNDAY) * DAY_MS + HOUR_MS;
                (start..end).contains(&utc_ms)
            }
            DstRule::UnitedStates => {
                let start = nth_weekday(year, 3, SUNDAY, 2) * DAY_MS + 2 * HOUR_MS - standard_ms;
                let end =
                    nth_weekday(year, 11, SUNDAY, 1) * DAY_MS + 2 * HOUR_MS - standard_ms - HOUR_MS;
                (start..end).contains(&utc_ms)
            }
        }
    }

    /// Local date, hour, weekday and holiday flag at the instant `utc_ms`.
    pub(crate) fn local(&self, utc_ms: i64) -> LocalTime {
        let local_ms = utc_ms + self.offset_ms(utc_ms);
        let day = local_ms.div_euclid(DAY_MS);
        LocalTime {
            day,
            hour: (local_ms.rem_euclid(DAY_MS) / HOUR_MS) as u32,
            weekday: weekday(day),
            holiday: self.is_holiday(day),
        }
    }

    /// UTC instant of a local date and hour. Around a daylight saving change
    /// the offset is read an hour after the local time taken as UTC, which
    /// is close enough for placing scenarios.
    pub(crate) fn utc_of_local(&self, day: i64, hour: u32) -> i64 {
        let naive = day * DAY_MS + i64::from(hour) * HOUR_MS;
        naive - self.offset_ms(naive - i64::from(self.standard_offset_minutes) * 60_000)
    }

    /// Returns whether a local date is a public holiday in this zone.
    pub(crate) fn is_holiday(&self, day: i64) -> bool {
        let (year, month, day_of_month) = civil_from_days(day);
        if (month, day_of_month) == (1, 1) || (month, day_of_month) == (12, 25) {
            return true;
        }
        let easter_sunday = easter(year);
        match self.holidays {
            HolidayCalendar::ContinentalEurope => {
                day == easter_sunday - 2
                    || day == easter_sunday + 1
                    || (month, day_of_month) == (5, 1)
                    || (month, day_of_month) == (12, 26)
            }
            HolidayCalendar::UnitedKingdom => {
                day == easter_sunday - 2
                    || day == easter_sunday + 1
                    || day == nth_weekday(year, 5, MONDAY, 1)
                    || day == last_weekday(year, 5, MONDAY)
                    || day == last_weekday(year, 8, MONDAY)
                    || (month, day_of_month) == (12, 26)
            }
            HolidayCalendar::UnitedStates => {
                day == last_weekday(year, 5, MONDAY)
                    || (month, day_of_month) == (7, 4)
                    || day == nth_weekday(year, 9, MONDAY, 1)
                    || day == nth_weekday(year, 11, THURSDAY, 4)
            }
            HolidayCalendar::Minimal => false,
        }
    }
}

/// Hour, minute, second and millisecond of a time of day.
type TimeOfDay = (i64, i64, i64, i64);

/// Splits milliseconds since the epoch into a date and a time of day.
fn split_ms(ms: i64) -> ((i64, u32, u32), TimeOfDay) {
    let days = ms.div_euclid(DAY_MS);
    let rest = ms.rem_euclid(DAY_MS);
    (
        civil_from_days(days),
        (
            rest / HOUR_MS,
            rest % HOUR_MS / 60_000,
            rest % 60_000 / 1000,
            rest % 1000,
        ),
    )
}

/// Appends an RFC 3339 UTC time with milliseconds: `2025-04-07T10:00:00.123Z`.
pub(crate) fn push_rfc3339_millis(out: &mut String, ms: i64) {
    use std::fmt::Write;
    let ((year, month, day), (hour, minute, second, milli)) = split_ms(ms);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z"
    );
}

/// Appends an RFC 3339 UTC time with microseconds, as ALB writes it.
pub(crate) fn push_rfc3339_micros(out: &mut String, ms: i64) {
    use std::fmt::Write;
    let ((year, month, day), (hour, minute, second, milli)) = split_ms(ms);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}000Z"
    );
}

/// Returns an RFC 3339 UTC time in whole seconds: `2025-04-07T10:00:00Z`.
pub(crate) fn rfc3339_seconds(ms: i64) -> String {
    let ((year, month, day), (hour, minute, second, _)) = split_ms(ms);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// Appends a common log format time in UTC: `07/Apr/2025:10:00:00 +0000`.
pub(crate) fn push_clf_time(out: &mut String, ms: i64) {
    use std::fmt::Write;
    let ((year, month, day), (hour, minute, second, _)) = split_ms(ms);
    let name = MONTH_NAMES
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    let _ = write!(
        out,
        "{day:02}/{name}/{year:04}:{hour:02}:{minute:02}:{second:02} +0000"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 20_000, 20_185, 2_932_896] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(
                days_from_civil(year, month, day),
                days,
                "{year}-{month}-{day}"
            );
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2025, 4, 7), 20_185);
        assert_eq!(weekday(days_from_civil(2025, 4, 7)), MONDAY);
    }

    #[test]
    fn easter_dates() {
        assert_eq!(civil_from_days(easter(2024)), (2024, 3, 31));
        assert_eq!(civil_from_days(easter(2025)), (2025, 4, 20));
        assert_eq!(civil_from_days(easter(2026)), (2026, 4, 5));
    }

    #[test]
    fn dst_offsets() {
        let berlin = ZONES[5];
        let new_york = ZONES[0];
        let winter = days_from_civil(2025, 1, 15) * DAY_MS;
        let summer = days_from_civil(2025, 7, 15) * DAY_MS;
        assert_eq!(berlin.offset_ms(winter), HOUR_MS);
        assert_eq!(berlin.offset_ms(summer), 2 * HOUR_MS);
        assert_eq!(new_york.offset_ms(winter), -5 * HOUR_MS);
        assert_eq!(new_york.offset_ms(summer), -4 * HOUR_MS);
        // 2025-03-30 01:00 UTC starts EU summer time.
        let eu_change = days_from_civil(2025, 3, 30) * DAY_MS + HOUR_MS;
        assert_eq!(berlin.offset_ms(eu_change - 1), HOUR_MS);
        assert_eq!(berlin.offset_ms(eu_change), 2 * HOUR_MS);
        // 2025-03-09 07:00 UTC (02:00 EST) starts US daylight time.
        let us_change = days_from_civil(2025, 3, 9) * DAY_MS + 7 * HOUR_MS;
        assert_eq!(new_york.offset_ms(us_change - 1), -5 * HOUR_MS);
        assert_eq!(new_york.offset_ms(us_change), -4 * HOUR_MS);
    }

    #[test]
    fn holidays_by_calendar() {
        let berlin = ZONES[5];
        let new_york = ZONES[0];
        assert!(
            berlin.is_holiday(days_from_civil(2025, 4, 18)),
            "Good Friday"
        );
        assert!(berlin.is_holiday(days_from_civil(2025, 5, 1)));
        assert!(!new_york.is_holiday(days_from_civil(2025, 5, 1)));
        assert!(
            new_york.is_holiday(days_from_civil(2025, 11, 27)),
            "Thanksgiving"
        );
        assert!(
            new_york.is_holiday(days_from_civil(2025, 5, 26)),
            "Memorial Day"
        );
        assert!(ZONES[9].is_holiday(days_from_civil(2025, 1, 1)));
    }

    #[test]
    fn local_time_and_back() {
        let tokyo = ZONES[9];
        let utc = days_from_civil(2025, 4, 7) * DAY_MS + 23 * HOUR_MS;
        let local = tokyo.local(utc);
        assert_eq!(local.day, days_from_civil(2025, 4, 8));
        assert_eq!(local.hour, 8);
        assert_eq!(local.weekday, 1);
        assert_eq!(tokyo.utc_of_local(local.day, 8), utc);
    }

    #[test]
    fn time_formats() {
        let ms = days_from_civil(2025, 4, 7) * DAY_MS + 10 * HOUR_MS + 5_123;
        let mut text = String::new();
        push_rfc3339_millis(&mut text, ms);
        assert_eq!(text, "2025-04-07T10:00:05.123Z");
        text.clear();
        push_rfc3339_micros(&mut text, ms);
        assert_eq!(text, "2025-04-07T10:00:05.123000Z");
        text.clear();
        push_clf_time(&mut text, ms);
        assert_eq!(text, "07/Apr/2025:10:00:05 +0000");
        assert_eq!(rfc3339_seconds(ms), "2025-04-07T10:00:05Z");
    }
}
