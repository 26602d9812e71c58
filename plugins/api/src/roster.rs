//! Who the shoppers are when the pipeline has a fixed list of customers.

use rand::RngCore;

use crate::event::CustomerId;

/// A fixed list of customers (a `customer_list` source provides one; simulated sources draw
/// arriving shoppers from it). A listed customer is inside at most once at a time.
pub trait Roster: Send + Sync {
    /// Picks, uniformly, a customer who is not inside and marks them inside; `None` when every
    /// listed customer is inside.
    fn admit(&self, rng: &mut dyn RngCore) -> Option<CustomerId>;
    /// Marks a customer as outside again.
    fn release(&self, customer: &CustomerId);
    /// How many customers the list holds.
    fn size(&self) -> usize;
}
