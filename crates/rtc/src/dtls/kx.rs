//! DTLS 1.3 key exchange (RFC 8446 §4.2.8): x25519, secp256r1 and the hybrid X25519MLKEM768
//! (draft-ietf-tls-ecdhe-mlkem §3), with ML-KEM-768 (FIPS 203) from aws-lc-rs.
//!
//! X25519MLKEM768 puts the ML-KEM part first everywhere: the client's share is the
//! encapsulation key (1184 bytes) then its x25519 key (32), the server's the ciphertext
//! (1088) then its x25519 key, and the shared secret the ML-KEM secret then the x25519 one.

use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_768};

use super::crypto::{KeyShare, SECP256R1, X25519};
use super::error::DtlsError;
use crate::rand::Rng;

/// NamedGroup X25519MLKEM768 (IANA 0x11ec).
pub const X25519MLKEM768: u16 = 0x11ec;
/// Our preference for DTLS 1.3: post-quantum hybrid first.
pub const GROUPS: [u16; 3] = [X25519MLKEM768, X25519, SECP256R1];

const EK_LEN: usize = 1184;
const CT_LEN: usize = 1088;
const X25519_LEN: usize = 32;

/// A name for a group, for logs and metrics.
pub fn group_name(group: u16) -> &'static str {
    match group {
        X25519MLKEM768 => "X25519MLKEM768",
        X25519 => "x25519",
        SECP256R1 => "secp256r1",
        _ => "unknown",
    }
}

fn bad_share() -> DtlsError {
    DtlsError::IllegalParameter("key share")
}

/// The server's side: answers the client's `share` for `group`. Returns our share and the
/// shared secret.
pub fn respond(group: u16, share: &[u8], rng: &mut Rng) -> Result<(Vec<u8>, Vec<u8>), DtlsError> {
    match group {
        X25519 | SECP256R1 => {
            let ours = KeyShare::generate(group, rng)?;
            let shared = ours.agree(share)?;
            Ok((ours.public, shared))
        }
        X25519MLKEM768 => {
            if share.len() != EK_LEN + X25519_LEN {
                return Err(bad_share());
            }
            let (ek, x) = share.split_at(EK_LEN);
            let ek = EncapsulationKey::new(&ML_KEM_768, ek).map_err(|_| bad_share())?;
            let (ct, kem_secret) = ek.encapsulate().map_err(|_| bad_share())?;
            let ours = KeyShare::generate(X25519, rng)?;
            let x_secret = ours.agree(x)?;
            let public = [ct.as_ref(), &ours.public].concat();
            Ok((public, [kem_secret.as_ref(), &x_secret].concat()))
        }
        _ => Err(DtlsError::IllegalParameter("group we did not offer")),
    }
}

/// The client's private half of one offered share.
#[derive(Debug)]
pub enum ClientShare {
    /// x25519 or secp256r1.
    Ecdh(KeyShare),
    /// X25519MLKEM768.
    Hybrid(Box<DecapsulationKey>, KeyShare),
}

impl ClientShare {
    /// A fresh share for `group` and its public bytes.
    pub fn generate(group: u16, rng: &mut Rng) -> Result<(Self, Vec<u8>), DtlsError> {
        match group {
            X25519 | SECP256R1 => {
                let k = KeyShare::generate(group, rng)?;
                let public = k.public.clone();
                Ok((ClientShare::Ecdh(k), public))
            }
            X25519MLKEM768 => {
                let internal = |_| DtlsError::Internal("ML-KEM key generation");
                let dk = DecapsulationKey::generate(&ML_KEM_768).map_err(internal)?;
                let ek = dk.encapsulation_key().map_err(internal)?;
                let ek = ek.key_bytes().map_err(internal)?;
                let x = KeyShare::generate(X25519, rng)?;
                let public = [ek.as_ref(), &x.public].concat();
                Ok((ClientShare::Hybrid(Box::new(dk), x), public))
            }
            _ => Err(DtlsError::Internal("unsupported group")),
        }
    }

    /// The shared secret from the server's share.
    pub fn finish(&self, server_share: &[u8]) -> Result<Vec<u8>, DtlsError> {
        match self {
            ClientShare::Ecdh(k) => k.agree(server_share),
            ClientShare::Hybrid(dk, x) => {
                if server_share.len() != CT_LEN + X25519_LEN {
                    return Err(bad_share());
                }
                let (ct, xs) = server_share.split_at(CT_LEN);
                let kem_secret = dk
                    .decapsulate(Ciphertext::from(ct))
                    .map_err(|_| bad_share())?;
                let x_secret = x.agree(xs)?;
                Ok([kem_secret.as_ref(), &x_secret].concat())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_group_agrees_both_ways() {
        let mut rng = Rng::seeded(7);
        for group in GROUPS {
            let (client, public) = ClientShare::generate(group, &mut rng).unwrap();
            let (server_public, server_secret) = respond(group, &public, &mut rng).unwrap();
            assert_eq!(
                client.finish(&server_public).unwrap(),
                server_secret,
                "{}",
                group_name(group)
            );
        }
    }

    #[test]
    fn hybrid_sizes_follow_the_draft() {
        let mut rng = Rng::seeded(8);
        let (client, public) = ClientShare::generate(X25519MLKEM768, &mut rng).unwrap();
        assert_eq!(public.len(), 1216);
        let (server_public, secret) = respond(X25519MLKEM768, &public, &mut rng).unwrap();
        assert_eq!((server_public.len(), secret.len()), (1120, 64));
        // A truncated or tampered share is refused, never a panic.
        assert!(respond(X25519MLKEM768, &public[..1200], &mut rng).is_err());
        assert!(client.finish(&server_public[..1000]).is_err());
        let mut tampered = server_public.clone();
        tampered[5] ^= 1;
        // ML-KEM decapsulation implicitly rejects: a different secret, not an error.
        assert_ne!(client.finish(&tampered).ok(), Some(secret));
    }
}
