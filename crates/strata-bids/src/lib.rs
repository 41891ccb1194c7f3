//! BIDS microscopy for Strata.
