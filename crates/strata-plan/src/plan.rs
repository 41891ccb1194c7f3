//! Tables of layouts x groupings and a recommendation.
