//! The sink's bounded buffer: how many accepted events are not delivered yet.
//!
//! An event counts from the moment [`crate::MqttSink::publish`] hands it to the MQTT client until
//! it is delivered: written to the socket at QoS 0, acknowledged by the broker (PUBACK) at QoS 1,
//! completed (PUBCOMP) at QoS 2. `publish` waits while the window is full, which is the
//! back-pressure the scheduler feels when the broker is slow or away. Keeping every undelivered
//! QoS ≥ 1 event inside rumqttc's in-flight window also means that after a reconnect each one
//! gets its packet id back and none can collide with another (see `link.rs`).

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::{Instant, timeout_at};

/// Counts undelivered events against a window; fails for good on a permanent error.
#[derive(Debug)]
pub struct Gate {
    state: Mutex<GateState>,
    changed: Notify,
}

#[derive(Debug)]
struct GateState {
    /// Events accepted and not delivered yet.
    outstanding: usize,
    /// How many may be outstanding at once.
    window: usize,
    /// Set once the connection failed for good; every wait returns it from then on.
    failed: Option<String>,
    /// The free room a waiter needs before it is worth waking (the smallest need of those
    /// waiting); `None` when nobody waits. Waking the publisher for every acknowledgement of a
    /// full window would cost a thread wake-up per message.
    wake_at_free: Option<usize>,
}

impl GateState {
    fn free(&self) -> usize {
        self.window.saturating_sub(self.outstanding)
    }

    /// Wakes waiters once at least `needed` is free.
    fn wake_at(&mut self, needed: usize) {
        self.wake_at_free = Some(self.wake_at_free.map_or(needed, |other| other.min(needed)));
    }
}

/// Why a wait on the gate ended without the permits it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// The connection failed for good.
    Failed(String),
    /// The deadline passed first.
    TimedOut { outstanding: usize },
}

impl Gate {
    /// A gate that lets `window` events be outstanding.
    pub fn new(window: usize) -> Gate {
        Gate {
            state: Mutex::new(GateState {
                outstanding: 0,
                window: window.max(1),
                failed: None,
                wake_at_free: None,
            }),
            changed: Notify::new(),
        }
    }

    /// Takes between 1 and `wanted` permits, waiting while the window is full (until `deadline`,
    /// if one is given). Once it had to wait, it waits for an eighth of the window (or `wanted`)
    /// to be free, so a full window costs one wake-up per many messages, not one per message.
    pub async fn acquire(
        &self,
        wanted: usize,
        deadline: Option<Instant>,
    ) -> Result<usize, Blocked> {
        let wanted = wanted.max(1);
        let mut waited = false;
        self.wait_for(deadline, |state| {
            let worth_waking = wanted.min((state.window / 8).max(1));
            let free = state.free();
            if free < if waited { worth_waking } else { 1 } {
                waited = true;
                state.wake_at(worth_waking);
                return None;
            }
            let taken = free.min(wanted);
            state.outstanding += taken;
            Some(taken)
        })
        .await
    }

    /// Gives back permits of events that were not handed over after all (the client is gone).
    pub fn unacquire(&self, count: usize) {
        self.release(count);
    }

    /// Records `count` delivered events.
    pub fn release(&self, count: usize) {
        if count == 0 {
            return;
        }
        let wake = {
            let mut state = self.state.lock().expect("gate lock");
            state.outstanding = state.outstanding.saturating_sub(count);
            let wake = state
                .wake_at_free
                .is_some_and(|needed| state.free() >= needed);
            if wake {
                state.wake_at_free = None;
            }
            wake
        };
        if wake {
            self.changed.notify_waiters();
        }
    }

    /// Changes the window (an MQTT v5 broker may announce a lower receive maximum).
    pub fn set_window(&self, window: usize) {
        self.state.lock().expect("gate lock").window = window.max(1);
        self.changed.notify_waiters();
    }

    /// Fails every current and future wait with `why` (first failure wins).
    pub fn fail(&self, why: String) {
        {
            let mut state = self.state.lock().expect("gate lock");
            state.failed.get_or_insert(why);
        }
        self.changed.notify_waiters();
    }

    /// The permanent failure, if there was one.
    pub fn failure(&self) -> Option<String> {
        self.state.lock().expect("gate lock").failed.clone()
    }

    /// Events accepted and not delivered yet.
    #[cfg(test)]
    pub fn outstanding(&self) -> usize {
        self.state.lock().expect("gate lock").outstanding
    }

    /// Waits until every accepted event is delivered, at most `limit`.
    pub async fn wait_idle(&self, limit: Duration) -> Result<(), Blocked> {
        self.wait_for(Some(Instant::now() + limit), |state| {
            if state.outstanding == 0 {
                return Some(());
            }
            // All of the window free means nothing outstanding.
            let window = state.window;
            state.wake_at(window);
            None
        })
        .await
    }

    async fn wait_for<T>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&mut GateState) -> Option<T>,
    ) -> Result<T, Blocked> {
        loop {
            let notified = self.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let outstanding = {
                let mut state = self.state.lock().expect("gate lock");
                if let Some(why) = &state.failed {
                    return Err(Blocked::Failed(why.clone()));
                }
                if let Some(value) = ready(&mut state) {
                    return Ok(value);
                }
                state.outstanding
            };
            match deadline {
                Some(deadline) => {
                    if timeout_at(deadline, notified).await.is_err() {
                        return Err(Blocked::TimedOut { outstanding });
                    }
                }
                None => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn waits_while_full_and_resumes_on_release() {
        let gate = Arc::new(Gate::new(3));
        assert_eq!(gate.acquire(2, None).await, Ok(2));
        assert_eq!(gate.acquire(5, None).await, Ok(1), "only what is free");
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.acquire(4, None).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "a full window blocks");
        gate.release(2);
        assert_eq!(waiter.await.unwrap(), Ok(2));
        assert_eq!(gate.outstanding(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_and_failures_end_waits() {
        let gate = Gate::new(1);
        gate.acquire(1, None).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            gate.acquire(1, Some(deadline)).await,
            Err(Blocked::TimedOut { outstanding: 1 })
        );
        assert_eq!(
            gate.wait_idle(Duration::from_secs(1)).await,
            Err(Blocked::TimedOut { outstanding: 1 })
        );
        gate.fail("not authorized".into());
        gate.fail("second".into());
        assert_eq!(
            gate.acquire(1, None).await,
            Err(Blocked::Failed("not authorized".into()))
        );
        gate.release(1);
        assert_eq!(gate.outstanding(), 0);
    }

    #[tokio::test]
    async fn a_full_window_wakes_the_publisher_once_an_eighth_is_free() {
        let gate = Arc::new(Gate::new(80));
        assert_eq!(gate.acquire(100, None).await, Ok(80));
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.acquire(100, None).await })
        };
        tokio::task::yield_now().await;
        for _ in 0..9 {
            gate.release(1);
            tokio::task::yield_now().await;
        }
        assert!(
            !waiter.is_finished(),
            "9 free of 80: not worth a wake-up yet"
        );
        gate.release(1);
        assert_eq!(waiter.await.unwrap(), Ok(10));
    }

    #[tokio::test]
    async fn idle_once_everything_is_delivered() {
        let gate = Gate::new(10);
        gate.acquire(4, None).await.unwrap();
        gate.release(4);
        assert_eq!(gate.wait_idle(Duration::from_millis(10)).await, Ok(()));
    }
}
