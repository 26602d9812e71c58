//! Waking the scheduler when the next event is due, to a fraction of a millisecond.
//!
//! tokio's timers count whole milliseconds: a deadline is rounded up to the next tick of the
//! timer wheel and the poller's timeout to a whole millisecond, so an event woken for with
//! `tokio::time::sleep_until` leaves on average about 1 ms and up to about 2 ms after it was due,
//! whatever the load (the publish-lateness target at speed 1 is a p99 of 2 ms). A thread of its
//! own ([`PreciseTimer`]) waits for the deadline on a condition variable (a futex timeout, tens of
//! microseconds late) and wakes the scheduler through a [`Notify`]. The scheduler still races it
//! with a tokio sleep for the same deadline, which wins under tokio's paused test clock (the
//! thread then fires later, harmlessly: at worst one extra look at the timeline).

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant as StdInstant;

use tokio::sync::Notify;
use tokio::time::Instant;

/// A timer thread for one waiter (the scheduler); stopped when dropped.
pub struct PreciseTimer {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    fired: Notify,
}

#[derive(Default)]
struct State {
    /// When to fire next (real time); `None` = nothing to wait for.
    deadline: Option<StdInstant>,
    stop: bool,
}

impl PreciseTimer {
    /// Starts the timer thread.
    pub fn start() -> PreciseTimer {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            fired: Notify::new(),
        });
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("customersim-wake".into())
            .spawn(move || run(&thread_shared))
            .expect("the timer thread starts");
        PreciseTimer { shared }
    }

    /// Waits until `deadline`, on tokio's clock as far as the wait's length goes (the thread
    /// waits the same length of real time).
    pub async fn sleep_until(&self, deadline: Instant) {
        let fired = self.shared.fired.notified();
        tokio::pin!(fired);
        fired.as_mut().enable();
        let wait = deadline.saturating_duration_since(Instant::now());
        {
            let mut state = self
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            state.deadline = Some(StdInstant::now() + wait);
        }
        self.shared.changed.notify_one();
        tokio::select! {
            () = fired => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

impl Drop for PreciseTimer {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stop = true;
        self.shared.changed.notify_one();
    }
}

/// The timer thread: waits for the latest deadline set, fires, waits for the next one.
fn run(shared: &Shared) {
    let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if state.stop {
            return;
        }
        state = match state.deadline {
            None => shared
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner),
            Some(deadline) => {
                let now = StdInstant::now();
                if now >= deadline {
                    state.deadline = None;
                    shared.fired.notify_waiters();
                    continue;
                }
                shared
                    .changed
                    .wait_timeout(state, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_at_the_deadline_and_not_before() {
        let timer = PreciseTimer::start();
        for wait_us in [300, 1_500, 5_000] {
            let started = Instant::now();
            timer
                .sleep_until(started + Duration::from_micros(wait_us))
                .await;
            assert!(started.elapsed() >= Duration::from_micros(wait_us));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_test_clock_is_not_held_up() {
        let timer = PreciseTimer::start();
        let started = Instant::now();
        // An hour on the paused clock passes at once (tokio's sleep wins the race).
        timer.sleep_until(started + Duration::from_secs(3600)).await;
        assert!(started.elapsed() >= Duration::from_secs(3600));
    }
}
