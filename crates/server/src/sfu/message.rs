//! What shards tell each other. Shard 0 receives every datagram on the one UDP port and holds
//! every stream's source; other shards hold viewers. So datagrams go from shard 0 to the
//! shard that owns their session, a stream's media and events go from shard 0 to every
//! other shard (each keeps its own copy of the stream, fed like a local one), and keyframe
//! requests and routing facts come back to shard 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::tcp_route::TcpFrames;
use crate::sources::Codec;

/// Which shard(s) a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// Every shard but the sender.
    Others,
    /// One shard.
    Shard(usize),
}

/// A message between shards.
#[derive(Debug, Clone)]
pub enum Message {
    /// Datagrams for sessions the receiving shard owns (shard 0 read them from the socket).
    Datagrams(Datagrams),
    /// Packets of streams whose source is on shard 0, in the order they were forwarded
    /// there. Shared by every receiving shard (one allocation per round, not per shard).
    Media(Arc<MediaBatch>),
    /// A live stream began, or its tracks changed (a new publisher took it over).
    Announce {
        /// The stream's name.
        stream: String,
        /// Its tracks' codecs.
        codecs: Vec<Codec>,
        /// Per track: the simulcast layer it carries, if any.
        layers: Vec<Option<crate::router::TrackLayer>>,
    },
    /// A live stream's publisher sent a Sender Report: the NTP ↔ RTP mapping every shard's
    /// Sender Reports to viewers carry on (lip sync).
    SenderReport {
        stream: String,
        track: usize,
        ssrc: u32,
        ntp: u64,
        rtp: u32,
        our_ntp: u64,
    },
    /// A live stream ended: its viewers on every shard get BYE and are closed.
    Ended { stream: String },
    /// A viewer on another shard needs a keyframe of this stream (to shard 0).
    KeyframeRequest { stream: String },
    /// A session on `shard` can be reached by this ufrag from now on, or (`None`) no longer
    /// (to shard 0, which routes STUN checks by it).
    Ufrag { ufrag: String, shard: Option<usize> },
    /// ICE validated this address for a session on `shard`, or (`None`) forgot it (to
    /// shard 0, which routes DTLS and SRTP by it).
    Address {
        addr: SocketAddr,
        shard: Option<usize>,
    },
    /// Datagrams for ICE-TCP peers (to shard 0, whose shell owns the connections).
    TcpFrames(TcpFrames),
    /// These ICE-TCP peers' connections are gone: datagrams to them go over UDP again (from
    /// shard 0).
    TcpForget(Vec<SocketAddr>),
}

impl Message {
    /// The work it brings, in datagrams: those it carries, the media packets it carries
    /// (each fanned out), or 1.
    pub fn work(&self) -> usize {
        match self {
            Message::Datagrams(d) => d.len().max(1),
            Message::Media(m) => m.len().max(1),
            Message::TcpFrames(f) => f.len().max(1),
            _ => 1,
        }
    }
}

/// Datagrams handed to another shard, copied into one buffer.
#[derive(Debug, Default, Clone)]
pub struct Datagrams {
    data: Vec<u8>,
    items: Vec<DatagramItem>,
}

#[derive(Debug, Clone, Copy)]
struct DatagramItem {
    arrival: Instant,
    from: SocketAddr,
    local: SocketAddr,
    /// It came over ICE-TCP (`from` is the connection's peer).
    tcp: bool,
    end: usize,
}

impl Datagrams {
    /// Adds one datagram (`tcp`: it came in an ICE-TCP frame).
    pub fn push(
        &mut self,
        arrival: Instant,
        from: SocketAddr,
        local: SocketAddr,
        bytes: &[u8],
        tcp: bool,
    ) {
        self.data.extend_from_slice(bytes);
        self.items.push(DatagramItem {
            arrival,
            from,
            local,
            tcp,
            end: self.data.len(),
        });
    }

    /// How many it holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Each datagram, mutable (SRTP is unprotected in place):
    /// `(arrival, from, local, bytes, tcp)`.
    pub fn for_each(
        &mut self,
        mut each: impl FnMut(Instant, SocketAddr, SocketAddr, &mut [u8], bool),
    ) {
        let mut start = 0;
        for item in &self.items {
            if let Some(bytes) = self.data.get_mut(start..item.end) {
                each(item.arrival, item.from, item.local, bytes, item.tcp);
            }
            start = item.end;
        }
    }
}

/// Media packets of one or more streams, in forwarding order.
#[derive(Debug, Default)]
pub struct MediaBatch {
    data: Vec<u8>,
    items: Vec<MediaItem>,
    names: Vec<String>,
}

/// One packet of a [`MediaBatch`].
#[derive(Debug, Clone, Copy)]
struct MediaItem {
    name: u16,
    track: u16,
    shows_keyframe: bool,
    arrival: Instant,
    end: usize,
}

/// One packet, as [`MediaBatch::iter`] lends it.
#[derive(Debug)]
pub struct MediaPacket<'a> {
    /// The stream's name.
    pub stream: &'a str,
    /// The track's index in the stream.
    pub track: usize,
    /// The plain RTP packet, as forwarded on shard 0.
    pub packet: &'a [u8],
    /// Whether the packet shows its frame is a keyframe.
    pub shows_keyframe: bool,
    /// When shard 0 received it.
    pub arrival: Instant,
}

impl MediaBatch {
    /// Adds a packet of track `track` of `stream`.
    pub fn push(
        &mut self,
        stream: &str,
        track: usize,
        packet: &[u8],
        shows_keyframe: bool,
        arrival: Instant,
    ) {
        let name = match self.names.iter().position(|n| n == stream) {
            Some(i) => i,
            None => {
                self.names.push(stream.to_owned());
                self.names.len() - 1
            }
        };
        self.data.extend_from_slice(packet);
        self.items.push(MediaItem {
            name: u16::try_from(name).unwrap_or(u16::MAX),
            track: u16::try_from(track).unwrap_or(u16::MAX),
            shows_keyframe,
            arrival,
            end: self.data.len(),
        });
    }

    /// How many packets it holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The packets, in order.
    pub fn iter(&self) -> impl Iterator<Item = MediaPacket<'_>> {
        let starts = std::iter::once(0).chain(self.items.iter().map(|i| i.end));
        self.items.iter().zip(starts).filter_map(|(item, start)| {
            Some(MediaPacket {
                stream: self.names.get(usize::from(item.name))?,
                track: usize::from(item.track),
                packet: self.data.get(start..item.end)?,
                shows_keyframe: item.shows_keyframe,
                arrival: item.arrival,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_give_back_what_was_put_in_in_order() {
        let now = Instant::now();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut d = Datagrams::default();
        d.push(now, a, b, b"one", false);
        d.push(now, b, a, b"", true);
        d.push(now, a, a, b"three", false);
        let mut seen = Vec::new();
        d.for_each(|_, from, local, bytes, tcp| seen.push((from, local, bytes.to_vec(), tcp)));
        assert_eq!(
            seen,
            [
                (a, b, b"one".to_vec(), false),
                (b, a, vec![], true),
                (a, a, b"three".to_vec(), false)
            ]
        );

        let mut m = MediaBatch::default();
        m.push("x", 0, b"p1", true, now);
        m.push("y", 1, b"p22", false, now);
        m.push("x", 1, b"p333", false, now);
        let got: Vec<_> = m
            .iter()
            .map(|p| {
                (
                    p.stream.to_owned(),
                    p.track,
                    p.packet.to_vec(),
                    p.shows_keyframe,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("x".into(), 0, b"p1".to_vec(), true),
                ("y".into(), 1, b"p22".to_vec(), false),
                ("x".into(), 1, b"p333".to_vec(), false)
            ]
        );
        assert_eq!(m.len(), 3);
    }
}
