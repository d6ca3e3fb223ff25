//! A token bucket per client address: `rate` requests per second with bursts up to `burst`.
//! The table is bounded: when it is full, buckets that have refilled are dropped, and if none
//! has, the whole table is reset (which only ever lets clients through, never locks them out).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use parking_lot::Mutex;

/// Most client addresses tracked at once.
const MAX_CLIENTS: usize = 100_000;

pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    pub(crate) fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate: rate.max(0.0),
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`; false if it has none left.
    pub(crate) fn allow(&self, ip: IpAddr) -> bool {
        self.check(ip).is_ok()
    }

    /// Takes one token for `ip`; if it has none left, how many whole seconds until it has one
    /// (what `Retry-After` says). A rate of zero never refills: then it says an hour.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let mut b = self.buckets.lock();
        if b.len() >= MAX_CLIENTS && !b.contains_key(&ip) {
            let (rate, burst) = (self.rate, self.burst);
            b.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
            if b.len() >= MAX_CLIENTS {
                b.clear();
            }
        }
        let (tokens, at) = b.entry(ip).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else if self.rate > 0.0 {
            Err((((1.0 - *tokens) / self.rate).ceil() as u64).clamp(1, 3600))
        } else {
            Err(3600)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refuses() {
        let r = RateLimiter::new(0.0, 3.0);
        let ip = IpAddr::from([1, 2, 3, 4]);
        assert!(r.allow(ip) && r.allow(ip) && r.allow(ip));
        assert!(!r.allow(ip));
        assert!(r.allow(IpAddr::from([1, 2, 3, 5])));
        assert_eq!(r.check(ip), Err(3600));
    }

    #[test]
    fn says_how_long_to_wait() {
        // 10 a minute: an empty bucket has its next token in 6 s.
        let r = RateLimiter::new(10.0 / 60.0, 1.0);
        let ip = IpAddr::from([1, 2, 3, 4]);
        assert_eq!(r.check(ip), Ok(()));
        assert_eq!(r.check(ip), Err(6));
        let fast = RateLimiter::new(50.0, 1.0);
        assert_eq!(fast.check(ip), Ok(()));
        assert_eq!(fast.check(ip), Err(1));
    }
}
