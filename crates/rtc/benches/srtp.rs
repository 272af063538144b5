//! SRTP per-packet cost: protect, and protect + unprotect, of a 1200-byte RTP packet for both
//! profiles, beside the bare primitives they are built on (aws-lc-rs AES-128-GCM seal and
//! HMAC-SHA1 of the same 1200 bytes) and RustCrypto's `aes-gcm` 0.10 seal for the choice of
//! crypto library. Throughput is in packets (elements) per second.
//!
//! `cargo bench -p rtc --bench srtp -- --warm-up-time 1 --measurement-time 3`

// A benchmark is test code: fixed keys and buffers that cannot fail.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtc::srtp::{SrtpProfile, SrtpSession};

const PACKET: usize = 1200;

fn packet(seq: u16) -> [u8; PACKET] {
    let mut p = [0xa5u8; PACKET];
    p[..12].copy_from_slice(&[0x80, 96, 0, 0, 0, 0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef]);
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p
}

fn srtp(c: &mut Criterion) {
    let mut group = c.benchmark_group("srtp");
    group.throughput(Throughput::Elements(1));
    for (name, profile) in [
        ("AES_CM_128_HMAC_SHA1_80", SrtpProfile::Aes128CmSha1_80),
        ("AEAD_AES_128_GCM", SrtpProfile::AeadAes128Gcm),
    ] {
        let salt = vec![3u8; profile.salt_len()];
        let mut tx = SrtpSession::new(profile, &[1; 16], &salt).unwrap();
        let mut rx = SrtpSession::new(profile, &[1; 16], &salt).unwrap();
        let mut buf = [0u8; PACKET + 16];
        let mut seq = 0u16;
        group.bench_function(format!("protect/{name}"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                buf[..PACKET].copy_from_slice(&packet(seq));
                black_box(tx.protect_rtp(&mut buf, PACKET).unwrap())
            })
        });
        let mut tx = SrtpSession::new(profile, &[1; 16], &salt).unwrap();
        group.bench_function(format!("protect+unprotect/{name}"), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                buf[..PACKET].copy_from_slice(&packet(seq));
                let n = tx.protect_rtp(&mut buf, PACKET).unwrap();
                black_box(rx.unprotect_rtp(&mut buf[..n]).unwrap())
            })
        });
    }
    group.finish();
}

fn primitives(c: &mut Criterion) {
    let mut group = c.benchmark_group("primitive");
    group.throughput(Throughput::Elements(1));
    let mut buf = packet(1);

    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[1; 16]).unwrap());
    group.bench_function("aws-lc-rs AES-128-GCM seal 1200B", |b| {
        b.iter(|| {
            let nonce = Nonce::assume_unique_for_key([7; 12]);
            black_box(
                key.seal_in_place_separate_tag(nonce, Aad::empty(), &mut buf)
                    .unwrap(),
            )
        })
    });

    use aes_gcm::aead::{AeadInPlace, KeyInit};
    let rc = aes_gcm::Aes128Gcm::new_from_slice(&[1; 16]).unwrap();
    group.bench_function("RustCrypto aes-gcm 0.10 seal 1200B", |b| {
        b.iter(|| {
            let nonce = aes_gcm::Nonce::from_slice(&[7; 12]);
            black_box(rc.encrypt_in_place_detached(nonce, b"", &mut buf).unwrap())
        })
    });

    let mac = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &[5; 20]);
    group.bench_function("aws-lc-rs HMAC-SHA1 1200B", |b| {
        b.iter(|| black_box(hmac::sign(&mac, &buf)))
    });
    group.finish();
}

criterion_group!(benches, srtp, primitives);
criterion_main!(benches);
