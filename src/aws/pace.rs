//! How many requests to keep in flight: enough to hide the round trip to the endpoint, no
//! more. Every client carries one `Meter` (an SDK interceptor) that notes how long each
//! attempt waited for its answer's headers, and each answer that says "slow down" (HTTP 429
//! or 503). Only quiet attempts are timed: those sent while at most one other was in
//! flight, since an answer that waited behind tether's own requests at a busy endpoint
//! would pass for distance and feed on itself (more in flight, longer waits, more in
//! flight). The smallest quiet round trip is the endpoint's distance; the number in flight
//! grows with it, from the count measured best on loopback, and halves for each throttled
//! answer. A [`Gate`] admits work while fewer than that many are in flight, asking anew
//! at each entry, so a throttled answer slows what follows at once. A plan's first call is
//! made alone, to time it quietly (`planning`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// A round trip no longer than a near endpoint's: loopback moto answers within it, and the
/// base counts were measured best there (bench/RESULTS.md).
const NEAR: Duration = Duration::from_millis(10);

/// Quiet answers seen before the distance is trusted.
const SAMPLES: u32 = 1;

/// What one client's calls have shown of the endpoint.
#[derive(Debug, Default)]
pub struct Pace {
    /// The smallest round trip seen, in microseconds (0: none yet).
    fastest_us: AtomicU64,
    /// Answers timed.
    samples: AtomicU32,
    /// Attempts sent and not yet answered.
    open: AtomicU32,
    /// Answers that said "slow down".
    throttled: AtomicU32,
    /// The most requests in flight the operator allows (0: no limit of theirs).
    limit: AtomicU32,
}

impl Pace {
    /// The smallest round trip seen so far.
    pub fn round_trip(&self) -> Option<Duration> {
        if self.samples.load(Ordering::Relaxed) < SAMPLES {
            return None;
        }
        match self.fastest_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    fn observe(&self, took: Duration) {
        self.samples.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self
            .fastest_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                (old == 0 || us < old).then_some(us)
            });
    }

    /// Sets the most requests in flight at once (`TETHER_MAX_IN_FLIGHT`).
    pub fn limit(&self, most: u32) {
        self.limit.store(most, Ordering::Relaxed);
    }

    /// How many requests to keep in flight where `base` suits a near endpoint, at most
    /// `most`: `in_flight` of what was seen so far.
    pub fn in_flight(&self, base: usize, most: usize) -> usize {
        let limit = match self.limit.load(Ordering::Relaxed) {
            0 => most,
            limit => most.min(usize::try_from(limit).unwrap_or(most)),
        };
        in_flight(
            base,
            limit,
            self.round_trip(),
            self.throttled.load(Ordering::Relaxed),
        )
    }
}

/// Admits work while fewer pieces than the pace allows are under way (`Cloud::gate`).
#[derive(Debug)]
pub struct Gate {
    pace: Arc<Pace>,
    base: usize,
    most: usize,
    open: std::sync::Mutex<usize>,
    left: tokio::sync::Notify,
}

/// One piece of work admitted by a gate; it leaves when dropped.
#[derive(Debug)]
pub struct Pass<'a>(&'a Gate);

impl Gate {
    pub fn new(pace: Arc<Pace>, base: usize, most: usize) -> Gate {
        Gate {
            pace,
            base,
            most,
            open: std::sync::Mutex::new(0),
            left: tokio::sync::Notify::new(),
        }
    }

    /// Waits until fewer pieces are under way than the pace allows now.
    pub async fn enter(&self) -> Pass<'_> {
        loop {
            let left = self.left.notified();
            {
                let mut open = self.open.lock().expect("gate lock");
                if *open < self.pace.in_flight(self.base, self.most) {
                    *open += 1;
                    return Pass(self);
                }
            }
            left.await;
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        *self.0.open.lock().expect("gate lock") -= 1;
        self.0.left.notify_waiters();
    }
}

/// `base` requests in flight for a round trip of `NEAR` or less, proportionally more for a
/// longer one, halved for each of `throttled` answers; between 1 and `most`.
pub fn in_flight(base: usize, most: usize, round_trip: Option<Duration>, throttled: u32) -> usize {
    let distance = round_trip.map_or(1.0, |rtt| (rtt.as_secs_f64() / NEAR.as_secs_f64()).max(1.0));
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let wanted = (base as f64 * distance).ceil() as usize;
    (wanted >> throttled.min(16)).clamp(1, most.max(1))
}

/// When an attempt was sent, whether it was quiet, and whether it is still open.
#[derive(Clone, Copy, Debug)]
struct SentAt {
    at: Instant,
    quiet: bool,
    open: bool,
}

impl Storable for SentAt {
    type Storer = StoreReplace<Self>;
}

/// The interceptor that feeds a `Pace`.
#[derive(Debug, Clone)]
pub struct Meter(pub Arc<Pace>);

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "tether-pace"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let others = self.0.open.fetch_add(1, Ordering::Relaxed);
        cfg.interceptor_state().store_put(SentAt {
            at: Instant::now(),
            quiet: others <= 1,
            open: true,
        });
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let status = context.response().status().as_u16();
        if status == 429 || status == 503 {
            self.0.throttled.fetch_add(1, Ordering::Relaxed);
        } else if let Some(sent) = cfg.load::<SentAt>().filter(|sent| sent.quiet) {
            // A throttled answer's time says nothing of the distance.
            self.0.observe(sent.at.elapsed());
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Answered or failed: no longer in flight.
        if let Some(sent) = cfg.load::<SentAt>().copied().filter(|sent| sent.open) {
            self.0.open.fetch_sub(1, Ordering::Relaxed);
            cfg.interceptor_state().store_put(SentAt {
                open: false,
                ..sent
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_in_flight_follow_the_distance_and_halve_when_throttled() {
        let ms = Duration::from_millis;
        // Near (loopback) or unknown: the base, unchanged.
        assert_eq!(in_flight(8, 64, None, 0), 8);
        assert_eq!(in_flight(8, 64, Some(ms(3)), 0), 8);
        assert_eq!(in_flight(8, 64, Some(ms(10)), 0), 8);
        // 40 ms away: four times as many, within the cap.
        assert_eq!(in_flight(8, 64, Some(ms(40)), 0), 32);
        assert_eq!(in_flight(8, 16, Some(ms(40)), 0), 16);
        assert_eq!(in_flight(8, 256, Some(ms(80)), 0), 64);
        // Each throttled answer halves it, never below one.
        assert_eq!(in_flight(8, 256, Some(ms(40)), 1), 16);
        assert_eq!(in_flight(8, 256, Some(ms(40)), 9), 1);
    }

    #[tokio::test]
    async fn a_gate_admits_what_the_pace_allows_and_lets_the_next_in_as_one_leaves() {
        let pace = Arc::new(Pace::default());
        let gate = Gate::new(Arc::clone(&pace), 2, 8);
        let first = gate.enter().await;
        let _second = gate.enter().await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), gate.enter()).await;
        assert!(waiting.is_err(), "a third waits while two are in");
        // A throttled answer halves what is allowed: one in, not two.
        pace.throttled.fetch_add(1, Ordering::Relaxed);
        drop(first);
        let waiting = tokio::time::timeout(Duration::from_millis(50), gate.enter()).await;
        assert!(
            waiting.is_err(),
            "one is in, and one is all a throttled pace allows"
        );
    }

    #[test]
    fn the_fastest_round_trip_is_kept_and_the_operator_caps_it() {
        let pace = Pace::default();
        assert_eq!(pace.round_trip(), None, "no answer is no distance");
        assert_eq!(pace.in_flight(8, 256), 8);
        pace.observe(Duration::from_millis(50));
        pace.observe(Duration::from_millis(40));
        pace.observe(Duration::from_millis(90));
        assert_eq!(pace.round_trip(), Some(Duration::from_millis(40)));
        assert_eq!(pace.in_flight(8, 256), 32);
        pace.limit(16);
        assert_eq!(pace.in_flight(8, 256), 16);
    }
}
