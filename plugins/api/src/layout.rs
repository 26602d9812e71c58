//! The store's floor plan.

use serde::{Deserialize, Serialize};

/// The store's floor plan: a `width × height` grid of cells and the door cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(crate = "serde")]
pub struct StoreLayout {
    /// Cells along x; simulated `x` is in `0..width`.
    pub width: u32,
    /// Cells along y; simulated `y` is in `0..height`.
    pub height: u32,
    /// The cell where shoppers enter and leave.
    pub door: (u32, u32),
}
