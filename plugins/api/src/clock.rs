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

/// Where a simulated clock starts and how it runs: what a shared timeline stores, so that every
/// instance of one simulation reads the same clock whatever its own config says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockOrigin {
    /// The simulated instant (ms since the epoch) the clock started at.
    pub start_ms: i64,
    /// Simulated seconds per wall second; `None` for a virtual clock (`speed: max`), which moves
    /// only with the events published.
    pub speed: Option<f64>,
    /// When the simulated time was `start_ms`, in µs since the Unix epoch on this host's wall
    /// clock. A virtual clock does not use it.
    pub wall_origin_us: i64,
}

impl ClockOrigin {
    /// The clock's driver: the scaled one reads the same simulated time as every other instance
    /// holding this origin, its run starting at the simulated now; the virtual one stands at
    /// `start_ms`.
    pub fn driver(&self) -> ClockDriver {
        match self.speed {
            None => ClockDriver::virtual_at(self.start_ms),
            Some(speed) => {
                // Anchored at this instant rather than at the origin: a monotonic `Instant` cannot
                // reach back before the host's boot, the wall clock can.
                let anchor = Instant::now();
                let elapsed_us = unix_now_us().saturating_sub(self.wall_origin_us).max(0);
                let now_ms = self.start_ms + (elapsed_us as f64 * speed / 1000.0) as i64;
                ClockDriver::scaled_at(now_ms, speed, anchor)
            }
        }
    }
}

/// This host's wall clock in µs since the Unix epoch.
pub fn unix_now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as i64)
}

impl ClockDriver {
    /// A clock that runs `speed` simulated seconds per wall second from `origin_ms`.
    pub fn scaled(origin_ms: i64, speed: f64) -> ClockDriver {
        ClockDriver::scaled_at(origin_ms, speed, Instant::now())
    }

    /// A clock that read `origin_ms` at `wall_origin` and runs `speed` simulated seconds per
    /// wall second.
    pub fn scaled_at(origin_ms: i64, speed: f64, wall_origin: Instant) -> ClockDriver {
        assert!(speed > 0.0 && speed.is_finite(), "speed must be positive");
        ClockDriver(Arc::new(ClockInner {
            origin_ms,
            pace: Pace::Scaled { wall_origin, speed },
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

    /// The current simulated instant in microseconds: [`Clock::now_ms`] with the microseconds a
    /// scaled clock has (a virtual one moves in whole milliseconds). For answers that carry them,
    /// as the original service's clock did.
    pub fn now_us(&self) -> i64 {
        match &self.0.pace {
            Pace::Scaled { wall_origin, speed } => {
                let elapsed = wall_origin.elapsed().as_nanos() as f64 * speed / 1_000.0;
                self.0.origin_ms.saturating_mul(1000) + elapsed as i64
            }
            Pace::Virtual { now_ms, .. } => now_ms.load(Ordering::Acquire).saturating_mul(1000),
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

    #[test]
    fn an_origin_gives_every_holder_the_same_scaled_time() {
        let started_us = unix_now_us() - 2_000_000;
        let origin = ClockOrigin {
            start_ms: 1_000_000,
            speed: Some(300.0),
            wall_origin_us: started_us,
        };
        let (a, b) = (origin.driver().clock(), origin.driver().clock());
        let (now_a, now_b) = (a.now_ms(), b.now_ms());
        // Two seconds ago at 300×: 600 s on (plus the moments the test takes).
        assert!((1_600_000..1_610_000).contains(&now_a), "{now_a}");
        assert!((now_a - now_b).abs() < 1_000, "{now_a} {now_b}");
        let stopped = ClockOrigin {
            speed: None,
            ..origin
        }
        .driver()
        .clock();
        assert!(stopped.is_virtual());
        assert_eq!(stopped.now_ms(), 1_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn scaled_clock_runs_speed_times_faster() {
        let clock = ClockDriver::scaled(0, 10.0).clock();
        tokio::time::advance(Duration::from_secs(2)).await;
        let now = clock.now_ms();
        assert!((20_000..20_100).contains(&now), "{now}");
    }
}
