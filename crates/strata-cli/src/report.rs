//! Printing validation reports for people and for scripts.

use std::collections::BTreeMap;
use strata_bids::validate::{Issue, Report, Severity};

/// Prints a report: JSON on stdout, or text grouped for reading.
pub(crate) fn print(report: &Report, json: bool, verbose: bool) {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(s) => outln!("{s}"),
            Err(e) => eprintln!("strata: cannot render the report as JSON: {e}"),
        }
        return;
    }
    let line = |i: &Issue| {
        let sev = match i.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let location = if i.location.is_empty() {
            "/"
        } else {
            &i.location
        };
        outln!("{sev:<7} {:<32} {location}\n        {}", i.code, i.message);
    };
    let mut grouped: BTreeMap<&str, Vec<&Issue>> = BTreeMap::new();
    for i in &report.issues {
        if i.severity == Severity::Error || verbose {
            line(i);
        } else {
            grouped.entry(&i.code).or_default().push(i);
        }
    }
    for (code, list) in grouped {
        let first = list[0];
        outln!(
            "warning {code:<32} {} time(s), e.g. {}\n        {} (--verbose lists all)",
            list.len(),
            if first.location.is_empty() {
                "/"
            } else {
                &first.location
            },
            first.message
        );
    }
    let s = &report.summary;
    outln!(
        "{} files ({} bytes), {} subject(s), {} session(s), {} sample(s): {} error(s), {} warning(s)",
        s.files,
        s.bytes,
        s.subjects.len(),
        s.sessions.len(),
        s.samples,
        s.errors,
        s.warnings
    );
    if s.archives > 0 {
        outln!(
            "{} .ozx image(s) checked as the .ome.zarr folders `strata serve` presents them as (the official validator does not know .ozx)",
            s.archives
        );
    }
    if let Some(c) = &report.cache {
        if let Some(why) = &c.discarded {
            outln!("cache {} {why}; rebuilt", c.path.display());
        }
        outln!(
            "cache {}: {} image(s) unchanged since the last run, {} checked",
            c.path.display(),
            c.reused,
            c.checked
        );
    }
    outln!(
        "{}",
        if report.has_errors() {
            "not valid: fix the errors above"
        } else {
            "valid BIDS microscopy dataset"
        }
    );
}
