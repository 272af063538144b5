//! Our self-signed ECDSA P-256 certificate (a small DER builder), its SHA-256 fingerprint for
//! SDP (RFC 8122 §5), and the public key of a peer's certificate (a small DER walker).
//!
//! WebRTC authenticates certificates by fingerprint only (RFC 8827 §6.5), so we need neither
//! chains nor names: just tbsCertificate → subjectPublicKeyInfo (RFC 5280 §4.1).

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::{agreement, digest, rand::SystemRandom, signature};

use super::error::DtlsError;
use crate::rand::Rng;

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// The SHA-256 fingerprint of a DER certificate, shown as in SDP: `AB:CD:…`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of `der`.
    pub fn of(der: &[u8]) -> Self {
        let mut fp = [0u8; 32];
        fp.copy_from_slice(digest::digest(&digest::SHA256, der).as_ref());
        Fingerprint(fp)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            write!(f, "{}{b:02X}", if i == 0 { "" } else { ":" })?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = DtlsError;

    /// Parses `AB:CD:…` (32 bytes), optionally preceded by `sha-256 ` as in `a=fingerprint`.
    fn from_str(s: &str) -> Result<Self, DtlsError> {
        let err = DtlsError::Decode("sha-256 fingerprint");
        let s = s.trim();
        let hex = match s.split_once(' ') {
            Some((alg, rest)) if alg.eq_ignore_ascii_case("sha-256") => rest.trim(),
            Some(_) => return Err(err),
            None => s,
        };
        let mut fp = [0u8; 32];
        let mut parts = hex.split(':');
        for b in fp.iter_mut() {
            let part = parts.next().filter(|p| p.len() == 2).ok_or(err.clone())?;
            *b = u8::from_str_radix(part, 16).map_err(|_| err.clone())?;
        }
        if parts.next().is_some() {
            return Err(err);
        }
        Ok(Fingerprint(fp))
    }
}

/// Our certificate and its private key.
pub struct DtlsCertificate {
    der: Vec<u8>,
    key: signature::EcdsaKeyPair,
    fingerprint: Fingerprint,
}

impl fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DtlsCertificate({})", self.fingerprint)
    }
}

impl DtlsCertificate {
    /// A fresh self-signed ECDSA P-256 certificate, CN=leanrtc, valid from 2000 to 9999
    /// (browsers do not check WebRTC certificate dates; the fingerprint is what counts).
    pub fn generate(rng: &mut Rng) -> Result<Self, DtlsError> {
        let internal = |_| DtlsError::Internal("certificate key");
        let (scalar, public) = loop {
            let scalar: [u8; 32] = rng.bytes();
            if let Ok(k) = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, &scalar) {
                let public = k
                    .compute_public_key()
                    .map_err(|_| DtlsError::Internal("key"))?;
                break (scalar, public.as_ref().to_vec());
            }
        };
        let alg = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
        let key = signature::EcdsaKeyPair::from_private_key_and_public_key(alg, &scalar, &public)
            .map_err(internal)?;
        let mut serial: [u8; 8] = rng.bytes();
        serial[0] = (serial[0] & 0x7f) | 0x40; // positive, minimal encoding
        let name = tlv(
            0x30,
            &tlv(
                0x31,
                &tlv(
                    0x30,
                    &cat(&[&tlv(0x06, OID_COMMON_NAME), &tlv(0x0c, b"leanrtc")]),
                ),
            ),
        );
        let sig_alg = tlv(0x30, &tlv(0x06, OID_ECDSA_SHA256));
        let spki = tlv(
            0x30,
            &cat(&[
                &tlv(
                    0x30,
                    &cat(&[&tlv(0x06, OID_EC_PUBLIC_KEY), &tlv(0x06, OID_P256)]),
                ),
                &bit_string(&public),
            ]),
        );
        let validity = tlv(
            0x30,
            &cat(&[&tlv(0x17, b"000101000000Z"), &tlv(0x18, b"99991231235959Z")]),
        );
        let tbs = tlv(
            0x30,
            &cat(&[
                &tlv(0xa0, &tlv(0x02, &[2])), // version v3
                &tlv(0x02, &serial),
                &sig_alg,
                &name,
                &validity,
                &name,
                &spki,
            ]),
        );
        let sig = sign_with(&key, &tbs)?;
        let der = tlv(0x30, &cat(&[&tbs, &sig_alg, &bit_string(&sig)]));
        let fingerprint = Fingerprint::of(&der);
        Ok(DtlsCertificate {
            der,
            key,
            fingerprint,
        })
    }

    /// The certificate in DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Its SHA-256 fingerprint for `a=fingerprint:sha-256 …`.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// An ecdsa_secp256r1_sha256 signature (ASN.1 DER) over `msg`.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, DtlsError> {
        sign_with(&self.key, msg)
    }
}

fn sign_with(key: &signature::EcdsaKeyPair, msg: &[u8]) -> Result<Vec<u8>, DtlsError> {
    // aws-lc draws the ECDSA nonce itself; the rng argument is not used by it.
    key.sign(&SystemRandom::new(), msg)
        .map(|s| s.as_ref().to_vec())
        .map_err(|_| DtlsError::Internal("ECDSA signing"))
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
        _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    tlv(0x03, &cat(&[&[0], bytes]))
}

/// The public key in a peer certificate, in the form aws-lc-rs verifies with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerKey {
    /// An uncompressed P-256 point.
    EcdsaP256(Vec<u8>),
    /// An RSAPublicKey (RFC 8017 §A.1.1) in DER.
    Rsa(Vec<u8>),
}

/// Reads one DER element: its tag and contents.
fn der_next<'a>(buf: &mut &'a [u8]) -> Result<(u8, &'a [u8]), DtlsError> {
    let err = DtlsError::BadCertificate("DER structure");
    let (&tag, rest) = buf.split_first().ok_or(err.clone())?;
    let (&first, mut rest) = rest.split_first().ok_or(err.clone())?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(err);
        }
        let (len_bytes, tail) = rest.split_at(n);
        rest = tail;
        len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if len > rest.len() {
        return Err(err);
    }
    let (content, tail) = rest.split_at(len);
    *buf = tail;
    Ok((tag, content))
}

fn der_expect<'a>(buf: &mut &'a [u8], tag: u8) -> Result<&'a [u8], DtlsError> {
    match der_next(buf)? {
        (t, content) if t == tag => Ok(content),
        _ => Err(DtlsError::BadCertificate("unexpected DER tag")),
    }
}

/// Extracts the subjectPublicKeyInfo key of an X.509 certificate (RFC 5280 §4.1).
pub fn peer_key(cert_der: &[u8]) -> Result<PeerKey, DtlsError> {
    let mut cert = cert_der;
    let mut cert = der_expect(&mut cert, 0x30)?;
    let mut tbs = der_expect(&mut cert, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        der_next(&mut tbs)?; // [0] version
    }
    for _ in 0..5 {
        der_next(&mut tbs)?; // serial, signature, issuer, validity, subject
    }
    let mut spki = der_expect(&mut tbs, 0x30)?;
    let mut alg = der_expect(&mut spki, 0x30)?;
    let oid = der_expect(&mut alg, 0x06)?;
    let key = match der_expect(&mut spki, 0x03)?.split_first() {
        Some((0, key)) => key,
        _ => return Err(DtlsError::BadCertificate("subjectPublicKey bit string")),
    };
    if oid == OID_EC_PUBLIC_KEY {
        if der_expect(&mut alg, 0x06)? != OID_P256 {
            return Err(DtlsError::UnsupportedCertificate(
                "EC curve other than P-256",
            ));
        }
        Ok(PeerKey::EcdsaP256(key.to_vec()))
    } else if oid == OID_RSA {
        Ok(PeerKey::Rsa(key.to_vec()))
    } else {
        Err(DtlsError::UnsupportedCertificate(
            "key algorithm other than EC or RSA",
        ))
    }
}
