//! Exponential backoff with jitter for retries.

use std::time::Duration;

use rand::Rng;

/// `delay(attempt) = min(max, base × factor^attempt)`, then spread by up to
/// ±`jitter` (a fraction) so that retries of many jobs do not arrive together.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Delay of the first retry. Defaults to 1 s.
    pub base: Duration,
    /// Growth per attempt. Defaults to 2.
    pub factor: f64,
    /// Largest delay before jitter. Defaults to 1 hour.
    pub max: Duration,
    /// Spread, as a fraction of the delay (0 = none, 0.25 = ±25%). Defaults to 0.25.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(3600),
            jitter: 0.25,
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry),
    /// without jitter.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let secs = self.base.as_secs_f64() * self.factor.max(1.0).powi(attempt.min(1000) as i32);
        let capped = secs.min(self.max.as_secs_f64());
        Duration::from_secs_f64(if capped.is_finite() {
            capped.max(0.0)
        } else {
            self.max.as_secs_f64()
        })
    }

    /// The delay before retry number `attempt`, with jitter drawn from `rng`.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let nominal = self.nominal(attempt).as_secs_f64();
        let j = self.jitter.clamp(0.0, 1.0);
        let factor = if j > 0.0 {
            rng.random_range(1.0 - j..=1.0 + j)
        } else {
            1.0
        };
        Duration::from_secs_f64((nominal * factor).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_secs(2),
            factor: 3.0,
            max: Duration::from_secs(100),
            jitter: 0.0,
        };
        assert_eq!(b.nominal(0), Duration::from_secs(2));
        assert_eq!(b.nominal(1), Duration::from_secs(6));
        assert_eq!(b.nominal(2), Duration::from_secs(18));
        assert_eq!(b.nominal(5), Duration::from_secs(100));
        assert_eq!(b.nominal(u32::MAX), Duration::from_secs(100));
    }

    #[test]
    fn jitter_stays_within_its_band_and_varies() {
        let b = Backoff {
            jitter: 0.25,
            ..Backoff::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let delays: Vec<f64> = (0..200)
            .map(|_| b.delay(3, &mut rng).as_secs_f64())
            .collect();
        assert!(
            delays.iter().all(|d| (6.0..=10.0).contains(d)),
            "{delays:?}"
        );
        let distinct = delays
            .iter()
            .map(|d| (d * 1000.0) as i64)
            .collect::<std::collections::HashSet<_>>();
        assert!(distinct.len() > 50);
    }
}
