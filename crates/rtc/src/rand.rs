//! The one source of randomness for the sans-IO stack.
//!
//! Protocol objects take a `&mut Rng` (or own one) instead of reaching for a global
//! generator, so a test can make a whole handshake repeatable by seeding it.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Random bytes, either from the operating system or from a seed (tests only).
#[derive(Debug)]
pub struct Rng {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    System(SystemRandom),
    /// splitmix64: fast and repeatable, and *not* cryptographically secure. Only for tests.
    Seeded(u64),
}

impl Rng {
    /// The operating system's CSPRNG (via aws-lc). Use this in production.
    pub fn system() -> Self {
        Self {
            inner: Inner::System(SystemRandom::new()),
        }
    }

    /// A repeatable, insecure generator for tests and simulations.
    pub fn seeded(seed: u64) -> Self {
        Self {
            inner: Inner::Seeded(seed),
        }
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        match &mut self.inner {
            Inner::System(sys) => {
                // aws-lc's RAND_bytes only fails if the kernel's entropy source is gone, in
                // which case no key we could make would be safe either.
                if sys.fill(buf).is_err() {
                    std::process::abort();
                }
            }
            Inner::Seeded(state) => {
                for chunk in buf.chunks_mut(8) {
                    let v = splitmix64(state).to_le_bytes();
                    chunk.copy_from_slice(&v[..chunk.len()]);
                }
            }
        }
    }

    /// A random array of `N` bytes.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }

    /// A random `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }

    /// A random `u64`.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_repeatable_and_system_is_not_constant() {
        let a: [u8; 13] = Rng::seeded(7).bytes();
        let b: [u8; 13] = Rng::seeded(7).bytes();
        assert_eq!(a, b);
        assert_ne!(a, Rng::seeded(8).bytes::<13>());
        let mut sys = Rng::system();
        assert_ne!(sys.bytes::<16>(), sys.bytes::<16>());
    }
}
