//! Per-workspace ingestion rate limiting with `governor` (GCRA), sized from
//! the workspace's limits; a limiter is rebuilt when its limits change.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Rate limiters keyed by workspace.
#[derive(Debug, Default)]
pub(crate) struct IngestionLimiter {
    limiters: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    rate: f64,
    burst: u32,
    limiter: Arc<DefaultDirectRateLimiter>,
}

/// Why a request may not pass now.
#[derive(Debug, PartialEq)]
pub(crate) enum Denied {
    /// Retry after this long.
    RetryAfter(Duration),
    /// The request alone is larger than the burst: it can never pass whole.
    OverBurst,
}

impl IngestionLimiter {
    /// Takes `n` items from the workspace's budget, or says when to retry.
    pub(crate) fn check(&self, workspace_id: &str, rate: f64, burst: u32, n: u64) -> Result<(), Denied> {
        if n == 0 {
            return Ok(());
        }
        let limiter = {
            let mut map = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
            let entry = map.get(workspace_id).filter(|e| e.rate == rate && e.burst == burst);
            match entry {
                Some(e) => e.limiter.clone(),
                None => {
                    let limiter = Arc::new(RateLimiter::direct(quota(rate, burst)));
                    map.insert(workspace_id.to_owned(), Entry { rate, burst, limiter: limiter.clone() });
                    limiter
                }
            }
        };
        let Some(n) = u32::try_from(n).ok().and_then(NonZeroU32::new) else { return Err(Denied::OverBurst) };
        match limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Denied::RetryAfter(not_until.wait_time_from(DefaultClock::default().now()))),
            Err(_) => Err(Denied::OverBurst),
        }
    }
}

fn quota(rate: f64, burst: u32) -> Quota {
    let per_item =
        if rate > 0.0 { Duration::from_secs_f64(1.0 / rate) } else { Duration::from_secs(u64::from(u32::MAX)) };
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(per_item.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_limited_then_over_burst() {
        let l = IngestionLimiter::default();
        assert_eq!(l.check("ws", 1.0, 10, 10), Ok(()));
        match l.check("ws", 1.0, 10, 1) {
            Err(Denied::RetryAfter(d)) => assert!(d > Duration::ZERO && d <= Duration::from_secs(1)),
            other => panic!("{other:?}"),
        }
        assert_eq!(l.check("ws", 1.0, 10, 11), Err(Denied::OverBurst));
        // another workspace has its own budget
        assert_eq!(l.check("ws2", 1.0, 10, 10), Ok(()));
    }
}
