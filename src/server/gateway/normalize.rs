//! Path normalisation before rules are matched: what was checked is what the upstream
//! serves.
//!
//! Percent-encoded unreserved characters are decoded (RFC 3986 §6.2.2.2) and other
//! escapes upper-cased, with `%2F` kept encoded inside its segment; repeated `/` are
//! collapsed; `.` and `..` segments are resolved after decoding, so `%2e%2e` climbs
//! like `..`. A path that climbs above `/`, a malformed escape, an encoded NUL or a
//! backslash is refused: the request gets `400` and goes nowhere.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// `..` above the root.
    #[error("the path climbs above /")]
    AboveRoot,
    /// Not a path keygate can decide on unambiguously.
    #[error("the path has a malformed escape, an encoded NUL or a backslash")]
    Malformed,
}

/// What stays percent-encoded in a segment: everything but the unreserved characters,
/// the sub-delimiters, `:` and `@` (RFC 3986 `pchar`); `%` itself included.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The normalised form of `path` (no query).
pub fn normalize(path: &str) -> Result<String, PathError> {
    if already_normal(path) {
        return Ok(path.to_owned());
    }
    resolve(path)
}

/// The bytes a normal path may hold as they are: unreserved, sub-delimiters, `:`, `@`
/// and `/`.
const KEPT: [bool; 256] = {
    let mut kept = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        kept[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            );
        b += 1;
    }
    kept
};

/// Whether `path` is its own normal form: only characters that stay as they are, no
/// escape, no empty segment but a trailing one, no `.` or `..` segment. Most request
/// paths are, and are then spared the segment-by-segment work.
fn already_normal(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    // One pass: each segment's length and dot count, checked where the segment ends.
    let dot_segment = |len: usize, dots: usize| len > 0 && len == dots && dots <= 2;
    let (mut len, mut dots) = (0usize, 0usize);
    for &b in &bytes[1..] {
        if !KEPT[usize::from(b)] {
            return false;
        }
        if b == b'/' {
            if len == 0 || dot_segment(len, dots) {
                return false;
            }
            (len, dots) = (0, 0);
        } else {
            len += 1;
            dots += usize::from(b == b'.');
        }
    }
    !dot_segment(len, dots)
}

/// Normalises segment by segment.
fn resolve(path: &str) -> Result<String, PathError> {
    if !path.starts_with('/') || path.contains('\\') {
        return Err(PathError::Malformed);
    }
    let mut out: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    for raw in path.split('/').skip(1) {
        check_escapes(raw)?;
        let bytes: Vec<u8> = percent_decode_str(raw).collect();
        if bytes.contains(&0) {
            return Err(PathError::Malformed);
        }
        let segment = match String::from_utf8(bytes) {
            Ok(text) => utf8_percent_encode(&text, SEGMENT).to_string(),
            // Not UTF-8 once decoded: keep the escapes as sent, upper-cased.
            Err(_) => upper_escapes(raw),
        };
        trailing_slash = matches!(segment.as_str(), "" | "." | "..");
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            _ => out.push(segment),
        }
    }
    let mut normalized = format!("/{}", out.join("/"));
    if trailing_slash && !out.is_empty() {
        normalized.push('/');
    }
    Ok(normalized)
}

/// Every `%` starts a two-digit hexadecimal escape.
fn check_escapes(segment: &str) -> Result<(), PathError> {
    let bytes = segment.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathError::Malformed)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(PathError::Malformed);
            }
        }
    }
    Ok(())
}

fn upper_escapes(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut rest = segment;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3).unwrap_or(&rest[i..]);
        out.push_str(&escape.to_ascii_uppercase());
        rest = rest.get(i + 3..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_slashes_and_escapes() {
        for (raw, normalized) in [
            ("/", "/"),
            ("/api/public/../admin", "/api/admin"),
            ("/api/public/%2e%2e/admin", "/api/admin"),
            ("/api/public/%2E%2e/admin", "/api/admin"),
            ("/api/public/.%2e/admin", "/api/admin"),
            ("//api/admin", "/api/admin"),
            ("/api//admin///x", "/api/admin/x"),
            ("/a/./b/.", "/a/b/"),
            ("/a/b/", "/a/b/"),
            ("/api/public/..%2fadmin", "/api/public/..%2Fadmin"),
            ("/a%2Fb/../c", "/c"),
            ("/%7Euser/%41%62", "/~user/Ab"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/sp%20ace", "/sp%20ace"),
            ("/raw space", "/raw%20space"),
            ("/%ff%fe", "/%FF%FE"),
            ("/a:b@c!$&'()*+,;=", "/a:b@c!$&'()*+,;="),
        ] {
            assert_eq!(normalize(raw).unwrap(), normalized, "{raw}");
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_resolution() {
        let paths = [
            "/",
            "/api/hello",
            "/a/b/",
            "/a:b@c!$&'()*+,;=",
            "/~user/x-y_z.html",
            "/a/.b/c.",
            "/a/..b",
            "/.well-known/x",
            "/a/.",
            "/a/..",
            "/a//b",
            "//",
            "/a%41",
            "/a b",
            "/caf\u{e9}",
            "/a/./b",
            "/..",
            "/.",
            "/a?b",
            "/a#b",
        ];
        for path in paths {
            if already_normal(path) {
                assert_eq!(resolve(path).as_deref(), Ok(path), "{path}");
            }
        }
        for normal in [
            "/",
            "/api/hello",
            "/a/b/",
            "/a/.b/c.",
            "/a/..b",
            "/...",
            "/a/.../b",
        ] {
            assert!(already_normal(normal), "{normal}");
            assert_eq!(resolve(normal).as_deref(), Ok(normal), "{normal}");
        }
        for not_normal in ["/a/.", "/a/..", "/a/../", "/a//b", "/a%41", "/a b", "/.."] {
            assert!(!already_normal(not_normal), "{not_normal}");
        }
    }

    #[test]
    fn what_cannot_be_decided_is_refused() {
        assert_eq!(normalize("/.."), Err(PathError::AboveRoot));
        assert_eq!(normalize("/a/../../x"), Err(PathError::AboveRoot));
        assert_eq!(normalize("/%2e%2e/x"), Err(PathError::AboveRoot));
        for bad in ["/a/%zz", "/a/%2", "/a%00b", "/a\\..\\b", "relative"] {
            assert_eq!(normalize(bad), Err(PathError::Malformed), "{bad}");
        }
    }
}
