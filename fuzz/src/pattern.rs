//! Checks on the text parsers: `Pattern`, `VersionRange` and the loose scalar syntax of
//! pattern filters.
//!
//! Used by the `pattern` fuzz target and by
//! `crates/seaport-core/tests/it/fuzz_regressions.rs`. Every check panics on a violation.

use seaport_core::pattern::MAX_PATTERN_LEN;
use seaport_core::record::{parse_version, RecordId, Role};
use seaport_core::semver::{BuildMetadata, Prerelease, Version};
use seaport_core::ParseErrorKind;
use seaport_core::{Pattern, Value, VersionRange};

/// The `pattern` target: `data` as UTF-8 (other inputs are skipped).
pub fn check_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    check_pattern(text);
    check_range(text);
    check_scalar(text);
    let _ = Role::new(text);
    let _ = RecordId::new(text);
    let _ = parse_version(text);
}

/// Longest input `VersionRange::parse` accepts.
pub const MAX_RANGE_LEN: usize = 1024;

/// When `Pattern::parse` accepts `text`, its display parses back to an equal pattern,
/// and displays the same again.
///
/// Unless the display is over the length limit: then parsing it fails with `TooLong`
/// (a float filter such as `1e15` displays as `1000000000000000.0`, and a control
/// character in a quoted value as `\u0001`).
pub fn check_pattern(text: &str) {
    let Ok(p) = Pattern::parse(text) else { return };
    let shown = p.to_string();
    if shown.len() > MAX_PATTERN_LEN {
        let e = Pattern::parse(&shown).expect_err("a pattern over the length limit parses");
        assert_eq!(e.kind(), &ParseErrorKind::TooLong { max: MAX_PATTERN_LEN });
        return;
    }
    let q = Pattern::parse(&shown)
        .unwrap_or_else(|e| panic!("pattern {text:?} displays as {shown:?}, which does not parse: {e}"));
    assert_eq!(q, p, "pattern {text:?} displays as {shown:?}, which parses to another pattern");
    assert_eq!(q.to_string(), shown, "display of pattern {text:?} is not stable");
}

/// When `VersionRange::parse` accepts `text`, its display parses back to a range that
/// matches the same versions (tried on versions derived from both texts) and is equal.
///
/// Unless the display is over the 1024-byte input limit (desugaring lengthens a range up
/// to about nine times, as documented on `VersionRange`): then parsing it fails with
/// `TooLong`.
pub fn check_range(text: &str) {
    let Ok(range) = VersionRange::parse(text) else { return };
    let shown = range.to_string();
    if shown.len() > MAX_RANGE_LEN {
        let e = VersionRange::parse(&shown).expect_err("a range over the length limit parses");
        assert_eq!(e.kind(), &ParseErrorKind::TooLong { max: MAX_RANGE_LEN });
        return;
    }
    let again = VersionRange::parse(&shown)
        .unwrap_or_else(|e| panic!("range {text:?} displays as {shown:?}, which does not parse: {e}"));
    for v in derived_versions(&[text, &shown]) {
        assert_eq!(again.matches(&v), range.matches(&v), "range {text:?} and its display {shown:?} disagree on {v}");
    }
    assert_eq!(again, range, "range {text:?} displays as {shown:?}, which parses to another range");
    assert_eq!(again.to_string(), shown, "display of range {text:?} is not stable");
}

/// A scalar read by `Value::parse_loose` displays as text that reads back the same.
pub fn check_scalar(text: &str) {
    let v = Value::parse_loose(text);
    let shown = v.to_string();
    let again = Value::parse_loose(&shown);
    assert_eq!(again, v, "parse_loose({text:?}) displays as {shown:?}, which reads back differently");
}

/// Versions near every version named in `texts` (bare numbers, `1.2`, `1.2.3-beta`, ...,
/// after stripping operators), plus a few fixed ones: the places where two ranges that
/// differ would disagree.
pub fn derived_versions(texts: &[&str]) -> Vec<Version> {
    let mut bases = vec![Version::new(0, 0, 0), Version::new(1, 2, 3), Version::new(1 << 53, 0, 0)];
    for text in texts {
        for token in text.split(|c: char| c.is_whitespace() || c == '|') {
            let token = token.trim_start_matches(['<', '>', '=', '~', '^', 'v', '-']);
            if let Some(v) = loose_version(token) {
                bases.push(v);
            }
        }
    }
    bases.truncate(64);
    let mut out = Vec::new();
    for b in bases {
        let (ma, mi, pa) = (b.major, b.minor, b.patch);
        let plain = Version::new(ma, mi, pa);
        for v in [
            plain.clone(),
            Version::new(ma, mi, pa.saturating_add(1)),
            Version::new(ma, mi, pa.saturating_sub(1)),
            Version::new(ma, mi.saturating_add(1), 0),
            Version::new(ma.saturating_add(1), 0, 0),
            Version::new(ma.saturating_sub(1), 0, 0),
        ] {
            out.push(with_pre(&v, "0"));
            out.push(with_pre(&v, "alpha.1"));
            out.push(v);
        }
        if !b.pre.is_empty() {
            let mut bumped = b.clone();
            bumped.build = BuildMetadata::EMPTY;
            out.push(bumped.clone());
            bumped.pre = Prerelease::new(&format!("{}.0", b.pre)).unwrap_or(Prerelease::EMPTY);
            out.push(bumped);
        }
        let mut built = plain;
        built.build = BuildMetadata::new("build.1").expect("valid build metadata");
        out.push(built);
    }
    out
}

fn with_pre(v: &Version, pre: &str) -> Version {
    let mut v = v.clone();
    v.pre = Prerelease::new(pre).expect("valid prerelease");
    v
}

/// `1`, `1.2`, `1.2.3`, `1.2.3-pre+build`, with `x` / `*` parts read as 0.
fn loose_version(token: &str) -> Option<Version> {
    if let Ok(v) = Version::parse(token) {
        return Some(v);
    }
    let core = token.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| match p {
        "x" | "X" | "*" => Some(0),
        p => p.parse::<u64>().ok(),
    });
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    Some(Version::new(major, minor, patch))
}
