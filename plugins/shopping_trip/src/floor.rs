//! The walking grid the shoppers move on, and the distance fields their paths follow.
//!
//! A [`Floor`] is the pipeline's [`StoreLayout`] (walkable cells, zones, doors, 8-neighbour steps
//! without corner cutting) plus what this source adds: the department of each cell as a byte, and
//! where each checkout's line stands. A [`Fields`] holds one distance field per
//! target (each department, each checkout line, the exit), built once at start-up with Dijkstra
//! from the target outwards. A shopper's next step is then the neighbour that lowers the distance
//! to its current target: no search runs while shoppers walk, and a shopper only remembers which
//! field it follows.
//!
//! Moves go to the 8 neighbours. A diagonal step costs 14 and a straight one 10 (√2 ≈ 1.4), so
//! paths are shortest in walking distance, not in number of steps, and do not zig-zag. A diagonal
//! step is only taken when both cells beside it are walkable (the layout's rule): shoppers do not
//! squeeze between two shelves that touch at a corner, nor cut through the corner of a shelf.

use std::sync::Arc;

use customersim_plugin_api::PluginError;
use customersim_plugin_api::layout::{Neighbours, StoreLayout, ZoneKind};

/// A cell of the walking grid: (column, row).
pub type Cell = (u16, u16);

/// Marks a cell outside every department in [`Floor::department_of`].
const NO_DEPARTMENT: u8 = u8::MAX;

/// Cost of a straight step in the distance fields; a diagonal one costs [`DIAGONAL`].
pub const STRAIGHT: u32 = 10;
/// Cost of a diagonal step (10 × √2, rounded).
pub const DIAGONAL: u32 = 14;

/// The most queue places drawn below a checkout; later shoppers wait on the last one.
const MAX_QUEUE_PLACES: usize = 24;

/// The most entries the path tables may hold: cells of the walking grid times targets (each
/// department, each checkout, the exit), five bytes each (a distance and a first step), so at
/// most 320 MiB. The largest grid (4096 × 4096 cells) fits one department, two checkouts and the
/// exit; a 1024 × 1024 grid fits
/// 64 targets. `validate` refuses layouts beyond it, naming the numbers.
pub const MAX_PATH_TABLE_ENTRIES: u64 = 1 << 26;

/// Bytes per path table entry: a distance and the first step ([`Fields`]).
const PATH_ENTRY_BYTES: u64 = 5;

/// An area of the store shoppers walk to: a department they browse or a checkout they pay at.
#[derive(Clone, Debug)]
pub struct Area {
    /// Its name (the `dep` of focus events, the checkout's name in messages).
    pub name: Arc<str>,
    /// Its walkable cells, row by row.
    pub cells: Vec<Cell>,
    /// How often shoppers put it on their list, relative to the other departments.
    pub weight: f64,
}

/// Where a checkout is paid at and where its line stands.
#[derive(Clone, Debug)]
pub struct Checkout {
    /// Its name, for messages.
    pub name: Arc<str>,
    /// The places of the line: `line[0]` is where the paying shopper stands, right next to the
    /// counter; each next place is one cell further away from it.
    pub line: Vec<Cell>,
}

/// The store as a walking grid.
#[derive(Clone, Debug)]
pub struct Floor {
    /// The pipeline's layout: walkability, zones, centres, steps.
    pub layout: StoreLayout,
    /// Cells along x.
    pub cols: u16,
    /// Cells along y.
    pub rows: u16,
    /// Department of each cell (row-major), [`NO_DEPARTMENT`] outside them: one byte a cell, so
    /// browsing and focus checks need no zone search.
    department: Vec<u8>,
    /// Per cell (row-major): the steps from it that stay in its department
    /// ([`Neighbours::directions`]); none outside departments. A browsing shopper looks them up at every
    /// report instead of asking the layout for the neighbours and each one's department (a
    /// third of planning a step).
    browse: Vec<u8>,
    /// Where shoppers come in.
    pub entrance: Cell,
    /// Where shoppers leave.
    pub exit: Cell,
    /// The departments, in the layout's order.
    pub departments: Vec<Area>,
    /// The checkouts, in the layout's order.
    pub checkouts: Vec<Checkout>,
    /// What a step into a department that is not the walk's destination counts for when paths
    /// are planned, in tenths of a step ([`Floor::with_crossing`]): above 10, shoppers keep to
    /// the walkways around departments instead of cutting across them.
    crossing_tenths: u32,
}

impl Floor {
    /// The walking grid of `layout`; refuses layouts `shopping_trip` cannot walk (no department,
    /// too many of them, a checkout with no room for a line).
    pub fn new(layout: &StoreLayout) -> Result<Floor, PluginError> {
        let bad = |why: String| Err(PluginError::Config(why));
        let (cols, rows) = (layout.cols(), layout.rows());
        if cols > u32::from(u16::MAX) || rows > u32::from(u16::MAX) {
            return bad(format!(
                "store.cell: {cols} × {rows} cells is too many for shopping_trip; use larger cells"
            ));
        }
        let cell = |(col, row): (u32, u32)| (col as u16, row as u16);
        let mut floor = Floor {
            layout: layout.clone(),
            cols: cols as u16,
            rows: rows as u16,
            department: vec![NO_DEPARTMENT; cols as usize * rows as usize],
            browse: Vec::new(),
            entrance: cell(layout.entrance_cell()),
            exit: cell(layout.exit_cell()),
            departments: Vec::new(),
            checkouts: Vec::new(),
            crossing_tenths: 10,
        };
        let mut department_of_zone = vec![None; layout.zones().len()];
        for (z, zone) in layout.zones().iter().enumerate() {
            if zone.kind == ZoneKind::Department {
                if floor.departments.len() >= usize::from(NO_DEPARTMENT) {
                    return bad("store.zones: shopping_trip takes at most 254 departments".into());
                }
                department_of_zone[z] = Some(floor.departments.len() as u8);
                floor.departments.push(Area {
                    name: Arc::from(zone.name.as_str()),
                    cells: Vec::new(),
                    weight: zone.weight,
                });
            }
        }
        if !floor.departments.iter().any(|d| d.weight > 0.0) {
            return bad(
                "store.zones: shopping_trip needs at least one zone of kind department with a weight above 0"
                    .into(),
            );
        }
        let checkouts = layout
            .zones()
            .iter()
            .filter(|zone| zone.kind == ZoneKind::Checkout)
            .count();
        let targets = floor.departments.len() + checkouts + 1;
        let entries = floor.cell_count() as u64 * targets as u64;
        if entries > MAX_PATH_TABLE_ENTRIES {
            return bad(format!(
                "store: shopping_trip keeps a path table over the {} cells of the walking grid \
                 for each of its {targets} targets ({} departments, {checkouts} checkouts and \
                 the exit): {entries} entries, more than its limit of {MAX_PATH_TABLE_ENTRIES} \
                 ({} MiB); raise store.cell or use fewer departments and checkouts",
                floor.cell_count(),
                floor.departments.len(),
                MAX_PATH_TABLE_ENTRIES * PATH_ENTRY_BYTES / (1 << 20)
            ));
        }
        for row in 0..floor.rows {
            for col in 0..floor.cols {
                let zone = layout.zone_at_cell(u32::from(col), u32::from(row));
                if let Some(number) = zone.and_then(|z| department_of_zone[z])
                    && floor.walkable((col, row))
                {
                    let index = floor.index((col, row));
                    floor.department[index] = number;
                    floor.departments[usize::from(number)]
                        .cells
                        .push((col, row));
                }
            }
        }
        floor.browse = (0..floor.cell_count())
            .map(|index| {
                let cell = floor.cell_at_index(index);
                floor.department_of(cell).map_or(0, |department| {
                    floor.steps_into(cell, department).directions()
                })
            })
            .collect();
        for (z, zone) in layout.zones().iter().enumerate() {
            if zone.kind != ZoneKind::Checkout {
                continue;
            }
            let line = floor.checkout_line(z, &zone.name, zone.area)?;
            floor.checkouts.push(Checkout {
                name: Arc::from(zone.name.as_str()),
                line,
            });
        }
        Ok(floor)
    }

    /// The line of checkout zone `zone` (covering `area`). Shoppers pay next to the counter: in
    /// the zone's middle column, on its top cell when a counter (or wall) blocks the cell above
    /// it, else on its bottom cell when one blocks the cell below, else on its top cell; when the
    /// zone has no walkable cell (the zone is the counter itself), just below it, or above it. The
    /// line grows away from the counter, one cell per place, while the cells are walkable and
    /// outside every department.
    fn checkout_line(
        &self,
        zone: usize,
        name: &str,
        [x1, y1, x2, y2]: [u32; 4],
    ) -> Result<Vec<Cell>, PluginError> {
        let cell = self.layout.cell();
        let col = ((x1 + x2) / 2 / cell).min(u32::from(self.cols) - 1) as i32;
        let in_zone: Vec<i32> = (0..i32::from(self.rows))
            .filter(|&row| {
                self.cell_at(col, row).is_some_and(|c| {
                    self.walkable(c)
                        && self.layout.zone_at_cell(u32::from(c.0), u32::from(c.1)) == Some(zone)
                })
            })
            .collect();
        let open = |row: i32| self.cell_at(col, row).is_some_and(|c| self.walkable(c));
        let candidates = match (in_zone.first(), in_zone.last()) {
            (Some(&top), Some(&bottom)) => {
                if !open(top - 1) {
                    vec![(top, 1)]
                } else if !open(bottom + 1) {
                    vec![(bottom, -1)]
                } else {
                    vec![(top, 1)]
                }
            }
            _ => vec![((y2 / cell) as i32 + 1, 1), ((y1 / cell) as i32 - 1, -1)],
        };
        for (row, direction) in candidates {
            let mut line = Vec::new();
            let mut row = row;
            while line.len() < MAX_QUEUE_PLACES {
                let Some(cell) = self.cell_at(col, row) else {
                    break;
                };
                if !self.walkable(cell) || self.department_of(cell).is_some() {
                    break;
                }
                line.push(cell);
                row += direction;
            }
            if !line.is_empty() {
                return Ok(line);
            }
        }
        Err(PluginError::Config(format!(
            "store.zones: checkout {name:?} has no walkable cell to pay at next to it"
        )))
    }

    /// The cell at signed coordinates, if inside the grid.
    fn cell_at(&self, col: i32, row: i32) -> Option<Cell> {
        (col >= 0 && row >= 0 && col < i32::from(self.cols) && row < i32::from(self.rows))
            .then_some((col as u16, row as u16))
    }

    /// Row-major index of a cell.
    pub fn index(&self, (col, row): Cell) -> usize {
        usize::from(row) * usize::from(self.cols) + usize::from(col)
    }

    /// The cell at a row-major index ([`Floor::index`] undone).
    pub fn cell_at_index(&self, index: usize) -> Cell {
        let cols = usize::from(self.cols);
        ((index % cols) as u16, (index / cols) as u16)
    }

    /// How many cells the grid has.
    pub fn cell_count(&self) -> usize {
        self.department.len()
    }

    /// The store coordinates published for a shopper standing on `cell`: its centre.
    pub fn centre(&self, (col, row): Cell) -> (u32, u32) {
        self.layout.centre(u32::from(col), u32::from(row))
    }

    /// The cell holding store point `(x, y)`.
    pub fn cell_of(&self, x: u32, y: u32) -> Option<Cell> {
        self.layout
            .cell_of(x, y)
            .map(|(col, row)| (col as u16, row as u16))
    }

    /// Whether shoppers may stand on `cell`.
    pub fn walkable(&self, (col, row): Cell) -> bool {
        self.layout.walkable(u32::from(col), u32::from(row))
    }

    /// Paths planned with a step into a department other than the destination counting
    /// `crossing` steps (`department_crossing`, 1 to 10): 1 walks the shortest paths, straight
    /// across departments; more keeps shoppers on the walkways unless the detour is longer than
    /// that many times the way across.
    pub fn with_crossing(mut self, crossing: f64) -> Floor {
        self.crossing_tenths = (crossing * 10.0).round().clamp(10.0, 100.0) as u32;
        self
    }

    /// The cost a path plan gives a step of walking cost `cost` into `to`, on a walk whose
    /// destination is department `free` (`None`: a checkout or the exit).
    fn planned(&self, cost: u32, to: Cell, free: Option<u8>) -> u32 {
        let department = self.department[self.index(to)];
        if department == NO_DEPARTMENT || Some(department) == free {
            cost
        } else {
            (cost * self.crossing_tenths).div_ceil(10)
        }
    }

    /// The neighbours of `cell` a shopper may step to that lie in `department`.
    fn steps_into(&self, (col, row): Cell, department: usize) -> Neighbours {
        self.layout
            .neighbours(u32::from(col), u32::from(row))
            .only(|(c, r)| self.department_of((c as u16, r as u16)) == Some(department))
    }

    /// Where a shopper browsing `department` may step from `at`: the neighbours [`Floor::steps`]
    /// gives that lie in the department, in its order.
    pub fn browse_steps(&self, at: Cell, department: usize) -> Neighbours {
        if self.department_of(at) == Some(department) {
            let directions = self.browse[self.index(at)];
            Neighbours::from_directions(u32::from(at.0), u32::from(at.1), directions)
        } else {
            self.steps_into(at, department)
        }
    }

    /// The department `cell` belongs to.
    pub fn department_of(&self, cell: Cell) -> Option<usize> {
        let number = self.department[self.index(cell)];
        (number != NO_DEPARTMENT).then_some(usize::from(number))
    }

    /// The neighbours of `cell` a shopper may step to (the layout's rule: walkable, no cutting of
    /// obstacle corners), with the step's cost, in the layout's fixed order so ties between
    /// equally short paths break the same way in every run.
    pub fn steps(&self, (col, row): Cell) -> impl Iterator<Item = (Cell, u32)> + '_ {
        self.layout
            .neighbours(u32::from(col), u32::from(row))
            .map(move |(c, r)| {
                let cost = if c != u32::from(col) && r != u32::from(row) {
                    DIAGONAL
                } else {
                    STRAIGHT
                };
                ((c as u16, r as u16), cost)
            })
    }
}

/// Marks a cell from which a field's target cannot be reached.
pub const UNREACHABLE: u32 = u32::MAX;

/// [`Fields::next`] of a cell with no step: on the target, or cut off from it.
const NO_STEP: u8 = u8::MAX;

/// One distance field per target, flattened: `dist[field * cells + index]` is the walking
/// distance (in [`STRAIGHT`] units per cell) from a cell to the nearest cell of the target.
#[derive(Clone, Debug)]
pub struct Fields {
    cells: usize,
    dist: Vec<u32>,
    /// The first step of the planned path from each cell, as `dist` is laid out: the direction,
    /// `(dc + 1) * 3 + (dr + 1)`, or [`NO_STEP`]. Looked up instead of searched among the
    /// neighbours at every step a shopper walks (the search was a fifteenth of a run).
    next: Vec<u8>,
    /// The department each field leads to (`None`: a checkout or the exit): crossing it costs
    /// no more than walking a walkway.
    free: Vec<Option<u8>>,
}

impl Fields {
    /// Builds a field for each target (a set of cells, and the department it is, if one) with
    /// Dijkstra run from the target outwards (steps cost the same both ways, so that is the
    /// distance *to* the target). Distances are path-planning costs: a step into another
    /// department than the target's counts [`Floor::with_crossing`] times more. [`Floor::new`]
    /// keeps `cells × targets` within [`MAX_PATH_TABLE_ENTRIES`].
    pub fn build(floor: &Floor, targets: &[(&[Cell], Option<usize>)]) -> Fields {
        let cells = floor.cell_count();
        let mut dist = vec![UNREACHABLE; cells * targets.len()];
        let free: Vec<Option<u8>> = targets
            .iter()
            .map(|(_, department)| department.map(|d| d as u8))
            .collect();
        for ((field, (target, _)), free) in dist.chunks_mut(cells.max(1)).zip(targets).zip(&free) {
            distances_to(floor, target, *free, field);
        }
        let mut fields = Fields {
            cells,
            dist,
            next: Vec::new(),
            free,
        };
        fields.next = (0..fields.dist.len())
            .map(|entry| {
                let (field, cell) = (entry / cells, floor.cell_at_index(entry % cells));
                match fields.search_step(floor, field, cell) {
                    Some(((col, row), _)) => {
                        let dc = i32::from(col) - i32::from(cell.0);
                        let dr = i32::from(row) - i32::from(cell.1);
                        ((dc + 1) * 3 + (dr + 1)) as u8
                    }
                    None => NO_STEP,
                }
            })
            .collect();
        fields
    }

    /// Planning cost from `cell` to the target of `field` ([`UNREACHABLE`] if none): to compare
    /// targets; [`Fields::walk_distance`] is what the walk there takes.
    pub fn distance(&self, floor: &Floor, field: usize, cell: Cell) -> u32 {
        self.dist[field * self.cells + floor.index(cell)]
    }

    /// The next step from `cell` toward the target of `field` and its walking cost, or `None`
    /// on the target (or where it cannot be reached).
    pub fn step(&self, floor: &Floor, field: usize, cell: Cell) -> Option<(Cell, u32)> {
        let direction = self.next[field * self.cells + floor.index(cell)];
        if direction == NO_STEP {
            return None;
        }
        let (dc, dr) = (direction / 3, direction % 3);
        let to = ((cell.0 + u16::from(dc)) - 1, (cell.1 + u16::from(dr)) - 1);
        let cost = if dc != 1 && dr != 1 {
            DIAGONAL
        } else {
            STRAIGHT
        };
        Some((to, cost))
    }

    /// [`Fields::step`] found among the neighbours: the first, in the layout's fixed order, on
    /// a shortest planned path.
    fn search_step(&self, floor: &Floor, field: usize, cell: Cell) -> Option<(Cell, u32)> {
        let here = self.distance(floor, field, cell);
        if here == 0 || here == UNREACHABLE {
            return None;
        }
        let free = self.free[field];
        floor.steps(cell).find(|&(to, cost)| {
            self.distance(floor, field, to)
                .checked_add(floor.planned(cost, to, free))
                == Some(here)
        })
    }

    /// Walking cost (in [`STRAIGHT`] units per cell) of the planned path from `cell` to the
    /// target of `field`, step by step ([`UNREACHABLE`] if none).
    pub fn walk_distance(&self, floor: &Floor, field: usize, mut cell: Cell) -> u32 {
        let planned = self.distance(floor, field, cell);
        // Without a crossing cost the plan is the walk.
        if planned == UNREACHABLE || floor.crossing_tenths == 10 {
            return planned;
        }
        let mut walked = 0u32;
        while let Some((next, cost)) = self.step(floor, field, cell) {
            walked = walked.saturating_add(cost);
            cell = next;
        }
        walked
    }

    /// Bytes the fields take (reported with the start-up time).
    pub fn bytes(&self) -> usize {
        self.dist.len() * std::mem::size_of::<u32>() + self.next.len()
    }
}

/// Fills `dist` (one entry per cell, all [`UNREACHABLE`]) with the planning cost from every cell
/// to the nearest cell of `target` (a walk to department `free`): Dijkstra with a bucket queue
/// (Dial's algorithm), as steps cost a few small integers ([`STRAIGHT`] or [`DIAGONAL`], times
/// the crossing factor inside other departments): linear in the cells, and nothing allocated per
/// cell beyond `dist` itself. Distances are unique, so any correct Dijkstra gives these.
fn distances_to(floor: &Floor, target: &[Cell], free: Option<u8>, dist: &mut [u32]) {
    // Tentative distances of the cells queued lie within the dearest step of the one settled.
    let ring = (DIAGONAL * floor.crossing_tenths).div_ceil(10) as usize + 1;
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); ring];
    let mut queued = 0usize;
    for &cell in target {
        let index = floor.index(cell);
        if dist[index] != 0 {
            dist[index] = 0;
            buckets[0].push(index as u32);
            queued += 1;
        }
    }
    let mut current: u32 = 0;
    while queued > 0 {
        let slot = current as usize % ring;
        let bucket = std::mem::take(&mut buckets[slot]);
        queued -= bucket.len();
        for &node in &bucket {
            if dist[node as usize] != current {
                continue; // settled earlier at a shorter distance
            }
            let cell = floor.cell_at_index(node as usize);
            // The walk runs from `to` into `cell`: the step's cost is that of entering `cell`.
            for (to, cost) in floor.steps(cell) {
                let index = floor.index(to);
                let through = current + floor.planned(cost, cell, free);
                if through < dist[index] {
                    dist[index] = through;
                    buckets[through as usize % ring].push(index as u32);
                    queued += 1;
                }
            }
        }
        // Reuse the bucket's memory.
        let mut bucket = bucket;
        bucket.clear();
        if buckets[slot].is_empty() {
            buckets[slot] = bucket;
        }
        current += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use customersim_plugin_api::layout::{LayoutSpec, Zone};

    pub(crate) fn zone(name: &str, kind: ZoneKind, area: [u32; 4]) -> Zone {
        Zone {
            name: name.into(),
            kind,
            area,
            weight: 1.0,
            focus: true,
        }
    }

    fn floor(entrance: (u32, u32), zones: Vec<Zone>) -> Floor {
        floor_of(100, 60, entrance, zones)
    }

    fn floor_of(width: u32, height: u32, entrance: (u32, u32), zones: Vec<Zone>) -> Floor {
        let layout = StoreLayout::new(LayoutSpec {
            width,
            height,
            cell: 10,
            entrance,
            exit: (width - 5, 5),
            zones,
        })
        .unwrap();
        Floor::new(&layout).unwrap()
    }

    #[test]
    fn paths_go_around_obstacles_and_never_cut_corners() {
        // 10 × 6 cells; a wall in column 5 from row 0 to row 4 (open at row 5).
        let floor = floor(
            (5, 5),
            vec![
                zone("Wall", ZoneKind::Obstacle, [50, 0, 59, 49]),
                zone("Far", ZoneKind::Department, [90, 0, 99, 9]),
            ],
        );
        let fields = Fields::build(&floor, &[(&floor.departments[0].cells, Some(0))]);
        let mut at = floor.entrance;
        let mut steps = 0;
        while let Some((next, cost)) = fields.step(&floor, 0, at) {
            assert!(floor.walkable(next));
            if cost == DIAGONAL {
                assert!(floor.walkable((next.0, at.1)) && floor.walkable((at.0, next.1)));
            }
            at = next;
            steps += 1;
            assert!(steps < 100);
        }
        assert_eq!(floor.department_of(at), Some(0));
        // Diagonally down to the gap at row 5, straight through it (no corner cutting), up again.
        assert_eq!(steps, 12);
    }

    #[test]
    fn shoppers_keep_to_the_walkways_around_departments_not_on_their_way() {
        // 20 × 10 cells; a department in the middle, between the entrance and the target.
        let zones = vec![
            zone("Target", ZoneKind::Department, [170, 40, 199, 59]),
            zone("Between", ZoneKind::Department, [60, 20, 139, 79]),
        ];
        let walk = |crossing: f64| {
            let floor = floor_of(200, 100, (5, 45), zones.clone()).with_crossing(crossing);
            let fields = Fields::build(&floor, &[(&floor.departments[0].cells, Some(0))]);
            let (mut at, mut inside_between, mut walked) = (floor.entrance, 0, 0);
            while let Some((next, cost)) = fields.step(&floor, 0, at) {
                inside_between += usize::from(floor.department_of(next) == Some(1));
                walked += cost;
                at = next;
            }
            assert_eq!(floor.department_of(at), Some(0));
            assert_eq!(fields.walk_distance(&floor, 0, floor.entrance), walked);
            (inside_between, walked)
        };
        let (straight_through, shortest) = walk(1.0);
        let (around, detour) = walk(3.0);
        assert!(straight_through >= 8, "{straight_through}");
        assert_eq!(around, 0);
        assert!(
            detour > shortest && detour < 2 * shortest,
            "{shortest} {detour}"
        );
    }

    /// The browse table holds, for every cell and department, the neighbours the layout gives
    /// that lie in the department, in the layout's order: departments side by side, around
    /// obstacles, cells inside and outside them.
    #[test]
    fn browse_steps_are_the_neighbours_in_the_department_in_order() {
        let layout = StoreLayout::new(LayoutSpec {
            width: 100,
            height: 60,
            cell: 10,
            entrance: (5, 5),
            exit: (5, 55),
            zones: vec![
                zone("Left", ZoneKind::Department, [10, 10, 49, 49]),
                zone("Right", ZoneKind::Department, [50, 10, 89, 39]),
                zone("Shelf", ZoneKind::Obstacle, [30, 20, 34, 24]),
                zone("Pillar", ZoneKind::Obstacle, [60, 30, 64, 34]),
            ],
        })
        .unwrap();
        let floor = Floor::new(&layout).unwrap();
        let mut browsed = 0;
        for index in 0..floor.cell_count() {
            let at = floor.cell_at_index(index);
            for department in 0..floor.departments.len() {
                let expected: Vec<Cell> = floor
                    .steps(at)
                    .map(|(to, _)| to)
                    .filter(|&to| floor.department_of(to) == Some(department))
                    .collect();
                let steps = floor.browse_steps(at, department);
                let got: Vec<Cell> = (0..steps.count_open())
                    .map(|n| {
                        steps
                            .nth_open(n)
                            .map(|(c, r)| (c as u16, r as u16))
                            .unwrap()
                    })
                    .collect();
                assert_eq!(got, expected, "from {at:?} in department {department}");
                browsed += got.len();
            }
        }
        assert!(
            browsed > 100,
            "{browsed} steps: the layout has departments to browse"
        );
    }

    #[test]
    fn the_bucket_queue_finds_the_distances_of_a_general_dijkstra_and_the_step_table_its_first_steps()
     {
        let mut state = 3u64;
        let mut next = move |below: u32| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32 % below
        };
        for round in 0..30 {
            let mut zones = vec![zone("Target", ZoneKind::Department, [80, 40, 99, 59])];
            for n in 0..next(12) {
                let (x, y) = (10 + next(60), next(50));
                let area = [x, y, x + next(15), y + next(10)];
                zones.push(zone(&format!("Shelf {n}"), ZoneKind::Obstacle, area));
            }
            for n in 0..next(4) {
                let (x, y) = (10 + next(60), next(50));
                let area = [x, y, x + next(25), y + next(20)];
                zones.push(zone(&format!("Aisle-free {n}"), ZoneKind::Department, area));
            }
            let Ok(layout) = StoreLayout::new(LayoutSpec {
                width: 100,
                height: 60,
                cell: 10,
                entrance: (5, 5),
                exit: (5, 55),
                zones,
            }) else {
                continue;
            };
            // Every other round, departments on the way cost three times as much to cross.
            let crossing = if round % 2 == 0 { 1.0 } else { 3.0 };
            let floor = Floor::new(&layout).unwrap().with_crossing(crossing);
            let target = &floor.departments[0].cells;
            let fields = Fields::build(&floor, &[(target, Some(0))]);
            let start = floor.cell_count() as u32;
            let reached = pathfinding::directed::dijkstra::dijkstra_all(&start, |&node| {
                let next: Vec<(u32, u32)> = if node == start {
                    target.iter().map(|&c| (floor.index(c) as u32, 0)).collect()
                } else {
                    let cols = u32::from(floor.cols);
                    let cell = ((node % cols) as u16, (node / cols) as u16);
                    floor
                        .steps(cell)
                        .map(|(to, cost)| {
                            (floor.index(to) as u32, floor.planned(cost, cell, Some(0)))
                        })
                        .collect()
                };
                next
            });
            for row in 0..floor.rows {
                for col in 0..floor.cols {
                    let index = floor.index((col, row)) as u32;
                    let expected = reached.get(&index).map_or(UNREACHABLE, |&(_, cost)| cost);
                    assert_eq!(fields.distance(&floor, 0, (col, row)), expected);
                    // The step table holds what a search among the neighbours finds.
                    assert_eq!(
                        fields.step(&floor, 0, (col, row)),
                        fields.search_step(&floor, 0, (col, row)),
                        "the first step from {:?}",
                        (col, row)
                    );
                }
            }
        }
    }

    #[test]
    fn path_tables_beyond_the_limit_are_refused_naming_the_numbers() {
        // 1024 x 1024 cells: 64 targets fit, 65 do not.
        let layout = |departments: u32| {
            let mut zones: Vec<Zone> = (0..departments)
                .map(|n| {
                    zone(
                        &format!("D{n}"),
                        ZoneKind::Department,
                        [n * 10, 100, n * 10 + 5, 110],
                    )
                })
                .collect();
            zones.push(zone("T1", ZoneKind::Checkout, [900, 100, 910, 110]));
            zones.push(zone("T2", ZoneKind::Checkout, [950, 100, 960, 110]));
            StoreLayout::new(LayoutSpec {
                width: 1024,
                height: 1024,
                cell: 1,
                entrance: (0, 0),
                exit: (0, 0),
                zones,
            })
            .unwrap()
        };
        assert!(Floor::new(&layout(61)).is_ok());
        let error = Floor::new(&layout(62)).unwrap_err().to_string();
        assert!(
            error.contains("store: shopping_trip keeps a path table")
                && error.contains("65 targets (62 departments, 2 checkouts and the exit)")
                && error.contains("68157440 entries, more than its limit of 67108864 (320 MiB)"),
            "{error}"
        );
    }

    #[test]
    fn the_line_of_a_checkout_starts_below_its_counter_and_stops_at_departments() {
        let floor = floor(
            (5, 5),
            vec![
                zone("Till", ZoneKind::Checkout, [40, 0, 59, 9]),
                zone("Toys", ZoneKind::Department, [0, 40, 99, 59]),
            ],
        );
        // The zone is walkable itself (a till against the top wall): pay on its top cell.
        assert_eq!(floor.checkouts[0].line, [(4, 0), (4, 1), (4, 2), (4, 3)]);
    }

    #[test]
    fn the_line_of_a_checkout_zone_below_its_counter_starts_at_the_counter() {
        // The zone is the floor below a solid counter: pay on its top cell, queue downwards.
        let floor = floor(
            (5, 5),
            vec![
                zone("Counter", ZoneKind::Obstacle, [40, 0, 59, 9]),
                zone("Till", ZoneKind::Checkout, [40, 10, 59, 29]),
                zone("Toys", ZoneKind::Department, [80, 40, 99, 59]),
            ],
        );
        assert_eq!(floor.checkouts[0].line[..3], [(4, 1), (4, 2), (4, 3)]);
        assert_eq!(floor.checkouts[0].line.len(), 5);
    }

    #[test]
    fn a_layout_without_departments_is_refused_by_key() {
        let layout = StoreLayout::grid(6, 10, (0, 0));
        let error = Floor::new(&layout).unwrap_err();
        assert!(error.to_string().contains("store.zones"), "{error}");
    }
}
