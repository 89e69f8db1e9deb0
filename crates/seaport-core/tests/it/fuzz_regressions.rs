//! Saved inputs of the `pattern` fuzz target (`fuzz/`), replayed through its checks.
//!
//! The checks are the fuzz crate's own code (`fuzz/src/pattern.rs`, mounted here with
//! `#[path]`): `Pattern` and `VersionRange` display forms parse back to the same thing,
//! on every saved input in `tests/data/fuzz/pattern/` (one file each, as libFuzzer writes
//! them; copy a new one there from `fuzz/artifacts/pattern/`). The named tests spell out
//! what the fuzzer found; see `fuzz/README.md`.

use std::fs;
use std::path::Path;

use seaport_core::pattern::MAX_PATTERN_LEN;
use seaport_core::{ParseErrorKind, Pattern, VersionRange};

#[allow(dead_code)]
#[path = "../../../../fuzz/src/pattern.rs"]
mod checks;

#[test]
fn saved_pattern_inputs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz/pattern");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no saved inputs in {}", dir.display());
    for file in files {
        let data = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        eprintln!("replaying {}", file.display());
        checks::check_text(&data);
    }
}

/// Found by the fuzzer: a range of many short comparators prints, desugared, several
/// times longer than written, past the 1024-byte input limit, so its display did not
/// parse back as `VersionRange`'s docs promised. The docs now state the limit; the
/// display of an accepted range is refused as `TooLong`, never misread.
#[test]
fn range_displayed_over_the_input_limit_is_refused_as_too_long() {
    assert_eq!(VersionRange::parse("1 2").unwrap().to_string(), ">=1.0.0 <2.0.0-0 >=2.0.0 <3.0.0-0");
    let numbers = |n: u32| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(" ");
    let text = numbers(200);
    assert!(text.len() <= 1024);
    let shown = VersionRange::parse(&text).unwrap().to_string();
    assert!(shown.len() > 1024, "{shown}");
    assert_eq!(VersionRange::parse(&shown).unwrap_err().kind(), &ParseErrorKind::TooLong { max: 1024 });
    checks::check_range(&text);
    // Within the limit, the display parses back to an equal range.
    let text = numbers(20);
    let shown = VersionRange::parse(&text).unwrap().to_string();
    assert!(shown.len() <= 1024);
    assert_eq!(VersionRange::parse(&shown).unwrap(), VersionRange::parse(&text).unwrap());
    checks::check_range(&text);
}

/// The same for patterns: a float filter displays in full (`1e15` as
/// `1000000000000000.0`), so a pattern near the 4096-byte limit can display longer than
/// the limit; parsing the display is refused as `TooLong`.
#[test]
fn pattern_displayed_over_the_length_limit_is_refused_as_too_long() {
    let text = format!("web?{}", vec!["meta.n=1e15"; 340].join("&"));
    assert!(text.len() <= MAX_PATTERN_LEN);
    let shown = Pattern::parse(&text).unwrap().to_string();
    assert!(shown.len() > MAX_PATTERN_LEN, "{}", shown.len());
    assert_eq!(Pattern::parse(&shown).unwrap_err().kind(), &ParseErrorKind::TooLong { max: MAX_PATTERN_LEN });
    checks::check_pattern(&text);
}

/// Found by the fuzzer: `Pattern`'s display wrote a metadata string starting with `"`
/// as it was, and a host after them as it was; read back, such a value opens a quoted
/// value, which runs past the next `&` and swallows the filters after it. The display
/// now quotes those strings as JSON and writes the host last.
#[test]
fn filter_values_starting_with_a_quote_display_without_swallowing_the_next_filter() {
    for text in [
        r#"web?meta.a="\""&meta.b=1"#,
        r#"web?meta.a="x&meta.b=1"#,
        r#"web?meta.a=1&host=""#,
        r#"web?meta.a=1&host="a"&meta.b=2"#,
        r#"web?host="a&b"&meta.b=2"#,
        r#"aa?meta.k="x&y=\||"z\""0.0.0&meta.?meta.k="\""&meta.j=2"#,
    ] {
        let p = Pattern::parse(text).unwrap();
        assert_eq!(Pattern::parse(&p.to_string()).unwrap(), p, "{text} displays as {p}");
        checks::check_pattern(text);
    }
    let p = Pattern::parse(r#"web?meta.a="\""&meta.b=1"#).unwrap();
    assert_eq!(p.meta_filters().len(), 2);
    assert_eq!(p.to_string(), r#"web?meta.a="\""&meta.b=1"#);
}
