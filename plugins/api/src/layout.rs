//! The store's floor plan: its coordinate space, its zones and the walking grid shoppers move on.
//!
//! Consumers see positions as integer *store coordinates* in `[0, width) × [0, height)` (in the
//! original demo, pixels of a 1808×1315 store plan). Shoppers do not move pixel by pixel: they stand
//! on the centres of a square *walking grid* of pitch `cell` and one step goes to one of the 8
//! neighbouring cells. With `cell: 1` and no zones the grid is the coordinate space itself (the
//! original 6×10 grid), and the centre of cell `(c, r)` is exactly `(c, r)`.
//!
//! # Rules (what every source and check relies on)
//! - **Cells.** Column `c` covers `x` in `c·cell ..= min((c+1)·cell, width) − 1` (the last column
//!   and row may be narrower). There are `ceil(width / cell)` columns and `ceil(height / cell)`
//!   rows. The centre of a cell is the middle of the part of it inside the store, rounded down, so
//!   it is always a point of the store and of the cell.
//! - **Obstacles block every cell they touch.** A cell is not walkable when any point of it lies
//!   in an obstacle rectangle. Thin walls (a wall drawn 9 px thick on a 20 px grid) therefore
//!   always block, and a published position (a walkable cell's centre) is never inside an obstacle.
//! - **Zones of a cell.** A cell belongs to the department or checkout whose rectangle contains its
//!   centre; departments and checkouts must not overlap, so there is at most one.
//! - **Steps.** A shopper steps to one of the 8 neighbours that is walkable; a diagonal step also
//!   needs both cells it squeezes between to be walkable, so nobody slips through the corner where
//!   two obstacles touch.
//! - **Entrance and exit** are points of the store snapped to the cell they lie in; that cell must be
//!   walkable, and the exit and every department and checkout must be reachable from it.
//!
//! Layouts without zones keep no per-cell data (every cell is walkable and in no zone), so the
//! original grid stays free at any size; layouts with zones keep two bytes and a flag per cell.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What a zone is to a shopper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(crate = "serde", rename_all = "lowercase")]
pub enum ZoneKind {
    /// Walkable; browsed by shoppers; its name is the `dep` of focus events.
    Department,
    /// Walkable; where baskets are paid, with a queue.
    Checkout,
    /// Not walkable (walls, shelves, counters): every cell it touches is blocked.
    Obstacle,
}

impl ZoneKind {
    /// The name used in the pipeline file (`department`, `checkout`, `obstacle`).
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneKind::Department => "department",
            ZoneKind::Checkout => "checkout",
            ZoneKind::Obstacle => "obstacle",
        }
    }
}

impl fmt::Display for ZoneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named rectangle of the store (`store.zones[i]` of the pipeline file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(crate = "serde", deny_unknown_fields)]
pub struct Zone {
    /// Unique within the layout; a department's name is what consumers see as `dep`, so the demo
    /// uses the names coupons are filed under.
    pub name: String,
    /// Whether shoppers browse it, pay in it or cannot enter it.
    pub kind: ZoneKind,
    /// `[x1, y1, x2, y2]`, inclusive, in store coordinates: the same convention as the consumers'
    /// department tables, so their rectangles can be copied in unchanged.
    pub area: [u32; 4],
    /// How often shoppers pick this zone relative to the others of its kind (0 = never); ignored
    /// for obstacles.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Departments only: whether consumers know it as a department, so a focus event may name it
    /// (`topics.focus`). `false` for a room shoppers browse that the consumers have no department
    /// for (the original recommendation service fails on a focus naming one): reports in it count
    /// as reports outside every department.
    #[serde(default = "default_focus")]
    pub focus: bool,
}

/// Every zone is as likely as the others unless the layout says otherwise.
fn default_weight() -> f64 {
    1.0
}

/// A department is one the consumers know unless the layout says otherwise.
fn default_focus() -> bool {
    true
}

impl Zone {
    /// A zone of the default weight.
    pub fn new(name: impl Into<String>, kind: ZoneKind, area: [u32; 4]) -> Zone {
        Zone {
            name: name.into(),
            kind,
            area,
            weight: default_weight(),
            focus: default_focus(),
        }
    }

    /// Whether `(x, y)` lies in the zone's inclusive rectangle.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        let [x1, y1, x2, y2] = self.area;
        (x1..=x2).contains(&x) && (y1..=y2).contains(&y)
    }

    /// Whether shoppers may stand in the zone (departments and checkouts).
    pub fn is_walkable(&self) -> bool {
        self.kind != ZoneKind::Obstacle
    }

    fn overlaps(&self, other: &Zone) -> bool {
        let [ax1, ay1, ax2, ay2] = self.area;
        let [bx1, by1, bx2, by2] = other.area;
        ax1 <= bx2 && bx1 <= ax2 && ay1 <= by2 && by1 <= ay2
    }
}

/// What a layout is made from (the resolved `store:` section); checked by [`StoreLayout::new`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayoutSpec {
    /// Extent of the coordinate space along x: positions have `x` in `0..width`.
    pub width: u32,
    /// Extent along y: positions have `y` in `0..height`.
    pub height: u32,
    /// Pitch of the walking grid in store units (at least 1).
    pub cell: u32,
    /// Where shoppers come in (a point of the store; snapped to its cell).
    pub entrance: (u32, u32),
    /// Where shoppers leave (a point of the store; snapped to its cell).
    pub exit: (u32, u32),
    /// Departments, checkouts and obstacles.
    pub zones: Vec<Zone>,
}

impl LayoutSpec {
    /// The original plan: a `width × height` grid of unit cells, one door, no zones.
    pub fn grid(width: u32, height: u32, door: (u32, u32)) -> LayoutSpec {
        LayoutSpec {
            width,
            height,
            cell: 1,
            entrance: door,
            exit: door,
            zones: Vec::new(),
        }
    }
}

/// Why a layout is not usable. The message names the offending key relative to `store:`
/// (`zones[3] (name: "Women"): …`, `entrance [937, 50]: …`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LayoutError {
    /// The zone at fault (its index in the spec's `zones`), so the config loader can add its line.
    pub zone: Option<usize>,
    /// What is wrong and where.
    pub message: String,
}

impl LayoutError {
    fn general(message: String) -> LayoutError {
        LayoutError {
            zone: None,
            message,
        }
    }

    fn zone(index: usize, zone: &Zone, what: String) -> LayoutError {
        LayoutError {
            zone: Some(index),
            message: format!("zones[{index}] (name: {:?}): {what}", zone.name),
        }
    }
}

/// Largest coordinate extent: positions travel as 16-bit numbers inside sources.
pub const MAX_EXTENT: u32 = u16::MAX as u32;
/// Most cells of a layout with zones (it keeps data per cell): 4096 × 4096.
pub const MAX_CELLS: u64 = 1 << 24;
/// Zone index of a cell that is in no department or checkout.
const NO_ZONE: u16 = u16::MAX;
/// Offsets of the 8 neighbours, in the order sources draw from (x outer, y inner): the original
/// random walk listed its candidates in this order, and keeping it keeps its output.
const NEIGHBOURS: [(i32, i32); 8] = [
    (-1, -1),
    (-1, 0),
    (-1, 1),
    (0, -1),
    (0, 1),
    (1, -1),
    (1, 0),
    (1, 1),
];

/// The neighbours of one cell a shopper may step to ([`StoreLayout::neighbours`]), in the fixed
/// order of [`NEIGHBOURS`]: a set of directions, so counting them or taking the n-th costs a few
/// bit operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbours {
    /// Bit `i` set: direction `NEIGHBOURS[i]` is open.
    mask: u8,
    col: u32,
    row: u32,
}

impl Neighbours {
    /// The neighbours of `(col, row)` in `directions` (bit `i`: the `i`-th direction of the fixed
    /// order, as [`Neighbours::directions`] gives them): a set kept per cell by a model, rebuilt
    /// without asking the layout again.
    #[inline]
    pub fn from_directions(col: u32, row: u32, directions: u8) -> Neighbours {
        Neighbours {
            mask: directions,
            col,
            row,
        }
    }

    /// The set as one byte, for [`Neighbours::from_directions`].
    #[inline]
    pub fn directions(&self) -> u8 {
        self.mask
    }

    /// Those of them that `keep` accepts, in the same order.
    pub fn only(self, keep: impl Fn((u32, u32)) -> bool) -> Neighbours {
        let mut kept = self;
        let mut rest = self.mask;
        while rest != 0 {
            let lowest = rest & rest.wrapping_neg();
            if !self.cell(lowest).is_some_and(&keep) {
                kept.mask &= !lowest;
            }
            rest &= !lowest;
        }
        kept
    }

    /// How many there are.
    #[inline]
    pub fn count_open(&self) -> usize {
        self.mask.count_ones() as usize
    }

    /// The `n`-th of them (from 0, in the fixed order), if there are more than `n`.
    #[inline]
    pub fn nth_open(&self, n: usize) -> Option<(u32, u32)> {
        let mut mask = self.mask;
        for _ in 0..n {
            mask &= mask.wrapping_sub(1);
        }
        self.cell(mask)
    }

    /// The cell of the lowest direction in `mask`.
    #[inline]
    fn cell(&self, mask: u8) -> Option<(u32, u32)> {
        let (dx, dy) = NEIGHBOURS.get(mask.trailing_zeros() as usize)?;
        Some((
            self.col.wrapping_add_signed(*dx),
            self.row.wrapping_add_signed(*dy),
        ))
    }
}

impl Iterator for Neighbours {
    type Item = (u32, u32);

    fn next(&mut self) -> Option<(u32, u32)> {
        let cell = self.cell(self.mask)?;
        self.mask &= self.mask.wrapping_sub(1);
        Some(cell)
    }
}

/// Per-cell data of a layout with zones, row-major (`row * cols + col`).
#[derive(Debug, PartialEq)]
struct Cells {
    /// Whether shoppers may stand on the cell (no obstacle touches it).
    walkable: Vec<bool>,
    /// Index of the department or checkout containing the cell's centre, or [`NO_ZONE`].
    zone: Vec<u16>,
    /// How many cells are walkable, counted once for `validate` and reports.
    walkable_count: u64,
    /// The directions open from each cell ([`StoreLayout::neighbours`]).
    neighbours: Vec<u8>,
}

/// The store's floor plan, checked and with its walking grid precomputed. Cheap to clone (the
/// per-cell data is shared).
#[derive(Clone, Debug, PartialEq)]
pub struct StoreLayout {
    /// Extent of the coordinate space along x (see [`LayoutSpec::width`]).
    width: u32,
    /// Extent along y.
    height: u32,
    /// Pitch of the walking grid in store units.
    cell: u32,
    /// `ceil(width / cell)`: columns of the walking grid.
    cols: u32,
    /// `ceil(height / cell)`: rows of the walking grid.
    rows: u32,
    /// The cell the configured entrance lies in.
    entrance_cell: (u32, u32),
    /// The cell the configured exit lies in.
    exit_cell: (u32, u32),
    /// The zones in file order (indices are what per-cell data and sources refer to); shared.
    zones: Arc<[Zone]>,
    /// `None` for a layout without zones: every cell walkable, in no zone.
    cells: Option<Arc<Cells>>,
}

impl Default for StoreLayout {
    /// The original service's store: 6×10 unit cells, door at (0, 0).
    fn default() -> Self {
        StoreLayout::grid(6, 10, (0, 0))
    }
}

impl StoreLayout {
    /// Checks `spec` and precomputes its walking grid.
    pub fn new(spec: LayoutSpec) -> Result<StoreLayout, LayoutError> {
        let LayoutSpec {
            width,
            height,
            cell,
            entrance,
            exit,
            zones,
        } = spec;
        if width == 0 || height == 0 || width > MAX_EXTENT || height > MAX_EXTENT {
            return Err(LayoutError::general(format!(
                "width and height must be in 1..={MAX_EXTENT} (got {width}x{height})"
            )));
        }
        if cell == 0 {
            return Err(LayoutError::general(
                "cell must be at least 1 (store units per walking-grid cell)".into(),
            ));
        }
        for (key, (x, y)) in [("entrance", entrance), ("exit", exit)] {
            if x >= width || y >= height {
                return Err(LayoutError::general(format!(
                    "{key} [{x}, {y}] is outside the {width}x{height} store"
                )));
            }
        }
        check_zones(&zones, width, height)?;
        let cols = width.div_ceil(cell);
        let rows = height.div_ceil(cell);
        let mut layout = StoreLayout {
            width,
            height,
            cell,
            cols,
            rows,
            entrance_cell: (entrance.0 / cell, entrance.1 / cell),
            exit_cell: (exit.0 / cell, exit.1 / cell),
            zones: zones.into(),
            cells: None,
        };
        if !layout.zones.is_empty() {
            let count = u64::from(cols) * u64::from(rows);
            if count > MAX_CELLS {
                return Err(LayoutError::general(format!(
                    "the walking grid would have {cols}x{rows} = {count} cells (at most \
                     {MAX_CELLS} with zones): raise cell"
                )));
            }
            layout.cells = Some(Arc::new(layout.compute_cells()));
        }
        layout.check_reachable((entrance, exit))?;
        Ok(layout)
    }

    /// The original plan: a `width × height` grid of unit cells with one door and no zones.
    ///
    /// # Panics
    /// If the door is outside the grid or the grid is empty or larger than [`MAX_EXTENT`].
    pub fn grid(width: u32, height: u32, door: (u32, u32)) -> StoreLayout {
        StoreLayout::new(LayoutSpec::grid(width, height, door)).expect("a valid grid")
    }

    /// Extent of the coordinate space along x.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Extent of the coordinate space along y.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Pitch of the walking grid in store units.
    pub fn cell(&self) -> u32 {
        self.cell
    }

    /// Columns of the walking grid (`ceil(width / cell)`).
    pub fn cols(&self) -> u32 {
        self.cols
    }

    /// Rows of the walking grid (`ceil(height / cell)`).
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Departments, checkouts and obstacles, in the order of the pipeline file.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// The cell where shoppers come in.
    pub fn entrance_cell(&self) -> (u32, u32) {
        self.entrance_cell
    }

    /// The cell where shoppers leave.
    pub fn exit_cell(&self) -> (u32, u32) {
        self.exit_cell
    }

    /// Where shoppers come in, as published: the centre of [`Self::entrance_cell`].
    pub fn entrance(&self) -> (u32, u32) {
        self.centre(self.entrance_cell.0, self.entrance_cell.1)
    }

    /// Where shoppers leave, as published: the centre of [`Self::exit_cell`].
    pub fn exit(&self) -> (u32, u32) {
        self.centre(self.exit_cell.0, self.exit_cell.1)
    }

    /// How many cells are walkable.
    pub fn walkable_count(&self) -> u64 {
        match &self.cells {
            Some(cells) => cells.walkable_count,
            None => u64::from(self.cols) * u64::from(self.rows),
        }
    }

    /// The store coordinates of the centre of cell `(col, row)`: the middle of the part of the cell
    /// inside the store, rounded down. With `cell: 1` it is `(col, row)`.
    pub fn centre(&self, col: u32, row: u32) -> (u32, u32) {
        (
            centre_of(col, self.cell, self.width),
            centre_of(row, self.cell, self.height),
        )
    }

    /// The cell containing the point `(x, y)`, or `None` outside the store.
    pub fn cell_of(&self, x: u32, y: u32) -> Option<(u32, u32)> {
        (x < self.width && y < self.height).then(|| (x / self.cell, y / self.cell))
    }

    /// Whether shoppers may stand on cell `(col, row)` (false outside the grid).
    pub fn walkable(&self, col: u32, row: u32) -> bool {
        match self.index(col, row) {
            None => false,
            Some(index) => self
                .cells
                .as_ref()
                .is_none_or(|cells| cells.walkable[index]),
        }
    }

    /// The department or checkout (index into [`Self::zones`]) whose rectangle contains the centre
    /// of cell `(col, row)`; obstacles are never returned.
    pub fn zone_at_cell(&self, col: u32, row: u32) -> Option<usize> {
        let index = self.index(col, row)?;
        let zone = self.cells.as_ref()?.zone[index];
        (zone != NO_ZONE).then_some(usize::from(zone))
    }

    /// The department (index into [`Self::zones`]) whose rectangle contains the centre of cell
    /// `(col, row)`: [`Self::department_at`] of the published position, in constant time (for
    /// sources that track focus on every step).
    pub fn department_at_cell(&self, col: u32, row: u32) -> Option<usize> {
        self.zone_at_cell(col, row)
            .filter(|&zone| self.zones[zone].kind == ZoneKind::Department)
    }

    /// [`Self::department_at_cell`] when focus may name it (`focus: true`): where the focus rule
    /// counts reports.
    pub fn focus_department_at_cell(&self, col: u32, row: u32) -> Option<usize> {
        self.department_at_cell(col, row)
            .filter(|&zone| self.zones[zone].focus)
    }

    /// Whether some department may be named by a focus event.
    pub fn has_focus_departments(&self) -> bool {
        self.zones
            .iter()
            .any(|zone| zone.kind == ZoneKind::Department && zone.focus)
    }

    /// The department (index into [`Self::zones`]) whose rectangle contains the point `(x, y)`:
    /// the consumers' rule, applied to what was published (the first one in file order; they do
    /// not overlap). Checkouts and obstacles are not departments.
    pub fn department_at(&self, x: u32, y: u32) -> Option<usize> {
        self.zones
            .iter()
            .position(|zone| zone.kind == ZoneKind::Department && zone.contains(x, y))
    }

    /// The department or checkout whose rectangle contains the point `(x, y)`.
    pub fn zone_at_point(&self, x: u32, y: u32) -> Option<usize> {
        self.zones
            .iter()
            .position(|zone| zone.is_walkable() && zone.contains(x, y))
    }

    /// The walkable neighbours of cell `(col, row)` a shopper may step to, in a fixed order (x
    /// offset outer, y offset inner, each from −1 to 1). A diagonal step needs both cells it passes
    /// between to be walkable. Looked up, not worked out: a walk asks this at every step.
    pub fn neighbours(&self, col: u32, row: u32) -> Neighbours {
        let mask = match (&self.cells, self.index(col, row)) {
            (Some(cells), Some(index)) => cells.neighbours[index],
            // Every cell of a grid without zones is walkable: only its edges close directions.
            (None, Some(_)) => {
                let (left, right) = (col > 0, col + 1 < self.cols);
                let (up, down) = (row > 0, row + 1 < self.rows);
                [
                    left && up,
                    left,
                    left && down,
                    up,
                    down,
                    right && up,
                    right,
                    right && down,
                ]
                .iter()
                .enumerate()
                .fold(0, |mask, (bit, open)| mask | (u8::from(*open) << bit))
            }
            (_, None) => self.neighbour_mask(col, row, |c, r| self.walkable(c, r)),
        };
        Neighbours { mask, col, row }
    }

    /// The directions of [`NEIGHBOURS`] open from `(col, row)`, one bit each, by `walkable`.
    fn neighbour_mask(&self, col: u32, row: u32, walkable: impl Fn(u32, u32) -> bool) -> u8 {
        let open_at = |dx, dy| {
            self.offset(col, row, dx, dy)
                .is_some_and(|(c, r)| walkable(c, r))
        };
        NEIGHBOURS
            .iter()
            .enumerate()
            .filter(|&(_, &(dx, dy))| {
                open_at(dx, dy) && (dx == 0 || dy == 0 || (open_at(dx, 0) && open_at(0, dy)))
            })
            .fold(0, |mask, (bit, _)| mask | (1 << bit))
    }

    /// Walking distances (in steps) from every cell to `target`, over the walkable grid: built once,
    /// then each step home is a lookup ([`DistanceField::step_toward`]).
    pub fn distances_to(&self, target: (u32, u32)) -> DistanceField {
        DistanceField {
            layout: self.clone(),
            target,
            steps: self.cells.as_ref().map(|_| self.breadth_first([target])),
        }
    }

    /// Walking distances from every cell to the nearest walkable cell of department or checkout
    /// `zone` (index into [`Self::zones`]): the way into a department from anywhere, built once.
    /// Straight steps lean towards the cell of the middle of its rectangle.
    ///
    /// # Panics
    /// If `zone` is not the index of a zone.
    pub fn distances_to_zone(&self, zone: usize) -> DistanceField {
        let [x1, y1, x2, y2] = self.zones[zone].area;
        let middle = (x1 + (x2 - x1) / 2, y1 + (y2 - y1) / 2);
        let target = self.cell_of(middle.0, middle.1).expect("zones are inside");
        let steps = self.cells.as_ref().map(|cells| {
            let inside = (0..cells.zone.len())
                .filter(|&index| usize::from(cells.zone[index]) == zone)
                .map(|index| self.cell_at(index));
            self.breadth_first(inside)
        });
        DistanceField {
            layout: self.clone(),
            target,
            steps,
        }
    }

    /// Steps from every cell to the nearest of the walkable `sources`, over the walkable grid.
    fn breadth_first(&self, sources: impl IntoIterator<Item = (u32, u32)>) -> Vec<u32> {
        let mut steps = vec![UNREACHABLE; self.cell_count()];
        let mut queue = VecDeque::new();
        for (col, row) in sources {
            if let Some(index) = self.index(col, row)
                && self.walkable(col, row)
            {
                steps[index] = 0;
                queue.push_back((col, row));
            }
        }
        while let Some((col, row)) = queue.pop_front() {
            let next = steps[self.index(col, row).expect("queued cells are inside")] + 1;
            for (c, r) in self.neighbours(col, row) {
                let index = self.index(c, r).expect("neighbours are inside");
                if steps[index] == UNREACHABLE {
                    steps[index] = next;
                    queue.push_back((c, r));
                }
            }
        }
        steps
    }

    /// The cell of a row-major index.
    fn cell_at(&self, index: usize) -> (u32, u32) {
        (
            (index % self.cols as usize) as u32,
            (index / self.cols as usize) as u32,
        )
    }

    fn cell_count(&self) -> usize {
        self.cols as usize * self.rows as usize
    }

    fn index(&self, col: u32, row: u32) -> Option<usize> {
        (col < self.cols && row < self.rows)
            .then(|| row as usize * self.cols as usize + col as usize)
    }

    fn offset(&self, col: u32, row: u32, dx: i32, dy: i32) -> Option<(u32, u32)> {
        let c = col.checked_add_signed(dx)?;
        let r = row.checked_add_signed(dy)?;
        (c < self.cols && r < self.rows).then_some((c, r))
    }

    /// Marks the cells obstacles touch and the zone of every cell centre, in time linear in the
    /// cells plus the zones however much the zones overlap: obstacles are swept row by row as
    /// differences of per-column counts, and a department or checkout only visits the cells whose
    /// centres it contains (they do not overlap, so every cell is visited at most once).
    fn compute_cells(&self) -> Cells {
        let count = self.cell_count();
        let mut walkable = vec![true; count];
        let mut zone_of = vec![NO_ZONE; count];
        let cols = self.cols as usize;
        // Obstacles by their first and past-the-last row of cells.
        let mut starting: Vec<Vec<usize>> = vec![Vec::new(); self.rows as usize + 1];
        let mut ending: Vec<Vec<usize>> = vec![Vec::new(); self.rows as usize + 1];
        for (z, zone) in self.zones.iter().enumerate() {
            let [x1, y1, x2, y2] = zone.area;
            if zone.kind == ZoneKind::Obstacle {
                starting[(y1 / self.cell) as usize].push(z);
                ending[(y2 / self.cell) as usize + 1].push(z);
                continue;
            }
            let (c1, c2) = self.centres_within(x1, x2, self.width);
            let (r1, r2) = self.centres_within(y1, y2, self.height);
            for row in r1..r2 {
                for col in c1..c2 {
                    zone_of[row as usize * cols + col as usize] = z as u16;
                }
            }
        }
        // How many obstacles cover each column of the current row, as differences: column `c`
        // is covered by `sum(change[..=c])` of them.
        let mut change = vec![0i64; cols + 1];
        let column = |zone: &Zone| {
            let [x1, _, x2, _] = zone.area;
            ((x1 / self.cell) as usize, (x2 / self.cell) as usize + 1)
        };
        for row in 0..self.rows as usize {
            for &z in &ending[row] {
                let (from, to) = column(&self.zones[z]);
                change[from] -= 1;
                change[to] += 1;
            }
            for &z in &starting[row] {
                let (from, to) = column(&self.zones[z]);
                change[from] += 1;
                change[to] -= 1;
            }
            let mut covered = 0;
            for (col, open) in walkable[row * cols..(row + 1) * cols]
                .iter_mut()
                .enumerate()
            {
                covered += change[col];
                *open = covered == 0;
            }
        }
        let walkable_count = walkable.iter().filter(|&&open| open).count() as u64;
        let neighbours = (0..count)
            .map(|index| {
                let (col, row) = self.cell_at(index);
                self.neighbour_mask(col, row, |c, r| walkable[r as usize * cols + c as usize])
            })
            .collect();
        Cells {
            walkable,
            zone: zone_of,
            walkable_count,
            neighbours,
        }
    }

    /// The cells (along one axis, as `from..to`) whose centres lie in `low..=high`; centres grow
    /// with the index, so they are one run.
    fn centres_within(&self, low: u32, high: u32, extent: u32) -> (u32, u32) {
        let centre = |index: u32| centre_of(index, self.cell, extent);
        let (first, last) = (low / self.cell, high / self.cell);
        let from = if centre(first) >= low {
            first
        } else {
            first + 1
        };
        let to = if centre(last) <= high { last + 1 } else { last };
        (from, to.max(from))
    }

    /// The entrance and exit cells must be walkable, and the exit and every department and
    /// checkout reachable from the entrance.
    fn check_reachable(
        &self,
        (entrance, exit): ((u32, u32), (u32, u32)),
    ) -> Result<(), LayoutError> {
        for (key, (x, y), (col, row)) in [
            ("entrance", entrance, self.entrance_cell),
            ("exit", exit, self.exit_cell),
        ] {
            if !self.walkable(col, row) {
                let (cx1, cy1) = (col * self.cell, row * self.cell);
                return Err(LayoutError::general(format!(
                    "{key} [{x}, {y}] is in cell ({col}, {row}) (x {cx1}..={}, y {cy1}..={}), \
                     which an obstacle blocks",
                    (cx1 + self.cell).min(self.width) - 1,
                    (cy1 + self.cell).min(self.height) - 1,
                )));
            }
        }
        let Some(cells) = &self.cells else {
            return Ok(());
        };
        let from_entrance = self.distances_to(self.entrance_cell);
        if from_entrance
            .steps(self.exit_cell.0, self.exit_cell.1)
            .is_none()
        {
            return Err(LayoutError::general(format!(
                "exit [{}, {}] cannot be reached from the entrance [{}, {}]",
                exit.0, exit.1, entrance.0, entrance.1
            )));
        }
        let mut has_centre = vec![false; self.zones.len()];
        let mut reached = vec![false; self.zones.len()];
        for (index, &zone) in cells.zone.iter().enumerate() {
            if zone != NO_ZONE && cells.walkable[index] {
                has_centre[usize::from(zone)] = true;
                let (col, row) = self.cell_at(index);
                if from_entrance.steps(col, row).is_some() {
                    reached[usize::from(zone)] = true;
                }
            }
        }
        for (index, zone) in self.zones.iter().enumerate() {
            if !zone.is_walkable() {
                continue;
            }
            if !has_centre[index] {
                return Err(LayoutError::zone(
                    index,
                    zone,
                    format!(
                        "no walkable cell has its centre inside this {} (cell {}): make it larger, \
                         move obstacles off it or lower cell",
                        zone.kind, self.cell
                    ),
                ));
            }
            if !reached[index] {
                return Err(LayoutError::zone(
                    index,
                    zone,
                    format!(
                        "this {} cannot be reached from the entrance: obstacles close it off \
                         (leave a gap at least one cell wide, {} units, in its walls)",
                        zone.kind, self.cell
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for StoreLayout {
    /// A few lines for people (`customersim validate`): extent, grid, doors and each zone with the
    /// walkable cells it owns.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "store {}x{}, walking grid {}x{} cells of {} ({} walkable)",
            self.width,
            self.height,
            self.cols,
            self.rows,
            self.cell,
            self.walkable_count()
        )?;
        let (entrance, exit) = (self.entrance(), self.exit());
        writeln!(
            f,
            "entrance cell {:?} at ({}, {}), exit cell {:?} at ({}, {})",
            self.entrance_cell, entrance.0, entrance.1, self.exit_cell, exit.0, exit.1
        )?;
        let mut owned = vec![0u64; self.zones.len()];
        if let Some(cells) = &self.cells {
            for (zone, open) in cells.zone.iter().zip(&cells.walkable) {
                if *zone != NO_ZONE && *open {
                    owned[usize::from(*zone)] += 1;
                }
            }
        }
        writeln!(f, "zones: {}", self.zones.len())?;
        for (zone, cells) in self.zones.iter().zip(owned) {
            let [x1, y1, x2, y2] = zone.area;
            write!(
                f,
                "  {:?} {} [{x1}, {y1}, {x2}, {y2}]",
                zone.name, zone.kind
            )?;
            if zone.is_walkable() {
                write!(f, " weight {} ({cells} walkable cells)", zone.weight)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Checks each zone on its own and against the others.
fn check_zones(zones: &[Zone], width: u32, height: u32) -> Result<(), LayoutError> {
    if zones.len() >= usize::from(NO_ZONE) {
        return Err(LayoutError::general(format!(
            "zones: {} zones, at most {}",
            zones.len(),
            NO_ZONE - 1
        )));
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (index, zone) in zones.iter().enumerate() {
        let fail = |what: String| Err(LayoutError::zone(index, zone, what));
        if zone.name.trim().is_empty() {
            return fail("name must not be empty".into());
        }
        if let Some(first) = names.insert(&zone.name, index) {
            return fail(format!("name already used by zones[{first}]"));
        }
        let [x1, y1, x2, y2] = zone.area;
        if x1 > x2 || y1 > y2 {
            return fail(format!(
                "area [{x1}, {y1}, {x2}, {y2}] must be [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2"
            ));
        }
        if x2 >= width || y2 >= height {
            return fail(format!(
                "area [{x1}, {y1}, {x2}, {y2}] reaches outside the {width}x{height} store \
                 (x in 0..={}, y in 0..={})",
                width - 1,
                height - 1
            ));
        }
        if !zone.weight.is_finite() || zone.weight < 0.0 {
            return fail(format!(
                "weight {} must be a finite number >= 0",
                zone.weight
            ));
        }
    }
    if let Some((index, other)) = first_overlap(zones) {
        let (zone, earlier) = (&zones[index], &zones[other]);
        return Err(LayoutError::zone(
            index,
            zone,
            format!(
                "this {} overlaps the {} zones[{other}] (name: {:?}); departments and \
                 checkouts must not overlap",
                zone.kind, earlier.kind, earlier.name
            ),
        ));
    }
    Ok(())
}

/// A pair of departments or checkouts that overlap, as (later, earlier) indices, if any.
///
/// A sweep along x in `O(n log n)`, so `validate` stays fast with tens of thousands of zones:
/// zones enter at their left edge and leave after their right edge; while no two overlap, the
/// y-ranges of the zones present are disjoint, so a new zone overlaps one of them exactly when it
/// overlaps the present zone with the greatest top edge not past its own bottom edge.
fn first_overlap(zones: &[Zone]) -> Option<(usize, usize)> {
    use std::cmp::Reverse;
    use std::collections::{BTreeMap, BinaryHeap};

    let mut order: Vec<usize> = (0..zones.len())
        .filter(|&index| zones[index].is_walkable())
        .collect();
    order.sort_by_key(|&index| (zones[index].area[0], index));
    // y1 -> zone, of the zones the sweep line crosses.
    let mut present: BTreeMap<u32, usize> = BTreeMap::new();
    // (x2, zone): when each present zone leaves.
    let mut leaving: BinaryHeap<Reverse<(u32, usize)>> = BinaryHeap::new();
    for index in order {
        let [x1, y1, x2, y2] = zones[index].area;
        while let Some(&Reverse((right, gone))) = leaving.peek() {
            if right >= x1 {
                break;
            }
            leaving.pop();
            present.remove(&zones[gone].area[1]);
        }
        if let Some((_, &other)) = present.range(..=y2).next_back()
            && zones[other].overlaps(&zones[index])
        {
            return Some((index.max(other), index.min(other)));
        }
        present.insert(y1, index);
        leaving.push(Reverse((x2, index)));
    }
    None
}

/// The centre along one axis of cell `index` of pitch `cell` in an extent of `extent`.
fn centre_of(index: u32, cell: u32, extent: u32) -> u32 {
    let start = index * cell;
    let end = (start + cell).min(extent) - 1;
    start + (end - start) / 2
}

/// Marks a cell from which the target cannot be reached.
const UNREACHABLE: u32 = u32::MAX;

/// Walking distances to one target cell (see [`StoreLayout::distances_to`]).
#[derive(Clone, Debug)]
pub struct DistanceField {
    /// The layout the distances are over (a cheap shared clone): steps follow its neighbours.
    layout: StoreLayout,
    /// The cell every distance leads to.
    target: (u32, u32),
    /// Per cell; `None` for a layout without zones, where the distance is the Chebyshev distance.
    steps: Option<Vec<u32>>,
}

impl DistanceField {
    /// The cell the distances lead to.
    pub fn target(&self) -> (u32, u32) {
        self.target
    }

    /// Steps from `(col, row)` to the target, or `None` when it cannot be reached from there.
    pub fn steps(&self, col: u32, row: u32) -> Option<u32> {
        let index = self.layout.index(col, row)?;
        match &self.steps {
            Some(steps) => (steps[index] != UNREACHABLE).then_some(steps[index]),
            None => Some(col.abs_diff(self.target.0).max(row.abs_diff(self.target.1))),
        }
    }

    /// The neighbour one step closer to the target: the straight (diagonal first) step toward it
    /// when that is one, else the closer-in-a-straight-line of the neighbours that are. `None` at
    /// the target or where it cannot be reached.
    pub fn step_toward(&self, col: u32, row: u32) -> Option<(u32, u32)> {
        let here = self.steps(col, row)?;
        if here == 0 {
            return None;
        }
        let (tc, tr) = self.target;
        let straight = (
            col.checked_add_signed(signum(tc, col))?,
            row.checked_add_signed(signum(tr, row))?,
        );
        let closer = |(c, r): (u32, u32)| {
            self.layout.neighbours(col, row).any(|n| n == (c, r))
                && self.steps(c, r) == Some(here - 1)
        };
        if closer(straight) {
            return Some(straight);
        }
        self.layout
            .neighbours(col, row)
            .filter(|&(c, r)| self.steps(c, r) == Some(here - 1))
            .min_by_key(|&(c, r)| {
                let (dx, dy) = (u64::from(c.abs_diff(tc)), u64::from(r.abs_diff(tr)));
                dx * dx + dy * dy
            })
    }
}

fn signum(to: u32, from: u32) -> i32 {
    match to.cmp(&from) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use ZoneKind::Obstacle;

    fn zone(name: &str, kind: ZoneKind, area: [u32; 4]) -> Zone {
        Zone::new(name, kind, area)
    }

    fn spec(zones: Vec<Zone>) -> LayoutSpec {
        LayoutSpec {
            width: 200,
            height: 100,
            cell: 10,
            entrance: (5, 5),
            exit: (195, 5),
            zones,
        }
    }

    #[test]
    fn unit_cells_are_the_old_grid() {
        let layout = StoreLayout::default();
        assert_eq!((layout.cols(), layout.rows()), (6, 10));
        assert_eq!(layout.centre(3, 7), (3, 7));
        assert_eq!(layout.cell_of(3, 7), Some((3, 7)));
        assert_eq!(layout.cell_of(6, 0), None);
        assert_eq!(layout.entrance(), (0, 0));
        assert_eq!(layout.exit(), (0, 0));
        assert_eq!(layout.walkable_count(), 60);
        assert!(layout.walkable(5, 9) && !layout.walkable(6, 9));
        assert_eq!(layout.zone_at_cell(1, 1), None);
        let around: Vec<_> = layout.neighbours(0, 0).collect();
        assert_eq!(around, vec![(0, 1), (1, 0), (1, 1)]);
        assert_eq!(layout.neighbours(2, 2).count(), 8);
    }

    /// The looked-up neighbours are the rule's: walkable, no diagonal past a blocked side, in
    /// the fixed order; also from cells beyond the grid, and counted and indexed alike.
    #[test]
    fn neighbours_follow_the_walking_rule() {
        let walls = StoreLayout::new(spec(vec![
            zone("Wall", Obstacle, [100, 0, 101, 60]),
            zone("Pillar", Obstacle, [40, 40, 52, 49]),
        ]))
        .unwrap();
        for layout in [StoreLayout::default(), walls] {
            for col in 0..=layout.cols() + 1 {
                for row in 0..=layout.rows() + 1 {
                    let expected: Vec<(u32, u32)> = NEIGHBOURS
                        .iter()
                        .filter_map(|&(dx, dy)| {
                            let to = layout.offset(col, row, dx, dy)?;
                            let side = |dx, dy| {
                                layout
                                    .offset(col, row, dx, dy)
                                    .is_some_and(|(c, r)| layout.walkable(c, r))
                            };
                            (layout.walkable(to.0, to.1)
                                && (dx == 0 || dy == 0 || (side(dx, 0) && side(0, dy))))
                            .then_some(to)
                        })
                        .collect();
                    let open = layout.neighbours(col, row);
                    assert_eq!(open.collect::<Vec<_>>(), expected, "({col}, {row})");
                    assert_eq!(open.count_open(), expected.len());
                    for (n, cell) in expected.iter().enumerate() {
                        assert_eq!(open.nth_open(n), Some(*cell));
                    }
                    assert_eq!(open.nth_open(expected.len()), None);
                }
            }
        }
    }

    #[test]
    fn centres_stay_inside_the_store_and_the_cell() {
        let layout = StoreLayout::new(LayoutSpec {
            width: 1808,
            height: 1315,
            cell: 20,
            entrance: (937, 50),
            exit: (1071, 50),
            zones: Vec::new(),
        })
        .unwrap();
        assert_eq!((layout.cols(), layout.rows()), (91, 66));
        assert_eq!(layout.centre(0, 0), (9, 9));
        assert_eq!(layout.centre(90, 65), (1803, 1307));
        assert_eq!(layout.entrance_cell(), (46, 2));
        assert_eq!(layout.entrance(), (929, 49));
        assert_eq!(layout.exit(), (1069, 49));
        for col in 0..layout.cols() {
            let (x, _) = layout.centre(col, 0);
            assert!(x < 1808);
            assert_eq!(layout.cell_of(x, 0), Some((col, 0)));
        }
    }

    #[test]
    fn obstacles_block_every_cell_they_touch_and_zones_own_centres() {
        let layout = StoreLayout::new(spec(vec![
            zone("Wall", ZoneKind::Obstacle, [100, 0, 101, 60]),
            zone("Women", ZoneKind::Department, [20, 20, 59, 59]),
            zone("Till", ZoneKind::Checkout, [150, 80, 199, 99]),
        ]))
        .unwrap();
        // The 2-unit wall blocks column 10 in rows 0..=6.
        for row in 0..=6 {
            assert!(!layout.walkable(10, row));
        }
        assert!(layout.walkable(10, 7) && layout.walkable(9, 0) && layout.walkable(11, 0));
        assert_eq!(layout.walkable_count(), 20 * 10 - 7);
        assert_eq!(layout.zone_at_cell(2, 2), Some(1));
        assert_eq!(layout.zone_at_cell(5, 5), Some(1));
        assert_eq!(layout.zone_at_cell(6, 5), None);
        assert_eq!(layout.zone_at_cell(15, 8), Some(2));
        assert_eq!(layout.department_at(20, 59), Some(1));
        assert_eq!(layout.department_at(19, 59), None);
        assert_eq!(layout.department_at(150, 80), None, "a checkout");
        assert_eq!(layout.zone_at_point(150, 80), Some(2));
        assert_eq!(layout.zone_at_point(100, 0), None, "an obstacle");
        for row in 0..layout.rows() {
            for col in 0..layout.cols() {
                let (x, y) = layout.centre(col, row);
                assert_eq!(
                    layout.department_at_cell(col, row),
                    layout.department_at(x, y)
                );
            }
        }
    }

    #[test]
    fn diagonal_steps_do_not_squeeze_past_corners() {
        // Two obstacles touching at a corner: (1,0) and (0,1) blocked.
        let corner = vec![
            zone("A", Obstacle, [1, 0, 1, 0]),
            zone("B", Obstacle, [0, 1, 0, 1]),
        ];
        let spec = LayoutSpec::grid(3, 3, (2, 2));
        let layout = StoreLayout::new(LayoutSpec {
            zones: corner,
            ..spec
        })
        .unwrap();
        assert_eq!(layout.neighbours(0, 0).count(), 0);
        let around: Vec<_> = layout.neighbours(1, 1).collect();
        assert_eq!(around, vec![(1, 2), (2, 1), (2, 2)]);
    }

    #[test]
    fn distances_go_around_obstacles() {
        // A wall across the store except a gap at the bottom row.
        let layout = StoreLayout::new(LayoutSpec {
            exit: (9, 0),
            zones: vec![zone("Wall", Obstacle, [5, 0, 5, 3])],
            ..LayoutSpec::grid(10, 5, (0, 0))
        })
        .unwrap();
        let home = layout.distances_to(layout.exit_cell());
        assert_eq!(home.steps(9, 0), Some(0));
        assert_eq!(home.steps(5, 0), None, "blocked");
        // Down to the gap, through it (no corner cutting at the wall's end), up to the exit.
        assert_eq!(home.steps(4, 0), Some(4 + 1 + 1 + 4));
        let (mut at, mut walked) = ((0, 0), 0);
        while let Some(next) = home.step_toward(at.0, at.1) {
            assert!(layout.neighbours(at.0, at.1).any(|n| n == next));
            assert_eq!(
                home.steps(next.0, next.1).unwrap() + 1,
                home.steps(at.0, at.1).unwrap()
            );
            at = next;
            walked += 1;
        }
        assert_eq!((at, walked), ((9, 0), home.steps(0, 0).unwrap()));
        // The way into a zone: zero on its walkable cells, around the wall to them.
        let with_zone = StoreLayout::new(LayoutSpec {
            exit: (9, 0),
            zones: vec![
                zone("Wall", Obstacle, [5, 0, 5, 3]),
                zone("Corner", ZoneKind::Department, [7, 0, 9, 1]),
            ],
            ..LayoutSpec::grid(10, 5, (0, 0))
        })
        .unwrap();
        let into = with_zone.distances_to_zone(1);
        assert_eq!(into.steps(8, 1), Some(0));
        assert_eq!(into.steps(6, 1), Some(1));
        assert_eq!(
            into.steps(4, 0),
            Some(9),
            "down, through the gap, up to row 1"
        );
        assert_eq!(into.step_toward(6, 2), Some((7, 1)));
        // Without obstacles the straight step is the old homing step.
        let open = StoreLayout::default().distances_to((0, 0));
        assert_eq!(open.steps(5, 9), Some(9));
        assert_eq!(open.step_toward(5, 9), Some((4, 8)));
        assert_eq!(open.step_toward(0, 9), Some((0, 8)));
        assert_eq!(open.step_toward(0, 0), None);
    }

    fn error(zones: Vec<Zone>) -> LayoutError {
        StoreLayout::new(spec(zones)).unwrap_err()
    }

    #[test]
    fn bad_zones_are_named() {
        let dep = |name, area| zone(name, ZoneKind::Department, area);
        let e = error(vec![dep("A", [0, 0, 9, 9]), dep("Out", [150, 50, 200, 60])]);
        assert_eq!(e.zone, Some(1));
        assert!(
            e.message.starts_with("zones[1] (name: \"Out\"): area"),
            "{e}"
        );
        let e = error(vec![dep("A", [0, 0, 9, 9]), dep("A", [20, 20, 29, 29])]);
        assert!(e.message.contains("already used by zones[0]"), "{e}");
        let e = error(vec![dep("A", [0, 0, 50, 50]), dep("B", [50, 50, 60, 60])]);
        assert_eq!(e.zone, Some(1));
        assert!(e.message.contains("overlaps"), "{e}");
        let mut heavy = dep("W", [0, 0, 9, 9]);
        heavy.weight = -1.0;
        assert!(error(vec![heavy.clone()]).message.contains("weight -1"));
        heavy.weight = f64::NAN;
        assert!(error(vec![heavy]).message.contains("weight NaN"));
        let e = error(vec![dep("Tiny", [11, 11, 13, 13])]);
        assert!(e.message.contains("no walkable cell"), "{e}");
        // A department walled in on all sides.
        let e = error(vec![
            zone("Box", ZoneKind::Obstacle, [40, 40, 80, 80]),
            dep("Inside", [40, 40, 80, 80]),
        ]);
        assert!(e.message.contains("no walkable cell"), "{e}");
        let e = error(vec![
            zone("Top", ZoneKind::Obstacle, [40, 40, 80, 40]),
            zone("Bottom", ZoneKind::Obstacle, [40, 80, 80, 80]),
            zone("Left", ZoneKind::Obstacle, [40, 40, 40, 80]),
            zone("Right", ZoneKind::Obstacle, [80, 40, 80, 80]),
            dep("Closed", [50, 50, 70, 70]),
        ]);
        assert_eq!(e.zone, Some(4));
        assert!(e.message.contains("cannot be reached"), "{e}");
    }

    /// A tiny deterministic generator for the property tests below (no dependency needed).
    fn next(state: &mut u64) -> u32 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*state >> 33) as u32
    }

    #[test]
    fn the_swept_grid_is_the_one_of_zone_by_zone_marking() {
        let mut state = 7;
        for round in 0..200 {
            let (width, height, cell) = (
                1 + next(&mut state) % 60,
                1 + next(&mut state) % 60,
                1 + round % 7,
            );
            let mut zones = Vec::new();
            for z in 0..next(&mut state) % 12 {
                let (x1, y1) = (next(&mut state) % width, next(&mut state) % height);
                let (x2, y2) = (
                    x1 + next(&mut state) % (width - x1),
                    y1 + next(&mut state) % (height - y1),
                );
                let kind = if z % 3 == 0 {
                    ZoneKind::Department
                } else {
                    Obstacle
                };
                zones.push(zone(&format!("z{z}"), kind, [x1, y1, x2, y2]));
            }
            // Departments must not overlap: keep the first of overlapping ones.
            let mut kept: Vec<Zone> = Vec::new();
            for candidate in zones {
                if candidate.kind == Obstacle
                    || !kept
                        .iter()
                        .any(|k| k.is_walkable() && k.overlaps(&candidate))
                {
                    kept.push(candidate);
                }
            }
            let layout = StoreLayout {
                width,
                height,
                cell,
                cols: width.div_ceil(cell),
                rows: height.div_ceil(cell),
                entrance_cell: (0, 0),
                exit_cell: (0, 0),
                zones: kept.into(),
                cells: None,
            };
            let swept = layout.compute_cells();
            for row in 0..layout.rows {
                for col in 0..layout.cols {
                    let (x, y) = layout.centre(col, row);
                    let touched = layout.zones.iter().any(|z| {
                        let [x1, y1, x2, y2] = z.area;
                        z.kind == Obstacle
                            && (x1 / cell..=x2 / cell).contains(&col)
                            && (y1 / cell..=y2 / cell).contains(&row)
                    });
                    let owner = layout
                        .zones
                        .iter()
                        .position(|z| z.is_walkable() && z.contains(x, y));
                    let index = (row * layout.cols + col) as usize;
                    assert_eq!(
                        swept.walkable[index], !touched,
                        "round {round} cell ({col}, {row})"
                    );
                    assert_eq!(
                        swept.zone[index],
                        owner.map_or(NO_ZONE, |z| z as u16),
                        "round {round}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_sweep_finds_an_overlap_exactly_when_there_is_one() {
        let mut state = 11;
        for _ in 0..2000 {
            let zones: Vec<Zone> = (0..2 + next(&mut state) % 6)
                .map(|z| {
                    let (x1, y1) = (next(&mut state) % 30, next(&mut state) % 30);
                    let area = [x1, y1, x1 + next(&mut state) % 8, y1 + next(&mut state) % 8];
                    let kind = if z % 4 == 3 {
                        Obstacle
                    } else {
                        ZoneKind::Checkout
                    };
                    zone(&format!("z{z}"), kind, area)
                })
                .collect();
            let any = (0..zones.len()).any(|b| {
                (0..b).any(|a| {
                    zones[a].is_walkable() && zones[b].is_walkable() && zones[a].overlaps(&zones[b])
                })
            });
            match first_overlap(&zones) {
                None => assert!(!any, "{zones:?}"),
                Some((later, earlier)) => {
                    assert!(earlier < later && zones[earlier].overlaps(&zones[later]));
                    assert!(zones[earlier].is_walkable() && zones[later].is_walkable());
                }
            }
        }
    }

    #[test]
    fn thousands_of_overlapping_obstacles_are_cheap() {
        // Each covers nearly the whole 4096 x 4096 grid: marking them one by one took minutes.
        let mut zones: Vec<Zone> = (0..18_000)
            .map(|z| zone(&format!("o{z}"), Obstacle, [100, 100, 4000, 4000]))
            .collect();
        zones.push(zone("D", ZoneKind::Department, [10, 10, 50, 50]));
        let layout = StoreLayout::new(LayoutSpec {
            zones,
            ..LayoutSpec::grid(4096, 4096, (0, 0))
        })
        .unwrap();
        assert!(!layout.walkable(100, 100) && layout.walkable(99, 4001));
        assert_eq!(layout.department_at_cell(30, 30), Some(18_000));
    }

    #[test]
    fn bad_doors_and_sizes_are_named() {
        let mut s = spec(vec![zone("Post", ZoneKind::Obstacle, [0, 0, 0, 0])]);
        let e = StoreLayout::new(s.clone()).unwrap_err();
        assert!(e.message.starts_with("entrance [5, 5]"), "{e}");
        s.entrance = (50, 50);
        s.exit = (200, 5);
        let e = StoreLayout::new(s.clone()).unwrap_err();
        assert!(e.message.starts_with("exit [200, 5] is outside"), "{e}");
        s.exit = (50, 80);
        s.cell = 0;
        assert!(
            StoreLayout::new(s.clone())
                .unwrap_err()
                .message
                .contains("cell")
        );
        s.cell = 10;
        s.zones
            .push(zone("Wall", ZoneKind::Obstacle, [0, 65, 199, 66]));
        let e = StoreLayout::new(s).unwrap_err();
        assert!(
            e.message.starts_with("exit [50, 80] cannot be reached"),
            "{e}"
        );
    }
}
