//! A record's metadata map.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::value::Value;

/// A record's metadata: string keys to JSON-like values, in key order.
///
/// A sorted vector rather than a `BTreeMap`: records carry a handful of keys, and a
/// `BTreeMap`'s first entry allocates a whole node of eleven slots (about 600 bytes of
/// `String` and [`Value`]), most of what a record with any metadata costs a hub. Keys of
/// up to 22 bytes are kept inline, not in an allocation each. The API follows
/// `BTreeMap`'s (keys are handed out as `&str`), and the wire form is the same map.
///
/// # Examples
/// ```
/// use seaport_core::{Meta, Value};
/// let mut meta = Meta::new();
/// meta.insert("zone".to_string(), Value::from("eu-1"));
/// meta.insert("weight".to_string(), Value::Int(3));
/// assert_eq!(meta.get("zone").and_then(Value::as_str), Some("eu-1"));
/// let keys: Vec<&str> = meta.keys().collect();
/// assert_eq!(keys, ["weight", "zone"], "in key order");
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct Meta {
    /// Sorted by key; exactly as long as it needs (a record keeps its metadata for its
    /// whole life), and no allocation when empty: 16 bytes in a record, where a `Vec`
    /// took 24.
    entries: Option<Box<[(Key, Value)]>>,
}

/// The longest key kept inline.
const INLINE: usize = 22;

/// A metadata key: inline when short (most are), else boxed. Ordered, compared and
/// hashed by its bytes, which orders it as `str` does.
#[derive(Clone)]
enum Key {
    Inline { len: u8, bytes: [u8; INLINE] },
    Boxed(Box<str>),
}

impl Key {
    fn new(key: &str) -> Key {
        match u8::try_from(key.len()) {
            Ok(len) if key.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..key.len()].copy_from_slice(key.as_bytes());
                Key::Inline { len, bytes }
            }
            _ => Key::Boxed(key.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Boxed(key) => key.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied whole from a `str`, so always valid.
            Key::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Key::Boxed(key) => key,
        }
    }

    fn into_string(self) -> String {
        match self {
            Key::Boxed(key) => key.into_string(),
            inline => inline.as_str().to_string(),
        }
    }
}

impl From<String> for Key {
    fn from(key: String) -> Key {
        if key.len() <= INLINE {
            Key::new(&key)
        } else {
            Key::Boxed(key.into_boxed_str())
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(Key::new(key))
            }
            fn visit_string<E: serde::de::Error>(self, key: String) -> Result<Key, E> {
                Ok(Key::from(key))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl Meta {
    /// An empty map (no allocation).
    pub const fn new() -> Meta {
        Meta { entries: None }
    }

    fn from_sorted(entries: Vec<(Key, Value)>) -> Meta {
        Meta { entries: (!entries.is_empty()).then(|| entries.into_boxed_slice()) }
    }

    fn entries(&self) -> &[(Key, Value)] {
        self.entries.as_deref().unwrap_or_default()
    }

    fn entries_mut(&mut self) -> &mut [(Key, Value)] {
        self.entries.as_deref_mut().unwrap_or_default()
    }

    /// Changes the entries as a `Vec` (a key more or less: one allocation of the new size).
    fn edit<R>(&mut self, f: impl FnOnce(&mut Vec<(Key, Value)>) -> R) -> R {
        let mut entries = self.entries.take().map(Vec::from).unwrap_or_default();
        let result = f(&mut entries);
        *self = Meta::from_sorted(entries);
        result
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries().binary_search_by(|(k, _)| k.as_bytes().cmp(key.as_bytes()))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_none()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.find(key).ok().map(|at| &self.entries()[at].1)
    }

    /// The value of `key`, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.find(key).ok().map(|at| &mut self.entries_mut()[at].1)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.find(key.as_str()) {
            Ok(at) => Some(std::mem::replace(&mut self.entries_mut()[at].1, value)),
            Err(at) => {
                self.edit(|entries| entries.insert(at, (Key::from(key), value)));
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let at = self.find(key).ok()?;
        Some(self.edit(|entries| entries.remove(at).1))
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.entries = None;
    }

    /// The keys and values, in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries().iter())
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries().iter().map(|(k, _)| k.as_str())
    }

    /// The values, in key order.
    pub fn values(&self) -> impl Iterator<Item = &Value> + '_ {
        self.entries().iter().map(|(_, v)| v)
    }
}

/// An iterator over a [`Meta`]'s keys and values, in key order.
#[derive(Clone, Debug)]
pub struct Iter<'a>(std::slice::Iter<'a, (Key, Value)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a Value);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k.as_str(), v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k.as_str(), v))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Meta {
    type Item = (&'a str, &'a Value);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for Meta {
    type Item = (String, Value);
    type IntoIter = IntoIter;
    fn into_iter(self) -> IntoIter {
        IntoIter(self.entries.map(Vec::from).unwrap_or_default().into_iter())
    }
}

/// An owning iterator over a [`Meta`]'s keys and values, in key order.
#[derive(Debug)]
pub struct IntoIter(std::vec::IntoIter<(Key, Value)>);

impl Iterator for IntoIter {
    type Item = (String, Value);
    fn next(&mut self) -> Option<(String, Value)> {
        self.0.next().map(|(k, v)| (k.into_string(), v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for IntoIter {
    fn next_back(&mut self) -> Option<(String, Value)> {
        self.0.next_back().map(|(k, v)| (k.into_string(), v))
    }
}

impl ExactSizeIterator for IntoIter {}

/// Sorts `entries`, given in insertion order, by key, keeping the last value of a
/// repeated key (as a `BTreeMap` would): O(n log n) however many keys, where inserting
/// them one at a time into a sorted vector would be quadratic (a node client may send
/// thousands of small keys within the metadata size limit).
fn normalize(mut entries: Vec<(Key, Value)>) -> Vec<(Key, Value)> {
    entries.reverse();
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    entries.dedup_by(|later, earlier| later.0 == earlier.0);
    entries
}

impl FromIterator<(String, Value)> for Meta {
    /// Like `BTreeMap`: a key given twice keeps its last value.
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Meta {
        Meta::from_sorted(normalize(iter.into_iter().map(|(k, v)| (Key::from(k), v)).collect()))
    }
}

impl Extend<(String, Value)> for Meta {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        self.edit(|entries| {
            entries.extend(iter.into_iter().map(|(k, v)| (Key::from(k), v)));
            *entries = normalize(std::mem::take(entries));
        });
    }
}

impl<const N: usize> From<[(String, Value); N]> for Meta {
    fn from(entries: [(String, Value); N]) -> Meta {
        entries.into_iter().collect()
    }
}

impl From<BTreeMap<String, Value>> for Meta {
    fn from(map: BTreeMap<String, Value>) -> Meta {
        // Already sorted and unique.
        Meta::from_sorted(map.into_iter().map(|(k, v)| (Key::from(k), v)).collect())
    }
}

impl From<Meta> for BTreeMap<String, Value> {
    fn from(meta: Meta) -> BTreeMap<String, Value> {
        meta.into_iter().collect()
    }
}

impl std::ops::Index<&str> for Meta {
    type Output = Value;
    /// # Panics
    /// When `key` is not set, like `BTreeMap`.
    fn index(&self, key: &str) -> &Value {
        self.get(key).expect("no such key in the metadata")
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.entries() {
            map.serialize_entry(k.as_str(), v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Meta, D::Error> {
        struct MetaVisitor;
        impl<'de> Visitor<'de> for MetaVisitor {
            type Value = Meta;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of metadata")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Meta, A::Error> {
                let mut entries: Vec<(Key, Value)> = Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
                while let Some((k, v)) = access.next_entry::<Key, Value>()? {
                    entries.push((k, v));
                }
                Ok(Meta::from_sorted(normalize(entries)))
            }
        }
        deserializer.deserialize_map(MetaVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, i64)]) -> Meta {
        pairs.iter().map(|(k, v)| (k.to_string(), Value::Int(*v))).collect()
    }

    #[test]
    fn collected_metadata_holds_no_spare_room() {
        let meta: Meta = [("b", 1), ("a", 2), ("b", 3)]
            .iter()
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| (k.to_string(), Value::Int(*v)))
            .collect();
        assert_eq!(meta.len(), 2);
        assert_eq!(meta.entries.as_ref().map(|e| e.len()), Some(2), "a record keeps its metadata for its whole life");
        assert_eq!(std::mem::size_of::<Meta>(), 2 * std::mem::size_of::<usize>());
        let mut meta = meta;
        assert_eq!(meta.remove("a"), Some(Value::Int(2)));
        assert_eq!(meta.remove("b"), Some(Value::Int(3)));
        assert!(meta.entries.is_none() && meta.is_empty(), "an emptied map holds no allocation");
    }

    #[test]
    fn short_keys_are_inline_and_every_key_orders_as_a_str() {
        assert_eq!(std::mem::size_of::<Key>(), std::mem::size_of::<String>(), "no bigger than a String");
        let (long, longer) = ("k".repeat(INLINE), "k".repeat(INLINE + 1));
        let keys = ["", "b", "a", "é", "zone", &long, &longer, "ключ-ключ-ключ-ключ", "kk", "b"];
        let meta: Meta = keys.iter().map(|k| (k.to_string(), Value::Int(k.len() as i64))).collect();
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(meta.keys().collect::<Vec<_>>(), sorted);
        for key in keys {
            assert_eq!(meta.get(key), Some(&Value::Int(key.len() as i64)), "{key}");
        }
        let stored = |key: &str| meta.entries().iter().find(|(k, _)| k.as_str() == key).map(|(k, _)| k);
        assert!(matches!(stored(&long), Some(Key::Inline { .. })), "{INLINE} bytes fit inline");
        assert!(matches!(stored(&longer), Some(Key::Boxed(_))));
        let json = serde_json::to_string(&meta).unwrap();
        assert_eq!(serde_json::from_str::<Meta>(&json).unwrap(), meta);
        let owned: Vec<String> = meta.clone().into_iter().map(|(k, _)| k).collect();
        assert_eq!(owned, sorted);
        assert_eq!(format!("{meta:?}"), format!("{:?}", BTreeMap::from(meta.clone())));
    }

    #[test]
    fn behaves_like_a_btreemap() {
        let mut ours = Meta::new();
        let mut map = BTreeMap::new();
        // A fixed pseudo-random sequence of inserts and removes over a few keys.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for step in 0..2000i64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let key = format!("k{}", state % 13);
            if state % 3 == 0 {
                assert_eq!(ours.remove(key.as_str()), map.remove(key.as_str()), "remove {key}");
            } else {
                assert_eq!(ours.insert(key.clone(), Value::Int(step)), map.insert(key, Value::Int(step)));
            }
            assert_eq!(ours.len(), map.len());
            assert!(ours.iter().eq(map.iter().map(|(k, v)| (k.as_str(), v))), "same entries in the same order");
        }
        assert_eq!(BTreeMap::from(ours.clone()), map);
        assert_eq!(Meta::from(map.clone()), ours);
        let pairs = || (0..500i64).map(|i| (format!("k{}", (i * 37) % 101), Value::Int(i)));
        let collected: Meta = pairs().collect();
        let last: BTreeMap<_, _> = pairs().collect();
        assert!(collected.iter().eq(last.iter().map(|(k, v)| (k.as_str(), v))), "collect keeps the last of each key");
        let mut extended = meta(&[("k1", -1), ("zz", -2)]);
        extended.extend(pairs());
        let mut wanted = BTreeMap::from([("k1".to_string(), Value::Int(-1)), ("zz".to_string(), Value::Int(-2))]);
        wanted.extend(pairs());
        assert!(extended.iter().eq(wanted.iter().map(|(k, v)| (k.as_str(), v))), "extend overrides existing keys");
    }

    #[test]
    fn the_wire_form_is_a_btreemaps_and_a_repeated_key_keeps_its_last_value() {
        let ours = meta(&[("zone", 1), ("a", 2), ("m", 3)]);
        let map: BTreeMap<String, Value> = ours.clone().into();
        assert_eq!(serde_json::to_string(&ours).unwrap(), serde_json::to_string(&map).unwrap());
        let back: Meta = serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
        assert_eq!(back, meta(&[("a", 2), ("b", 3)]));
        assert_eq!(format!("{back:?}"), format!("{:?}", BTreeMap::from(back.clone())));
    }
}
