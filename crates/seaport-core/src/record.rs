//! Records and their fields, validated on the way in.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{ParseError, ParseErrorKind};
use crate::value::{Meta, Value};

/// The longest record id, role or host accepted, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// The longest host accepted, in bytes (a DNS name is at most 253).
pub const MAX_HOST_LEN: usize = 255;

fn check_name(what: &'static str, input: &str, extra: &[u8]) -> Result<(), ParseError> {
    if input.is_empty() {
        return Err(ParseError::new(what, input, ParseErrorKind::Empty));
    }
    if input.len() > MAX_NAME_LEN {
        return Err(ParseError::new(what, input, ParseErrorKind::TooLong { max: MAX_NAME_LEN }));
    }
    for (at, c) in input.char_indices() {
        let ok = c.is_ascii_alphanumeric() || (c.is_ascii() && extra.contains(&(c as u8)));
        if !ok {
            return Err(ParseError::new(what, input, ParseErrorKind::UnexpectedChar { found: c, at }));
        }
    }
    Ok(())
}

/// A name behind a thin pointer: one allocation holding the count, the length and the
/// bytes, and 8 bytes wherever it is held. A record id is held by the record, by its
/// session's set and by the hub's logs (an `Arc<str>` took 16 bytes in each); the records
/// of a role, or on a host, share one copy of its name. Compared, ordered and hashed as
/// the `str` it holds.
type Thin = arcstr::ArcStr;

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $extra:expr, $repr:ty, $new:expr) => {
        $(#[$doc])*
        ///
        /// Cloning one is a reference count, not a copy.
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name($repr);

        impl $name {
            /// Validates and wraps a name.
            ///
            /// # Errors
            /// A [`ParseError`] if it is empty, longer than [`MAX_NAME_LEN`] bytes, or holds a
            /// character outside the allowed set.
            pub fn new(name: impl AsRef<str>) -> Result<Self, ParseError> {
                check_name($what, name.as_ref(), $extra)?;
                Ok($name($new(name.as_ref())))
            }

            /// The name as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        // By hand rather than through `String`: the name is written straight from the
        // record (no copy per record encoded) and read straight from the frame (one
        // allocation per name decoded).
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", $what))
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        check_name($what, s, $extra).map_err(E::custom)?;
                        Ok($name($new(s)))
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                $name::new(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0.to_string()
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                $name::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A record's unique id: 1 to 128 bytes of ASCII letters, digits, `-`, `_`, `.` and `:`.
    ///
    /// Hubs give random hex ids to records registered without one. A record's id is a
    /// key in several of the hub's maps, which share it.
    RecordId,
    "record id",
    b"-_.:",
    Thin,
    Thin::from
);

name_type!(
    /// A service's name, the part before `@` in `web@1.2.3`: 1 to 128 bytes of ASCII
    /// letters, digits, `-`, `_`, `.`, `/` and `:`.
    ///
    /// The records of a role share one copy of its name, behind a thin pointer.
    Role,
    "role",
    b"-_./:",
    Thin,
    Thin::from
);

/// Makes a type holding a record (`Arc<Record>` in its field `$field`) an entry of a
/// hash set keyed by the record's id: equal by id, hashed as the id's `str`, and found
/// by `&str` (`Borrow<str>`). An entry is then the record's pointer, where a map from the
/// id would hold the id again beside it.
macro_rules! keyed_by_record_id {
    ($ty:ty, $field:tt) => {
        impl PartialEq for $ty {
            fn eq(&self, other: &$ty) -> bool {
                self.$field.id == other.$field.id
            }
        }

        impl Eq for $ty {}

        impl std::hash::Hash for $ty {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                // As `str` hashes, so that a lookup by `&str` finds it.
                self.$field.id.as_str().hash(state);
            }
        }

        impl std::borrow::Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                self.$field.id.as_str()
            }
        }
    };
}
pub(crate) use keyed_by_record_id;

/// Where a record's service listens: a host name or an address, as text.
///
/// The records on one host share one copy of its name (the hub hands a new record the
/// copy its registry already holds), so cloning one is a reference count. It compares
/// with, and dereferences to, `str`; it is serialized as a plain string.
///
/// ```
/// use seaport_core::record::Host;
/// let host = Host::from("10.0.0.5");
/// assert_eq!(host, "10.0.0.5");
/// assert!(host.starts_with("10."));
/// assert_eq!(host.to_string(), "10.0.0.5");
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Host(Thin);

impl Host {
    /// The host as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Host {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Host {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Host {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Host {
    fn from(host: &str) -> Host {
        Host(Thin::from(host))
    }
}

impl From<String> for Host {
    fn from(host: String) -> Host {
        Host(Thin::from(host))
    }
}

impl From<Host> for String {
    fn from(host: Host) -> String {
        host.0.to_string()
    }
}

impl PartialEq<str> for Host {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Host {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Host {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Host> for str {
    fn eq(&self, other: &Host) -> bool {
        *self == *other.0
    }
}

impl PartialEq<Host> for &str {
    fn eq(&self, other: &Host) -> bool {
        **self == *other.0
    }
}

impl PartialEq<Host> for String {
    fn eq(&self, other: &Host) -> bool {
        **self == *other.0
    }
}

/// Checks a host name or address: 1 to 255 bytes, no whitespace or control characters.
///
/// # Errors
/// A [`ParseError`] naming the offending character or the length.
pub fn validate_host(host: &str) -> Result<(), ParseError> {
    if host.is_empty() {
        return Err(ParseError::new("host", host, ParseErrorKind::Empty));
    }
    if host.len() > MAX_HOST_LEN {
        return Err(ParseError::new("host", host, ParseErrorKind::TooLong { max: MAX_HOST_LEN }));
    }
    if let Some((at, found)) = host.char_indices().find(|(_, c)| c.is_whitespace() || c.is_control()) {
        return Err(ParseError::new("host", host, ParseErrorKind::UnexpectedChar { found, at }));
    }
    Ok(())
}

/// Parses a strict semver version (`1.2.3`, `1.2.3-beta.1+build`), as a record's version.
///
/// # Errors
/// A [`ParseError`] with semver's reason.
pub fn parse_version(text: &str) -> Result<semver::Version, ParseError> {
    if text.len() > 256 {
        return Err(ParseError::new("version", text, ParseErrorKind::TooLong { max: 256 }));
    }
    semver::Version::parse(text)
        .map_err(|e| ParseError::new("version", text, ParseErrorKind::InvalidVersion(e.to_string())))
}

/// A record's version: a semver version behind one shared pointer.
///
/// The instances of a service mostly run one version, so the records that carry the
/// same version share one copy of it (the hub hands a new record the copy its registry
/// already holds): 8 bytes in each record, where a `semver::Version` takes 40. It
/// dereferences to [`semver::Version`], so ranges match it directly, and it goes on the
/// wire as the version's text, as semver's own serde does.
///
/// ```
/// use seaport_core::record::SharedVersion;
/// use seaport_core::VersionRange;
/// let version: SharedVersion = "1.2.3".parse().unwrap();
/// assert_eq!(version.major, 1);
/// assert!(VersionRange::parse("^1.2").unwrap().matches(&version));
/// assert_eq!(version.to_string(), "1.2.3");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedVersion(Arc<semver::Version>);

impl SharedVersion {
    /// Wraps a version (one allocation; clones share it).
    pub fn new(version: semver::Version) -> SharedVersion {
        SharedVersion(Arc::new(version))
    }

    /// Parses a strict semver version, as [`parse_version`] does.
    ///
    /// # Errors
    /// A [`ParseError`] with semver's reason.
    pub fn parse(text: &str) -> Result<SharedVersion, ParseError> {
        parse_version(text).map(SharedVersion::new)
    }

    /// The version.
    pub fn as_semver(&self) -> &semver::Version {
        &self.0
    }

    /// Whether both are the same copy, not only equal.
    pub fn ptr_eq(a: &SharedVersion, b: &SharedVersion) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl std::ops::Deref for SharedVersion {
    type Target = semver::Version;
    fn deref(&self) -> &semver::Version {
        &self.0
    }
}

impl AsRef<semver::Version> for SharedVersion {
    fn as_ref(&self) -> &semver::Version {
        &self.0
    }
}

impl Borrow<semver::Version> for SharedVersion {
    fn borrow(&self) -> &semver::Version {
        &self.0
    }
}

impl From<semver::Version> for SharedVersion {
    fn from(version: semver::Version) -> SharedVersion {
        SharedVersion::new(version)
    }
}

impl FromStr for SharedVersion {
    type Err = ParseError;
    fn from_str(text: &str) -> Result<SharedVersion, ParseError> {
        SharedVersion::parse(text)
    }
}

impl PartialEq<semver::Version> for SharedVersion {
    fn eq(&self, other: &semver::Version) -> bool {
        *self.0 == *other
    }
}

impl fmt::Debug for SharedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SharedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

// As semver's own serde does (a string), but formatted on the stack: semver goes through
// `collect_str`, which allocates a `String` for every record encoded.
impl Serialize for SharedVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = StackStr::default();
        if fmt::Write::write_fmt(&mut buf, format_args!("{}", self.0)).is_ok() {
            serializer.serialize_str(buf.as_str())
        } else {
            serializer.collect_str(&*self.0)
        }
    }
}

impl<'de> Deserialize<'de> for SharedVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SharedVersion;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a semver version")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<SharedVersion, E> {
                SharedVersion::parse(s).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// One copy of each version: hands out a [`SharedVersion`] for a version, the same one
/// for equal versions, so that the records carrying them share it.
///
/// It keeps the copies it hands out, and forgets those that nothing else holds any more
/// once it holds twice as many as after its last look: a stream of distinct versions
/// costs memory only while records carry them. The [`Registry`](crate::Registry) has
/// one; a client keeps one for the records it is sent.
///
/// ```
/// use seaport_core::record::{SharedVersion, VersionPool};
/// let mut pool = VersionPool::default();
/// let a = pool.share("1.2.3".parse().unwrap());
/// let b = pool.share("1.2.3".parse().unwrap());
/// assert!(SharedVersion::ptr_eq(&a, &b));
/// ```
#[derive(Debug, Default)]
pub struct VersionPool {
    versions: rustc_hash::FxHashSet<SharedVersion>,
    /// How many versions were left after the last sweep.
    swept: usize,
}

impl VersionPool {
    /// The pool's copy of `version`.
    pub fn share(&mut self, version: semver::Version) -> SharedVersion {
        match self.versions.get(&version) {
            Some(shared) => shared.clone(),
            None => self.keep(SharedVersion::new(version)),
        }
    }

    /// `record` with its version replaced by the pool's copy, when it is the only holder
    /// of the record (one just decoded from the wire); as it is otherwise.
    pub fn share_record(&mut self, mut record: Arc<Record>) -> Arc<Record> {
        let Some(r) = Arc::get_mut(&mut record) else { return record };
        if let Some(version) = &r.version {
            if Arc::strong_count(&version.0) > 1 {
                // Shared already: the pool's copy (a version the hub handed out), or one
                // the caller shares on purpose.
                return record;
            }
            match self.versions.get(version.as_semver()) {
                Some(shared) if SharedVersion::ptr_eq(shared, version) => {}
                Some(shared) => r.version = Some(shared.clone()),
                None => {
                    self.keep(version.clone());
                }
            }
        }
        record
    }

    /// How many versions the pool holds.
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// Whether the pool holds no version.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    fn keep(&mut self, version: SharedVersion) -> SharedVersion {
        if self.versions.len() >= 2 * self.swept.max(32) {
            self.versions.retain(|v| Arc::strong_count(&v.0) > 1);
            self.swept = self.versions.len();
        }
        self.versions.insert(version.clone());
        version
    }
}

/// Identifies a hub: records carry the id of the hub they were registered through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HubId(pub u64);

impl fmt::Display for HubId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One registered service instance: `role@version` listening at `host:port`, with metadata.
///
/// Records are created by a hub from a [`Registration`] after validation; a client sees
/// them in query results and events.
///
/// # Examples
/// ```
/// use seaport_core::{Record, RecordId, Role, HubId, Meta};
/// let record = Record {
///     id: RecordId::new("a1b2").unwrap(),
///     role: Role::new("web").unwrap(),
///     version: Some("1.2.3".parse().unwrap()),
///     host: "10.0.0.5".into(),
///     port: 10_080,
///     meta: Meta::new(),
///     origin: HubId(1),
///     incarnation: 1,
/// };
/// assert_eq!(record.to_string(), "web@1.2.3 10.0.0.5:10080 [a1b2]");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unique id within the registry.
    pub id: RecordId,
    /// The service's name.
    pub role: Role,
    /// The service's version, if it registered one.
    pub version: Option<SharedVersion>,
    /// Where the service listens: a host name or address.
    pub host: Host,
    /// The port it listens on.
    pub port: u16,
    /// Free-form metadata.
    pub meta: Meta,
    /// The hub the record was registered through.
    pub origin: HubId,
    /// Grows by one each time the owner registers the same id again (after a reconnect).
    pub incarnation: u64,
}

/// A short string built on the stack; writing past its 96 bytes fails.
struct StackStr {
    bytes: [u8; 96],
    len: usize,
}

impl Default for StackStr {
    fn default() -> StackStr {
        StackStr { bytes: [0; 96], len: 0 }
    }
}

impl StackStr {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the bytes are UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let room = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl Record {
    /// `role@version`, or just `role` when there is no version.
    pub fn name(&self) -> String {
        match &self.version {
            Some(v) => format!("{}@{}", self.role, v),
            None => self.role.to_string(),
        }
    }

    /// About how many bytes the record takes on the wire (an upper-bound estimate).
    pub fn encoded_size_estimate(&self) -> usize {
        let meta: usize = self.meta.iter().map(|(k, v)| 8 + k.len() + v.encoded_size()).sum();
        64 + self.id.as_str().len() + self.role.as_str().len() + self.host.len() + meta
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} [{}]", self.name(), self.address(), self.id)
    }
}

/// Which port a registration asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortRequest {
    /// Any free port in the hub's default range.
    #[default]
    Any,
    /// Any free port between `low` and `high` inclusive.
    Range {
        /// Lowest acceptable port.
        low: u16,
        /// Highest acceptable port.
        high: u16,
    },
    /// Exactly this port, honoured as given even if another record uses it.
    Exact(u16),
}

/// A request to register a service, as a client sends it: raw text that the hub validates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// The record id to use; the hub picks a random one when absent.
    pub id: Option<String>,
    /// The service name.
    pub role: String,
    /// Its semver version, if any.
    pub version: Option<String>,
    /// Its host; the hub uses the client's address as it sees it when absent.
    pub host: Option<String>,
    /// Which port to assign.
    pub port: PortRequest,
    /// Metadata.
    pub meta: Meta,
    /// The client's count of how often it registered this id (after reconnects). The
    /// record gets at least this incarnation, and always more than any copy the hub
    /// knows, so the newest registration wins everywhere even when an older copy is
    /// still on its way through the mesh. `None`: the hub counts alone.
    pub incarnation: Option<u64>,
}

impl Registration {
    /// A registration for `role` with no version, any port and no metadata.
    pub fn new(role: impl Into<String>) -> Registration {
        Registration { role: role.into(), ..Registration::default() }
    }

    /// Splits `name@version` (or a bare `name`) into a registration.
    pub fn from_name(name: &str) -> Registration {
        match name.split_once('@') {
            Some((role, version)) => {
                Registration { role: role.to_string(), version: Some(version.to_string()), ..Registration::default() }
            }
            None => Registration::new(name),
        }
    }
}

/// Bounds on metadata, checked when a record is registered or updated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaLimits {
    /// Largest encoded size in bytes (see [`Value::encoded_size`]).
    pub max_bytes: usize,
    /// Deepest nesting of lists and maps.
    pub max_depth: usize,
}

impl Default for MetaLimits {
    fn default() -> MetaLimits {
        MetaLimits { max_bytes: 64 * 1024, max_depth: 16 }
    }
}

/// Why metadata was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// The metadata encodes to more bytes than allowed.
    #[error("metadata is {size} bytes, more than the limit of {max}; keep large data elsewhere")]
    TooLarge {
        /// Its encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Lists and maps nest too deeply.
    #[error("metadata nests {depth} levels deep, more than the limit of {max}")]
    TooDeep {
        /// How deep it nests.
        depth: usize,
        /// The limit.
        max: usize,
    },
}

/// Checks metadata against `limits`.
///
/// # Errors
/// [`MetaError`] when it is too large or nests too deeply.
pub fn validate_meta(meta: &Meta, limits: &MetaLimits) -> Result<(), MetaError> {
    let size: usize = meta.iter().map(|(k, v)| 8 + k.len() + v.encoded_size()).sum();
    if size > limits.max_bytes {
        return Err(MetaError::TooLarge { size, max: limits.max_bytes });
    }
    let depth = meta.values().map(Value::depth).max().unwrap_or(0);
    if depth > limits.max_depth {
        return Err(MetaError::TooDeep { depth, max: limits.max_depth });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_record_fits_in_72_bytes() {
        // An `Arc<Record>` is the record and two counts: at 88 bytes or less it takes the
        // allocator's 96-byte class (glibc), where 104 took 112 and 120 took 144, for
        // every record a hub holds.
        assert!(std::mem::size_of::<Record>() <= 72, "{} bytes", std::mem::size_of::<Record>());
        assert_eq!(std::mem::size_of::<RecordId>(), std::mem::size_of::<usize>());
        assert_eq!(std::mem::size_of::<Option<SharedVersion>>(), std::mem::size_of::<usize>());
        assert_eq!(std::mem::size_of::<Role>(), std::mem::size_of::<usize>());
        assert_eq!(std::mem::size_of::<Host>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn ids_compare_order_and_hash_as_their_text() {
        use std::collections::{BTreeSet, HashSet};
        let texts = ["b", "a", "a1", "A", "0", "z:9", "a-b.c_d", &"x".repeat(MAX_NAME_LEN)];
        let ids: Vec<RecordId> = texts.iter().map(|t| RecordId::new(t).unwrap()).collect();
        for (id, text) in ids.iter().zip(texts) {
            assert_eq!(id.as_str(), text);
            assert_eq!(format!("{id:?}"), format!("RecordId({text:?})"));
        }
        let by_id: BTreeSet<&RecordId> = ids.iter().collect();
        let by_text: BTreeSet<&str> = texts.iter().copied().collect();
        assert!(by_id.iter().map(|id| id.as_str()).eq(by_text.iter().copied()), "ordered as str");
        let set: HashSet<RecordId> = ids.iter().cloned().collect();
        for text in texts {
            assert!(set.contains(text), "found by &str: {text}");
        }
        assert!(!set.contains("c"));
        assert_eq!(RecordId::new("a1").unwrap(), ids[2]);
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn names_are_validated() {
        assert!(Role::new("web-api_v2.internal/x:y").is_ok());
        let err = Role::new("web@1").unwrap_err();
        assert_eq!(err.kind(), &ParseErrorKind::UnexpectedChar { found: '@', at: 3 });
        assert_eq!(Role::new("").unwrap_err().kind(), &ParseErrorKind::Empty);
        assert_eq!(RecordId::new("x".repeat(129)).unwrap_err().kind(), &ParseErrorKind::TooLong { max: MAX_NAME_LEN });
        assert!(RecordId::new("a/b").is_err());
        assert!(RecordId::new("é").is_err());
    }

    #[test]
    fn names_and_versions_encode_as_semver_and_strings_do() {
        let long = format!("1.2.3-{}+build.{}", "a".repeat(60), "7".repeat(60));
        for version in [None, Some("1.2.3"), Some("10.20.30-beta.1+sha.5114f85"), Some(long.as_str())] {
            let version = version.map(|v| v.parse::<semver::Version>().unwrap());
            let record = Record {
                id: RecordId::new("a1b2").unwrap(),
                role: Role::new("web").unwrap(),
                version: version.clone().map(SharedVersion::from),
                host: "10.0.0.5".into(),
                port: 10_080,
                meta: Meta::new(),
                origin: HubId(1),
                incarnation: 1,
            };
            let json = serde_json::to_value(&record).unwrap();
            assert_eq!(json["version"], serde_json::to_value(&version).unwrap(), "{version:?}");
            assert_eq!(json["id"], "a1b2");
            assert_eq!(json["role"], "web");
            let back: Record = serde_json::from_value(json).unwrap();
            assert_eq!(back, record);
        }
    }

    #[test]
    fn deserializing_validates() {
        let err = "not a role!".parse::<Role>().unwrap_err();
        assert!(err.to_string().contains("invalid role"), "{err}");
    }

    #[test]
    fn hosts_are_validated() {
        assert!(validate_host("10.0.0.1").is_ok());
        assert!(validate_host("::1").is_ok());
        assert!(validate_host("a b").is_err());
        assert!(validate_host("").is_err());
        assert!(validate_host(&"h".repeat(256)).is_err());
    }

    #[test]
    fn meta_limits_are_enforced() {
        let mut meta = Meta::new();
        meta.insert("k".into(), Value::from("x".repeat(100)));
        let limits = MetaLimits { max_bytes: 50, max_depth: 2 };
        assert!(matches!(validate_meta(&meta, &limits), Err(MetaError::TooLarge { .. })));
        let mut deep = Value::Null;
        for _ in 0..3 {
            deep = Value::List(vec![deep]);
        }
        let meta: Meta = [("d".to_string(), deep)].into_iter().collect();
        assert_eq!(validate_meta(&meta, &limits), Err(MetaError::TooDeep { depth: 3, max: 2 }));
    }

    #[test]
    fn registration_splits_names() {
        let r = Registration::from_name("web@1.2.3");
        assert_eq!((r.role.as_str(), r.version.as_deref()), ("web", Some("1.2.3")));
        assert_eq!(Registration::from_name("db").version, None);
    }

    #[test]
    fn ipv6_addresses_get_brackets() {
        let record = Record {
            id: RecordId::new("x").unwrap(),
            role: Role::new("r").unwrap(),
            version: None,
            host: "::1".into(),
            port: 80,
            meta: Meta::new(),
            origin: HubId(0),
            incarnation: 1,
        };
        assert_eq!(record.address(), "[::1]:80");
        assert_eq!(record.name(), "r");
    }
}
