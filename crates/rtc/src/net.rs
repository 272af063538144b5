//! The few network-shaped types shared by the sans-IO protocols.

use std::net::SocketAddr;

/// A datagram a protocol object wants sent. The I/O layer owns the socket; this only says
/// from which local address to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Our local address the datagram must leave from.
    pub source: SocketAddr,
    /// The peer's address.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
}
