//! Paused video on the simulated network (issue 12): a single-layer stream (one VP8 track
//! and audio) to a viewer whose link cannot carry the video. The video pauses, the audio
//! goes on; once the link recovers, probes show it and the video resumes at a keyframe,
//! numbered on from what was sent before the pause. Another viewer sees nothing of this.
#![cfg(test)]

use std::time::{Duration, Instant};

use rtc::rtp::RtpHeader;
use rtc::sdp::MediaKind;

use super::client::Got;
use super::{Link, Net, connect, plis};
use crate::control::{Command, Role, WatcherInfo};

const MS: Duration = Duration::from_millis(1);

fn clean() -> Link {
    Link::clean(10 * MS)
}

/// A live publisher as a browser with a camera and a microphone: VP8 at 30 fps, two
/// 1000-byte packets a frame (~480 kbit/s), a keyframe every `gop` frames and on each PLI;
/// Opus every 20 ms. Each video packet carries its number in the source's order (payload
/// bytes 14-17), so a viewer's packet says which source packet it is.
struct AvPublisher {
    i: usize,
    video: (u32, u8),
    audio: (u32, u8),
    seq: u16,
    ts: u32,
    audio_seq: u16,
    audio_ts: u32,
    frame: u32,
    gop: u32,
    /// Video packets sent (the next one's number).
    sent: u32,
    plis: usize,
    ms: u64,
}

impl AvPublisher {
    /// Joins `net` as the publisher of "live", and connects.
    fn join(net: &mut Net) -> Self {
        let p = net
            .join(Role::Publish, "live", 0, clean(), clean())
            .unwrap();
        connect(net, p);
        AvPublisher::new(net, p)
    }

    fn new(net: &Net, i: usize) -> Self {
        let c = &net.clients[i];
        AvPublisher {
            i,
            video: (c.local_ssrc(MediaKind::Video), c.video_pts().0),
            audio: (
                c.local_ssrc(MediaKind::Audio),
                c.audio_pt().expect("audio negotiated"),
            ),
            seq: 30_000,
            ts: 5_000_000,
            audio_seq: 100,
            audio_ts: 0,
            frame: 0,
            gop: 300,
            sent: 0,
            plis: 0,
            ms: 0,
        }
    }

    fn rtp(
        net: &mut Net,
        i: usize,
        marker: bool,
        (ssrc, pt): (u32, u8),
        seq: u16,
        ts: u32,
        payload: &[u8],
    ) {
        let mut packet = Vec::new();
        RtpHeader {
            marker,
            payload_type: pt,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            ..RtpHeader::default()
        }
        .write_vec(payload, 0, &mut packet)
        .unwrap();
        net.send_rtp(i, &packet);
    }

    fn send_frame(&mut self, net: &mut Net) {
        let plis = plis(net, self.i);
        let key = self.frame.is_multiple_of(self.gop) || plis > self.plis;
        self.plis = plis;
        let [hi, lo] = (0x8000 | (self.frame & 0x7fff) as u16).to_be_bytes();
        for k in 0..2 {
            // VP8 descriptor (RFC 7741 §4.2): X = 1, S on the first packet, a 15-bit
            // PictureID; then the frame tag (P = 0 on a keyframe) and start code.
            let start = if k == 0 { 0x90 } else { 0x80 };
            let mut payload = vec![start, 0x80, hi, lo];
            let data = [
                u8::from(!key),
                0,
                0,
                0x9d,
                0x01,
                0x2a,
                0x80,
                0x02,
                0x68,
                0x01,
            ];
            payload.extend_from_slice(&data);
            payload.extend_from_slice(&self.sent.to_be_bytes());
            payload.resize(1000 - 12, 0xab);
            Self::rtp(net, self.i, k == 1, self.video, self.seq, self.ts, &payload);
            self.seq = self.seq.wrapping_add(1);
            self.sent += 1;
        }
        self.ts = self.ts.wrapping_add(3000);
        self.frame += 1;
    }

    /// Runs for `d`: a video frame every 33 ms, an audio packet every 20 ms.
    fn run(&mut self, net: &mut Net, d: Duration) {
        for _ in 0..d.as_millis() {
            if self.ms.is_multiple_of(20) {
                let payload = [0xfc; 80];
                let (seq, ts) = (self.audio_seq, self.audio_ts);
                Self::rtp(net, self.i, false, self.audio, seq, ts, &payload);
                self.audio_seq = seq.wrapping_add(1);
                self.audio_ts = ts.wrapping_add(960);
            }
            if self.ms.is_multiple_of(33) {
                self.send_frame(net);
            }
            self.ms += 1;
            net.run_for(MS);
        }
    }
}

/// What a viewer's video packet is: its sequence number, the source packet's number, the
/// PictureID, whether it starts a keyframe, and when it arrived.
#[derive(Debug, Clone, Copy)]
struct Video {
    seq: u16,
    source: u32,
    picture: u16,
    keyframe: bool,
    ts: u32,
    at: Instant,
}

fn video(g: &Got) -> Video {
    let v = g.view();
    let p = v.payload();
    Video {
        seq: v.sequence_number(),
        source: u32::from_be_bytes([p[14], p[15], p[16], p[17]]),
        picture: u16::from_be_bytes([p[2], p[3]]) & 0x7fff,
        keyframe: p[0] & 0x10 != 0 && p[4] & 1 == 0,
        ts: v.timestamp(),
        at: g.at,
    }
}

fn videos(net: &Net, v: usize) -> Vec<Video> {
    net.clients[v].video().map(video).collect()
}

fn audio_since(net: &Net, v: usize, since: Instant) -> usize {
    net.clients[v].audio().filter(|g| g.at >= since).count()
}

fn watchers(net: &mut Net, name: &str) -> Vec<WatcherInfo> {
    let (reply, mut rx) = tokio::sync::oneshot::channel();
    net.shards[0].handle_command(net.now, Command::Streams { reply });
    let streams = rx.try_recv().unwrap();
    let stream = streams.into_iter().find(|s| s.name == name).unwrap();
    stream.watchers
}

fn metric(net: &mut Net, name: &str) -> u64 {
    let (reply, mut rx) = tokio::sync::oneshot::channel();
    net.shards[0].handle_command(net.now, Command::Metrics { reply });
    let part = rx.try_recv().unwrap();
    part.values.iter().find(|m| m.name == name).unwrap().value
}

/// A single-layer publisher, a viewer whose link drops from 5 Mbit/s to 100 kbit/s while the
/// video takes ~500 kbit/s, and an unthrottled viewer. The slow viewer's video pauses
/// within a few seconds while its audio goes on; lifted, the video resumes within 10 s,
/// its first packet a keyframe's, numbered on from the last packet sent before the pause.
/// The other viewer gets every packet, in order, throughout.
#[test]
fn a_single_layer_viewer_below_the_video_rate_is_paused_and_resumes_at_a_keyframe() {
    let mut net = Net::new(1, 31);
    let mut publisher = AvPublisher::join(&mut net);
    publisher.run(&mut net, Duration::from_secs(1));
    let slow = net
        .join(
            Role::Play,
            "live",
            0,
            clean(),
            Link::shaped(10 * MS, 5_000_000),
        )
        .unwrap();
    let fast = net.join(Role::Play, "live", 0, clean(), clean()).unwrap();
    connect(&mut net, slow);
    connect(&mut net, fast);
    publisher.run(&mut net, Duration::from_secs(3));
    let before = videos(&net, slow);
    assert!(before.len() >= 150, "{} video packets", before.len());
    assert!(watchers(&mut net, "live").iter().all(|w| !w.paused));

    // Throttled: the video pauses (the server sends none) within 4 s; audio goes on.
    net.clients[slow].down = Link::shaped(10 * MS, 100_000);
    let throttled = net.now;
    let mut paused_at = None;
    for _ in 0..40 {
        publisher.run(&mut net, 100 * MS);
        if watchers(&mut net, "live").iter().any(|w| w.paused) {
            paused_at = Some((net.now, publisher.sent));
            break;
        }
    }
    let (paused_at, sent_at_pause) = paused_at.expect("paused within 4 s of the drop");
    eprintln!(
        "paused {} ms after the drop",
        (paused_at - throttled).as_millis()
    );
    assert_eq!(metric(&mut net, "viewers_video_paused"), 1);
    let listed = watchers(&mut net, "live");
    assert_eq!(listed.len(), 2, "both viewers have estimates: {listed:?}");
    assert!(
        listed
            .iter()
            .all(|w| w.estimate.is_some() && w.layer.is_none())
    );
    publisher.run(&mut net, Duration::from_secs(5));
    let last_second = net.now - Duration::from_secs(1);
    let video_then = net.clients[slow]
        .video()
        .filter(|g| g.at >= last_second)
        .count();
    assert_eq!(video_then, 0, "no video while paused");
    let audio = audio_since(&net, slow, last_second);
    assert!(
        audio >= 40,
        "{audio} audio packets in the last second while paused"
    );
    let before_resume = videos(&net, slow);
    let last = *before_resume.last().unwrap();

    // Lifted: video again within 10 s, from a keyframe, numbered on.
    net.clients[slow].down = Link::shaped(10 * MS, 5_000_000);
    let lifted = net.now;
    let mut resumed = false;
    for _ in 0..100 {
        publisher.run(&mut net, 100 * MS);
        if net.clients[slow].video().count() > before_resume.len() {
            resumed = true;
            break;
        }
    }
    assert!(resumed, "video again within 10 s of the recovery");
    eprintln!(
        "resumed {} ms after the lift",
        (net.now - lifted).as_millis()
    );
    publisher.run(&mut net, Duration::from_secs(2));
    let after: Vec<Video> = videos(&net, slow).split_off(before_resume.len());
    assert!(
        after.len() >= 100,
        "{} video packets after the resume",
        after.len()
    );
    let first = after[0];
    assert!(
        first.keyframe,
        "the first packet after the pause starts a keyframe"
    );
    // Numbering: before the pause, ours = the source's + an offset; the first packet after
    // it follows the last one sent, which the source sent before the pause was seen — not
    // the source's number (that would be a gap of the whole pause).
    let offset = last.seq.wrapping_sub(last.source as u16);
    let last_sent = u32::from(first.seq.wrapping_sub(1).wrapping_sub(offset));
    assert!(
        (last.source as u16 as u32..=sent_at_pause as u16 as u32).contains(&last_sent),
        "resumed at {} after the source's {} was sent last (received last {}, {} sent when \
         the pause showed)",
        first.seq,
        last_sent,
        last.source,
        sent_at_pause
    );
    let picture_offset = last.picture.wrapping_sub(last.source as u16 / 2) & 0x7fff;
    let last_picture = first.picture.wrapping_sub(1).wrapping_sub(picture_offset) & 0x7fff;
    assert!(
        u32::from(last_picture) <= sent_at_pause / 2,
        "PictureIDs run on from before the pause ({last_picture})"
    );
    // Time advances by about the wall time the viewer went without video.
    let silent = (first.at - last.at).as_millis() as f64;
    let advanced = f64::from(first.ts.wrapping_sub(last.ts)) / 90.0;
    assert!(
        (silent * 0.8..silent * 1.2).contains(&advanced),
        "{advanced} ms of RTP time over {silent} ms without video"
    );
    for pair in after.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq.wrapping_add(1),
            "continuous after the resume"
        );
    }
    assert!(!watchers(&mut net, "live").iter().any(|w| w.paused));
    assert_eq!(metric(&mut net, "viewers_video_paused"), 0);

    // The unthrottled viewer got every packet, in order, without a hole.
    let all = videos(&net, fast);
    assert!(
        all.len() as u32 >= publisher.sent - 200,
        "{} of {}",
        all.len(),
        publisher.sent
    );
    for pair in all.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq.wrapping_add(1),
            "the other viewer: in order"
        );
        assert_eq!(
            pair[1].source,
            pair[0].source + 1,
            "the other viewer: every packet"
        );
        assert!(
            pair[1].at - pair[0].at < 100 * MS,
            "the other viewer: no hole"
        );
    }
}

/// A file stream has no publisher to ask for a keyframe: a paused viewer of the built-in
/// sample (VP8 ~600 kbit/s, a keyframe every 2 s, and Opus) resumes at the file's next
/// keyframe once its link recovers; its audio goes on meanwhile.
#[test]
fn a_file_viewer_below_the_video_rate_is_paused_and_resumes_at_the_next_keyframe() {
    let mut net = Net::new(1, 32);
    let v = net
        .join(
            Role::Play,
            "sample",
            0,
            clean(),
            Link::shaped(10 * MS, 5_000_000),
        )
        .unwrap();
    connect(&mut net, v);
    net.run_for(Duration::from_secs(3));
    assert!(net.clients[v].video().count() >= 100);
    net.clients[v].down = Link::shaped(10 * MS, 100_000);
    let paused = net.run_until(Duration::from_secs(5), |n| {
        n.clients[v]
            .video()
            .last()
            .is_some_and(|g| n.now - g.at > Duration::from_secs(2))
    });
    assert!(paused, "no video 2 s after at most 5 s at 100 kbit/s");
    assert!(watchers(&mut net, "sample")[0].paused);
    let since = net.now;
    net.run_for(Duration::from_secs(2));
    let audio = audio_since(&net, v, since);
    assert!(audio >= 80, "{audio} audio packets in 2 s while paused");
    let before = net.clients[v].video().count();
    net.clients[v].down = Link::shaped(10 * MS, 5_000_000);
    let lifted = net.now;
    let resumed = net.run_until(Duration::from_secs(10), |n| {
        n.clients[v].video().count() > before
    });
    assert!(resumed, "video again within 10 s of the recovery");
    eprintln!(
        "resumed {} ms after the lift",
        (net.now - lifted).as_millis()
    );
    let first = video(net.clients[v].video().nth(before).unwrap());
    assert!(first.keyframe, "resumed at a keyframe");
}

/// A viewer that did not negotiate transport-wide CC has no estimate: however little its
/// link carries, its video is never paused (it is sent what the stream has, as before).
#[test]
fn a_viewer_without_transport_cc_is_never_paused() {
    let mut net = Net::new(1, 33);
    let mut publisher = AvPublisher::join(&mut net);
    publisher.run(&mut net, Duration::from_secs(1));
    let links = (clean(), Link::shaped(10 * MS, 100_000));
    let v = net
        .join_edited(Role::Play, "live", 0, links, |o| o.without_transport_cc())
        .unwrap();
    connect(&mut net, v);
    assert!(net.clients[v].twcc.is_none(), "no transport-wide CC");
    publisher.run(&mut net, Duration::from_secs(6));
    let since = net.now - Duration::from_secs(1);
    let video = net.clients[v].video().filter(|g| g.at >= since).count();
    assert!(video >= 5, "{video} video packets in the last second");
    assert!(watchers(&mut net, "live").is_empty());
    assert_eq!(metric(&mut net, "viewers_video_paused"), 0);
}
