//! Node-semver version ranges, evaluated on [`semver::Version`].
//!
//! [`VersionRange`] speaks the range language of the npm `semver` package
//! (node-semver 7.x) with its default options (not `loose`, no
//! `includePrerelease`): `VersionRange::parse(r)?.matches(&v)` answers what
//! `semver.satisfies(v, r)` answers in Node.js, quirks included, and
//! [`VersionRange::parse`] fails exactly where `semver.validRange(r)` returns
//! `null` (and on inputs longer than 1024 bytes).
//!
//! # Syntax
//!
//! A range is one or more *comparator sets* separated by `||`. A version
//! matches the range if it matches any of the sets. A set is a
//! whitespace-separated list of the forms below, and a version matches the
//! set if it matches all of them (and passes the prerelease rule further
//! down). Every form is rewritten ("desugared") into plain comparisons, shown
//! in the last column, which is also how [`Display`](fmt::Display) prints it.
//!
//! | Form | Example | Means |
//! |---|---|---|
//! | any | `*`, `x`, `X`, `>=0.0.0`, the empty string | any version (`*`) |
//! | exact | `1.2.3`, `=1.2.3`, `v1.2.3`, `=v1.2.3` | `1.2.3` |
//! | comparison | `>1.2.3`, `>=1.2.3`, `<1.2.3`, `<=1.2.3` | as written |
//! | partial / x-range | `1`, `1.x`, `1.x.x`, `1.*` | `>=1.0.0 <2.0.0-0` |
//! | | `1.2`, `1.2.x`, `1.2.*` | `>=1.2.0 <1.3.0-0` |
//! | comparison with a partial | `>1`, `>1.x` | `>=2.0.0` |
//! | | `>1.2` | `>=1.3.0` |
//! | | `>=1.2` | `>=1.2.0` |
//! | | `<1.2` | `<1.2.0-0` |
//! | | `<=1.2` | `<1.3.0-0` |
//! | | `<=1` | `<2.0.0-0` |
//! | | `>*`, `<x` | nothing (`<0.0.0-0`) |
//! | | `>=*`, `<=x`, `=*` | any version |
//! | tilde | `~1.2.3`, `~>1.2.3` | `>=1.2.3 <1.3.0-0` |
//! | | `~1.2`, `~1.2.x` | `>=1.2.0 <1.3.0-0` |
//! | | `~1`, `~1.x` | `>=1.0.0 <2.0.0-0` |
//! | | `~1.2.3-beta.2` | `>=1.2.3-beta.2 <1.3.0-0` |
//! | | `~x`, `~*` | any version |
//! | caret | `^1.2.3` | `>=1.2.3 <2.0.0-0` |
//! | | `^0.2.3` | `>=0.2.3 <0.3.0-0` |
//! | | `^0.0.3` | `>=0.0.3 <0.0.4-0` |
//! | | `^1.2.3-beta.2` | `>=1.2.3-beta.2 <2.0.0-0` |
//! | | `^1.2`, `^1.2.x` | `>=1.2.0 <2.0.0-0` |
//! | | `^0.0`, `^0.0.x` | `<0.1.0-0` |
//! | | `^1`, `^1.x` | `>=1.0.0 <2.0.0-0` |
//! | | `^0`, `^0.x` | `<1.0.0-0` |
//! | | `^x`, `^*` | any version |
//! | hyphen | `1.2.3 - 2.3.4` | `>=1.2.3 <=2.3.4` |
//! | | `1.2 - 2.3.4` | `>=1.2.0 <=2.3.4` |
//! | | `1.2.3 - 2.3` | `>=1.2.3 <2.4.0-0` |
//! | | `1.2.3 - 2` | `>=1.2.3 <3.0.0-0` |
//! | | `x - 2.3.4` | `<=2.3.4` |
//! | and | `>=1.2.7 <1.3.0` | both |
//! | or | `1.2.7 \|\| >=1.2.9 <2.0.0` | either |
//!
//! Further details, all as in node-semver:
//!
//! * Whitespace may separate an operator from its version: `>= 1.2.3`,
//!   `~ 1.2`, `^ 1`, `~> 1.2`.
//! * Build metadata is ignored: `^1.2.3+build.5` is `^1.2.3`.
//! * Numbers must not have leading zeros (`01.2.3` is invalid) and may be at
//!   most 2<sup>53</sup>−1 (JavaScript's `Number.MAX_SAFE_INTEGER`).
//! * A wildcard may not be followed by a number: `1.x.3` and `x.1` are
//!   invalid (but `^1.x.3` and `~x.1` are accepted, as in node).
//! * A set that can match nothing is kept: `>=1.2.3 <1.2.3` matches no
//!   version at all.
//! * An *empty* alternative matches everything: `1.2.3 ||` is the same range
//!   as `*`, because `||` with nothing around it means "any version"; and a
//!   union that contains an "any version" set collapses to it, so
//!   `* || >=1.2.3-beta` no longer matches `1.2.3-beta`.
//!
//! # Prereleases
//!
//! A version with a prerelease tag, such as `1.2.3-beta.1`, matches a set
//! only if the set's comparisons all hold **and** some comparison in the set
//! names a prerelease of the same `major.minor.patch`. So `>=1.2.3-alpha
//! <2.0.0` matches `1.2.3-beta` but not `1.2.4-beta`, and `*` or `>=0.0.0`
//! match no prerelease at all. The `-0` upper bounds produced by desugaring
//! (`^1.2.3` is `>=1.2.3 <2.0.0-0`) count as naming a prerelease of their
//! version, exactly as in node (they never admit one, since nothing below
//! `2.0.0-0` shares its `2.0.0`).
//!
//! # Limits
//!
//! [`VersionRange::parse`] rejects inputs longer than 1024 bytes with
//! [`ParseErrorKind::TooLong`]. [`VersionRange::matches`] returns `false` for
//! versions node-semver refuses to parse: a major, minor or patch number
//! above 2<sup>53</sup>−1, or a version whose text is longer than 256 bytes.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use semver::{Prerelease, Version};

use crate::error::{ParseError, ParseErrorKind};

/// What [`ParseError::what`] says for a bad range.
const WHAT: &str = "version range";
/// Longest input accepted by [`VersionRange::parse`], in bytes.
const MAX_INPUT_LEN: usize = 1024;
/// JavaScript's `Number.MAX_SAFE_INTEGER`, node-semver's largest version number.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// node-semver's `MAX_LENGTH`: longest version string it parses.
const MAX_VERSION_LEN: usize = 256;

/// A node-semver version range such as `^1.2.3`, `1.x || >=2.5.0` or `1.2 - 2.3.4`.
///
/// The range is stored desugared, as node-semver stores it: a union of
/// comparator sets, each an intersection of plain comparisons such as
/// `>=1.2.3` or `<2.0.0-0`. Equality and hashing compare that desugared
/// form, so `^1.2.3` equals `>=1.2.3 <2.0.0-0`, and
/// [`Display`](fmt::Display) prints it; the printed form parses back to an
/// equal range, unless it is over the 1024-byte input limit (desugaring can
/// make a range up to about nine times longer: `1 2` prints as
/// `>=1.0.0 <2.0.0-0 >=2.0.0 <3.0.0-0`). See the [module documentation](self)
/// for the syntax.
///
/// # Examples
///
/// ```
/// use seaport_core::{VersionRange, semver::Version};
///
/// let range: VersionRange = "^1.2.3 || 2.x".parse()?;
/// assert!(range.matches(&Version::parse("1.9.0")?));
/// assert!(range.matches(&Version::parse("2.5.1")?));
/// assert!(!range.matches(&Version::parse("3.0.0")?));
/// // A prerelease matches only a set that names a prerelease of the same version.
/// assert!(!range.matches(&Version::parse("1.9.0-beta.1")?));
/// assert!(VersionRange::parse(">=1.9.0-beta.0")?.matches(&Version::parse("1.9.0-beta.1")?));
///
/// assert_eq!(range.to_string(), ">=1.2.3 <2.0.0-0 || >=2.0.0 <3.0.0-0");
/// assert_eq!(range, range.to_string().parse()?);
/// assert!(VersionRange::parse("1.2.3.4").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// The union of comparator sets; an empty set means "any version".
    sets: Box<[Box<[Comparator]>]>,
}

impl VersionRange {
    /// Parses a range in node-semver syntax (see the [module documentation](self)).
    ///
    /// Accepts exactly the strings node-semver's `validRange` accepts with
    /// default options; the empty string (or only whitespace) means any
    /// version.
    ///
    /// # Errors
    /// A [`ParseError`] naming the input and what is wrong with it: where
    /// possible [`ParseErrorKind::UnexpectedChar`],
    /// [`ParseErrorKind::UnexpectedEnd`], [`ParseErrorKind::InvalidNumber`] or
    /// [`ParseErrorKind::InvalidIdentifier`] with the byte offset of the
    /// problem, [`ParseErrorKind::TooLong`] (`max: 1024`) for inputs longer than
    /// 1024 bytes, and [`ParseErrorKind::Other`] for the few inputs that look
    /// well-formed but that node-semver still rejects (such as `v=1.2.3`).
    pub fn parse(input: &str) -> Result<VersionRange, ParseError> {
        if input.len() > MAX_INPUT_LEN {
            return Err(ParseError::new(WHAT, input, ParseErrorKind::TooLong { max: MAX_INPUT_LEN }));
        }
        if let Some(set) = simple::parse_set(input) {
            return Ok(VersionRange { sets: Box::new([set.into_boxed_slice()]) });
        }
        match node::parse_range(input) {
            Some(sets) => Ok(VersionRange { sets: sets.into_iter().map(Vec::into_boxed_slice).collect() }),
            None => Err(ParseError::new(WHAT, input, diagnose::diagnose(input))),
        }
    }

    /// Whether `version` satisfies this range, with node-semver's prerelease rule.
    ///
    /// Build metadata of `version` is ignored. Versions that node-semver
    /// cannot represent (a number above 2<sup>53</sup>−1, or longer than 256
    /// bytes as text) match no range. Does not allocate.
    pub fn matches(&self, version: &Version) -> bool {
        node_accepts(version) && self.sets.iter().any(|set| test_set(set, version))
    }
}

impl FromStr for VersionRange {
    type Err = ParseError;

    /// Same as [`VersionRange::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VersionRange::parse(s)
    }
}

impl fmt::Display for VersionRange {
    /// Prints the desugared range, e.g. `>=1.2.3 <2.0.0-0 || 3.0.0`; `*` for any version.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = &*self.sets {
            if only.is_empty() {
                return f.write_str("*");
            }
        }
        for (i, set) in self.sets.iter().enumerate() {
            if i > 0 {
                f.write_str(" || ")?;
            }
            for (k, comparator) in set.iter().enumerate() {
                if k > 0 {
                    f.write_str(" ")?;
                }
                fmt::Display::fmt(comparator, f)?;
            }
        }
        Ok(())
    }
}

/// node-semver's `testSet`: all comparisons hold, and a prerelease version
/// needs a comparator naming a prerelease of the same `major.minor.patch`.
#[inline]
fn test_set(set: &[Comparator], version: &Version) -> bool {
    if !set.iter().all(|c| c.test(version)) {
        return false;
    }
    if version.pre.is_empty() {
        return true;
    }
    set.iter()
        .any(|c| !c.pre.is_empty() && c.major == version.major && c.minor == version.minor && c.patch == version.patch)
}

/// Whether node-semver's `new SemVer(version.toString())` would succeed.
#[inline]
fn node_accepts(v: &Version) -> bool {
    if v.major > MAX_SAFE_INTEGER || v.minor > MAX_SAFE_INTEGER || v.patch > MAX_SAFE_INTEGER {
        return false;
    }
    if v.pre.is_empty() && v.build.is_empty() {
        return true; // at most 3 * 16 + 2 bytes
    }
    let mut len = decimal_len(v.major) + decimal_len(v.minor) + decimal_len(v.patch) + 2;
    if !v.pre.is_empty() {
        len += 1 + v.pre.as_str().len();
    }
    if !v.build.is_empty() {
        len += 1 + v.build.as_str().len();
    }
    len <= MAX_VERSION_LEN
}

fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().unwrap_or(0) as usize + 1
}

/// A comparison operator; node's `''` and `'='` are both [`Op::Eq`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One desugared comparison, such as `>=1.2.3` or `<2.0.0-0`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Comparator {
    op: Op,
    major: u64,
    minor: u64,
    patch: u64,
    pre: Prerelease,
}

impl Comparator {
    #[inline]
    fn test(&self, v: &Version) -> bool {
        let ord = (v.major, v.minor, v.patch)
            .cmp(&(self.major, self.minor, self.patch))
            .then_with(|| compare_pre(&v.pre, &self.pre));
        match self.op {
            Op::Eq => ord == Ordering::Equal,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
        }
    }

    /// node's null set `<0.0.0-0`, which no version satisfies.
    fn is_null(&self) -> bool {
        self.op == Op::Lt && (self.major, self.minor, self.patch) == (0, 0, 0) && self.pre.as_str() == "0"
    }
}

impl fmt::Display for Comparator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Eq => "",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        };
        f.write_str(op)?;
        // node rewrites a literal `>=0.0.0` to "any version", which differs for
        // 0.0.0 prereleases; a real `>=0.0.0` comparison (written `>=v0.0.0`)
        // keeps its `v` so that it survives a round trip.
        if self.op == Op::Ge && (self.major, self.minor, self.patch) == (0, 0, 0) && self.pre.is_empty() {
            f.write_str("v")?;
        }
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

/// node-semver's `comparePre` (the prerelease part of `SemVer#compare`).
#[inline]
/// A set of desugared comparators as node's `parseRange` leaves it: a set holding the
/// null comparator is only that, and duplicates go (first one kept).
fn comparator_set(comparators: Vec<Comparator>) -> Vec<Comparator> {
    if let Some(null) = comparators.iter().find(|c| c.is_null()) {
        return vec![null.clone()];
    }
    let mut set: Vec<Comparator> = Vec::with_capacity(comparators.len());
    for c in comparators {
        if !set.contains(&c) {
            set.push(c);
        }
    }
    set
}

fn compare_pre(a: &Prerelease, b: &Prerelease) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (false, true) => return Ordering::Less,
        (true, false) => return Ordering::Greater,
        (false, false) => {}
    }
    let (a, b) = (a.as_str().as_bytes(), b.as_str().as_bytes());
    if a == b {
        return Ordering::Equal;
    }
    let (mut i, mut j) = (0, 0);
    loop {
        let end_a = a[i..].iter().position(|&c| c == b'.').map_or(a.len(), |p| i + p);
        let end_b = b[j..].iter().position(|&c| c == b'.').map_or(b.len(), |p| j + p);
        let (x, y) = (&a[i..end_a], &b[j..end_b]);
        if x != y {
            // node returns compareIdentifiers(x, y) here, even when that is 0
            return compare_identifiers(x, y);
        }
        match (end_a == a.len(), end_b == b.len()) {
            (true, true) => return Ordering::Equal,
            (false, true) => return Ordering::Greater,
            (true, false) => return Ordering::Less,
            (false, false) => (i, j) = (end_a + 1, end_b + 1),
        }
    }
}

/// node-semver's `compareIdentifiers`: numeric identifiers sort before
/// alphanumeric ones and compare as JavaScript numbers (doubles, so that
/// identifiers above 2<sup>53</sup> may compare equal), others compare as
/// strings.
fn compare_identifiers(x: &[u8], y: &[u8]) -> Ordering {
    let x_numeric = x.iter().all(u8::is_ascii_digit);
    let y_numeric = y.iter().all(u8::is_ascii_digit);
    match (x_numeric, y_numeric) {
        // Numeric identifiers have no leading zeros (node's grammar and the
        // semver crate both forbid them), and up to 15 digits are exact in a
        // double: compare by length, then digit by digit.
        (true, true) if x.len() <= 15 && y.len() <= 15 => (x.len(), x).cmp(&(y.len(), y)),
        (true, true) => {
            let double = |d: &[u8]| -> f64 { std::str::from_utf8(d).ok().and_then(|d| d.parse().ok()).unwrap_or(0.0) };
            double(x).partial_cmp(&double(y)).unwrap_or(Ordering::Equal)
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => x.cmp(y),
    }
}

/// A fast path for the ranges people write most: one comparator set of plain tokens
/// such as `1.2.3`, `^1.2.0`, `~1.2`, `1.x`, `>=1.2.0 <2.0.0`.
///
/// [`node`]'s rewrites cost microseconds even on `1.2.3`; on inputs this module
/// recognizes they amount to the few rules below, applied directly. It accepts tokens
/// separated by single ASCII spaces, each an operator (`<`, `<=`, `>`, `>=`, `=`, `^`,
/// `~`, `~>`, or none) and a version of one to three parts, each a number of at most
/// nine digits without a leading zero or one of `x`, `X`, `*`, no part after a wildcard
/// being a number. Anything else (`||`, hyphen ranges, prereleases, build metadata,
/// `v` prefixes, other whitespace, big numbers, wildcard majors with an operator other
/// than `<` or `>`) returns `None` and goes through [`node`]. A test checks that both
/// paths agree on every input this one accepts.
mod simple {
    use semver::Prerelease;

    use super::{Comparator, Op};

    /// What precedes a token's version.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Prefix {
        Bare,
        Cmp(Op),
        Caret,
        Tilde,
    }

    /// The comparator set of `input`, or `None` when it is not in this module's subset.
    pub(super) fn parse_set(input: &str) -> Option<Vec<Comparator>> {
        if input.is_empty() {
            return None;
        }
        let mut comparators = Vec::new();
        for token in input.split(' ') {
            desugar(token, &mut comparators)?;
        }
        // As node's parseRange: `>=0.0.0` means any version and is dropped, a set
        // holding the null comparator is only that, and duplicates go.
        comparators.retain(|c| !(c.op == Op::Ge && (c.major, c.minor, c.patch) == (0, 0, 0) && c.pre.is_empty()));
        Some(super::comparator_set(comparators))
    }

    /// Appends what one token desugars to (nothing for "any version").
    fn desugar(token: &str, out: &mut Vec<Comparator>) -> Option<()> {
        let (prefix, version) = match token.as_bytes() {
            [b'~', b'>', ..] => (Prefix::Tilde, &token[2..]),
            [b'~', ..] => (Prefix::Tilde, &token[1..]),
            [b'^', ..] => (Prefix::Caret, &token[1..]),
            [b'<', b'=', ..] => (Prefix::Cmp(Op::Le), &token[2..]),
            [b'>', b'=', ..] => (Prefix::Cmp(Op::Ge), &token[2..]),
            [b'<', ..] => (Prefix::Cmp(Op::Lt), &token[1..]),
            [b'>', ..] => (Prefix::Cmp(Op::Gt), &token[1..]),
            [b'=', ..] => (Prefix::Cmp(Op::Eq), &token[1..]),
            _ => (Prefix::Bare, token),
        };
        let (major, minor, patch) = parts(version)?;
        let c = |op, major, minor, patch| Comparator { op, major, minor, patch, pre: Prerelease::EMPTY };
        // `<X.Y.Z-0`: below every X.Y.Z prerelease.
        let below = |major, minor, patch| -> Option<Comparator> {
            Some(Comparator { op: Op::Lt, major, minor, patch, pre: Prerelease::new("0").ok()? })
        };
        let Some(major) = major else {
            // `*`, `x.x`, ...: any version, except `<*` and `>*`, which match none.
            return match prefix {
                Prefix::Cmp(Op::Lt | Op::Gt) => {
                    out.push(below(0, 0, 0)?);
                    Some(())
                }
                Prefix::Bare | Prefix::Cmp(Op::Eq | Op::Ge) => Some(()),
                // `<=*`, `^*` and `~*` also mean any version in node; left to it.
                _ => None,
            };
        };
        match (prefix, minor, patch) {
            (Prefix::Bare | Prefix::Cmp(Op::Eq) | Prefix::Caret | Prefix::Tilde, None, _) => {
                out.extend([c(Op::Ge, major, 0, 0), below(major + 1, 0, 0)?]);
            }
            (Prefix::Bare | Prefix::Cmp(Op::Eq) | Prefix::Tilde, Some(minor), None) => {
                out.extend([c(Op::Ge, major, minor, 0), below(major, minor + 1, 0)?]);
            }
            (Prefix::Caret, Some(minor), None) => {
                let upper = if major == 0 { below(0, minor + 1, 0)? } else { below(major + 1, 0, 0)? };
                out.extend([c(Op::Ge, major, minor, 0), upper]);
            }
            (Prefix::Bare | Prefix::Cmp(Op::Eq), Some(minor), Some(patch)) => out.push(c(Op::Eq, major, minor, patch)),
            (Prefix::Caret, Some(minor), Some(patch)) => {
                let upper = match (major, minor) {
                    (0, 0) => below(0, 0, patch + 1)?,
                    (0, _) => below(0, minor + 1, 0)?,
                    _ => below(major + 1, 0, 0)?,
                };
                out.extend([c(Op::Ge, major, minor, patch), upper]);
            }
            (Prefix::Tilde, Some(minor), Some(patch)) => {
                out.extend([c(Op::Ge, major, minor, patch), below(major, minor + 1, 0)?]);
            }
            (Prefix::Cmp(op), Some(minor), Some(patch)) => out.push(c(op, major, minor, patch)),
            (Prefix::Cmp(op), None, _) => out.push(match op {
                Op::Gt => c(Op::Ge, major + 1, 0, 0),
                Op::Ge => c(Op::Ge, major, 0, 0),
                Op::Lt => below(major, 0, 0)?,
                _ => below(major + 1, 0, 0)?, // `<=`; `=` is handled above
            }),
            (Prefix::Cmp(op), Some(minor), None) => out.push(match op {
                Op::Gt => c(Op::Ge, major, minor + 1, 0),
                Op::Ge => c(Op::Ge, major, minor, 0),
                Op::Lt => below(major, minor, 0)?,
                _ => below(major, minor + 1, 0)?, // `<=`
            }),
        }
        Some(())
    }

    /// `M`, `M.m` or `M.m.p`, a wildcard or a missing part as `None`; `None` overall
    /// for anything else, including a number after a wildcard.
    #[allow(clippy::type_complexity)]
    fn parts(version: &str) -> Option<(Option<u64>, Option<u64>, Option<u64>)> {
        let mut parts = [None; 3];
        let mut wild = false;
        let mut count = 0;
        for (i, part) in version.split('.').enumerate() {
            let slot = parts.get_mut(i)?;
            count = i + 1;
            match part.as_bytes() {
                [b'x' | b'X' | b'*'] => wild = true,
                [b'0'] if !wild => *slot = Some(0),
                [b'1'..=b'9', rest @ ..] if !wild && rest.len() < 9 && rest.iter().all(u8::is_ascii_digit) => {
                    *slot = part.parse().ok();
                }
                _ => return None,
            }
        }
        (count > 0).then_some((parts[0], parts[1], parts[2]))
    }
}

/// A faithful re-enactment of node-semver's `new Range(range)`.
///
/// node-semver parses a range by a chain of regular-expression rewrites
/// (build-metadata stripping, hyphen ranges, whitespace trimming around
/// operators, then per token carets, tildes, x-ranges and stars) and finally
/// parses each resulting token as a plain comparator. Its quirks (which
/// inputs are accepted, and what they mean) follow from the exact regular
/// expressions, so this module runs the same rewrites with the same
/// expressions (from `internal/re.js`, in their "safe" form with bounded
/// repetitions), on a small backtracking matcher that has JavaScript's
/// leftmost, greedy-first semantics.
mod node {
    use std::sync::OnceLock;

    use semver::Prerelease;

    use super::{Comparator, Op, MAX_SAFE_INTEGER, MAX_VERSION_LEN};

    /// A set of ASCII bytes (bytes >= 128 are in no class).
    #[derive(Clone, Copy, Debug)]
    struct Class(u128);

    impl Class {
        const fn of(bytes: &[u8]) -> Class {
            let mut mask = 0u128;
            let mut i = 0;
            while i < bytes.len() {
                mask |= 1 << bytes[i];
                i += 1;
            }
            Class(mask)
        }

        const fn range(lo: u8, hi: u8) -> Class {
            let mut mask = 0u128;
            let mut b = lo;
            while b <= hi {
                mask |= 1 << b;
                b += 1;
            }
            Class(mask)
        }

        const fn or(self, other: Class) -> Class {
            Class(self.0 | other.0)
        }

        #[inline]
        fn has(self, b: u8) -> bool {
            b < 128 && self.0 & (1u128 << b) != 0
        }
    }

    const DIGIT: Class = Class::range(b'0', b'9');
    const NONZERO: Class = Class::range(b'1', b'9');
    /// `[a-zA-Z-]`
    const LETTER: Class = Class::range(b'a', b'z').or(Class::range(b'A', b'Z')).or(Class::of(b"-"));
    /// `[a-zA-Z0-9-]`
    const IDENT: Class = LETTER.or(DIGIT);
    /// `\s` once whitespace is normalized to single spaces.
    const SPACE: Class = Class::of(b" ");
    /// `[v=\s]`
    const V_EQ_SPACE: Class = Class::of(b"v= ");
    const LT_GT: Class = Class::of(b"<>");

    /// Capture slots: `(start, end)` byte offsets.
    type Caps = [Option<(usize, usize)>; 12];

    /// The kinds of dot-separated identifier lists.
    #[derive(Clone, Copy, Debug)]
    enum Ids {
        /// `PRERELEASEIDENTIFIER`
        Prerelease,
        /// `PRERELEASEIDENTIFIERLOOSE`
        PrereleaseLoose,
        /// `BUILDIDENTIFIER`
        Build,
    }

    /// A regular expression, as a tree.
    #[derive(Debug)]
    enum Re {
        /// One byte of the class.
        Byte(Class),
        /// `class{min,max}`, greedy.
        Rep(Class, usize, usize),
        /// `class*`, possessive: only the longest run is tried. Used for
        /// `[v=\s]*`, which is always followed by a byte outside its class
        /// (a digit, `x`, `X` or `*`), so that no shorter run could lead to
        /// a match and backtracking into it would only cost time.
        RepAll(Class),
        /// `ID(?:\.ID)*` for one kind of identifier.
        Ids(Ids),
        Seq(Vec<Re>),
        /// Ordered alternation.
        Alt(Vec<Re>),
        /// `(?:...)?`, greedy.
        Opt(Box<Re>),
        /// A capture group.
        Group(usize, Box<Re>),
        /// `^`
        Start,
        /// `$`
        End,
    }

    fn lit(b: u8) -> Re {
        Re::Byte(Class::of(&[b]))
    }

    fn opt(re: Re) -> Re {
        Re::Opt(Box::new(re))
    }

    fn group(slot: usize, re: Re) -> Re {
        Re::Group(slot, Box::new(re))
    }

    /// `\s{0,1}`
    fn opt_space() -> Re {
        Re::Rep(SPACE, 0, 1)
    }

    /// `NUMERICIDENTIFIER`: `0|[1-9]\d{0,256}`
    fn numeric() -> Vec<Re> {
        vec![lit(b'0'), Re::Seq(vec![Re::Byte(NONZERO), Re::Rep(DIGIT, 0, 256)])]
    }

    /// `XRANGEIDENTIFIER`: `0|[1-9]\d{0,256}|x|X|\*`
    fn xid() -> Re {
        let mut alts = numeric();
        alts.extend([lit(b'x'), lit(b'X'), lit(b'*')]);
        Re::Alt(alts)
    }

    /// `GTLT`: `((?:<|>)?=?)`
    fn gtlt(slot: usize) -> Re {
        group(slot, Re::Seq(vec![opt(Re::Byte(LT_GT)), opt(lit(b'='))]))
    }

    /// `XRANGEPLAIN` with M, m, p, prerelease in `slot..slot + 4`.
    ///
    /// Its trailing `BUILD?` is left out, here and in `LOOSEPLAIN`: every
    /// `+identifier` is stripped before these expressions run, so it could
    /// only ever match the empty string. (The one rewrite that can join a `+`
    /// and an identifier again is `replaceStars`, whose output only the
    /// comparator expression sees, and that one keeps its `BUILD?`.)
    fn xrange_plain(slot: usize) -> Re {
        Re::Seq(vec![
            Re::RepAll(V_EQ_SPACE),
            group(slot, xid()),
            opt(Re::Seq(vec![
                lit(b'.'),
                group(slot + 1, xid()),
                opt(Re::Seq(vec![
                    lit(b'.'),
                    group(slot + 2, xid()),
                    opt(Re::Seq(vec![lit(b'-'), group(slot + 3, Re::Ids(Ids::Prerelease))])),
                ])),
            ])),
        ])
    }

    /// `LOOSEPLAIN` (without `BUILD?`, see above, and without captures).
    fn loose_plain() -> Re {
        Re::Seq(vec![
            Re::RepAll(V_EQ_SPACE),
            Re::Rep(DIGIT, 1, 256),
            lit(b'.'),
            Re::Rep(DIGIT, 1, 256),
            lit(b'.'),
            Re::Rep(DIGIT, 1, 256),
            opt(Re::Seq(vec![opt(lit(b'-')), Re::Ids(Ids::PrereleaseLoose)])),
        ])
    }

    /// The compiled expressions, built once.
    struct Regexes {
        /// `HYPHENRANGE`: from = 0, fM..fpr = 1..5, to = 5, tM..tpr = 6..10.
        hyphen: Re,
        /// `COMPARATORTRIM`: `$1` = 0, `$2` = 1, `$3` = 2.
        comparator_trim: Re,
        /// `TILDETRIM`: `$1` = 0.
        tilde_trim: Re,
        /// `CARETTRIM`: `$1` = 0.
        caret_trim: Re,
        /// `TILDE`: M, m, p, pr = 0..4.
        tilde: Re,
        /// `CARET`: M, m, p, pr = 0..4.
        caret: Re,
        /// `XRANGE`: gtlt = 0, M, m, p, pr = 1..5.
        xrange: Re,
        /// `STAR`
        star: Re,
        /// `COMPARATOR`: operator = 0, version = 1, M, m, p, pr = 2..6.
        comparator: Re,
    }

    fn regexes() -> &'static Regexes {
        static REGEXES: OnceLock<Regexes> = OnceLock::new();
        REGEXES.get_or_init(|| Regexes {
            hyphen: Re::Seq(vec![
                Re::Start,
                opt_space(),
                group(0, xrange_plain(1)),
                Re::Byte(SPACE),
                lit(b'-'),
                Re::Byte(SPACE),
                group(5, xrange_plain(6)),
                opt_space(),
                Re::End,
            ]),
            comparator_trim: Re::Seq(vec![
                group(0, opt_space()),
                gtlt(1),
                opt_space(),
                group(2, Re::Alt(vec![loose_plain(), xrange_plain(3)])),
            ]),
            tilde_trim: Re::Seq(vec![group(0, opt_space()), lit(b'~'), opt(lit(b'>')), Re::Byte(SPACE)]),
            caret_trim: Re::Seq(vec![group(0, opt_space()), lit(b'^'), Re::Byte(SPACE)]),
            tilde: Re::Seq(vec![Re::Start, lit(b'~'), opt(lit(b'>')), xrange_plain(0), Re::End]),
            caret: Re::Seq(vec![Re::Start, lit(b'^'), xrange_plain(0), Re::End]),
            xrange: Re::Seq(vec![Re::Start, gtlt(0), opt_space(), xrange_plain(1), Re::End]),
            star: Re::Seq(vec![opt(Re::Byte(LT_GT)), opt(lit(b'=')), opt_space(), lit(b'*')]),
            comparator: Re::Seq(vec![
                Re::Start,
                gtlt(0),
                opt_space(),
                group(
                    1,
                    Re::Seq(vec![
                        opt(lit(b'v')),
                        group(2, Re::Alt(numeric())),
                        lit(b'.'),
                        group(3, Re::Alt(numeric())),
                        lit(b'.'),
                        group(4, Re::Alt(numeric())),
                        opt(Re::Seq(vec![lit(b'-'), group(5, Re::Ids(Ids::Prerelease))])),
                        opt(Re::Seq(vec![lit(b'+'), Re::Ids(Ids::Build)])),
                    ]),
                ),
                Re::End,
            ]),
        })
    }

    /// Where one identifier starting at `i` may end, in the order a
    /// backtracking matcher tries them (longest first).
    fn identifier_ends(s: &[u8], i: usize, kind: Ids, out: &mut Vec<usize>) {
        if let Ids::Build = kind {
            // BUILDIDENTIFIER: [0-9A-Za-z-]{1,250}
            let run = s[i..].iter().take(250).take_while(|&&b| IDENT.has(b)).count();
            out.extend((i + 1..=i + run).rev());
            return;
        }
        let digits = s[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        // NONNUMERICIDENTIFIER: \d{0,256}[a-zA-Z-][a-zA-Z0-9-]{0,250}
        if digits <= 256 && i + digits < s.len() && LETTER.has(s[i + digits]) {
            let start = i + digits + 1;
            let rest = s[start..].iter().take(250).take_while(|&&b| IDENT.has(b)).count();
            out.extend((start..=start + rest).rev());
        }
        if let Ids::PrereleaseLoose = kind {
            // NUMERICIDENTIFIERLOOSE: \d{1,256}
            out.extend((i + 1..=i + digits.min(256)).rev());
        } else if s.get(i) == Some(&b'0') {
            // NUMERICIDENTIFIER: 0|[1-9]\d{0,256}
            out.push(i + 1);
        } else if digits > 0 {
            out.extend((i + 1..=i + digits.min(257)).rev());
        }
    }

    /// Where `ID(?:\.ID)*` starting at `i` may end, in backtracking order.
    ///
    /// Of the ends of one identifier only the longest can be followed by
    /// `.`, so the order is: every end of the last reachable identifier,
    /// longest first, then those of the one before, and so on; that is, all
    /// ends in decreasing order.
    fn identifiers_ends(s: &[u8], i: usize, kind: Ids) -> Vec<usize> {
        let mut levels: Vec<Vec<usize>> = Vec::new();
        let mut pos = i;
        loop {
            let mut ends = Vec::new();
            identifier_ends(s, pos, kind, &mut ends);
            let Some(&longest) = ends.first() else { break };
            levels.push(ends);
            if s.get(longest) == Some(&b'.') {
                pos = longest + 1;
            } else {
                break;
            }
        }
        levels.into_iter().rev().flatten().collect()
    }

    /// A backtracking matcher in continuation-passing style.
    struct Matcher<'s> {
        s: &'s [u8],
    }

    type Cont<'k> = dyn FnMut(usize, &mut Caps) -> bool + 'k;

    impl Matcher<'_> {
        fn run(&self, re: &Re, i: usize, caps: &mut Caps, k: &mut Cont<'_>) -> bool {
            let s = self.s;
            match re {
                Re::Byte(class) => i < s.len() && class.has(s[i]) && k(i + 1, caps),
                Re::Rep(class, min, max) => {
                    let mut n = 0;
                    while n < *max && i + n < s.len() && class.has(s[i + n]) {
                        n += 1;
                    }
                    if n < *min {
                        return false;
                    }
                    loop {
                        if k(i + n, caps) {
                            return true;
                        }
                        if n == *min {
                            return false;
                        }
                        n -= 1;
                    }
                }
                Re::RepAll(class) => {
                    let n = s[i..].iter().take_while(|&&b| class.has(b)).count();
                    k(i + n, caps)
                }
                Re::Ids(kind) => identifiers_ends(s, i, *kind).into_iter().any(|end| k(end, caps)),
                Re::Seq(items) => self.seq(items, i, caps, k),
                Re::Alt(alts) => alts.iter().any(|alt| self.run(alt, i, caps, k)),
                Re::Opt(inner) => self.run(inner, i, caps, k) || k(i, caps),
                Re::Group(slot, inner) => {
                    let slot = *slot;
                    let saved = caps[slot];
                    let matched = self.run(inner, i, caps, &mut |j, caps: &mut Caps| {
                        let before = caps[slot];
                        caps[slot] = Some((i, j));
                        if k(j, caps) {
                            return true;
                        }
                        caps[slot] = before;
                        false
                    });
                    if !matched {
                        caps[slot] = saved;
                    }
                    matched
                }
                Re::Start => i == 0 && k(i, caps),
                Re::End => i == s.len() && k(i, caps),
            }
        }

        fn seq(&self, items: &[Re], i: usize, caps: &mut Caps, k: &mut Cont<'_>) -> bool {
            match items.split_first() {
                None => k(i, caps),
                Some((first, rest)) => self.run(first, i, caps, &mut |j, caps: &mut Caps| self.seq(rest, j, caps, k)),
            }
        }
    }

    /// A match of `re` starting exactly at `start`: its end and captures.
    fn match_at(re: &Re, s: &[u8], start: usize) -> Option<(usize, Caps)> {
        let mut caps: Caps = [None; 12];
        let mut end = None;
        let found = Matcher { s }.run(re, start, &mut caps, &mut |j, _| {
            end = Some(j);
            true
        });
        match (found, end) {
            (true, Some(end)) => Some((end, caps)),
            _ => None,
        }
    }

    /// The leftmost match of `re` at or after `from`: start, end, captures.
    fn find(re: &Re, s: &[u8], from: usize) -> Option<(usize, usize, Caps)> {
        (from..=s.len()).find_map(|start| match_at(re, s, start).map(|(end, caps)| (start, end, caps)))
    }

    /// A capture's text (`None` for a group that did not take part).
    fn cap<'a>(s: &'a str, caps: &Caps, slot: usize) -> Option<&'a str> {
        caps[slot].map(|(a, b)| &s[a..b])
    }

    /// JavaScript `s.replace(globalRegex, f)`. None of the global
    /// expressions here can match the empty string.
    fn replace_all(re: &Re, s: &str, mut f: impl FnMut(&Caps) -> String) -> String {
        let bytes = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        while let Some((start, end, caps)) = find(re, bytes, last) {
            debug_assert!(end > start);
            out.push_str(&s[last..start]);
            out.push_str(&f(&caps));
            last = end;
        }
        out.push_str(&s[last..]);
        out
    }

    /// ECMAScript `WhiteSpace` and `LineTerminator`: what `\s` and `trim()` know.
    pub(super) fn is_js_space(c: char) -> bool {
        matches!(
            c,
            '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
                ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
        )
    }

    /// `range.trim().replace(/\s+/g, ' ')`
    fn normalize_space(input: &str) -> String {
        let mut out = String::with_capacity(input.len());
        let mut in_space = false;
        for c in input.trim_matches(is_js_space).chars() {
            if is_js_space(c) {
                if !in_space {
                    out.push(' ');
                }
                in_space = true;
            } else {
                out.push(c);
                in_space = false;
            }
        }
        out
    }

    /// `s.split(/\s+/)` on whitespace-normalized text.
    fn split_space(s: &str) -> Vec<&str> {
        let bytes = s.as_bytes();
        let mut pieces = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b' ' {
                pieces.push(&s[start..i]);
                while i < bytes.len() && bytes[i] == b' ' {
                    i += 1;
                }
                start = i;
            } else {
                i += 1;
            }
        }
        pieces.push(&s[start..]);
        pieces
    }

    /// node's `isX`: a missing, `x`, `X` or `*` part.
    fn is_x(part: Option<&str>) -> bool {
        matches!(part, None | Some("" | "x" | "X" | "*"))
    }

    /// `` `${+n + 1}` `` for a captured number; `None` when the result would be
    /// above `MAX_SAFE_INTEGER`, which node then rejects when it parses the
    /// comparator the number ends up in (so the whole range is invalid).
    fn inc(n: Option<&str>) -> Option<String> {
        let n = n?;
        if n.len() > 16 {
            return None;
        }
        let v: u64 = n.parse().ok()?;
        (v < MAX_SAFE_INTEGER).then(|| (v + 1).to_string())
    }

    /// The whole range: `None` where node-semver throws.
    pub(super) fn parse_range(input: &str) -> Option<Vec<Vec<Comparator>>> {
        let raw = normalize_space(input);
        let mut sets = raw.split("||").map(|part| parse_set(part.trim_matches(' '))).collect::<Option<Vec<_>>>()?;
        if sets.len() > 1 {
            // throw out null sets, unless they are all null; a "*" set wins
            let first = sets[0].clone();
            sets.retain(|set| !matches!(&set[..], [c] if c.is_null()));
            if sets.is_empty() {
                sets.push(first);
            } else if sets.len() > 1 && sets.iter().any(Vec::is_empty) {
                sets = vec![Vec::new()];
            }
        }
        Some(sets)
    }

    /// `Range#parseRange` for one `||` alternative. An empty result means
    /// node's `[ANY]` comparator set.
    fn parse_set(range: &str) -> Option<Vec<Comparator>> {
        let res = regexes();
        let mut range = strip_build(range);
        // The rewrites below are skipped where they cannot change anything:
        // a hyphen range needs ` - `, and the trims only ever delete a space
        // that follows one of `<>= ` (comparator trim), `~`, `~>` or `^`.
        if range.contains(" - ") {
            range = hyphen_replace(&range)?;
        }
        if ["< ", "> ", "= ", "  "].iter().any(|p| range.contains(p)) {
            let s = range.as_str();
            range = replace_all(&res.comparator_trim, s, |caps| (0..3).filter_map(|slot| cap(s, caps, slot)).collect());
        }
        if range.contains("~ ") || range.contains("~> ") {
            let s = range.as_str();
            range = replace_all(&res.tilde_trim, s, |caps| format!("{}~", cap(s, caps, 0).unwrap_or("")));
        }
        if range.contains("^ ") {
            let s = range.as_str();
            range = replace_all(&res.caret_trim, s, |caps| format!("{}^", cap(s, caps, 0).unwrap_or("")));
        }
        let mut desugared = Vec::new();
        for token in range.split(' ') {
            desugared.push(parse_comparator(token)?);
        }
        let desugared = desugared.join(" ");
        let mut comparators = Vec::new();
        // Empty pieces and `>=0.0.0` are node's ANY comparator, dropped
        // when there are others and otherwise meaning "any version".
        for piece in split_space(&desugared) {
            if !piece.is_empty() && piece != ">=0.0.0" {
                comparators.push(comparator(piece)?);
            }
        }
        Some(super::comparator_set(comparators))
    }

    /// `range.replace(new RegExp(src[t.BUILD], 'g'), '')`: removes every
    /// `+ident(.ident)*`, wherever it is.
    fn strip_build(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let (mut last, mut i) = (0, 0);
        while i < b.len() {
            if b[i] == b'+' && i + 1 < b.len() && IDENT.has(b[i + 1]) {
                let mut j = i + 1;
                while j < b.len() && IDENT.has(b[j]) {
                    j += 1;
                }
                while j + 1 < b.len() && b[j] == b'.' && IDENT.has(b[j + 1]) {
                    j += 1;
                    while j < b.len() && IDENT.has(b[j]) {
                        j += 1;
                    }
                }
                out.push_str(&s[last..i]);
                last = j;
                i = j;
            } else {
                i += 1;
            }
        }
        out.push_str(&s[last..]);
        out
    }

    /// `hyphenReplace`: `1.2 - 3.4` to `>=1.2.0 <3.5.0-0`.
    fn hyphen_replace(s: &str) -> Option<String> {
        let Some((_, caps)) = match_at(&regexes().hyphen, s.as_bytes(), 0) else {
            return Some(s.to_string());
        };
        let c = |slot| cap(s, &caps, slot);
        let (from, f_major, f_minor, f_patch) = (c(0).unwrap_or(""), c(1), c(2), c(3));
        let (to, t_major, t_minor, t_patch, t_pre) = (c(5).unwrap_or(""), c(6), c(7), c(8), c(9));
        let from = if is_x(f_major) {
            String::new()
        } else if is_x(f_minor) {
            format!(">={}.0.0", f_major?)
        } else if is_x(f_patch) {
            format!(">={}.{}.0", f_major?, f_minor?)
        } else {
            format!(">={from}")
        };
        let to = if is_x(t_major) {
            String::new()
        } else if is_x(t_minor) {
            format!("<{}.0.0-0", inc(t_major)?)
        } else if is_x(t_patch) {
            format!("<{}.{}.0-0", t_major?, inc(t_minor)?)
        } else if let Some(pre) = t_pre {
            format!("<={}.{}.{}-{pre}", t_major?, t_minor?, t_patch?)
        } else {
            format!("<={to}")
        };
        Some(format!("{from} {to}").trim_matches(' ').to_string())
    }

    /// `parseComparator` for one space-free token.
    fn parse_comparator(token: &str) -> Option<String> {
        let comp = caret_replace(token)?;
        let comp = map_pieces(&comp, tilde_replace)?;
        let comp = map_pieces(&comp, xrange_replace)?;
        Some(star_replace(comp.trim_matches(' ')))
    }

    /// `comp.split(/\s+/).map(f).join(' ')`
    fn map_pieces(comp: &str, f: fn(&str) -> Option<String>) -> Option<String> {
        let pieces = split_space(comp.trim_matches(' ')).into_iter().map(f).collect::<Option<Vec<_>>>()?;
        Some(pieces.join(" "))
    }

    /// `replaceCaret`
    fn caret_replace(comp: &str) -> Option<String> {
        let Some((_, caps)) = match_at(&regexes().caret, comp.as_bytes(), 0) else {
            return Some(comp.to_string());
        };
        let c = |slot| cap(comp, &caps, slot);
        let (major, minor, patch, pre) = (c(0), c(1), c(2), c(3));
        Some(if is_x(major) {
            String::new()
        } else if is_x(minor) {
            format!(">={}.0.0 <{}.0.0-0", major?, inc(major)?)
        } else if is_x(patch) {
            let (major, minor) = (major?, minor?);
            if major == "0" {
                format!(">={major}.{minor}.0 <{major}.{}.0-0", inc(Some(minor))?)
            } else {
                format!(">={major}.{minor}.0 <{}.0.0-0", inc(Some(major))?)
            }
        } else {
            let (major, minor, patch) = (major?, minor?, patch?);
            let pre = pre.map(|p| format!("-{p}")).unwrap_or_default();
            let upper = if major == "0" {
                if minor == "0" {
                    format!("{major}.{minor}.{}-0", inc(Some(patch))?)
                } else {
                    format!("{major}.{}.0-0", inc(Some(minor))?)
                }
            } else {
                format!("{}.0.0-0", inc(Some(major))?)
            };
            format!(">={major}.{minor}.{patch}{pre} <{upper}")
        })
    }

    /// `replaceTilde`
    fn tilde_replace(comp: &str) -> Option<String> {
        let Some((_, caps)) = match_at(&regexes().tilde, comp.as_bytes(), 0) else {
            return Some(comp.to_string());
        };
        let c = |slot| cap(comp, &caps, slot);
        let (major, minor, patch, pre) = (c(0), c(1), c(2), c(3));
        Some(if is_x(major) {
            String::new()
        } else if is_x(minor) {
            format!(">={}.0.0 <{}.0.0-0", major?, inc(major)?)
        } else if is_x(patch) {
            format!(">={}.{}.0 <{}.{}.0-0", major?, minor?, major?, inc(minor)?)
        } else {
            let pre = pre.map(|p| format!("-{p}")).unwrap_or_default();
            format!(">={}.{}.{}{pre} <{}.{}.0-0", major?, minor?, patch?, major?, inc(minor)?)
        })
    }

    /// `replaceXRange`
    fn xrange_replace(comp: &str) -> Option<String> {
        let comp = comp.trim_matches(' ');
        let Some((_, caps)) = match_at(&regexes().xrange, comp.as_bytes(), 0) else {
            return Some(comp.to_string());
        };
        let c = |slot| cap(comp, &caps, slot);
        let (mut op, major, minor, patch) = (c(0).unwrap_or(""), c(1), c(2), c(3));
        // invalidXRangeOrder: leave `x.1`, `1.x.2` alone, to fail later
        if (is_x(major) && !is_x(minor)) || (is_x(minor) && patch.is_some_and(|p| !p.is_empty()) && !is_x(patch)) {
            return Some(comp.to_string());
        }
        let x_major = is_x(major);
        let x_minor = x_major || is_x(minor);
        let x_patch = x_minor || is_x(patch);
        if op == "=" && x_patch {
            op = "";
        }
        Some(if x_major {
            if op == ">" || op == "<" {
                "<0.0.0-0".to_string()
            } else {
                "*".to_string()
            }
        } else if !op.is_empty() && x_patch {
            let mut major = major?.to_string();
            let mut minor = if x_minor { "0".to_string() } else { minor?.to_string() };
            if op == ">" {
                op = ">=";
                if x_minor {
                    major = inc(Some(&major))?;
                } else {
                    minor = inc(Some(&minor))?;
                }
            } else if op == "<=" {
                op = "<";
                if x_minor {
                    major = inc(Some(&major))?;
                } else {
                    minor = inc(Some(&minor))?;
                }
            }
            let pre = if op == "<" { "-0" } else { "" };
            format!("{op}{major}.{minor}.0{pre}")
        } else if x_minor {
            format!(">={}.0.0 <{}.0.0-0", major?, inc(major)?)
        } else if x_patch {
            format!(">={}.{}.0 <{}.{}.0-0", major?, minor?, major?, inc(minor)?)
        } else {
            comp.to_string()
        })
    }

    /// `replaceStars`: removes the first `(<|>)?=?\s?\*`.
    fn star_replace(comp: &str) -> String {
        if !comp.contains('*') {
            return comp.to_string();
        }
        match find(&regexes().star, comp.as_bytes(), 0) {
            Some((start, end, _)) => format!("{}{}", &comp[..start], &comp[end..]),
            None => comp.to_string(),
        }
    }

    /// `new Comparator(token)` for a non-empty, space-free token.
    fn comparator(token: &str) -> Option<Comparator> {
        let (_, caps) = match_at(&regexes().comparator, token.as_bytes(), 0)?;
        let c = |slot| cap(token, &caps, slot);
        let op = match c(0)? {
            "" | "=" => Op::Eq,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            _ => Op::Ge,
        };
        if c(1)?.len() > MAX_VERSION_LEN {
            return None;
        }
        let number = |s: &str| -> Option<u64> {
            let v: u64 = if s.len() > 16 {
                return None;
            } else {
                s.parse().ok()?
            };
            (v <= MAX_SAFE_INTEGER).then_some(v)
        };
        Some(Comparator {
            op,
            major: number(c(2)?)?,
            minor: number(c(3)?)?,
            patch: number(c(4)?)?,
            pre: match c(5) {
                Some(pre) => Prerelease::new(pre).ok()?,
                None => Prerelease::EMPTY,
            },
        })
    }
}

/// Finds, for an input node-semver rejects, the first spot that is wrong,
/// by reading it with a plain (quirk-free) grammar of ranges.
mod diagnose {
    use super::node::is_js_space;
    use super::MAX_SAFE_INTEGER;
    use crate::error::ParseErrorKind;

    type Diag<T = ()> = Result<T, ParseErrorKind>;

    pub(super) fn diagnose(input: &str) -> ParseErrorKind {
        let mut reader = Reader { s: input, i: 0, largest: None };
        match reader.range() {
            Err(kind) => kind,
            // `^9007199254740991` is rejected because its upper bound is
            // 2^53, beyond what node-semver accepts.
            Ok(()) if reader.largest.is_some() => ParseErrorKind::InvalidNumber { at: reader.largest.unwrap_or(0) },
            Ok(()) => ParseErrorKind::Other(
                "not a range node-semver accepts (its grammar has quirks, \
                 e.g. `v=1.2.3` or `=1.2.3 - 2` are rejected)"
                    .to_string(),
            ),
        }
    }

    struct Reader<'a> {
        s: &'a str,
        i: usize,
        /// Where the first number equal to 2^53 - 1 starts, if any.
        largest: Option<usize>,
    }

    impl Reader<'_> {
        fn peek(&self) -> Option<char> {
            self.s[self.i..].chars().next()
        }

        fn peek_at(&self, ahead: usize) -> Option<u8> {
            self.s.as_bytes().get(self.i + ahead).copied()
        }

        fn unexpected(&self) -> ParseErrorKind {
            match self.peek() {
                Some(found) => ParseErrorKind::UnexpectedChar { found, at: self.i },
                None => ParseErrorKind::UnexpectedEnd,
            }
        }

        fn skip_space(&mut self) -> bool {
            let start = self.i;
            while let Some(c) = self.peek().filter(|&c| is_js_space(c)) {
                self.i += c.len_utf8();
            }
            self.i > start
        }

        fn at_set_end(&self) -> bool {
            self.i == self.s.len() || self.s[self.i..].starts_with("||")
        }

        fn range(&mut self) -> Diag {
            loop {
                self.set()?;
                if self.i == self.s.len() {
                    return Ok(());
                }
                self.i += 2; // "||"
            }
        }

        fn set(&mut self) -> Diag {
            self.skip_space();
            let mut items = 0;
            let mut first_plain = false;
            while !self.at_set_end() {
                if self.peek() == Some('-') && items == 1 && first_plain {
                    // hyphen range: `a - b`, and nothing after b
                    let dash = self.i;
                    self.i += 1;
                    if !self.skip_space() {
                        self.i = dash;
                        return Err(self.unexpected());
                    }
                    if self.at_set_end() {
                        return Err(if self.i == self.s.len() {
                            ParseErrorKind::UnexpectedEnd
                        } else {
                            self.unexpected()
                        });
                    }
                    self.partial()?;
                    self.skip_space();
                    if !self.at_set_end() {
                        return Err(self.unexpected());
                    }
                    return Ok(());
                }
                first_plain = self.item()? && items == 0;
                items += 1;
                if !self.skip_space() && !self.at_set_end() {
                    return Err(self.unexpected());
                }
            }
            Ok(())
        }

        /// One comparator-like item; `true` when it had no operator.
        fn item(&mut self) -> Diag<bool> {
            let op_len = match (self.peek_at(0), self.peek_at(1)) {
                (Some(b'<' | b'>'), Some(b'=')) | (Some(b'~'), Some(b'>')) => 2,
                (Some(b'<' | b'>' | b'=' | b'~' | b'^'), _) => 1,
                _ => 0,
            };
            self.i += op_len;
            if op_len > 0 {
                self.skip_space();
                if self.i == self.s.len() {
                    return Err(ParseErrorKind::UnexpectedEnd);
                }
            }
            self.partial()?;
            Ok(op_len == 0)
        }

        /// `[v=]* part(.part(.part(-pre)?)?)? (+build)?`
        fn partial(&mut self) -> Diag {
            while matches!(self.peek_at(0), Some(b'v' | b'=')) {
                self.i += 1;
            }
            let mut wildcard = false;
            for index in 0..3 {
                if index > 0 {
                    if self.peek_at(0) != Some(b'.') {
                        break;
                    }
                    self.i += 1;
                }
                match self.peek_at(0) {
                    Some(b'x' | b'X' | b'*') => {
                        wildcard = true;
                        self.i += 1;
                    }
                    Some(b'0'..=b'9') if wildcard => return Err(self.unexpected()),
                    Some(b'0'..=b'9') => self.number()?,
                    _ => return Err(self.unexpected()),
                }
                if index == 2 && self.peek_at(0) == Some(b'-') {
                    self.i += 1;
                    self.identifiers(true)?;
                }
            }
            if self.peek_at(0) == Some(b'+') {
                self.i += 1;
                self.identifiers(false)?;
            }
            match self.peek() {
                None => Ok(()),
                Some(c) if is_js_space(c) || self.at_set_end() => Ok(()),
                Some(_) => Err(self.unexpected()),
            }
        }

        fn number(&mut self) -> Diag {
            let start = self.i;
            let b = self.s.as_bytes();
            while self.i < b.len() && b[self.i].is_ascii_digit() {
                self.i += 1;
            }
            let digits = &self.s[start..self.i];
            let too_big = digits.len() > 16 || digits.parse::<u64>().map_or(true, |v| v > MAX_SAFE_INTEGER);
            if (digits.len() > 1 && digits.starts_with('0')) || too_big {
                return Err(ParseErrorKind::InvalidNumber { at: start });
            }
            if digits == MAX_SAFE_INTEGER.to_string() && self.largest.is_none() {
                self.largest = Some(start);
            }
            Ok(())
        }

        /// Dot-separated `[0-9A-Za-z-]+`; prerelease numbers have no leading zero.
        fn identifiers(&mut self, prerelease: bool) -> Diag {
            let b = self.s.as_bytes();
            loop {
                let start = self.i;
                while self.i < b.len() && (b[self.i].is_ascii_alphanumeric() || b[self.i] == b'-') {
                    self.i += 1;
                }
                let id = &self.s[start..self.i];
                let leading_zero = id.len() > 1 && id.starts_with('0') && id.bytes().all(|c| c.is_ascii_digit());
                if id.is_empty() || (prerelease && leading_zero) {
                    return Err(ParseErrorKind::InvalidIdentifier { at: start });
                }
                if self.peek_at(0) != Some(b'.') {
                    return Ok(());
                }
                self.i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn range(s: &str) -> VersionRange {
        VersionRange::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn version(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn kind(s: &str) -> ParseErrorKind {
        match VersionRange::parse(s) {
            Ok(r) => panic!("{s:?} should not parse, got {r}"),
            Err(e) => {
                assert_eq!(e.what(), "version range");
                e.kind().clone()
            }
        }
    }

    /// What each form desugars to (node-semver's `validRange`, with ` || `).
    #[test]
    fn desugaring() {
        let cases = [
            ("", "*"),
            ("   ", "*"),
            ("*", "*"),
            ("x", "*"),
            ("X", "*"),
            ("x.X.*", "*"),
            (">=0.0.0", "*"),
            (">=*", "*"),
            ("=*", "*"),
            ("<=x", "*"),
            ("||", "*"),
            ("1.2.3 ||", "*"),
            ("* || >=1.2.3-beta", "*"),
            ("1.2.3", "1.2.3"),
            ("=1.2.3", "1.2.3"),
            ("v1.2.3", "1.2.3"),
            ("=v1.2.3", "1.2.3"),
            ("  =  1.2.3  ", "1.2.3"),
            ("1.2.3+build.5", "1.2.3"),
            ("1", ">=1.0.0 <2.0.0-0"),
            ("1.x", ">=1.0.0 <2.0.0-0"),
            ("1.X.*", ">=1.0.0 <2.0.0-0"),
            ("1.2", ">=1.2.0 <1.3.0-0"),
            ("1.2.*", ">=1.2.0 <1.3.0-0"),
            ("1.2.x-alpha", ">=1.2.0 <1.3.0-0"),
            (">1", ">=2.0.0"),
            (">1.x", ">=2.0.0"),
            (">1.2", ">=1.3.0"),
            (">=1.2", ">=1.2.0"),
            ("<1.2", "<1.2.0-0"),
            ("<1.x", "<1.0.0-0"),
            ("<=1.2", "<1.3.0-0"),
            ("<=1", "<2.0.0-0"),
            ("=1.2", ">=1.2.0 <1.3.0-0"),
            (">*", "<0.0.0-0"),
            ("<X", "<0.0.0-0"),
            ("<x <* || >* 2.x", "<0.0.0-0"),
            ("<0.0.0-0 || 1.2.3", "1.2.3"),
            ("~1.2.3", ">=1.2.3 <1.3.0-0"),
            ("~>1.2.3", ">=1.2.3 <1.3.0-0"),
            ("~> 1.2.3", ">=1.2.3 <1.3.0-0"),
            ("~ 1.2.3", ">=1.2.3 <1.3.0-0"),
            ("~1.2", ">=1.2.0 <1.3.0-0"),
            ("~1", ">=1.0.0 <2.0.0-0"),
            ("~0.0.1", ">=0.0.1 <0.1.0-0"),
            ("~2.0.0-rc.1", ">=2.0.0-rc.1 <2.1.0-0"),
            ("~v0.5.4-pre", ">=0.5.4-pre <0.6.0-0"),
            ("~x", "*"),
            ("^1.2.3", ">=1.2.3 <2.0.0-0"),
            ("^ 1.2.3", ">=1.2.3 <2.0.0-0"),
            ("^0.2.3", ">=0.2.3 <0.3.0-0"),
            ("^0.0.3", ">=0.0.3 <0.0.4-0"),
            ("^0.0.1-beta", ">=0.0.1-beta <0.0.2-0"),
            ("^1.2.3-beta.2", ">=1.2.3-beta.2 <2.0.0-0"),
            ("^1.2", ">=1.2.0 <2.0.0-0"),
            ("^1.x", ">=1.0.0 <2.0.0-0"),
            ("^0.1", ">=0.1.0 <0.2.0-0"),
            ("^0.0.x", "<0.1.0-0"),
            ("^0.x", "<1.0.0-0"),
            ("^0", "<1.0.0-0"),
            ("^0.0.0", "<0.0.1-0"),
            ("^1.x.3", ">=1.0.0 <2.0.0-0"),
            ("^x", "*"),
            ("^ 1.2 ^ 1", ">=1.2.0 <2.0.0-0 >=1.0.0"),
            ("1.2 - 2.3.4", ">=1.2.0 <=2.3.4"),
            ("1.2.3 - 2", ">=1.2.3 <3.0.0-0"),
            ("1.2.3 - 2.3", ">=1.2.3 <2.4.0-0"),
            ("1.2.3-pre+asdf - 2.4.3-pre+asdf", ">=1.2.3-pre <=2.4.3-pre"),
            ("x - 2.3.4", "<=2.3.4"),
            ("1.x - x", ">=1.0.0"),
            ("0.0.0 - 1", "<2.0.0-0"),
            (">= 1.2.3", ">=1.2.3"),
            (">=1.2.3 <1.2.3", ">=1.2.3 <1.2.3"),
            ("1.2.3 1.2.3 >=1.2.3", "1.2.3 >=1.2.3"),
            ("0.1.20 || 1.2.4", "0.1.20 || 1.2.4"),
            ("1.x || >=2.5.0 || 5.0.0 - 7.2.3", ">=1.0.0 <2.0.0-0 || >=2.5.0 || >=5.0.0 <=7.2.3"),
            ("<\t2.0.0", "<2.0.0"),
            ("1.2.3\u{a0}||\u{2028}2", "1.2.3 || >=2.0.0 <3.0.0-0"),
            ("\u{feff}1.2.3", "1.2.3"),
            // node quirks
            ("1.2.3*", "1.2.3"),
            ("1.2.3-beta+*b", "1.2.3-beta"),
            ("v=1.2", ">=1.2.0 <1.3.0-0"),
            ("1.2+x.3", ">=1.2.0 <1.3.0-0"),
            (">=v0.0.0", ">=v0.0.0"),
            ("<=0.0.0-beta >=0.0.0", "<=0.0.0-beta"),
            ("1.2.3 - = 2", ">=1.2.3 <3.0.0-0"),
            ("1.2.3 > 2", "1.2.3 >=3.0.0"),
            ("^1.x.99999999999999999999", ">=1.0.0 <2.0.0-0"),
            ("^9007199254740990", ">=9007199254740990.0.0 <9007199254740991.0.0-0"),
        ];
        let mut wrong = Vec::new();
        for (input, want) in cases {
            match VersionRange::parse(input) {
                Ok(r) if r.to_string() == want => {
                    assert_eq!(range(want), r, "{want:?} parses back to the range of {input:?}");
                }
                Ok(r) => wrong.push(format!("{input:?}: got {:?}, want {want:?}", r.to_string())),
                Err(e) => wrong.push(format!("{input:?}: {e}")),
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn matching_and_prereleases() {
        let cases = [
            ("^1.2.3", "1.2.3", true),
            ("^1.2.3", "1.9.9", true),
            ("^1.2.3", "2.0.0", false),
            ("^1.2.3", "2.0.0-0", false),
            ("^1.2.3", "1.2.4-beta", false),
            ("^1.2.3-beta.2", "1.2.3-beta.4", true),
            ("^1.2.3-beta.2", "1.2.3-beta.1", false),
            ("^1.2.3-beta.2", "1.2.4-beta.4", false),
            ("^1.2.3-beta.2", "1.2.3", true),
            ("~2.0.0-rc.1", "2.0.0-rc.2", true),
            ("~2.0.0-rc.1", "2.0.1-rc.2", false),
            (">1.2.3-alpha.3", "1.2.3-alpha.7", true),
            (">1.2.3-alpha.3", "1.2.3-alpha.10", true),
            (">1.2.3-alpha.3", "1.2.3-alpha.2", false),
            (">1.2.3-alpha.3", "1.2.3-beta", true),
            (">1.2.3-alpha.3", "3.4.5-alpha.9", false),
            (">1.2.3-alpha.3", "3.4.5", true),
            ("*", "1.0.0-rc1", false),
            (">=0.0.0", "0.0.0-alpha", false),
            ("<=0.0.0-beta >=0.0.0", "0.0.0-alpha", true),
            ("<=0.0.0-beta >=v0.0.0", "0.0.0-alpha", false),
            ("* || >=1.2.3-beta", "1.2.3-beta", false),
            (">=1.2.3-beta || 2.x", "1.2.3-beta", true),
            ("<2.0.0-0", "2.0.0-alpha", false),
            (">=2.0.0-0", "2.0.0-alpha", true),
            ("1.2.3 - 2", "3.0.0-0", false),
            ("1.2.3 - 2", "2.9.9", true),
            (">=1.2.3 <1.2.3", "1.2.3", false),
            ("1.2.3 ||", "5.0.0", true),
            ("1.2.3+build.5", "1.2.3+other", true),
            ("1.2.3-x", "1.2.3-x", true),
            ("1.2.3-a.10", "1.2.3-a.9", false),
            (">1.2.3-a.9", "1.2.3-a.10", true),
            (">1.2.3-a.b", "1.2.3-a.10", false),
            (">1.2.3-a", "1.2.3-a.0", true),
            (">1.2.3-A", "1.2.3-a", true),
            // numeric identifiers compare as JavaScript doubles
            ("<=1.2.3-9007199254740992", "1.2.3-9007199254740993", true),
            (">=1.2.3-9007199254740993", "1.2.3-9007199254740992", true),
            ("<1.2.3-9007199254740992", "1.2.3-9007199254740991", true),
            // versions node-semver cannot represent match nothing
            ("*", "9007199254740991.0.0", true),
            ("*", "9007199254740992.0.0", false),
            ("*", "0.0.9007199254740992", false),
        ];
        for (r, v, want) in cases {
            assert_eq!(range(r).matches(&version(v)), want, "satisfies({v}, {r:?})");
        }
        let long = format!("1.0.0+{}", "b".repeat(251));
        assert!(!range("*").matches(&version(&long)), "longer than 256 bytes");
        assert!(range("*").matches(&version(&long[..256])));
    }

    #[test]
    fn error_kinds() {
        use ParseErrorKind::*;
        let cases = [
            ("1.2.3.4", UnexpectedChar { found: '.', at: 5 }),
            (">>1.2.3", UnexpectedChar { found: '>', at: 1 }),
            ("~1.2.3.4", UnexpectedChar { found: '.', at: 6 }),
            ("- 1.2.3", UnexpectedChar { found: '-', at: 0 }),
            ("blerg", UnexpectedChar { found: 'b', at: 0 }),
            ("01.2.3x", InvalidNumber { at: 0 }),
            ("^01.02", InvalidNumber { at: 1 }),
            ("1.2.3 || abc", UnexpectedChar { found: 'a', at: 9 }),
            ("1.2.3 &&", UnexpectedChar { found: '&', at: 6 }),
            ("1.2.3 | 2", UnexpectedChar { found: '|', at: 6 }),
            ("1.2.3é", UnexpectedChar { found: 'é', at: 5 }),
            ("1.x.2", UnexpectedChar { found: '2', at: 4 }),
            ("x.1", UnexpectedChar { found: '1', at: 2 }),
            ("1.2.3 - 2 - 3", UnexpectedChar { found: '-', at: 10 }),
            (">=", UnexpectedEnd),
            ("~", UnexpectedEnd),
            ("1.2.", UnexpectedEnd),
            ("1.2.3 - ", UnexpectedEnd),
            ("99999999999999999999", InvalidNumber { at: 0 }),
            ("1.2.9007199254740992", InvalidNumber { at: 4 }),
            ("^9007199254740991", InvalidNumber { at: 1 }),
            ("1.2.3-01", InvalidIdentifier { at: 6 }),
            ("1.2.3-", InvalidIdentifier { at: 6 }),
            ("1.2.3+a.", InvalidIdentifier { at: 8 }),
        ];
        for (input, want) in cases {
            assert_eq!(kind(input), want, "{input:?}");
        }
        assert!(matches!(kind("v=1.2.3"), Other(_)));
        assert!(matches!(kind("=1.2.3 - 2.0.0"), UnexpectedChar { found: '-', at: 7 }));
        let err = VersionRange::parse("1.2.3 &&").unwrap_err();
        assert_eq!(err.input(), "1.2.3 &&");
        assert_eq!(err.to_string(), "invalid version range \"1.2.3 &&\": unexpected character '&' at byte 6");
    }

    #[test]
    fn too_long() {
        let ok = format!("{}1.2.3", " ".repeat(1019));
        assert_eq!(ok.len(), 1024);
        assert_eq!(range(&ok).to_string(), "1.2.3");
        let long = format!("{}1.2.3", " ".repeat(1020));
        assert_eq!(kind(&long), ParseErrorKind::TooLong { max: 1024 });
    }

    #[test]
    fn equality_hash_and_from_str() {
        use std::collections::hash_map::DefaultHasher;
        use std::hash::{Hash, Hasher};
        let hash = |r: &VersionRange| {
            let mut h = DefaultHasher::new();
            r.hash(&mut h);
            h.finish()
        };
        let a: VersionRange = "^1.2.3".parse().unwrap();
        let b = range(">=1.2.3 <2.0.0-0");
        assert_eq!(a, b);
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(a, range("~1.2.3"));
        assert_eq!(range("*"), range(""));
        assert_eq!(range("x || 1.2.3"), range("*"));
    }

    #[test]
    fn pathological_inputs_are_quick() {
        let inputs = [
            "v".repeat(1024),
            " v".repeat(512),
            "=".repeat(1024),
            "> ".repeat(512),
            " =v".repeat(341),
            "1.2.3 - ".repeat(128),
            format!("1.1.1-{}", "a.".repeat(509)),
            format!("^1.x.1-{}", "a.".repeat(508)),
            "||".repeat(512),
        ];
        for input in &inputs {
            let start = std::time::Instant::now();
            let _ = VersionRange::parse(input);
            assert!(start.elapsed().as_secs() < 2, "{:?}...", &input[..10]);
        }
    }

    /// Ranges in the fast path's subset, and some just outside it.
    fn arb_simple_range() -> impl Strategy<Value = String> {
        let op = prop::sample::select(vec!["", "", "<", ">", "<=", ">=", "=", "~", "~>", "^", "v", "=v", "> "]);
        let part = prop::sample::select(vec![
            "0",
            "1",
            "2",
            "3",
            "9",
            "10",
            "x",
            "X",
            "*",
            "01",
            "123456789",
            "999999999",
            "1234567890",
            "",
            "1-beta",
        ]);
        let token = (op, prop::collection::vec(part, 1..=4)).prop_map(|(op, parts)| format!("{op}{}", parts.join(".")));
        let sep = prop::sample::select(vec![" ", " ", " ", "  ", " || ", "\t"]);
        (prop::collection::vec(token, 1..5), sep).prop_map(|(tokens, sep)| tokens.join(sep))
    }

    #[test]
    fn fast_path_covers_the_common_forms() {
        for input in ["1.2.3", "^1.2.0", "~1.2.3", "1.x", ">=1.2.0 <2.0.0", "^0.0.3", "~>1.2", "<x", "*", "=1.2"] {
            assert!(simple::parse_set(input).is_some(), "{input:?}");
        }
        for input in ["", "1.2.3 || 2", "1.2 - 2.3.4", "1.2.3-beta", "v1.2.3", "1.2.3+b", " 1.2.3", "<=*", "^x.1"] {
            assert!(simple::parse_set(input).is_none(), "{input:?}");
        }
    }

    /// Every single token, and every pair of short tokens, from a small alphabet.
    #[test]
    fn fast_path_agrees_with_node_exhaustively() {
        let ops = ["", "=", "<", "<=", ">", ">=", "^", "~", "~>", "v"];
        let parts = ["0", "1", "9", "x", "*"];
        let mut versions: Vec<String> = Vec::new();
        for a in parts {
            versions.push(a.to_string());
            for b in parts {
                versions.push(format!("{a}.{b}"));
                for c in parts {
                    versions.push(format!("{a}.{b}.{c}"));
                }
            }
        }
        let tokens: Vec<String> = ops.iter().flat_map(|op| versions.iter().map(move |v| format!("{op}{v}"))).collect();
        let short: Vec<&String> = tokens.iter().filter(|t| t.matches('.').count() <= 1).collect();
        let pairs = short.iter().flat_map(|a| short.iter().map(move |b| format!("{a} {b}")));
        let mut fast = 0;
        for input in tokens.iter().cloned().chain(pairs) {
            if let Some(set) = simple::parse_set(&input) {
                fast += 1;
                assert_eq!(Some(vec![set]), node::parse_range(&input), "{input:?}");
            }
        }
        assert!(fast > 30_000, "only {fast} inputs took the fast path");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn fast_path_agrees_with_node(s in arb_simple_range()) {
            if let Some(set) = simple::parse_set(&s) {
                prop_assert_eq!(Some(vec![set]), node::parse_range(&s), "{:?}", s);
            }
        }

        #[test]
        fn fast_path_agrees_with_node_on_arbitrary_ranges(s in arb_range()) {
            if let Some(set) = simple::parse_set(&s) {
                prop_assert_eq!(Some(vec![set]), node::parse_range(&s), "{:?}", s);
            }
        }
    }

    fn arb_partial() -> impl Strategy<Value = String> {
        let part = prop::sample::select(vec!["0", "1", "2", "3", "10", "x", "X", "*"]);
        let pre = prop::sample::select(vec!["alpha", "beta.1", "0", "rc.2", "x", "1"]);
        let prefix = prop::sample::select(vec!["", "", "", "v", "=", "=v"]);
        (
            prefix,
            prop::collection::vec(part, 1..=3),
            prop::option::of(pre),
            prop::option::weighted(0.1, Just("+build.5")),
        )
            .prop_map(|(prefix, parts, pre, build)| {
                let mut s = format!("{prefix}{}", parts.join("."));
                if let (3, Some(pre)) = (parts.len(), pre) {
                    s = format!("{s}-{pre}");
                }
                s + build.unwrap_or("")
            })
    }

    fn arb_range() -> impl Strategy<Value = String> {
        let op = prop::sample::select(vec!["", "", "<", ">", "<=", ">=", "=", "~", "~>", "^", ">= ", "~ ", "^ ", "< "]);
        let comparator = (op, arb_partial()).prop_map(|(op, p)| format!("{op}{p}"));
        let set = prop_oneof![
            4 => prop::collection::vec(comparator, 0..4).prop_map(|v| v.join(" ")),
            1 => (arb_partial(), arb_partial()).prop_map(|(a, b)| format!("{a} - {b}")),
        ];
        prop::collection::vec(set, 1..4).prop_map(|v| v.join(" || "))
    }

    fn arb_version() -> impl Strategy<Value = Version> {
        let pre = prop::sample::select(vec!["", "", "", "0", "alpha", "alpha.1", "beta", "rc.2", "x", "1"]);
        (0u64..4, 0u64..4, 0u64..11, pre).prop_map(|(major, minor, patch, pre)| Version {
            major,
            minor,
            patch,
            pre: Prerelease::new(pre).unwrap(),
            build: semver::BuildMetadata::EMPTY,
        })
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,64}") {
            let _ = VersionRange::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_range_alphabet(s in "[0-9xX*.<>=~^|v +a-]{0,48}") {
            if let Ok(r) = VersionRange::parse(&s) {
                prop_assert_eq!(VersionRange::parse(&r.to_string()), Ok(r));
            }
        }

        #[test]
        fn display_round_trips(s in arb_range(), versions in prop::collection::vec(arb_version(), 16)) {
            if let Ok(r) = VersionRange::parse(&s) {
                let shown = r.to_string();
                let again = VersionRange::parse(&shown);
                prop_assert!(again.is_ok(), "{:?} printed as {:?}, which does not parse", s, shown);
                let again = again.unwrap();
                prop_assert_eq!(&again, &r, "{:?} printed as {:?}", s, shown);
                prop_assert_eq!(&again.to_string(), &shown);
                for v in &versions {
                    prop_assert_eq!(again.matches(v), r.matches(v), "{} against {:?} / {:?}", v, s, shown);
                }
            }
        }
    }
}
