//! Typed values of dkim.toml that more than one place parses: calendar
//! dates ([`Date`]), name servers ([`parse_nameserver`]) and account names
//! ([`is_account_name`]). Each is parsed here and nowhere else.
//!
//! Dates are `YYYY-MM-DD` in UTC, computed without a date crate. The
//! conversions between a day count and a civil date are Howard
//! Hinnant's `days_from_civil` / `civil_from_days`
//! (<https://howardhinnant.github.io/date_algorithms.html>), exact for the
//! proleptic Gregorian calendar.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A day in the proleptic Gregorian calendar, years 1 to 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Days since 1970-01-01.
    days: i64,
}

const SECONDS_PER_DAY: u64 = 86_400;

impl Date {
    /// The date for year, month and day, if it exists.
    pub fn from_ymd(year: i64, month: u32, day: u32) -> Option<Date> {
        if !(1..=9999).contains(&year) || !(1..=12).contains(&month) || day == 0 {
            return None;
        }
        if day > days_in_month(year, month) {
            return None;
        }
        Some(Date {
            days: days_from_civil(year, month, day),
        })
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let month = u32::try_from(num(5..7)?).ok()?;
        let day = u32::try_from(num(8..10)?).ok()?;
        Date::from_ymd(num(0..4)?, month, day)
    }

    /// Today in UTC, from the system clock.
    pub fn today() -> Date {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Date {
            days: i64::try_from(secs / SECONDS_PER_DAY).unwrap_or(0),
        }
    }

    /// Year, month, day.
    pub fn ymd(self) -> (i64, u32, u32) {
        civil_from_days(self.days)
    }

    /// The date `n` days later (earlier when negative).
    pub fn add_days(self, n: i64) -> Date {
        Date {
            days: self.days.saturating_add(n),
        }
    }

    /// The date a duration later, rounding a part day up to a whole day
    /// (a grace period of 12 hours ends tomorrow, not today).
    pub fn after(self, duration: Duration) -> Date {
        let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
        let days = secs.div_ceil(SECONDS_PER_DAY);
        self.add_days(i64::try_from(days).unwrap_or(i64::MAX))
    }

    /// Days from `self` to `other` (negative when `other` is earlier).
    pub fn days_until(self, other: Date) -> i64 {
        other.days - self.days
    }

    /// Days since 1970-01-01.
    pub fn days_since_epoch(self) -> i64 {
        self.days
    }

    /// `YYYYMMDD`, the form used in selector names.
    pub fn compact(self) -> String {
        let (y, m, d) = self.ymd();
        format!("{y:04}{m:02}{d:02}")
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl FromStr for Date {
    type Err = String;

    fn from_str(s: &str) -> Result<Date, String> {
        Date::parse(s).ok_or_else(|| format!("invalid date \"{s}\" (expected YYYY-MM-DD)"))
    }
}

/// Parses a name server, `IP` or `IP:PORT` (`[V6]:PORT`); port 53 by
/// default.
pub fn parse_nameserver(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("\"{s}\" is not IP or IP:PORT"))
}

/// True for a name useradd(8) and systemd-sysusers accept for a system
/// account: lower-case letters, digits, `_` and `-`, starting with a
/// letter or `_`, at most 32 bytes.
pub fn is_account_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_arithmetic() {
        let cases = [
            ("1970-01-01", 0),
            ("2000-02-29", 11_016),
            ("2026-11-28", 20_785),
            ("9999-12-31", 2_932_896),
        ];
        for (text, days) in cases {
            let d = Date::parse(text).unwrap();
            assert_eq!(d.days, days, "{text}");
            assert_eq!(d.to_string(), text);
        }
        let d = Date::parse("2026-12-28").unwrap();
        assert_eq!(d.add_days(7).to_string(), "2027-01-04");
        assert_eq!(d.compact(), "20261228");
        assert_eq!(
            d.after(Duration::from_secs(7 * 86_400)).to_string(),
            "2027-01-04"
        );
        assert_eq!(d.after(Duration::from_secs(3600)).to_string(), "2026-12-29");
        assert_eq!(d.days_until(d.add_days(3)), 3);
        assert_eq!(
            Date::parse("2024-02-28").unwrap().add_days(1).to_string(),
            "2024-02-29"
        );
    }

    #[test]
    fn rejects_what_is_not_a_date() {
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "20261128",
            "2026-00-10",
            "+026-01-01",
            "0000-01-01",
        ] {
            assert!(Date::parse(bad).is_none(), "{bad}");
        }
        assert!("2025-02-29".parse::<Date>().is_err());
    }

    #[test]
    fn nameservers_and_account_names() {
        assert_eq!(parse_nameserver("127.0.0.1").unwrap().port(), 53);
        assert_eq!(parse_nameserver("127.0.0.1:5300").unwrap().port(), 5300);
        assert_eq!(parse_nameserver("[::1]:5300").unwrap().port(), 5300);
        assert!(parse_nameserver("ns.example").is_err());
        assert!(is_account_name("opendkim") && is_account_name("_dkim-1"));
        assert!(!is_account_name("Root") && !is_account_name("1x") && !is_account_name(""));
    }

    #[test]
    fn today_is_plausible() {
        let (y, _, _) = Date::today().ymd();
        assert!(y >= 2024);
    }
}
