//! `GET /state` answers, bounded twice: one answer lists at most `state_limit` shoppers (the
//! first by id; `truncated` says when some were left out), and all answers still being sent
//! share one memory budget, [`STATE_BUDGET_BYTES`].
//!
//! An answer is built at most once per [`FRAME_INTERVAL`] and shared by every client that asks
//! meanwhile (the clients get references to the same bytes). Its bytes count against the budget
//! until the last client is done with them (written, or the connection gone). When the budget is
//! spent, by clients that do not read their answers, a request gets the newest answer already
//! built instead of a new one: clients that never read cost the process a bounded amount, and
//! the others still get an answer (its `clock_ms` says how old it is).

use std::sync::Arc;

use axum::body::Bytes;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::frame::{FRAME_INTERVAL, View};

/// Bytes of `/state` answers held at once, all clients together: 16 MiB.
pub const STATE_BUDGET_BYTES: usize = 16 << 20;

/// The `/state` answers of one view.
pub struct StateAnswers {
    /// Most shoppers one answer lists.
    limit: usize,
    budget: Arc<Semaphore>,
    /// The newest answer and when it was built; the lock also makes building one at a time.
    latest: Mutex<Option<(Instant, Bytes)>>,
}

impl StateAnswers {
    /// Answers listing at most `limit` shoppers, within [`STATE_BUDGET_BYTES`].
    pub fn new(limit: usize) -> StateAnswers {
        StateAnswers::with_budget(limit, STATE_BUDGET_BYTES)
    }

    fn with_budget(limit: usize, budget_bytes: usize) -> StateAnswers {
        StateAnswers {
            limit,
            budget: Arc::new(Semaphore::new(budget_bytes)),
            latest: Mutex::new(None),
        }
    }

    /// The answer for a request now; `None` when even one answer does not fit the budget.
    pub async fn answer(&self, view: &View) -> Option<Bytes> {
        let mut latest = self.latest.lock().await;
        let now = Instant::now();
        if let Some((built, answer)) = &*latest
            && now.duration_since(*built) < FRAME_INTERVAL
        {
            return Some(answer.clone());
        }
        let text = view.state(self.limit);
        let permit = u32::try_from(text.len())
            .ok()
            .and_then(|bytes| self.budget.clone().try_acquire_many_owned(bytes).ok());
        match permit {
            Some(permit) => {
                let answer = Bytes::from_owner(Held {
                    text,
                    _permit: permit,
                });
                *latest = Some((now, answer.clone()));
                Some(answer)
            }
            None => latest.as_ref().map(|(_, answer)| answer.clone()),
        }
    }
}

/// An answer's bytes and their share of the budget, given back when the last reference goes.
struct Held {
    text: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use customersim_plugin_api::host::ClockDriver;
    use customersim_plugin_api::{CustomerId, Event, EventKind, StoreLayout, Topics};

    fn view_with(shoppers: u64) -> Arc<View> {
        let clock = ClockDriver::virtual_at(0).clock();
        let (view, _frames) = View::new(
            StoreLayout::default(),
            &Topics::default(),
            clock,
            None,
            None,
        );
        let batch: Vec<Event> = (0..shoppers)
            .map(|id| Event {
                due_ms: 0,
                customer: CustomerId::Number(id),
                kind: EventKind::Enter,
                store: 0,
                stamp: Default::default(),
            })
            .collect();
        view.floor().apply(&batch, 0);
        view
    }

    #[tokio::test]
    async fn an_answer_lists_at_most_the_limit_and_says_so() {
        let view = view_with(50);
        let answers = StateAnswers::new(10);
        let answer = answers.answer(&view).await.unwrap();
        let state: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(state["inside"], 50);
        assert_eq!(state["truncated"], true);
        assert_eq!(state["shoppers"].as_array().unwrap().len(), 10);
        assert_eq!(state["shoppers"][0]["id"], "0");
    }

    #[tokio::test]
    async fn answers_held_by_clients_stay_within_the_budget() {
        let view = view_with(20);
        let one = view.state(100).len();
        let answers = StateAnswers::with_budget(100, one * 2);
        let first = answers.answer(&view).await.unwrap();
        // Requests within a frame interval share the very same bytes.
        assert_eq!(
            first.as_ptr(),
            answers.answer(&view).await.unwrap().as_ptr()
        );
        // Later ones get a new answer while the budget lasts, then the newest already built.
        tokio::time::sleep(FRAME_INTERVAL).await;
        let second = answers.answer(&view).await.unwrap();
        assert_ne!(first.as_ptr(), second.as_ptr());
        tokio::time::sleep(FRAME_INTERVAL).await;
        let third = answers.answer(&view).await.unwrap();
        assert_eq!(third.as_ptr(), second.as_ptr(), "the budget is spent");
        assert_eq!(answers.budget.available_permits(), 0);
        // Clients done with their answers give the budget back.
        drop((first, second, third));
        tokio::time::sleep(FRAME_INTERVAL).await;
        let fourth = answers.answer(&view).await.unwrap();
        assert_eq!(fourth.len(), one);
        assert_eq!(
            answers.budget.available_permits(),
            one,
            "only the cached answer is held"
        );
    }

    #[tokio::test]
    async fn an_answer_larger_than_the_whole_budget_is_refused() {
        let view = view_with(20);
        let answers = StateAnswers::with_budget(100, 10);
        assert!(answers.answer(&view).await.is_none());
    }
}
