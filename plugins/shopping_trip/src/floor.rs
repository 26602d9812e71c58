//! The walking grid the shoppers move on, and the distance fields their paths follow.
//!
//! A [`Floor`] is the store layout seen as cells: which are walkable, which department each belongs
//! to, where the doors and the checkout lines are. A [`Fields`] holds one distance field per
//! target (each department, each checkout line, the exit), built once at start-up with Dijkstra
//! from the target outwards. A shopper's next step is then the neighbour that lowers the distance
//! to its current target: no search runs while shoppers walk, and a shopper only remembers which
//! field it follows.
//!
//! Moves go to the 8 neighbours. A diagonal step costs 14 and a straight one 10 (√2 ≈ 1.4), so
//! paths are shortest in walking distance, not in number of steps, and do not zig-zag. A diagonal
//! step is only taken when both cells beside it are walkable: shoppers do not squeeze between two
//! shelves that touch at a corner, nor cut through the corner of a shelf.

use std::sync::Arc;

use customersim_plugin_api::PluginError;

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
    /// Cells along x.
    pub cols: u16,
    /// Cells along y.
    pub rows: u16,
    /// Store units per cell side: one step is one cell.
    pub cell: u32,
    /// Extent of the coordinate space: published x is below it.
    pub width: u32,
    /// Extent of the coordinate space: published y is below it.
    pub height: u32,
    /// Whether each cell (row-major) can be walked on.
    walkable: Vec<bool>,
    /// Department of each cell (row-major), [`NO_DEPARTMENT`] outside them.
    department: Vec<u8>,
    /// Where shoppers come in.
    pub entrance: Cell,
    /// Where shoppers leave.
    pub exit: Cell,
    /// The departments, in the layout's order.
    pub departments: Vec<Area>,
    /// The checkouts, in the layout's order.
    pub checkouts: Vec<Checkout>,
}

/// What a zone of the layout is, for [`Floor::build`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneKind {
    /// Walkable; browsed.
    Department,
    /// Walkable; paid at, with a line.
    Checkout,
    /// Never walked on.
    Obstacle,
}

/// A zone of the layout in store coordinates, for [`Floor::build`].
#[derive(Clone, Debug)]
pub struct ZoneSpec {
    /// Its name.
    pub name: Arc<str>,
    /// What it is.
    pub kind: ZoneKind,
    /// Inclusive rectangle `[x1, y1, x2, y2]` in store coordinates; a cell belongs to it when
    /// the cell's centre lies inside.
    pub area: [u32; 4],
    /// Relative weight (departments).
    pub weight: f64,
}

impl Floor {
    /// The grid of a `width × height` store with `cell`-sized cells, doors at the cells holding
    /// `entrance` and `exit` (store coordinates) and the given zones.
    pub fn build(
        width: u32,
        height: u32,
        cell: u32,
        entrance: (u32, u32),
        exit: (u32, u32),
        zones: &[ZoneSpec],
    ) -> Result<Floor, PluginError> {
        let bad = |why: String| Err(PluginError::Config(why));
        if cell == 0 || width == 0 || height == 0 {
            return bad("store: width, height and cell must be positive".into());
        }
        let cols = width.div_ceil(cell);
        let rows = height.div_ceil(cell);
        if cols > u32::from(u16::MAX) || rows > u32::from(u16::MAX) {
            return bad(format!(
                "store.cell: {cols} × {rows} cells is too many for shopping_trip; use larger cells"
            ));
        }
        let (cols, rows) = (cols as u16, rows as u16);
        let count = usize::from(cols) * usize::from(rows);
        let mut floor = Floor {
            cols,
            rows,
            cell,
            width,
            height,
            walkable: vec![true; count],
            department: vec![NO_DEPARTMENT; count],
            entrance: (0, 0),
            exit: (0, 0),
            departments: Vec::new(),
            checkouts: Vec::new(),
        };
        let cells_of = |floor: &Floor, [x1, y1, x2, y2]: [u32; 4]| -> Vec<Cell> {
            let mut cells = Vec::new();
            for row in 0..floor.rows {
                for col in 0..floor.cols {
                    let (x, y) = floor.centre((col, row));
                    if (x1..=x2).contains(&x) && (y1..=y2).contains(&y) {
                        cells.push((col, row));
                    }
                }
            }
            cells
        };
        for zone in zones.iter().filter(|z| z.kind == ZoneKind::Obstacle) {
            for cell in cells_of(&floor, zone.area) {
                let index = floor.index(cell);
                floor.walkable[index] = false;
            }
        }
        for zone in zones {
            let cells: Vec<Cell> = cells_of(&floor, zone.area)
                .into_iter()
                .filter(|&c| floor.walkable(c))
                .collect();
            match zone.kind {
                ZoneKind::Obstacle => {}
                ZoneKind::Department => {
                    if cells.is_empty() {
                        return bad(format!(
                            "store.zones: department {:?} holds no walkable cell centre",
                            zone.name
                        ));
                    }
                    if !(zone.weight.is_finite() && zone.weight > 0.0) {
                        return bad(format!(
                            "store.zones: department {:?}: weight must be a number > 0",
                            zone.name
                        ));
                    }
                    if floor.departments.len() >= usize::from(NO_DEPARTMENT) {
                        return bad("store.zones: shopping_trip takes at most 254 departments".into());
                    }
                    let number = floor.departments.len() as u8;
                    for &cell in &cells {
                        let index = floor.index(cell);
                        if floor.department[index] == NO_DEPARTMENT {
                            floor.department[index] = number;
                        }
                    }
                    floor.departments.push(Area {
                        name: zone.name.clone(),
                        cells,
                        weight: zone.weight,
                    });
                }
                // Lines are drawn once every department is known (they stop at departments).
                ZoneKind::Checkout => {}
            }
        }
        for zone in zones.iter().filter(|z| z.kind == ZoneKind::Checkout) {
            let line = floor.checkout_line(&zone.name, zone.area)?;
            floor.checkouts.push(Checkout {
                name: zone.name.clone(),
                line,
            });
        }
        floor.entrance = floor.door_cell("store.entrance", entrance)?;
        floor.exit = floor.door_cell("store.exit", exit)?;
        Ok(floor)
    }

    /// The cell holding store point `(x, y)`, checked to be walkable.
    fn door_cell(&self, key: &str, (x, y): (u32, u32)) -> Result<Cell, PluginError> {
        let cell = self.cell_of(x, y).ok_or_else(|| {
            PluginError::Config(format!("{key}: [{x}, {y}] is outside the store"))
        })?;
        if !self.walkable(cell) {
            return Err(PluginError::Config(format!(
                "{key}: [{x}, {y}] is inside an obstacle"
            )));
        }
        Ok(cell)
    }

    /// The line of a checkout whose counter covers `area`: shoppers pay on the walkable cell just
    /// below the middle of the counter (the demo store's counters stand against the top wall) or,
    /// when that is blocked, just above it or on the counter's own middle cell; the line grows
    /// away from the counter, one cell per place, while the cells are walkable and outside every
    /// department.
    fn checkout_line(&self, name: &str, [x1, y1, x2, y2]: [u32; 4]) -> Result<Vec<Cell>, PluginError> {
        let middle_x = (x1 + x2) / 2;
        let col = (middle_x / self.cell).min(u32::from(self.cols) - 1) as i32;
        let top = (y1 / self.cell) as i32;
        let bottom = (y2 / self.cell) as i32;
        let middle = (top + bottom) / 2;
        let candidates = [(bottom + 1, 1), (top - 1, -1), (middle, 1)];
        for (row, direction) in candidates {
            let mut line = Vec::new();
            let mut row = row;
            while line.len() < MAX_QUEUE_PLACES {
                let Some(cell) = self.cell_at(col, row) else {
                    break;
                };
                if !self.walkable(cell) || (!line.is_empty() && self.department_of(cell).is_some())
                {
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

    /// How many cells the grid has.
    pub fn cell_count(&self) -> usize {
        self.walkable.len()
    }

    /// The store coordinates published for a shopper standing on `cell`: the cell's centre,
    /// kept inside `[0, width) × [0, height)` for a last, partial cell.
    pub fn centre(&self, (col, row): Cell) -> (u32, u32) {
        let half = self.cell / 2;
        (
            (u32::from(col) * self.cell + half).min(self.width - 1),
            (u32::from(row) * self.cell + half).min(self.height - 1),
        )
    }

    /// The cell holding store point `(x, y)`.
    pub fn cell_of(&self, x: u32, y: u32) -> Option<Cell> {
        (x < self.width && y < self.height)
            .then(|| ((x / self.cell) as u16, (y / self.cell) as u16))
    }

    /// Whether shoppers may stand on `cell`.
    pub fn walkable(&self, cell: Cell) -> bool {
        self.walkable[self.index(cell)]
    }

    /// The department `cell` belongs to.
    pub fn department_of(&self, cell: Cell) -> Option<usize> {
        let number = self.department[self.index(cell)];
        (number != NO_DEPARTMENT).then_some(usize::from(number))
    }

    /// The walkable neighbours of `cell` a shopper may step to, with the step's cost; diagonal
    /// steps need both cells beside them walkable (no cutting of obstacle corners). The order is
    /// fixed, so ties between equally short paths break the same way in every run.
    pub fn steps(&self, (col, row): Cell) -> impl Iterator<Item = (Cell, u32)> + '_ {
        const AROUND: [(i32, i32); 8] = [
            (0, -1),
            (1, 0),
            (0, 1),
            (-1, 0),
            (1, -1),
            (1, 1),
            (-1, 1),
            (-1, -1),
        ];
        let (col, row) = (i32::from(col), i32::from(row));
        AROUND.iter().filter_map(move |&(dx, dy)| {
            let to = self.cell_at(col + dx, row + dy)?;
            if !self.walkable(to) {
                return None;
            }
            if dx != 0 && dy != 0 {
                let side_a = self.cell_at(col + dx, row)?;
                let side_b = self.cell_at(col, row + dy)?;
                if !self.walkable(side_a) || !self.walkable(side_b) {
                    return None;
                }
                return Some((to, DIAGONAL));
            }
            Some((to, STRAIGHT))
        })
    }
}

/// Marks a cell from which a field's target cannot be reached.
pub const UNREACHABLE: u32 = u32::MAX;

/// One distance field per target, flattened: `dist[field * cells + index]` is the walking
/// distance (in [`STRAIGHT`] units per cell) from a cell to the nearest cell of the target.
#[derive(Clone, Debug)]
pub struct Fields {
    cells: usize,
    dist: Vec<u32>,
}

impl Fields {
    /// Builds a field for each target (a set of cells) with Dijkstra run from the target outwards
    /// (steps cost the same both ways, so that is the distance *to* the target).
    pub fn build(floor: &Floor, targets: &[&[Cell]]) -> Fields {
        let cells = floor.cell_count();
        let mut dist = vec![UNREACHABLE; cells * targets.len()];
        // Node `cells` is a virtual start joined to every target cell at no cost.
        let start = cells as u32;
        for (field, target) in targets.iter().enumerate() {
            let reached = pathfinding::directed::dijkstra::dijkstra_all(&start, |&node| {
                let next: Vec<(u32, u32)> = if node == start {
                    target
                        .iter()
                        .map(|&cell| (floor.index(cell) as u32, 0))
                        .collect()
                } else {
                    let cell = (
                        (node as usize % usize::from(floor.cols)) as u16,
                        (node as usize / usize::from(floor.cols)) as u16,
                    );
                    floor
                        .steps(cell)
                        .map(|(to, cost)| (floor.index(to) as u32, cost))
                        .collect()
                };
                next
            });
            let base = field * cells;
            for (node, (_, cost)) in reached {
                dist[base + node as usize] = cost;
            }
        }
        Fields { cells, dist }
    }

    /// Distance from `cell` to the target of `field`.
    pub fn distance(&self, floor: &Floor, field: usize, cell: Cell) -> u32 {
        self.dist[field * self.cells + floor.index(cell)]
    }

    /// The next step from `cell` toward the target of `field` and its cost, or `None` on the
    /// target (or where it cannot be reached).
    pub fn step(&self, floor: &Floor, field: usize, cell: Cell) -> Option<(Cell, u32)> {
        let here = self.distance(floor, field, cell);
        if here == 0 || here == UNREACHABLE {
            return None;
        }
        floor
            .steps(cell)
            .find(|&(to, cost)| self.distance(floor, field, to).checked_add(cost) == Some(here))
    }

    /// Bytes the fields take (reported with the start-up time).
    pub fn bytes(&self) -> usize {
        self.dist.len() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str, kind: ZoneKind, area: [u32; 4]) -> ZoneSpec {
        ZoneSpec {
            name: Arc::from(name),
            kind,
            area,
            weight: 1.0,
        }
    }

    /// 10 × 6 cells of 10 units; a wall at column 5 from row 0 to row 4 (open at row 5).
    fn walled() -> Floor {
        Floor::build(
            100,
            60,
            10,
            (5, 5),
            (95, 5),
            &[
                zone("Wall", ZoneKind::Obstacle, [50, 0, 59, 49]),
                zone("Far", ZoneKind::Department, [90, 0, 99, 9]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn paths_go_around_obstacles_and_never_cut_corners() {
        let floor = walled();
        let fields = Fields::build(&floor, &[&floor.departments[0].cells]);
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
    fn the_line_of_a_checkout_starts_below_its_counter() {
        let floor = Floor::build(
            100,
            60,
            10,
            (5, 5),
            (95, 5),
            &[
                zone("Till", ZoneKind::Checkout, [40, 0, 59, 9]),
                zone("Toys", ZoneKind::Department, [0, 40, 99, 59]),
            ],
        )
        .unwrap();
        let line = &floor.checkouts[0].line;
        assert_eq!(line[0], (4, 1));
        assert_eq!(line[1], (4, 2));
        // Stops before the department.
        assert_eq!(line.len(), 3);
    }

    #[test]
    fn doors_in_obstacles_are_refused_by_key() {
        let error = Floor::build(
            100,
            60,
            10,
            (55, 5),
            (95, 5),
            &[zone("Wall", ZoneKind::Obstacle, [50, 0, 59, 49])],
        )
        .unwrap_err();
        assert!(error.to_string().contains("store.entrance"), "{error}");
    }
}
