//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The S3 endpoint, `None` to skip; panics when peers are required but missing.
pub fn s3_endpoint() -> Option<String> {
    strata_testkit::peer("STRATA_S3_ENDPOINT").map(|e| e.to_string_lossy().into_owned())
}

/// Creates a bucket with a plain HTTP `PUT /<bucket>` (moto accepts unsigned requests;
/// object_store cannot create buckets).
pub fn create_bucket(endpoint: &str, bucket: &str) -> TestResult {
    let hostport = endpoint
        .strip_prefix("http://")
        .ok_or("bucket creation needs an http:// endpoint")?
        .trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(hostport)?;
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp.lines().next().unwrap_or_default().to_owned();
    if !status.contains(" 200") {
        return Err(format!("creating bucket {bucket} at {endpoint}: {status}").into());
    }
    Ok(())
}

pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("strata-{name}-{}-{nanos}", std::process::id())
}
