//! Everything the commands print on stdout, in one place.
//!
//! A record is printed as a JSON object with exactly the keys `id`, `role`, `version`
//! (a string, or null), `host`, `port` and `meta`; the bookkeeping fields (origin hub,
//! incarnation) stay internal.

use std::io::{self, Write};

use seaport_core::{Change, Meta, Record};
use serde::Serialize;

/// The JSON form of a record.
#[derive(Serialize)]
pub struct RecordJson<'a> {
    id: &'a str,
    role: &'a str,
    version: Option<String>,
    host: &'a str,
    port: u16,
    meta: &'a Meta,
}

impl<'a> From<&'a Record> for RecordJson<'a> {
    fn from(r: &'a Record) -> RecordJson<'a> {
        RecordJson {
            id: r.id.as_str(),
            role: r.role.as_str(),
            version: r.version.as_ref().map(ToString::to_string),
            host: &r.host,
            port: r.port,
            meta: &r.meta,
        }
    }
}

fn to_json<T: Serialize>(value: &T, compact: bool) -> String {
    let text = if compact { serde_json::to_string(value) } else { serde_json::to_string_pretty(value) };
    // Strings, numbers and maps with string keys always serialize.
    text.unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
}

/// Writes `text` and a newline, then flushes (so a reader sees each line at once).
pub fn line(out: &mut impl Write, text: &str) -> io::Result<()> {
    writeln!(out, "{text}")?;
    out.flush()
}

/// One record as JSON, on one line.
pub fn record(out: &mut impl Write, record: &Record) -> io::Result<()> {
    line(out, &to_json(&RecordJson::from(record), true))
}

/// What `show`, `query` and `get` print: the records as one JSON array, or with a field
/// path, that field of each record as one JSON value per line.
pub fn records<R: AsRef<Record>>(
    out: &mut impl Write,
    records: &[R],
    fields: &[String],
    compact: bool,
) -> io::Result<()> {
    if fields.is_empty() {
        let all: Vec<RecordJson<'_>> = records.iter().map(|r| RecordJson::from(r.as_ref())).collect();
        return line(out, &to_json(&all, compact));
    }
    for r in records {
        line(out, &to_json(&field(r.as_ref(), fields), true))?;
    }
    Ok(())
}

/// The value at `path` in the record's JSON (`["meta", "env"]`), or null if absent.
/// A numeric step indexes a list.
pub fn field(record: &Record, path: &[String]) -> serde_json::Value {
    let mut value = serde_json::to_value(RecordJson::from(record)).unwrap_or_default();
    for step in path {
        value = match value {
            serde_json::Value::Object(mut map) => map.remove(step).unwrap_or_default(),
            serde_json::Value::Array(mut items) => match step.parse::<usize>() {
                Ok(i) if i < items.len() => items.swap_remove(i),
                _ => serde_json::Value::Null,
            },
            _ => serde_json::Value::Null,
        };
    }
    value
}

/// How `watch` prints a change.
#[derive(Clone, Copy, Debug)]
pub struct WatchFormat {
    /// One JSON object per line.
    pub json: bool,
    /// Append the metadata (text lines only; JSON always carries it).
    pub meta: bool,
}

/// One line of `watch`: `REGISTER web@1.2.3 10.0.0.5:10080 [id]`, or
/// `{"event":"register","record":{...}}`.
pub fn change_line(change: &Change, format: WatchFormat) -> String {
    let (event, record) = match change {
        Change::Register(r) => ("register", r),
        Change::Update(r) => ("update", r),
        Change::Free(r) => ("free", r),
    };
    if format.json {
        #[derive(Serialize)]
        struct Line<'a> {
            event: &'a str,
            record: RecordJson<'a>,
        }
        return to_json(&Line { event, record: RecordJson::from(&**record) }, true);
    }
    let mut text = format!("{} {record}", event.to_ascii_uppercase());
    if format.meta {
        text.push(' ');
        text.push_str(&to_json(&record.meta, true));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use seaport_core::{HubId, RecordId, Role, Value};

    use super::*;

    fn web() -> Record {
        Record {
            id: RecordId::new("a1").unwrap(),
            role: Role::new("web").unwrap(),
            version: Some("1.2.3".parse().unwrap()),
            host: "10.0.0.5".into(),
            port: 10080,
            meta: [("env".to_string(), Value::from("prod")), ("n".to_string(), Value::Int(3))].into_iter().collect(),
            origin: HubId(7),
            incarnation: 2,
        }
    }

    fn printed(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn records_have_exactly_the_public_keys() {
        let text = printed(|out| records(out, &[Arc::new(web())], &[], true));
        assert_eq!(
            text,
            "[{\"id\":\"a1\",\"role\":\"web\",\"version\":\"1.2.3\",\"host\":\"10.0.0.5\",\"port\":10080,\
             \"meta\":{\"env\":\"prod\",\"n\":3}}]\n"
        );
        let mut bare = web();
        bare.version = None;
        let text = printed(|out| record(out, &bare));
        assert!(text.contains("\"version\":null"), "{text}");
        assert_eq!(printed(|out| records::<Arc<Record>>(out, &[], &[], false)), "[]\n");
    }

    #[test]
    fn field_paths_pick_values() {
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(field(&web(), &path(&["port"])), serde_json::json!(10080));
        assert_eq!(field(&web(), &path(&["meta", "env"])), serde_json::json!("prod"));
        assert_eq!(field(&web(), &path(&["meta", "nope"])), serde_json::Value::Null);
        assert_eq!(field(&web(), &path(&["port", "x"])), serde_json::Value::Null);
        let text = printed(|out| records(out, &[Arc::new(web()), Arc::new(web())], &path(&["host"]), false));
        assert_eq!(text, "\"10.0.0.5\"\n\"10.0.0.5\"\n");
    }

    #[test]
    fn watch_lines() {
        let r = Arc::new(web());
        let plain = WatchFormat { json: false, meta: false };
        assert_eq!(change_line(&Change::Register(r.clone()), plain), "REGISTER web@1.2.3 10.0.0.5:10080 [a1]");
        let meta = WatchFormat { json: false, meta: true };
        assert_eq!(
            change_line(&Change::Free(r.clone()), meta),
            "FREE web@1.2.3 10.0.0.5:10080 [a1] {\"env\":\"prod\",\"n\":3}"
        );
        let json = WatchFormat { json: true, meta: false };
        let line = change_line(&Change::Update(r), json);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["event"], "update");
        assert_eq!(value["record"]["port"], 10080);
    }
}
