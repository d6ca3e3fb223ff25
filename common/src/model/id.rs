//! Status ids that sort by creation time, so a directory listing of `/statuses/` is already a
//! timeline and two devices of one user rarely pick the same name.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use time::{Duration, OffsetDateTime};

use super::error::{shown, ModelError};
use super::path::FilePath;

/// The base32 alphabet of atproto TIDs, in ascending order so that ids sort as strings do.
const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// Length of an id in characters.
const LEN: usize = 13;

/// A status id in the style of an atproto TID, such as `3kq2nzxh4vk22`: 13 characters of
/// sortable base32 encoding a 63-bit number made of 53 bits of microseconds since the Unix epoch
/// and 10 bits of "clock id".
///
/// Ids compare in time order, both as values and as strings. [`StatusId::now`] picks a random
/// clock id once per process (so that two processes writing at the same microsecond still
/// differ) and never returns the same or a smaller id twice in one process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusId(u64);

impl StatusId {
    /// Largest timestamp an id holds: 2^53 - 1 microseconds, in the year 2255.
    pub const MAX_MICROS: u64 = (1 << 53) - 1;
    /// Largest clock id.
    pub const MAX_CLOCK: u16 = (1 << 10) - 1;

    /// A new id for the current time, larger than every id this process made before.
    pub fn now() -> StatusId {
        static LAST_MICROS: AtomicU64 = AtomicU64::new(0);
        static CLOCK: OnceLock<u16> = OnceLock::new();
        let clock = *CLOCK.get_or_init(|| rand::random::<u16>() & StatusId::MAX_CLOCK);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        // When the clock stands still or steps back, take the next microsecond instead, so ids
        // made in a tight loop still increase.
        let next = |last: u64| now.max(last.saturating_add(1)).min(StatusId::MAX_MICROS);
        let last = LAST_MICROS
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(next(last)))
            .unwrap_or_else(|last| last);
        StatusId((next(last) << 10) | u64::from(clock))
    }

    /// The id for a timestamp in microseconds since the Unix epoch and a clock id.
    pub fn from_parts(micros: u64, clock: u16) -> Result<StatusId, ModelError> {
        if micros > StatusId::MAX_MICROS {
            return Err(ModelError::InvalidStatusId {
                value: format!("micros {micros}"),
                reason: format!(
                    "the timestamp is over {} microseconds",
                    StatusId::MAX_MICROS
                ),
            });
        }
        if clock > StatusId::MAX_CLOCK {
            return Err(ModelError::InvalidStatusId {
                value: format!("clock {clock}"),
                reason: format!("the clock id is over {}", StatusId::MAX_CLOCK),
            });
        }
        Ok(StatusId((micros << 10) | u64::from(clock)))
    }

    /// Microseconds since the Unix epoch.
    pub fn timestamp_micros(&self) -> u64 {
        self.0 >> 10
    }

    /// The clock id.
    pub fn clock(&self) -> u16 {
        // The mask keeps 10 bits, so the conversion cannot fail.
        u16::try_from(self.0 & u64::from(StatusId::MAX_CLOCK)).unwrap_or(StatusId::MAX_CLOCK)
    }

    /// The time the id was made, in UTC.
    pub fn timestamp(&self) -> OffsetDateTime {
        let micros = i64::try_from(self.timestamp_micros()).unwrap_or(i64::MAX);
        OffsetDateTime::UNIX_EPOCH.saturating_add(Duration::microseconds(micros))
    }

    /// Where the status with this id lives: `/statuses/<id>.json`.
    pub fn path(&self) -> FilePath {
        FilePath::from_trusted(format!("/statuses/{self}.json"))
    }

    /// The id of a status path `/statuses/<id>.json`, if it is one.
    pub(crate) fn from_path(path: &FilePath) -> Option<StatusId> {
        let mut segments = path.segments();
        match (segments.next(), segments.next(), segments.next()) {
            (Some("statuses"), Some(name), None) => name.strip_suffix(".json")?.parse().ok(),
            _ => None,
        }
    }
}

impl FromStr for StatusId {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<StatusId, ModelError> {
        let refuse = |reason: &str| ModelError::InvalidStatusId {
            value: shown(s),
            reason: reason.to_owned(),
        };
        if s.len() != LEN {
            return Err(refuse(
                "expected 13 characters of 234567abcdefghijklmnopqrstuvwxyz",
            ));
        }
        let mut value = 0u64;
        for (index, byte) in s.bytes().enumerate() {
            let Some(digit) = ALPHABET.iter().position(|&a| a == byte) else {
                return Err(refuse(
                    "expected only the characters 234567abcdefghijklmnopqrstuvwxyz",
                ));
            };
            // The first character holds the top 4 bits of 64; the highest must be 0.
            if index == 0 && digit >= 8 {
                return Err(refuse("the first character must be one of 234567ab"));
            }
            value = (value << 5) | digit as u64;
        }
        Ok(StatusId(value))
    }
}

impl fmt::Display for StatusId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; LEN];
        for (index, slot) in out.iter_mut().enumerate() {
            let shift = 5 * (LEN - 1 - index);
            *slot = ALPHABET[((self.0 >> shift) & 31) as usize];
        }
        // Every byte comes from the ASCII alphabet.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for StatusId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusId({self})")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn check(input: &str, expected: Result<(u64, u16), &str>) {
        match (input.parse::<StatusId>(), expected) {
            (Ok(id), Ok((micros, clock))) => {
                assert_eq!((id.timestamp_micros(), id.clock()), (micros, clock));
                assert_eq!(id.to_string(), input);
            }
            (Err(err), Err(fragment)) => {
                let message = err.to_string();
                assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
            }
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parses_known_ids() {
        check("2222222222222", Ok((0, 0)));
        check("2222222222223", Ok((0, 1)));
        check("22222222222zz", Ok((0, 1023)));
        check("2222222222322", Ok((1, 0)));
        check(
            "bzzzzzzzzzzzz",
            Ok((StatusId::MAX_MICROS, StatusId::MAX_CLOCK)),
        );
        // The example TID of the atproto docs decodes to mid-2023, when they were written.
        check("3jzfcijpj2z2a", Ok((1_688_137_381_887_007, 6)));
    }

    #[test]
    fn refuses_malformed_ids() {
        check("", Err("expected 13 characters"));
        check("222222222222", Err("expected 13 characters"));
        check("22222222222222", Err("expected 13 characters"));
        check("222222222222A", Err("expected only the characters"));
        check("2222222222221", Err("expected only the characters"));
        check("222222222222é", Err("expected 13 characters"));
        check(
            "c222222222222",
            Err("first character must be one of 234567ab"),
        );
        check(
            "zzzzzzzzzzzzz",
            Err("first character must be one of 234567ab"),
        );
        check(&"2".repeat(1_000_000), Err("expected 13 characters"));
    }

    #[test]
    fn from_parts_checks_ranges() {
        assert!(StatusId::from_parts(StatusId::MAX_MICROS, StatusId::MAX_CLOCK).is_ok());
        let err = StatusId::from_parts(StatusId::MAX_MICROS + 1, 0).unwrap_err();
        assert!(err.to_string().contains("timestamp is over"), "{err}");
        let err = StatusId::from_parts(0, 1024).unwrap_err();
        assert!(err.to_string().contains("clock id is over 1023"), "{err}");
    }

    #[test]
    fn now_is_recent_and_strictly_increasing() {
        let mut last = StatusId::now();
        let wall = OffsetDateTime::now_utc();
        assert!((last.timestamp() - wall).abs() < Duration::seconds(60));
        for _ in 0..10_000 {
            let next = StatusId::now();
            assert!(next > last, "{next:?} after {last:?}");
            assert!(next.to_string() > last.to_string());
            last = next;
        }
    }

    #[test]
    fn now_is_strictly_increasing_across_threads() {
        let handles: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..2_000).map(|_| StatusId::now()).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<StatusId> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count, "two threads got the same id");
    }

    #[test]
    fn path_and_from_path() {
        let id = StatusId::from_parts(1_700_000_000_000_000, 7).unwrap();
        assert_eq!(id.path().as_str(), format!("/statuses/{id}.json"));
        assert_eq!(StatusId::from_path(&id.path()), Some(id));
        assert_eq!(StatusId::from_path(&"/likes/x.json".parse().unwrap()), None);
        assert_eq!(
            StatusId::from_path(&"/statuses/nope.json".parse().unwrap()),
            None
        );
    }

    #[test]
    fn timestamp_reads_back_the_time() {
        let id = StatusId::from_parts(1_700_000_000_123_456, 0).unwrap();
        assert_eq!(
            id.timestamp().unix_timestamp_nanos(),
            1_700_000_000_123_456_000
        );
    }

    proptest! {
        #[test]
        fn string_round_trip(micros in 0..=StatusId::MAX_MICROS, clock in 0..=StatusId::MAX_CLOCK) {
            let id = StatusId::from_parts(micros, clock).unwrap();
            let text = id.to_string();
            prop_assert_eq!(text.len(), 13);
            prop_assert_eq!(text.parse::<StatusId>().unwrap(), id);
            prop_assert_eq!(id.timestamp_micros(), micros);
            prop_assert_eq!(id.clock(), clock);
        }

        #[test]
        fn order_matches_time_and_strings(
            a in (0..=StatusId::MAX_MICROS, 0..=StatusId::MAX_CLOCK),
            b in (0..=StatusId::MAX_MICROS, 0..=StatusId::MAX_CLOCK),
        ) {
            let x = StatusId::from_parts(a.0, a.1).unwrap();
            let y = StatusId::from_parts(b.0, b.1).unwrap();
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            prop_assert_eq!(x.to_string().cmp(&y.to_string()), a.cmp(&b));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = s.parse::<StatusId>();
        }
    }
}
