//! JSON-like metadata values.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// A record's metadata map, also at [`crate::Meta`].
pub use crate::meta::Meta;

/// A JSON-like value held in a record's metadata.
///
/// In human-readable formats (JSON) it serializes as the plain JSON value
/// (`{"env": "prod", "weight": 3}`); in binary formats (bincode) as a tagged enum,
/// since those cannot be read back without knowing the type.
///
/// # Examples
/// ```
/// use seaport_core::Value;
/// let v = Value::from("prod");
/// assert_eq!(v.as_str(), Some("prod"));
/// assert_eq!(Value::parse_loose("42"), Value::Int(42));
/// assert_eq!(Value::parse_loose("hello"), Value::from("hello"));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    /// JSON `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number with a fraction or exponent, or outside the `i64` range.
    Float(f64),
    /// A string.
    String(String),
    /// A list of values.
    List(Vec<Value>),
    /// A map from string keys to values.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Reads a scalar the way a user types it on a command line or in a pattern filter:
    /// `null`, `true`, `false`, an integer, a float, or else the text as a string.
    /// A text in double quotes is the string inside them (`"42"` is the string `42`).
    pub fn parse_loose(text: &str) -> Value {
        match text {
            "null" => return Value::Null,
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            _ => {}
        }
        if let Some(s) = unquote(text) {
            return Value::String(s);
        }
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
        let numeric = text.bytes().any(|b| b.is_ascii_digit())
            && text.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
        if numeric {
            if let Ok(f) = text.parse::<f64>() {
                if f.is_finite() {
                    return Value::Float(f);
                }
            }
        }
        Value::String(text.to_string())
    }

    /// An estimate of the value's size in bytes on the wire, used for the metadata bound.
    pub fn encoded_size(&self) -> usize {
        match self {
            Value::Null | Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 9,
            Value::String(s) => 1 + 8 + s.len(),
            Value::List(items) => 1 + 8 + items.iter().map(Value::encoded_size).sum::<usize>(),
            Value::Map(map) => 1 + 8 + map.iter().map(|(k, v)| 8 + k.len() + v.encoded_size()).sum::<usize>(),
        }
    }

    /// How deeply lists and maps nest (a scalar has depth 0).
    pub fn depth(&self) -> usize {
        match self {
            Value::List(items) => 1 + items.iter().map(Value::depth).max().unwrap_or(0),
            Value::Map(map) => 1 + map.values().map(Value::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}

impl fmt::Display for Value {
    /// Writes the value as JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) if x.is_finite() => write!(f, "{x:?}"),
            Value::Float(_) => f.write_str("null"),
            Value::String(s) => write_json_string(f, s),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(map) => {
                f.write_str("{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_json_string(f, k)?;
                    write!(f, ":{v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Reads a whole JSON string literal (`"..."` with JSON escapes); `None` if `text` is not one.
pub(crate) fn unquote(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            '\\' => match chars.next()? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).ok()?;
                    out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

fn write_json_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}

/// The binary (tagged) form of [`Value`].
#[derive(Serialize, Deserialize)]
enum Tagged {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            match self {
                Value::Null => serializer.serialize_unit(),
                Value::Bool(b) => serializer.serialize_bool(*b),
                Value::Int(i) => serializer.serialize_i64(*i),
                Value::Float(x) if x.is_finite() => serializer.serialize_f64(*x),
                Value::Float(_) => serializer.serialize_unit(),
                Value::String(s) => serializer.serialize_str(s),
                Value::List(items) => serializer.collect_seq(items),
                Value::Map(map) => serializer.collect_map(map),
            }
        } else {
            // Borrowing serializers of the tagged form, without cloning the value.
            match self {
                Value::Null => serializer.serialize_unit_variant("Value", 0, "Null"),
                Value::Bool(b) => serializer.serialize_newtype_variant("Value", 1, "Bool", b),
                Value::Int(i) => serializer.serialize_newtype_variant("Value", 2, "Int", i),
                Value::Float(x) => serializer.serialize_newtype_variant("Value", 3, "Float", x),
                Value::String(s) => serializer.serialize_newtype_variant("Value", 4, "String", s),
                Value::List(items) => serializer.serialize_newtype_variant("Value", 5, "List", items),
                Value::Map(map) => serializer.serialize_newtype_variant("Value", 6, "Map", map),
            }
        }
    }
}

/// How deeply lists and maps may nest in a value being deserialized. bincode has no
/// depth limit of its own, so without this a frame of nested one-item lists (two bytes a
/// level) would overflow the decoding thread's stack and abort the process.
pub const MAX_DECODE_DEPTH: usize = 128;

thread_local! {
    /// Values being deserialized on this thread, outermost included.
    static DECODE_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Counts one level of [`DECODE_DEPTH`] while it lives.
struct DepthGuard;

impl DepthGuard {
    fn enter<E: de::Error>() -> Result<DepthGuard, E> {
        DECODE_DEPTH.with(|depth| {
            if depth.get() >= MAX_DECODE_DEPTH {
                return Err(E::custom(format_args!("metadata nests more than {MAX_DECODE_DEPTH} levels deep")));
            }
            depth.set(depth.get() + 1);
            Ok(DepthGuard)
        })
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DECODE_DEPTH.with(|depth| depth.set(depth.get() - 1));
    }
}

impl<'de> Deserialize<'de> for Value {
    /// Refuses values nesting deeper than [`MAX_DECODE_DEPTH`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        let _level = DepthGuard::enter::<D::Error>()?;
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(JsonVisitor)
        } else {
            Ok(match Tagged::deserialize(deserializer)? {
                Tagged::Null => Value::Null,
                Tagged::Bool(b) => Value::Bool(b),
                Tagged::Int(i) => Value::Int(i),
                Tagged::Float(x) => Value::Float(x),
                Tagged::String(s) => Value::String(s),
                Tagged::List(items) => Value::List(items),
                Tagged::Map(map) => Value::Map(map),
            })
        }
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map(Value::Int).unwrap_or(Value::Float(u as f64)))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Value, E> {
        Ok(Value::Float(x))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = BTreeMap::new();
        while let Some((k, v)) = access.next_entry::<String, Value>()? {
            map.insert(k, v);
        }
        Ok(Value::Map(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_parsing_reads_scalars() {
        assert_eq!(Value::parse_loose("null"), Value::Null);
        assert_eq!(Value::parse_loose("true"), Value::Bool(true));
        assert_eq!(Value::parse_loose("-7"), Value::Int(-7));
        assert_eq!(Value::parse_loose("1.5"), Value::Float(1.5));
        assert_eq!(Value::parse_loose("\"7\""), Value::from("7"));
        assert_eq!(Value::parse_loose("inf"), Value::from("inf"));
        assert_eq!(Value::parse_loose("1.2.3"), Value::from("1.2.3"));
        assert_eq!(Value::parse_loose(""), Value::from(""));
    }

    #[test]
    fn display_is_json() {
        let mut map = BTreeMap::new();
        map.insert("a\"b".to_string(), Value::List(vec![Value::Int(1), Value::Null, Value::Float(0.5)]));
        assert_eq!(Value::Map(map).to_string(), r#"{"a\"b":[1,null,0.5]}"#);
    }

    #[test]
    fn depth_and_size_grow_with_nesting() {
        let nested = Value::List(vec![Value::List(vec![Value::from("x")])]);
        assert_eq!(nested.depth(), 2);
        assert!(nested.encoded_size() > Value::from("x").encoded_size());
    }
}
