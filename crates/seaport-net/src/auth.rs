//! ed25519 keys, key files, and signing and verifying frames.
//!
//! # Keys and key files
//!
//! Keys are plain ed25519 keys in the PEM formats of
//! `openssl genpkey -algorithm ed25519` (PKCS#8 `PRIVATE KEY`) and
//! `openssl pkey -pubout` (SPKI `PUBLIC KEY`). Two JSON file formats hold
//! them:
//!
//! * a **key-pair file**, what a client or hub signs with:
//!   `{"public": "<SPKI PEM>", "private": "<PKCS#8 PEM>"}` (other fields are
//!   ignored). Loading checks that `public` belongs to `private`.
//!   [`KeyPair::save`] creates it with mode 0600 on Unix, and loading warns
//!   when the file is readable by group or others.
//! * an **authorized-keys file**, the keys a hub accepts:
//!   `["<SPKI PEM>", "<SPKI PEM>", ...]`.
//!
//! [`KeyFile::load`] tells them apart (object or array). To make a key pair
//! with openssl:
//!
//! ```text
//! openssl genpkey -algorithm ed25519 -out key.pem
//! openssl pkey -in key.pem -pubout
//! ```
//!
//! and paste both PEMs (newlines as `\n`) into the JSON, or let
//! [`KeyPair::generate`] and [`KeyPair::save`] do it.
//!
//! # Displaying public keys
//!
//! [`PublicKey`]'s `Display` is a short fingerprint for logs: `ed25519:`
//! followed by the first 8 bytes of the raw key in hex
//! (`ed25519:ae0d4fa9875034ab`); `{:#}` shows all 32 bytes. Use
//! [`PublicKey::to_pem`] for the SPKI PEM.
//!
//! # Signing frames
//!
//! The hub picks a random 32-byte nonce for each connection
//! ([`generate_nonce`]) and sends it in its hello. The client then signs
//! with a [`Signer`] and the hub checks with a [`Verifier`], both built from
//! that nonce. The signed bytes are
//! `DOMAIN_TAG || nonce || seq (u64 BE) || message` (see [`crate::frame`]);
//! `seq` starts at 1 and strictly increases, and the verifier refuses any
//! `seq` not above the last one it accepted. So a captured frame cannot be
//! replayed, neither on its own connection (old `seq`) nor on another one
//! (different nonce). The verifier accepts any valid key: whether that key
//! is *authorized* is for the hub to decide from the [`PublicKey`] it
//! returns.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::Path;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{AuthError, KeyError};
use crate::frame::{hex, SignedHeader, DOMAIN_TAG};

/// Length of a connection nonce.
pub const NONCE_LEN: usize = 32;

/// A fresh random connection nonce (from the OS random generator).
pub fn generate_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    nonce
}

/// An ed25519 public key, compared, hashed and ordered by its 32 bytes.
#[derive(Clone, Copy)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The raw 32-byte key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// A key from its raw 32 bytes, refusing non-points and weak keys.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        VerifyingKey::from_bytes(bytes)
            .ok()
            .filter(|key| !key.is_weak())
            .map(PublicKey)
            .ok_or(KeyError::InvalidPublicKey)
    }

    /// Parses an SPKI `PUBLIC KEY` PEM, as printed by
    /// `openssl pkey -in key.pem -pubout`.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        parse_public_pem(pem, None, "public key")
    }

    /// The SPKI `PUBLIC KEY` PEM (LF line endings, final newline), the same
    /// text `openssl pkey -pubout` prints.
    pub fn to_pem(&self) -> String {
        self.0.to_public_key_pem(LineEnding::LF).expect("encoding a valid ed25519 public key as SPKI PEM cannot fail")
    }

    /// The short fingerprint also shown by `Display`: `ed25519:` and the
    /// first 8 key bytes in hex.
    pub fn fingerprint(&self) -> String {
        format!("ed25519:{}", hex(&self.to_bytes()[..8]))
    }

    /// The underlying `ed25519-dalek` key.
    pub fn as_verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes() == other.0.as_bytes()
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_bytes().hash(state);
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.as_bytes().cmp(other.0.as_bytes())
    }
}

impl fmt::Display for PublicKey {
    /// `ed25519:<first 8 bytes hex>`, or all 32 bytes with `{:#}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "ed25519:{}", hex(self.0.as_bytes()))
        } else {
            f.write_str(&self.fingerprint())
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex(self.0.as_bytes()))
    }
}

impl From<VerifyingKey> for PublicKey {
    fn from(key: VerifyingKey) -> Self {
        PublicKey(key)
    }
}

/// An ed25519 key pair. Its `Debug` shows only the public key.
#[derive(Clone)]
pub struct KeyPair(SigningKey);

impl KeyPair {
    /// A new random key pair (from the OS random generator).
    pub fn generate() -> Self {
        KeyPair(SigningKey::generate(&mut OsRng))
    }

    /// The key pair of a 32-byte ed25519 secret key (seed).
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        KeyPair(SigningKey::from_bytes(secret))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Parses a PKCS#8 `PRIVATE KEY` PEM, as written by
    /// `openssl genpkey -algorithm ed25519`.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        parse_private_pem(pem, None)
    }

    /// The PKCS#8 `PRIVATE KEY` PEM, in the same form (v1, no public key,
    /// LF line endings) as `openssl genpkey` writes.
    pub fn to_pkcs8_pem(&self) -> String {
        let bytes = ed25519_dalek::pkcs8::KeypairBytes { secret_key: self.0.to_bytes(), public_key: None };
        bytes
            .to_pkcs8_pem(LineEnding::LF)
            .expect("encoding an ed25519 secret key as PKCS#8 PEM cannot fail")
            .to_string()
    }

    /// Parses key-pair JSON: `{"public": "<SPKI PEM>", "private": "<PKCS#8 PEM>"}`.
    pub fn from_json(json: &str) -> Result<Self, KeyError> {
        KeyFile::from_json(json)?.into_pair(None)
    }

    /// Key-pair JSON (pretty-printed), the format of [`KeyPair::from_json`].
    pub fn to_json(&self) -> String {
        let json = PairJson { public: self.public().to_pem(), private: self.to_pkcs8_pem() };
        serde_json::to_string_pretty(&json).expect("serializing two strings cannot fail")
    }

    /// Loads a key-pair file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        KeyFile::load(path)?.into_pair(Some(path))
    }

    /// Writes a key-pair file, refusing to replace an existing file
    /// ([`KeyError::Exists`]). On Unix the file is created with mode 0600.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), KeyError> {
        use std::io::Write;

        let path = path.as_ref();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let io_error = |source| KeyError::Io { path: path.to_owned(), source };
        let mut file = options.open(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists { path: path.to_owned() },
            _ => io_error(source),
        })?;
        let mut json = self.to_json();
        json.push('\n');
        file.write_all(json.as_bytes()).map_err(io_error)?;
        file.sync_all().map_err(io_error)
    }

    /// The underlying `ed25519-dalek` key.
    pub fn as_signing_key(&self) -> &SigningKey {
        &self.0
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair").field("public", &self.public()).finish_non_exhaustive()
    }
}

/// The contents of a key file: a key pair or a list of authorized keys.
#[derive(Debug, Clone)]
pub enum KeyFile {
    /// A JSON object `{"public": ..., "private": ...}`.
    Pair(KeyPair),
    /// A JSON array of SPKI PEM strings.
    Authorized(Vec<PublicKey>),
}

/// The JSON shape of a key-pair file.
#[derive(Serialize, Deserialize)]
struct PairJson {
    public: String,
    private: String,
}

impl KeyFile {
    /// Loads a key file of either kind.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.to_owned(), source })?;
        let file = parse_key_file(&text, Some(path))?;
        if matches!(file, KeyFile::Pair(_)) {
            warn_if_readable_by_others(path);
        }
        Ok(file)
    }

    /// Parses key-file JSON of either kind.
    pub fn from_json(json: &str) -> Result<Self, KeyError> {
        parse_key_file(json, None)
    }

    /// What the file holds, for messages.
    fn describe(&self) -> &'static str {
        match self {
            KeyFile::Pair(_) => "a key pair",
            KeyFile::Authorized(_) => "an authorized-keys list",
        }
    }

    fn into_pair(self, path: Option<&Path>) -> Result<KeyPair, KeyError> {
        match self {
            KeyFile::Pair(pair) => Ok(pair),
            other => Err(KeyError::WrongKind {
                path: path.map(Path::to_owned),
                expected: "a key pair",
                found: other.describe(),
            }),
        }
    }

    fn into_authorized(self, path: Option<&Path>) -> Result<Vec<PublicKey>, KeyError> {
        match self {
            KeyFile::Authorized(keys) => Ok(keys),
            other => Err(KeyError::WrongKind {
                path: path.map(Path::to_owned),
                expected: "an authorized-keys list",
                found: other.describe(),
            }),
        }
    }
}

/// Loads an authorized-keys file (a JSON array of SPKI PEM strings).
pub fn load_authorized(path: impl AsRef<Path>) -> Result<Vec<PublicKey>, KeyError> {
    let path = path.as_ref();
    KeyFile::load(path)?.into_authorized(Some(path))
}

/// Parses authorized-keys JSON (a JSON array of SPKI PEM strings).
pub fn authorized_from_json(json: &str) -> Result<Vec<PublicKey>, KeyError> {
    KeyFile::from_json(json)?.into_authorized(None)
}

/// Authorized-keys JSON (pretty-printed) for `keys`.
pub fn authorized_to_json(keys: &[PublicKey]) -> String {
    let pems: Vec<String> = keys.iter().map(PublicKey::to_pem).collect();
    serde_json::to_string_pretty(&pems).expect("serializing strings cannot fail")
}

fn parse_key_file(json: &str, path: Option<&Path>) -> Result<KeyFile, KeyError> {
    let json_error = |source| KeyError::Json { path: path.map(Path::to_owned), source };
    let value: serde_json::Value = serde_json::from_str(json).map_err(json_error)?;
    let found = match &value {
        serde_json::Value::Object(_) => {
            let pair: PairJson = serde_json::from_value(value).map_err(json_error)?;
            let key = parse_private_pem(&pair.private, path)?;
            let public = parse_public_pem(&pair.public, path, "\"public\"")?;
            if key.public() != public {
                return Err(KeyError::Mismatch { path: path.map(Path::to_owned) });
            }
            return Ok(KeyFile::Pair(key));
        }
        serde_json::Value::Array(_) => {
            let pems: Vec<String> = serde_json::from_value(value).map_err(json_error)?;
            return pems
                .iter()
                .enumerate()
                .map(|(i, pem)| parse_public_pem(pem, path, &format!("authorized key #{}", i + 1)))
                .collect::<Result<_, _>>()
                .map(KeyFile::Authorized);
        }
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
    };
    Err(KeyError::NotAKeyFile { path: path.map(Path::to_owned), found })
}

/// Explains common PEM mix-ups better than the parser's own error.
fn pem_hint(pem: &str, reason: String, wanted: &str) -> String {
    let label = |l: &str| pem.contains(&format!("-----BEGIN {l}-----"));
    if wanted == "PRIVATE KEY" && label("PUBLIC KEY") {
        "this is a public key, a PKCS#8 PRIVATE KEY is needed".to_owned()
    } else if wanted == "PUBLIC KEY" && label("PRIVATE KEY") {
        "this is a private key, an SPKI PUBLIC KEY is needed".to_owned()
    } else if label("ENCRYPTED PRIVATE KEY") {
        "encrypted keys are not supported; decrypt with `openssl pkey -in key.pem -out plain.pem`".to_owned()
    } else {
        reason
    }
}

fn parse_private_pem(pem: &str, path: Option<&Path>) -> Result<KeyPair, KeyError> {
    SigningKey::from_pkcs8_pem(pem.trim()).map(KeyPair).map_err(|e| KeyError::Pem {
        path: path.map(Path::to_owned),
        what: "\"private\" key".to_owned(),
        reason: pem_hint(pem, e.to_string(), "PRIVATE KEY"),
    })
}

fn parse_public_pem(pem: &str, path: Option<&Path>, what: &str) -> Result<PublicKey, KeyError> {
    let pem_error = |reason| KeyError::Pem { path: path.map(Path::to_owned), what: what.to_owned(), reason };
    let key = VerifyingKey::from_public_key_pem(pem.trim())
        .map_err(|e| pem_error(pem_hint(pem, e.to_string(), "PUBLIC KEY")))?;
    if key.is_weak() {
        return Err(pem_error("weak (small-order) key".to_owned()));
    }
    Ok(PublicKey(key))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "private key file is accessible by other users; run `chmod 600` on it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// The bytes an ed25519 frame signature covers.
fn signing_input(nonce: &[u8; NONCE_LEN], seq: u64, message: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(DOMAIN_TAG.len() + NONCE_LEN + 8 + message.len());
    input.extend_from_slice(DOMAIN_TAG);
    input.extend_from_slice(nonce);
    input.extend_from_slice(&seq.to_be_bytes());
    input.extend_from_slice(message);
    input
}

/// Signs the frames of one connection with strictly increasing sequence
/// numbers, starting at 1.
pub struct Signer {
    key: KeyPair,
    nonce: [u8; NONCE_LEN],
    next_seq: u64,
}

impl Signer {
    /// A signer for the connection whose hub sent `nonce`.
    pub fn new(key: KeyPair, nonce: [u8; NONCE_LEN]) -> Self {
        Signer { key, nonce, next_seq: 1 }
    }

    /// Signs `message` (bincode bytes) with the next sequence number.
    ///
    /// After 2^64 - 1 frames the sequence number stops increasing, so the
    /// peer refuses further frames as replays rather than accept a wrapped
    /// sequence.
    pub fn sign(&mut self, message: &[u8]) -> SignedHeader {
        let seq = self.next_seq;
        self.next_seq = seq.saturating_add(1);
        let signature = self.key.0.sign(&signing_input(&self.nonce, seq, message));
        SignedHeader { seq, key: self.key.public().to_bytes(), sig: signature.to_bytes() }
    }

    /// The sequence number the next frame will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The connection nonce.
    pub fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }

    /// The key frames are signed with.
    pub fn key(&self) -> &KeyPair {
        &self.key
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key", &self.key)
            .field("nonce", &format_args!("{}", hex(&self.nonce)))
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

/// Verifies the signed frames of one connection.
pub struct Verifier {
    nonce: [u8; NONCE_LEN],
    last_seq: u64,
    /// The last key seen, to skip decompressing the same key every frame. Boxed: a key
    /// with its decompressed point is about 200 bytes, which every connection carried
    /// inline, signed frames or not.
    last_key: Option<Box<PublicKey>>,
}

impl Verifier {
    /// A verifier for the connection this side sent `nonce` on.
    pub fn new(nonce: [u8; NONCE_LEN]) -> Self {
        Verifier { nonce, last_seq: 0, last_key: None }
    }

    /// Checks a signed frame and returns its signer's key.
    ///
    /// Refuses a sequence number not above the last accepted one
    /// ([`AuthError::Replay`]), key bytes that are not a valid key
    /// ([`AuthError::InvalidKey`]) and signatures that do not match under
    /// `verify_strict` ([`AuthError::BadSignature`]). A refused frame leaves
    /// the verifier unchanged. Any valid key is accepted: authorization is up
    /// to the caller.
    pub fn verify(&mut self, header: &SignedHeader, message: &[u8]) -> Result<PublicKey, AuthError> {
        if header.seq <= self.last_seq {
            return Err(AuthError::Replay { seq: header.seq, last: self.last_seq });
        }
        let key = match self.last_key.as_deref() {
            Some(&key) if key.0.as_bytes() == &header.key => key,
            _ => VerifyingKey::from_bytes(&header.key).map(PublicKey).map_err(|_| AuthError::InvalidKey)?,
        };
        let signature = Signature::from_bytes(&header.sig);
        key.0
            .verify_strict(&signing_input(&self.nonce, header.seq, message), &signature)
            .map_err(|_| AuthError::BadSignature)?;
        self.last_seq = header.seq;
        match &mut self.last_key {
            Some(last) => **last = key,
            None => self.last_key = Some(Box::new(key)),
        }
        Ok(key)
    }

    /// The last sequence number accepted (0 before the first frame).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The connection nonce.
    pub fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("nonce", &format_args!("{}", hex(&self.nonce)))
            .field("last_seq", &self.last_seq)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::path::PathBuf;

    // Generated with `openssl genpkey -algorithm ed25519 -out k1.pem` and
    // `openssl pkey -in k1.pem -pubout` (OpenSSL 3.0.19).
    const K1_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEIOXOrcrw8jz0SkbtZ9PdC/k4rOfSCG8YzgjJYUNXy6xb\n\
        -----END PRIVATE KEY-----\n";
    const K1_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\n\
        MCowBQYDK2VwAyEArg1PqYdQNKuIxggtzclQ5kO4RQhNrPHY2TKsRexZttI=\n\
        -----END PUBLIC KEY-----\n";
    /// `openssl pkey -in k1.pem -text -noout`, "pub:".
    const K1_PUBLIC_HEX: &str = "ae0d4fa9875034ab88c6082dcdc950e643b845084dacf1d8d932ac45ec59b6d2";
    const K2_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEIJ4CWLtlUDxJr5KiFlEdzH0P8u1o/AFgd/a77sFoS1UH\n\
        -----END PRIVATE KEY-----\n";
    const K2_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\n\
        MCowBQYDK2VwAyEAxxC2QTf+ekG7BhTCaa1ojcm2wIDM+XXF2uLoYxYp2mI=\n\
        -----END PUBLIC KEY-----\n";
    /// `openssl pkeyutl -sign -rawin -inkey k1.pem` over
    /// DOMAIN_TAG || [7; 32] || 1u64 BE || b"hello".
    const K1_SIG_HELLO: &str = "080cce8c8c59fd310ce1c9d9c8ffe5b16b301ae94e7449e044c431c57943caa3\
        678615f4ad26f6988ba95304275a7fb8ac616095fb2039ca7b2ea7f835fac701";

    fn pair_json(public: &str, private: &str) -> String {
        serde_json::json!({ "public": public, "private": private }).to_string()
    }

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0; N];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    /// A fresh empty directory under the system temp dir.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "seaport-net-{name}-{}-{}",
            std::process::id(),
            hex(&generate_nonce()[..6])
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_verifier_holds_no_key_inline() {
        // Every connection has one, signed or not: the ~200-byte key lives on the heap,
        // and only once a signed frame has come.
        assert!(std::mem::size_of::<Verifier>() <= 56, "{} bytes", std::mem::size_of::<Verifier>());
    }

    #[test]
    fn openssl_pems_load_and_round_trip_exactly() {
        let pair = KeyPair::from_json(&pair_json(K1_PUBLIC, K1_PRIVATE)).unwrap();
        assert_eq!(pair.public().to_bytes(), unhex::<32>(K1_PUBLIC_HEX));
        assert_eq!(pair.to_pkcs8_pem(), K1_PRIVATE);
        assert_eq!(pair.public().to_pem(), K1_PUBLIC);
        let json: serde_json::Value = serde_json::from_str(&pair.to_json()).unwrap();
        assert_eq!(json["public"], K1_PUBLIC);
        assert_eq!(json["private"], K1_PRIVATE);
        assert_eq!(KeyPair::from_pkcs8_pem(K1_PRIVATE).unwrap().public(), pair.public());
        assert_eq!(PublicKey::from_pem(K1_PUBLIC).unwrap(), pair.public());
    }

    #[test]
    fn pem_whitespace_and_crlf_tolerated() {
        let crlf = K1_PUBLIC.replace('\n', "\r\n");
        assert!(PublicKey::from_pem(&crlf).is_ok());
        assert!(PublicKey::from_pem(&format!("\n  {K1_PUBLIC}\n\n")).is_ok());
        assert!(PublicKey::from_pem(K1_PUBLIC.trim_end()).is_ok());
    }

    #[test]
    fn openssl_signature_verifies_and_matches_ours() {
        let nonce = [7; 32];
        let header = SignedHeader { seq: 1, key: unhex(K1_PUBLIC_HEX), sig: unhex(K1_SIG_HELLO) };
        let mut verifier = Verifier::new(nonce);
        let key = verifier.verify(&header, b"hello").unwrap();
        assert_eq!(key, PublicKey::from_pem(K1_PUBLIC).unwrap());

        // ed25519 is deterministic: our signer produces openssl's bytes.
        let mut signer = Signer::new(KeyPair::from_pkcs8_pem(K1_PRIVATE).unwrap(), nonce);
        assert_eq!(signer.sign(b"hello"), header);
    }

    #[test]
    fn mismatched_pair_refused() {
        let err = KeyPair::from_json(&pair_json(K2_PUBLIC, K1_PRIVATE)).unwrap_err();
        assert!(matches!(err, KeyError::Mismatch { path: None }), "{err}");
        assert!(err.to_string().contains("does not match"));
    }

    #[test]
    fn swapped_pems_explained() {
        let err = KeyPair::from_json(&pair_json(K1_PRIVATE, K1_PRIVATE)).unwrap_err();
        assert!(matches!(&err, KeyError::Pem { what, .. } if what == "\"public\""), "{err}");
        assert!(err.to_string().contains("this is a private key"), "{err}");
        let err = KeyPair::from_json(&pair_json(K1_PUBLIC, K1_PUBLIC)).unwrap_err();
        assert!(err.to_string().contains("this is a public key"), "{err}");
    }

    #[test]
    fn key_file_kinds() {
        let authorized = serde_json::json!([K1_PUBLIC, K2_PUBLIC]).to_string();
        match KeyFile::from_json(&authorized).unwrap() {
            KeyFile::Authorized(keys) => {
                assert_eq!(keys.len(), 2);
                assert_eq!(keys[0], PublicKey::from_pem(K1_PUBLIC).unwrap());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(KeyFile::from_json(&pair_json(K2_PUBLIC, K2_PRIVATE)).unwrap(), KeyFile::Pair(_)));
        assert!(matches!(
            KeyFile::from_json("[]").unwrap(),
            KeyFile::Authorized(keys) if keys.is_empty()
        ));
        assert!(matches!(KeyPair::from_json(&authorized), Err(KeyError::WrongKind { expected: "a key pair", .. })));
        assert!(matches!(authorized_from_json(&pair_json(K2_PUBLIC, K2_PRIVATE)), Err(KeyError::WrongKind { .. })));
        assert!(matches!(KeyFile::from_json("42"), Err(KeyError::NotAKeyFile { found: "a number", .. })));
        assert!(matches!(
            KeyFile::from_json(&serde_json::to_string(K1_PRIVATE).unwrap()),
            Err(KeyError::NotAKeyFile { found: "a string", .. })
        ));
        assert!(matches!(KeyFile::from_json("{"), Err(KeyError::Json { .. })));
        assert!(matches!(KeyFile::from_json(r#"{"public": "x"}"#), Err(KeyError::Json { .. })));
        assert!(matches!(KeyFile::from_json("[1]"), Err(KeyError::Json { .. })));
    }

    #[test]
    fn bad_authorized_entry_is_named() {
        let json = serde_json::json!([K1_PUBLIC, "garbage"]).to_string();
        let err = authorized_from_json(&json).unwrap_err();
        assert!(matches!(&err, KeyError::Pem { what, .. } if what == "authorized key #2"), "{err}");
    }

    #[test]
    fn authorized_json_round_trip() {
        let keys = vec![KeyPair::generate().public(), KeyPair::generate().public()];
        assert_eq!(authorized_from_json(&authorized_to_json(&keys)).unwrap(), keys);
    }

    #[test]
    fn save_load_and_errors_name_the_file() {
        let dir = temp_dir("keys");
        let pair_path = dir.join("client.json");
        let pair = KeyPair::generate();
        pair.save(&pair_path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&pair_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(KeyPair::load(&pair_path).unwrap().public(), pair.public());
        match pair.save(&pair_path) {
            Err(KeyError::Exists { path }) => assert_eq!(path, pair_path),
            other => panic!("{other:?}"),
        }

        let auth_path = dir.join("authorized.json");
        std::fs::write(&auth_path, authorized_to_json(&[pair.public()])).unwrap();
        assert_eq!(load_authorized(&auth_path).unwrap(), vec![pair.public()]);
        let err = KeyPair::load(&auth_path).unwrap_err();
        assert!(err.to_string().contains("authorized.json"), "{err}");
        assert!(err.to_string().contains("an authorized-keys list"), "{err}");
        assert!(matches!(KeyFile::load(&pair_path), Ok(KeyFile::Pair(_))));

        let missing = dir.join("missing.json");
        let err = KeyPair::load(&missing).unwrap_err();
        assert!(matches!(&err, KeyError::Io { path, .. } if path == &missing));
        assert!(err.to_string().contains("missing.json"), "{err}");

        let broken = dir.join("broken.json");
        std::fs::write(&broken, "{\"public\": ").unwrap();
        let err = load_authorized(&broken).unwrap_err();
        assert!(matches!(err, KeyError::Json { path: Some(_), .. }));
        assert!(err.to_string().contains("broken.json"), "{err}");

        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn public_key_traits() {
        let a = PublicKey::from_pem(K1_PUBLIC).unwrap();
        let b = PublicKey::from_pem(K2_PUBLIC).unwrap();
        assert_eq!(a.to_string(), "ed25519:ae0d4fa9875034ab");
        assert_eq!(format!("{a:#}"), format!("ed25519:{K1_PUBLIC_HEX}"));
        assert_eq!(a.cmp(&b), a.to_bytes().cmp(&b.to_bytes()));
        let set: HashSet<_> = [a, b, a].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_eq!(PublicKey::from_bytes(&a.to_bytes()).unwrap(), a);
        // The identity point is a weak key.
        let mut identity = [0; 32];
        identity[0] = 1;
        assert!(matches!(PublicKey::from_bytes(&identity), Err(KeyError::InvalidPublicKey)));
        let debug = format!("{:?}", KeyPair::from_pkcs8_pem(K1_PRIVATE).unwrap());
        assert!(!debug.contains("e5ce"), "secret leaked: {debug}");
    }

    #[test]
    fn sign_and_verify() {
        let key = KeyPair::generate();
        let nonce = generate_nonce();
        let mut signer = Signer::new(key.clone(), nonce);
        let mut verifier = Verifier::new(nonce);
        for i in 1..=3u64 {
            let header = signer.sign(b"msg");
            assert_eq!(header.seq, i);
            assert_eq!(verifier.verify(&header, b"msg"), Ok(key.public()));
            assert_eq!(verifier.last_seq(), i);
        }
    }

    #[test]
    fn replay_on_same_connection_refused() {
        let nonce = generate_nonce();
        let mut signer = Signer::new(KeyPair::generate(), nonce);
        let mut verifier = Verifier::new(nonce);
        let first = signer.sign(b"a");
        let second = signer.sign(b"b");
        assert!(verifier.verify(&first, b"a").is_ok());
        assert_eq!(verifier.verify(&first, b"a"), Err(AuthError::Replay { seq: 1, last: 1 }));
        assert!(verifier.verify(&second, b"b").is_ok());
        // Reordered: an older frame after a newer one.
        let third = signer.sign(b"c");
        let fourth = signer.sign(b"d");
        assert!(verifier.verify(&fourth, b"d").is_ok());
        assert_eq!(verifier.verify(&third, b"c"), Err(AuthError::Replay { seq: 3, last: 4 }));
    }

    #[test]
    fn replay_on_other_connection_refused() {
        let key = KeyPair::generate();
        let mut signer = Signer::new(key, generate_nonce());
        let captured = signer.sign(b"register");
        let mut other = Verifier::new(generate_nonce());
        assert_eq!(other.verify(&captured, b"register"), Err(AuthError::BadSignature));
        assert_eq!(other.last_seq(), 0);
    }

    #[test]
    fn tampering_refused() {
        let nonce = generate_nonce();
        let mut signer = Signer::new(KeyPair::generate(), nonce);
        let header = signer.sign(b"register web");
        let mut verifier = Verifier::new(nonce);
        assert_eq!(verifier.verify(&header, b"register evil"), Err(AuthError::BadSignature));
        let mut bumped = header;
        bumped.seq = 2;
        assert_eq!(verifier.verify(&bumped, b"register web"), Err(AuthError::BadSignature));
        let mut other_key = header;
        other_key.key = KeyPair::generate().public().to_bytes();
        assert_eq!(verifier.verify(&other_key, b"register web"), Err(AuthError::BadSignature));
        let mut bad_sig = header;
        bad_sig.sig[10] ^= 1;
        assert_eq!(verifier.verify(&bad_sig, b"register web"), Err(AuthError::BadSignature));
        // A failure does not advance the sequence: the genuine frame still passes.
        assert!(verifier.verify(&header, b"register web").is_ok());
    }

    #[test]
    fn invalid_key_bytes_refused() {
        let nonce = generate_nonce();
        let mut header = Signer::new(KeyPair::generate(), nonce).sign(b"x");
        // About half of all y coordinates have no point on the curve.
        header.key = (2..=255u8)
            .map(|y| {
                let mut key = [0; 32];
                key[0] = y;
                key
            })
            .find(|key| VerifyingKey::from_bytes(key).is_err())
            .unwrap();
        assert_eq!(Verifier::new(nonce).verify(&header, b"x"), Err(AuthError::InvalidKey));
    }

    #[test]
    fn unknown_key_still_verifies() {
        // Authorization is the hub's business, not the verifier's.
        let nonce = generate_nonce();
        let stranger = KeyPair::generate();
        let header = Signer::new(stranger.clone(), nonce).sign(b"hi");
        assert_eq!(Verifier::new(nonce).verify(&header, b"hi"), Ok(stranger.public()));
    }

    #[test]
    fn keys_can_change_on_a_connection() {
        let nonce = generate_nonce();
        let (a, b) = (KeyPair::generate(), KeyPair::generate());
        let mut verifier = Verifier::new(nonce);
        let ha = Signer::new(a.clone(), nonce).sign(b"x");
        let mut sb = Signer::new(b.clone(), nonce);
        sb.sign(b"skip");
        let hb = sb.sign(b"y");
        assert_eq!(verifier.verify(&ha, b"x"), Ok(a.public()));
        assert_eq!(verifier.verify(&hb, b"y"), Ok(b.public()));
    }
}
