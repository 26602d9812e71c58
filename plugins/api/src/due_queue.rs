//! A priority queue for items keyed by a due time in milliseconds that mostly grows: a calendar
//! of buckets, one per `2^shift` ms, each sorted only when it comes up.
//!
//! A simulation's future events and its shoppers' next steps are due a little ahead of where it
//! stands, seldom far ahead and almost never before it. A binary heap pays a walk down (or up)
//! its whole height per item, over memory far apart; here an item is appended to its bucket's
//! vector (one index computation), and the bucket that comes up is sorted once (a few comparisons
//! per item, in memory that sits together) and then popped from its end. The order is exactly the
//! items' [`Ord`] (which must order by due time first), so anything that used a heap gives the
//! same sequence. Items beyond the calendar's window wait in a heap until the window reaches
//! them. Items due before the bucket that is up (after the calendar jumped ahead to a far item,
//! say) wait in a heap of their own, compared with the calendar's smallest at each take: putting
//! them into the bucket that is up would sort it again after every such push.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// An item with a due time: the first thing its [`Ord`] compares.
pub trait Due: Ord {
    /// When the item is due, in milliseconds.
    fn due_ms(&self) -> i64;
}

impl Due for (i64, u32, u32) {
    fn due_ms(&self) -> i64 {
        self.0
    }
}

/// Buckets the calendar keeps at least; items further ahead wait in a heap.
const WINDOW_BUCKETS: usize = 4096;

/// The calendar spans at least this (2^18 ms, over 4 minutes), however narrow its buckets.
const WINDOW_SPAN_SHIFT: u32 = 18;

/// Emptied bucket vectors kept for reuse (each keeps its allocation).
const SPARE_BUCKETS: usize = 64;

/// A bucket this small takes an item in its place even when sorted (beyond it, the item is
/// appended and the bucket sorted again when it is next read).
const SMALL_BUCKET: usize = 64;

/// Items in [`Ord`] order, taken out smallest first; see the module's documentation.
#[derive(Debug)]
pub struct DueQueue<T> {
    /// Each bucket spans `2^shift` ms.
    shift: u32,
    /// The bucket number of `ring[0]`.
    base: i64,
    /// `ring[i]` holds the items of bucket `base + i`.
    ring: VecDeque<Vec<T>>,
    /// Whether `ring[0]` is sorted, largest first (its smallest item is last).
    head_sorted: bool,
    /// Buckets the calendar spans: items due beyond wait in `far`.
    window: i64,
    /// Items of buckets from `base + window` on.
    far: BinaryHeap<Reverse<T>>,
    /// Items of buckets before `base`.
    early: BinaryHeap<Reverse<T>>,
    len: usize,
    spare: Vec<Vec<T>>,
    /// For [`DueQueue::sort_head`].
    scratch: SortScratch,
}

/// A position of [`sort_by_key_below`]'s permutation already in place.
const DONE: u32 = u32::MAX;

/// Scratch space of [`sort_by_key_below`], kept between sorts.
pub type SortScratch = (Vec<u32>, Vec<u32>);

/// Sorts `items` by `compare`, keeping the order of equal items, in time linear in how far they
/// are out of place: an insertion sort, for batches that come almost in order (events each
/// delayed by about the time between a few of them). Once it has moved items `moves_per_item`
/// places each on average, it gives up for a merge sort.
pub fn sort_nearly_sorted_by<T>(
    items: &mut [T],
    moves_per_item: usize,
    mut compare: impl FnMut(&T, &T) -> std::cmp::Ordering,
) {
    let mut budget = moves_per_item
        .saturating_mul(items.len())
        .saturating_add(64);
    for next in 1..items.len() {
        let mut at = next;
        while at > 0 && compare(&items[at - 1], &items[at]).is_gt() {
            items.swap(at - 1, at);
            at -= 1;
            budget -= 1;
            if budget == 0 {
                items.sort_by(compare);
                return;
            }
        }
    }
}

/// Fills `scratch.1` with where each place's item is in `items` when sorted by `key`, a number
/// below `width`, equal keys in their order (a counting sort of positions, linear in both): place
/// `p` of the sorted order takes `items[scratch.1[p]]`.
///
/// # Panics
/// If a key is not below `width`.
pub fn order_by_key_below<T>(
    items: &[T],
    width: usize,
    key: impl Fn(&T) -> usize,
    (counts, order): &mut SortScratch,
) {
    counts.clear();
    counts.resize(width + 1, 0);
    for item in items {
        counts[key(item) + 1] += 1;
    }
    for at in 1..=width {
        counts[at] += counts[at - 1];
    }
    order.clear();
    order.resize(items.len(), 0);
    for (index, item) in items.iter().enumerate() {
        let place = &mut counts[key(item)];
        order[*place as usize] = index as u32;
        *place += 1;
    }
}

/// Sorts `items` by `key`, a number below `width`, keeping the order of items with equal keys,
/// in time linear in both (a counting sort of positions, then the items moved along the cycles
/// of that permutation, each swapped once): for items due within a known span of milliseconds.
///
/// # Panics
/// If a key is not below `width`.
pub fn sort_by_key_below<T>(
    items: &mut [T],
    width: usize,
    key: impl Fn(&T) -> usize,
    scratch: &mut SortScratch,
) {
    let count = items.len();
    order_by_key_below(items, width, key, scratch);
    let order = &mut scratch.1;
    // `order[p]` is where the item for place `p` is now: follow each cycle, swapping.
    for first in 0..count {
        let mut at = first;
        while order[at] != DONE {
            let from = order[at] as usize;
            order[at] = DONE;
            if from == first {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

/// The widest bucket: 2^16 ms (a minute), so sorting one by its milliseconds stays cheap.
const MAX_SHIFT: u32 = 16;

impl<T: Due> DueQueue<T> {
    /// An empty queue whose buckets span `2^shift` ms: about as long as the items due within
    /// one are few (tens to thousands), no longer than the time between an item and the next
    /// one it brings (so the bucket being read rarely gets more).
    ///
    /// # Panics
    /// If `shift` is above 16 (buckets longer than a minute).
    pub fn new(shift: u32) -> DueQueue<T> {
        assert!(shift <= MAX_SHIFT, "buckets of 2^{shift} ms are too long");
        DueQueue {
            shift,
            window: WINDOW_BUCKETS.max((1 << WINDOW_SPAN_SHIFT) >> shift) as i64,
            base: 0,
            ring: VecDeque::new(),
            head_sorted: false,
            far: BinaryHeap::new(),
            early: BinaryHeap::new(),
            len: 0,
            spare: Vec::new(),
            scratch: (Vec::new(), Vec::new()),
        }
    }

    /// An empty queue for about `expected` items due over about `spread_ms` from the earliest:
    /// buckets of about 32 items each.
    pub fn for_items(expected: usize, spread_ms: i64) -> DueQueue<T> {
        let width = (spread_ms.max(1) as f64 * 32.0 / expected.max(1) as f64).max(1.0);
        DueQueue::new((width.log2().round() as u32).min(MAX_SHIFT))
    }

    /// How many items it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn bucket(&self, due_ms: i64) -> i64 {
        due_ms >> self.shift
    }

    /// Adds an item.
    pub fn push(&mut self, item: T) {
        if self.len == 0 {
            // Nothing to keep in order: the calendar starts over at this item.
            while let Some(bucket) = self.ring.pop_front() {
                self.recycle(bucket);
            }
            self.base = self.bucket(item.due_ms());
            self.head_sorted = false;
        }
        self.len += 1;
        self.place(item);
    }

    /// Puts an item in its bucket (or in the heap beyond the window, or before it).
    fn place(&mut self, item: T) {
        let offset = self.bucket(item.due_ms()).saturating_sub(self.base);
        if offset >= self.window {
            self.far.push(Reverse(item));
            return;
        }
        if offset < 0 {
            self.early.push(Reverse(item));
            return;
        }
        let index = offset as usize;
        if self.ring.len() <= index {
            // The buckets in between take no memory until an item comes for them: an item far
            // ahead in narrow buckets would otherwise allocate thousands of empty ones.
            self.ring.resize_with(index + 1, Vec::new);
        }
        if self.ring[index].capacity() == 0 {
            let typical = self.typical_bucket();
            self.ring[index] = self
                .spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(typical));
        }
        let bucket = &mut self.ring[index];
        if index == 0 && self.head_sorted {
            if bucket.last().is_none_or(|last| item <= *last) {
                bucket.push(item); // the new smallest: the order holds
            } else if bucket.len() <= SMALL_BUCKET {
                let at = bucket.partition_point(|other| *other > item);
                bucket.insert(at, item);
            } else {
                bucket.push(item);
                self.head_sorted = false;
            }
        } else {
            bucket.push(item);
        }
    }

    /// Room for as many items as the calendar's buckets hold on average (4 to 1024), so few
    /// grow item by item.
    fn typical_bucket(&self) -> usize {
        let in_calendar = self.len - self.far.len() - self.early.len();
        (in_calendar / self.ring.len().max(1)).clamp(4, 1024)
    }

    /// Keeps an emptied bucket for reuse unless it is far larger than a typical one: when most
    /// items fall on a few instants (whole seconds, say), the buckets of those instants grow
    /// large, and handing them on to buckets that hold a few items made a million items take
    /// 140 MB.
    fn recycle(&mut self, mut bucket: Vec<T>) {
        if self.spare.len() < SPARE_BUCKETS
            && bucket.capacity() > 0
            && bucket.capacity() <= 2 * self.typical_bucket()
        {
            bucket.clear();
            self.spare.push(bucket);
        }
    }

    /// Brings the calendar's smallest item to the end of a sorted `ring[0]` (nothing when the
    /// calendar is empty). Called for every item taken out: the common case (it is there
    /// already) is a check in place.
    #[inline]
    fn settle(&mut self) {
        if self.head_sorted && self.ring.front().is_some_and(|head| !head.is_empty()) {
            return;
        }
        self.settle_slowly();
    }

    #[inline(never)]
    fn settle_slowly(&mut self) {
        if self.len == self.early.len() {
            if self.len == 0 {
                return;
            }
            // Only early items: the calendar starts over at the first of them.
            while let Some(bucket) = self.ring.pop_front() {
                self.recycle(bucket);
            }
            let early = std::mem::take(&mut self.early);
            let first = early.peek().expect("early items").0.due_ms();
            self.base = self.bucket(first);
            self.head_sorted = false;
            for Reverse(item) in early.into_vec() {
                self.place(item);
            }
        }
        loop {
            match self.ring.front() {
                Some(head) if !head.is_empty() => break,
                Some(_) => {
                    let empty = self.ring.pop_front().expect("a front bucket");
                    self.recycle(empty);
                    self.base += 1;
                    self.head_sorted = false;
                }
                None => {
                    let Some(Reverse(next)) = self.far.peek() else {
                        unreachable!("{} items but none in the calendar or beyond", self.len)
                    };
                    self.base = self.bucket(next.due_ms());
                    self.head_sorted = false;
                }
            }
            self.take_in_window();
        }
        if !self.head_sorted {
            self.sort_head();
            self.head_sorted = true;
        }
    }

    /// Sorts `ring[0]`, largest first: by the millisecond within the bucket in linear time
    /// ([`sort_by_key_below`]) when the bucket holds many items for its width, then by the rest of
    /// the order among items due in the same millisecond (an insertion sort: such ties are few);
    /// a plain sort for a few items in a wide bucket, or when the ties are many.
    fn sort_head(&mut self) {
        let head = &mut self.ring[0];
        let count = head.len();
        if count < 2 {
            return;
        }
        let width = 1usize << self.shift;
        if count * 8 < width {
            head.sort_unstable_by(|a, b| b.cmp(a));
            return;
        }
        let start = self.base << self.shift;
        // Largest first.
        let key = |item: &T| {
            width
                - 1
                - item
                    .due_ms()
                    .saturating_sub(start)
                    .clamp(0, width as i64 - 1) as usize
        };
        sort_by_key_below(head, width, key, &mut self.scratch);
        let mut budget = 2 * count + 64;
        for next in 1..count {
            let mut at = next;
            while at > 0 && head[at - 1] < head[at] {
                head.swap(at - 1, at);
                at -= 1;
                budget = budget.saturating_sub(1);
            }
            if budget == 0 {
                head.sort_unstable_by(|a, b| b.cmp(a));
                return;
            }
        }
    }

    /// Moves the items the window now reaches from the heap into their buckets.
    fn take_in_window(&mut self) {
        while let Some(Reverse(next)) = self.far.peek() {
            if self.bucket(next.due_ms()).saturating_sub(self.base) >= self.window {
                return;
            }
            let Reverse(item) = self.far.pop().expect("peeked");
            self.place(item);
        }
    }

    /// Whether the smallest item is an early one; call after [`DueQueue::settle`].
    #[inline]
    fn early_first(&self) -> bool {
        match self.early.peek() {
            None => false,
            Some(Reverse(early)) => self
                .ring
                .front()
                .and_then(|head| head.last())
                .is_none_or(|calendar| early < calendar),
        }
    }

    /// The smallest item, made easy to find: call it (or [`DueQueue::pop`]) before
    /// [`DueQueue::peek`] when many reads follow.
    pub fn peek_mut_settled(&mut self) -> Option<&T> {
        self.settle();
        if self.early_first() {
            return self.early.peek().map(|Reverse(item)| item);
        }
        self.ring.front().and_then(|head| head.last())
    }

    /// The smallest item. Quick after [`DueQueue::pop`] or [`DueQueue::peek_mut_settled`];
    /// otherwise it looks through the first bucket that holds any.
    pub fn peek(&self) -> Option<&T> {
        if self.len == 0 {
            return None;
        }
        let calendar = if self.head_sorted
            && let Some(smallest) = self.ring.front().and_then(|head| head.last())
        {
            Some(smallest)
        } else {
            match self.ring.iter().find(|bucket| !bucket.is_empty()) {
                Some(bucket) => bucket.iter().min(),
                None => self.far.peek().map(|Reverse(item)| item),
            }
        };
        let early = self.early.peek().map(|Reverse(item)| item);
        match (calendar, early) {
            (Some(calendar), Some(early)) => Some(calendar.min(early)),
            (calendar, early) => calendar.or(early),
        }
    }

    /// The item `distance` places after the smallest (0: the smallest), when the bucket that is
    /// up holds it in order (`None` otherwise): a hint of what is taken soon, so what it points
    /// to can be fetched early.
    #[inline]
    pub fn soon(&self, distance: usize) -> Option<&T> {
        let head = self.ring.front().filter(|_| self.head_sorted)?;
        head.len().checked_sub(distance + 1).map(|at| &head[at])
    }

    /// Takes the smallest item out.
    pub fn pop(&mut self) -> Option<T> {
        self.pop_if(|_| true)
    }

    /// Takes the smallest item out if `take` says so.
    #[inline]
    pub fn pop_if(&mut self, take: impl FnOnce(&T) -> bool) -> Option<T> {
        self.settle();
        let item = if self.early_first() {
            let smallest = self.early.peek_mut().expect("an early item");
            if !take(&smallest.0) {
                return None;
            }
            std::collections::binary_heap::PeekMut::pop(smallest).0
        } else {
            let head = self.ring.front_mut()?;
            if !take(head.last()?) {
                return None;
            }
            head.pop()?
        };
        self.len -= 1;
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Random pushes and pops (times mostly ahead of the last one taken, some before it, some
    /// far beyond the window) come out exactly as from a binary heap.
    #[test]
    fn takes_items_out_in_the_order_of_a_heap() {
        for shift in [0, 3, 7, 10] {
            let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(shift));
            let mut queue = DueQueue::new(shift);
            let mut heap = BinaryHeap::new();
            let mut now = 1_000_000i64;
            for step in 0..200_000u32 {
                if rng.random_bool(0.52) {
                    let ahead = match rng.random_range(0..100) {
                        0 => -rng.random_range(0..5_000),
                        1 => rng.random_range(0..100_000_000),
                        _ => rng.random_range(0..60_000),
                    };
                    let item = (now + ahead, rng.random_range(0..50u32), step);
                    queue.push(item);
                    heap.push(Reverse(item));
                } else {
                    let expected = heap.pop().map(|Reverse(item)| item);
                    assert_eq!(
                        queue.peek().copied(),
                        expected,
                        "shift {shift}, step {step}"
                    );
                    assert_eq!(queue.pop(), expected, "shift {shift}, step {step}");
                    if let Some((due, _, _)) = expected {
                        now = now.max(due);
                    }
                }
                assert_eq!(queue.len(), heap.len());
            }
            while let Some(Reverse(item)) = heap.pop() {
                assert_eq!(queue.pop(), Some(item));
            }
            assert!(queue.is_empty() && queue.pop().is_none() && queue.peek().is_none());
        }
    }

    #[test]
    fn a_bucket_with_many_earlier_items_is_sorted_too() {
        let mut queue = DueQueue::new(6);
        let mut items = Vec::new();
        // The first item sets the calendar's start; the rest are due up to a second before it,
        // so they all go into its first bucket and come out in order.
        for step in 0..2_000u32 {
            let item = (10_000 - i64::from(step % 1_000), step % 7, step);
            queue.push(item);
            items.push(item);
        }
        items.sort();
        let out: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(out, items);
    }

    /// The calendar jumps ahead to a far item when nothing nearer is left; what comes after,
    /// due before it, is taken out in order (from the early heap, not by sorting the bucket that
    /// is up again after each push).
    #[test]
    fn items_due_before_a_jump_ahead_come_out_in_order() {
        let mut queue = DueQueue::new(7);
        let mut heap = BinaryHeap::new();
        let far = (36_000_000i64, 0u32, 0u32);
        queue.push(far);
        heap.push(Reverse(far));
        queue.push((1_000, 0, 1));
        heap.push(Reverse((1_000, 0, 1)));
        assert_eq!(queue.pop(), Some((1_000, 0, 1)));
        heap.pop();
        // Only the far item is left: the next take jumps the calendar to it.
        assert_eq!(queue.peek_mut_settled(), Some(&far));
        for step in 2..20_000u32 {
            let item = (2_000 + i64::from(step % 500) * 37, step % 3, step);
            queue.push(item);
            heap.push(Reverse(item));
            if step % 3 == 0 {
                assert_eq!(
                    queue.pop(),
                    heap.pop().map(|Reverse(item)| item),
                    "step {step}"
                );
            }
        }
        while let Some(Reverse(item)) = heap.pop() {
            assert_eq!(queue.peek().copied(), Some(item));
            assert_eq!(queue.pop(), Some(item));
        }
        assert!(queue.is_empty());
    }

    #[test]
    fn sorting_by_a_small_key_keeps_the_order_of_equal_keys() {
        let mut items: Vec<(usize, u32)> = (0..1_000u32)
            .map(|n| ((n as usize * 7_919) % 13, n))
            .collect();
        let mut expected = items.clone();
        expected.sort_by_key(|item| item.0);
        sort_by_key_below(&mut items, 13, |item| item.0, &mut SortScratch::default());
        assert_eq!(items, expected);
    }

    #[test]
    fn soon_names_what_pop_takes_later_or_nothing() {
        let mut queue = DueQueue::new(4);
        for due in [3, 1, 2, 5, 40] {
            queue.push((due, 0, 0));
        }
        assert_eq!(
            queue.soon(0),
            None,
            "nothing is sorted before the first take"
        );
        assert_eq!(queue.pop(), Some((1, 0, 0)));
        // The bucket up (0 to 15 ms) is sorted now; 40 ms lies in a later one.
        assert_eq!(queue.soon(0), Some(&(2, 0, 0)));
        assert_eq!(queue.soon(1), Some(&(3, 0, 0)));
        assert_eq!(queue.soon(2), Some(&(5, 0, 0)));
        assert_eq!(queue.soon(3), None);
        assert_eq!(queue.pop(), Some((2, 0, 0)));
        assert_eq!(queue.soon(0), Some(&(3, 0, 0)));
    }

    #[test]
    fn pop_if_leaves_what_it_refuses() {
        let mut queue = DueQueue::new(4);
        for due in [30, 10, 20] {
            queue.push((due, 0, 0));
        }
        assert_eq!(queue.pop_if(|item| item.0 <= 15), Some((10, 0, 0)));
        assert_eq!(queue.pop_if(|item| item.0 <= 15), None);
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.peek(), Some(&(20, 0, 0)));
    }

    #[test]
    fn negative_and_extreme_times_keep_their_order() {
        for shift in [0, 6] {
            let mut queue = DueQueue::new(shift);
            let items = [
                (i64::MAX, 0, 0),
                (-5, 1, 0),
                (i64::MIN, 0, 0),
                (0, 0, 0),
                (-5, 0, 0),
                (i64::MAX - 1, 0, 0),
            ];
            for item in items {
                queue.push(item);
            }
            let mut sorted = items.to_vec();
            sorted.sort();
            let out: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
            assert_eq!(out, sorted, "shift {shift}");
        }
    }

    #[test]
    fn nearly_sorted_items_are_sorted_stably_whether_or_not_the_budget_runs_out() {
        // (key, position): a few out of place, then all reversed (beyond any budget).
        let nearly: Vec<(u32, usize)> = [3, 1, 2, 2, 5, 4, 4, 9, 7, 8]
            .into_iter()
            .enumerate()
            .map(|(at, key)| (key, at))
            .collect();
        let reversed: Vec<(u32, usize)> = (0..500).map(|at| ((500 - at) as u32 / 3, at)).collect();
        for items in [nearly, reversed] {
            let mut expected = items.clone();
            expected.sort_by_key(|item| item.0);
            let mut sorted = items;
            sort_nearly_sorted_by(&mut sorted, 1, |a, b| a.0.cmp(&b.0));
            assert_eq!(sorted, expected);
        }
    }
}
