//! Who the shoppers are when the pipeline has a fixed list of customers.

use rand::RngCore;

use crate::event::CustomerId;
use crate::fleet::StoreIndex;

/// A fixed list of customers (a `customer_list` source provides one; simulated sources draw
/// arriving shoppers from it). Each listed customer has one home store of the fleet and only
/// shops there, so a listed customer is inside at most one store, at most once, at a time.
pub trait Roster: Send + Sync {
    /// Picks, uniformly, a customer of `store` who is not inside and marks them inside; `None`
    /// when every customer of `store` is inside (or the store has none).
    fn admit(&self, store: StoreIndex, rng: &mut dyn RngCore) -> Option<CustomerId>;
    /// Marks a customer of `store` as outside again.
    fn release(&self, store: StoreIndex, customer: &CustomerId);
    /// How many customers the list holds (for the stores this process runs).
    fn size(&self) -> usize;
}
