//! Units the specification recommends (UDUNITS-2 names).

/// Length units recommended for axes of type `space`.
pub const SPACE_UNITS: [&str; 26] = [
    "angstrom",
    "attometer",
    "centimeter",
    "decimeter",
    "exameter",
    "femtometer",
    "foot",
    "gigameter",
    "hectometer",
    "inch",
    "kilometer",
    "megameter",
    "meter",
    "micrometer",
    "mile",
    "millimeter",
    "nanometer",
    "parsec",
    "petameter",
    "picometer",
    "terameter",
    "yard",
    "yoctometer",
    "yottameter",
    "zeptometer",
    "zettameter",
];

/// Time units recommended for axes of type `time`.
pub const TIME_UNITS: [&str; 23] = [
    "attosecond",
    "centisecond",
    "day",
    "decisecond",
    "exasecond",
    "femtosecond",
    "gigasecond",
    "hectosecond",
    "hour",
    "kilosecond",
    "megasecond",
    "microsecond",
    "millisecond",
    "minute",
    "nanosecond",
    "petasecond",
    "picosecond",
    "second",
    "terasecond",
    "yoctosecond",
    "yottasecond",
    "zeptosecond",
    "zettasecond",
];

/// `true` if `unit` is a recommended length unit.
#[must_use]
pub fn is_space_unit(unit: &str) -> bool {
    SPACE_UNITS.contains(&unit)
}

/// `true` if `unit` is a recommended time unit.
#[must_use]
pub fn is_time_unit(unit: &str) -> bool {
    TIME_UNITS.contains(&unit)
}
