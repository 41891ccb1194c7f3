//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The S3 endpoint, `None` to skip; panics when peers are required but missing.
pub fn s3_endpoint() -> Option<String> {
    strata_testkit::peer("STRATA_S3_ENDPOINT").map(|e| e.to_string_lossy().into_owned())
}

/// Creates a bucket on the test server ([`strata_testkit::create_bucket`]).
pub fn create_bucket(endpoint: &str, bucket: &str) -> TestResult {
    strata_testkit::create_bucket(endpoint, bucket);
    Ok(())
}

pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("strata-{name}-{}-{nanos}", std::process::id())
}
