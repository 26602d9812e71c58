//! The pages' event streams (`GET /events`): how many may be open, the bandwidth they share, and
//! what one page may hold.
//!
//! - At most `max_pages` streams are open at once; one more gets 503 (a seat is taken when the
//!   stream opens and given back when its connection closes).
//! - All pages together are sent at most `max_bytes_per_second`: each frame a page is sent first
//!   reserves its size in one budget shared by every page, so a thousand reading pages cost the
//!   run what a few do; a page whose turn is late simply skips the frames in between.
//! - One page also gets at most [`PAGE_BYTES_PER_S`], so a lone page leaves room for others.
//! - A page is sent the run's checks (module `checks`) when they changed, at most once a second,
//!   before the next frame; they share the budgets above with the frames. Like frames, only the
//!   newest checks are held.
//! - A page has at most one event in flight: the next is taken only once the server has written
//!   the previous one to the socket (its bytes were dropped). A page that stops reading holds one
//!   shared frame and nothing else; when it reads again it gets the newest frame, never a backlog.
//!   Nothing per page grows, so what pages held is given back when they close.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use futures_util::stream::{self, Stream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use crate::frame::View;

/// Bytes a second one page is sent at most: a page whose frames are larger gets them less often
/// (10,000 shoppers fit 20 frames a second).
pub const PAGE_BYTES_PER_S: f64 = 1_500_000.0;

/// The open pages and the bandwidth they share.
pub struct Pages {
    seats: Arc<Semaphore>,
    max_pages: usize,
    bandwidth: Bandwidth,
}

impl Pages {
    /// Room for `max_pages` pages sent `bytes_per_second` together.
    pub fn new(max_pages: usize, bytes_per_second: u64) -> Arc<Pages> {
        Arc::new(Pages {
            seats: Arc::new(Semaphore::new(max_pages)),
            max_pages,
            bandwidth: Bandwidth::new(bytes_per_second),
        })
    }

    /// The most pages open at once.
    pub fn max_pages(&self) -> usize {
        self.max_pages
    }

    /// A new page's stream: the view's hello, then frames and checks; `None` when `max_pages`
    /// are open.
    pub fn open(
        self: &Arc<Self>,
        view: &View,
    ) -> Option<impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static> {
        let seat = self.seats.clone().try_acquire_owned().ok()?;
        let mut frames = view.frames.clone();
        frames.mark_unchanged();
        let page = Page {
            _seat: seat,
            pages: self.clone(),
            frames,
            // A page that opens after the checks were read gets them right after the hello.
            checks: view.checks.as_ref().map(|checks| checks.events.clone()),
            written: Arc::new(Notify::new()),
            in_flight: false,
            hello: Some(view.hello()),
            allowed_at: Instant::now(),
        };
        Some(stream::unfold(page, |mut page| async move {
            let next = page.next().await?;
            Some((Ok(next), page))
        }))
    }
}

/// What one open page holds: its seat, its place in the frames, and whether its last event is
/// still being written.
struct Page {
    _seat: OwnedSemaphorePermit,
    pages: Arc<Pages>,
    frames: watch::Receiver<Bytes>,
    /// Its place in the checks, when the run has some.
    checks: Option<watch::Receiver<Bytes>>,
    /// Told when the server drops the bytes of the event in flight (written, or the connection
    /// is gone).
    written: Arc<Notify>,
    in_flight: bool,
    /// The hello, until sent.
    hello: Option<Bytes>,
    /// When this page's own budget allows the next frame.
    allowed_at: Instant,
}

impl Page {
    /// The next event to send; `None` ends the stream (the view stopped).
    async fn next(&mut self) -> Option<Bytes> {
        if self.in_flight {
            self.written.notified().await;
            self.in_flight = false;
        }
        let event = match self.hello.take() {
            Some(hello) => hello,
            None => {
                tokio::time::sleep_until(self.allowed_at).await;
                // New checks first: they change once a second at most, frames up to 20 times.
                let feed = tokio::select! {
                    biased;
                    changed = changed_if_any(&mut self.checks) => {
                        changed.ok()?;
                        self.checks.as_mut().expect("checks changed")
                    }
                    changed = self.frames.changed() => {
                        changed.ok()?;
                        &mut self.frames
                    }
                };
                let size = feed.borrow().len();
                let turn = self.pages.bandwidth.reserve(size, Instant::now());
                tokio::time::sleep_until(turn).await;
                // The newest, which may have come while this page waited for its turn.
                let event = feed.borrow_and_update().clone();
                self.allowed_at =
                    Instant::now() + Duration::from_secs_f64(event.len() as f64 / PAGE_BYTES_PER_S);
                event
            }
        };
        self.in_flight = true;
        Some(Bytes::from_owner(InFlight {
            event,
            written: self.written.clone(),
        }))
    }
}

/// Waits until `feed` changed; never, without a feed.
async fn changed_if_any(
    feed: &mut Option<watch::Receiver<Bytes>>,
) -> Result<(), watch::error::RecvError> {
    match feed {
        Some(feed) => feed.changed().await,
        None => std::future::pending().await,
    }
}

/// An event handed to the server: a reference to the shared bytes that tells its page when the
/// server lets go of it.
struct InFlight {
    event: Bytes,
    written: Arc<Notify>,
}

impl AsRef<[u8]> for InFlight {
    fn as_ref(&self) -> &[u8] {
        &self.event
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.written.notify_one();
    }
}

/// A bandwidth budget shared by many senders: each reserves the bytes it is about to send and
/// is told when it may send them, one after the other at the budget's rate, so together they
/// never exceed it, however many they are.
pub struct Bandwidth {
    bytes_per_second: f64,
    /// When the budget is free again: the end of the last reservation.
    free_at: Mutex<Option<Instant>>,
}

impl Bandwidth {
    /// A budget of `bytes_per_second` (at least 1).
    pub fn new(bytes_per_second: u64) -> Bandwidth {
        Bandwidth {
            bytes_per_second: bytes_per_second.max(1) as f64,
            free_at: Mutex::new(None),
        }
    }

    /// Reserves `bytes` asked for at `now`; returns when they may be sent.
    pub fn reserve(&self, bytes: usize, now: Instant) -> Instant {
        let mut free_at = self.free_at.lock().unwrap_or_else(PoisonError::into_inner);
        let start = free_at.map_or(now, |free_at| free_at.max(now));
        *free_at = Some(start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_second));
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use customersim_plugin_api::host::ClockDriver;
    use customersim_plugin_api::{StoreLayout, Topics};
    use futures_util::{FutureExt, StreamExt};

    #[test]
    fn reservations_share_one_rate() {
        let budget = Bandwidth::new(1_000);
        let now = Instant::now();
        assert_eq!(budget.reserve(500, now), now);
        assert_eq!(budget.reserve(500, now), now + Duration::from_millis(500));
        assert_eq!(budget.reserve(100, now), now + Duration::from_secs(1));
        // An idle budget does not save up: a later request starts when it comes.
        let later = now + Duration::from_secs(60);
        assert_eq!(budget.reserve(1, later), later);
    }

    #[tokio::test]
    async fn pages_beyond_the_cap_are_refused_until_one_closes() {
        let clock = ClockDriver::virtual_at(0).clock();
        let (view, _frames) = View::new(
            StoreLayout::default(),
            &Topics::default(),
            clock,
            None,
            None,
        );
        let pages = Pages::new(2, 1_000_000);
        let first = pages.open(&view).expect("a seat");
        let _second = pages.open(&view).expect("a seat");
        assert!(pages.open(&view).is_none(), "the cap is 2");
        drop(first);
        assert!(
            pages.open(&view).is_some(),
            "a closed page gives its seat back"
        );
    }

    #[tokio::test]
    async fn a_page_takes_the_next_event_only_once_the_last_is_written() {
        let clock = ClockDriver::virtual_at(0).clock();
        let (view, frames) = View::new(
            StoreLayout::default(),
            &Topics::default(),
            clock,
            None,
            None,
        );
        let pages = Pages::new(1, 1_000_000_000);
        let mut page = Box::pin(pages.open(&view).unwrap());
        let hello = page.next().await.unwrap().unwrap();
        assert!(hello.starts_with(b"event: hello\n"));
        frames
            .send(Bytes::from_static(b"event: frame\ndata: 1\n\n"))
            .unwrap();
        frames
            .send(Bytes::from_static(b"event: frame\ndata: 2\n\n"))
            .unwrap();
        // The hello is still held (not written): no frame is taken.
        assert!(
            page.next().now_or_never().is_none(),
            "a second event while the hello is in flight"
        );
        drop(hello);
        let frame = page.next().await.unwrap().unwrap();
        assert_eq!(
            &frame[..],
            b"event: frame\ndata: 2\n\n",
            "the newest frame, not a backlog"
        );
        drop(frame);
        drop(frames);
        assert!(page.next().await.is_none(), "the stream ends with the view");
    }

    #[tokio::test]
    async fn a_page_gets_the_checks_after_the_hello_and_again_when_they_change() {
        let clock = ClockDriver::virtual_at(0).clock();
        let (source, _) = crate::checks::tests::scripted(&[
            r#"{"expectations": [], "thresholds": [], "answered": 1}"#,
            r#"{"expectations": [], "thresholds": [], "answered": 1}"#,
            r#"{"expectations": [], "thresholds": [], "answered": 2}"#,
        ]);
        let (view, frames) = View::new(
            StoreLayout::default(),
            &Topics::default(),
            clock,
            None,
            Some(source),
        );
        let checks = view.checks.as_ref().unwrap();
        checks.refresh();
        let pages = Pages::new(1, 1_000_000_000);
        let mut page = Box::pin(pages.open(&view).unwrap());
        let hello = page.next().await.unwrap().unwrap();
        assert!(hello.starts_with(b"event: hello\n"));
        drop(hello);
        let first = page.next().await.unwrap().unwrap();
        assert!(
            first.starts_with(b"event: checks\n")
                && first.ends_with(b"\"answered\":1,\"expectations\":[],\"thresholds\":[]}\n\n"),
            "{first:?}"
        );
        drop(first);
        // The same figures again are not sent; a frame is.
        checks.refresh();
        frames
            .send(Bytes::from_static(b"event: frame\ndata: 1\n\n"))
            .unwrap();
        let frame = page.next().await.unwrap().unwrap();
        assert_eq!(&frame[..], b"event: frame\ndata: 1\n\n");
        drop(frame);
        // New figures and a new frame: the checks go first.
        checks.refresh();
        frames
            .send(Bytes::from_static(b"event: frame\ndata: 2\n\n"))
            .unwrap();
        let next = page.next().await.unwrap().unwrap();
        assert!(
            next.starts_with(b"event: checks\ndata: {\"answered\":2,"),
            "{next:?}"
        );
        drop(next);
        let frame = page.next().await.unwrap().unwrap();
        assert_eq!(&frame[..], b"event: frame\ndata: 2\n\n");
    }
}
