//! Validated store keys.

use std::fmt;

use crate::error::{Error, Result};

/// Marker inside the hidden names of files being written (`.<name>.strata-tmp-...`). Keys may
/// not contain it, so a key never collides with an in-flight temporary object.
pub(crate) const TEMP_MARKER: &str = strata_fs::TEMP_MARKER;

/// A validated object key: relative, `/`-separated, no empty, `.` or `..` segments, no
/// leading or trailing `/`, no NUL or other control characters, no `\`.
///
/// The same key names the same object on every backend (a file under the root on POSIX, an
/// object under the prefix on S3, an entry in a zip archive).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreKey(String);

impl StoreKey {
    /// Validates `key`.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] naming the key and what is wrong with it.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        validate(&key)?;
        Ok(Self(key))
    }

    /// The key as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last segment (the object's file name).
    #[must_use]
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The number of segments (1 for a top-level key).
    #[must_use]
    pub fn depth(&self) -> usize {
        self.segments().count()
    }

    /// Whether this key lies under `prefix` (segment-wise: `a/b` is under `a`, `ab` is not).
    /// `None` matches every key.
    #[must_use]
    pub fn is_under(&self, prefix: Option<&StoreKey>) -> bool {
        match prefix {
            None => true,
            Some(p) => self
                .0
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.starts_with('/')),
        }
    }

    /// The part of this key after `prefix/` (`None` when the key is not under `prefix`;
    /// the whole key when `prefix` is `None`).
    #[must_use]
    pub fn strip(&self, prefix: Option<&StoreKey>) -> Option<&str> {
        match prefix {
            None => Some(&self.0),
            Some(p) => self.0.strip_prefix(p.as_str())?.strip_prefix('/'),
        }
    }

    /// `self/child`, validated.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] when `child` is not a valid key.
    pub fn join(&self, child: &str) -> Result<Self> {
        Self::new(format!("{}/{child}", self.0))
    }
}

fn validate(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid_key(key, "the key is empty"));
    }
    if key.starts_with('/') {
        return Err(Error::invalid_key(key, "absolute keys are not allowed"));
    }
    if key.len() > 4096 {
        return Err(Error::invalid_key(key, "longer than 4096 bytes"));
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(Error::invalid_key(
            key,
            format!("contains the control character {:?}", c),
        ));
    }
    if key.contains('\\') {
        return Err(Error::invalid_key(
            key,
            "contains '\\'; separate segments with '/'",
        ));
    }
    for segment in key.split('/') {
        match segment {
            "" => {
                return Err(Error::invalid_key(
                    key,
                    "has an empty segment ('//' or a trailing '/')",
                ));
            }
            "." | ".." => {
                return Err(Error::invalid_key(
                    key,
                    format!("has a '{segment}' segment"),
                ));
            }
            s if s.contains(TEMP_MARKER) => {
                return Err(Error::invalid_key(
                    key,
                    format!("contains {TEMP_MARKER:?}, reserved for temporary files"),
                ));
            }
            s if s.len() > 255 => {
                return Err(Error::invalid_key(
                    key,
                    "has a segment longer than 255 bytes",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for StoreKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for StoreKey {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self> {
        Self::new(value)
    }
}

impl TryFrom<String> for StoreKey {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl std::str::FromStr for StoreKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_keys() {
        for k in [
            "zarr.json",
            "a/b/c",
            "sub-01/micr/x_BF.ome.zarr/0/c/0/0/0",
            ".zattrs",
            "a/.zgroup",
        ] {
            assert_eq!(
                StoreKey::new(k).map(|k| k.to_string()).ok().as_deref(),
                Some(k)
            );
        }
    }

    #[test]
    fn rejects_bad_keys_with_reason() {
        for (k, needle) in [
            ("", "empty"),
            ("/abs", "absolute"),
            ("a//b", "empty segment"),
            ("a/", "empty segment"),
            ("../x", "'..'"),
            ("a/../../x", "'..'"),
            ("./x", "'.'"),
            ("a\0b", "control"),
            ("a\\b", "'\\'"),
            ("a/.x.strata-tmp-1", "reserved"),
        ] {
            let err = StoreKey::new(k)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(needle), "{k:?}: {err}");
            assert!(err.contains("invalid store key"), "{k:?}: {err}");
        }
    }

    #[test]
    fn prefix_is_segment_wise() -> Result<()> {
        let k = StoreKey::new("ab/c")?;
        assert!(k.is_under(Some(&StoreKey::new("ab")?)));
        assert!(!k.is_under(Some(&StoreKey::new("a")?)));
        assert!(!k.is_under(Some(&StoreKey::new("ab/c")?)));
        assert!(k.is_under(None));
        assert_eq!(k.name(), "c");
        assert_eq!(k.depth(), 2);
        Ok(())
    }
}
