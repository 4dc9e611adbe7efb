//! Path normalisation before rules are matched: what was checked is what the upstream
//! serves.
//!
//! Only percent-encoded unreserved characters (RFC 3986 §2.3: letters, digits, `-`,
//! `.`, `_`, `~`) are decoded; every other escape (`%3B`, `%2F`, `%25`, …) stays as it
//! came, for matching and forwarding alike, so that no later hop reads a character
//! keygate did not see (a decoded `%3B` turns `..%3B` into Tomcat's `..;`). Raw bytes
//! outside RFC 3986's `pchar` are percent-encoded. Repeated `/` are collapsed; `.` and
//! `..` segments are resolved after decoding, so `%2e%2e` climbs like `..`.
//!
//! Refused with `400`, forwarded nowhere: a path that climbs above `/`, a malformed
//! escape, an encoded NUL, a backslash, and a segment that other servers read as a dot
//! segment although keygate cannot: `..;x` (Tomcat and Jetty drop path parameters
//! before resolving), and `..%2F` or `..%5C` (servers that decode separators first).

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// `..` above the root.
    #[error("the path climbs above /")]
    AboveRoot,
    /// Not a path keygate can decide on unambiguously.
    #[error(
        "the path has a malformed escape, an encoded NUL, a backslash or a disguised dot segment"
    )]
    Malformed,
}

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
        // `;` goes the long way: `..;` must be seen as the dot segment it is elsewhere.
        if !KEPT[usize::from(b)] || b == b';' {
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
        let segment = segment(raw)?;
        if disguised_dot_segment(&segment) {
            return Err(PathError::Malformed);
        }
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
    let mut normalized = String::with_capacity(path.len());
    for segment in &out {
        normalized.push('/');
        normalized.push_str(segment);
    }
    if normalized.is_empty() || trailing_slash {
        normalized.push('/');
    }
    Ok(normalized)
}

/// One raw segment in normal form: escapes of unreserved characters decoded, other
/// escapes kept exactly as sent, raw bytes outside `pchar` encoded.
fn segment(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let escape = bytes.get(i + 1..i + 3).ok_or(PathError::Malformed)?;
            let decoded = match (hex(escape[0]), hex(escape[1])) {
                (Some(high), Some(low)) => high << 4 | low,
                _ => return Err(PathError::Malformed),
            };
            if decoded == 0 {
                return Err(PathError::Malformed);
            }
            if is_unreserved(decoded) {
                out.push(char::from(decoded));
            } else {
                out.push_str(&raw[i..i + 3]);
            }
            i += 3;
        } else {
            if KEPT[usize::from(b)] {
                out.push(char::from(b));
            } else {
                push_escape(&mut out, b);
            }
            i += 1;
        }
    }
    Ok(out)
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn push_escape(out: &mut String, b: u8) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(DIGITS[usize::from(b >> 4)]));
    out.push(char::from(DIGITS[usize::from(b & 0xF)]));
}

/// Whether a normal segment is a dot segment to a server that strips path parameters
/// (`..;x`, also `..%3B`) or decodes `%2F` and `%5C` before resolving (`..%2Fx`,
/// `x%2F..`): keygate would decide on one path and such an upstream serve another.
fn disguised_dot_segment(segment: &str) -> bool {
    if !segment.contains(['.']) {
        return false;
    }
    let lower = segment.to_ascii_lowercase();
    lower
        .split("%2f")
        .flat_map(|part| part.split("%5c"))
        .map(|part| part.split([';']).next().unwrap_or(part))
        .map(|part| part.split("%3b").next().unwrap_or(part))
        .zip(0..)
        .any(|(part, index)| {
            let dots = matches!(part, "." | "..");
            // The segment itself being `.` or `..` is an ordinary dot segment.
            dots && !(index == 0 && part.len() == lower.len())
        })
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
            ("/api/public/x%2fy", "/api/public/x%2fy"),
            ("/api/public/%3B%3b%25%2F", "/api/public/%3B%3b%25%2F"),
            ("/a%2Fb/../c", "/c"),
            ("/%7Euser/%41%62", "/~user/Ab"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/sp%20ace", "/sp%20ace"),
            ("/raw space", "/raw%20space"),
            ("/%ff%fe", "/%ff%fe"),
            ("/a;b=c/d", "/a;b=c/d"),
            ("/a/.b;c", "/a/.b;c"),
            ("/%5Bx%5d", "/%5Bx%5d"),
            ("/a\"b", "/a%22b"),
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
        for not_normal in [
            "/a/.", "/a/..", "/a/../", "/a//b", "/a%41", "/a b", "/..", "/a/..;/b",
        ] {
            assert!(!already_normal(not_normal), "{not_normal}");
        }
    }

    #[test]
    fn what_cannot_be_decided_is_refused() {
        assert_eq!(normalize("/.."), Err(PathError::AboveRoot));
        assert_eq!(normalize("/a/../../x"), Err(PathError::AboveRoot));
        assert_eq!(normalize("/%2e%2e/x"), Err(PathError::AboveRoot));
        for bad in [
            "/a/%zz",
            "/a/%2",
            "/a%00b",
            "/a\\..\\b",
            "relative",
            "/api/public/..;/admin",
            "/api/public/..%3b/admin",
            "/api/public/%2e%2e%3B/admin",
            "/api/public/.;x/admin",
            "/api/public/..%2fadmin",
            "/api/public/..%5Cadmin",
            "/api/public/x%2F../admin",
            "/api/public/%2e%2e%2Fadmin",
        ] {
            assert_eq!(normalize(bad), Err(PathError::Malformed), "{bad}");
        }
    }
}
