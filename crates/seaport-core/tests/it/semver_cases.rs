//! Conformance with node-semver: every case of the shared node-semver tables,
//! and of the larger tables in `tests/data/` built from node-semver's own test
//! fixtures, must agree with [`VersionRange`].
//!
//! Table formats (lines starting with `#` are comments, empty lines are skipped):
//!
//! * `*-cases.tsv`, `semver-extra.tsv`: `range<TAB>version<TAB>true|false`, the
//!   answer of node-semver's `satisfies(version, range)` with default options
//!   (an invalid range satisfies nothing). The range may be empty.
//! * `*-invalid.txt`: one range a line (taken verbatim, spaces included) that
//!   node-semver rejects.
//! * `semver-extra-parse.tsv`: `range<TAB>desugared`, where `desugared` is what
//!   node-semver's `validRange(range)` returns.

use std::path::PathBuf;

use seaport_core::semver::Version;
use seaport_core::VersionRange;

/// A file of `shared/testdata/semver/` beside the workspace, or else its copy in `tests/data/`.
fn shared_file(name: &str) -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = manifest.join("../../../shared/testdata/semver").join(name);
    if shared.is_file() {
        shared
    } else {
        data_file(name)
    }
}

/// A file of this crate's `tests/data/`.
fn data_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// The data lines of a table, with their 1-based line numbers.
fn data_lines(path: &PathBuf) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(i, line)| (i + 1, line.to_string()))
        .collect()
}

/// Checks a `range<TAB>version<TAB>bool` table; returns how many cases it holds.
fn check_satisfies_table(path: PathBuf) -> usize {
    let lines = data_lines(&path);
    let mut disagreements = Vec::new();
    for (n, line) in &lines {
        let fields: Vec<&str> = line.split('\t').collect();
        let [range, version, want] = fields[..] else {
            disagreements.push(format!("line {n}: not range<TAB>version<TAB>bool: {line:?}"));
            continue;
        };
        let want = match want {
            "true" => true,
            "false" => false,
            _ => {
                disagreements.push(format!("line {n}: expected true or false, found {want:?}"));
                continue;
            }
        };
        let version = match Version::parse(version) {
            Ok(v) => v,
            Err(e) => {
                disagreements.push(format!("line {n}: version {version:?} is not semver: {e}"));
                continue;
            }
        };
        let (got, why) = match VersionRange::parse(range) {
            Ok(r) => (r.matches(&version), format!(" (parsed as {:?})", r.to_string())),
            Err(e) => (false, format!(" ({e})")),
        };
        if got != want {
            disagreements.push(format!("line {n}: satisfies({version}, {range:?}) should be {want}, is {got}{why}"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases in {} disagree with node-semver:\n{}",
        disagreements.len(),
        lines.len(),
        path.display(),
        disagreements.join("\n")
    );
    assert!(!lines.is_empty(), "{} holds no cases", path.display());
    lines.len()
}

/// Checks that every range of a one-a-line file is rejected.
fn check_invalid_list(path: PathBuf) -> usize {
    let lines = data_lines(&path);
    let accepted: Vec<String> = lines
        .iter()
        .filter_map(|(n, range)| {
            VersionRange::parse(range)
                .ok()
                .map(|r| format!("line {n}: {range:?} should be invalid, parsed as {:?}", r.to_string()))
        })
        .collect();
    assert!(
        accepted.is_empty(),
        "{} of {} ranges in {} are accepted but node-semver rejects them:\n{}",
        accepted.len(),
        lines.len(),
        path.display(),
        accepted.join("\n")
    );
    assert!(!lines.is_empty(), "{} holds no ranges", path.display());
    lines.len()
}

#[test]
fn shared_node_semver_cases() {
    check_satisfies_table(shared_file("node-semver-cases.tsv"));
}

#[test]
fn shared_node_semver_invalid() {
    check_invalid_list(shared_file("node-semver-invalid.txt"));
}

#[test]
fn extra_node_semver_cases() {
    let n = check_satisfies_table(data_file("semver-extra.tsv"));
    assert!(n > 10_000, "only {n} cases");
}

#[test]
fn extra_node_semver_invalid() {
    check_invalid_list(data_file("semver-extra-invalid.txt"));
}

/// Each range desugars to what node-semver's `validRange` prints (our
/// `Display` separates sets with ` || ` where node writes `||`, and keeps a
/// `v` in a literal `>=v0.0.0`, which node would otherwise read as `*`).
#[test]
fn extra_node_semver_desugaring() {
    let path = data_file("semver-extra-parse.tsv");
    let lines = data_lines(&path);
    let mut disagreements = Vec::new();
    for (n, line) in &lines {
        let Some((range, want)) = line.split_once('\t') else {
            disagreements.push(format!("line {n}: not range<TAB>desugared: {line:?}"));
            continue;
        };
        let parsed = match VersionRange::parse(range) {
            Ok(r) => r,
            Err(e) => {
                disagreements.push(format!("line {n}: {range:?} should parse: {e}"));
                continue;
            }
        };
        let shown = parsed.to_string();
        let node_style = shown.replace(" || ", "||").replace(">=v0.0.0", ">=0.0.0");
        if node_style != want {
            disagreements.push(format!("line {n}: {range:?} prints as {shown:?}, node says {want:?}"));
        }
        if VersionRange::parse(&shown).as_ref() != Ok(&parsed) {
            disagreements.push(format!("line {n}: {range:?} prints as {shown:?}, which parses differently"));
        }
        if !want.split(' ').any(|c| c == ">=0.0.0" || c.ends_with("||>=0.0.0") || c.starts_with(">=0.0.0||"))
            && VersionRange::parse(want).as_ref() != Ok(&parsed)
        {
            disagreements.push(format!("line {n}: {range:?} and its desugared {want:?} differ"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} ranges in {} desugar differently from node-semver:\n{}",
        disagreements.len(),
        lines.len(),
        path.display(),
        disagreements.join("\n")
    );
}
