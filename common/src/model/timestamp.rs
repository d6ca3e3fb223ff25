//! `createdAt` times: parsed from any RFC 3339 form a peer writes and kept in one canonical form
//! (UTC, milliseconds, like JavaScript's `toISOString`), so times compare equal exactly when their
//! strings do.

use std::fmt;
use std::str::FromStr;

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::error::{shown, ModelError};

/// Longest timestamp string read, in bytes; RFC 3339 needs 35 at most with nanoseconds.
const MAX_TIMESTAMP_BYTES: usize = 64;

/// A point in time between the years 0000 and 9999, at millisecond precision, written as
/// `2024-05-01T12:00:00.000Z`.
///
/// Parsing accepts any RFC 3339 timestamp (any offset, any number of fraction digits) and
/// normalizes it: converted to UTC and truncated to the millisecond.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::truncated(OffsetDateTime::now_utc())
    }

    /// The time `millis` milliseconds after the Unix epoch (negative for before).
    pub fn from_unix_millis(millis: i64) -> Result<Timestamp, ModelError> {
        let refuse = || ModelError::InvalidTimestamp {
            value: format!("{millis} ms after the Unix epoch"),
            reason: "it is outside the years 0000 to 9999".to_owned(),
        };
        let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .map_err(|_| refuse())?;
        Timestamp::from_datetime(time).ok_or_else(refuse)
    }

    /// Milliseconds since the Unix epoch (negative for before).
    pub fn unix_millis(&self) -> i64 {
        // Years 0000 to 9999 span about 3.2e14 ms, well within i64.
        i64::try_from(self.0.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }

    /// The time as a `time` value, in UTC.
    pub fn to_datetime(&self) -> OffsetDateTime {
        self.0
    }

    fn from_datetime(time: OffsetDateTime) -> Option<Timestamp> {
        let utc = time.checked_to_offset(UtcOffset::UTC)?;
        (0..=9999)
            .contains(&utc.year())
            .then(|| Timestamp::truncated(utc))
    }

    fn truncated(utc: OffsetDateTime) -> Timestamp {
        Timestamp(utc.replace_millisecond(utc.millisecond()).unwrap_or(utc))
    }
}

impl FromStr for Timestamp {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Timestamp, ModelError> {
        let refuse = |reason: &str| ModelError::InvalidTimestamp {
            value: shown(s),
            reason: reason.to_owned(),
        };
        if s.len() > MAX_TIMESTAMP_BYTES {
            return Err(refuse("it is too long for an RFC 3339 timestamp"));
        }
        let time = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
            refuse("expected an RFC 3339 timestamp such as 2024-05-01T12:00:00.000Z")
        })?;
        Timestamp::from_datetime(time)
            .ok_or_else(|| refuse("it is outside the years 0000 to 9999 in UTC"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn check(input: &str, expected: Result<&str, &str>) {
        match (input.parse::<Timestamp>(), expected) {
            (Ok(time), Ok(want)) => assert_eq!(time.to_string(), want),
            (Err(err), Err(fragment)) => {
                let message = err.to_string();
                assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
            }
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn normalizes_to_utc_milliseconds() {
        check("2024-05-01T12:00:00Z", Ok("2024-05-01T12:00:00.000Z"));
        check("2024-05-01T12:00:00.000Z", Ok("2024-05-01T12:00:00.000Z"));
        check(
            "2024-05-01T12:00:00.123456789Z",
            Ok("2024-05-01T12:00:00.123Z"),
        );
        check("2024-05-01T14:30:00+02:30", Ok("2024-05-01T12:00:00.000Z"));
        check("2024-05-01T00:00:00-05:00", Ok("2024-05-01T05:00:00.000Z"));
        check("0000-01-01T00:00:00Z", Ok("0000-01-01T00:00:00.000Z"));
        check("9999-12-31T23:59:59.999Z", Ok("9999-12-31T23:59:59.999Z"));
    }

    #[test]
    fn refuses_other_forms() {
        check("", Err("expected an RFC 3339 timestamp"));
        check("yesterday", Err("expected an RFC 3339 timestamp"));
        check("2024-05-01", Err("expected an RFC 3339 timestamp"));
        check("2024-05-01 12:00:00", Err("expected an RFC 3339 timestamp"));
        check(
            "2024-02-30T12:00:00Z",
            Err("expected an RFC 3339 timestamp"),
        );
        check("2024-05-01T12:00:00", Err("expected an RFC 3339 timestamp"));
        check("1714564800", Err("expected an RFC 3339 timestamp"));
        check(
            "0000-01-01T00:00:00+01:00",
            Err("outside the years 0000 to 9999"),
        );
        check(
            "9999-12-31T23:00:00-02:00",
            Err("outside the years 0000 to 9999"),
        );
        check(
            &format!("2024-05-01T12:00:00.{}Z", "1".repeat(100)),
            Err("too long"),
        );
        check(&"9".repeat(1_000_000), Err("too long"));
    }

    #[test]
    fn unix_millis_round_trip() {
        let time = Timestamp::from_unix_millis(1_714_564_800_123).unwrap();
        assert_eq!(time.to_string(), "2024-05-01T12:00:00.123Z");
        assert_eq!(time.unix_millis(), 1_714_564_800_123);
        assert!(Timestamp::from_unix_millis(i64::MAX).is_err());
        assert!(Timestamp::from_unix_millis(-62_167_219_200_001).is_err());
        assert!(Timestamp::from_unix_millis(-62_167_219_200_000).is_ok());
    }

    #[test]
    fn now_is_canonical() {
        let now = Timestamp::now();
        assert_eq!(now.to_string().parse::<Timestamp>().unwrap(), now);
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(millis in -62_167_219_200_000i64..253_402_300_800_000) {
            let time = Timestamp::from_unix_millis(millis).unwrap();
            prop_assert_eq!(time.to_string().parse::<Timestamp>().unwrap(), time);
            prop_assert_eq!(time.unix_millis(), millis);
        }
    }
}
