//! Simulcast on the simulated network (issue 12): a publisher sends three layers named only
//! by the RID header extension; viewers get the top one, and move to the next one down at
//! its keyframe when the top stops, with numbering continuous.
#![cfg(test)]

use std::time::Duration;

use rtc::rtp::RtpHeader;

use super::client::RID_EXT;
use super::{Link, Net, connect, plis};
use crate::control::{Command, Role};

const MS: Duration = Duration::from_millis(1);

fn clean() -> Link {
    Link::clean(10 * MS)
}

/// One simulcast layer as a browser sends it: its own SSRC, numbering and timestamps; VP8
/// frames of one packet whose keyframes declare `size`; packets `len` bytes long, so a
/// viewer's packets say which layer they came from.
struct Layer {
    rid: &'static str,
    ssrc: u32,
    seq: u16,
    ts: u32,
    size: (u16, u16),
    len: usize,
    /// Packets per frame.
    packets: usize,
    on: bool,
}

/// A publisher of layers q, h and f, a keyframe on each every `gop` frames (and on PLI).
struct Simulcaster {
    i: usize,
    pt: u8,
    frame: u32,
    gop: u32,
    layers: Vec<Layer>,
    /// PLIs seen so far (each makes every layer's next frame a keyframe).
    plis: usize,
}

impl Simulcaster {
    /// Joins `net` as the publisher of "sc" with layers q, h and f, and connects.
    fn join(net: &mut Net) -> Self {
        let p = net
            .join_edited(Role::Publish, "sc", 0, (clean(), clean()), |o| {
                o.simulcast(&["q", "h", "f"])
            })
            .unwrap();
        connect(net, p);
        Simulcaster::new(net, p)
    }

    fn new(net: &Net, i: usize) -> Self {
        let layer = |rid, n: u32, size, len| Layer {
            rid,
            ssrc: 0x1000 + n,
            seq: (n * 10_000) as u16,
            ts: n * 1_000_000,
            size,
            len,
            packets: 1,
            on: true,
        };
        Simulcaster {
            i,
            pt: net.clients[i].video_pts().0,
            frame: 0,
            gop: 90,
            layers: vec![
                layer("q", 1, (320, 180), 300),
                layer("h", 2, (640, 360), 500),
                layer("f", 3, (1280, 720), 900),
            ],
            plis: 0,
        }
    }

    fn send(&mut self, net: &mut Net) {
        let plis = plis(net, self.i);
        let key = self.frame.is_multiple_of(self.gop) || plis > self.plis;
        self.plis = plis;
        for l in self.layers.iter_mut().filter(|l| l.on) {
            for k in 0..l.packets {
                // VP8 descriptor (S = 1 on the frame's first packet), frame tag (P = 0 on a
                // keyframe), start code, size.
                let mut payload = vec![0x10, u8::from(!key), 0, 0, 0x9d, 0x01, 0x2a];
                if k > 0 {
                    payload = vec![0x00];
                }
                payload.extend_from_slice(&l.size.0.to_le_bytes());
                payload.extend_from_slice(&l.size.1.to_le_bytes());
                payload.resize(l.len - 12 - 8, 0xab);
                let mut packet = Vec::new();
                RtpHeader {
                    marker: k + 1 == l.packets,
                    payload_type: self.pt,
                    sequence_number: l.seq,
                    timestamp: l.ts,
                    ssrc: l.ssrc,
                    // As Chromium, every packet names its layer (RFC 8852 §3.1).
                    extensions: &[(RID_EXT, l.rid.as_bytes())],
                    ..RtpHeader::default()
                }
                .write_vec(&payload, 0, &mut packet)
                .unwrap();
                assert_eq!(packet.len(), l.len);
                net.send_rtp(self.i, &packet);
                l.seq = l.seq.wrapping_add(1);
            }
            l.ts = l.ts.wrapping_add(3000);
        }
        self.frame += 1;
    }

    fn run(&mut self, net: &mut Net, frames: u32) {
        for _ in 0..frames {
            self.send(net);
            net.run_for(33 * MS);
        }
    }
}

/// The lengths of the video packets viewer `v` got after skipping `skip`, and whether its
/// sequence numbers ran on without a gap or a repeat.
fn received(net: &Net, v: usize, skip: usize) -> (Vec<usize>, bool) {
    let got: Vec<_> = net.clients[v].video().skip(skip).collect();
    let continuous = got
        .windows(2)
        .all(|w| w[1].view().sequence_number() == w[0].view().sequence_number().wrapping_add(1));
    (got.iter().map(|g| g.packet.len()).collect(), continuous)
}

fn simulcast_to_viewer_on(shards: usize, shard: usize) {
    let mut net = Net::new(shards, 12);
    let mut publisher = Simulcaster::join(&mut net);
    publisher.run(&mut net, 10);
    let v = net.join(Role::Play, "sc", shard, clean(), clean()).unwrap();
    connect(&mut net, v);
    publisher.run(&mut net, 60);
    // The viewer gets f alone (its packets are 900 bytes: the extension's bytes stay,
    // with its elements dropped).
    let (lens, continuous) = received(&net, v, 0);
    assert!(lens.len() >= 50, "{} packets", lens.len());
    let f = 900;
    assert!(lens.iter().all(|&l| l == f), "only f: {lens:?}");
    assert!(continuous);

    // f stops (the browser's encoder dropped it): the viewer moves to h at h's keyframe.
    let before = lens.len();
    publisher.layers[2].on = false;
    publisher.run(&mut net, 90);
    let (lens, continuous) = received(&net, v, before - 1);
    let h = 500;
    assert!(lens.len() >= 40, "{} packets after f stopped", lens.len());
    assert!(
        lens.iter().skip(1).all(|&l| l == h || l == f),
        "f, then h: {lens:?}"
    );
    assert_eq!(lens.last(), Some(&h), "on h now");
    assert!(continuous, "numbering runs on across the switch");

    // /api/streams lists the layers, lowest first, with their sizes.
    let (reply, mut rx) = tokio::sync::oneshot::channel();
    net.shards[0].handle_command(net.now, Command::Streams { reply });
    let streams = rx.try_recv().unwrap();
    let layers = &streams.iter().find(|s| s.name == "sc").unwrap().layers;
    let seen: Vec<_> = layers
        .iter()
        .map(|l| (l.rid.as_str(), l.width, l.active))
        .collect();
    assert_eq!(
        seen,
        [("q", 320, true), ("h", 640, true), ("f", 1280, false)]
    );
    assert!(layers[1].bitrate > 100_000, "{layers:?}");
}

#[test]
fn a_viewer_gets_the_top_layer_and_steps_down_when_it_stops() {
    simulcast_to_viewer_on(1, 0);
}

#[test]
fn a_viewer_on_another_shard_gets_the_top_layer_too() {
    simulcast_to_viewer_on(2, 1);
}

/// A publisher of layers at about 180 k, 500 k and 1.5 Mbit/s (1, 2 and 5 packets a frame
/// of 700, 1000 and 1200 bytes at 30 fps) and a viewer on `down`; returns (net, publisher,
/// viewer) after 3 s of watching.
fn estimated(down: Link) -> (Net, Simulcaster, usize) {
    let mut net = Net::new(1, 21);
    let mut publisher = Simulcaster::join(&mut net);
    for (l, (len, packets)) in publisher
        .layers
        .iter_mut()
        .zip([(700, 1), (1000, 2), (1200, 5)])
    {
        (l.len, l.packets) = (len, packets);
    }
    publisher.run(&mut net, 30);
    let v = net.join(Role::Play, "sc", 0, clean(), down).unwrap();
    connect(&mut net, v);
    publisher.run(&mut net, 90);
    (net, publisher, v)
}

/// Lengths of the video packets viewer `v` got in the last `window` of simulated time.
fn recent(net: &Net, v: usize, window: Duration) -> Vec<usize> {
    let since = net.now - window;
    net.clients[v]
        .video()
        .filter(|g| g.at >= since)
        .map(|g| g.packet.len())
        .collect()
}

/// The viewer's link drops from 5 Mbit/s to 800 kbit/s: its transport-wide feedback shows
/// the queue, its estimate falls and within 3 s it is on h (1000-byte packets), with
/// numbering continuous; its other layers' packets never mixed.
#[test]
fn a_viewer_whose_link_drops_steps_down_a_layer_within_3_s() {
    let (mut net, mut publisher, v) = estimated(Link::shaped(10 * MS, 5_000_000));
    let on_f = recent(&net, v, Duration::from_secs(1));
    assert!(
        !on_f.is_empty() && on_f.iter().all(|&l| l == 1200),
        "on f: {on_f:?}"
    );
    let before = net.clients[v].video().count();
    net.clients[v].down = Link::shaped(10 * MS, 800_000);
    publisher.run(&mut net, 90);
    let now_on = recent(&net, v, Duration::from_millis(500));
    assert!(
        !now_on.is_empty() && now_on.iter().all(|&l| l == 1000),
        "on h 3 s after the drop: {now_on:?}"
    );
    // /api/streams shows its estimate under the link rate and its layer.
    let (reply, mut rx) = tokio::sync::oneshot::channel();
    net.shards[0].handle_command(net.now, Command::Streams { reply });
    let streams = rx.try_recv().unwrap();
    let sc = streams.iter().find(|s| s.name == "sc").unwrap();
    // Three VP8 layers and Opus: each codec named once.
    assert_eq!(sc.codecs, ["VP8", "opus"], "{sc:?}");
    let w = &sc.watchers;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].estimate.is_some_and(|e| e < 800_000), "{w:?}");
    assert_eq!(w[0].layer.as_deref(), Some("h"), "{w:?}");
    // The bottleneck drops packets, so the numbers have gaps; but they run on from f's to
    // h's (no jump between the layers' own numbering, 10 000 apart).
    let seqs: Vec<u16> = net.clients[v].video_seqs().split_off(before);
    let mut ext: Vec<i64> = Vec::new();
    for s in seqs {
        let last = ext.last().copied().unwrap_or(i64::from(s));
        ext.push(last + i64::from(s.wrapping_sub(last as u16) as i16));
    }
    ext.sort_unstable();
    let widest = ext.windows(2).map(|w| w[1] - w[0]).max();
    assert!(
        widest.is_some_and(|g| g < 200),
        "a gap of {widest:?} numbers"
    );
}

/// 20 % loss on the viewer's link (no queue): the loss-based limit takes it below f.
#[test]
fn a_viewer_on_a_lossy_link_steps_down() {
    let lossy = Link {
        loss: 20,
        ..Link::clean(10 * MS)
    };
    let (mut net, mut publisher, v) = estimated(lossy);
    publisher.run(&mut net, 150);
    let now_on = recent(&net, v, Duration::from_millis(500));
    assert!(
        !now_on.is_empty() && now_on.iter().all(|&l| l < 1200),
        "below f after 5 s of 20 % loss: {now_on:?}"
    );
}

/// A link that carries not even q (100 kbit/s): video pauses (audio would go on); when the
/// link recovers, probes find it (the estimate, without feedback while nothing is sent, is
/// restarted) and video resumes, at a keyframe.
#[test]
fn a_viewer_below_the_lowest_layer_is_paused() {
    let (mut net, mut publisher, v) = estimated(Link::shaped(10 * MS, 5_000_000));
    net.clients[v].down = Link::shaped(10 * MS, 100_000);
    let dropped = net.now;
    publisher.run(&mut net, 240);
    let paused = recent(&net, v, Duration::from_secs(1));
    assert!(paused.is_empty(), "no video at 100 kbit/s: {paused:?}");
    let last = net.clients[v].video().last().map(|g| g.at - dropped);
    eprintln!("the last video packet arrived {last:?} after the drop");
    // The link recovers: probes find it, and video resumes.
    net.clients[v].down = Link::shaped(10 * MS, 5_000_000);
    publisher.run(&mut net, 300);
    let resumed = recent(&net, v, Duration::from_millis(500));
    assert!(
        !resumed.is_empty(),
        "video again within 10 s of the recovery"
    );
}

/// After a drop to h, the link recovers: probes show it, and within 10 s the viewer is
/// back on f.
#[test]
fn a_viewer_whose_link_recovers_climbs_back_to_the_top_layer() {
    let (mut net, mut publisher, v) = estimated(Link::shaped(10 * MS, 5_000_000));
    net.clients[v].down = Link::shaped(10 * MS, 800_000);
    publisher.run(&mut net, 90);
    let on_h = recent(&net, v, Duration::from_millis(500));
    assert!(on_h.iter().all(|&l| l == 1000), "on h: {on_h:?}");
    net.clients[v].down = Link::shaped(10 * MS, 5_000_000);
    let mut climbed = None;
    for step in 0..30 {
        publisher.run(&mut net, 10);
        let now_on = recent(&net, v, Duration::from_millis(300));
        if !now_on.is_empty() && now_on.iter().all(|&l| l == 1200) {
            climbed = Some(step);
            break;
        }
    }
    assert!(climbed.is_some(), "back on f within 10 s of the recovery");
    eprintln!("back on f after {} ms", climbed.unwrap_or(0) * 333);
}

/// A 40-packet keyframe of f (48 kB) to a viewer with an estimate leaves through its pacer:
/// spread at about 2.5 × the estimate instead of in one burst into the bottleneck's queue,
/// every packet delivered, in order.
#[test]
fn a_keyframe_reaches_a_viewer_spread_at_its_pacing_rate() {
    let (mut net, mut publisher, v) = estimated(clean());
    let f = publisher.layers.len() - 1;
    // The next frame is a keyframe: its number is a multiple of the GOP.
    publisher.frame = publisher.gop * (publisher.frame / publisher.gop + 1);
    publisher.layers[f].packets = 40;
    let before = net.clients[v].video().count();
    publisher.run(&mut net, 1);
    publisher.layers[f].packets = 5;
    publisher.run(&mut net, 10);
    let estimate = {
        let (reply, mut rx) = tokio::sync::oneshot::channel();
        net.shards[0].handle_command(net.now, Command::Streams { reply });
        let streams = rx.try_recv().unwrap();
        let w = &streams.iter().find(|s| s.name == "sc").unwrap().watchers;
        w[0].estimate.expect("an estimate")
    };
    // The viewer's frames, by their (rewritten) timestamps: the keyframe is the one of 40.
    let mut frames: Vec<(u32, Vec<(std::time::Instant, u16)>)> = Vec::new();
    for g in net.clients[v].video().skip(before) {
        let (ts, got) = (g.view().timestamp(), (g.at, g.view().sequence_number()));
        match frames.iter_mut().find(|(t, _)| *t == ts) {
            Some((_, packets)) => packets.push(got),
            None => frames.push((ts, vec![got])),
        }
    }
    let key = frames
        .into_iter()
        .map(|(_, packets)| packets)
        .find(|packets| packets.len() == 40)
        .expect("a frame of 40 packets arrived whole");
    assert!(
        key.windows(2).all(|w| w[1].1 == w[0].1.wrapping_add(1)),
        "in order"
    );
    let spread = key[39].0.saturating_duration_since(key[0].0);
    // 48 kB at 2.5 × the estimate, less the 10 ms burst the pacer may save up.
    let paced = Duration::from_secs_f64(40.0 * 1252.0 * 8.0 / (2.5 * estimate as f64));
    eprintln!(
        "keyframe spread over {spread:?} at an estimate of {estimate} bit/s ({paced:?} paced)"
    );
    assert!(
        spread + 12 * MS >= paced,
        "a 48 kB keyframe arrived within {spread:?}; paced it takes {paced:?}"
    );
}
