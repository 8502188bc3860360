//! Request-rate limits: a token bucket per WebSocket connection (owned by the connection's
//! actor) and one per source address (shared by the gateway's workers). Time is an input, so
//! the buckets are tested without sleeping.
//!
//! Over the limit a request is answered with a Janus error (429) and the connection stays
//! open: a client that retries later recovers, and nothing it sent is silently dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// At most this many source addresses are tracked; when full, buckets that have refilled
/// (idle addresses) are forgotten first, and if none has, the new address is let through
/// untracked rather than growing the table without bound.
const MAX_ADDRESSES: usize = 100_000;

/// `rate` requests per second, bursts of twice as many.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(rate: u32, now: Instant) -> Self {
        Self { tokens: burst(rate), last: now }
    }

    /// Takes one token if there is one.
    pub fn allow(&mut self, rate: u32, now: Instant) -> bool {
        if rate == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(burst(rate));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn full(&self, rate: u32, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * f64::from(rate) >= burst(rate)
    }
}

fn burst(rate: u32) -> f64 {
    2.0 * f64::from(rate)
}

/// The per-address buckets. The lock is held for one table lookup (signalling only, never
/// on the media path).
pub struct AddressLimits {
    rate: u32,
    table: Mutex<HashMap<IpAddr, Bucket>>,
}

impl AddressLimits {
    pub fn new(rate: u32) -> Self {
        Self { rate, table: Mutex::new(HashMap::new()) }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if !t.contains_key(&ip) && t.len() >= MAX_ADDRESSES {
            let rate = self.rate;
            t.retain(|_, b| !b.full(rate, now));
            if t.len() >= MAX_ADDRESSES {
                return true;
            }
        }
        t.entry(ip).or_insert_with(|| Bucket::new(self.rate, now)).allow(self.rate, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_lets_a_burst_through_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10, t0);
        assert_eq!((0..25).filter(|_| b.allow(10, t0)).count(), 20, "a burst of twice the rate");
        assert!(!b.allow(10, t0 + Duration::from_millis(50)), "half a token after 50 ms");
        assert!(b.allow(10, t0 + Duration::from_millis(100)), "one token after 100 ms");
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..25).filter(|_| b.allow(10, later)).count(), 20, "refills up to the burst, no more");
        assert!((0..1000).all(|_| b.allow(0, later)), "0 is no limit");
    }

    #[test]
    fn addresses_are_limited_apart() {
        let t0 = Instant::now();
        let l = AddressLimits::new(1);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(l.allow(a, t0) && l.allow(a, t0));
        assert!(!l.allow(a, t0), "a's burst is spent");
        assert!(l.allow(b, t0), "b has its own");
        assert!(l.allow(a, t0 + Duration::from_secs(1)));
    }
}
