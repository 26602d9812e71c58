//! The simulated clock.
//!
//! Simulated time is milliseconds since the Unix epoch (`i64`), the `due_ms` of events. A clock
//! either follows the wall clock (scaled by `speed`, 1.0 = real time) or is *virtual*: it stands
//! still until the scheduler advances it to the next due event, so a simulated day runs in seconds
//! with historical timestamps. Sources never read the wall clock, only this one, which is what makes
//! a seeded run byte-identical at any speed.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The run's clock as plugins see it: read it, wait for it. Only the core moves it (through
/// [`ClockDriver`]).
#[derive(Clone, Debug)]
pub struct Clock(Arc<ClockInner>);

/// The side of the clock that moves a virtual clock forward; held by the core's scheduler.
#[derive(Clone, Debug)]
pub struct ClockDriver(Arc<ClockInner>);

#[derive(Debug)]
struct ClockInner {
    /// The simulated instant the run started at.
    origin_ms: i64,
    pace: Pace,
}

#[derive(Debug)]
enum Pace {
    /// Simulated time = origin + wall time elapsed since `wall_origin` × `speed`.
    Scaled { wall_origin: Instant, speed: f64 },
    /// Simulated time moves only when [`Clock::advance_to`] moves it.
    Virtual { now_ms: AtomicI64, advanced: Notify },
}

impl ClockDriver {
    /// A clock that runs `speed` simulated seconds per wall second from `origin_ms`.
    pub fn scaled(origin_ms: i64, speed: f64) -> ClockDriver {
        assert!(speed > 0.0 && speed.is_finite(), "speed must be positive");
        ClockDriver(Arc::new(ClockInner {
            origin_ms,
            pace: Pace::Scaled {
                wall_origin: Instant::now(),
                speed,
            },
        }))
    }

    /// A virtual clock standing at `origin_ms` until advanced.
    pub fn virtual_at(origin_ms: i64) -> ClockDriver {
        ClockDriver(Arc::new(ClockInner {
            origin_ms,
            pace: Pace::Virtual {
                now_ms: AtomicI64::new(origin_ms),
                advanced: Notify::new(),
            },
        }))
    }

    /// Moves a virtual clock forward to `at_ms` (never backward) and wakes what waits on it.
    /// Does nothing on a scaled clock.
    pub fn advance_to(&self, at_ms: i64) {
        if let Pace::Virtual { now_ms, advanced } = &self.0.pace
            && now_ms.fetch_max(at_ms, Ordering::AcqRel) < at_ms
        {
            advanced.notify_waiters();
        }
    }

    /// The read-only handle plugins get.
    pub fn clock(&self) -> Clock {
        Clock(self.0.clone())
    }
}

impl Clock {
    /// The simulated instant the run started at.
    pub fn origin_ms(&self) -> i64 {
        self.0.origin_ms
    }

    /// Whether this clock only moves when advanced (`speed: max`).
    pub fn is_virtual(&self) -> bool {
        matches!(self.0.pace, Pace::Virtual { .. })
    }

    /// Simulated seconds per wall second; `None` for a virtual clock.
    pub fn speed(&self) -> Option<f64> {
        match &self.0.pace {
            Pace::Scaled { speed, .. } => Some(*speed),
            Pace::Virtual { .. } => None,
        }
    }

    /// The current simulated instant.
    pub fn now_ms(&self) -> i64 {
        match &self.0.pace {
            Pace::Scaled { wall_origin, speed } => {
                // From whole nanoseconds: `as_secs_f64() * 1000.0` reads 1.001 s as 1000.99…
                // ms, one ms short of the instant `wall_deadline` woke the caller for, and a
                // scheduler woken for an event would find it not yet due and wake again at once.
                let elapsed = wall_origin.elapsed().as_nanos() as f64 * speed / 1_000_000.0;
                self.0.origin_ms + elapsed as i64
            }
            Pace::Virtual { now_ms, .. } => now_ms.load(Ordering::Acquire),
        }
    }

    /// The wall-clock instant at which simulated time reaches `at_ms` (`None` for a virtual clock).
    pub fn wall_deadline(&self, at_ms: i64) -> Option<Instant> {
        match &self.0.pace {
            Pace::Scaled { wall_origin, speed } => {
                // Rounded up to whole nanoseconds, so `now_ms` reads at least `at_ms` there.
                let simulated_ms = (at_ms - self.0.origin_ms).max(0) as f64;
                let wall_ns = (simulated_ms * 1_000_000.0 / speed).ceil().min(1e18);
                Some(*wall_origin + Duration::from_nanos(wall_ns as u64))
            }
            Pace::Virtual { .. } => None,
        }
    }

    /// Waits until simulated time reaches `at_ms`.
    pub async fn sleep_until(&self, at_ms: i64) {
        match &self.0.pace {
            Pace::Scaled { .. } => {
                if let Some(deadline) = self.wall_deadline(at_ms) {
                    tokio::time::sleep_until(deadline).await;
                }
            }
            Pace::Virtual { now_ms, advanced } => loop {
                let notified = advanced.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if now_ms.load(Ordering::Acquire) >= at_ms {
                    return;
                }
                notified.await;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn virtual_clock_moves_only_forward_and_wakes_sleepers() {
        let driver = ClockDriver::virtual_at(1_000);
        let clock = driver.clock();
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move {
                clock.sleep_until(5_000).await;
                clock.now_ms()
            })
        };
        tokio::task::yield_now().await;
        driver.advance_to(3_000);
        driver.advance_to(2_000);
        assert_eq!(clock.now_ms(), 3_000);
        driver.advance_to(6_000);
        assert_eq!(sleeper.await.unwrap(), 6_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_scaled_clock_reads_at_least_the_instant_it_was_woken_for() {
        for speed in [1.0, 60.0, 1.5, 0.3] {
            let clock = ClockDriver::scaled(0, speed).clock();
            for at_ms in [1, 2, 250, 1_001, 7_777, 3_600_017] {
                clock.sleep_until(at_ms).await;
                assert!(clock.now_ms() >= at_ms, "speed {speed}: {at_ms}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn scaled_clock_runs_speed_times_faster() {
        let clock = ClockDriver::scaled(0, 10.0).clock();
        tokio::time::advance(Duration::from_secs(2)).await;
        let now = clock.now_ms();
        assert!((20_000..20_100).contains(&now), "{now}");
    }
}
