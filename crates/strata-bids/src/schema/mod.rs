//! The BIDS rules strata-bids applies, generated from the official machine-readable schema.
//!
//! The tables in [`generated`] are written by `cargo xtask codegen` from the `schema.json` that
//! ships in the PyPI package `bidsschematools`; CI checks that they are up to date. This module
//! adds the types the tables use and a checker for the subset of JSON Schema that the BIDS
//! schema uses to describe metadata values (`type`, `enum`, `minItems`, `maxItems`, `items`,
//! `minimum`, `exclusiveMinimum`, `anyOf`, `pattern` of the `^prefix-label$` form, `properties`,
//! `required`). A general JSON Schema engine would be a heavy dependency for a metadata crate,
//! and this subset is small and fully tested.

/// Tables generated from the BIDS schema by `cargo xtask codegen`.
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic)]
pub mod generated;

use serde_json::Value;
use std::sync::OnceLock;

pub use generated::{BIDS_VERSION, SCHEMA_VERSION};

/// How strongly the specification asks for an entity, field or column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// MUST be present.
    Required,
    /// SHOULD be present; its absence is a warning.
    Recommended,
    /// MAY be present.
    Optional,
    /// MUST NOT be present (entities only).
    NotAllowed,
}

/// The value grammar of an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityFormat {
    /// Alphanumeric and `+` (`[0-9a-zA-Z+]+`).
    Label,
    /// Non-negative integer, leading zeros allowed (`[0-9]+`).
    Index,
}

/// One entity of the microscopy file rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityRule {
    /// Long name (`subject`).
    pub name: &'static str,
    /// Key used in file names (`sub`).
    pub key: &'static str,
    /// Value grammar.
    pub format: EntityFormat,
    /// Level for microscopy image files.
    pub micr: Level,
    /// Level for `photo` files of the micr datatype.
    pub photo: Level,
}

/// A condition selecting when a sidecar field rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The file is not a `photo`.
    NotPhoto,
    /// The file is a `photo`.
    Photo,
    /// The file name has a `chunk-<index>` entity.
    HasChunk,
    /// The sidecar holds `ChunkTransformationMatrix`.
    HasChunkTransformationMatrix,
}

/// A sidecar field and the level the specification gives it under some conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRule {
    /// JSON key.
    pub name: &'static str,
    /// Level when every condition holds.
    pub level: Level,
    /// Schema rule group the field comes from (e.g. `MicroscopyImageAcquisition`).
    pub group: &'static str,
    /// Conditions that must all hold for the rule to apply.
    pub when: &'static [Condition],
}

/// Looks up an entity rule by its file-name key (`sub`, `sample`, ...).
#[must_use]
pub fn entity_by_key(key: &str) -> Option<(usize, &'static EntityRule)> {
    generated::ENTITIES
        .iter()
        .enumerate()
        .find(|(_, e)| e.key == key)
}

fn value_schemas() -> &'static Value {
    static SCHEMAS: OnceLock<Value> = OnceLock::new();
    // The blob is generated from schema.json and checked by a unit test, so a parse failure
    // here cannot happen at run time; fall back to an empty object rather than panic anyway.
    SCHEMAS.get_or_init(|| {
        serde_json::from_str(generated::VALUE_SCHEMAS).unwrap_or(Value::Object(Default::default()))
    })
}

/// The value schema of a metadata field (sidecar or dataset_description key), if BIDS defines it.
#[must_use]
pub fn metadata_schema(field: &str) -> Option<&'static Value> {
    value_schemas().get("metadata")?.get(field)
}

/// The value schema of a tabular column (`sample_type`, `participant_id`, ...), if defined.
#[must_use]
pub fn column_schema(column: &str) -> Option<&'static Value> {
    value_schemas().get("columns")?.get(column)
}

/// Checks a JSON value against a value schema; returns a description of the first violation.
///
/// `what` names the value in messages (e.g. `PixelSize`).
pub fn check_value(schema: &Value, value: &Value, what: &str) -> Result<(), String> {
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let errors: Vec<String> = any
            .iter()
            .filter_map(|s| check_value(s, value, what).err())
            .collect();
        if errors.len() == any.len() {
            return Err(format!(
                "{what} matches none of the allowed forms: {}",
                errors.join("; or ")
            ));
        }
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let ok = match ty {
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            "null" => value.is_null(),
            _ => true,
        };
        if !ok {
            return Err(format!(
                "{what} must be of type {ty}, found {}",
                kind(value)
            ));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let shown: Vec<String> = options.iter().map(Value::to_string).collect();
        return Err(format!(
            "{what} is {value}, which is not one of {}",
            shown.join(", ")
        ));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(format!("{what} is {n}, below the minimum {min}"));
        }
        if let Some(min) = schema.get("exclusiveMinimum").and_then(Value::as_f64)
            && n <= min
        {
            return Err(format!("{what} is {n}; it must be greater than {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(format!("{what} is {n}, above the maximum {max}"));
        }
    }
    if let (Some(pattern), Some(s)) = (
        schema.get("pattern").and_then(Value::as_str),
        value.as_str(),
    ) && !matches_prefixed_label(pattern, s)
    {
        return Err(format!("{what} is {s:?}, which does not match {pattern}"));
    }
    if let Some(items) = value.as_array() {
        let len = items.len() as u64;
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && len < min
        {
            return Err(format!(
                "{what} has {len} items; at least {min} are required"
            ));
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && len > max
        {
            return Err(format!("{what} has {len} items; at most {max} are allowed"));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                check_value(item_schema, item, &format!("{what}[{i}]"))?;
            }
        }
    }
    if let Some(obj) = value.as_object() {
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for key in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(key) {
                    return Err(format!("{what} lacks the required key {key:?}"));
                }
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (key, sub) in props {
                if let Some(v) = obj.get(key) {
                    check_value(sub, v, &format!("{what}.{key}"))?;
                }
            }
        }
    }
    Ok(())
}

/// Matches the `^<prefix>-[0-9a-zA-Z+]+$` patterns the schema uses for ID columns. Patterns of
/// any other form are accepted without a check (none occur in the microscopy rules).
fn matches_prefixed_label(pattern: &str, s: &str) -> bool {
    let Some(prefix) = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix("-[0-9a-zA-Z+]+$"))
    else {
        return true;
    };
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(crate::name::is_label)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn value_schemas_parse_and_cover_microscopy_fields() {
        for f in generated::MICR_SIDECAR_FIELDS {
            assert!(
                metadata_schema(f.name).is_some(),
                "no schema for {}",
                f.name
            );
        }
        for (c, _) in generated::SAMPLES_COLUMNS {
            assert!(column_schema(c).is_some(), "no schema for column {c}");
        }
    }

    #[test]
    fn pixel_size_rules() {
        let s = metadata_schema("PixelSize").expect("PixelSize schema");
        assert!(check_value(s, &json!([0.5, 0.5]), "PixelSize").is_ok());
        assert!(check_value(s, &json!([0.5, 0.5, 2]), "PixelSize").is_ok());
        assert!(check_value(s, &json!([0.5]), "PixelSize").is_err());
        assert!(check_value(s, &json!([1, 2, 3, 4]), "PixelSize").is_err());
        assert!(check_value(s, &json!([-1, 2]), "PixelSize").is_err());
        assert!(check_value(s, &json!("1"), "PixelSize").is_err());
        let u = metadata_schema("PixelSizeUnits").expect("unit schema");
        assert!(check_value(u, &json!("um"), "PixelSizeUnits").is_ok());
        let err = check_value(u, &json!("cm"), "PixelSizeUnits").expect_err("cm");
        assert!(err.contains("\"um\""), "{err}");
    }

    #[test]
    fn chunk_matrix_any_of() {
        let s = metadata_schema("ChunkTransformationMatrix").expect("schema");
        assert!(check_value(s, &json!([[1, 0, 0], [0, 1, 0], [0, 0, 1]]), "m").is_ok());
        assert!(check_value(s, &json!([[1, 0], [0, 1]]), "m").is_err());
    }

    #[test]
    fn id_patterns() {
        let s = column_schema("participant_id").expect("schema");
        assert!(check_value(s, &json!("sub-01"), "participant_id").is_ok());
        assert!(check_value(s, &json!("01"), "participant_id").is_err());
        assert!(check_value(s, &json!("sub-0_1"), "participant_id").is_err());
    }
}
