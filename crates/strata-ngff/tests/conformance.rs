//! Runs every case of the OME-NGFF conformance suites and every example file
//! in `shared/conformance/ngff/{0.4,0.5}` (read in place, next to the
//! repository) and fails listing every disagreement.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use strata_ngff::{
    GroupKind, ValidateOptions, Version, read_zarr_json, read_zattrs, upgrade_zattrs, validate,
    validate_zarr_json,
};

fn root() -> PathBuf {
    let root = strata_testkit::conformance("ngff");
    assert!(
        root.join("0.4").is_dir() && root.join("0.5").is_dir(),
        "OME-NGFF conformance data not found at {}: it must sit next to the repository (shared/conformance/ngff/{{0.4,0.5}})",
        root.display()
    );
    root
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Removes `//` and `/* */` comments outside strings. The specification's
/// example files carry explanatory comments, which JSON does not allow.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut prev = '\0';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Kind and strictness for a schema path such as `schemas/strict_image.schema`.
fn schema_options(schema: &str, version: Version) -> ValidateOptions {
    let file = schema.rsplit('/').next().unwrap_or(schema);
    let stem = file.trim_end_matches(".schema");
    let (strict, kind) = match stem.strip_prefix("strict_") {
        Some(rest) => (true, rest),
        None => (false, stem),
    };
    let kind = match kind {
        "image" => GroupKind::Image,
        "label" => GroupKind::Label,
        "plate" => GroupKind::Plate,
        "well" => GroupKind::Well,
        "bf2raw" => GroupKind::Bioformats2Raw,
        "ome" => GroupKind::Series,
        other => panic!("unknown schema {other:?} ({schema})"),
    };
    ValidateOptions::new()
        .version(version)
        .kind(kind)
        .strict(strict)
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.map(|e| e.path()).unwrap_or_default())
        .collect();
    v.sort();
    v
}

fn version_dirs() -> [(Version, PathBuf); 2] {
    let root = root();
    [
        (Version::V0_4, root.join("0.4")),
        (Version::V0_5, root.join("0.5")),
    ]
}

/// Compares numbers by value (`1` equals `1.0`) and objects regardless of key order.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn every_suite_case_agrees() {
    let mut disagreements = String::new();
    let mut cases = 0usize;
    let mut suites = 0usize;
    for (version, dir) in version_dirs() {
        for path in sorted_entries(&dir.join("tests")) {
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            suites += 1;
            let suite: Value = serde_json::from_str(&read(&path))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let schema = suite["schema"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no schema id", path.display()));
            let opts = schema_options(schema, version);
            let tests = suite["tests"]
                .as_array()
                .unwrap_or_else(|| panic!("{}: no tests", path.display()));
            for (i, case) in tests.iter().enumerate() {
                cases += 1;
                let expected = case["valid"]
                    .as_bool()
                    .unwrap_or_else(|| panic!("{} case {i}: no boolean `valid`", path.display()));
                let report = validate(&case["data"], &opts);
                if report.is_valid() != expected {
                    let _ = writeln!(
                        disagreements,
                        "{} case {i} ({}): expected valid={expected}, got valid={}\n  data: {}\n  report:\n    {}",
                        path.display(),
                        case["description"].as_str().unwrap_or(""),
                        report.is_valid(),
                        case["data"],
                        report.to_string().replace('\n', "\n    ")
                    );
                }
                // Valid documents must also convert to the typed model.
                if expected && report.is_valid() {
                    let typed = match version {
                        Version::V0_4 => read_zattrs(&case["data"]).map(|_| ()),
                        Version::V0_5 => {
                            let doc = serde_json::json!({"zarr_format": 3, "node_type": "group", "attributes": case["data"].clone()});
                            read_zarr_json(&doc).map(|_| ())
                        }
                    };
                    if let Err(e) = typed {
                        let _ = writeln!(
                            disagreements,
                            "{} case {i}: valid but not readable: {e}",
                            path.display()
                        );
                    }
                }
            }
        }
    }
    assert!(suites >= 16, "expected 16 suites, found {suites}");
    assert!(
        disagreements.is_empty(),
        "disagreements with the conformance suites ({cases} cases in {suites} suites):\n{disagreements}"
    );
    eprintln!("{cases} cases in {suites} suites: all agree");
}

#[test]
fn every_example_is_accepted_read_round_tripped_and_upgraded() {
    let mut problems = String::new();
    let mut files = 0usize;
    for (version, dir) in version_dirs() {
        for group in sorted_entries(&dir.join("examples")) {
            if !group.is_dir() {
                continue;
            }
            let config: Value = serde_json::from_str(&read(&group.join(".config.json")))
                .unwrap_or_else(|e| panic!("{}: {e}", group.display()));
            let schema = config["schema"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no schema", group.display()));
            let opts = schema_options(schema, version);
            for path in sorted_entries(&group) {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.starts_with('.') || !name.ends_with(".json") {
                    continue;
                }
                files += 1;
                let doc: Value = match serde_json::from_str(&strip_comments(&read(&path))) {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = writeln!(
                            problems,
                            "{}: not JSON after removing comments: {e}",
                            path.display()
                        );
                        continue;
                    }
                };
                // 0.5 examples are whole zarr.json documents; 0.4 ones are .zattrs.
                let report = match version {
                    Version::V0_4 => validate(&doc, &opts),
                    Version::V0_5 => validate_zarr_json(&doc, &opts),
                };
                if !report.is_valid() {
                    let _ = writeln!(
                        problems,
                        "{}: rejected:\n  {}",
                        path.display(),
                        report.to_string().replace('\n', "\n  ")
                    );
                    continue;
                }
                let round_trip = match version {
                    Version::V0_4 => {
                        read_zattrs(&doc).map(|m| serde_json::to_value(m).unwrap_or_default())
                    }
                    Version::V0_5 => read_zarr_json(&doc).map(|g| g.to_value()),
                };
                match round_trip {
                    Ok(back) if same(&back, &doc) => {}
                    Ok(back) => {
                        let _ = writeln!(
                            problems,
                            "{}: round trip changed the document:\n  before {doc}\n  after  {back}",
                            path.display()
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(problems, "{}: not readable: {e}", path.display());
                    }
                }
                if version == Version::V0_4
                    && let Err(e) = upgrade_zattrs(&doc)
                {
                    let _ = writeln!(problems, "{}: upgrade to 0.5 failed: {e}", path.display());
                }
            }
        }
    }
    assert!(
        files >= 20,
        "expected at least 20 example files, found {files}"
    );
    assert!(problems.is_empty(), "example problems:\n{problems}");
    eprintln!("{files} example files accepted");
}

#[test]
fn comment_stripping_keeps_strings() {
    let text = "{\"a\": \"http://x\", // note\n \"b\": /* c */ 1}";
    let v: Value = serde_json::from_str(&strip_comments(text)).unwrap_or_default();
    assert_eq!(v["a"], "http://x");
    assert_eq!(v["b"], 1);
}
