//! Target `bids_text`: BIDS names, sidecars, the dataset description and TSV tables.

use std::path::Path;

use serde_json::{Map, Value};
use strata_bids::description::DatasetDescription;
use strata_bids::name::{Extension, Label, MicrName};
use strata_bids::sidecar::{self, MicroscopySidecar};
use strata_bids::table::{self, Rows, SampleRow, SampleType, Table};

/// Target `bids_text`: the first byte picks the parser (its value modulo 4, so the ASCII
/// digits `0`-`3` do), the rest is the text (invalid UTF-8 replaced):
///
/// - `0`: a file name and a path (`MicrName` from a string and [`MicrName::parse_path`]);
/// - `1`: a microscopy sidecar ([`MicroscopySidecar::from_json`], and the field checks on
///   any JSON object);
/// - `2`: `dataset_description.json` ([`DatasetDescription::from_json`]);
/// - `3`: a TSV table ([`Table::parse`], and [`table::apply`] of a `samples.tsv` row).
///
/// Besides crashes, it fails when a round trip does not hold: a parsed name printed (or its
/// path built) and parsed again is the same name; a parsed sidecar or description rendered
/// and parsed again is equal; a parsed table written and parsed again has the same columns
/// and rows; adding the same sample row twice changes the table once.
pub fn bids_text(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 4 {
        0 => names(&text),
        1 => sidecars(&text),
        2 => description(&text),
        _ => tables(&text),
    }
}

fn names(text: &str) {
    if let Ok(name) = text.parse::<MicrName>() {
        name_round_trip(&name);
    }
    if let Ok(name) = MicrName::parse_path(Path::new(text)) {
        name_round_trip(&name);
    }
}

fn name_round_trip(name: &MicrName) {
    let printed = name.to_string();
    match printed.parse::<MicrName>() {
        Ok(again) => assert_eq!(&again, name, "{printed:?} parses to another name"),
        Err(e) => panic!("the printed name {printed:?} does not parse: {e}"),
    }
    let path = name.relative_path();
    match MicrName::parse_path(&path) {
        Ok(again) => assert_eq!(&again, name, "{} parses to another name", path.display()),
        Err(e) => panic!("the name's path {} does not parse: {e}", path.display()),
    }
    let _ = name.entities();
    let _ = name.extension.is_directory();
    let _ = sidecar::missing_fields(name, &Map::new());
    let _ = sidecar::applicable_rules(name, &Map::new()).count();
    if let Ok(json) = Extension::new(".json", name.suffix) {
        let own = name.with_extension(json).to_string();
        assert!(
            sidecar::sidecar_applies(&own, name),
            "the name's own sidecar {own:?} does not apply to it"
        );
    }
}

fn sidecars(text: &str) {
    if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) {
        let _ = sidecar::check_fields(&obj);
        let _ = sidecar::merge(&[obj.clone(), obj]);
    }
    let Ok(parsed) = MicroscopySidecar::from_json(text) else {
        return;
    };
    let json = parsed
        .to_json()
        .unwrap_or_else(|e| panic!("a sidecar that parsed does not render: {e}"));
    match MicroscopySidecar::from_json(&json) {
        Ok(again) => assert_eq!(again, parsed, "the rendered sidecar parses differently"),
        Err(e) => panic!("the rendered sidecar does not parse: {e}\n{json}"),
    }
}

fn description(text: &str) {
    let Ok(parsed) = DatasetDescription::from_json(text) else {
        return;
    };
    let json = parsed
        .to_json()
        .unwrap_or_else(|e| panic!("a description that parsed does not render: {e}"));
    match DatasetDescription::from_json(&json) {
        Ok(again) => assert_eq!(again, parsed, "the rendered description parses differently"),
        Err(e) => panic!("the rendered description does not parse: {e}\n{json}"),
    }
}

fn tables(text: &str) {
    if let Ok(parsed) = Table::parse(text) {
        let tsv = parsed.to_tsv();
        match Table::parse(&tsv) {
            Ok(again) => {
                assert_eq!(
                    again.columns(),
                    parsed.columns(),
                    "columns differ after a write"
                );
                assert_eq!(again.rows(), parsed.rows(), "rows differ after a write");
            }
            Err(e) => panic!("a written table does not parse: {e}\n{tsv:?}"),
        }
        for c in parsed.columns() {
            let _ = parsed.values(c).count();
        }
    }
    let (Ok(subject), Ok(sample)) = (Label::new("sub", "F1"), Label::new("sample", "7")) else {
        return;
    };
    let row = [SampleRow {
        sample,
        subject,
        sample_type: SampleType::TISSUE,
        extra: vec![("fuzz".into(), "x".into())],
    }];
    if let Ok(once) = table::apply(Some(text), Rows::Samples(&row)) {
        match table::apply(Some(&once), Rows::Samples(&row)) {
            Ok(twice) => assert_eq!(twice, once, "adding the same row again changes the table"),
            Err(e) => panic!("a table written by apply does not take the row again: {e}"),
        }
    }
}
