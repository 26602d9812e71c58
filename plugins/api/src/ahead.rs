//! Running a source that generates simulated shoppers ahead of the clock: the loop shared by the
//! built-in shopper sources (`random_walk`, `shopping_trip`).
//!
//! The source's model is a synchronous [`Generate`] (a pure function of the seed, the config and
//! simulated time); [`run_ahead`] feeds it horizons, puts its events on the timeline in chunks,
//! advances the watermark that paces a virtual clock, and ends when the doors closed and the last
//! shopper left.

use std::sync::Arc;

use rand::RngCore;

use crate::arrivals::{ArrivalRules, Entrance, QueueMetrics, QueueStats};
use crate::due_queue::{DueQueue, SortScratch, order_by_key_below};
use crate::error::PluginError;
use crate::event::{CustomerId, Event};
use crate::fleet::{StoreIndex, generated_id};
use crate::load::{LoadAction, LoadFollower};
use crate::roster::Roster;
use crate::source::SourceContext;
use crate::staging::Staging;

/// How far ahead the agenda's entries are due, about (shoppers' next steps): with the crowd
/// expected, it sizes the agenda's buckets ([`DueQueue::for_items`]): 128 ms for 10,000 shoppers.
const AGENDA_SPREAD_MS: i64 = 32_768;

/// Most events generated per timeline write, so a million shoppers never sit on the timeline at
/// once.
const CHUNK_EVENTS: usize = 4096;

/// About how many events one step of a fleet makes ([`Stores`]), and a fleet's chunk: every
/// store is visited once a step, on memory gone cold since its last visit (its agenda and
/// shoppers), so a step makes many events from each; and a step is one chunk, sorted once, so
/// the timeline takes in runs that do not overlap. 1,000 stores × 20 shoppers, 2 simulated hours
/// (one store × 20,000: 1.00 s): steps of one 4,096-event chunk 1.76 s; 8,192 events in 4,096-event
/// chunks 1.45 s; steps as chunks of 8,192 events 1.55 s, 16,384 1.28 s, 32,768 1.20 s, 65,536
/// 1.21 s.
const STEP_EVENTS: usize = 8 * CHUNK_EVENTS;

/// A shopper model that generates its events in time order, up to a horizon at a time: arrivals
/// come through its [`Gate`], every other event from the agenda of its [`Crowd`].
pub trait Generate: Send {
    /// What the model keeps per shopper inside.
    type Shopper;
    /// The shoppers inside and their agenda.
    fn crowd(&self) -> &Crowd<Self::Shopper>;
    /// The shoppers inside and their agenda, to change.
    fn crowd_mut(&mut self) -> &mut Crowd<Self::Shopper>;
    /// The arrival side: next arrival, entrance, waiting arrivals, visits.
    fn gate(&self) -> &Gate;
    /// The arrival side, to change.
    fn gate_mut(&mut self) -> &mut Gate;
    /// Handles the arrival due at `at_ms` (letting the shopper in or not; drawing the next one).
    fn arrive(&mut self, at_ms: i64);
    /// Lets one more shopper in at `at_ms`, beyond the arrival process, if there is room (and a
    /// listed customer outside): the [`LoadFollower`] fills a crowd that the load stages grow.
    fn admit_extra(&mut self, at_ms: i64);
    /// Sends the shopper in `slot` home from `at_ms` on: it gives up the rest of its visit and
    /// walks out at its model's pace, its next event rescheduled ([`Crowd::reschedule`]). A
    /// shopper already on its way out (or in a checkout line) changes nothing and counts as sent
    /// (`true`): skipping such shoppers would leave the crowd with more of them than a crowd
    /// has, and the follower would soon miss them. Returns `false` (changing nothing) for a
    /// shopper that cannot be sent home now (one just entering).
    fn send_home(&mut self, slot: u32, at_ms: i64) -> bool;
    /// Appends the event due at `due_ms` of the shopper in `slot` to `out` and plans the
    /// shopper's next one; returns how many it appended. (Focus events are not the model's: the
    /// focus stage derives them from every source's moves, [`crate::stages`].)
    fn act(&mut self, slot: u32, due_ms: i64, out: &mut Vec<Event>) -> usize;

    /// When the next shopper arrives; `None` once arrivals stopped.
    fn next_arrival_ms(&self) -> Option<i64> {
        self.gate().next_arrival_ms
    }
    /// Whether the doors closed and the last shopper left.
    fn is_finished(&self) -> bool {
        let gate = self.gate();
        gate.next_arrival_ms.is_none()
            && gate
                .load
                .as_ref()
                .is_none_or(|load| load.next_ms().is_none())
            && self.crowd().is_idle()
            && gate.waiting == 0
            && gate.entrance.waiting() == 0
    }
    /// Arrivals waiting for a listed customer to leave.
    fn waiting_arrivals(&self) -> u64 {
        self.gate().waiting
    }
    /// How many shoppers came in so far.
    fn visits(&self) -> u64 {
        self.gate().arrivals
    }
    /// The most shoppers inside at once so far.
    fn peak_inside(&self) -> usize {
        self.crowd().peak_inside()
    }
    /// How many arrivals wait outside for the store to have room (`capacity`).
    fn queued_arrivals(&self) -> usize {
        self.gate().entrance.waiting()
    }
    /// What the queue outside saw so far; `None` without a capacity (nobody ever queues).
    fn queue_stats(&self) -> Option<&QueueStats> {
        let gate = self.gate();
        gate.capacity.map(|_| gate.entrance.stats())
    }

    /// Appends the events due before `horizon_ms` to `out`, in time order, and returns the
    /// watermark: every event due before it has been generated. One call does a bounded amount
    /// of work, at most `max` steps (an arrival, or an event and what it makes), so a caller
    /// regains control often however many arrivals queue outside without making an event; it
    /// then gets a watermark below `horizon_ms`. Idle time costs nothing: when nothing is due
    /// before the horizon the watermark is the next event's time, however far beyond it.
    fn generate(&mut self, horizon_ms: i64, out: &mut Vec<Event>, max: usize) -> i64 {
        let mut work = 0;
        loop {
            let due = self.crowd_mut().next_due_ms();
            let arrival = self.next_arrival_ms();
            let control = self.gate().load.as_ref().and_then(LoadFollower::next_ms);
            let Some(next) = earliest(earliest(arrival, control), due) else {
                return i64::MAX;
            };
            if next >= horizon_ms || work >= max {
                return next;
            }
            if arrival == Some(next) {
                self.arrive(next);
                work += 1;
            } else if control == Some(next) {
                self.control(next);
                work += 1;
            } else {
                let (due, slot) = self.crowd_mut().pop_due().expect("an event is due");
                work += self.act(slot, due, out);
            }
        }
    }

    /// Does what the [`LoadFollower`] asks at `at_ms`: one more shopper in, or a random one of
    /// those staying inside sent home (a few draws at most; nobody when few can be sent).
    fn control(&mut self, at_ms: i64) {
        let staying = self.crowd().staying();
        let Some(load) = self.gate_mut().load.as_mut() else {
            return;
        };
        match load.fire(at_ms, staying) {
            None => {}
            Some(LoadAction::Admit) => self.admit_extra(at_ms),
            Some(LoadAction::SendHome) => {
                for _ in 0..64 {
                    let slots = self.crowd().slot_count();
                    let Some(load) = self.gate_mut().load.as_mut() else {
                        return;
                    };
                    let slot = load.pick(slots) as u32;
                    if self.crowd().is_staying(slot) && self.send_home(slot, at_ms) {
                        self.crowd_mut().mark_leaving(slot);
                        return;
                    }
                }
            }
        }
    }
}

/// The earlier of two times, either of which may be missing.
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The arrival side of a shopper model: when the next shopper comes, the entrance (capacity and
/// the queue outside), arrivals waiting for a listed customer, and how many came in.
#[derive(Debug)]
pub struct Gate {
    /// When the next shopper arrives; `None` once arrivals stopped (or if nobody ever comes).
    pub next_arrival_ms: Option<i64>,
    /// Who is let in, and the queue outside when the store is at capacity.
    pub entrance: Entrance,
    /// Arrivals that found every listed customer inside and wait for one to leave.
    pub waiting: u64,
    /// How many shoppers came in so far (the serial of the latest one).
    pub arrivals: u64,
    /// The store's capacity, so queue stats are reported only where there can be a queue.
    capacity: Option<usize>,
    /// Steers the crowd along the pipeline's load stages, when it has any.
    pub load: Option<LoadFollower>,
}

impl Gate {
    /// A closed gate for a store with these arrival rules; set `next_arrival_ms` to open it.
    pub fn new(rules: &ArrivalRules) -> Gate {
        Gate {
            next_arrival_ms: None,
            entrance: rules.entrance(),
            waiting: 0,
            arrivals: 0,
            capacity: rules.capacity,
            load: None,
        }
    }

    /// Reports the entrance queue to these metrics from now on.
    pub fn report_queue_to(&mut self, metrics: QueueMetrics) {
        let entrance = std::mem::replace(&mut self.entrance, Entrance::new(None));
        self.entrance = entrance.with_metrics(metrics);
    }
}

/// The shoppers inside a generator: slots reused after exits (so a slot number is a small, stable
/// handle), the agenda of each one's next event, and the counts of who is inside.
#[derive(Debug)]
pub struct Crowd<T> {
    slots: Vec<T>,
    free: Vec<u32>,
    /// (due, slot, stamp) of each shopper's next event; slots are assigned deterministically, so
    /// ties break the same way in every run. An entry whose stamp is no longer its slot's was
    /// replaced by [`Crowd::reschedule`] and is skipped.
    agenda: DueQueue<(i64, u32, u32)>,
    /// Per slot: the stamp of its valid agenda entry, and whether it is taken and sent home.
    marks: Vec<SlotMark>,
    inside: usize,
    /// Shoppers inside who were sent home ([`Crowd::mark_leaving`]) and are walking out.
    leaving: usize,
    peak_inside: usize,
}

/// How many agenda entries ahead [`Crowd::pop_due`] fetches a shopper's memory: far enough that
/// it arrives before the shopper's turn (a step takes a few hundred cycles, a fetch from memory
/// about as long), near enough that it is still in the cache then.
const PREFETCH_DISTANCE: usize = 4;

/// Asks the processor to bring the cache lines of `value` in, without waiting for them.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let first = (value as *const T).cast::<i8>();
        let last = first.wrapping_add(std::mem::size_of::<T>().saturating_sub(1));
        // SAFETY: a prefetch only hints the cache; it reads nothing into the program and never
        // faults, and both addresses lie within `value`.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(first);
            _mm_prefetch::<_MM_HINT_T0>(last);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// What a [`Crowd`] keeps about a slot besides its shopper.
#[derive(Clone, Copy, Debug, Default)]
struct SlotMark {
    stamp: u32,
    taken: bool,
    leaving: bool,
}

impl<T> Crowd<T> {
    /// An empty store with room for about `expected` shoppers before growing.
    pub fn with_capacity(expected: usize) -> Crowd<T> {
        Crowd {
            slots: Vec::with_capacity(expected),
            free: Vec::new(),
            agenda: DueQueue::for_items(expected, AGENDA_SPREAD_MS),
            marks: Vec::with_capacity(expected),
            inside: 0,
            leaving: 0,
            peak_inside: 0,
        }
    }

    /// Lets `shopper` in with its first event due at `due_ms`; returns its slot.
    pub fn enter(&mut self, shopper: T, due_ms: i64) -> u32 {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = shopper;
                slot
            }
            None => {
                self.slots.push(shopper);
                self.marks.push(SlotMark::default());
                (self.slots.len() - 1) as u32
            }
        };
        let mark = &mut self.marks[slot as usize];
        mark.taken = true;
        mark.leaving = false;
        self.inside += 1;
        self.peak_inside = self.peak_inside.max(self.inside);
        self.agenda.push((due_ms, slot, mark.stamp));
        slot
    }

    /// The shopper in `slot`.
    pub fn get(&self, slot: u32) -> &T {
        &self.slots[slot as usize]
    }

    /// The shopper in `slot`, to change.
    pub fn get_mut(&mut self, slot: u32) -> &mut T {
        &mut self.slots[slot as usize]
    }

    /// When the next event of anyone inside is due. Replaced entries on top of the agenda are
    /// dropped first, so the time is exact and the entry it names is what [`Crowd::pop_due`]
    /// takes.
    pub fn next_due_ms(&mut self) -> Option<i64> {
        loop {
            let &(due, slot, stamp) = self.agenda.peek_mut_settled()?;
            if self.marks[slot as usize].stamp == stamp {
                return Some(due);
            }
            self.agenda.pop();
        }
    }

    /// Takes the next due (time, slot) off the agenda, dropping replaced entries on the way.
    pub fn pop_due(&mut self) -> Option<(i64, u32)> {
        let due = loop {
            let (due, slot, stamp) = self.agenda.pop()?;
            if self.marks[slot as usize].stamp == stamp {
                break (due, slot);
            }
        };
        // Shoppers are stepped in the order their events fall due, which is no order in memory:
        // each step began with a wait for the shopper's slot and mark to come from memory (over
        // a tenth of a run). The agenda knows who comes a few steps later; fetching their
        // memory now overlaps those waits with the steps in between.
        if let Some(&(_, slot, _)) = self.agenda.soon(PREFETCH_DISTANCE) {
            let slot = slot as usize;
            if let (Some(shopper), Some(mark)) = (self.slots.get(slot), self.marks.get(slot)) {
                prefetch(shopper);
                prefetch(mark);
            }
        }
        Some(due)
    }

    /// Puts the next event of the shopper in `slot` on the agenda.
    pub fn schedule(&mut self, slot: u32, due_ms: i64) {
        let stamp = self.marks[slot as usize].stamp;
        self.agenda.push((due_ms, slot, stamp));
    }

    /// Replaces the planned next event of the shopper in `slot` by one due at `due_ms` (the
    /// old entry stays in the agenda, marked stale, and is skipped when it comes up).
    pub fn reschedule(&mut self, slot: u32, due_ms: i64) {
        let mark = &mut self.marks[slot as usize];
        mark.stamp = mark.stamp.wrapping_add(1);
        let stamp = mark.stamp;
        self.agenda.push((due_ms, slot, stamp));
    }

    /// The shopper in `slot` left; the slot is reused by a later arrival.
    pub fn leave(&mut self, slot: u32) {
        let mark = &mut self.marks[slot as usize];
        if mark.leaving {
            self.leaving -= 1;
        }
        mark.taken = false;
        mark.leaving = false;
        self.free.push(slot);
        self.inside -= 1;
    }

    /// Counts the shopper in `slot` as sent home: it no longer counts as staying.
    pub fn mark_leaving(&mut self, slot: u32) {
        let mark = &mut self.marks[slot as usize];
        if mark.taken && !mark.leaving {
            mark.leaving = true;
            self.leaving += 1;
        }
    }

    /// Whether `slot` holds a shopper who was not sent home.
    pub fn is_staying(&self, slot: u32) -> bool {
        self.marks
            .get(slot as usize)
            .is_some_and(|mark| mark.taken && !mark.leaving)
    }

    /// How many slots there are (taken or free): slot numbers are below it.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Whether no event is planned (nobody is inside).
    pub fn is_idle(&self) -> bool {
        self.inside == 0
    }

    /// How many shoppers are inside now.
    pub fn inside(&self) -> usize {
        self.inside
    }

    /// How many shoppers inside were not sent home.
    pub fn staying(&self) -> usize {
        self.inside - self.leaving
    }

    /// The most shoppers inside at once so far.
    pub fn peak_inside(&self) -> usize {
        self.peak_inside
    }
}

/// Who the `serial`-th arrival of a store is: a customer of that store drawn from `roster`
/// (`None` when all of them are inside), or without a roster a generated id, `number` in
/// decimal after `prefix` (no prefix keeps ids digits, which consumers of the original service
/// parse as integers). `number` is the store's serial made unique across the fleet
/// ([`crate::Fleet::shopper_number`]).
pub fn arriving_customer(
    roster: Option<&Arc<dyn Roster>>,
    store: StoreIndex,
    rng: &mut dyn RngCore,
    number: u64,
    prefix: &str,
) -> Option<CustomerId> {
    match roster {
        Some(roster) => roster.admit(store, rng),
        None => Some(generated_id(number, prefix)),
    }
}

/// One shopper model per store this process runs, driven as one. A store's events depend only
/// on its own generator, so how the stores share chunks never changes what any of them generates.
///
/// With several stores, all of them step ahead together, a stretch of simulated time at a time
/// (sized so that a step makes about [`STEP_EVENTS`], a chunk), and a step's events go out sorted
/// by time: the watermark (the lowest store's) moves on with every step, so the scheduler
/// publishes while the next step is generated, and the timeline takes in runs in time order. One
/// store is generated as it is, up to the horizon.
struct Stores<G> {
    stores: Vec<(StoreIndex, G)>,
    /// Each store's watermark: every event of it due before this has been generated.
    marks: Vec<i64>,
    /// The store a full chunk stopped at; the next call starts there.
    cursor: usize,
    /// How much simulated time a step spans, adapted to what the last step made.
    step_ms: i64,
    /// Where the step under way ends: every store is generated up to it before the next step.
    step_end: i64,
    /// Events the step under way made so far.
    step_events: usize,
    /// What the stores made in a call, before it goes out sorted: kept, so its memory is warm.
    made: Vec<Event>,
    scratch: SortScratch,
}

/// The first step of a fleet (then adapted), and the longest: what one call sorts by
/// millisecond.
const FIRST_STEP_MS: i64 = 1_000;
const LONGEST_STEP_MS: i64 = 65_536;

impl<G: Generate> Stores<G> {
    fn new(stores: Vec<(StoreIndex, G)>) -> Stores<G> {
        let marks = vec![i64::MIN; stores.len()];
        Stores {
            stores,
            marks,
            cursor: 0,
            step_ms: FIRST_STEP_MS,
            step_end: i64::MIN,
            step_events: 0,
            made: Vec::new(),
            scratch: SortScratch::default(),
        }
    }

    fn low_mark(&self) -> i64 {
        self.marks.iter().copied().min().unwrap_or(i64::MAX)
    }

    /// [`Generate::generate`] over every store (at most `max` steps of work in all); events are
    /// stamped with their store. Returns the lowest store's watermark.
    fn generate(&mut self, horizon_ms: i64, out: &mut Vec<Event>, max: usize) -> i64 {
        if let [(store, generator)] = &mut self.stores[..] {
            let first = out.len();
            self.marks[0] = generator.generate(horizon_ms, out, max);
            if *store != 0 {
                for event in &mut out[first..] {
                    event.store = *store;
                }
            }
            return self.marks[0];
        }
        let low = self.low_mark();
        if low >= horizon_ms {
            return low;
        }
        if self.step_end <= low {
            // The last step is done: the next one, from the lowest store.
            self.step_end = low.saturating_add(self.step_ms).min(horizon_ms);
            self.step_events = 0;
        }
        let step_end = self.step_end;
        let mut made = std::mem::take(&mut self.made);
        made.clear();
        let count = self.stores.len();
        for step in 0..count {
            let at = (self.cursor + step) % count;
            if self.marks[at] >= step_end {
                continue;
            }
            let (store, generator) = &mut self.stores[at];
            let from = made.len();
            self.marks[at] = generator.generate(step_end, &mut made, max.saturating_sub(from));
            for event in &mut made[from..] {
                event.store = *store;
            }
            if made.len() >= max || self.marks[at] < step_end {
                // The work budget ran out in this store: the next call resumes here, so one call
                // stays bounded however many stores there are.
                self.cursor = at;
                break;
            }
        }
        self.step_events += made.len();
        move_sorted_by_time(&mut made, out, &mut self.scratch);
        self.made = made;
        let low = self.low_mark();
        if low >= step_end {
            // Aim the next step at STEP_EVENTS, changing it by at most a factor of two at a time.
            let wanted =
                (self.step_ms as f64 * STEP_EVENTS as f64 / self.step_events.max(1) as f64) as i64;
            self.step_ms = wanted
                .clamp(self.step_ms / 2, self.step_ms.saturating_mul(2))
                .clamp(1, LONGEST_STEP_MS);
        }
        low
    }

    fn total(&self, of: impl Fn(&G) -> u64) -> u64 {
        self.stores.iter().map(|(_, generator)| of(generator)).sum()
    }

    fn is_finished(&self) -> bool {
        self.stores
            .iter()
            .all(|(_, generator)| generator.is_finished())
    }
}

/// Moves `events` to the end of `out` sorted by due time, keeping the order of events due at the
/// same time (those of one store stay in its order): by millisecond in linear time when they
/// span at most [`LONGEST_STEP_MS`], else by a merge sort. Each event is read from where it lies
/// and written once, in order: sorting them in place moved each along its permutation's cycle,
/// two reads and writes at places far apart (over a tenth of a fleet's run).
fn move_sorted_by_time(events: &mut Vec<Event>, out: &mut Vec<Event>, scratch: &mut SortScratch) {
    let (Some(first), Some(last)) = (
        events.iter().map(|event| event.due_ms).min(),
        events.iter().map(|event| event.due_ms).max(),
    ) else {
        return;
    };
    let span = last.saturating_sub(first);
    if span >= LONGEST_STEP_MS || events.len() * 8 < span as usize {
        events.sort_by_key(|event| event.due_ms);
        out.append(events);
        return;
    }
    order_by_key_below(
        events,
        span as usize + 1,
        |event| (event.due_ms - first) as usize,
        scratch,
    );
    let order = &scratch.1;
    out.reserve(order.len());
    let taken = events.as_ptr();
    // SAFETY: `order` is a permutation of the positions below `events.len()`, so every event is
    // read exactly once, and never again through `events`: its length is set to 0 first (should
    // a push panic, the events not yet moved leak; none is dropped twice).
    unsafe {
        events.set_len(0);
        for &index in order {
            out.push(std::ptr::read(taken.add(index as usize)));
        }
    }
}

/// Runs one `generator` per store this process runs (`stores`: each store's position in the
/// fleet and its model, see [`crate::Fleet::local_stores`]) ahead of `cx`'s clock until all are
/// finished or shutdown fires; `name` prefixes the log lines.
pub async fn run_ahead<G: Generate>(
    name: &str,
    stores: Vec<(StoreIndex, G)>,
    cx: SourceContext,
) -> Result<(), PluginError> {
    let mut generator = Stores::new(stores);
    // A fleet's chunk is a step ([`Stores`]), with room for twice the events a step aims at,
    // so a step seldom ends up split over two chunks: their events would interleave in time,
    // and the timeline would merge the two runs event by event.
    let chunk_events = if generator.stores.len() > 1 {
        2 * STEP_EVENTS
    } else {
        CHUNK_EVENTS
    };
    let origin = cx.clock.origin_ms();
    // How far ahead of the clock to generate: a virtual clock is fed in large steps, a chunk
    // ([`CHUNK_EVENTS`]) at a time, and an hour lets a small store fill one (a minute made a
    // dozen shoppers' chunks of about a hundred events: a hand-over between threads every
    // hundred events, slower on two cores than on one); a real clock only needs to stay about
    // two wall seconds ahead of the scheduler.
    let lookahead_ms: i64 = match cx.clock.speed() {
        None => 3_600_000,
        Some(speed) => (2_000.0 * speed.max(1.0)) as i64,
    };
    // The watermarks of the last two chunks, the earlier first. A full chunk is followed by
    // the next once the clock reached the earlier one: three chunks in flight, one being
    // generated, one being staged (focus, sensors) and one being published. With two (waiting
    // for the last chunk's watermark) the threads took turns on one core instead: with sensors
    // on, the run made 0.70 of the events/s without them; with three, 0.9.
    let mut watermarks = [origin, origin];
    // Chunks are staged (focus, sensors) and scheduled on a thread of their own when there are
    // stages, while the next one is generated.
    let mut staging = Staging::start(&cx, name);
    let mut announced_wait = false;
    let mut announced_queue = false;
    loop {
        if cx.shutdown.is_triggered() {
            return Ok(());
        }
        let horizon = cx.clock.now_ms().max(watermarks[1]) + lookahead_ms;
        // With room for the focus events the stages put in (about one in a hundred): growing
        // the chunk would move it to new memory, which the system hands out a page at a time.
        let mut chunk = Vec::with_capacity(chunk_events + chunk_events / 16);
        let watermark = generator.generate(horizon, &mut chunk, chunk_events);
        // An arrival drawn for after the doors close never comes: the store stops waiting for
        // it (a closed store's next arrival can be the next morning, long after the run's end).
        if let Some(close_ms) = cx.doors_close_ms {
            for (_, store) in &mut generator.stores {
                let gate = store.gate_mut();
                if gate.next_arrival_ms.is_some_and(|next| next >= close_ms) {
                    gate.next_arrival_ms = None;
                }
            }
        }
        // Stopped by the work budget before the horizon: go on at once.
        let chunk_was_full = chunk.len() >= chunk_events || watermark < horizon;
        if !chunk.is_empty() && !staging.schedule(chunk).await? {
            return Ok(());
        }
        let one_store = generator.stores.len() == 1;
        if !announced_wait && generator.total(|g| g.waiting_arrivals()) > 0 {
            if one_store {
                tracing::warn!(
                    "{name}: every listed customer is inside; arrivals wait for someone to leave"
                );
            } else {
                tracing::warn!(
                    "{name}: every listed customer of a store is inside; its arrivals wait for someone to leave"
                );
            }
            announced_wait = true;
        }
        if !announced_queue && generator.total(|g| g.queued_arrivals() as u64) > 0 {
            if one_store {
                tracing::info!(
                    "{name}: the store is at capacity; arrivals queue outside until someone leaves"
                );
            } else {
                tracing::info!(
                    "{name}: a store is at capacity; arrivals queue outside until someone leaves"
                );
            }
            announced_queue = true;
        }
        if generator.is_finished() {
            if !staging.finish().await? {
                return Ok(());
            }
            cx.watermark.finish();
            let stores = &generator.stores;
            let peak = stores
                .iter()
                .map(|(_, g)| g.peak_inside())
                .max()
                .unwrap_or(0);
            if stores.len() == 1 {
                tracing::info!(
                    "{name}: doors closed and the last shopper left; {} visits, at most {peak} shoppers inside at once",
                    generator.total(|g| g.visits()),
                );
            } else {
                tracing::info!(
                    "{name}: doors closed and the last shopper left in all {} stores; {} visits, at most {peak} shoppers inside one store at once",
                    stores.len(),
                    generator.total(|g| g.visits()),
                );
            }
            for (store, model) in stores {
                if let Some(stats) = model.queue_stats() {
                    if stores.len() == 1 {
                        tracing::info!("{name}: {stats}");
                    } else {
                        tracing::debug!("{name}: store {}: {stats}", cx.fleet.id(*store));
                    }
                }
            }
            return Ok(());
        }
        if !staging.advance(watermark).await? {
            return Ok(());
        }
        // Keep at most about three chunks ahead of the clock.
        let wake_at = if chunk_was_full {
            watermarks[0]
        } else {
            watermark - lookahead_ms / 2
        };
        watermarks = [watermarks[1], watermark];
        tokio::select! {
            () = cx.clock.sleep_until(wake_at) => {}
            () = cx.shutdown.wait() => {}
        }
        // Generating is synchronous: give the runtime's other tasks (the signal handler, the
        // scheduler) their turn between chunks even when the clock is already past `wake_at`.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    fn event(due_ms: i64, id: &str) -> Event {
        Event {
            due_ms,
            customer: CustomerId::parse(id),
            kind: EventKind::Enter,
            store: 0,
            stamp: Default::default(),
        }
    }

    /// A rescheduled shopper's old entry is never named nor taken: the next due time is the
    /// new one's, or another shopper's before it.
    #[test]
    fn replaced_entries_are_skipped_by_the_next_due_time_and_by_taking() {
        let mut crowd: Crowd<&str> = Crowd::with_capacity(4);
        let early = crowd.enter("early", 100);
        let late = crowd.enter("late", 500);
        crowd.reschedule(early, 300);
        assert_eq!(crowd.next_due_ms(), Some(300));
        assert_eq!(crowd.pop_due(), Some((300, early)));
        crowd.schedule(early, 900);
        crowd.reschedule(late, 700);
        // The stale entry at 500 is on top: taking skips it without a look first.
        assert_eq!(crowd.pop_due(), Some((700, late)));
        assert_eq!(crowd.next_due_ms(), Some(900));
        assert_eq!(crowd.pop_due(), Some((900, early)));
        assert_eq!(crowd.next_due_ms(), None);
        assert_eq!(crowd.pop_due(), None);
    }

    /// Both ways (by millisecond within a short span, a merge sort beyond it) move every event
    /// once, in time order, those due at the same time in the order they came, and leave the
    /// source empty for reuse; ids that own memory (text) come through intact.
    #[test]
    fn a_step_goes_out_sorted_by_time_and_stably() {
        let mut scratch = SortScratch::default();
        for spread in [1_000, 10 * LONGEST_STEP_MS] {
            let mut made: Vec<Event> = (0..2_000)
                .map(|n: i64| event(n * 7919 % spread, &format!("c-{n}")))
                .collect();
            let mut expected = made.clone();
            expected.sort_by_key(|event| event.due_ms);
            let mut out = vec![event(-1, "already there")];
            move_sorted_by_time(&mut made, &mut out, &mut scratch);
            assert!(made.is_empty());
            assert_eq!(out[0], event(-1, "already there"));
            assert_eq!(out[1..], expected[..], "spread {spread}");
            made.push(event(5, "again"));
            move_sorted_by_time(&mut made, &mut out, &mut scratch);
            assert_eq!(out.last(), Some(&event(5, "again")));
        }
    }
}
