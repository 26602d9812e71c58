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

use customersim_plugin_api::tokio::sync::Notify;
use customersim_plugin_api::tokio::time::{Instant, timeout_at};

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
            }),
            changed: Notify::new(),
        }
    }

    /// Takes between 1 and `wanted` permits, waiting while the window is full (until `deadline`,
    /// if one is given).
    pub async fn acquire(
        &self,
        wanted: usize,
        deadline: Option<Instant>,
    ) -> Result<usize, Blocked> {
        self.wait_for(deadline, |state| {
            let free = state.window.saturating_sub(state.outstanding);
            if free == 0 {
                return None;
            }
            let taken = free.min(wanted.max(1));
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
        {
            let mut state = self.state.lock().expect("gate lock");
            state.outstanding = state.outstanding.saturating_sub(count);
        }
        self.changed.notify_waiters();
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
            (state.outstanding == 0).then_some(())
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
    async fn idle_once_everything_is_delivered() {
        let gate = Gate::new(10);
        gate.acquire(4, None).await.unwrap();
        gate.release(4);
        assert_eq!(gate.wait_idle(Duration::from_millis(10)).await, Ok(()));
    }
}
