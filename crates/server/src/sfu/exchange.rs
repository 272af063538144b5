//! What a shard exchanges with the others: shard 0 hands datagrams to the shard owning
//! their session and shares its streams' media and events; the others tell shard 0 which
//! ufrags and addresses are theirs and pass their viewers' keyframe requests on. One shard
//! alone (`--threads 1`) exchanges nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::Shard;
use super::media;
use super::message::{Dest, MediaBatch, Message};
use crate::router::{Source, Stream};

impl Shard {
    /// The next message for another shard.
    pub fn poll_message(&mut self) -> Option<(Dest, Message)> {
        for (shard, batch) in self.forward.iter_mut().enumerate() {
            if !batch.is_empty() {
                let batch = std::mem::take(batch);
                self.counters.datagrams_handed_over += batch.len() as u64;
                self.outgoing
                    .push_back((Dest::Shard(shard), Message::Datagrams(batch)));
            }
        }
        // Datagrams for ICE-TCP peers go out through shard 0's connections.
        if self.id != 0
            && let Some(frames) = self.net.take_tcp_frames()
        {
            self.outgoing
                .push_back((Dest::Shard(0), Message::TcpFrames(frames)));
        }
        self.outgoing.pop_front()
    }

    /// Counts a message another shard's queue refused.
    pub fn message_refused(&mut self) {
        self.counters.messages_refused += 1;
    }

    /// Queues a message for other shards (none when there is one shard).
    pub(super) fn tell(&mut self, dest: Dest, message: Message) {
        if self.shards > 1 {
            self.outgoing.push_back((dest, message));
        }
    }

    /// A live packet forwarded here goes to every other shard too (shard 0 holds sources):
    /// appended to the media batch at the end of the queue, so it stays in order with the
    /// stream's other events.
    pub(super) fn share_media(
        &mut self,
        stream: &str,
        track: usize,
        packet: &[u8],
        shows_keyframe: bool,
        now: Instant,
    ) {
        if self.shards <= 1 {
            return;
        }
        self.counters.media_handed_over += 1;
        if let Some((Dest::Others, Message::Media(batch))) = self.outgoing.back_mut()
            && let Some(batch) = Arc::get_mut(batch)
        {
            batch.push(stream, track, packet, shows_keyframe, now);
            return;
        }
        let mut batch = MediaBatch::default();
        batch.push(stream, track, packet, shows_keyframe, now);
        self.outgoing
            .push_back((Dest::Others, Message::Media(Arc::new(batch))));
    }

    /// A message from another shard.
    pub fn handle_message(&mut self, now: Instant, message: Message) {
        // A message carries up to a receive batch of datagrams or a round of media, each
        // costing a fan-out: it spends the round's allowance like datagrams read from the
        // socket, or a thread fed by shard 0 would answer HTTP only after its whole inbox.
        self.budget.spend_datagrams(message.work());
        match message {
            Message::Datagrams(mut batch) => {
                batch.for_each(|at, from, local, bytes, tcp| {
                    if tcp {
                        self.net.learn_tcp(from);
                    }
                    self.handle_owned_datagram(at, from, local, bytes);
                });
                self.fan_out(now);
            }
            Message::Media(batch) => {
                for p in batch.iter() {
                    if let Some(stream) = self.streams.get_mut(p.stream)
                        && matches!(stream.source, Source::Mirror { .. })
                    {
                        media::forward_live(stream, p.track, p.packet, p.shows_keyframe, p.arrival);
                    }
                }
                self.fan_out(now);
            }
            Message::Announce {
                stream,
                codecs,
                layers,
            } => self.mirror_announced(now, stream, &codecs, &layers),
            Message::SenderReport {
                stream,
                track,
                ssrc,
                ntp,
                rtp,
                our_ntp,
            } => {
                if let Some(stream) = self.streams.get_mut(&stream) {
                    stream.on_sender_report(track, ssrc, ntp, rtp, our_ntp);
                }
            }
            Message::Ended { stream } => {
                if self
                    .streams
                    .get(&stream)
                    .is_some_and(|s| matches!(s.source, Source::Mirror { .. }))
                {
                    self.end_stream(now, &stream);
                }
            }
            Message::KeyframeRequest { stream } => self.request_keyframe(now, &stream),
            Message::Ufrag { ufrag, shard } => self.dispatch.set_ufrag(ufrag, shard),
            Message::Address { addr, shard } => {
                // Another shard's session validated it: none of ours routes it any more
                // (a client reconnecting from the same port to a session elsewhere).
                if shard.is_some()
                    && let Some(old) = self.routes.route(addr, None)
                {
                    self.routes.remove_addr(old, addr);
                }
                self.dispatch.set_addr(addr, shard);
            }
            Message::TcpFrames(frames) => self.net.append_tcp(&frames),
            Message::TcpForget(peers) => {
                for addr in peers {
                    self.net.forget_tcp(addr);
                }
            }
        }
    }

    /// Shard 0: these ICE-TCP peers' connections are gone for good; every shard sends to
    /// them over UDP again.
    pub fn tcp_forget(&mut self, peers: Vec<SocketAddr>) {
        if peers.is_empty() {
            return;
        }
        for &addr in &peers {
            self.net.forget_tcp(addr);
        }
        self.tell(Dest::Others, Message::TcpForget(peers));
    }

    /// A live stream of shard 0 began or changed: this shard's copy gets its tracks.
    pub(super) fn mirror_announced(
        &mut self,
        now: Instant,
        name: String,
        codecs: &[crate::sources::Codec],
        layers: &[Option<crate::router::TrackLayer>],
    ) {
        let stream = self
            .streams
            .entry(name)
            .or_insert_with(|| Stream::mirror(&[], now));
        if !matches!(stream.source, Source::Mirror { .. }) {
            return;
        }
        for (i, codec) in codecs.iter().enumerate() {
            if stream.tracks.len() <= i {
                stream.tracks.push(crate::router::Track::new(*codec));
            }
            if let (Some(track), Some(layer)) = (stream.tracks.get_mut(i), layers.get(i)) {
                // The size is learnt here too, from the layer's own keyframes.
                if track.layer.as_ref().map(|l| (l.group, &l.rid))
                    != layer.as_ref().map(|l| (l.group, &l.rid))
                {
                    track.layer.clone_from(layer);
                }
            }
        }
    }

    /// Shard 0's new or changed live stream, told to the others.
    pub(super) fn announce(&mut self, name: &str) {
        if self.shards <= 1 {
            return;
        }
        if let Some(stream) = self.streams.get(name) {
            let codecs = stream.tracks.iter().map(|t| t.codec).collect();
            let layers = stream.tracks.iter().map(|t| t.layer.clone()).collect();
            self.tell(
                Dest::Others,
                Message::Announce {
                    stream: name.to_owned(),
                    codecs,
                    layers,
                },
            );
        }
    }

    /// Tells shard 0 that datagrams from `addr` go here now (`routed`), or no longer; on
    /// shard 0 itself, its own route wins over any other shard's.
    pub(super) fn address_routed(&mut self, addr: SocketAddr, routed: bool) {
        if self.id == 0 {
            if routed {
                self.dispatch.forget_addr(addr);
            }
            return;
        }
        let shard = routed.then_some(self.id);
        self.tell(Dest::Shard(0), Message::Address { addr, shard });
    }

    /// Tells shard 0 that checks naming `ufrag` go here now (`routed`), or no longer.
    pub(super) fn ufrag_routed(&mut self, ufrag: &str, routed: bool) {
        if self.id != 0 {
            let shard = routed.then_some(self.id);
            let ufrag = ufrag.to_owned();
            self.tell(Dest::Shard(0), Message::Ufrag { ufrag, shard });
        }
    }
}
