//! The parts of HTTP semantics (RFC 9110) a range-reading client relies on: `Range`,
//! `ETag` / `Last-Modified` validators and the conditional headers, as pure functions of
//! the request headers and the object's head.
//!
//! Written here rather than taken from a library: the crates that implement them
//! (tower-http's `ServeDir`) are bound to files on disk, while these answer for any store.

use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, RANGE};
use strata_store::ObjectHead;

/// One byte range as the client wrote it (`bytes=a-b`, `bytes=a-`, `bytes=-n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `a-b`: bytes `a..=b`.
    FromTo(u64, u64),
    /// `a-`: from `a` to the end.
    From(u64),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// The bytes of an object of `size` this range selects (`end` exclusive, clipped to the
    /// object), or `None` when none of it lies inside (answered with 416).
    #[must_use]
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            Self::FromTo(a, b) if a < size => Some(a..b.saturating_add(1).min(size)),
            Self::From(a) if a < size => Some(a..size),
            Self::Suffix(n) if n > 0 && size > 0 => Some(size - n.min(size)..size),
            _ => None,
        }
    }
}

/// Parses a `Range` header. `None` when the header is to be ignored (RFC 9110 §14.2: a
/// syntax error, another unit, or several ranges: this server answers those with the
/// whole object).
#[must_use]
pub fn parse_range(value: &str) -> Option<RangeSpec> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => Some(RangeSpec::Suffix(num(b)?)),
        (false, true) => Some(RangeSpec::From(num(a)?)),
        (false, false) => {
            let (a, b) = (num(a)?, num(b)?);
            (a <= b).then_some(RangeSpec::FromTo(a, b))
        }
        (true, true) => None,
    }
}

/// The strong entity tag of an object (`"<version>"`), where its backend has a version.
#[must_use]
pub fn etag(head: &ObjectHead) -> Option<String> {
    head.version.as_ref().map(|v| {
        let clean: String = v
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '"')
            .collect();
        format!("\"{clean}\"")
    })
}

/// The object's modification time, truncated to whole seconds (HTTP dates have no more).
fn modified_secs(head: &ObjectHead) -> Option<SystemTime> {
    let t = head.modified?;
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// The `Last-Modified` value of an object.
#[must_use]
pub fn last_modified(head: &ObjectHead) -> Option<String> {
    modified_secs(head).map(httpdate::fmt_http_date)
}

/// What to answer a GET or HEAD for an object, from its head and the request headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 304 Not Modified.
    NotModified,
    /// 200 with the whole object.
    Whole,
    /// 206 with these bytes.
    Partial(Range<u64>),
    /// 416: the range lies outside the object.
    Unsatisfiable,
}

/// Evaluates the preconditions and the range (RFC 9110 §13.2.2 order for GET and HEAD:
/// `If-None-Match`, else `If-Modified-Since`; then `Range`, honoured only when `If-Range`
/// is absent or matches).
#[must_use]
pub fn answer(headers: &HeaderMap, head: &ObjectHead) -> Answer {
    let tag = etag(head);
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(inm) = text(IF_NONE_MATCH) {
        if none_match_hits(inm, tag.as_deref()) {
            return Answer::NotModified;
        }
    } else if let (Some(ims), Some(modified)) = (text(IF_MODIFIED_SINCE), modified_secs(head))
        && let Ok(since) = httpdate::parse_http_date(ims)
        && modified <= since
    {
        return Answer::NotModified;
    }
    let Some(spec) = text(RANGE).and_then(parse_range) else {
        return Answer::Whole;
    };
    if let Some(if_range) = text(IF_RANGE)
        && !if_range_holds(if_range.trim(), tag.as_deref(), head)
    {
        return Answer::Whole;
    }
    match spec.resolve(head.size) {
        Some(r) => Answer::Partial(r),
        None => Answer::Unsatisfiable,
    }
}

/// `If-None-Match` (weak comparison): `*` or any listed tag equal to ours.
fn none_match_hits(value: &str, tag: Option<&str>) -> bool {
    let Some(tag) = tag else {
        return value.trim() == "*";
    };
    value.split(',').map(str::trim).any(|t| {
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag.strip_prefix("W/").unwrap_or(tag)
    })
}

/// `If-Range`: a strong tag equal to ours, or exactly our `Last-Modified` date.
fn if_range_holds(value: &str, tag: Option<&str>, head: &ObjectHead) -> bool {
    if value.starts_with('"') {
        return tag.is_some_and(|t| t == value);
    }
    if value.starts_with("W/") {
        return false;
    }
    match (httpdate::parse_http_date(value), modified_secs(head)) {
        (Ok(date), Some(modified)) => date == modified,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn head() -> ObjectHead {
        ObjectHead::sized(1000)
            .with_modified(Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)))
            .with_version(Some("abc-1".into()))
    }

    fn with(pairs: &[(http::header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                k.clone(),
                HeaderValue::from_str(v).expect("valid in the test"),
            );
        }
        h
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99"), Some(RangeSpec::FromTo(0, 99)));
        assert_eq!(parse_range("bytes=100-"), Some(RangeSpec::From(100)));
        assert_eq!(parse_range("bytes=-16"), Some(RangeSpec::Suffix(16)));
        for ignored in [
            "bytes=5-1",
            "bytes=0-1,4-5",
            "items=0-1",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(parse_range(ignored), None, "{ignored}");
        }
        assert_eq!(RangeSpec::FromTo(0, 99).resolve(1000), Some(0..100));
        assert_eq!(RangeSpec::FromTo(990, 5000).resolve(1000), Some(990..1000));
        assert_eq!(RangeSpec::FromTo(1000, 1001).resolve(1000), None);
        assert_eq!(RangeSpec::From(999).resolve(1000), Some(999..1000));
        assert_eq!(RangeSpec::Suffix(16).resolve(1000), Some(984..1000));
        assert_eq!(RangeSpec::Suffix(5000).resolve(1000), Some(0..1000));
        assert_eq!(RangeSpec::Suffix(0).resolve(1000), None);
        assert_eq!(RangeSpec::Suffix(1).resolve(0), None);
    }

    #[test]
    fn conditionals() {
        let h = head();
        let tag = etag(&h).expect("valid in the test");
        let date = last_modified(&h).expect("valid in the test");
        assert_eq!(answer(&HeaderMap::new(), &h), Answer::Whole);
        assert_eq!(
            answer(&with(&[(IF_NONE_MATCH, &tag)]), &h),
            Answer::NotModified
        );
        assert_eq!(
            answer(&with(&[(IF_NONE_MATCH, &format!("\"x\", W/{tag}"))]), &h),
            Answer::NotModified
        );
        assert_eq!(
            answer(&with(&[(IF_NONE_MATCH, "\"other\"")]), &h),
            Answer::Whole
        );
        assert_eq!(
            answer(&with(&[(IF_MODIFIED_SINCE, &date)]), &h),
            Answer::NotModified
        );
        assert_eq!(
            answer(
                &with(&[(IF_MODIFIED_SINCE, "Sat, 01 Jan 2000 00:00:00 GMT")]),
                &h
            ),
            Answer::Whole
        );
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            answer(
                &with(&[(IF_NONE_MATCH, "\"other\""), (IF_MODIFIED_SINCE, &date)]),
                &h
            ),
            Answer::Whole
        );
        let range = (RANGE, "bytes=-10");
        assert_eq!(
            answer(&with(std::slice::from_ref(&range)), &h),
            Answer::Partial(990..1000)
        );
        assert_eq!(
            answer(&with(&[range.clone(), (IF_RANGE, &tag)]), &h),
            Answer::Partial(990..1000)
        );
        assert_eq!(
            answer(&with(&[range.clone(), (IF_RANGE, &date)]), &h),
            Answer::Partial(990..1000)
        );
        assert_eq!(
            answer(&with(&[range.clone(), (IF_RANGE, "\"stale\"")]), &h),
            Answer::Whole
        );
        assert_eq!(
            answer(&with(&[(RANGE, "bytes=5000-")]), &h),
            Answer::Unsatisfiable
        );
    }
}
