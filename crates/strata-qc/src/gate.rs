//! The QC gate: rules, their evaluation and the report `strata qc --json` prints.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pixel::PixelFormat;
use crate::plane::PlaneMetrics;
use crate::stack::{StackSummary, TileSummary};

/// Pass/fail rules. Every field has a default and a missing key keeps it; a limit set to
/// `false` in the file (`None` in code) disables that rule. Parse them with
/// [`Rules::from_toml_str`] or [`Rules::from_json_str`]; [`Rules::DEFAULT_TOML`] is the default
/// file.
///
/// All plane-level limits are checked on the best-focus plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Fail when the stack has 3 or more planes and its best plane is the first or the last
    /// (the focus peak is outside the stack). Default `true`.
    pub best_plane_not_at_edge: bool,
    /// Fail when the tissue fraction is below this floor. Default `0.05`.
    #[serde(with = "limit")]
    pub min_tissue_fraction: Option<f64>,
    /// Fail when the Otsu classes are closer than this (see
    /// [`crate::TissueMetrics::class_separation`]): the plane has no tissue contrast, e.g. a
    /// blank slide. Default `0.08` (20 gray levels of 255).
    #[serde(with = "limit")]
    pub min_class_separation: Option<f64>,
    /// Fail when the saturated fraction is above this ceiling. Default `0.05`.
    #[serde(with = "limit")]
    pub max_saturated_fraction: Option<f64>,
    /// Fail when the fraction of tissue tiles out of focus even at their own best plane is
    /// above this ceiling. Default `0.10`.
    #[serde(with = "limit")]
    pub max_out_of_focus_tile_fraction: Option<f64>,
    /// Fail when the black (value 0) fraction is above this ceiling. Default: not checked.
    #[serde(with = "limit")]
    pub max_black_fraction: Option<f64>,
}

/// A limit in a rules file: a number, or `false` for "not checked".
mod limit {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Flag(bool),
    }

    #[allow(clippy::ref_option)] // the signature serde's `with` expects
    pub(super) fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => s.serialize_f64(*x),
            None => s.serialize_bool(false),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(x) => Ok(Some(x)),
            Repr::Flag(false) => Ok(None),
            Repr::Flag(true) => Err(serde::de::Error::custom(
                "a limit is a number, or false to disable the rule",
            )),
        }
    }
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            best_plane_not_at_edge: true,
            min_tissue_fraction: Some(0.05),
            min_class_separation: Some(0.08),
            max_saturated_fraction: Some(0.05),
            max_out_of_focus_tile_fraction: Some(0.10),
            max_black_fraction: None,
        }
    }
}

impl Rules {
    /// The default rules as a TOML file (equal to [`Rules::default`]).
    pub const DEFAULT_TOML: &'static str = "\
# strata QC gate. Plane-level limits apply to the best-focus plane; delete a line to keep
# its default, which is the value shown.
best_plane_not_at_edge = true            # the focus peak must not be the first or last plane
min_tissue_fraction = 0.05               # pixels at or below the Otsu threshold
min_class_separation = 0.08              # tissue vs background contrast (blank slides fail)
max_saturated_fraction = 0.05            # pixels at the saturation value
max_out_of_focus_tile_fraction = 0.10    # tissue tiles out of focus even at their best plane
max_black_fraction = false               # pixels equal to 0 (a fraction, or false: not checked)
";

    /// Parses rules from TOML.
    ///
    /// # Errors
    /// [`Error::Rules`] for invalid TOML, unknown keys, wrong types or out-of-range limits.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let rules: Self = toml::from_str(text).map_err(|e| Error::Rules(e.to_string()))?;
        rules.validate()?;
        Ok(rules)
    }

    /// Parses rules from JSON.
    ///
    /// # Errors
    /// [`Error::Rules`] for invalid JSON, unknown keys, wrong types or out-of-range limits.
    pub fn from_json_str(text: &str) -> Result<Self> {
        let rules: Self = serde_json::from_str(text).map_err(|e| Error::Rules(e.to_string()))?;
        rules.validate()?;
        Ok(rules)
    }

    /// Checks that every fraction limit lies in 0..=1.
    ///
    /// # Errors
    /// [`Error::Rules`] naming the rule.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("min_tissue_fraction", self.min_tissue_fraction),
            ("min_class_separation", self.min_class_separation),
            ("max_saturated_fraction", self.max_saturated_fraction),
            (
                "max_out_of_focus_tile_fraction",
                self.max_out_of_focus_tile_fraction,
            ),
            ("max_black_fraction", self.max_black_fraction),
        ] {
            if let Some(v) = v
                && !(0.0..=1.0).contains(&v)
            {
                return Err(Error::Rules(format!("{name} = {v} is outside 0..=1")));
            }
        }
        Ok(())
    }
}

/// The outcome of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleOutcome {
    /// Rule name (the key in the rules file).
    pub rule: String,
    /// Whether the stack passes it.
    pub passed: bool,
    /// The measured value.
    pub value: f64,
    /// The limit, as text (`">= 0.05"`, `"<= 0.1"`, `"not 0 or 29"`).
    pub threshold: String,
    /// A sentence for people.
    pub message: String,
}

/// One plane in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaneReport {
    /// Plane index in the stack.
    pub index: usize,
    /// Its metrics.
    #[serde(flatten)]
    pub metrics: PlaneMetrics,
}

/// The QC result of a stack: what `strata qc --json` prints and the HTML report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QcReport {
    /// True when every rule passed.
    pub passed: bool,
    /// Failed rules with their values and thresholds (empty when `passed`).
    pub reasons: Vec<RuleOutcome>,
    /// The best-focus plane.
    pub best_plane: usize,
    /// Whether the best plane is the first or last of 3 or more planes.
    pub peak_at_edge: bool,
    /// Variance of the Laplacian per plane.
    pub focus_curve: Vec<f64>,
    /// Pixel format of the planes.
    pub format: PixelFormat,
    /// Saturation value used.
    pub max_value: u32,
    /// Every plane with its metrics.
    pub planes: Vec<PlaneReport>,
    /// Every rule evaluated, passed or not.
    pub rules: Vec<RuleOutcome>,
    /// The rules used.
    pub rule_set: Rules,
    /// Per-tile analysis.
    pub tiles: TileSummary,
}

impl QcReport {
    /// Pretty JSON.
    ///
    /// # Errors
    /// Never in practice (all values serialise; non-finite numbers become `null`).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Rules(e.to_string()))
    }

    /// Pretty JSON without the per-tile arrays (the tile counts and fractions stay): a whole
    /// slide has tens of thousands of tiles.
    ///
    /// # Errors
    /// As [`QcReport::to_json`].
    pub fn to_json_brief(&self) -> Result<String> {
        let mut brief = self.clone();
        let t = &mut brief.tiles;
        t.tissue.clear();
        t.focus_at_best_plane.clear();
        t.best_focus.clear();
        t.best_plane.clear();
        t.out_of_focus.clear();
        brief.to_json()
    }
}

fn limit(rule: &str, value: f64, limit: f64, at_least: bool, what: &str) -> RuleOutcome {
    let passed = if at_least {
        value >= limit
    } else {
        value <= limit
    };
    let op = if at_least { ">=" } else { "<=" };
    RuleOutcome {
        rule: rule.to_owned(),
        passed,
        value,
        threshold: format!("{op} {limit}"),
        message: format!(
            "{what} is {value:.4}, {} {op} {limit}",
            if passed { "within" } else { "must be" }
        ),
    }
}

impl StackSummary {
    /// Applies the gate.
    #[must_use]
    pub fn evaluate(&self, rules: &Rules) -> QcReport {
        // A summary built by hand may be inconsistent: missing metrics read as NaN and fail.
        let best = self.planes.get(self.best_plane);
        let metric = |f: fn(&PlaneMetrics) -> f64| best.map_or(f64::NAN, f);
        let n = self.planes.len();
        let mut out = Vec::new();
        if rules.best_plane_not_at_edge {
            let applicable = n >= 3;
            out.push(RuleOutcome {
                rule: "best_plane_not_at_edge".into(),
                passed: !self.peak_at_edge,
                value: self.best_plane as f64,
                threshold: if applicable {
                    format!("not 0 or {}", n - 1)
                } else {
                    "needs 3 or more planes".into()
                },
                message: if !applicable {
                    format!("not checked: the stack has {n} plane(s)")
                } else if self.peak_at_edge {
                    format!(
                        "best-focus plane {} is at the edge of the {n}-plane stack: the focus \
                         peak is probably outside the stack",
                        self.best_plane
                    )
                } else {
                    format!("best-focus plane {} of {n}", self.best_plane)
                },
            });
        }
        if let Some(l) = rules.min_tissue_fraction {
            out.push(limit(
                "min_tissue_fraction",
                metric(|m| m.tissue.tissue_fraction),
                l,
                true,
                "tissue fraction",
            ));
        }
        if let Some(l) = rules.min_class_separation {
            out.push(limit(
                "min_class_separation",
                metric(|m| m.tissue.class_separation),
                l,
                true,
                "tissue/background class separation",
            ));
        }
        if let Some(l) = rules.max_saturated_fraction {
            out.push(limit(
                "max_saturated_fraction",
                metric(|m| m.exposure.saturated_fraction),
                l,
                false,
                "saturated fraction",
            ));
        }
        if let Some(l) = rules.max_out_of_focus_tile_fraction {
            out.push(limit(
                "max_out_of_focus_tile_fraction",
                self.tiles.out_of_focus_fraction,
                l,
                false,
                "out-of-focus tissue tile fraction",
            ));
        }
        if let Some(l) = rules.max_black_fraction {
            out.push(limit(
                "max_black_fraction",
                metric(|m| m.exposure.black_fraction),
                l,
                false,
                "black fraction",
            ));
        }
        let reasons: Vec<RuleOutcome> = out.iter().filter(|r| !r.passed).cloned().collect();
        QcReport {
            passed: reasons.is_empty(),
            reasons,
            best_plane: self.best_plane,
            peak_at_edge: self.peak_at_edge,
            focus_curve: self.focus_curve.clone(),
            format: self.format,
            max_value: self.max_value,
            planes: self
                .planes
                .iter()
                .enumerate()
                .map(|(index, m)| PlaneReport { index, metrics: *m })
                .collect(),
            rules: out,
            rule_set: rules.clone(),
            tiles: self.tiles.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_is_the_default() {
        assert_eq!(
            Rules::from_toml_str(Rules::DEFAULT_TOML).expect("parses"),
            Rules::default()
        );
        assert_eq!(Rules::from_toml_str("").expect("empty"), Rules::default());
        assert_eq!(Rules::from_json_str("{}").expect("empty"), Rules::default());
    }

    #[test]
    fn rules_reject_unknown_and_out_of_range() {
        assert!(Rules::from_toml_str("min_tissue = 0.1").is_err());
        assert!(Rules::from_toml_str("min_tissue_fraction = 1.5").is_err());
        assert!(Rules::from_json_str(r#"{"max_saturated_fraction": "x"}"#).is_err());
        let r =
            Rules::from_json_str(r#"{"max_black_fraction": 0.3, "best_plane_not_at_edge": false}"#)
                .expect("valid");
        assert_eq!(r.max_black_fraction, Some(0.3));
        assert!(!r.best_plane_not_at_edge);
        let off = Rules::from_toml_str("min_tissue_fraction = false\nmax_black_fraction = 0.2")
            .expect("valid");
        assert_eq!(off.min_tissue_fraction, None);
        assert_eq!(off.max_black_fraction, Some(0.2));
        assert!(Rules::from_toml_str("min_tissue_fraction = true").is_err());
        // Integers are accepted where a fraction is expected.
        assert_eq!(
            Rules::from_toml_str("max_saturated_fraction = 1")
                .expect("valid")
                .max_saturated_fraction,
            Some(1.0)
        );
        // Round trip through JSON, disabled rules included.
        let json = serde_json::to_string(&off).expect("json");
        assert!(json.contains("\"min_tissue_fraction\":false"));
        assert_eq!(Rules::from_json_str(&json).expect("parse"), off);
    }
}
