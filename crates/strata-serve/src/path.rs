//! Request paths: decoded once, checked segment by segment, never outside the dataset.

use percent_encoding::percent_decode_str;

/// A request path that names something inside the dataset: decoded, split into segments,
/// each a plain visible name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetPath {
    segments: Vec<String>,
    folder: bool,
}

/// Why a request path was refused. Every case is answered 404 (the dataset has nothing
/// there), except [`PathError::Malformed`], answered 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not an absolute path, not UTF-8 after decoding, or a broken percent escape.
    #[error("malformed request path: {0}")]
    Malformed(&'static str),
    /// A segment that could lead outside the dataset or is no plain name (`..`, `.`, `\`,
    /// NUL or another control character, an empty segment inside the path).
    #[error("the path leaves the dataset or is not a plain name: {0}")]
    Outside(&'static str),
    /// A hidden entry (a segment starting with `.`: `.git`, `.datalad`, temporary and lock
    /// files). Never served.
    #[error("hidden entries are not served")]
    Hidden,
}

impl DatasetPath {
    /// Parses the path of a request target (without its query): `/a/b/c` or `/a/b/` (a
    /// folder); `/` is the dataset's root folder.
    ///
    /// Percent escapes are decoded exactly once, so `%2e%2e` is `..` (refused) and
    /// `%252e%252e` is the literal name `%2e%2e` (looked up as such, found nowhere).
    ///
    /// # Errors
    /// [`PathError`] saying what is wrong.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(PathError::Malformed("the path must start with '/'"));
        };
        if rest.is_empty() {
            return Ok(Self {
                segments: Vec::new(),
                folder: true,
            });
        }
        let folder = rest.ends_with('/');
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let mut segments = Vec::new();
        for raw_segment in rest.split('/') {
            if raw_segment.is_empty() {
                return Err(PathError::Outside("empty segment ('//')"));
            }
            if !valid_escapes(raw_segment) {
                return Err(PathError::Malformed("broken percent escape"));
            }
            let segment = percent_decode_str(raw_segment)
                .decode_utf8()
                .map_err(|_| PathError::Malformed("not UTF-8 after percent-decoding"))?;
            check_segment(&segment)?;
            segments.push(segment.into_owned());
        }
        Ok(Self { segments, folder })
    }

    /// The decoded segments (empty for the root).
    #[must_use]
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether the path ended in `/` (or is the root): the client asks for a folder.
    #[must_use]
    pub fn is_folder(&self) -> bool {
        self.folder
    }

    /// The segments joined by `/` (empty for the root).
    #[must_use]
    pub fn key(&self) -> String {
        self.segments.join("/")
    }
}

/// Every `%` is followed by two hex digits.
fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                || !b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

fn check_segment(s: &str) -> Result<(), PathError> {
    if s.is_empty() {
        return Err(PathError::Outside("empty segment"));
    }
    if s == "." || s == ".." {
        return Err(PathError::Outside("'.' or '..' segment"));
    }
    if s.contains('/') {
        return Err(PathError::Outside("encoded '/' inside a segment"));
    }
    if s.contains('\\') {
        return Err(PathError::Outside("backslash"));
    }
    if s.chars().any(char::is_control) {
        return Err(PathError::Outside("NUL or control character"));
    }
    if s.starts_with('.') {
        return Err(PathError::Hidden);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths() {
        let p = DatasetPath::parse("/sub-01/micr/x.ome.zarr/zarr.json").expect("valid in the test");
        assert_eq!(p.segments(), ["sub-01", "micr", "x.ome.zarr", "zarr.json"]);
        assert!(!p.is_folder());
        let p = DatasetPath::parse("/sub-01/micr/").expect("valid in the test");
        assert!(p.is_folder());
        assert_eq!(p.key(), "sub-01/micr");
        let root = DatasetPath::parse("/").expect("valid in the test");
        assert!(root.segments().is_empty() && root.is_folder());
        assert_eq!(
            DatasetPath::parse("/a%20b")
                .expect("valid in the test")
                .segments(),
            ["a b".to_owned()]
        );
    }

    #[test]
    fn hostile_paths() {
        for (raw, want) in [
            ("/..", PathError::Outside("'.' or '..' segment")),
            ("/a/../b", PathError::Outside("'.' or '..' segment")),
            (
                "/%2e%2e/etc/passwd",
                PathError::Outside("'.' or '..' segment"),
            ),
            ("/%2E%2E/x", PathError::Outside("'.' or '..' segment")),
            ("/a/%2e/b", PathError::Outside("'.' or '..' segment")),
            (
                "/a%2f..%2fb",
                PathError::Outside("encoded '/' inside a segment"),
            ),
            ("/a\\..\\b", PathError::Outside("backslash")),
            ("/a%5c..", PathError::Outside("backslash")),
            ("/a%00b", PathError::Outside("NUL or control character")),
            ("//etc/passwd", PathError::Outside("empty segment ('//')")),
            ("/a//b", PathError::Outside("empty segment ('//')")),
            ("/.git/config", PathError::Hidden),
            ("/sub-01/.datalad/config", PathError::Hidden),
            ("/x/.x.json.strata-tmp-1", PathError::Hidden),
            ("/%2egit/config", PathError::Hidden),
            (
                "relative",
                PathError::Malformed("the path must start with '/'"),
            ),
            ("/a%zz", PathError::Malformed("broken percent escape")),
            ("/a%2", PathError::Malformed("broken percent escape")),
            (
                "/%ff%fe",
                PathError::Malformed("not UTF-8 after percent-decoding"),
            ),
        ] {
            assert_eq!(DatasetPath::parse(raw), Err(want), "{raw}");
        }
        // Double-encoded dots decode once into a literal name, not into "..".
        assert_eq!(
            DatasetPath::parse("/%252e%252e/x")
                .expect("valid in the test")
                .segments(),
            ["%2e%2e", "x"]
        );
    }

    proptest::proptest! {
        #[test]
        fn accepted_paths_stay_inside(raw in "/[a-zA-Z0-9%./\\\\_-]{0,40}") {
            if let Ok(p) = DatasetPath::parse(&raw) {
                for s in p.segments() {
                    proptest::prop_assert!(!s.is_empty() && s != ".." && s != ".");
                    proptest::prop_assert!(!s.contains('/') && !s.contains('\\'));
                    proptest::prop_assert!(!s.starts_with('.'));
                }
            }
        }
    }
}
