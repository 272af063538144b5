//! Ephemeral ECDH (x25519, secp256r1) and signature verification with aws-lc-rs.

use aws_lc_rs::{agreement, signature};

use super::cert::PeerKey;
use super::error::DtlsError;
use crate::rand::Rng;

/// NamedGroup x25519 (RFC 8422 §5.1.1).
pub const X25519: u16 = 0x001d;
/// NamedGroup secp256r1.
pub const SECP256R1: u16 = 0x0017;
/// Our group preference.
pub const GROUPS: [u16; 2] = [X25519, SECP256R1];

/// SignatureScheme ecdsa_secp256r1_sha256.
pub const ECDSA_P256_SHA256: u16 = 0x0403;
/// SignatureScheme rsa_pkcs1_sha256.
pub const RSA_PKCS1_SHA256: u16 = 0x0401;
/// SignatureScheme rsa_pss_rsae_sha256.
pub const RSA_PSS_RSAE_SHA256: u16 = 0x0804;
/// Signature schemes we can verify, in the order we advertise them.
pub const SCHEMES: [u16; 3] = [ECDSA_P256_SHA256, RSA_PSS_RSAE_SHA256, RSA_PKCS1_SHA256];

/// An ephemeral ECDH key pair for one handshake.
#[derive(Debug)]
pub struct KeyShare {
    private: agreement::PrivateKey,
    /// Our public key as sent on the wire (x25519: 32 bytes; P-256: uncompressed point).
    pub public: Vec<u8>,
}

impl KeyShare {
    /// A fresh key pair whose private part comes from `rng`, so a seeded `Rng` makes the
    /// handshake repeatable.
    pub fn generate(group: u16, rng: &mut Rng) -> Result<Self, DtlsError> {
        let alg = match group {
            X25519 => &agreement::X25519,
            SECP256R1 => &agreement::ECDH_P256,
            _ => return Err(DtlsError::Internal("unsupported group")),
        };
        // A random P-256 scalar is out of range with probability ~2^-32: retry a few times.
        for _ in 0..4 {
            let secret: [u8; 32] = rng.bytes();
            let Ok(private) = agreement::PrivateKey::from_private_key(alg, &secret) else {
                continue;
            };
            let public = private
                .compute_public_key()
                .map_err(|_| DtlsError::Internal("ECDH public key"))?
                .as_ref()
                .to_vec();
            return Ok(KeyShare { private, public });
        }
        Err(DtlsError::Internal("ECDH key generation"))
    }

    /// The shared secret (the pre-master secret of RFC 8422 §5.10).
    pub fn agree(&self, peer_public: &[u8]) -> Result<Vec<u8>, DtlsError> {
        let peer = agreement::UnparsedPublicKey::new(self.private.algorithm(), peer_public);
        agreement::agree(
            &self.private,
            peer,
            DtlsError::IllegalParameter("peer ECDH public key"),
            |secret| Ok(secret.to_vec()),
        )
    }
}

/// Verifies `sig` over `msg` made with the peer certificate's key and `scheme`.
pub fn verify(
    key: &PeerKey,
    scheme: u16,
    msg: &[u8],
    sig: &[u8],
    what: &'static str,
) -> Result<(), DtlsError> {
    let (alg, public): (&'static dyn signature::VerificationAlgorithm, &[u8]) = match (key, scheme)
    {
        (PeerKey::EcdsaP256(k), ECDSA_P256_SHA256) => (&signature::ECDSA_P256_SHA256_ASN1, k),
        (PeerKey::Rsa(k), RSA_PKCS1_SHA256) => (&signature::RSA_PKCS1_2048_8192_SHA256, k),
        (PeerKey::Rsa(k), RSA_PSS_RSAE_SHA256) => (&signature::RSA_PSS_2048_8192_SHA256, k),
        _ => return Err(DtlsError::IllegalParameter("signature scheme for this key")),
    };
    signature::UnparsedPublicKey::new(alg, public)
        .verify(msg, sig)
        .map_err(|_| DtlsError::DecryptError(what))
}
