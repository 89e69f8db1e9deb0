//! Wire benchmarks: frame encode and decode, frame signatures, and ed25519 single versus
//! batched verification.
//!
//! Groups:
//! - `frame`: `encode/change` and `decode/change` frame a `HubMessage::Change` (what
//!   fan-out sends; encoded once per change, whatever the number of recipients);
//!   `encode_signed/register` and `verify_decode/register` frame, sign, verify and
//!   decode a `ClientMessage::Register` (a signed request on a keyed hub). Throughput:
//!   frames.
//! - `auth`: `Signer::sign` and `Verifier::verify` of that register's bytes (the
//!   verifier keeps its connection's key decompressed, as on a live connection).
//! - `ed25519`: `verify_strict/N` (what `Verifier` calls, N signatures one by one, N
//!   keys) against `verify_batch/N` (ed25519-dalek's batch equation over the same N) for
//!   N = 1, 16, 64, 256. Throughput: signatures, so criterion's rate is per signature.
//!
//! ```sh
//! cargo bench -p seaport-benches --bench frame
//! cargo bench -p seaport-benches --bench frame -- --warm-up-time 1 --measurement-time 3 ed25519/
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::{Signature, Signer as _, VerifyingKey};
use seaport_benches::fixtures::record;
use seaport_core::message::{Change, ClientMessage, HubMessage};
use seaport_core::{Registration, Value};
use seaport_net::frame::{self, DEFAULT_MAX_FRAME, DOMAIN_TAG};
use seaport_net::{KeyPair, Signer, Verifier};

const NONCE: [u8; 32] = [7; 32];

/// A register as a service sends it: a role, a version and two metadata entries.
fn register_message() -> ClientMessage {
    let mut registration = Registration::from_name("web@1.2.3");
    registration.meta.insert("env".into(), Value::from("prod"));
    registration.meta.insert("zone".into(), Value::from("a"));
    ClientMessage::Register { request: 42, registration }
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    group.throughput(Throughput::Elements(1));

    let change = HubMessage::Change { revision: 1, change: Change::Register(Arc::new(record(7, 100))) };
    let mut buf = Vec::with_capacity(1024);
    group.bench_function("encode/change", |b| {
        b.iter(|| {
            buf.clear();
            frame::encode_unsigned(black_box(&change), &mut buf).unwrap();
            buf.len()
        })
    });
    let encoded = buf.clone();
    group.bench_function("decode/change", |b| {
        b.iter(|| {
            let (f, used) = frame::parse_frame(black_box(&encoded), DEFAULT_MAX_FRAME).unwrap().unwrap();
            let message: HubMessage = f.decode().unwrap();
            (message, used)
        })
    });

    let register = register_message();
    let mut signer = Signer::new(KeyPair::from_secret_bytes(&[1; 32]), NONCE);
    group.bench_function("encode_signed/register", |b| {
        b.iter(|| {
            buf.clear();
            frame::encode_signed(black_box(&register), &mut signer, &mut buf).unwrap();
            buf.len()
        })
    });

    // Frames with increasing sequence numbers, verified in order; the verifier starts
    // over (as a new connection would) when they run out.
    let signed = signed_frames(1024);
    group.bench_function("verify_decode/register", |b| {
        b.iter_custom(|iters| {
            let mut verifier = Verifier::new(NONCE);
            let start = Instant::now();
            for i in 0..iters as usize {
                if i % signed.len() == 0 && i > 0 {
                    verifier = Verifier::new(NONCE);
                }
                let (f, _) = frame::parse_frame(&signed[i % signed.len()], DEFAULT_MAX_FRAME).unwrap().unwrap();
                let header = f.signed.expect("a signed frame");
                black_box(verifier.verify(&header, f.message).unwrap());
                black_box(f.decode::<ClientMessage>().unwrap());
            }
            start.elapsed()
        })
    });
    group.finish();
}

/// `n` encoded signed register frames of one connection, sequence numbers 1 to `n`.
fn signed_frames(n: usize) -> Vec<Vec<u8>> {
    let register = register_message();
    let mut signer = Signer::new(KeyPair::from_secret_bytes(&[1; 32]), NONCE);
    (0..n)
        .map(|_| {
            let mut buf = Vec::new();
            frame::encode_signed(&register, &mut signer, &mut buf).unwrap();
            buf
        })
        .collect()
}

fn auth(c: &mut Criterion) {
    let mut group = c.benchmark_group("auth");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    group.throughput(Throughput::Elements(1));
    let message = frame::encode_message(&register_message()).unwrap();
    let mut signer = Signer::new(KeyPair::from_secret_bytes(&[1; 32]), NONCE);
    group.bench_function("sign/register", |b| b.iter(|| signer.sign(black_box(&message))));

    let mut signer = Signer::new(KeyPair::from_secret_bytes(&[1; 32]), NONCE);
    let headers: Vec<_> = (0..1024).map(|_| signer.sign(&message)).collect();
    group.bench_function("verify/register", |b| {
        b.iter_custom(|iters| {
            let mut verifier = Verifier::new(NONCE);
            let start = Instant::now();
            for i in 0..iters as usize {
                if i % headers.len() == 0 && i > 0 {
                    verifier = Verifier::new(NONCE);
                }
                black_box(verifier.verify(&headers[i % headers.len()], black_box(&message)).unwrap());
            }
            start.elapsed()
        })
    });
    group.finish();
}

fn ed25519(c: &mut Criterion) {
    let mut group = c.benchmark_group("ed25519");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    // What a frame signature covers: tag, nonce, sequence number, a register's bytes.
    let body = frame::encode_message(&register_message()).unwrap();
    for n in [1usize, 16, 64, 256] {
        let keys: Vec<KeyPair> = (0..n).map(|i| KeyPair::from_secret_bytes(&[i as u8 + 1; 32])).collect();
        let messages: Vec<Vec<u8>> =
            (0..n as u64).map(|seq| [DOMAIN_TAG, &NONCE, &seq.to_be_bytes(), &body].concat()).collect();
        let signatures: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.as_signing_key().sign(m)).collect();
        let verifying: Vec<VerifyingKey> = keys.iter().map(|k| *k.public().as_verifying_key()).collect();
        let slices: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("verify_strict", n), |b| {
            b.iter(|| {
                for ((key, m), s) in verifying.iter().zip(&slices).zip(&signatures) {
                    key.verify_strict(black_box(m), s).unwrap();
                }
            })
        });
        group.bench_function(BenchmarkId::new("verify_batch", n), |b| {
            b.iter(|| ed25519_dalek::verify_batch(black_box(&slices), &signatures, &verifying).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, frames, auth, ed25519);
criterion_main!(benches);
