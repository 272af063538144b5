//! Simulcast in the engine (issue 12, RFC 8853). A publisher's simulcast m-line is one
//! input per layer, each learning its SSRCs from the RID and repaired-RID header extensions
//! (RFC 8852 §3: browsers announce no SSRC per layer) and feeding a track of its own — its
//! own history, GOP cache, NACKs and keyframes. A viewer's output forwards one layer of the
//! group and moves to another only at a keyframe of that layer, re-based so that sequence
//! numbers, timestamps and VP8 picture ids run on ([`Output::switch_layer`]).
//!
//! Which layer: the top one being received (by its keyframes' size, then bitrate). The
//! recorder records the top layer too, from when the layers' sizes are known.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rtc::rtp::RtpPacket;
use rtc::rtp::simulcast::{SimulcastSsrcs, StreamExtIds, StreamIds};
use rtc::sdp::{HeaderExtension, Negotiated};

use super::Shard;
use super::media::Tx;
use super::pacing;
use super::publish::record_codec;
use super::session::{Input, Session, Side};
use crate::control::{LayerInfo, WatcherInfo};
use crate::router::layers::LayerAction;
use crate::router::output::Output;
use crate::router::{Source, Stream, Track};

/// A publisher's simulcast m-line: the extension ids that name layers and what was learnt
/// from them.
#[derive(Debug)]
pub struct Ingest {
    ids: StreamExtIds,
    ssrcs: SimulcastSsrcs,
    /// The input of each negotiated layer, in the negotiated order.
    inputs: Vec<usize>,
}

impl Ingest {
    /// For the first simulcast m-line among `inputs` (one per layer, made from
    /// `negotiated`), if any.
    pub fn new(negotiated: &Negotiated, inputs: &[Input]) -> Option<Self> {
        let m = negotiated.media.iter().find(|m| !m.simulcast.is_empty())?;
        let of = |rid: &str| {
            inputs
                .iter()
                .position(|i| i.mid == m.mid && i.rid.as_deref() == Some(rid))
        };
        let inputs = m
            .simulcast
            .iter()
            .map(|l| of(&l.rid))
            .collect::<Option<Vec<usize>>>()?;
        Some(Ingest {
            ids: StreamExtIds {
                mid: m.extension_id(HeaderExtension::SdesMid),
                rid: m.extension_id(HeaderExtension::RtpStreamId),
                rrid: m.extension_id(HeaderExtension::RepairedRtpStreamId),
            },
            ssrcs: SimulcastSsrcs::new(m.simulcast.iter().map(|l| l.rid.as_str())),
            inputs,
        })
    }

    /// The input a packet belongs to if it is a layer's, and whether it is RTX repairing
    /// it (named by its RID or RRID, or by its SSRC once one of those was seen).
    pub fn classify(&mut self, packet: &RtpPacket<'_>) -> Option<(usize, bool)> {
        let ids = StreamIds::read(packet, self.ids);
        let layer = self.ssrcs.classify(packet.ssrc(), &ids)?;
        Some((*self.inputs.get(layer.layer)?, layer.repair))
    }
}

/// The track of `stream` an input feeds: the one of its kind (a layer: of its rid), or a
/// new one. A stream has at most one group of layers; its first track names it.
pub fn track_for(stream: &mut Stream, input: &Input) -> usize {
    let video = input.codec.is_video();
    let found = stream.tracks.iter().position(|t| match &input.rid {
        None => t.layer.is_none() && t.codec.is_video() == video,
        Some(rid) => t.layer.as_ref().is_some_and(|l| &l.rid == rid),
    });
    if let Some(found) = found {
        return found;
    }
    let track = match &input.rid {
        Some(rid) => {
            let group = stream
                .tracks
                .iter()
                .find_map(|t| Some(t.layer.as_ref()?.group))
                .unwrap_or(stream.tracks.len());
            Track::layer(input.codec, group, rid)
        }
        None => Track::new(input.codec),
    };
    stream.tracks.push(track);
    stream.tracks.len() - 1
}

/// At most this many layers of a group are chosen among (OBS sends up to four).
const MAX_LAYERS: usize = 4;

/// Points each of a viewer's simulcast outputs at the layer it should get: the highest its
/// estimate carries (with hysteresis, `LayerSelector`), or without an estimate the top one
/// received. A switch waits for that layer's keyframe. With `start`, the output has sent
/// nothing yet and takes the layer at once (its GOP cache replay follows). Returns whether
/// a keyframe is wanted from the publisher.
pub fn choose_layers(session: &mut Session, stream: &Stream, now: Instant, start: bool) -> bool {
    let Some((_, outputs, cc)) = session.sending() else {
        return false;
    };
    let estimate = cc.as_ref().map(|cc| cc.bwe.estimate());
    // Single-layer video is paused only on an estimate the viewer's feedback shaped: a peer
    // that sends none (a relay, a load generator) must not lose a stream above the guess.
    let confirmed = cc
        .filter(|cc| cc.has_feedback())
        .map(|cc| cc.bwe.estimate());
    let mut wanted = false;
    for output in outputs.iter_mut() {
        let single = output.layers.as_ref().is_some_and(|l| l.group.is_none());
        wanted |= if single {
            choose_single(output, stream, now, confirmed)
        } else {
            choose_layer(output, stream, now, start, estimate)
        };
    }
    wanted
}

fn choose_layer(
    output: &mut Output,
    stream: &Stream,
    now: Instant,
    start: bool,
    estimate: Option<u64>,
) -> bool {
    let Some(choice) = output.layers.as_mut() else {
        return false;
    };
    let Some(group) = choice.group else {
        return false;
    };
    let mut tracks = [0usize; MAX_LAYERS];
    let n = stream.layers_into(group, &mut tracks);
    let tracks = &tracks[..n];
    // The selector reads 0 as "not received": an active layer not yet measured reads 1.
    let mut rates = [0u64; MAX_LAYERS];
    for (rate, &t) in rates.iter_mut().zip(tracks) {
        let track = &stream.tracks[t];
        *rate = if track.is_active(now) {
            track.rate.max(1)
        } else {
            0
        };
    }
    let rates = &rates[..n];
    let top = rates.iter().rposition(|&r| r > 0).map(|i| tracks[i]);
    choice.below_top = top.is_some_and(|t| t != output.track);
    let measured = rates.iter().any(|&r| r > 1);
    let Some(estimate) = estimate.filter(|_| measured) else {
        return choose_top(output, stream, now, start);
    };
    // What the video may use: the estimate less what the other tracks (audio) take.
    let budget = estimate.saturating_sub(stream.other_rate(output.track));

    match choice.selector.update(now, budget, rates) {
        Some(LayerAction::RequestKeyframe(l)) => {
            let track = tracks[l];
            if track == output.track && !choice.paused && !start {
                // Already forwarding it (chosen before the estimate counted).
                choice.target = None;
                choice.selector.on_keyframe(l);
                return false;
            }
            choice.target = Some((track, l));
            if start {
                // Nothing sent yet: it starts there, from the GOP cache.
                output.switch_layer(track);
                return false;
            }
            true
        }
        Some(LayerAction::Pause) => {
            output.pause();
            false
        }
        None => false,
    }
}

/// A single-layer video output: the same selector with one layer, the track's measured
/// rate. Paused while the estimate (less the other tracks: audio) cannot carry it, resumed
/// at a keyframe — asked of the publisher; a file's next one comes by itself — once it
/// carries it with the selector's margin. Without an estimate nothing is ever paused, nor
/// while the track's rate is unknown or 0 (a silent source: nothing to forward, and pausing
/// would make the viewer wait for a keyframe when it speaks again). Returns whether a
/// keyframe is wanted.
fn choose_single(
    output: &mut Output,
    stream: &Stream,
    now: Instant,
    estimate: Option<u64>,
) -> bool {
    // The mean over 2 s: a keyframe's window alone would pause a viewer the stream fits.
    let (now_rate, rate) = stream
        .tracks
        .get(output.track)
        .map_or((0, 0), |t| (t.rate, t.recent_rate()));
    let (Some(estimate), Some(choice)) = (estimate, output.layers.as_mut()) else {
        return false;
    };
    if now_rate == 0 || rate == 0 {
        return false;
    }
    let budget = estimate.saturating_sub(stream.other_rate(output.track));
    match choice.selector.update(now, budget, &[rate]) {
        Some(LayerAction::RequestKeyframe(l)) if !choice.paused => {
            // Forwarding it already (the first choice, or a resume called off in time).
            choice.target = None;
            choice.selector.on_keyframe(l);
            false
        }
        Some(LayerAction::RequestKeyframe(l)) => {
            choice.target = Some((output.track, l));
            true
        }
        Some(LayerAction::Pause) => {
            output.pause();
            false
        }
        None => false,
    }
}

/// Without an estimate: the top layer received.
fn choose_top(output: &mut Output, stream: &Stream, now: Instant, start: bool) -> bool {
    let Some(choice) = output.layers.as_mut() else {
        return false;
    };
    let Some(top) = choice.group.and_then(|g| stream.top_layer(g, now)) else {
        return false;
    };
    if start {
        output.switch_layer(top);
        return false;
    }
    if top == output.track {
        // Already there (a pending switch elsewhere is called off).
        choice.target = None;
        return false;
    }
    choice.target = Some((top, 0));
    true
}

/// A stream's layers for `/api/streams`, lowest first, with how many of this shard's
/// viewers get each.
pub fn layer_info(
    stream: &Stream,
    sessions: &HashMap<u64, Session>,
    now: Instant,
) -> Vec<LayerInfo> {
    let Some(group) = stream
        .tracks
        .iter()
        .find_map(|t| Some(t.layer.as_ref()?.group))
    else {
        return Vec::new();
    };
    let watching = |track: usize| {
        let viewers = stream
            .viewers
            .iter()
            .filter_map(|k| sessions.get(k)?.viewer());
        viewers
            .filter(|v| v.outputs.iter().any(|o| o.track == track))
            .count()
    };
    stream
        .layers_of(group)
        .filter_map(|i| {
            let t = stream.tracks.get(i)?;
            let layer = t.layer.as_ref()?;
            let (width, height) = layer.size.unwrap_or((0, 0));
            Some(LayerInfo {
                rid: layer.rid.clone(),
                width,
                height,
                bitrate: t.rate,
                active: t.is_active(now),
                viewers: watching(i),
            })
        })
        .collect()
}

/// What a simulcast viewer's estimate must reach for its top layer (the layer's rate with
/// the selector's margin, plus audio), if it has an estimate, is not there yet and should
/// probe for it: probes are for finding a layer, not bandwidth no layer would use. A
/// single-layer viewer is probed only while its video is paused, that being its only way
/// back, for what its track and audio take: probes then go at up to twice that.
fn probe_need(session: &Session, stream: &Stream, now: Instant) -> Option<u64> {
    let viewer = session.viewer()?;
    let cc = viewer.cc.as_ref()?;
    let output = viewer.outputs.iter().find(|o| o.layers.is_some())?;
    let choice = output.layers.as_ref()?;
    let Some(group) = choice.group else {
        let rate = stream.tracks.get(output.track)?.recent_rate();
        let need = rate + stream.other_rate(output.track);
        return (rate > 0 && choice.paused).then_some(need);
    };
    let top = stream.top_layer(group, now)?;
    let rate = stream.tracks.get(top)?.rate;
    let need = rate + rate / 4 + stream.other_rate(top);
    (rate > 0 && cc.bwe.estimate() < need).then_some(need)
}

/// A viewer whose video is paused has its estimate restarted once its feedback is calm
/// ([`ViewerCc::restart_if_calm`](crate::router::congestion::ViewerCc::restart_if_calm)):
/// the probes that follow are how it comes back.
fn restart_if_paused(session: &mut Session, now: Instant) {
    if let Some((_, outputs, Some(cc))) = session.sending()
        && outputs.iter().any(Output::is_paused)
    {
        cc.restart_if_calm(now);
    }
}

/// A stream's viewers on this shard that have an estimate or a layer choice.
pub fn watchers(stream: &Stream, sessions: &HashMap<u64, Session>) -> Vec<WatcherInfo> {
    let rid = |track: usize| {
        let layer = stream.tracks.get(track)?.layer.as_ref()?;
        Some(layer.rid.clone())
    };
    let mut out = Vec::new();
    for session in stream.viewers.iter().filter_map(|k| sessions.get(k)) {
        let Some(v) = session.viewer() else { continue };
        let choice = v.outputs.iter().find(|o| o.layers.is_some());
        if v.cc.is_none() && choice.is_none() {
            continue;
        }
        let layers = choice.and_then(|o| o.layers.as_ref());
        let paused = layers.is_some_and(|l| l.paused);
        out.push(WatcherInfo {
            session: session.id.clone(),
            estimate: v.cc.as_ref().map(|cc| cc.bwe.estimate()),
            layer: choice.filter(|_| !paused).and_then(|o| rid(o.track)),
            switching_to: layers.and_then(|l| rid(l.target?.0)),
            paused,
        });
    }
    out
}

/// How long a simulcast recording waits for every layer's size before it records the top
/// layer among those received.
const RECORD_WAIT: Duration = Duration::from_secs(5);

impl Shard {
    /// Layer bookkeeping on the tick: each track's bitrate, each viewer's layer or pause
    /// (asking the publisher for a keyframe of a layer to switch or resume to), simulcast
    /// recordings to start.
    pub(super) fn simulcast_tick(&mut self, now: Instant) {
        for stream in self.streams.values_mut() {
            stream.update_rates(now);
        }
        let mut keyframes: Vec<String> = Vec::new();
        let mut publishers = std::mem::take(&mut self.keys);
        publishers.clear();
        for (key, session) in &mut self.sessions {
            match &session.side {
                Side::Publisher(p) if p.simulcast.is_some() && p.recorded.is_none() => {
                    publishers.push(*key);
                }
                Side::Viewer(v) if v.outputs.iter().any(|o| o.layers.is_some()) => {
                    let Some(stream) = self.streams.get(&session.stream) else {
                        continue;
                    };
                    if !session.peer.is_connected() {
                        continue;
                    }
                    let was_paused = v.outputs.iter().any(Output::is_paused);
                    let wanted = choose_layers(session, stream, now, false);
                    if let Some(v) = session.viewer()
                        && !was_paused
                        && v.outputs.iter().any(Output::is_paused)
                    {
                        let estimate = v.cc.as_ref().map(|cc| cc.bwe.estimate());
                        tracing::info!(session = %session.id, ?estimate, "video paused: its estimate carries no layer");
                    }
                    if wanted && !keyframes.contains(&session.stream) {
                        keyframes.push(session.stream.clone());
                    }
                    if let Some(need) = probe_need(session, stream, now) {
                        restart_if_paused(session, now);
                        let mut tx = Tx {
                            now,
                            out: &mut self.out,
                            net: &mut self.net,
                        };
                        pacing::send_probes(session, need, &mut tx);
                        if session.pacer_timeout(now).is_some() {
                            self.paced.push(*key);
                        }
                    }
                }
                _ => {}
            }
        }
        for &key in &publishers {
            if let Some(name) = self.start_simulcast_recording(key, now) {
                keyframes.push(name);
            }
        }
        self.keys = publishers;
        for name in keyframes {
            self.request_keyframe(now, &name);
        }
    }

    /// Starts recording simulcast publisher `key` once its layers' sizes are known: the
    /// top layer is recorded. Returns its stream, which then needs a keyframe to open the
    /// file at.
    fn start_simulcast_recording(&mut self, key: u64, now: Instant) -> Option<String> {
        let session = self.sessions.get_mut(&key)?;
        let Side::Publisher(publisher) = &mut session.side else {
            return None;
        };
        let stream = self.streams.get(&session.stream)?;
        if !matches!(stream.source, Source::Live { publisher, .. } if publisher == key) {
            return None;
        }
        let group = stream
            .tracks
            .iter()
            .find_map(|t| Some(t.layer.as_ref()?.group))?;
        // Layers that never start (a browser whose bandwidth estimate stays low) are not
        // waited for beyond RECORD_WAIT.
        let waited = now.saturating_duration_since(session.created) >= RECORD_WAIT;
        if !stream.layers_sized(group) && !waited {
            return None;
        }
        let top = stream.top_layer(group, now)?;
        let mut recorded = Vec::new();
        let mut codecs = Vec::new();
        for input in &publisher.inputs {
            if input.rid.is_some() && input.track != top {
                recorded.push(None);
            } else {
                recorded.push(Some(codecs.len()));
                codecs.push(record_codec(input.codec));
            }
        }
        publisher.recorded = Some(recorded);
        let recorder = self.recorder.as_mut()?;
        recorder.start(key, &session.stream, &codecs);
        Some(session.stream.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::Codec;

    fn input(rid: Option<&str>, codec: Codec) -> Input {
        Input {
            mid: "1".into(),
            codec,
            payload_type: 96,
            nack: true,
            rtx_pt: None,
            ssrcs: Vec::new(),
            track: 0,
            receive: None,
            last_packet: None,
            rid: rid.map(str::to_owned),
        }
    }

    #[test]
    fn layers_get_tracks_of_their_own_and_the_top_is_the_largest_received() {
        let now = Instant::now();
        let mut stream = Stream::live(1, &[], now);
        let audio = track_for(&mut stream, &input(None, Codec::Opus));
        let q = track_for(&mut stream, &input(Some("q"), Codec::Vp8));
        let f = track_for(&mut stream, &input(Some("f"), Codec::Vp8));
        let h = track_for(&mut stream, &input(Some("h"), Codec::Vp8));
        assert_eq!((audio, q, f, h), (0, 1, 2, 3));
        assert_eq!(track_for(&mut stream, &input(Some("h"), Codec::Vp8)), h);
        let group = stream.tracks[h].layer.as_ref().unwrap().group;
        assert_eq!(group, q, "named by its first layer");
        assert_eq!(stream.top_layer(group, now), None, "nothing received");
        for (i, size) in [(q, (320, 180)), (h, (640, 360))] {
            let t = &mut stream.tracks[i];
            t.last_packet = Some(now);
            t.layer.as_mut().unwrap().size = Some(size);
        }
        assert!(!stream.layers_sized(group), "f showed no size");
        stream.tracks[f].last_packet = Some(now);
        assert_eq!(stream.top_layer(group, now), Some(h));
        stream.tracks[f].layer.as_mut().unwrap().size = Some((1280, 720));
        assert!(stream.layers_sized(group));
        assert_eq!(stream.top_layer(group, now), Some(f));
        assert_eq!(stream.layers_of(group).collect::<Vec<_>>(), [q, h, f]);
        // f stops: h is the top one again.
        let later = now + Duration::from_secs(2);
        stream.tracks[q].last_packet = Some(later);
        stream.tracks[h].last_packet = Some(later);
        assert_eq!(stream.top_layer(group, later), Some(h));
    }
}
