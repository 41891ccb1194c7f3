//! Strata facade.
pub use strata_bids as bids;
