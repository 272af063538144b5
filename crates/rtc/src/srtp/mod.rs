//! SRTP and SRTCP (RFC 3711, RFC 7714). Placeholder: filled in by its own change.

mod profile;

pub use profile::SrtpProfile;
