//! Patterns: which records a query or subscription wants.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ParseError, ParseErrorKind};
use crate::record::{validate_host, Record, Role};
use crate::value::Value;
use crate::version::VersionRange;

/// The longest pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 4096;

/// Which records a query or subscription wants: a role, a version range and equality filters.
///
/// # Syntax
///
/// | pattern | matches |
/// |---|---|
/// | `*` or empty | every record |
/// | `web` | every record of role `web`, with or without a version |
/// | `web@1.2.x` | role `web` with a version in the node-semver range `1.2.x` |
/// | `web@^1.2?host=10.0.0.5` | as above, and only on host `10.0.0.5` |
/// | `web?meta.env=prod&meta.zone=a` | role `web` whose metadata has `env` = `"prod"` and `zone` = `"a"` |
///
/// A range is anything [`VersionRange::parse`] accepts; a pattern with a range never
/// matches a record without a version. Filters follow a `?`, joined by `&`: `host=H`
/// or `meta.KEY=VALUE`, where VALUE is read by [`Value::parse_loose`] (`3` is a number,
/// `"3"` the string).
///
/// # Examples
/// ```
/// use seaport_core::Pattern;
/// let p: Pattern = "web@1.2.x?meta.env=prod".parse().unwrap();
/// assert_eq!(p.role().map(|r| r.as_str()), Some("web"));
/// assert_eq!(p.to_string(), "web@1.2.x?meta.env=prod");
/// assert!("web@1.2.3.4".parse::<Pattern>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    role: Option<Role>,
    range: Option<VersionRange>,
    /// The range as written, shown by `Display` (the parsed range prints normalized).
    range_text: String,
    host: Option<String>,
    meta: Vec<(String, Value)>,
}

impl Pattern {
    /// The pattern that matches every record.
    pub fn any() -> Pattern {
        Pattern { role: None, range: None, range_text: String::new(), host: None, meta: Vec::new() }
    }

    /// Every record of `role`.
    pub fn role(&self) -> Option<&Role> {
        self.role.as_ref()
    }

    /// The version range, if any.
    pub fn range(&self) -> Option<&VersionRange> {
        self.range.as_ref()
    }

    /// The host filter, if any.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The metadata equality filters.
    pub fn meta_filters(&self) -> &[(String, Value)] {
        &self.meta
    }

    /// A pattern for every record of `role`.
    pub fn for_role(role: Role) -> Pattern {
        Pattern { role: Some(role), ..Pattern::any() }
    }

    /// Adds a version range.
    pub fn with_range(mut self, range: VersionRange) -> Pattern {
        self.range_text = range.to_string();
        self.range = Some(range);
        self
    }

    /// Adds a host filter.
    pub fn with_host(mut self, host: impl Into<String>) -> Pattern {
        self.host = Some(host.into());
        self
    }

    /// Adds a metadata equality filter.
    pub fn with_meta(mut self, key: impl Into<String>, value: Value) -> Pattern {
        self.meta.push((key.into(), value));
        self
    }

    /// Parses a pattern (see the syntax above).
    ///
    /// # Errors
    /// A [`ParseError`] naming the part that is wrong and its byte offset.
    pub fn parse(input: &str) -> Result<Pattern, ParseError> {
        let err = |kind| ParseError::new("pattern", input, kind);
        if input.len() > MAX_PATTERN_LEN {
            return Err(err(ParseErrorKind::TooLong { max: MAX_PATTERN_LEN }));
        }
        let (head, filters) = match input.split_once('?') {
            Some((head, filters)) => (head, Some(filters)),
            None => (input, None),
        };
        let (role_text, range_text) = match head.split_once('@') {
            Some((role, range)) => (role, Some(range)),
            None => (head, None),
        };
        let role_text = role_text.trim();
        let role = match role_text {
            "" | "*" => None,
            text => Some(Role::new(text).map_err(|e| {
                let offset = head.find(text).unwrap_or(0);
                match e.kind() {
                    ParseErrorKind::UnexpectedChar { found, at } => {
                        err(ParseErrorKind::UnexpectedChar { found: *found, at: at + offset })
                    }
                    _ => err(ParseErrorKind::Other(format!("bad role: {e}"))),
                }
            })?),
        };
        let range = match range_text {
            Some(text) => Some(
                VersionRange::parse(text)
                    .map_err(|e| err(ParseErrorKind::Other(format!("bad version range after '@': {e}"))))?,
            ),
            None => None,
        };
        let range_text = range_text.map(|t| t.trim().to_string()).unwrap_or_default();
        let mut pattern = Pattern { role, range, range_text, host: None, meta: Vec::new() };
        if let Some(filters) = filters {
            let mut at = head.len() + 1;
            for part in split_filters(filters) {
                let Some((key, value)) = part.split_once('=') else {
                    return Err(err(ParseErrorKind::Other(format!(
                        "filter {part:?} at byte {at} is not KEY=VALUE (use host=H or meta.KEY=VALUE)"
                    ))));
                };
                if key == "host" {
                    validate_host(value).map_err(|e| err(ParseErrorKind::Other(format!("bad host filter: {e}"))))?;
                    pattern.host = Some(value.to_string());
                } else if let Some(meta_key) = key.strip_prefix("meta.").filter(|k| !k.is_empty()) {
                    pattern.meta.push((meta_key.to_string(), Value::parse_loose(value)));
                } else {
                    return Err(err(ParseErrorKind::Other(format!(
                        "unknown filter {key:?} at byte {at} (use host=H or meta.KEY=VALUE)"
                    ))));
                }
                at += part.len() + 1;
            }
        }
        Ok(pattern)
    }

    /// Whether `record` matches: same role, version in range, and every filter equal.
    pub fn matches(&self, record: &Record) -> bool {
        if let Some(role) = &self.role {
            if *role != record.role {
                return false;
            }
        }
        self.matches_beyond_role(record)
    }

    /// Whether `record` matches, taking for granted that its role does.
    pub fn matches_beyond_role(&self, record: &Record) -> bool {
        if let Some(range) = &self.range {
            match &record.version {
                Some(version) if range.matches(version) => {}
                _ => return false,
            }
        }
        if let Some(host) = &self.host {
            if record.host != **host {
                return false;
            }
        }
        self.meta.iter().all(|(k, v)| record.meta.get(k) == Some(v))
    }
}

/// Splits `KEY=VALUE&KEY=VALUE`, where a VALUE in double quotes (a JSON string) may
/// hold `&`.
fn split_filters(filters: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let bytes = filters.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i <= bytes.len() {
        if i == bytes.len() || bytes[i] == b'&' {
            parts.push(&filters[start..i]);
            start = i + 1;
        } else if bytes[i] == b'=' && bytes.get(i + 1) == Some(&b'"') && filters[start..i].find('=').is_none() {
            // Skip the quoted value, honouring backslash escapes.
            i += 2;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
        }
        i += 1;
    }
    parts
}

impl Default for Pattern {
    fn default() -> Pattern {
        Pattern::any()
    }
}

impl FromStr for Pattern {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Pattern, ParseError> {
        Pattern::parse(s)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.role {
            Some(role) => write!(f, "{role}")?,
            None => f.write_str("*")?,
        }
        if self.range.is_some() {
            write!(f, "@{}", self.range_text)?;
        }
        let mut sep = '?';
        for (k, v) in &self.meta {
            // Raw only if it reads back the same and cannot run into the next filter: a
            // value starting with `"` opens a quoted value, which may hold `&`.
            match v {
                Value::String(s) if Value::parse_loose(s) == *v && !s.contains('&') && !s.starts_with('"') => {
                    write!(f, "{sep}meta.{k}={s}")?
                }
                _ => write!(f, "{sep}meta.{k}={v}")?,
            }
            sep = '&';
        }
        // Last: a host is kept as written, quotes included, so one starting with `"`
        // extends to the end of the pattern when read back.
        if let Some(host) = &self.host {
            write!(f, "{sep}host={host}")?;
        }
        Ok(())
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Pattern, D::Error> {
        let text = String::deserialize(deserializer)?;
        Pattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{HubId, RecordId};
    use crate::value::Meta;

    fn record(role: &str, version: Option<&str>, host: &str, meta: &[(&str, Value)]) -> Record {
        Record {
            id: RecordId::new("id").unwrap(),
            role: Role::new(role).unwrap(),
            version: version.map(|v| v.parse().unwrap()),
            host: host.into(),
            port: 1,
            meta: meta.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<Meta>(),
            origin: HubId(0),
            incarnation: 1,
        }
    }

    #[test]
    fn role_only_matches_every_version_and_none() {
        let p = Pattern::parse("web").unwrap();
        assert!(p.matches(&record("web", Some("1.0.0"), "h", &[])));
        assert!(p.matches(&record("web", None, "h", &[])));
        assert!(!p.matches(&record("db", None, "h", &[])));
    }

    #[test]
    fn ranged_pattern_needs_a_version() {
        let p = Pattern::parse("web@1.x").unwrap();
        assert!(!p.matches(&record("web", None, "h", &[])));
    }

    #[test]
    fn filters_narrow() {
        let p = Pattern::parse("*?host=a&meta.env=prod&meta.w=3").unwrap();
        let good = record("x", None, "a", &[("env", "prod".into()), ("w", Value::Int(3))]);
        assert!(p.matches(&good));
        assert!(!p.matches(&record("x", None, "b", &[("env", "prod".into()), ("w", Value::Int(3))])));
        assert!(!p.matches(&record("x", None, "a", &[("env", "prod".into()), ("w", "3".into())])));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "*",
            "web",
            "web@1.2.x",
            "web?host=h",
            "a@>=1.0.0?host=h&meta.k=v&meta.n=\"3\"",
            "a?meta.k=\"x&y=\\\"z\\\"\"&meta.j=1",
        ] {
            let p = Pattern::parse(text).unwrap();
            assert_eq!(Pattern::parse(&p.to_string()).unwrap(), p, "{text}");
        }
        assert_eq!(Pattern::parse("").unwrap(), Pattern::any());
    }

    #[test]
    fn quoted_values_may_hold_ampersands_and_quotes() {
        let p = Pattern::parse(r#"a?meta.k="x&y=\"z\""&meta.j=1"#).unwrap();
        assert_eq!(p.meta_filters(), &[("k".to_string(), Value::from(r#"x&y="z""#)), ("j".to_string(), Value::Int(1))]);
        let q = Pattern::any().with_meta("k", Value::from("\"\""));
        assert_eq!(Pattern::parse(&q.to_string()).unwrap(), q);
    }

    #[test]
    fn errors_say_where() {
        let e = Pattern::parse("we b@1").unwrap_err();
        assert_eq!(e.kind(), &ParseErrorKind::UnexpectedChar { found: ' ', at: 2 });
        let e = Pattern::parse("web?zone=a").unwrap_err();
        assert!(e.to_string().contains("unknown filter \"zone\" at byte 4"), "{e}");
        let e = Pattern::parse("web?meta.k").unwrap_err();
        assert!(e.to_string().contains("not KEY=VALUE"), "{e}");
        let e = Pattern::parse("web@blerg").unwrap_err();
        assert!(e.to_string().contains("bad version range"), "{e}");
    }
}
