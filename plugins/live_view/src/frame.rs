//! What the page is sent: one *hello* when it connects (the layout, the topics, the speed and the
//! recent history), then *frames*, at most one per [`FRAME_INTERVAL`] whatever the event rate.
//!
//! A frame is self-contained (every position, not a diff), so a page that misses frames, because
//! it reads slowly or its frames were skipped, is right again with the next one. Positions are a
//! little-endian `u16` array `[x0, y0, x1, y1, …]` by slot ([`crate::floor`]), base64 in the
//! frame's JSON: 4 bytes per shopper before base64, about 53 KB per frame for 10,000 shoppers.
//! Coordinates are clamped to the store (at most 65,535 units wide, so they fit below `0xFFFF`,
//! which marks a free slot).
//!
//! Frames and hellos are built once, already encoded as Server-Sent Events, and shared by every
//! page (a [`Bytes`] is a reference-counted view): a page costs no copy of what it is sent.
//!
//! When the pipeline has checks, the frame task also reads them once per
//! [`crate::checks::CHECKS_INTERVAL`] into a `checks` event (module `checks`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use customersim_plugin_api::{Clock, LiveChecks, LoadPlan, StoreLayout, Topics};
use serde::Serialize;
use tokio::sync::watch;
// Tokio's, so that tests can run the frame task on paused time.
use tokio::time::Instant;

use crate::checks::{CHECKS_INTERVAL, Checks};
use crate::floor::{Floor, KindCounts};

/// The shortest time between two frames: at most 20 frames a second.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(50);

/// Points of history kept (one a second: ten minutes) and sent to a page when it connects.
const HISTORY_POINTS: usize = 600;

/// Wall time between two history points.
const HISTORY_STEP: Duration = Duration::from_secs(1);

/// The window rates are measured over.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// Marks a free slot in the positions array.
const FREE: u16 = u16::MAX;

/// What the sink, the frame task and the HTTP handlers share.
pub struct View {
    /// Who is where; the sink writes it, frames and `/state` read it.
    pub floor: Mutex<Floor>,
    /// The floor plan drawn by the page.
    pub layout: StoreLayout,
    /// The distinct topic names (enter, move, exit, then focus if set), the columns of rates.
    pub topics: Vec<String>,
    /// The index in `topics` of each event kind (enter, move, exit, focus).
    topic_of_kind: [usize; 4],
    /// The run's clock.
    pub clock: Clock,
    /// The load stages, as this process's share of them (its stores), when the pipeline has
    /// any: frames carry the target of the moment.
    load: Option<LoadPlan>,
    /// One point a second, oldest first.
    history: Mutex<History>,
    /// The hello built last and the history point it was built after, shared by the pages
    /// that connect until the next point.
    hello: Mutex<Option<(u64, Bytes)>>,
    /// The latest frame (a whole `frame` event); each page's stream waits on its own clone.
    pub frames: watch::Receiver<Bytes>,
    /// The run's checks; `None` when the pipeline has none.
    pub checks: Option<Checks>,
}

/// The time series of the last ten minutes.
#[derive(Default)]
struct History {
    samples: VecDeque<Sample>,
    /// Points added since the start: tells a cached hello whether it is still current.
    added: u64,
}

/// One point of the time series.
#[derive(Clone, Debug, Serialize)]
struct Sample {
    /// Wall-clock milliseconds since the epoch.
    wall_ms: i64,
    /// The simulated clock.
    clock_ms: i64,
    /// Shoppers inside.
    inside: usize,
    /// Events per wall second, by topic.
    rates: Vec<f64>,
    /// The highest lag of the second (simulated ms); `None` when no event came.
    lag_ms: Option<i64>,
}

impl View {
    /// The shared view, and the sending side of its frames for [`run_frames`].
    pub fn new(
        layout: StoreLayout,
        topics: &Topics,
        clock: Clock,
        load: Option<LoadPlan>,
        checks: Option<LiveChecks>,
    ) -> (Arc<View>, watch::Sender<Bytes>) {
        let mut names: Vec<String> = Vec::new();
        let mut topic_of_kind = [0; 4];
        let focus = topics.focus.as_deref();
        let kinds = [
            Some(topics.enter.as_str()),
            Some(topics.moves.as_str()),
            Some(topics.exit.as_str()),
            focus,
        ];
        for (kind, name) in kinds.into_iter().enumerate() {
            // Focus events without a focus topic go to the fallback topic; they are rare enough
            // (a shared timeline) to count with the moves they follow.
            let Some(name) = name else {
                topic_of_kind[kind] = topic_of_kind[1];
                continue;
            };
            topic_of_kind[kind] = match names.iter().position(|seen| seen == name) {
                Some(index) => index,
                None => {
                    names.push(name.to_string());
                    names.len() - 1
                }
            };
        }
        let (sender, frames) = watch::channel(Bytes::new());
        let view = View {
            floor: Mutex::new(Floor::new(layout.entrance())),
            layout,
            topics: names,
            topic_of_kind,
            clock,
            load,
            history: Mutex::new(History::default()),
            hello: Mutex::new(None),
            frames,
            checks: checks.map(Checks::new),
        };
        (Arc::new(view), sender)
    }

    /// The floor, also after a panic elsewhere (the model stays usable).
    pub fn floor(&self) -> std::sync::MutexGuard<'_, Floor> {
        self.floor.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn per_topic(&self, by_kind: [f64; 4]) -> Vec<f64> {
        let mut out = vec![0.0; self.topics.len()];
        for (kind, value) in by_kind.into_iter().enumerate() {
            out[self.topic_of_kind[kind]] += value;
        }
        out
    }

    /// The first event a page gets (`hello`): everything that does not change, and the history.
    /// Built at most once per history point and shared by the pages that connect meanwhile.
    pub fn hello(&self) -> Bytes {
        let mut cached = self.hello.lock().unwrap_or_else(PoisonError::into_inner);
        let (added, history) = {
            let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((built_after, hello)) = &*cached
                && *built_after == history.added
            {
                return hello.clone();
            }
            (history.added, history.samples.iter().cloned().collect())
        };
        let layout = &self.layout;
        let hello = Hello {
            layout: LayoutJson {
                width: layout.width(),
                height: layout.height(),
                cell: layout.cell(),
                entrance: layout.entrance(),
                exit: layout.exit(),
                zones: layout
                    .zones()
                    .iter()
                    .map(|zone| ZoneJson {
                        name: &zone.name,
                        kind: zone.kind.as_str(),
                        area: zone.area,
                    })
                    .collect(),
            },
            topics: &self.topics,
            speed: self.clock.speed(),
            origin_ms: self.clock.origin_ms(),
            frame_ms: FRAME_INTERVAL.as_millis() as u64,
            history,
        };
        let hello = sse_event(
            "hello",
            &serde_json::to_vec(&hello).expect("the hello serializes"),
        );
        *cached = Some((added, hello.clone()));
        hello
    }

    /// `GET /state`: the clock, how many are inside and where the first `limit` of them by id
    /// stand; `truncated` says whether some were left out; the checks as last read, if any.
    pub fn state(&self, limit: usize) -> Vec<u8> {
        let (inside, shoppers) = {
            let floor = self.floor();
            (floor.inside(), floor.first_shoppers(limit))
        };
        let checks = self.checks.as_ref().and_then(Checks::latest);
        let state = State {
            clock_ms: self.clock.now_ms(),
            inside,
            truncated: shoppers.len() < inside,
            shoppers: shoppers
                .into_iter()
                .map(|(id, (x, y))| Shopper {
                    id: id.to_string(),
                    x,
                    y,
                })
                .collect(),
            checks: checks.as_deref(),
        };
        serde_json::to_vec(&state).expect("the state serializes")
    }
}

/// One Server-Sent Event whose data is one line of JSON (serde_json escapes every line break
/// inside strings, so the data needs no splitting).
pub fn sse_event(name: &str, json: &[u8]) -> Bytes {
    debug_assert!(!json.contains(&b'\n'));
    let mut out = Vec::with_capacity(json.len() + name.len() + 16);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

#[derive(Serialize)]
struct Hello<'a> {
    layout: LayoutJson<'a>,
    topics: &'a [String],
    /// Simulated seconds per wall second; `null` for `speed: max`.
    speed: Option<f64>,
    /// The simulated instant the run started at.
    origin_ms: i64,
    frame_ms: u64,
    history: Vec<Sample>,
}

#[derive(Serialize)]
struct LayoutJson<'a> {
    width: u32,
    height: u32,
    cell: u32,
    entrance: (u32, u32),
    exit: (u32, u32),
    zones: Vec<ZoneJson<'a>>,
}

#[derive(Serialize)]
struct ZoneJson<'a> {
    name: &'a str,
    kind: &'static str,
    area: [u32; 4],
}

#[derive(Serialize)]
struct State<'a> {
    clock_ms: i64,
    /// Shoppers inside, all of them.
    inside: usize,
    /// Whether `shoppers` lists fewer than `inside` (the first by id are listed).
    truncated: bool,
    shoppers: Vec<Shopper>,
    /// The run's checks as last read (module `checks`); absent when the pipeline has none, and
    /// before the first read.
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<&'a serde_json::Value>,
}

#[derive(Serialize)]
struct Shopper {
    id: String,
    x: i64,
    y: i64,
}

#[derive(Serialize)]
struct Frame<'a> {
    seq: u64,
    clock_ms: i64,
    /// Simulated seconds per wall second over the last second (the clock racing at `max`).
    sim_rate: f64,
    /// The highest lag since the previous frame (simulated ms), or the last one measured when no
    /// event came since; `null` before the first event.
    lag_ms: Option<i64>,
    inside: usize,
    /// Events so far, by topic.
    totals: Vec<u64>,
    /// Events per wall second over the last second, by topic.
    rates: Vec<f64>,
    /// The events per simulated second the load stages ask for now (this process's stores);
    /// `null` without `load:`. At speed 1 it compares with the sum of `rates`.
    target: Option<f64>,
    /// Shoppers in each zone (index of the layout's zones; obstacles stay 0).
    zones: Vec<u32>,
    /// Base64 of the positions array (module docs).
    pos: &'a str,
}

/// Appends one slot's position, clamped to the store.
fn push_position(out: &mut Vec<u8>, at: Option<(i64, i64)>, layout: &StoreLayout) {
    let (x, y) = match at {
        None => (FREE, FREE),
        Some((x, y)) => {
            // The layout keeps extents at most 65,535, so a clamped value is below FREE.
            let fit = |value: i64, extent: u32| value.clamp(0, i64::from(extent) - 1) as u16;
            (fit(x, layout.width()), fit(y, layout.height()))
        }
    };
    out.extend_from_slice(&x.to_le_bytes());
    out.extend_from_slice(&y.to_le_bytes());
}

/// The frame task: every [`FRAME_INTERVAL`], a frame for the pages (only while one is
/// connected); every second, a history point and, when the pipeline has checks, a read of them
/// (pages open or not, so `/state` has them too). Ends when `frames`' receivers are all gone or
/// when aborted; dropping `frames` ends the pages' streams.
pub async fn run_frames(view: Arc<View>, frames: watch::Sender<Bytes>) {
    let mut ticks = tokio::time::interval(FRAME_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut window: VecDeque<(Instant, KindCounts, i64)> = VecDeque::new();
    let mut next_sample = Instant::now() + HISTORY_STEP;
    let mut next_checks = Instant::now();
    let mut lag_of_second: Option<i64> = None;
    let mut last_lag: Option<i64> = None;
    let mut raw = Vec::new();
    let mut encoded = String::new();
    let mut seq = 0;
    loop {
        ticks.tick().await;
        let now = Instant::now();
        let clock_ms = view.clock.now_ms();
        // The viewer's own reference to the channel counts as one receiver.
        let pages = frames.receiver_count() > 1;
        raw.clear();
        let (counts, lag_ms, inside) = {
            let mut floor = view.floor();
            if pages {
                for at in floor.positions() {
                    push_position(&mut raw, at, &view.layout);
                }
            }
            (floor.counts(), floor.take_lag(), floor.inside())
        };
        lag_of_second = lag_of_second.max(lag_ms);
        let lag_ms = lag_ms.or(last_lag);
        last_lag = lag_ms;
        window.push_back((now, counts, clock_ms));
        while window.len() > 2 && now.duration_since(window[1].0) >= RATE_WINDOW {
            window.pop_front();
        }
        let (since, base, base_clock_ms) = window[0];
        let seconds = now.duration_since(since).as_secs_f64();
        let per_second = |delta: f64| if seconds > 0.0 { delta / seconds } else { 0.0 };
        let rates = view.per_topic(std::array::from_fn(|kind| {
            per_second((counts[kind] - base[kind]) as f64)
        }));
        if now >= next_sample {
            next_sample = now + HISTORY_STEP;
            let mut history = view.history.lock().unwrap_or_else(PoisonError::into_inner);
            if history.samples.len() == HISTORY_POINTS {
                history.samples.pop_front();
            }
            history.added += 1;
            history.samples.push_back(Sample {
                wall_ms: wall_ms(),
                clock_ms,
                inside,
                rates: rates.clone(),
                lag_ms: lag_of_second.take(),
            });
        }
        if let Some(checks) = &view.checks
            && now >= next_checks
        {
            next_checks = now + CHECKS_INTERVAL;
            checks.refresh();
        }
        if !pages {
            continue;
        }
        let zones = zone_counts(&raw, &view.layout);
        encoded.clear();
        STANDARD.encode_string(&raw, &mut encoded);
        seq += 1;
        let frame = Frame {
            seq,
            clock_ms,
            sim_rate: per_second((clock_ms - base_clock_ms) as f64 / 1000.0),
            lag_ms,
            inside,
            totals: view
                .per_topic(counts.map(|count| count as f64))
                .into_iter()
                .map(|total| total as u64)
                .collect(),
            rates,
            target: view
                .load
                .as_ref()
                .map(|plan| plan.target_at(clock_ms - view.clock.origin_ms())),
            zones,
            pos: &encoded,
        };
        let json = serde_json::to_vec(&frame).expect("the frame serializes");
        if frames.send(sse_event("frame", &json)).is_err() {
            return;
        }
    }
}

/// Shoppers per zone, from the positions of a frame (the consumers' rule: the walkable
/// zone whose rectangle holds the point).
fn zone_counts(raw: &[u8], layout: &StoreLayout) -> Vec<u32> {
    let mut counts = vec![0; layout.zones().len()];
    if counts.is_empty() {
        return counts;
    }
    for pair in raw.chunks_exact(4) {
        let x = u16::from_le_bytes([pair[0], pair[1]]);
        let y = u16::from_le_bytes([pair[2], pair[3]]);
        if x == FREE {
            continue;
        }
        if let Some(zone) = layout.zone_at_point(u32::from(x), u32::from(y)) {
            counts[zone] += 1;
        }
    }
    counts
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use customersim_plugin_api::host::ClockDriver;
    use customersim_plugin_api::{CustomerId, Event, EventKind, LayoutSpec, Zone, ZoneKind};

    fn demo_layout() -> StoreLayout {
        let mut spec = LayoutSpec::grid(100, 80, (0, 0));
        spec.cell = 10;
        spec.zones = vec![
            Zone::new("Wall", ZoneKind::Obstacle, [50, 0, 52, 30]),
            Zone::new("Women", ZoneKind::Department, [0, 40, 49, 79]),
        ];
        StoreLayout::new(spec).unwrap()
    }

    /// The JSON of a Server-Sent Event named `name`.
    fn data_of(event: &[u8], name: &str) -> serde_json::Value {
        let text = std::str::from_utf8(event).unwrap();
        let rest = text
            .strip_prefix(&format!("event: {name}\ndata: "))
            .unwrap_or_else(|| panic!("not a {name} event: {text:.100}"));
        let json = rest
            .strip_suffix("\n\n")
            .expect("an event ends with a blank line");
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_hello_is_shared_until_the_next_history_point() {
        let clock = ClockDriver::virtual_at(0).clock();
        let (view, _frames) = View::new(demo_layout(), &Topics::default(), clock, None, None);
        let first = view.hello();
        assert_eq!(first.as_ptr(), view.hello().as_ptr(), "one hello, shared");
        view.history.lock().unwrap().added += 1;
        assert_ne!(
            first.as_ptr(),
            view.hello().as_ptr(),
            "rebuilt after a new point"
        );
    }

    #[test]
    fn positions_are_clamped_u16_pairs_with_free_slots_marked() {
        let layout = StoreLayout::grid(6, 10, (0, 0));
        let mut out = Vec::new();
        push_position(&mut out, Some((2, 3)), &layout);
        push_position(&mut out, None, &layout);
        push_position(&mut out, Some((-4, 99)), &layout);
        assert_eq!(out, [2, 0, 3, 0, 255, 255, 255, 255, 0, 0, 9, 0]);
        let widest = StoreLayout::grid(65_535, 10, (0, 0));
        out.clear();
        push_position(&mut out, Some((i64::MAX, 0)), &widest);
        assert_eq!(u16::from_le_bytes([out[0], out[1]]), 65_534);
    }

    #[test]
    fn zones_are_counted_by_the_rectangle_holding_the_position() {
        let layout = demo_layout();
        let mut raw = Vec::new();
        for at in [Some((5, 45)), Some((45, 75)), None, Some((60, 10))] {
            push_position(&mut raw, at, &layout);
        }
        assert_eq!(zone_counts(&raw, &layout), [0, 2]);
    }

    #[test]
    fn topics_shared_by_kinds_are_one_column() {
        let topics = Topics {
            enter: "door".into(),
            moves: "customer/move".into(),
            exit: "door".into(),
            focus: None,
            truth: Default::default(),
            per_store: Default::default(),
        };
        let clock = ClockDriver::virtual_at(0).clock();
        let (view, _frames) = View::new(StoreLayout::default(), &topics, clock, None, None);
        assert_eq!(view.topics, ["door", "customer/move"]);
        assert_eq!(view.per_topic([1.0, 2.0, 3.0, 4.0]), [4.0, 6.0]);
    }

    #[tokio::test]
    async fn a_frame_carries_every_position_and_the_counts() {
        let clock = ClockDriver::virtual_at(1_000).clock();
        let (view, sender) = View::new(demo_layout(), &Topics::default(), clock, None, None);
        let mut page = view.frames.clone();
        view.floor().apply(
            &[
                Event {
                    due_ms: 1_000,
                    customer: CustomerId::Number(7),
                    kind: EventKind::Move { x: 5, y: 45 },
                    store: 0,
                    stamp: Default::default(),
                },
                Event {
                    due_ms: 1_000,
                    customer: CustomerId::parse("x"),
                    kind: EventKind::Enter,
                    store: 0,
                    stamp: Default::default(),
                },
            ],
            1_000,
        );
        let task = tokio::spawn(run_frames(view.clone(), sender));
        page.changed().await.unwrap();
        let frame = data_of(&page.borrow_and_update(), "frame");
        assert_eq!(frame["inside"], 2);
        assert_eq!(frame["target"], serde_json::Value::Null, "no load stages");
        assert_eq!(frame["totals"], serde_json::json!([1, 1, 0]));
        assert_eq!(frame["zones"], serde_json::json!([0, 1]));
        let raw = STANDARD.decode(frame["pos"].as_str().unwrap()).unwrap();
        let (ex, ey) = view.layout.entrance();
        assert_eq!(raw, [5, 0, 45, 0, ex as u8, 0, ey as u8, 0]);
        let state: serde_json::Value = serde_json::from_slice(&view.state(10)).unwrap();
        assert_eq!(state["inside"], 2);
        assert_eq!(state["truncated"], false);
        assert_eq!(
            state["shoppers"][0],
            serde_json::json!({"id": "7", "x": 5, "y": 45})
        );
        let state: serde_json::Value = serde_json::from_slice(&view.state(1)).unwrap();
        assert_eq!(state["inside"], 2);
        assert_eq!(state["truncated"], true);
        assert_eq!(state["shoppers"].as_array().unwrap().len(), 1);
        let hello = data_of(&view.hello(), "hello");
        assert_eq!(hello["layout"]["zones"][1]["name"], "Women");
        assert_eq!(hello["speed"], serde_json::Value::Null);
        task.abort();
    }

    #[tokio::test]
    async fn a_frame_carries_the_target_of_the_load_stages_at_its_clock() {
        use customersim_plugin_api::LoadStage;
        let driver = ClockDriver::virtual_at(1_000);
        // 0 → 400 events/s over the first 20 s, held for 40 s: 100/s at 5 s.
        let plan = LoadPlan::new(
            vec![LoadStage {
                duration_ms: 60_000,
                events_per_second: 400.0,
            }],
            20_000,
        );
        let (view, sender) = View::new(
            StoreLayout::default(),
            &Topics::default(),
            driver.clock(),
            Some(plan),
            None,
        );
        let mut page = view.frames.clone();
        driver.advance_to(6_000);
        let task = tokio::spawn(run_frames(view.clone(), sender));
        page.changed().await.unwrap();
        let frame = data_of(&page.borrow_and_update(), "frame");
        assert_eq!(frame["target"], 100.0);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn checks_are_read_once_a_second_and_shown_in_state() {
        let clock = ClockDriver::virtual_at(0).clock();
        let (source, reads) = crate::checks::tests::scripted(&[
            r#"{"expectations": [{"name": "coupons", "answered": 3}], "thresholds": []}"#,
        ]);
        let (view, sender) =
            View::new(demo_layout(), &Topics::default(), clock, None, Some(source));
        let state: serde_json::Value = serde_json::from_slice(&view.state(10)).unwrap();
        assert!(state.get("checks").is_none(), "nothing read yet: {state}");
        let mut page = view.frames.clone();
        let task = tokio::spawn(run_frames(view.clone(), sender));
        // Three and a half seconds of frames (70 of them): four reads, the first at once.
        let until = tokio::time::Instant::now() + Duration::from_millis(3_500);
        let mut frames = 0;
        while tokio::time::Instant::now() < until {
            page.changed().await.unwrap();
            page.borrow_and_update();
            frames += 1;
        }
        assert!(frames >= 60, "{frames} frames");
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 4);
        let state: serde_json::Value = serde_json::from_slice(&view.state(10)).unwrap();
        assert_eq!(state["checks"]["expectations"][0]["name"], "coupons");
        assert_eq!(state["checks"]["expectations"][0]["answered"], 3);
        task.abort();
    }

    #[test]
    fn a_view_without_checks_has_none_in_state() {
        let clock = ClockDriver::virtual_at(0).clock();
        let (view, _frames) = View::new(demo_layout(), &Topics::default(), clock, None, None);
        assert!(view.checks.is_none());
        let state: serde_json::Value = serde_json::from_slice(&view.state(10)).unwrap();
        assert!(state.get("checks").is_none(), "{state}");
    }
}
