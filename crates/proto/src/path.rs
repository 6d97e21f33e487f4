//! Remote paths: the only shape of name the hub will store a file under.

use std::fmt;

/// Longest remote path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

/// Longest single path segment, in bytes (the usual file system limit).
pub const MAX_SEGMENT_LEN: usize = 255;

/// A relative, `/`-separated path that cannot escape the folder it is joined to.
///
/// Rules: not empty; at most [`MAX_PATH_LEN`] bytes; no leading `/`; no `\`; no empty, `.` or `..`
/// segment; no NUL or other control character; no `:` (Windows drive letters and streams);
/// each segment at most [`MAX_SEGMENT_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RemotePath(String);

/// Why a remote path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty.
    #[error("path is empty")]
    Empty,
    /// The path is too long.
    #[error("path is {0} bytes long; the limit is {MAX_PATH_LEN}")]
    TooLong(usize),
    /// A segment is too long.
    #[error("a path segment is {0} bytes long; the limit is {MAX_SEGMENT_LEN}")]
    SegmentTooLong(usize),
    /// The path starts with `/`.
    #[error("path must be relative, not start with '/'")]
    Absolute,
    /// The path contains `\`.
    #[error("path contains a backslash; use '/' to separate folders")]
    Backslash,
    /// The path contains `:`.
    #[error("path contains ':' (drive letters and streams are not allowed)")]
    Colon,
    /// The path contains a NUL or control character.
    #[error("path contains a control character")]
    Control,
    /// A segment is empty (`a//b`, or a trailing `/`).
    #[error("path has an empty segment")]
    EmptySegment,
    /// A segment is `.` or `..`.
    #[error("path has a '.' or '..' segment")]
    DotSegment,
}

impl RemotePath {
    /// Checks `s` against the rules above.
    ///
    /// # Errors
    /// The first rule `s` breaks, as a [`PathError`].
    pub fn parse(s: &str) -> Result<RemotePath, PathError> {
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        if s.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong(s.len()));
        }
        if s.starts_with('/') {
            return Err(PathError::Absolute);
        }
        if s.contains('\\') {
            return Err(PathError::Backslash);
        }
        if s.contains(':') {
            return Err(PathError::Colon);
        }
        if s.chars().any(char::is_control) {
            return Err(PathError::Control);
        }
        for seg in s.split('/') {
            match seg {
                "" => return Err(PathError::EmptySegment),
                "." | ".." => return Err(PathError::DotSegment),
                _ if seg.len() > MAX_SEGMENT_LEN => {
                    return Err(PathError::SegmentTooLong(seg.len()))
                }
                _ => {}
            }
        }
        Ok(RemotePath(s.to_owned()))
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The folder part (`a/b` of `a/b/c.jpg`), if any.
    pub fn parent(&self) -> Option<&str> {
        self.0.rsplit_once('/').map(|(p, _)| p)
    }
}

impl fmt::Display for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RemotePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for ok in [
            "a.jpg",
            "photos/2024/img 001.jpg",
            "données/été.png",
            "写真/猫.jpg",
            ".hidden",
            "a..b",
            "...",
        ] {
            assert_eq!(RemotePath::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_every_escape() {
        let cases: &[(&str, PathError)] = &[
            ("", PathError::Empty),
            ("/etc/passwd", PathError::Absolute),
            ("../x", PathError::DotSegment),
            ("a/../../x", PathError::DotSegment),
            ("a/./b", PathError::DotSegment),
            ("..", PathError::DotSegment),
            ("a//b", PathError::EmptySegment),
            ("a/", PathError::EmptySegment),
            ("a\\b", PathError::Backslash),
            ("..\\..\\x", PathError::Backslash),
            ("C:/x", PathError::Colon),
            ("c:x", PathError::Colon),
            ("a\0b", PathError::Control),
            ("a\nb", PathError::Control),
            ("a\u{7f}b", PathError::Control),
        ];
        for (s, want) in cases {
            assert_eq!(RemotePath::parse(s).unwrap_err(), *want, "{s:?}");
        }
        assert_eq!(
            RemotePath::parse(&"a".repeat(MAX_PATH_LEN + 1)).unwrap_err(),
            PathError::TooLong(MAX_PATH_LEN + 1)
        );
        assert_eq!(
            RemotePath::parse(&"a".repeat(256)).unwrap_err(),
            PathError::SegmentTooLong(256)
        );
    }

    #[test]
    fn parent_of_nested_and_flat() {
        assert_eq!(RemotePath::parse("a/b/c").unwrap().parent(), Some("a/b"));
        assert_eq!(RemotePath::parse("c").unwrap().parent(), None);
    }
}
